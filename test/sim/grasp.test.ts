import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEnv } from '../../sim/env.ts';
import { poseInv, poseApply } from '../../sim/math.ts';
import type { Pose, SimState } from '../../sim/types.ts';
import { BLOCK_HALF, TABLE_TOP, blocksTask, topDownGrip } from '../../tasks/blocks.ts';
import { runExpertEpisode } from '../../tasks/rollout.ts';

test('a scripted grasp lifts a 4 cm block 10 cm and holds it 3 s with < 2 mm slip', async () => {
  const env = await createEnv(blocksTask);
  env.reset({ seed: 7 });
  const tools = env.expertTools();
  const block0 = env.state().objects.block_red;
  let q = env.state().q.slice();
  let state: SimState = env.state();
  // Move the tool along a straight line to `goal` at 0.2 m/s, then wait `hold` seconds.
  const moveTo = (goal: Pose, gripper: number, hold: number) => {
    const start = tools.fk(q);
    const dist = Math.hypot(...goal.p.map((x, i) => x - start.p[i]));
    const n = Math.max(1, Math.ceil(dist / (0.2 * tools.controlDt)));
    for (let k = 1; k <= n; k++) {
      const t = k / n;
      const p = start.p.map((x, i) => x + t * (goal.p[i] - x)) as Pose['p'];
      const r = tools.ik({ p, q: goal.q }, q);
      q = r.q;
      state = env.step([...q, gripper]).info.state;
    }
    for (let k = 0; k < Math.round(hold / tools.controlDt); k++) state = env.step([...q, gripper]).info.state;
  };
  const down = topDownGrip(Math.atan2(2 * (block0.q[3] * block0.q[2]), 1 - 2 * block0.q[2] ** 2));
  const graspZ = TABLE_TOP + BLOCK_HALF + 0.004;
  moveTo({ p: [block0.p[0], block0.p[1], graspZ + 0.1], q: down }, 0.04, 0.2);
  moveTo({ p: [block0.p[0], block0.p[1], graspZ], q: down }, 0.04, 0.2);
  moveTo({ p: [block0.p[0], block0.p[1], graspZ], q: down }, 0, 0.4);
  moveTo({ p: [block0.p[0], block0.p[1], graspZ + 0.1], q: down }, 0, 0.2);
  const lifted = state.objects.block_red.p[2] - block0.p[2];
  assert.ok(lifted > 0.095, `block lifted ${lifted.toFixed(4)} m`);
  const inTool = (s: SimState) => poseApply(poseInv(s.ee), s.objects.block_red.p);
  const ref = inTool(state);
  let slip = 0;
  const steps = Math.round(3 / tools.controlDt);
  for (let k = 0; k < steps; k++) {
    state = env.step([...q, 0]).info.state;
    const p = inTool(state);
    slip = Math.max(slip, Math.hypot(p[0] - ref[0], p[1] - ref[1], p[2] - ref[2]));
  }
  assert.ok(slip < 0.002, `slip ${(slip * 1000).toFixed(3)} mm`);
  assert.ok(state.objects.block_red.p[2] - block0.p[2] > 0.095, 'block still up after 3 s');
  assert.ok(state.contacts.some((c) => c.link === 'left_finger' && c.object === 'block_red'));
  assert.ok(state.contacts.some((c) => c.link === 'right_finger' && c.object === 'block_red'));
  env.free();
});

test('the scripted expert places the block in both action modes', async () => {
  for (const actionMode of ['joint', 'ee_delta'] as const) {
    const env = await createEnv(blocksTask, { actionMode });
    const result = runExpertEpisode(env, blocksTask, 11);
    assert.ok(result.success, `expert failed in ${actionMode} mode: ${JSON.stringify(result)}`);
    env.free();
  }
});
