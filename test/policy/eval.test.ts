import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { evaluatePolicy, formatEval } from '../../policy/eval.ts';
import { EVAL_SEED_BASE } from '../../policy/train/config.ts';
import { VlaConfigSchema } from '../../policy/vla/config.ts';
import { createVla, exportVla, identityStats } from '../../policy/vla/model.ts';
import { taskTokenizer } from '../../policy/vla/tokenizer.ts';
import { readEpisode, requireIntact } from '../../sim/record/reader.ts';
import { robotSpecFor } from '../../robot/spec.ts';
import { scratchDir } from '../tmp.ts';
import { TINY_MODEL } from './helpers.ts';

test('eval: an untrained VLA in worker processes with cameras; Wilson CI, stages, replayable episode files', async () => {
  const dir = scratchDir('evovla-eval-');
  const cfg = VlaConfigSchema.parse(TINY_MODEL);
  const vla = createVla(cfg, taskTokenizer({ maxLength: cfg.maxTokens }), identityStats(), 0);
  const policy = join(dir, 'policy.onnx');
  writeFileSync(policy, exportVla(vla, robotSpecFor('airbot_play')));
  const r = await evaluatePolicy({ policy, task: 'stack', episodes: 3, workers: 1, envs: 2, seed: EVAL_SEED_BASE, maxSteps: 20, record: join(dir, 'ep') });
  assert.equal(r.episodes, 3);
  assert.deepEqual(r.perEpisode.map((e) => e.seed), [EVAL_SEED_BASE, EVAL_SEED_BASE + 1, EVAL_SEED_BASE + 2]);
  assert.equal(r.successes, 0, 'an untrained policy does not stack blocks in 20 steps');
  assert.equal(r.ci95[0], 0);
  assert.ok(r.ci95[1] > 0.4 && r.ci95[1] < 0.8, `Wilson upper bound for 0/3: ${r.ci95[1]}`);
  assert.equal(r.stageCompletion.length, 18);
  for (const e of r.perEpisode) assert.equal(e.steps, 20);
  assert.match(formatEval(r), /0\/3 successful/);
  for (const e of r.perEpisode) {
    const ep = readEpisode(e.file!);
    requireIntact(ep, e.file);
    assert.equal(ep.header.seed, e.seed);
    assert.equal(ep.steps.length, 20);
    assert.deepEqual(Object.keys(ep.steps[0].images ?? {}).sort(), ['eye_arm', 'eye_side']);
  }
});

test('eval refuses a policy file without the contract inputs, naming them', async () => {
  const dir = scratchDir('evovla-eval-bad-');
  const file = join(dir, 'bad.onnx');
  const { tinyPolicyBytes } = await import('../../robot/policies/tiny_mlp.ts');
  writeFileSync(file, tinyPolicyBytes({ metadata: { 'evovla.cameras': JSON.stringify([{ name: 'eye_side', width: 16, height: 16 }]) } }));
  await assert.rejects(evaluatePolicy({ policy: file, task: 'stack', episodes: 1, workers: 0, seed: EVAL_SEED_BASE }), /lists 'eye_side' but there is no input image_eye_side/);
  await assert.rejects(evaluatePolicy({ policy: join(dir, 'missing.onnx'), task: 'stack', episodes: 1, workers: 0, seed: EVAL_SEED_BASE }), /cannot read policy/);
});
