/**
 * Fault injection against the sim twin on a fake clock (the safety items of docs/deploy.md): stale data holds
 * within the deadline, NaN/Inf in every field is refused and logged, limit and jump violations are
 * clamped with the action actually sent reported, e-stop and an expired deadman halt, and a robot
 * with other joint names is never started.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { flushMicrotasks } from '../../robot/clock.ts';
import { StartRefusedError } from '../../robot/safety/layer.ts';
import { SpecMismatchError } from '../../robot/safety/spec_check.ts';
import { baseFrameFk, robotSpecFor } from '../../robot/spec.ts';
import { DT, makeRig } from './harness.ts';

const FAST_START = { safety: { startup: { holdS: 0.05 } } };
const NAMES = ['joint1', 'joint2', 'joint3', 'joint4', 'joint5', 'joint6', 'gripper'];
const fk = baseFrameFk('airbot_play');
const spec = robotSpecFor('airbot_play');

/** A policy that drives joint1 at `rate` rad per tick from wherever the robot is. */
function moveJoint1(rate: number) {
  return (obs: { proprio: Float32Array }) => {
    const a = Array.from(obs.proprio);
    a[0] += rate;
    return a;
  };
}

describe('watchdog: stale observations and policy output', () => {
  it('holds (decelerating) within 100 ms of the last fresh observation', async () => {
    const rig = await makeRig(FAST_START);
    rig.policy.next = moveJoint1(0.04);
    await rig.ticks(30);
    assert.equal(rig.decisions.at(-1)?.source, 'policy', 'should be running before the fault');
    const lastFresh = rig.twin.read().stamp;
    rig.twin.inject({ freezeObservations: true });
    const before = rig.decisions.length;
    await rig.ticks(20);
    const after = rig.decisions.slice(before);
    const holds = after.filter((d) => d.reason === 'stale_observation');
    assert.ok(holds.length > 0, 'expected stale_observation holds');
    // The first hold comes no later than the deadline (the watchdog timer fires exactly on it).
    assert.ok(holds[0].t <= lastFresh + 0.1 + 1e-9, `first hold at +${(holds[0].t - lastFresh).toFixed(4)} s`);
    // Nothing from the policy goes out once the data is stale.
    for (const d of after) if (d.t >= lastFresh + 0.1 - 1e-9) assert.notEqual(d.source, 'policy');
    // Decelerating: joint1's commanded speed never grows and ends at zero.
    // (A hold repeated within half a period, timer and tick both acting, is a re-send, not a step.)
    const steps = holds.filter((d, i) => i === 0 || d.t - holds[i - 1].t >= DT / 2);
    const speeds = steps.map((d, i) => (i === 0 ? null : Math.abs(d.sent[0] - steps[i - 1].sent[0]) / DT)).filter((v): v is number => v !== null);
    const accel = rig.safe.layer.spec.limits[0].acceleration;
    for (let i = 1; i < speeds.length; i++) assert.ok(speeds[i - 1] - speeds[i] <= accel * DT + 1e-9, `braked harder than ${accel} rad/s^2`);
    for (let i = 1; i < speeds.length; i++) assert.ok(speeds[i] <= speeds[i - 1] + 1e-9, `speed rose: ${speeds[i - 1]} -> ${speeds[i]}`);
    assert.ok(speeds.at(-1)! < 1e-9, `not stopped: ${speeds.at(-1)}`);
    const log = await rig.readLog();
    assert.ok(log.complete);
    const safety = log.messages.filter((m) => m.topic === '/evovla/safety' && m.message.status[0].message.includes('stale_observation'));
    assert.ok(safety.length >= holds.length, 'every hold is logged');
  });

  it('holds when the policy stops answering, even with the loop stuck waiting on it', async () => {
    const rig = await makeRig(FAST_START);
    rig.policy.next = moveJoint1(0.04);
    await rig.ticks(30);
    const lastPolicy = rig.decisions.filter((d) => d.source === 'policy').at(-1)!;
    rig.policy.hang = true;
    const before = rig.decisions.length;
    const tick = rig.loop.tick(); // awaits the hung policy
    for (let i = 0; i < 40; i++) {
      rig.clock.advance(0.005);
      await flushMicrotasks();
    }
    const rec = await tick;
    assert.equal(rec.policyAnswered, false);
    const after = rig.decisions.slice(before);
    assert.ok(after.length > 0 && after.every((d) => d.source === 'hold'), 'only holds while the policy is silent');
    assert.ok(after[0].t <= lastPolicy.t + 0.1 + 1e-9, `first hold at +${(after[0].t - lastPolicy.t).toFixed(4)} s after the last policy command`);
    assert.ok(after.some((d) => d.reason === 'stale_policy'));
    // The loop does not start a second inference while the first is outstanding.
    const calls = rig.policy.calls;
    await rig.ticks(3);
    assert.equal(rig.policy.calls, calls);
    await rig.readLog();
  });
});

