/**
 * Revolute joint ranges are held by the solver (an impulse-joint stop per joint, sim/physics.ts),
 * not only by the controller. Before, a contact could drive a wrist past its range faster than its
 * 8 N m actuator could brake: random end-effector deltas (seed 17) struck the table with link6 and
 * joint4 ended 0.060 rad past its range (a simFault).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEnv } from '../../sim/env.ts';
import { randomPolicy } from '../../sim/explore.ts';
import { getTask } from '../../tasks/index.ts';

interface CtrlView {
  q: Float64Array;
  qd: Float64Array;
  apply(): void;
  read(): void;
  applyGeneralized(g: number[]): void;
}
interface PwView {
  step(): void;
}

test('random end-effector deltas that strike the table with the wrist keep joint4 in its range (seed 17)', async () => {
  const env = await createEnv(getTask('stack'), { actionMode: 'ee_delta', maxSteps: 200 });
  let r = env.reset({ seed: 17 });
  const robot = env.robot;
  const arm = robot.armJoints.map((n) => robot.joints.find((j) => j.name === n)!.limit!);
  const policy = randomPolicy('random_ee_delta', env, 18);
  let excess = 0;
  let tableContact = false;
  for (let t = 0; t < 200; t++) {
    const res = env.step(policy(r.info.state));
    r = { obs: res.obs, info: res.info };
    const s = res.info.state;
    s.q.forEach((v, i) => (excess = Math.max(excess, arm[i].lower - v, v - arm[i].upper)));
    if (s.contacts.some((c) => c.object === 'table')) tableContact = true;
    assert.equal(res.info.simFault, undefined, `step ${t}: ${res.info.simFault}`);
    if (res.terminated || res.truncated) break;
  }
  assert.ok(tableContact, 'the episode no longer strikes the table: it does not test the case');
  assert.ok(excess < 0.01, `a joint ${excess.toFixed(4)} rad past its range`);
  env.free();
});

for (const [joint, sign] of [
  [3, -1],
  [4, 1],
  [5, 1],
  [1, -1],
] as const) {
  test(`joint${joint + 1} driven into its ${sign > 0 ? 'upper' : 'lower'} end by a torque beyond its actuator stops at the end`, async () => {
    const env = await createEnv(getTask('stack'), { actionMode: 'joint' });
    env.reset({ seed: 0 });
    const lim = env.robot.joints.find((j) => j.name === env.robot.armJoints[joint])!.limit!;
    const ctrl = (env as unknown as { ctrl: CtrlView }).ctrl;
    const pw = (env as unknown as { pw: PwView }).pw;
    const gen = [0, 0, 0, 0, 0, 0, 0, 0];
    const end = sign > 0 ? lim.upper : lim.lower;
    let reached = Infinity;
    let excess = 0;
    for (let s = 0; s < 720; s++) {
      // 1.5x the actuator's limit, past the controller, up to 1.5x the joint's speed limit (the
      // health check's bound): the joint arrives at its end fast and only the stop can hold it.
      gen[joint] = sign * ctrl.qd[joint] < 1.5 * lim.velocity ? sign * 1.5 * lim.effort : 0;
      ctrl.applyGeneralized(gen);
      // The stops follow the joint values each step (they are placed by the controller's apply()).
      (env as unknown as { pw: { updateStops?(q: ArrayLike<number>): void } }).pw.updateStops?.(ctrl.q);
      pw.step();
      ctrl.read();
      const q = ctrl.q[joint];
      reached = Math.min(reached, Math.abs(q - end));
      excess = Math.max(excess, sign * (q - end));
    }
    // The whole range is free (the stop sits at the end, not at pi from the build pose)...
    assert.ok(reached < 0.01, `joint${joint + 1} came no closer than ${reached.toFixed(3)} rad to its end ${end}`);
    // ...and the end holds.
    assert.ok(excess < 0.05, `joint${joint + 1} went ${excess.toFixed(3)} rad past its end ${end}`);
    env.free();
  });
}
