/**
 * Physics randomisation: off by default, seeded per episode, within its ranges, applied to the
 * world (object masses, action latency), recorded in the episode header, kept by snapshots.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError, parseEnvConfig } from '../../sim/config.ts';
import { createEnv, type SimEnv } from '../../sim/env.ts';
import type { PhysicsWorld } from '../../sim/physics.ts';
import { episodeHeader } from '../../tasks/rollout.ts';
import { getTask } from '../../tasks/index.ts';

const RANGES = {
  objectMassScale: [0.5, 2] as [number, number],
  objectFrictionScale: [0.7, 1.3] as [number, number],
  jointDamping: [0, 0.5] as [number, number],
  actuatorStrengthScale: [0.8, 1.2] as [number, number],
  actionLatencySteps: [0, 3] as [number, number],
};

function world(env: SimEnv): PhysicsWorld {
  return (env as unknown as { pw: PhysicsWorld }).pw;
}

test('physics randomisation is off by default and absent from the episode header', async () => {
  const task = getTask('stack');
  const env = await createEnv(task);
  env.reset({ seed: 3 });
  assert.equal(env.physicsSample, null);
  assert.equal(episodeHeader(env, task, 3).meta.physics, undefined);
  env.free();
});

test('a seed gives the same draw, within the ranges; the scene layout is the one without randomisation', async () => {
  const task = getTask('stack');
  const plain = await createEnv(task);
  const a = await createEnv(task, { physicsRandomization: RANGES });
  const b = await createEnv(task, { physicsRandomization: RANGES });
  const r0 = plain.reset({ seed: 11 });
  const ra = a.reset({ seed: 11 });
  b.reset({ seed: 11 });
  assert.deepEqual(a.physicsSample, b.physicsSample);
  const s = a.physicsSample!;
  for (const [name, pose] of Object.entries(r0.info.state.objects)) assert.deepEqual(ra.info.state.objects[name].p, pose.p, name);
  for (const v of Object.values(s.objectMassScale)) assert.ok(v >= 0.5 && v <= 2, `mass scale ${v}`);
  for (const v of Object.values(s.objectFrictionScale)) assert.ok(v >= 0.7 && v <= 1.3, `friction scale ${v}`);
  assert.equal(s.jointDamping.length, 6);
  for (const v of s.jointDamping) assert.ok(v >= 0 && v <= 0.5, `damping ${v}`);
  assert.ok(s.actuatorStrengthScale >= 0.8 && s.actuatorStrengthScale <= 1.2);
  assert.ok(Number.isInteger(s.actionLatencySteps) && s.actionLatencySteps >= 0 && s.actionLatencySteps <= 3);
  // Another seed draws differently.
  b.reset({ seed: 12 });
  assert.notDeepEqual(a.physicsSample, b.physicsSample);
  // The masses in the world are the scaled ones.
  const names = world(plain).objectNames;
  names.forEach((name, i) => {
    const m0 = world(plain).objectBodies[i].mass();
    if (m0 === 0) return;
    const m = world(a).objectBodies[i].mass();
    assert.ok(Math.abs(m - m0 * s.objectMassScale[name]) < 1e-6 * m0 + 1e-9, `${name}: ${m} vs ${m0} x ${s.objectMassScale[name]}`);
  });
  // The header records the draw.
  assert.deepEqual(episodeHeader(a, task, 11).meta.physics, s);
  for (const e of [plain, a, b]) e.free();
});

test('action latency: an action takes effect that many control steps later; snapshots keep the queue', async () => {
  const task = getTask('stack');
  const env = await createEnv(task, { physicsRandomization: { actionLatencySteps: [2, 2] } });
  const r = env.reset({ seed: 5 });
  assert.equal(env.physicsSample!.actionLatencySteps, 2);
  const q0 = r.info.state.q.slice();
  const target = q0.map((x, i) => (i === 0 ? x + 0.2 : x));
  const s1 = env.step([...target, 0.04]);
  assert.ok(Math.abs(s1.info.clampedAction[0] - q0[0]) < 1e-9, 'step 1 still holds the initial command');
  const snap = env.snapshot();
  const s2 = env.step([...target, 0.04]);
  assert.ok(Math.abs(s2.info.clampedAction[0] - q0[0]) < 1e-9, 'step 2 still holds the initial command');
  const s3 = env.step([...target, 0.04]);
  assert.ok(Math.abs(s3.info.clampedAction[0] - target[0]) < 1e-9, 'step 3 applies the first action');
  const hash = env.stateHash();
  env.restore(snap);
  env.step([...target, 0.04]);
  env.step([...target, 0.04]);
  assert.equal(env.stateHash(), hash);
  env.free();
});

test('bad physics randomisation ranges are config errors naming the key path', () => {
  assert.throws(
    () => parseEnvConfig({ physicsRandomization: { objectMassScale: [2, 1] } }),
    (e: unknown) => e instanceof ConfigError && e.key === 'physicsRandomization.objectMassScale',
  );
  assert.throws(
    () => parseEnvConfig({ physicsRandomization: { latency: [0, 1] } }),
    (e: unknown) => e instanceof ConfigError && /physicsRandomization\.latency/.test(e.key) && /actionLatencySteps/.test(e.message),
  );
});