describe('NaN and Inf in every field', () => {
  it('refuses the command, holds, and logs the refusal naming the field', async () => {
    const rig = await makeRig(FAST_START);
    await rig.ticks(5);
    const held = rig.twin.read().q.slice();
    const bad = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
    let cases = 0;
    for (let field = 0; field < 7; field++) {
      for (const value of bad) {
        rig.policy.next = (obs) => {
          const a = Array.from(obs.proprio);
          a[field] = value;
          return a;
        };
        const rec = (await rig.loop.tick()).decision;
        rig.clock.advance(DT);
        cases++;
        assert.equal(rec.source, 'hold', `field ${NAMES[field]}=${value}`);
        assert.equal(rec.reason, 'refused');
        assert.deepEqual(rec.refusals.map((f) => [f.check, f.field]), [['nonfinite', NAMES[field]]]);
        assert.ok(rec.sent.every(Number.isFinite), 'what goes out is finite');
      }
    }
    const q = rig.twin.read().q;
    q.forEach((v, i) => assert.ok(Math.abs(v - held[i]) < 0.01, `arm moved on refused commands: joint${i + 1} ${held[i]} -> ${v}`));
    const log = await rig.readLog();
    const refusals = log.messages.filter((m) => m.topic === '/evovla/safety' && m.message.status[0].message.includes('nonfinite'));
    assert.equal(refusals.length, cases);
    assert.equal(refusals[0].message.status[0].level, 2, 'ERROR level');
    const proposals = log.messages.filter((m) => m.topic === '/evovla/policy_action');
    assert.ok(proposals.some((m) => Number.isNaN(m.message.data[0])), 'the bad proposal itself is in the log');
    const commands = log.messages.filter((m) => m.topic === '/evovla/command');
    for (const c of commands) assert.ok(Array.from(c.message.points[0].positions as number[]).every(Number.isFinite));
  });
});

describe('limits and jumps are clamped, and the action actually sent is reported', () => {
  it('keeps direction when scaling for velocity/acceleration/step caps', async () => {
    const rig = await makeRig(FAST_START);
    await rig.ticks(5);
    const start = rig.decisions.at(-1)!.sent;
    rig.policy.next = (obs) => {
      const a = Array.from(obs.proprio);
      a[0] += 0.5;
      a[1] -= 0.25;
      return a;
    };
    const d = (await rig.loop.tick()).decision;
    rig.clock.advance(DT);
    assert.equal(d.source, 'policy');
    assert.ok(d.clamps.length > 0);
    const d0 = d.sent[0] - start[0];
    const d1 = d.sent[1] - start[1];
    assert.ok(d0 > 0 && d0 < 0.5);
    assert.ok(Math.abs(d1 / d0 + 0.5) < 1e-6, `direction changed: ${d0}, ${d1}`);
    await rig.readLog();
  });

  it('never exceeds position, step, velocity or acceleration limits while chasing a far target', async () => {
    const rig = await makeRig(FAST_START);
    await rig.ticks(5);
    const far = [2.5, -3.5, 3.5, 3.2, 2.0, -3.2, 0.09]; // beyond every joint's range and the gripper's
    rig.policy.next = () => far;
    await rig.ticks(90);
    const sent = rig.decisions.filter((d) => d.source === 'policy').map((d) => d.sent);
    const cfg = rig.config.safety;
    let prevV = new Array(6).fill(0);
    for (let k = 1; k < sent.length; k++) {
      for (let j = 0; j < 6; j++) {
        const l = spec.limits[j];
        assert.ok(sent[k][j] >= l.lower + cfg.positionLimits.margin - 1e-9 && sent[k][j] <= l.upper - cfg.positionLimits.margin + 1e-9, `joint${j + 1} out of range: ${sent[k][j]}`);
        const step = sent[k][j] - sent[k - 1][j];
        assert.ok(Math.abs(step) <= cfg.maxStep.joint + 1e-9, `step ${step}`);
        assert.ok(Math.abs(step / DT) <= l.velocity + 1e-6, `velocity ${step / DT}`);
        const v = step / DT;
        assert.ok(Math.abs(v - prevV[j]) / DT <= l.acceleration + 1e-6, `joint${j + 1} acceleration ${(v - prevV[j]) / DT} > ${l.acceleration}`);
        prevV[j] = v;
      }
      assert.ok(sent[k][6] <= 0.04 + 1e-12 && Math.abs(sent[k][6] - sent[k - 1][6]) <= cfg.maxStep.gripper + 1e-12);
    }
    const checks = new Set(rig.decisions.flatMap((d) => d.clamps.map((c) => `${c.check}:${c.field}`)));
    assert.ok(checks.has('position:joint1') || checks.has('position:joint2'), [...checks].join(' '));
    assert.ok(checks.has('position:gripper'));
    // What SafeRobot.send returns is what the twin's controller took.
    const last = rig.decisions.at(-1)!;
    const sim = rig.twin.env.state();
    assert.ok(Math.abs(sim.q[0] - last.sent[0]) < 0.2, 'the arm follows the sent command');
    const log = await rig.readLog();
    const clampLogs = log.messages.filter((m) => m.topic === '/evovla/safety' && m.message.status[0].message.startsWith('running: clamped'));
    assert.ok(clampLogs.length > 0);
  });

  it('caps the end-effector jump per step and keeps it inside the workspace box', async () => {
    const base = await makeRig(FAST_START);
    await base.ticks(3);
    const z0 = fk(base.twin.read().q)[2];
    await base.readLog();
    const minZ = z0 - 0.03;
    const rig = await makeRig({
      safety: { startup: { holdS: 0.05 }, eeJump: { maxStep: 0.004 }, workspace: { min: [-0.3, -0.7, minZ] } },
    });
    await rig.ticks(3);
    // Lower the tool toward the table (joint2 and joint3 both decreasing does that from home).
    rig.policy.next = (obs) => {
      const a = Array.from(obs.proprio);
      a[1] -= 0.6;
      a[2] -= 0.6;
      return a;
    };
    await rig.ticks(120);
    const policyDecisions = rig.decisions.filter((d) => d.source === 'policy');
    let prevEe = fk(policyDecisions[0].sent.slice(0, 6));
    for (const d of policyDecisions.slice(1)) {
      const ee = fk(d.sent.slice(0, 6));
      assert.ok(Math.hypot(ee[0] - prevEe[0], ee[1] - prevEe[1], ee[2] - prevEe[2]) <= 0.004 + 1e-6, 'jump guard');
      assert.ok(ee[2] >= minZ - 1e-6, `tool z ${ee[2]} below the box floor ${minZ}`);
      prevEe = ee;
    }
    const checks = new Set(rig.decisions.flatMap((d) => d.clamps.map((c) => c.check)));
    assert.ok(checks.has('ee_jump'), 'jump guard reported');
    assert.ok(checks.has('workspace'), 'workspace clamp reported');
    await rig.readLog();
  });
});

