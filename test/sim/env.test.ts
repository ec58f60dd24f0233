import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ActionError, createEnv } from '../../sim/env.ts';
import { getRobot } from '../../sim/robot/index.ts';
import { blocksTask } from '../../tasks/blocks.ts';

test('reset builds the blocks scene with the arm at its initial joints', async () => {
  const env = await createEnv(blocksTask);
  const { obs, info } = env.reset({ seed: 3 });
  const robot = getRobot('airbot_play');
  assert.deepEqual(Object.keys(info.state.links).sort(), robot.links.map((l) => l.name).sort());
  assert.deepEqual(Object.keys(info.state.objects).sort(), ['block_blue', 'block_green', 'block_red', 'table', 'target']);
  const q0 = blocksTask.buildScene(env.randomization!).initialQ!;
  info.state.q.forEach((q, i) => assert.ok(Math.abs(q - q0[i]) < 1e-5, `joint ${i}: ${q} vs ${q0[i]}`));
  assert.equal(obs.proprio.length, 7);
  assert.ok(Math.abs(info.state.gripper - 0.04) < 1e-6);
  env.free();
});

test('joint targets are tracked by the computed-torque controller', async () => {
  const env = await createEnv(blocksTask);
  const { info } = env.reset({ seed: 1 });
  const target = info.state.q.map((q, i) => q + (i % 2 === 0 ? 0.2 : -0.15));
  let last = info;
  for (let i = 0; i < 120; i++) last = env.step([...target, 0.02]).info;
  last.state.q.forEach((q, i) => assert.ok(Math.abs(q - target[i]) < 2e-3, `joint ${i + 1}: ${q} vs ${target[i]}`));
  assert.ok(Math.abs(last.state.gripper - 0.02) < 1e-3, `gripper ${last.state.gripper}`);
  // The measured link poses agree with forward kinematics of the measured joints.
  const fk = env.kinematics().fk(last.state.q);
  const d = Math.hypot(...fk.p.map((x, i) => x - last.state.ee.p[i]));
  assert.ok(d < 1e-4, `fk vs physics tcp ${d}`);
  env.free();
});

test('a NaN or wrong-length action is refused with an error naming the field', async () => {
  const env = await createEnv(blocksTask);
  env.reset({ seed: 0 });
  const q = env.state().q;
  assert.throws(() => env.step([q[0], q[1], NaN, q[3], q[4], q[5], 0.04]), (e: unknown) => e instanceof ActionError && e.field === 'joint3' && /joint3/.test(e.message) && /finite/.test(e.message));
  assert.throws(() => env.step([...q, Infinity]), (e: unknown) => e instanceof ActionError && e.field === 'gripper');
  assert.throws(() => env.step([0, 0, 0]), (e: unknown) => e instanceof ActionError && /expected 7 numbers/.test((e as Error).message) && /got 3/.test((e as Error).message));
  env.free();
});

test('targets beyond joint limits are clamped and reported in info', async () => {
  const env = await createEnv(blocksTask);
  env.reset({ seed: 0 });
  const q = env.state().q;
  const r = env.step([q[0], 5, q[2], q[3], q[4], -9, 0.07]);
  assert.deepEqual(r.info.clamped, ['gripper', 'joint2', 'joint6']);
  const lim = getRobot('airbot_play').joints;
  assert.equal(r.info.clampedAction[1], lim.find((j) => j.name === 'joint2')!.limit!.upper);
  assert.equal(r.info.clampedAction[5], lim.find((j) => j.name === 'joint6')!.limit!.lower);
  assert.equal(r.info.clampedAction[6], 0.04);
  env.free();
});

test('stage progress pays only for stages beyond the furthest reached, so a dip earns nothing back', async () => {
  // A task whose ground-truth stage follows a script with dips, on the blocks scene.
  const script = [0, 1, 2, 1, 0, 2, 3, 1, 4, 4];
  const task = {
    ...blocksTask,
    evaluate: (state: Parameters<typeof blocksTask.evaluate>[0], rand: Parameters<typeof blocksTask.evaluate>[1]) => ({
      ...blocksTask.evaluate(state, rand),
      stage: script[Math.min(state.step, script.length - 1)],
      success: false,
      failure: false,
    }),
  };
  const env = await createEnv(task, { rewardScales: { success: 1, stageProgress: 0.5 } });
  try {
    const { info } = env.reset({ seed: 0 });
    const hold = [...info.state.q, info.state.gripper];
    const progress: number[] = [];
    const rewards: number[] = [];
    for (let i = 1; i < script.length; i++) {
      const r = env.step(hold);
      assert.equal(r.info.stage, script[i]);
      progress.push(r.info.rewardTerms.stageProgress);
      rewards.push(r.reward);
    }
    assert.deepEqual(progress, [1, 1, 0, 0, 0, 1, 0, 1, 0]);
    assert.deepEqual(rewards, progress.map((p) => 0.5 * p));
    // After a restore, the furthest stage reached comes back too.
    const snap = env.snapshot();
    env.restore(snap);
    assert.equal(env.step(hold).info.rewardTerms.stageProgress, 0);
  } finally {
    env.free();
  }
});
