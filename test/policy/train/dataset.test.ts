import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildFrameCache, sampleBatch } from '../../../policy/train/dataset.ts';
import { relativeDims } from '../../../policy/vla/model.ts';
import { Rng } from '../../../sim/rng.ts';
import { scratchDir } from '../../tmp.ts';
import { writeSyntheticDemos } from '../helpers.ts';

const root = scratchDir('evovla-dataset-');
const files = writeSyntheticDemos(join(root, 'demos'), { episodes: 2, steps: 10, size: 8 });
const cache = buildFrameCache(files, join(root, 'cache'), ['eye_side', 'eye_arm'], 8);

test('delta frame: joint targets are taken from the frame proprio, the gripper stays absolute; stats describe what is predicted', () => {
  const rel = relativeDims('delta');
  assert.deepEqual(rel, [true, true, true, true, true, true, false]);
  assert.deepEqual(relativeDims('absolute'), new Array(7).fill(false));
  const K = 3;
  const stats = cache.stats([0, 1], rel, K);
  // By hand: every (frame, offset) pair's target minus the frame's proprio.
  const values: number[][] = Array.from({ length: 7 }, () => []);
  for (let i = 0; i < cache.frames; i++) {
    for (let k = 0; k < K; k++) {
      const a = cache.chunkAction(i, k);
      for (let d = 0; d < 7; d++) values[d].push(a[d] - (d < 6 ? cache.proprio[7 * i + d] : 0));
    }
  }
  for (let d = 0; d < 7; d++) {
    const m = values[d].reduce((s, v) => s + v, 0) / values[d].length;
    const sd = Math.sqrt(values[d].reduce((s, v) => s + (v - m) ** 2, 0) / values[d].length);
    assert.ok(Math.abs(stats.actionMean[d] - m) < 1e-6, `mean[${d}] ${stats.actionMean[d]} vs ${m}`);
    assert.ok(Math.abs(stats.actionStd[d] - Math.max(1e-3, sd)) < 1e-5, `std[${d}] ${stats.actionStd[d]} vs ${sd}`);
  }
  // The absolute statistics differ (joint targets are far from their steps).
  const abs = cache.stats([0, 1]);
  assert.ok(Math.abs(abs.actionMean[0] - stats.actionMean[0]) > 1e-3 || Math.abs(abs.actionStd[0] - stats.actionStd[0]) > 1e-3);

  const frames = Int32Array.from({ length: cache.frames }, (_, i) => i);
  const b = sampleBatch(cache, frames, 4, K, stats, new Rng(5), 0, undefined, rel);
  const again = sampleBatch(cache, frames, 4, K, stats, new Rng(5), 0, undefined, []);
  for (let r = 0; r < 4; r++) {
    const proprio = b.proprio.subarray(7 * r, 7 * r + 7);
    for (let k = 0; k < K; k++) {
      for (let d = 0; d < 7; d++) {
        const delta = b.target[(r * K + k) * 7 + d] * stats.actionStd[d] + stats.actionMean[d];
        const absolute = again.target[(r * K + k) * 7 + d] * stats.actionStd[d] + stats.actionMean[d];
        // Same rng, same frames: the delta target + proprio is the absolute one (joints), equal for the gripper.
        assert.ok(Math.abs(delta + (d < 6 ? proprio[d] : 0) - absolute) < 1e-5, `row ${r} k ${k} d ${d}`);
      }
    }
  }
});

