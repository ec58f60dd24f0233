import assert from 'node:assert/strict';
import { test } from 'node:test';
import { quatAngle } from '../../sim/math.ts';
import { Rng } from '../../sim/rng.ts';
import { getRobot, Kinematics } from '../../sim/robot/index.ts';

const base = { p: [0, 0, 0.75] as [number, number, number], q: [0, 0, 0, 1] as [number, number, number, number] };

test('IK reaches 100 random reachable poses within 2 mm and 1 degree, inside the joint limits', () => {
  const robot = getRobot('airbot_play');
  const kin = new Kinematics(robot, base);
  const rng = new Rng(42);
  let failures = 0;
  for (let i = 0; i < 100; i++) {
    // A reachable pose: FK of random joints (kept 0.1 rad inside the limits).
    const qTrue = Array.from({ length: 6 }, (_, k) => rng.uniform(kin.lower[k] + 0.1, kin.upper[k] - 0.1));
    const target = kin.fk(qTrue);
    const r = kin.ik(target, robot.home);
    const got = kin.fk(r.q);
    const pos = Math.hypot(...got.p.map((x, k) => x - target.p[k]));
    const rot = quatAngle(got.q, target.q);
    r.q.forEach((x, k) => assert.ok(x >= kin.lower[k] && x <= kin.upper[k], `joint ${k + 1} ${x} outside limits`));
    if (!(pos < 0.002 && rot < Math.PI / 180)) failures++;
  }
  assert.equal(failures, 0);
});

test('the Jacobian matches finite differences of FK', () => {
  const kin = new Kinematics(getRobot('airbot_play'), base);
  const q = [0.3, -1.0, 1.2, 0.5, -0.7, 0.2];
  const { pose, J } = kin.jacobian(q);
  const h = 1e-6;
  for (let k = 0; k < 6; k++) {
    const qp = q.slice();
    qp[k] += h;
    const p2 = kin.fk(qp);
    for (let r = 0; r < 3; r++) assert.ok(Math.abs((p2.p[r] - pose.p[r]) / h - J[r * 6 + k]) < 1e-4);
  }
});

test('IK for an unreachable pose reports failure and stays inside the limits', () => {
  const kin = new Kinematics(getRobot('airbot_play'), base);
  const r = kin.ik({ p: [2, 0, 0.75], q: [0, 0, 0, 1] }, getRobot('airbot_play').home);
  assert.equal(r.ok, false);
  assert.ok(r.posErr > 0.5);
  r.q.forEach((x, k) => assert.ok(x >= kin.lower[k] && x <= kin.upper[k]));
});
