/**
 * The configured grip force is the force the fingers squeeze with once they stall on an object,
 * measured from the solver's contact impulses; and a grasp survives fast arm motion.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEnv, type SimEnv } from '../../sim/env.ts';
import { poseApply, poseInv } from '../../sim/math.ts';
import type { PhysicsWorld } from '../../sim/physics.ts';
import type { Pose, SimState } from '../../sim/types.ts';
import { BLOCK_HALF, TABLE_TOP, blocksTask, topDownGrip } from '../../tasks/blocks.ts';

/** Grasp block_red from above and lift it 10 cm; returns a mover for further straight-line moves. */
async function graspBlock(config: { gripperForce?: number; graspSubsteps?: number }) {
  const env = await createEnv(blocksTask, config);
  env.reset({ seed: 7 });
  const tools = env.expertTools();
  const block0 = env.state().objects.block_red;
  let q = env.state().q.slice();
  let state: SimState = env.state();
  const moveTo = (goal: Pose, gripper: number, hold: number, speed = 0.2, each?: (s: SimState) => void) => {
    const start = tools.fk(q);
    const dist = Math.hypot(...goal.p.map((x, i) => x - start.p[i]));
    const n = Math.max(1, Math.ceil(dist / (speed * tools.controlDt)));
    for (let k = 1; k <= n; k++) {
      const t = k / n;
      const p = start.p.map((x, i) => x + t * (goal.p[i] - x)) as Pose['p'];
      q = tools.ik({ p, q: goal.q }, q).q;
      state = env.step([...q, gripper]).info.state;
      each?.(state);
    }
    for (let k = 0; k < Math.round(hold / tools.controlDt); k++) {
      state = env.step([...q, gripper]).info.state;
      each?.(state);
    }
    return state;
  };
  const down = topDownGrip(Math.atan2(2 * (block0.q[3] * block0.q[2]), 1 - 2 * block0.q[2] ** 2));
  const graspZ = TABLE_TOP + BLOCK_HALF + 0.004;
  moveTo({ p: [block0.p[0], block0.p[1], graspZ + 0.1], q: down }, 0.04, 0.2);
  moveTo({ p: [block0.p[0], block0.p[1], graspZ], q: down }, 0.04, 0.2);
  moveTo({ p: [block0.p[0], block0.p[1], graspZ], q: down }, 0, 0.4);
  moveTo({ p: [block0.p[0], block0.p[1], graspZ + 0.1], q: down }, 0, 0.5);
  return { env, state: () => state, moveTo, down, block0 };
}

/** Normal force (N) each finger presses block_red with in the last physics step: summed contact impulses / dt. */
function fingerForces(env: SimEnv): Record<string, number> {
  const pw = (env as unknown as { pw: PhysicsWorld }).pw;
  // The length of the last physics step (shorter than 1 / physicsHz while the fingers pinch).
  const dt = pw.world.timestep;
  assert.ok(Math.abs(dt - 1 / (env.config.physicsHz * env.config.graspSubsteps)) < 1e-9, `last physics step ${dt} s`);
  const out: Record<string, number> = {};
  for (const h of pw.robotColliderHandles) {
    const link = pw.colliderOwner.get(h)!.name;
    const c = pw.world.getCollider(h);
    pw.world.contactPairsWith(c, (other) => {
      if (pw.colliderOwner.get(other.handle)?.name !== 'block_red') return;
      pw.world.contactPair(c, other, (m) => {
        for (let i = 0; i < m.numContacts(); i++) out[link] = (out[link] ?? 0) + m.contactImpulse(i) / dt;
      });
    });
  }
  return out;
}

