import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';
import { ConfigError, parseTrainConfig, type PpoPhaseConfig } from '../../../policy/train/config.ts';

test('a PPO phase takes physics randomisation ranges; configs/evovla_stack.yaml turns it on; a bad range is refused with its path', () => {
  const cfg = parseTrainConfig(parse(readFileSync(new URL('../../../configs/evovla_stack.yaml', import.meta.url), 'utf8')), 'configs/evovla_stack.yaml');
  const ppo = cfg.phases.find((p) => p.kind === 'ppo') as PpoPhaseConfig;
  assert.deepEqual(ppo.physicsRandomization?.objectMassScale, [0.8, 1.2]);
  assert.deepEqual(ppo.physicsRandomization?.actionLatencySteps, [0, 1]);
  const bad = { name: 'x', task: 'stack', phases: [{ kind: 'ppo', physicsRandomization: { objectMassScale: [1.2, 0.8] } }] };
  assert.throws(() => parseTrainConfig(bad), (e: Error) => e instanceof ConfigError && /phases\.0\.physicsRandomization\.objectMassScale/.test(e.message));
  const typo = { name: 'x', task: 'stack', phases: [{ kind: 'ppo', physicsRandomization: { massScale: [0.9, 1.1] } }] };
  assert.throws(() => parseTrainConfig(typo), /massScale: unknown key/);
});

test('a bad value is refused with its key path, what was expected and the value given', () => {
  const bad = { name: 'x', task: 'stack', data: { dropWaitsBy: 'motion' }, phases: [{ kind: 'bc', steps: -3 }] };
  assert.throws(() => parseTrainConfig(bad, 'c.yaml'), (e: Error) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /data\.dropWaitsBy: .*"still".*"command".*, got "motion"/);
    assert.match(e.message, /phases\.0\.steps: .*>=1, got -3/);
    return true;
  });
});
