/**
 * Constructed states for the near-miss texts of the pick-and-place stage kinds: each near miss must
 * fail its stage's predicate while the positive state passes. (Before, a block slipping at
 * 0.16 m/s and tilted 34 degrees counted as settled.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { quatFromAxisAngle } from '../../sim/math.ts';
import type { Vec3 } from '../../sim/types.ts';
import { graspStage, liftStage, settleStage, type PickPlaceSpec } from '../../tasks/stagekit.ts';
import { makeState, pinch, pose } from './fixtures.ts';

const HALF = 0.0125;
const REST_Z = 0.7 + HALF;
const SPEC: PickPlaceSpec = {
  object: 'block',
  noun: 'the block',
  targetNoun: 'the plate',
  halfWidth: HALF,
  restZ: REST_Z,
  graspOffset: [0, 0, 0.01],
  hoverHeight: 0.1,
  liftHeight: 0.07,
  target: () => [0.3, 0.1, REST_Z],
  placeTolXY: 0.015,
};
const DOWN = quatFromAxisAngle([1, 0, 0], Math.PI);

/** The block at height z with the tool at its grasp point, squeezed by both fingers. */
function held(opts: { z?: number; vel?: Vec3; eeVel?: Vec3; tiltDeg?: number; contacts?: ReturnType<typeof pinch>; gripper?: number } = {}) {
  const z = opts.z ?? REST_Z;
  const q = quatFromAxisAngle([1, 0, 0], ((opts.tiltDeg ?? 0) * Math.PI) / 180);
  const state = makeState({
    objects: { block: pose([0.2, 0, z], q) },
    ee: pose([0.2, 0, z + 0.01], DOWN),
    gripper: opts.gripper ?? HALF + 0.002,
    contacts: opts.contacts ?? pinch('block'),
    objectVel: { block: opts.vel ?? [0, 0, 0] },
  });
  state.eeVel = opts.eeVel ?? [0, 0, 0];
  return state;
}

test('settle: held still and upright passes; lifted together with the hand still passes', () => {
  const settle = settleStage('settle_block', SPEC);
  assert.equal(settle.done(held()), true);
  assert.equal(settle.done(held({ z: REST_Z + 0.02, vel: [0, 0, 0.15], eeVel: [0, 0, 0.15] })), true);
});

test('settle near misses fail: slipping out, touched but not grasped, pinched by an edge and tilting', () => {
  const settle = settleStage('settle_block', SPEC);
  const [slipping, touching, tilting] = settle.texts.nearMisses;
  assert.match(slipping, /slipping/);
  // Slipping: the block moves down out of a still hand at 0.16 m/s (it used to count: it was
  // "above its rest height").
  assert.equal(settle.done(held({ z: REST_Z + 0.02, vel: [0, 0.05, -0.16] })), false, slipping);
  // The hand rises and the block stays behind.
  assert.equal(settle.done(held({ z: REST_Z + 0.02, vel: [0, 0, 0], eeVel: [0, 0, 0.16] })), false, slipping);
  assert.match(touching, /touching/);
  assert.equal(settle.done(held({ contacts: [{ link: 'left_finger', object: 'block', impulse: 0.01 }], gripper: 0.03 })), false, touching);
  assert.match(tilting, /tilting/);
  assert.equal(settle.done(held({ tiltDeg: 34 })), false, tilting);
  assert.equal(settle.done(held({ tiltDeg: 8 })), false, tilting);
});

test('grasp near misses fail: touching without grasping, closed on air, one finger', () => {
  const grasp = graspStage('grasp_block', SPEC);
  assert.equal(grasp.done(held()), true);
  const [touching, air, oneFinger] = grasp.texts.nearMisses;
  assert.equal(grasp.done(held({ contacts: [{ link: 'right_finger', object: 'block', impulse: 0.01 }], gripper: 0.03 })), false, touching);
  assert.equal(grasp.done(held({ contacts: [], gripper: 0 })), false, air);
  assert.equal(grasp.done(held({ contacts: [{ link: 'left_finger', object: 'block', impulse: 0.01 }] })), false, oneFinger);
});

test('lift near misses fail: the block stays behind, only just off the table, dangling from one finger', () => {
  const lift = liftStage('lift_block', SPEC);
  assert.equal(lift.done(held({ z: REST_Z + 0.06 })), true);
  const [behind, justOff, dangling] = lift.texts.nearMisses;
  const stayed = held({ z: REST_Z, contacts: [] });
  stayed.ee = pose([0.2, 0, REST_Z + 0.08], DOWN);
  assert.equal(lift.done(stayed), false, behind);
  assert.equal(lift.done(held({ z: REST_Z + 0.01 })), false, justOff);
  assert.equal(lift.done(held({ z: REST_Z + 0.06, contacts: [{ link: 'left_finger', object: 'block', impulse: 0.01 }] })), false, dangling);
});

test('finger links come from the contacts (marked by the env from the robot description), not from their names', () => {
  const grasp = graspStage('grasp_block', SPEC);
  const pads = [
    { link: 'pad_a', object: 'block', impulse: 0.01, finger: true },
    { link: 'pad_b', object: 'block', impulse: 0.01, finger: true },
  ];
  assert.equal(grasp.done(held({ contacts: pads })), true);
  // The same links not marked as fingers (a wrist and a forearm touching) are no grasp.
  assert.equal(grasp.done(held({ contacts: pads.map((c) => ({ ...c, finger: false })) })), false);
});
