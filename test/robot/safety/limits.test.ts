/** The pure limit functions and the safety state machine without a simulator. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDeployConfig } from '../../../robot/config.ts';
import { accelerationScale, largestGood, nonFiniteFields, stepScale } from '../../../robot/safety/limits.ts';
import { SafetyLayer } from '../../../robot/safety/layer.ts';
import { specMismatches } from '../../../robot/safety/spec_check.ts';
import { robotSpecFor } from '../../../robot/spec.ts';
import type { RobotObservation } from '../../../robot/types.ts';

const spec = robotSpecFor('airbot_play');
const names = spec.jointNames;

describe('limit functions', () => {
  it('finds the binding joint for a common step scale', () => {
    assert.deepEqual(stepScale([0.1, -0.4, 0.05], [0.2, 0.2, 0.2]), { scale: 0.5, joint: 1 });
    assert.deepEqual(stepScale([0.1, 0.1], [0.2, 0.2]), { scale: 1, joint: -1 });
  });

  it('finds the largest acceleration-feasible scale, or none', () => {
    // From rest, 1 rad/s^2, dt 0.1: |s * d / dt| <= 0.1 -> s <= 0.1 * 0.1 / d.
    assert.ok(Math.abs((accelerationScale([0.1, 0.05], [0, 0], [1, 1], 0.1, 1) as number) - 0.1) < 1e-12);
    // A joint moving at 1 rad/s asked to stand still cannot stop in one step with a common factor.
    assert.equal(accelerationScale([0.1, 0], [0, 1], [1, 1], 0.1, 1), null);
  });

  it('names every non-finite field', () => {
    assert.deepEqual(nonFiniteFields([0, Number.NaN, 0, 0, 0, 0, Number.POSITIVE_INFINITY], names).map((f) => f.field), ['joint2', 'gripper']);
  });

  it('bisects to the edge of a good interval', () => {
    assert.ok(Math.abs(largestGood((t) => t <= 0.3, 20) - 0.3) < 1e-5);
    assert.equal(largestGood(() => true), 1);
  });
});

describe('spec check', () => {
  const policy = { jointNames: [...names], limits: spec.limits.map((l) => ({ ...l })), cameras: [{ name: 'eye_side', width: 64, height: 64 }] };
  it('lists every difference in names, limits and cameras', () => {
    const robot = { ...spec, cameras: [{ name: 'eye_side', width: 128, height: 64 }] };
    const limits = policy.limits.map((l, i) => (i === 2 ? { ...l, upper: l.upper + 0.1 } : l));
    const problems = specMismatches(robot, { ...policy, limits }, 1e-3);
    assert.equal(problems.length, 2);
    assert.match(problems[0], /joint3 upper limit/);
    assert.match(problems[1], /eye_side' is 128x64 on the robot but 64x64/);
    assert.match(specMismatches(spec, policy, 1e-3)[0], /camera 'eye_side' \(64x64\) is missing/);
  });
});

describe('SafetyLayer', () => {
  const obs = (t: number, q = [0, -0.5, 0.9, 0, 0, 0]): RobotObservation => ({ stamp: t, seq: Math.round(t * 1000), q, qd: [0, 0, 0, 0, 0, 0], gripper: 0.01 });
  const inputs = (t: number) => ({ estop: false, deadmanStamp: t });
  const config = parseDeployConfig({ safety: { workspace: { enabled: false }, eeJump: { enabled: false } } }).safety;

  it('holds at the measured start for the start-up period, then passes commands', () => {
    const layer = new SafetyLayer({ spec, config, dt: 1 / 60 });
    layer.begin(obs(0), inputs(0), 0);
    const a = [0.01, -0.5, 0.9, 0, 0, 0, 0.01];
    const early = layer.decide({ now: 0.5, obs: obs(0.5), inputs: inputs(0.5), action: a, basisStamp: 0.5 });
    assert.equal(early.reason, 'startup');
    assert.deepEqual(early.sent, [0, -0.5, 0.9, 0, 0, 0, 0.01]);
    const later = layer.decide({ now: 1.01, obs: obs(1.01), inputs: inputs(1.01), action: a, basisStamp: 1.01 });
    assert.equal(later.source, 'policy');
    assert.ok(later.sent[0] > 0 && later.sent[0] <= 0.01);
  });

  it('refuses to start when moving, outside limits, or e-stopped, listing each', () => {
    const layer = new SafetyLayer({ spec, config, dt: 1 / 60 });
    const bad = { ...obs(0, [0, 1, 0.9, 0, 0, 0]), qd: [0.5, 0, 0, 0, 0, 0] };
    const problems = layer.startProblems(bad, { estop: true, deadmanStamp: 0 });
    assert.equal(problems.length, 3);
    assert.match(problems.join('\n'), /e-stop/);
    assert.match(problems.join('\n'), /joint2 = 1.0000 rad is outside its limits/);
    assert.match(problems.join('\n'), /joint1 is moving at 0.500 rad\/s/);
  });

  it('refuses a wrongly sized action', () => {
    const layer = new SafetyLayer({ spec, config: { ...config, startup: { ...config.startup, holdS: 0 } }, dt: 1 / 60 });
    layer.begin(obs(0), inputs(0), 0);
    const d = layer.decide({ now: 0.01, obs: obs(0.01), inputs: inputs(0.01), action: [0, 0, 0], basisStamp: 0.01 });
    assert.deepEqual(d.refusals.map((f) => f.check), ['shape']);
  });

  it('passes everything through untouched when every item is switched off (except NaN, always refused)', () => {
    const off = parseDeployConfig({
      safety: Object.fromEntries(['finiteCheck', 'positionLimits', 'velocityLimits', 'accelerationLimits', 'maxStep', 'workspace', 'eeJump', 'watchdog', 'estop', 'deadman', 'startup', 'specCheck'].map((k) => [k, { enabled: false }])),
    }).safety;
    const layer = new SafetyLayer({ spec, config: off, dt: 1 / 60 });
    layer.begin(obs(0), { estop: true, deadmanStamp: null }, 0);
    const far = [3, -3, 3, 3, 3, 3, 0.5];
    const d = layer.decide({ now: 10, obs: obs(0), inputs: { estop: true, deadmanStamp: null }, action: far, basisStamp: 0 });
    assert.deepEqual(d.sent, far);
    const nan = layer.decide({ now: 10, obs: obs(0), inputs: { estop: false, deadmanStamp: null }, action: [Number.NaN, 0, 0, 0, 0, 0, 0], basisStamp: 0 });
    assert.equal(nan.reason, 'refused');
  });
});
