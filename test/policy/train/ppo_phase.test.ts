import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readOnnxInfo } from '../../../robot/policies/onnx_meta.ts';
import { parseTrainConfig } from '../../../policy/train/config.ts';
import { trainRun } from '../../../policy/train/run.ts';
import { scratchDir } from '../../tmp.ts';
import { TINY_MODEL, writeSyntheticDemos } from '../helpers.ts';

test('a run of BC, SAR, then PPO (SAR + POE + memory) on Stack: metrics per iteration, before/after evaluation with hallucination, policy.onnx with memory inputs', async () => {
  const root = scratchDir('evovla-ppo-phase-');
  const demoDir = join(root, 'demos');
  writeSyntheticDemos(demoDir, { episodes: 3, steps: 12, size: 16 });
  const cfg = parseTrainConfig({
    name: 'bc-ppo',
    runsDir: join(root, 'runs'),
    task: 'stack',
    threads: 1,
    model: TINY_MODEL,
    data: { demoDir, episodes: 3, valEpisodes: 1 },
    phases: [
      { kind: 'bc', steps: 4, batch: 4, warmupSteps: 1, logEvery: 2, checkpointEvery: 4, valBatches: 1 },
      { kind: 'sar', model: { imageSize: 16 }, train: { seeds: [0], steps: 4, batch: 16, nearMissStates: false, threads: 1 } },
      // Gate window 1 and a low threshold, so the untrained scorer makes claims to judge.
      { kind: 'ppo', totalSteps: 64, rolloutSteps: 32, minibatchSize: 16, epochs: 2, envs: 2, workers: 0, episodeSteps: 10, sar: true, poe: true, memory: true, memorySlots: 4, evalEpisodes: 2, gate: { window: 1, threshold: 0.01 } },
    ],
    eval: { episodes: 0 },
  });
  const summary = await trainRun(cfg);
  assert.ok(existsSync(join(summary.runDir, 'sar', 'sar.onnx')));
  const ppo = summary.phases[2] as { kind: string; envSteps: number; iterations: number; before: { episodes: number; hallucination: { claims: number; false: number } }; after: { episodes: number }; inference: { execute: number } };
  assert.equal(ppo.kind, 'ppo');
  assert.equal(ppo.envSteps, 64);
  assert.equal(ppo.iterations, 2);
  assert.equal(ppo.before.episodes, 2);
  assert.equal(ppo.after.episodes, 2);
  // A claim on every step until the gate has claimed all 18 stages: 10 steps x 2 episodes.
  assert.equal(ppo.before.hallucination.claims, 20);
  assert.ok(ppo.before.hallucination.false <= 20);
  const lines = readFileSync(join(summary.runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const ppoLines = lines.filter((l) => l.phase === 'ppo');
  assert.equal(ppoLines.length, 2);
  for (const key of ['value_loss_ext', 'value_loss_int', 'approx_kl', 'clip_fraction', 'entropy', 'reward/ext', 'reward/stage', 'reward/cur', 'reward/prog', 'poe_loss', 'hallucination', 'sar_claims', 'episodes']) assert.ok(key in ppoLines[0], `PPO metrics lack ${key}`);
  assert.equal(ppoLines[0].sar_claims, 32, 'one claim per transition with window 1 and threshold 0.01');
  // 16 steps per env and rollout with a 10-step limit: one episode per env ends in the first
  // rollout, and in the second (steps 17..32) two more per env (at steps 20 and 30), auto-reset each time.
  assert.equal(ppoLines[0].episodes, 2);
  assert.equal(ppoLines[1].episodes, 4);
  const info = readOnnxInfo(readFileSync(summary.policy!));
  assert.deepEqual(
    info.inputs.map((i) => i.name).sort(),
    ['image_eye_arm', 'image_eye_side', 'instruction', 'memory', 'memory_mask', 'proprio'],
  );
  assert.equal(JSON.parse(info.metadata['evovla.inference']).execute, 1);
});