describe('e-stop and deadman', () => {
  it('halts on e-stop and stays halted after it is released (latched)', async () => {
    const rig = await makeRig(FAST_START);
    rig.policy.next = moveJoint1(0.03);
    await rig.ticks(20);
    rig.twin.inject({ estop: true });
    await rig.ticks(1);
    const d = rig.decisions.at(-1)!;
    assert.equal(d.source, 'halt');
    assert.equal(d.reason, 'estop');
    const qHalt = rig.twin.read().q.slice();
    rig.twin.inject({ estop: false });
    await rig.ticks(10);
    assert.ok(rig.decisions.slice(-10).every((x) => x.mode === 'halted' && x.reason === 'estop'));
    const q = rig.twin.read().q;
    assert.ok(Math.abs(q[0] - qHalt[0]) < 0.05, 'no policy motion after the e-stop');
    const summary = await rig.loop.run();
    assert.match(summary.stopReason, /e-stop/);
    const log = await rig.readLog();
    assert.ok(log.messages.some((m) => m.topic === '/evovla/safety' && m.message.status[0].message.includes('estop')));
  });

  it('halts when the deadman expires, then resumes through a fresh start-up hold', async () => {
    const rig = await makeRig(FAST_START);
    rig.policy.next = moveJoint1(0.02);
    await rig.ticks(20);
    const lastHeld = rig.twin.safetyInputs().deadmanStamp!;
    rig.twin.inject({ deadmanReleased: true });
    await rig.ticks(40);
    const halts = rig.decisions.filter((d) => d.reason === 'deadman');
    assert.ok(halts.length > 0);
    assert.ok(halts[0].t <= lastHeld + rig.config.safety.deadman.timeoutS + DT + 1e-9, 'halt by the expiry (plus one tick)');
    assert.ok(rig.decisions.filter((d) => d.t > halts[0].t).every((d) => d.source === 'halt'));
    rig.twin.inject({ deadmanReleased: false });
    await rig.ticks(1);
    assert.equal(rig.decisions.at(-1)!.reason, 'startup');
    await rig.ticks(10);
    assert.equal(rig.decisions.at(-1)!.source, 'policy');
    await rig.readLog();
  });
});

