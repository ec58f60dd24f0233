import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Controller, multibodyProbe } from '../../sim/control.ts';
import { fnv1a64, loadRapier } from '../../sim/env.ts';
import { PhysicsWorld } from '../../sim/physics.ts';
import { Rng } from '../../sim/rng.ts';
import { getRobot } from '../../sim/robot/index.ts';
import { blocksTask } from '../../tasks/blocks.ts';

function bodyHash(pw: PhysicsWorld): string {
  const vals: number[] = [];
  for (const b of [...pw.linkBodies, ...pw.objectBodies]) {
    const t = b.translation();
    const r = b.rotation();
    const v = b.linvel();
    const w = b.angvel();
    vals.push(t.x, t.y, t.z, r.x, r.y, r.z, r.w, v.x, v.y, v.z, w.x, w.y, w.z);
  }
  return fnv1a64(new Uint8Array(Float64Array.from(vals).buffer));
}

test('PhysicsWorld.step (raw pipeline) is bit-identical to World.step', async () => {
  const R = await loadRapier();
  const scene = blocksTask.buildScene(blocksTask.randomize(new Rng(4)));
  const layout = { scene, physicsHz: 240, solverIterations: 2 };
  const probe = multibodyProbe(R, 2, 1 / 240);
  const gains = { armWn: 40, fingerWn: 60, gripperForce: 15, forceGain: probe.gain, jointDamping: probe.damping, dt: 1 / 240 };
  const run = (fast: boolean) => {
    const pw = PhysicsWorld.build(R, getRobot('airbot_play'), layout);
    const c = new Controller(pw, gains);
    for (let i = 0; i < 400; i++) {
      c.qTarget[1] = scene.initialQ![1] + 0.3 * Math.sin(i / 50);
      c.gripperTarget = i < 200 ? 0.01 : 0.04;
      c.apply();
      if (fast) pw.step();
      else pw.world.step();
      c.read();
    }
    const h = bodyHash(pw);
    pw.free();
    return h;
  };
  assert.equal(run(true), run(false));
});

test('the world is built at the scene initial joints: nothing moves in the first step', async () => {
  const R = await loadRapier();
  const scene = blocksTask.buildScene(blocksTask.randomize(new Rng(1)));
  const pw = PhysicsWorld.build(R, getRobot('airbot_play'), { scene, physicsHz: 240, solverIterations: 2 });
  const before = pw.linkBodies.map((b) => b.translation());
  pw.step();
  pw.linkBodies.forEach((b, i) => {
    const t = b.translation();
    assert.ok(Math.hypot(t.x - before[i].x, t.y - before[i].y, t.z - before[i].z) < 1e-6, pw.links[i].name);
  });
  pw.free();
});
