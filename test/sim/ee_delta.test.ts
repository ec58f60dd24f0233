import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEnv } from '../../sim/env.ts';
import { quatAngle } from '../../sim/math.ts';
import { robotLinkVisuals, robotSpec } from '../../sim/robot/index.ts';
import { blocksTask } from '../../tasks/blocks.ts';

test('ee_delta: zero actions hold the tool still, dz moves it up by the asked amount', async () => {
  const env = await createEnv(blocksTask, { actionMode: 'ee_delta' });
  const start = env.reset({ seed: 2 }).info.state.ee;
  let s = start;
  for (let i = 0; i < 30; i++) s = env.step([0, 0, 0, 0, 0, 0, 0.04]).info.state.ee;
  assert.ok(Math.hypot(...s.p.map((x, k) => x - start.p[k])) < 1e-3, 'held position');
  assert.ok(quatAngle(s.q, start.q) < 2e-3, 'held orientation');
  for (let i = 0; i < 10; i++) env.step([0, 0, 0.005, 0, 0, 0, 0.04]);
  for (let i = 0; i < 30; i++) s = env.step([0, 0, 0, 0, 0, 0, 0.04]).info.state.ee;
  assert.ok(Math.abs(s.p[2] - start.p[2] - 0.05) < 1e-3, `rose ${s.p[2] - start.p[2]}`);
  assert.ok(Math.hypot(s.p[0] - start.p[0], s.p[1] - start.p[1]) < 1e-3);
  env.free();
});

test('ee_delta: oversized deltas are clamped to the per-step limits and reported', async () => {
  const env = await createEnv(blocksTask, { actionMode: 'ee_delta' });
  env.reset({ seed: 2 });
  const r = env.step([0.5, 0, -0.001, 0, 0.3, 0, 0.04]);
  assert.deepEqual(r.info.clamped, ['dx', 'dpitch']);
  assert.deepEqual(r.info.clampedAction.slice(0, 6), [0.02, 0, -0.001, 0, 0.1, 0]);
  // Pushing far out of reach ends in IK failure, reported as 'ee_pose'.
  let last = r;
  for (let i = 0; i < 60; i++) last = env.step([0.02, 0, 0, 0, 0, 0, 0.04]);
  assert.ok(last.info.clamped.includes('ee_pose'));
  env.free();
});

test('the observation hook attaches images without sim rendering anything', async () => {
  const env = await createEnv(blocksTask, { cameras: [{ name: 'eye_side', width: 2, height: 1 }] });
  assert.equal(env.reset({ seed: 0 }).obs.images, undefined);
  env.setObservationHook((state, e) => ({
    [e.config.cameras[0].name]: { width: 2, height: 1, rgb: Uint8Array.from([state.step, 0, 0, 0, 0, 0]) },
  }));
  const r = env.step([...env.state().q, 0.04]);
  assert.equal(r.obs.images!.eye_side.rgb[0], 1);
  env.free();
});

test('robot spec and link visuals are available offline and match the state link names', async () => {
  const spec = robotSpec('airbot_play');
  assert.deepEqual(spec.armJoints.map((j) => j.name), ['joint1', 'joint2', 'joint3', 'joint4', 'joint5', 'joint6']);
  assert.ok(spec.armJoints.every((j) => j.lower < j.upper && j.velocity > 0 && j.effort > 0));
  assert.deepEqual(spec.gripper, { min: 0, max: 0.04, force: 7.5 });
  const env = await createEnv(blocksTask);
  const links = Object.keys(env.reset({ seed: 0 }).info.state.links);
  assert.deepEqual(robotLinkVisuals('airbot_play').map((v) => v.link).sort(), links.sort());
  assert.ok(robotLinkVisuals('airbot_play').every((v) => v.colliders.length > 0));
  env.free();
});
