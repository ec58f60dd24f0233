/**
 * Fault injection: a policy drives the tool at the workspace box walls at full speed, from several
 * directions. Every command the safety layer sends must respect every limit at once: position,
 * velocity, acceleration, step, box and end-effector jump; the box is met by braking in time, not
 * by a sudden stop.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseDeployConfig } from '../../../robot/config.ts';
import { SafetyLayer } from '../../../robot/safety/layer.ts';
import { insideBox } from '../../../robot/safety/limits.ts';
import { baseFrameFk, robotSpecFor } from '../../../robot/spec.ts';

const DT = 1 / 60;
const spec = robotSpecFor('airbot_play');
const fk = baseFrameFk('airbot_play');
const BOX = { min: [0.0, -0.25, 0.1] as [number, number, number], max: [0.5, 0.25, 0.6] as [number, number, number] };
const config = parseDeployConfig({ safety: { workspace: BOX, startup: { holdS: 0 } } });
const START = [0, 0, 0, 0, 0, 0];

/** Joint-space directions that take the tool into different walls of the box. */
const DIRECTIONS: Record<string, number[]> = {
  'joint1 +': [1, 0, 0, 0, 0, 0],
  'joint1 -': [-1, 0, 0, 0, 0, 0],
  'joint2 - (up and out)': [0, -1, 0, 0, 0, 0],
  'joint3 + (up)': [0, 0, 1, 0, 0, 0],
  'joint2 - joint3 +': [0, -1, 1, 0, 0, 0],
  'joint2 - joint3 - (forward)': [0, -1, -0.2, 0, 0, 0],
  'joint1 + joint2 - joint3 +': [1, -1, 1, 0, 0.5, 0],
  'joint1 - joint5 +': [-1, 0, 0.5, 0, 1, 0],
};

function driveAtWall(direction: number[], ticks: number): { sent: number[][]; clamps: string[] } {
  const layer = new SafetyLayer({ spec, config: config.safety, dt: DT, fk });
  let t = 100;
  let q = [...START];
  let qd = [0, 0, 0, 0, 0, 0];
  let seq = 0;
  const obs = () => ({ stamp: t, seq: ++seq, q: [...q], qd: [...qd], gripper: 0.02 });
  const inputs = () => ({ estop: false, deadmanStamp: t });
  layer.begin(obs(), inputs(), t);
  const sent: number[][] = [[...START, 0.02]];
  const clamps: string[] = [];
  for (let k = 0; k < ticks; k++) {
    t += DT;
    // Full speed: ask for a whole radian per tick along the direction.
    const action = [...q.map((x, i) => x + direction[i]), 0.02];
    const d = layer.decide({ now: t, obs: obs(), inputs: inputs(), action, basisStamp: t });
    for (const c of d.clamps) clamps.push(c.check);
    // The arm tracks the command exactly (the worst case for the box: nothing lags behind).
    qd = d.sent.slice(0, 6).map((x, i) => (x - q[i]) / DT);
    q = d.sent.slice(0, 6);
    sent.push(d.sent);
  }
  return { sent, clamps };
}

test('driving at the workspace walls at full speed: every sent command meets every limit', () => {
  const s = config.safety;
  let wallsHit = 0;
  for (const [name, dir] of Object.entries(DIRECTIONS)) {
    const { sent, clamps } = driveAtWall(dir, 120);
    if (clamps.some((c) => c === 'workspace' || c === 'workspace_brake')) wallsHit++;
    for (let k = 1; k < sent.length; k++) {
      const q = sent[k].slice(0, 6);
      const where = `${name}, tick ${k}`;
      const ee = fk(q);
      assert.ok(insideBox(ee, BOX.min, BOX.max), `${where}: tool at [${ee.map((v) => v.toFixed(3))}] is outside the box`);
      if (k >= 2) {
        const eePrev = fk(sent[k - 1].slice(0, 6));
        assert.ok(Math.hypot(ee[0] - eePrev[0], ee[1] - eePrev[1], ee[2] - eePrev[2]) <= s.eeJump.maxStep + 1e-9, `${where}: tool jumped`);
      }
      for (let i = 0; i < 6; i++) {
        const l = spec.limits[i];
        const step = q[i] - sent[k - 1][i];
        assert.ok(q[i] >= l.lower + s.positionLimits.margin - 1e-9 && q[i] <= l.upper - s.positionLimits.margin + 1e-9, `${where}: joint${i + 1} at ${q[i]} outside its limits`);
        assert.ok(Math.abs(step) <= s.maxStep.joint + 1e-9, `${where}: joint${i + 1} stepped ${step} rad`);
        assert.ok(Math.abs(step) / DT <= l.velocity + 1e-6, `${where}: joint${i + 1} at ${(step / DT).toFixed(3)} rad/s over ${l.velocity}`);
        const prevStep = k >= 2 ? sent[k - 1][i] - sent[k - 2][i] : 0;
        const acc = (step - prevStep) / DT / DT;
        assert.ok(Math.abs(acc) <= l.acceleration * (1 + 1e-6) + 1e-6, `${where}: joint${i + 1} accelerates at ${acc.toFixed(2)} rad/s^2, limit ${l.acceleration} (${(Math.abs(acc) / l.acceleration).toFixed(2)}x)`);
      }
    }
  }
  // The test means something only if the tool did reach the walls.
  assert.ok(wallsHit >= 5, `only ${wallsHit} of ${Object.keys(DIRECTIONS).length} directions reached a wall`);
});

test('at the wall the arm comes to rest inside the box and stays there', () => {
  const { sent } = driveAtWall(DIRECTIONS['joint1 +'], 120);
  const last = sent.slice(-10).map((c) => c.slice(0, 6));
  for (let k = 1; k < last.length; k++) for (let i = 0; i < 6; i++) assert.ok(Math.abs(last[k][i] - last[k - 1][i]) < 1e-6, 'still moving at the wall');
});