describe('refusing to start', () => {
  it('refuses a robot whose joint names differ from the policy, before commanding it', async () => {
    const wrong = ['shoulder_pan', 'shoulder_lift', 'elbow', 'wrist_1', 'wrist_2', 'wrist_3'];
    await assert.rejects(makeRig(FAST_START, { jointNames: wrong }), (err: unknown) => {
      assert.ok(err instanceof SpecMismatchError);
      assert.match(err.message, /shoulder_pan.*differ.*joint1/);
      return true;
    });
  });

  it('refuses to start while the e-stop is engaged', async () => {
    const { FakeClock } = await import('../../robot/clock.ts');
    const { parseDeployConfig } = await import('../../robot/config.ts');
    const { SimTwin } = await import('../../robot/sim_twin.ts');
    const { startSafeRobot } = await import('../../robot/session.ts');
    const { createEnv } = await import('../../sim/env.ts');
    const { getTask } = await import('../../tasks/index.ts');
    const clock = new FakeClock(5);
    const twin = new SimTwin({ env: await createEnv(getTask('blocks')), clock });
    twin.inject({ estop: true });
    const s = robotSpecFor('airbot_play');
    await assert.rejects(
      startSafeRobot({ robot: twin, policySpec: { jointNames: s.jointNames, limits: s.limits, cameras: [] }, config: parseDeployConfig({}), clock, fk }),
      (err: unknown) => err instanceof StartRefusedError && /e-stop/.test(err.message),
    );
    assert.equal(twin.steps, 0, 'never commanded');
  });
});

describe('a failing policy', () => {
  it('holds on every tick its inference throws, and counts the failures', async () => {
    const rig = await makeRig(FAST_START);
    await rig.ticks(10);
    rig.policy.next = () => {
      throw new Error('model exploded');
    };
    const warnings: string[] = [];
    const onWarning = (w: Error) => void warnings.push(w.message);
    process.on('warning', onWarning);
    await rig.ticks(5);
    await flushMicrotasks();
    process.off('warning', onWarning);
    assert.ok(rig.decisions.slice(-5).every((d) => d.source === 'hold'));
    assert.equal(rig.loop.policyErrors, 5);
    assert.equal(warnings.filter((w) => w.includes('model exploded')).length, 1, 'warned once, not per tick');
    await rig.readLog();
  });
});

describe('a policy refused on every tick', () => {
  it('after 0.5 s of consecutive refusals halts, latches a fault naming why, and stays halted', async () => {
    const rig = await makeRig(FAST_START);
    rig.policy.next = moveJoint1(0.02);
    await rig.ticks(10);
    assert.equal(rig.decisions.at(-1)?.source, 'policy');
    rig.policy.next = () => [NaN, NaN, NaN, NaN, NaN, NaN, NaN];
    const before = rig.decisions.length;
    await rig.ticks(29);
    // 29 refusals (< 0.5 s at 60 Hz): still holding, no fault yet.
    assert.equal(rig.safe.layer.fault, null);
    assert.ok(rig.decisions.slice(before).every((d) => d.reason === 'refused'));
    await rig.ticks(1);
    const fault = rig.safe.layer.fault;
    assert.match(fault ?? '', /refused on 30 consecutive ticks \(0\.5 s; last: nonfinite joint1=NaN/);
    const last = rig.decisions.at(-1)!;
    assert.equal(last.source, 'halt');
    assert.equal(last.reason, 'fault');
    // Latched: a policy that recovers moves nothing until restart.
    rig.policy.next = moveJoint1(0.02);
    await rig.ticks(10);
    assert.ok(rig.decisions.slice(-10).every((d) => d.source === 'halt' && d.reason === 'fault'));
    await rig.readLog();
  });

  it('a good action in between restarts the count', async () => {
    const rig = await makeRig(FAST_START);
    await rig.ticks(10);
    let k = 0;
    rig.policy.next = (obs) => (++k % 20 === 0 ? Array.from(obs.proprio) : [NaN, 0, 0, 0, 0, 0, 0]);
    await rig.ticks(100);
    assert.equal(rig.safe.layer.fault, null);
    await rig.readLog();
  });

  it('the limit is configurable and can be turned off', async () => {
    const rig = await makeRig({ safety: { startup: { holdS: 0.05 }, refusals: { maxConsecutiveS: 0.1 } } });
    await rig.ticks(10);
    rig.policy.next = () => [Infinity, 0, 0, 0, 0, 0, 0];
    await rig.ticks(6);
    assert.match(rig.safe.layer.fault ?? '', /6 consecutive ticks/);
    await rig.readLog();
    const off = await makeRig({ safety: { startup: { holdS: 0.05 }, refusals: { enabled: false } } });
    await off.ticks(10);
    off.policy.next = () => [Infinity, 0, 0, 0, 0, 0, 0];
    await off.ticks(60);
    assert.equal(off.safe.layer.fault, null);
    await off.readLog();
  });
});
