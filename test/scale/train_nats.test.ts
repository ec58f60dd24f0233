/**
 * End to end: `evovla train --config tiny.yaml --nats URL` (BC, SAR, then the PPO phase with SAR,
 * POE and memory on the real VLA) with two `evovla worker` processes on a private loopback
 * nats-server: the workers build the run's rollout from its context, the learner updates on their
 * segments, writes the same metrics lines and checkpoints as a local run plus versions and
 * segment ages, exports policy.onnx, and the workers exit 0 when it finishes.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { stringify } from 'yaml';
import { readOnnxInfo } from '../../robot/policies/onnx_meta.ts';
import { scratchDir } from '../tmp.ts';
import { tinyTrainConfig, writeSyntheticDemos } from '../policy/helpers.ts';
import { startTestServer, testProcesses } from './helpers.ts';

const { evovla, cleanups } = testProcesses();

test('evovla train --nats with 2 evovla worker processes: the VLA PPO phase runs on the workers\' rollouts', { timeout: 240_000 }, async () => {
  const server = await startTestServer();
  cleanups.push(() => server.stop());
  const root = scratchDir('evovla-train-nats-');
  const demoDir = join(root, 'demos');
  writeSyntheticDemos(demoDir, { episodes: 3, steps: 12, size: 16 });
  const cfg = tinyTrainConfig('dist', join(root, 'runs'), demoDir, {
    phases: [
      { kind: 'bc', steps: 4, batch: 4, warmupSteps: 1, logEvery: 2, checkpointEvery: 4, valBatches: 1 },
      { kind: 'sar', model: { imageSize: 16 }, train: { seeds: [0], steps: 4, batch: 16, nearMissStates: false, threads: 1 } },
      // Gate window 1 and a low threshold, so the untrained scorer makes claims on the workers.
      { kind: 'ppo', totalSteps: 32, rolloutSteps: 16, minibatchSize: 8, epochs: 1, envs: 2, workers: 0, episodeSteps: 10, sar: true, poe: true, memory: true, memorySlots: 4, evalEpisodes: 0, gate: { window: 1, threshold: 0.01 } },
    ],
  });
  const file = join(root, 'tiny.yaml');
  writeFileSync(file, stringify(cfg));

  const learner = evovla(['train', '--config', file, '--nats', server.url, '--run', 'dist', '--no-progress']);
  const workers = [0, 1].map((id) => evovla(['worker', '--nats', server.url, '--run', 'dist', '--worker-id', String(id), '--envs', '1']));
  assert.equal(await learner.exited, 0, learner.out);
  for (const w of workers) assert.equal(await w.exited, 0, w.out);

  const runDir = join(root, 'runs', 'dist');
  const lines = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const ppo = lines.filter((l) => l.phase === 'ppo');
  assert.equal(ppo.length, 2, 'one line per update');
  assert.deepEqual(ppo.map((l) => l.policy_version), [1, 2]);
  assert.deepEqual(ppo.map((l) => l.env_steps), [16, 32]);
  for (const key of ['value_loss_ext', 'value_loss_int', 'approx_kl', 'entropy', 'reward/stage', 'reward/cur', 'reward/prog', 'poe_loss', 'sar_claims', 'hallucination', 'episodes', 'segments', 'segment_age_mean', 'segment_age_max', 'workers']) assert.ok(key in ppo[0], `PPO metrics lack ${key}`);
  // The SAR scorer travelled in the context: with window 1 and threshold 0.01 every transition claims.
  assert.equal(ppo[0].sar_claims, 16);
  assert.ok(existsSync(join(runDir, 'checkpoints', 'p2-step00000002.safetensors')), 'the PPO phase checkpoint after the last update');
  const info = readOnnxInfo(readFileSync(join(runDir, 'policy.onnx')));
  assert.ok(info.inputs.some((i) => i.name === 'memory'), 'policy.onnx has the memory input');
  for (const [id, w] of workers.entries()) {
    assert.match(w.out, /rolling out with policy v1 /);
    assert.match(w.out, /the learner finished run 'dist'; exiting/);
    const stats = JSON.parse(w.out.trim().split('\n').at(-1)!) as { worker: number; segments: number };
    assert.equal(stats.worker, id);
  }
  assert.match(learner.out, /finished: 2 updates, \d+ segments \(32 env steps\)/);
});

test('evovla train --nats: bad flags name the flag and the expected form', async () => {
  const { run } = await import('../../cli/train.ts');
  const root = scratchDir('evovla-train-nats-flags-');
  const withPpo = join(root, 'ppo.yaml');
  writeFileSync(withPpo, stringify(tinyTrainConfig('flags', join(root, 'runs'), join(root, 'demos'), { phases: [{ kind: 'bc' }, { kind: 'ppo', sar: false }] })));
  const bcOnly = join(root, 'bc.yaml');
  writeFileSync(bcOnly, stringify(tinyTrainConfig('flags', join(root, 'runs'), join(root, 'demos'))));
  await assert.rejects(run(['--config', withPpo, '--run', 'x']), /flag '--run' needs --nats URL/);
  await assert.rejects(run(['--config', withPpo, '--nats', 'localhost:4222']), /--nats: expected nats:\/\/host:port .*got 'localhost:4222'/);
  await assert.rejects(run(['--config', withPpo, '--nats', 'nats://127.0.0.1:1', '--stale', 'often']), /--stale: expected 'drop' or 'reweight', got 'often'/);
  await assert.rejects(run(['--config', withPpo, '--nats', 'nats://127.0.0.1:1', '--run', 'a.b']), /--run: expected 1-64 letters, digits, '_' or '-', got 'a\.b'/);
  await assert.rejects(run(['--config', bcOnly, '--nats', 'nats://127.0.0.1:1']), /--nats: the config has no 'ppo' phase to distribute \(phases: bc\)/);
  assert.ok(!existsSync(join(root, 'runs')), 'nothing was started');
});
