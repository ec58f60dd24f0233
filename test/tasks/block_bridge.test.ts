import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../sim/rng.ts';
import { BAR_HALF, CUBE_HALF, HALF_GAP, barSpot, blockBridgeChecks, blockBridgeTask } from '../../tasks/block_bridge.ts';
import type { Pose, SimState } from '../../sim/types.ts';
import { makeState, pinch, pose } from './fixtures.ts';

const START = blockBridgeTask.randomize(new Rng(0)) as { starts: Record<string, [number, number]> };

function initial(): Record<string, Pose> {
  const objects: Record<string, Pose> = { table: pose([0.35, 0, -0.02]), bridge1: pose([0.3, 0, 0]), bridge2: pose([0.3 + HALF_GAP, 0, 0]) };
  for (const [name, [x, y]] of Object.entries(START.starts)) objects[name] = pose([x, y, name.startsWith('bar') ? BAR_HALF[2] : CUBE_HALF]);
  return objects;
}

/** The finished layout: bars at their spots, cubes 1-3 on bar_b, 4-6 on bar_a. */
function finished(): Record<string, Pose> {
  const objects = initial();
  const s0 = makeState({ objects });
  const a = barSpot(s0, 'bar_a');
  const b = barSpot(s0, 'bar_b');
  objects.bar_a = pose(a);
  objects.bar_b = pose(b);
  const level = (bar: number[], l: number): [number, number, number] => [bar[0], bar[1], bar[2] + BAR_HALF[2] + CUBE_HALF + 2 * CUBE_HALF * (l - 1)];
  ['cube_1', 'cube_2', 'cube_3'].forEach((c, i) => (objects[c] = pose(level(b, i + 1))));
  ['cube_4', 'cube_5', 'cube_6'].forEach((c, i) => (objects[c] = pose(level(a, i + 1))));
  return objects;
}

test('block_bridge has 74 stages (2 bars x 10 + 6 cubes x 9), unique names, no colour words', () => {
  assert.equal(blockBridgeTask.stages.length, 74);
  assert.equal(new Set(blockBridgeTask.stages.map((s) => s.name)).size, 74);
  assert.equal(blockBridgeTask.stages[0].name, 'above_bridge_before_bar_a');
  assert.equal(blockBridgeTask.stages[20].name, 'above_cube_1');
  for (const s of blockBridgeTask.stages) for (const t of [s.texts.positive, ...s.texts.nearMisses]) assert.doesNotMatch(t, /\b(green|purple|red|blue)\b/i);
});

test('finished layout succeeds with stage 74; each defect is caught by its own predicate', () => {
  const done = finished();
  const ev = blockBridgeTask.evaluate(makeState({ objects: done, ee: pose([0.2, 0, 0.25]) }), START);
  assert.equal(ev.success, true, JSON.stringify(blockBridgeChecks(makeState({ objects: done }))));
  assert.equal(ev.stage, 74);

  const nudged = { ...done, bridge2: pose([0.3 + HALF_GAP + 0.004, 0, 0]) };
  assert.equal(blockBridgeChecks(makeState({ objects: nudged })).bridgeIntact, false, 'halves 3.4 cm apart');
  const tilt = Math.sin(0.15 / 2);
  const tilted = { ...done, bar_a: pose(done.bar_a.p, [tilt, 0, 0, Math.cos(0.15 / 2)]) };
  assert.equal(blockBridgeChecks(makeState({ objects: tilted })).barsUpright, false, 'bar leaning ~8.6 degrees');
  const offCube = { ...done, cube_3: pose([done.cube_3.p[0] + 0.02, done.cube_3.p[1], done.cube_3.p[2]]) };
  assert.equal(blockBridgeChecks(makeState({ objects: offCube })).cubesStacked, false, 'top cube 2 cm off its tower');
  const c6 = done.cube_6.p;
  const held = makeState({ objects: done, ee: pose([c6[0], c6[1], c6[2] + 0.011]), gripper: CUBE_HALF, contacts: pinch('cube_6') });
  assert.equal(blockBridgeTask.evaluate(held, START).success, false);
});

test('near misses: a bar above its spot but not aligned; a cube touching but not grasped', () => {
  const objects = initial();
  const s0 = makeState({ objects });
  const spot = barSpot(s0, 'bar_a');
  const carry = blockBridgeTask.stages.find((s) => s.name === 'bar_a_above_target')!;
  const heldAt = (dx: number): SimState =>
    makeState({
      objects: { ...objects, bar_a: pose([spot[0] + dx, spot[1], spot[2] + 0.03]) },
      ee: pose([spot[0] + dx, spot[1], spot[2] + 0.045]),
      gripper: BAR_HALF[0],
      contacts: pinch('bar_a'),
    });
  assert.equal(carry.done(heldAt(0.005)), true);
  assert.equal(carry.done(heldAt(0.025)), false);
  const grasp = blockBridgeTask.stages.find((s) => s.name === 'grasp_cube_1')!;
  const c1 = objects.cube_1.p;
  const ee = pose([c1[0], c1[1], c1[2] + 0.011]);
  assert.equal(grasp.done(makeState({ objects, ee, gripper: CUBE_HALF, contacts: pinch('cube_1') })), true);
  assert.equal(grasp.done(makeState({ objects, ee, gripper: CUBE_HALF, contacts: [{ link: 'left_finger', object: 'cube_1', impulse: 0.1 }] })), false);
});

test('stage index follows placed objects; knocking the bridge apart is a failure', () => {
  const done = finished();
  const partial = initial();
  partial.bar_a = done.bar_a;
  partial.bar_b = done.bar_b;
  partial.cube_1 = done.cube_1;
  assert.equal(blockBridgeTask.evaluate(makeState({ objects: partial, ee: pose([0.2, 0, 0.25]) }), START).stage, 29);
  const broken = { ...initial(), bridge2: pose([0.3 + HALF_GAP + 0.02, 0, 0]) };
  assert.equal(blockBridgeTask.evaluate(makeState({ objects: broken }), START).failure, true);
});

test('randomize: +-1 mm around the nominal layout, seeded', () => {
  const a = blockBridgeTask.randomize(new Rng(9)) as { starts: Record<string, [number, number]> };
  const b = blockBridgeTask.randomize(new Rng(10)) as { starts: Record<string, [number, number]> };
  for (const k of Object.keys(a.starts)) {
    assert.ok(Math.abs(a.starts[k][0] - b.starts[k][0]) <= 0.002 && Math.abs(a.starts[k][1] - b.starts[k][1]) <= 0.002);
  }
  assert.notDeepEqual(a, b);
  assert.equal(blockBridgeTask.buildScene(a).objects.length, 11);
});
