import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../../sim/rng.ts';
import { createEnv } from '../../../sim/env.ts';
import { getRobot } from '../../../sim/robot/index.ts';
import { getTask } from '../../../tasks/index.ts';
import { POSE_DIM, relativePose, stageObject } from '../../../rewards/poe/pose.ts';
import { ACTION_DIM, parsePoeConfig, PoseWorldModel, ProgressTracker, type Transitions } from '../../../rewards/poe/world_model.ts';

/** Transitions of a fixed linear dynamics z' = z + 0.1 A a, from a seeded generator. */
function transitions(n: number, seed: number, offset = 0): Transitions {
  const rng = new Rng(seed);
  const z = new Float32Array(n * POSE_DIM);
  const action = new Float32Array(n * ACTION_DIM);
  const zNext = new Float32Array(n * POSE_DIM);
  for (let i = 0; i < n; i++) {
    for (let d = 0; d < ACTION_DIM; d++) action[i * ACTION_DIM + d] = rng.uniform(-1, 1) + offset;
    action[i * ACTION_DIM + 6] = rng.uniform(0, 0.04);
    for (let d = 0; d < POSE_DIM; d++) {
      z[i * POSE_DIM + d] = rng.uniform(-1, 1) + offset;
      zNext[i * POSE_DIM + d] = z[i * POSE_DIM + d] + 0.1 * (action[i * ACTION_DIM + d] + 0.5 * action[i * ACTION_DIM + ((d + 1) % 6)]) + offset;
    }
  }
  return { z, action, zNext };
}

const mean = (a: ArrayLike<number>, from = 0, to = a.length) => {
  let s = 0;
  for (let i = from; i < to; i++) s += a[i];
  return s / (to - from);
};

test('the forward loss falls on repeated transitions', async () => {
  const wm = await PoseWorldModel.create(parsePoeConfig({ hidden: [64, 64], batchSize: 64 }));
  try {
    const batch = transitions(64, 1);
    const first = await wm.observe(batch);
    let last = first;
    for (let i = 0; i < 60; i++) last = await wm.observe(batch);
    assert.equal(wm.updates, 61);
    assert.ok(mean(last.forwardLoss) < 0.2 * mean(first.forwardLoss), `forward loss ${mean(first.forwardLoss)} -> ${mean(last.forwardLoss)}`);
    // r_cur is eta/2 times the forward loss.
    assert.ok(Math.abs(last.cur[3] - last.forwardLoss[3] / 2) < 1e-6);
  } finally {
    await wm.dispose();
  }
});

test('curiosity is lower on familiar transitions than on new ones', async () => {
  const wm = await PoseWorldModel.create(parsePoeConfig({ hidden: [64, 64], batchSize: 128 }));
  try {
    const familiar = transitions(64, 2);
    for (let i = 0; i < 60; i++) await wm.observe(familiar);
    const fresh = transitions(64, 3, 2);
    const both: Transitions = {
      z: Float32Array.from([...familiar.z, ...fresh.z]),
      action: Float32Array.from([...familiar.action, ...fresh.action]),
      zNext: Float32Array.from([...familiar.zNext, ...fresh.zNext]),
    };
    const r = await wm.observe(both);
    assert.ok(mean(r.cur, 0, 64) * 5 < mean(r.cur, 64, 128), `familiar ${mean(r.cur, 0, 64)} vs new ${mean(r.cur, 64, 128)}`);
  } finally {
    await wm.dispose();
  }
});

test('r_prog: positive when a loss falls below the stream mean, windows per stream, bounded', () => {
  const p = new ProgressTracker(3);
  assert.equal(p.push(0, 1), 0);
  assert.equal(p.push(0, 1), 0);
  assert.equal(p.push(0, 0.4), 0.6);
  assert.equal(p.push(1, 5), 0); // another stream starts empty
  assert.equal(p.push(0, 2), 0); // ReLU
  // window 3: remembers 1, 0.4, 2 (the first 1 dropped).
  assert.ok(Math.abs(p.push(0, 0) - (3.4 / 3)) < 1e-12);
  assert.throws(() => new ProgressTracker(0), /window must be an integer >= 1, got 0/);
});

test('the terms are finite for any action the simulator accepts, including clamped extremes', async () => {
  const task = getTask('stack');
  const env = await createEnv(task);
  const wm = await PoseWorldModel.create(parsePoeConfig({ hidden: [32, 32], batchSize: 32 }));
  try {
    const robot = getRobot('airbot_play');
    const lim = robot.joints.filter((j) => robot.armJoints.includes(j.name)).map((j) => j.limit!);
    const rng = new Rng(7);
    let { info } = env.reset({ seed: 3 });
    const n = 40;
    const batch: Transitions = { z: new Float32Array(n * 6), action: new Float32Array(n * 7), zNext: new Float32Array(n * 6) };
    for (let i = 0; i < n; i++) {
      const kind = i % 4;
      // Inside the limits, at the limits, far outside them (the env clamps), and gripper extremes.
      const a = lim.map((l) => (kind === 0 ? rng.uniform(l.lower, l.upper) : kind === 1 ? (rng.next() < 0.5 ? l.lower : l.upper) : kind === 2 ? rng.uniform(-50, 50) : 0));
      a.push(kind === 3 ? 1 : kind === 2 ? -1 : rng.uniform(0, 0.04));
      const object = stageObject(task.stages, info.stage);
      relativePose(info.state, object, 10, batch.z.subarray(i * 6, i * 6 + 6));
      const res = env.step(a);
      relativePose(res.info.state, object, 10, batch.zNext.subarray(i * 6, i * 6 + 6));
      batch.action.set(a, i * 7);
      info = res.info;
      if (res.terminated || res.truncated) info = env.reset({ seed: 4 + i }).info;
    }
    const r = await wm.observe(batch);
    for (const arr of [r.cur, r.prog, r.forwardLoss]) assert.ok(arr.every(Number.isFinite));
    assert.ok(Number.isFinite(r.trainLoss));
  } finally {
    await wm.dispose();
    env.free();
  }
});

test('relativePose: an upright object straight under a top-down tool has zero rotation; bad input is named', () => {
  const s = {
    ee: { p: [0.3, 0, 0.2], q: [0, 1, 0, 0] },
    objects: { block: { p: [0.3, 0, 0.1], q: [0, 0, 0, 1] } },
  } as never;
  const z = relativePose(s, 'block', 10);
  // The tool's +Z points down, so the block 10 cm below is at +1 (dm) along the tool's Z.
  assert.deepEqual(Array.from(z).map((v) => Math.round(v * 1e6) / 1e6), [0, 0, 1, 0, 0, 0]);
  assert.throws(() => relativePose(s, 'cup'), /no object 'cup'.*block/);
  assert.throws(() => parsePoeConfig({ eta: -1 }), /'eta'/);
});