test('privileged state: each frame holds every object minus the tool of that frame\'s observation; stats and batches normalise it', () => {
  assert.deepEqual(cache.objects, ['block']);
  assert.equal(cache.stateDim, 3);
  // Frame j is the observation after step j + 1 of its episode (step records are 1-based here):
  // q_t = 0.3 sin(phase + 0.05 t + d); the tool follows q, the block sits at (0.4, 0.05 seed, 0.02).
  for (let i = 0; i < cache.frames; i++) {
    const q = cache.proprio.subarray(7 * i, 7 * i + 7);
    const seed = cache.episodes[cache.episodeOf[i]].seed;
    const want = [0.4 - (0.3 + 0.1 * q[0]), 0.05 * seed - 0.1 * q[1], 0.02 - (0.2 + 0.1 * q[2])];
    for (let a = 0; a < 3; a++) assert.ok(Math.abs(cache.state[3 * i + a] - want[a]) < 1e-6, `frame ${i} axis ${a}: ${cache.state[3 * i + a]} vs ${want[a]}`);
  }
  const frames = Int32Array.from({ length: cache.frames }, (_, i) => i);
  const norm = cache.stateStats(frames);
  const b = sampleBatch(cache, frames, 64, 2, cache.stats(), new Rng(1), 0, undefined, [], norm);
  assert.equal(b.state!.length, 64 * 3);
  // Normalised: about zero mean over a large batch, and each value maps back to a frame's state.
  const back = Array.from(b.state!, (v, k) => v * norm.std[k % 3] + norm.mean[k % 3]);
  for (let r = 0; r < 64; r++) {
    const row = back.slice(3 * r, 3 * r + 3);
    assert.ok(frames.some((i) => row.every((v, a) => Math.abs(v - cache.state[3 * i + a]) < 1e-5)), `batch row ${r} is no frame's state`);
  }
  assert.equal(sampleBatch(cache, frames, 2, 2, cache.stats(), new Rng(1), 0).state, undefined, 'no state unless asked for');
});

test('stillWait: frames whose observation repeats while the same command holds for the next N actions, never the first frame of a wait', () => {
  const dir = scratchDir('evovla-still-');
  // Steps 3..8 hold the joints. Frame i pairs observation i with actions i+1.. (11 frames per
  // 12-step episode: the last observation has no next action), so frames 4..8 repeat frame 3's
  // observation and their targets stay the held command up to action 8.
  const held = buildFrameCache(writeSyntheticDemos(join(dir, 'demos'), { episodes: 2, steps: 12, size: 4, hold: { from: 3, steps: 6 } }), join(dir, 'cache'), ['eye_side', 'eye_arm'], 4);
  try {
    const flagged = (window: number) => Array.from({ length: held.frames }, (_, i) => i).filter((i) => held.stillWait(i, window));
    // Window 3: still, and targets i+1..i+3 all the held command -> frames 4 and 5 of each episode.
    assert.deepEqual(flagged(3), [4, 5, 15, 16]);
    // Window 1: every still frame (the command is trivially the same over one action).
    assert.deepEqual(flagged(1), [4, 5, 6, 7, 8, 15, 16, 17, 18, 19]);
    // Window 0 is off; the moving demos of the other cache have no still frame.
    assert.deepEqual(flagged(0), []);
    assert.equal(Array.from({ length: cache.frames }, (_, i) => i).filter((i) => cache.stillWait(i, 1)).length, 0);
    // An infinite tolerance ('command' waits, data.dropWaitsBy) ignores the observation: frame 2
    // too (its next three commands are the held one), never an episode's clamped end.
    assert.deepEqual(Array.from({ length: held.frames }, (_, i) => i).filter((i) => held.stillWait(i, 3, Number.POSITIVE_INFINITY)), [2, 3, 4, 5, 13, 14, 15, 16]);
  } finally {
    held.close();
  }
});

test('command waits: a wait whose observation keeps moving is no still wait, but the command alone finds it', () => {
  const dir = scratchDir('evovla-cmdwait-');
  const moving = buildFrameCache(writeSyntheticDemos(join(dir, 'demos'), { episodes: 2, steps: 12, size: 4, hold: { from: 3, steps: 6, moving: true } }), join(dir, 'cache'), ['eye_side', 'eye_arm'], 4);
  try {
    const flagged = (tol?: number) => Array.from({ length: moving.frames }, (_, i) => i).filter((i) => moving.stillWait(i, 3, tol));
    assert.deepEqual(flagged(), [], 'the arm moves: no still frame');
    // Targets i+1..i+3 all the held command (actions 3..8): frames 2..5 of each episode (11
    // frames each; frame 2's observation is the step before the wait, its next three commands are
    // the held one). The last frame's chunk, clamped to the episode's last action, is no wait.
    assert.deepEqual(flagged(Number.POSITIVE_INFINITY), [2, 3, 4, 5, 13, 14, 15, 16]);
  } finally {
    moving.close();
  }
});
