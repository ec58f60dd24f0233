import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadEnvConfig, parseEnvConfig } from '../../sim/config.ts';
import { createEnv } from '../../sim/env.ts';
import { blocksTask } from '../../tasks/blocks.ts';

test('defaults are filled in and the result is frozen', () => {
  const c = parseEnvConfig({});
  assert.equal(c.actionMode, 'joint');
  assert.equal(c.physicsHz, 240);
  assert.equal(c.controlHz, 60);
  assert.ok(Object.isFrozen(c));
});

test('unknown keys and bad values name the source, the key and what was expected', () => {
  const bad: Array<[unknown, RegExp]> = [
    [{ phyicsHz: 240 }, /^env config: key 'phyicsHz': unknown key \(expected one of: actionMode, physicsHz/],
    [{ physicsHz: 'fast' }, /^env config: key 'physicsHz': .*number.*got "fast"/],
    [{ actionMode: 'torque' }, /^env config: key 'actionMode': .*"joint".*"ee_delta".*got "torque"/],
    [{ physicsHz: 240, controlHz: 70 }, /^env config: key 'controlHz': physicsHz must be a whole multiple of controlHz/],
    [{ rewardScales: { success: 'x' } }, /^env config: key 'rewardScales.success'/],
  ];
  for (const [input, re] of bad) assert.throws(() => parseEnvConfig(input), (e: unknown) => e instanceof ConfigError && re.test((e as Error).message), String(re));
});

test('createEnv rejects a bad config before building anything', async () => {
  await assert.rejects(createEnv(blocksTask, { maxSteps: -1 }), /key 'maxSteps'/);
});

test('a YAML config file is read, and its errors name the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'evovla-config-'));
  const good = join(dir, 'good.yaml');
  writeFileSync(good, 'actionMode: ee_delta\nrewardScales:\n  success: 2\n');
  const c = loadEnvConfig(good);
  assert.equal(c.actionMode, 'ee_delta');
  assert.deepEqual({ ...c.rewardScales }, { success: 2 });
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'controlHz: 0\n');
  assert.throws(() => loadEnvConfig(bad), (e: unknown) => e instanceof ConfigError && (e as Error).message.startsWith(`${bad}: key 'controlHz'`));
  const list = join(dir, 'list.yaml');
  writeFileSync(list, '- 1\n- 2\n');
  assert.throws(() => loadEnvConfig(list), /expected a mapping/);
});
