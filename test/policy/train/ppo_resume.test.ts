/**
 * PPO checkpoints: a run killed after a PPO checkpoint and resumed with `--resume` reaches the same
 * state as the run left alone (every weight of the VLA and the POE world model, both optimizers,
 * the generators, the metrics of the iterations after the checkpoint), instead of starting PPO
 * over from the BC weights. The kill is made by removing what the uninterrupted run wrote after
 * its second PPO checkpoint (exactly what a killed process leaves on disk). Episodes end at the
 * rollout boundary (8-step episodes, 16 steps per env and rollout), so every episode at the
 * checkpoint is fresh and the continuation is exact.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeSafetensors } from '../../../nn/checkpoint.ts';
import { trainRun } from '../../../policy/train/run.ts';
import { scratchDir } from '../../tmp.ts';
import { tinyTrainConfig, writeSyntheticDemos } from '../helpers.ts';

test('PPO checkpoint + --resume continues a killed PPO phase to the same state as an uninterrupted run', async () => {
  const root = scratchDir('evovla-ppo-resume-');
  const demoDir = join(root, 'demos');
  writeSyntheticDemos(demoDir, { episodes: 3, steps: 12, size: 16 });
  const config = (name: string) =>
    tinyTrainConfig(name, join(root, 'runs'), demoDir, {
      checkpoints: { keep: 10 },
      phases: [
        { kind: 'bc', steps: 4, batch: 4, warmupSteps: 1, logEvery: 2, checkpointEvery: 4, valBatches: 1 },
        { kind: 'sar', model: { imageSize: 16 }, train: { seeds: [0], steps: 4, batch: 16, nearMissStates: false, threads: 1 } },
        { kind: 'ppo', totalSteps: 96, rolloutSteps: 32, minibatchSize: 16, epochs: 2, envs: 2, workers: 0, episodeSteps: 8, sar: true, poe: true, memory: true, memorySlots: 4, evalEpisodes: 1, checkpointEvery: 1, gate: { window: 1, threshold: 0.3 } },
      ],
    });
  const a = await trainRun(config('a'));
  const ckA = join(a.runDir, 'checkpoints');
  const ppoFiles = readdirSync(ckA).filter((f) => f.startsWith('p2-'));
  assert.deepEqual(ppoFiles, ['p2-step00000001.safetensors', 'p2-step00000002.safetensors', 'p2-step00000003.safetensors']);

  // The kill: run b is run a as it stood right after its second PPO checkpoint.
  const bDir = join(root, 'runs', 'b');
  cpSync(a.runDir, bDir, { recursive: true });
  writeFileSync(join(bDir, 'config.yaml'), readFileSync(join(bDir, 'config.yaml'), 'utf8').replace(/^name: a$/m, 'name: b'));
  for (const f of ['checkpoints/p2-step00000003.safetensors', 'policy.onnx']) rmSync(join(bDir, f), { force: true });
  const b = await trainRun(config('b'), { resume: true });

  // Same weights, optimizer moments and steps, generator states at the end.
  const last = (dir: string) => decodeSafetensors(readFileSync(join(dir, 'checkpoints', 'p2-step00000003.safetensors')));
  const ta = last(a.runDir);
  const tb = last(bDir);
  assert.deepEqual([...tb.tensors.keys()].sort(), [...ta.tensors.keys()].sort());
  // It holds the VLA (trunk, heads, memory fusion), the POE world model and both optimizers.
  for (const prefix of ['trunk.', 'head.', 'memory.gate.', 'poe.forward.', 'poe.inverse.', 'optim.ppo.m/head.', 'optim.ppo.v/memory.', 'optim.poe.m/poe.forward.']) {
    assert.ok([...ta.tensors.keys()].some((k) => k.startsWith(prefix)), `checkpoint lacks ${prefix}*`);
  }
  let differing = 0;
  for (const [name, t] of ta.tensors) {
    const u = tb.tensors.get(name)!;
    if (t.data.length !== u.data.length || t.data.some((v, i) => v !== u.data[i])) differing++;
  }
  assert.equal(differing, 0, 'every tensor of the resumed run equals the uninterrupted one');
  for (const k of ['optim.ppo/step', 'optim.poe/step', 'ppo/rng/actions', 'ppo/rng/episodes', 'ppo/rng/minibatches', 'ppo/episodes']) {
    assert.ok(ta.metadata[k] !== undefined, `checkpoint lacks ${k}`);
    assert.equal(tb.metadata[k], ta.metadata[k], k);
  }
  assert.ok(Number(ta.metadata['optim.poe/step']) > 0, 'the POE world model trained');
  // The phase trained on: it did not start over (its step counters went on from 2 to 3).
  assert.equal(Number(tb.metadata['ppo/iteration']), 3);
  // The metrics of the resumed iteration equal the uninterrupted run's (timings aside).
  const ppoLines = (dir: string) =>
    readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.phase === 'ppo')
      .map(({ rollout_seconds: _r, update_seconds: _u, ...rest }) => rest);
  assert.equal(ppoLines(bDir).length, 3, 'one line per iteration, none repeated');
  assert.deepEqual(ppoLines(bDir), ppoLines(a.runDir));
  const phase = (s: typeof a) => s.phases.find((p) => p.kind === 'ppo') as { envSteps: number; iterations: number; before: unknown; after: unknown };
  assert.equal(phase(b).envSteps, 96);
  assert.equal(phase(b).iterations, 3);
  assert.deepEqual(phase(b).before, phase(a).before, 'the before-PPO evaluation is carried by the checkpoint');
  assert.deepEqual(phase(b).after, phase(a).after);
  assert.ok(existsSync(join(bDir, 'policy.onnx')));
});