for (const force of [5, 10, 20]) {
  test(`gripperForce ${force} N: a stalled finger squeezes the held block with ${force} N (within 15%)`, async () => {
    const g = await graspBlock({ gripperForce: force });
    const lifted = g.state().objects.block_red.p[2] - g.block0.p[2];
    assert.ok(lifted > 0.09, `block lifted only ${lifted.toFixed(3)} m`);
    const f = fingerForces(g.env);
    // The env marks finger contacts from the robot description (finger joints' links).
    const onBlock = g.state().contacts.filter((c) => c.object === 'block_red');
    assert.deepEqual(onBlock.filter((c) => c.finger).map((c) => c.link).sort(), ['left_finger', 'right_finger']);
    for (const link of ['left_finger', 'right_finger']) {
      const got = f[link] ?? 0;
      assert.ok(Math.abs(got - force) <= 0.15 * force, `${link} squeezes with ${got.toFixed(2)} N, configured ${force} N`);
    }
    g.env.free();
  });
}

/** Largest displacement (m) of block_red in the tool frame while carried through seven fast legs. */
async function dynamicSlip(config: { graspSubsteps?: number }): Promise<number> {
  const g = await graspBlock(config);
  const inTool = (s: SimState) => poseApply(poseInv(s.ee), s.objects.block_red.p);
  const ref = inTool(g.state());
  const c = g.state().ee.p;
  let slip = 0;
  const track = (s: SimState) => {
    const p = inTool(s);
    const d = Math.hypot(p[0] - ref[0], p[1] - ref[1], p[2] - ref[2]);
    slip = Math.max(slip, d);
  };
  // Seven straight legs (six reversals of direction) of 10 cm at 0.5 m/s, no pause between legs.
  const legs: Array<[number, number, number]> = [[0.1, 0, 0], [-0.1, 0, 0], [0, 0.1, 0], [0, -0.1, 0], [0, 0, 0.06], [0, 0, -0.06], [0.1, 0, 0]];
  let p: [number, number, number] = [c[0], c[1], c[2]];
  for (const d of legs) {
    p = [p[0] + d[0], p[1] + d[1], p[2] + d[2]];
    g.moveTo({ p, q: g.down }, 0, 0, 0.5, track);
  }
  g.moveTo({ p, q: g.down }, 0, 0.3, 0.5, track);
  g.env.free();
  return slip;
}

test('a grasped block moved at 0.5 m/s tool speed with six direction changes slips <= 2 mm', async () => {
  // Measured 1.43 mm (2.5 mm with graspSubsteps 1, the same at 7.5, 15 and 30 N of grip: the
  // creep is the contact solver's timestep error, not a lack of grip force).
  const slip = await dynamicSlip({});
  assert.ok(slip <= 0.002, `slip ${(slip * 1000).toFixed(2)} mm`);
});

test('the finer grasp timestep is what holds the block: without it the same motion slips more', async () => {
  const refined = await dynamicSlip({});
  const plain = await dynamicSlip({ graspSubsteps: 1 });
  assert.ok(plain > refined + 0.0005, `slip ${(plain * 1000).toFixed(2)} mm without, ${(refined * 1000).toFixed(2)} mm with`);
});

test('a snapshot taken while the fingers pinch restores bit-identically (the finer timestep is state)', async () => {
  const g = await graspBlock({});
  const env = g.env;
  const pinched = env.state().contacts.filter((c) => c.object === 'block_red' && c.finger).length;
  assert.equal(pinched, 2, 'both fingers hold the block');
  const tools = env.expertTools();
  const q0 = env.state().q.slice();
  // A fast sideways carry, then the block let go: the run switches between the two timesteps.
  const actions: number[][] = [];
  for (let k = 1; k <= 30; k++) {
    const p = env.state().ee.p.slice() as Pose['p'];
    p[0] += 0.004 * k;
    actions.push([...tools.ik({ p, q: g.down }, q0).q, k < 20 ? 0 : 0.04]);
  }
  const snap = env.snapshot();
  for (const a of actions) env.step(a);
  const straight = env.stateHash();
  env.restore(snap);
  for (let k = 0; k < 10; k++) env.step([...q0, 0.04]);
  env.restore(snap);
  for (const a of actions) env.step(a);
  assert.equal(env.stateHash(), straight);
  env.free();
});
