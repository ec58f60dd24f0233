/**
 * The ROS 2 bridge's wiring against a fake rclnodejs: topics, message types and QoS, joint-name
 * mapping, commands out, e-stop and deadman in, diagnostics, camera checks, lazy loading errors,
 * and the safety layer's watchdog acting through the bridge.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { FakeClock, flushMicrotasks } from '../../../robot/clock.ts';
import { parseDeployConfig } from '../../../robot/config.ts';
import { Ros2ConnectError, Ros2Robot } from '../../../robot/ros2/bridge.ts';
import { jointStateMessage } from '../../../robot/ros2/convert.ts';
import { loadRclnodejs, RMW, Ros2UnavailableError } from '../../../robot/ros2/rcl.ts';
import { SafeRobot } from '../../../robot/safe_robot.ts';
import { SpecMismatchError } from '../../../robot/safety/spec_check.ts';
import { startSafeRobot } from '../../../robot/session.ts';
import { baseFrameFk, robotSpecFor } from '../../../robot/spec.ts';
import { FakeRcl } from './fake_rcl.ts';

const HOME = [-0.055, -0.547, 0.905, 1.599, -1.398, -1.599];
const ROS_NAMES = ['arm_joint_1', 'arm_joint_2', 'arm_joint_3', 'arm_joint_4', 'arm_joint_5', 'arm_joint_6'];
const jointMap = Object.fromEntries(ROS_NAMES.map((n, i) => [`joint${i + 1}`, n]));
const mapping = { rosNames: ROS_NAMES, gripperName: 'gripper', gripperScale: 1 };

/** The mock URDF with our test's ROS joint names, optionally with joint3's upper limit changed. */
function urdf(joint3Upper?: number): string {
  let text = readFileSync('robot/ros2/mock/airbot_mock.urdf', 'utf8');
  if (joint3Upper !== undefined) text = text.replace('upper="3.161"', `upper="${joint3Upper}"`);
  return text.replace(/name="joint(\d)"/g, 'name="arm_joint_$1"');
}

async function connected(ros2: Record<string, unknown> = {}, cameras: Array<{ name: string; width: number; height: number }> = [], description: string | null = urdf()) {
  const clock = new FakeClock(50);
  const fake = new FakeRcl();
  const config = parseDeployConfig({ ros2: { jointNames: jointMap, ...ros2 } });
  const robot = new Ros2Robot({ spec: robotSpecFor('airbot_play', cameras), ros2: config.ros2, clock, controlHz: 60, rcl: fake.module() });
  const connecting = robot.connect();
  await flushMicrotasks();
  if (description !== null) fake.deliver('/robot_description', { data: description });
  return { clock, fake, config, robot, connecting };
}

function publishState(fake: FakeRcl, clock: FakeClock, q = HOME, gripper = 0.02) {
  fake.deliver('/joint_states', jointStateMessage(q, [0, 0, 0, 0, 0, 0], gripper, mapping, clock.now()));
}

describe('Ros2Robot wiring', () => {
  it('subscribes and publishes the standard interfaces with driver-style QoS', async () => {
    const { clock, fake, connecting } = await connected();
    publishState(fake, clock);
    clock.advance(0.02);
    await connecting;
    assert.equal(fake.inits, 1);
    assert.ok(fake.spun);
    const js = fake.sub('/joint_states');
    assert.equal(js.type, 'sensor_msgs/msg/JointState');
    assert.equal(js.qos.reliability, RMW.reliabilityBestEffort, 'sensor data: best effort');
    assert.equal(fake.sub('/evovla/estop').type, 'std_msgs/msg/Bool');
    assert.equal(fake.sub('/evovla/deadman').type, 'std_msgs/msg/Bool');
    const traj = fake.pub('/arm_controller/joint_trajectory');
    assert.equal(traj.type, 'trajectory_msgs/msg/JointTrajectory');
    assert.equal(traj.qos.reliability, RMW.reliabilityReliable, 'commands: reliable');
    assert.equal(fake.pub('/gripper_controller/commands').type, 'std_msgs/msg/Float64MultiArray');
    assert.equal(fake.pub('/diagnostics').type, 'diagnostic_msgs/msg/DiagnosticArray');
  });

  it('maps joint names both ways and sends what it was given', async () => {
    const { clock, fake, robot, connecting } = await connected();
    publishState(fake, clock, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 0.03);
    await connecting;
    const obs = robot.read();
    assert.deepEqual(obs.q, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]);
    assert.equal(obs.gripper, 0.03);
    const sent = robot.send([1, 2, 3, 4, 5, 6, 0.01]);
    assert.deepEqual(sent, [1, 2, 3, 4, 5, 6, 0.01]);
    const msg = fake.pub('/arm_controller/joint_trajectory').messages.at(-1) as { joint_names: string[]; points: Array<{ positions: number[] }> };
    assert.deepEqual(msg.joint_names, ROS_NAMES);
    assert.deepEqual(msg.points[0].positions, [1, 2, 3, 4, 5, 6]);
    assert.deepEqual((fake.pub('/gripper_controller/commands').messages.at(-1) as { data: number[] }).data, [0.01]);
  });

  it('fails to connect when joint_states lacks a mapped joint, naming it', async () => {
    // The URDF agrees with the config; the joint state publisher does not.
    const { clock, fake, connecting } = await connected({ jointNames: { ...jointMap, joint4: 'wrist_roll' } }, [], urdf().replace(/arm_joint_4/g, 'wrist_roll'));
    publishState(fake, clock);
    await assert.rejects(connecting, (e: unknown) => e instanceof Ros2ConnectError && /lacks joint 'wrist_roll'/.test(e.message));
  });

  it('fails to connect when no joint state arrives, saying what to check', async () => {
    const { clock, connecting } = await connected({ connectTimeoutS: 0.5 });
    const rejected = assert.rejects(connecting, /no sensor_msgs\/JointState on '\/joint_states' within 0.5 s.*joint_state_broadcaster/);
    for (let i = 0; i < 60; i++) {
      clock.advance(0.01);
      await flushMicrotasks();
    }
    await rejected;
  });

  it('reads e-stop and deadman, and halts by holding the measured position', async () => {
    const { clock, fake, robot, connecting } = await connected();
    publishState(fake, clock);
    await connecting;
    assert.deepEqual(robot.safetyInputs(), { estop: false, deadmanStamp: null });
    clock.advance(1);
    fake.deliver('/evovla/deadman', { data: true });
    assert.equal(robot.safetyInputs().deadmanStamp, clock.now());
    fake.deliver('/evovla/estop', { data: true });
    assert.equal(robot.safetyInputs().estop, true);
    fake.deliver('/evovla/deadman', { data: false });
    assert.equal(robot.safetyInputs().deadmanStamp, null, 'an explicit release counts at once');
    robot.halt();
    const msg = fake.pub('/arm_controller/joint_trajectory').messages.at(-1) as { points: Array<{ positions: number[] }> };
    assert.deepEqual(msg.points[0].positions, HOME);
  });

  it('uses the GripperCommand action when configured, one goal per change', async () => {
    const { clock, fake, robot, connecting } = await connected({ gripper: { mode: 'gripper_action', maxEffort: 7 } });
    publishState(fake, clock);
    await connecting;
    robot.send([...HOME, 0.02]);
    robot.send([...HOME, 0.02]);
    robot.send([...HOME, 0.01]);
    await flushMicrotasks();
    assert.equal(fake.goals.length, 2);
    assert.equal(fake.goals[0].type, 'control_msgs/action/GripperCommand');
    assert.equal(fake.goals[0].name, '/gripper_controller/gripper_cmd');
    assert.deepEqual(fake.goals[1].goal, { command: { position: 0.01, max_effort: 7 } });
  });

  it('checks camera frame sizes against the policy', async () => {
    const cams = [{ name: 'eye_side', width: 4, height: 2 }];
    const { clock, fake, connecting } = await connected({ cameras: { eye_side: { topic: '/cam/image_raw', width: 4, height: 2 } } }, cams);
    assert.equal(fake.sub('/cam/image_raw').type, 'sensor_msgs/msg/Image');
    assert.equal(fake.sub('/cam/image_raw').qos.reliability, RMW.reliabilityBestEffort);
    publishState(fake, clock);
    const header = { stamp: { sec: 0, nanosec: 0 }, frame_id: '' };
    fake.deliver('/cam/image_raw', { header, height: 3, width: 4, encoding: 'rgb8', is_bigendian: 0, step: 12, data: new Uint8Array(36) });
    clock.advance(0.02);
    await assert.rejects(connecting, /sends 4x3 frames but the policy expects 4x2/);
  });

  it('publishes safety decisions on /diagnostics, on change and at most 2 Hz otherwise', async () => {
    const { clock, fake, robot, connecting } = await connected();
    publishState(fake, clock);
    await connecting;
    const d = { t: 0, mode: 'running' as const, source: 'policy' as const, reason: null, proposed: null, sent: [...HOME, 0], refusals: [], clamps: [] };
    for (let i = 0; i < 60; i++) {
      robot.publishDecision(d);
      clock.advance(1 / 60);
    }
    robot.publishDecision({ ...d, mode: 'hold', source: 'hold', reason: 'stale_observation' });
    const diag = fake.pub('/diagnostics').messages as Array<{ status: Array<{ level: number; message: string }> }>;
    assert.equal(diag.length, 3, '1 s of identical status -> 2 messages, then the change at once');
    assert.equal(diag.at(-1)!.status[0].level, 2);
  });

  it('disconnects cleanly', async () => {
    const { clock, fake, robot, connecting } = await connected();
    publishState(fake, clock);
    await connecting;
    await robot.disconnect();
    assert.ok(fake.destroyed);
    assert.equal(fake.shutdowns, 1);
  });
});

describe("the robot's own joint limits", () => {
  it('reads them from /robot_description (latched QoS) and reports them in spec()', async () => {
    const { clock, fake, robot, connecting } = await connected({}, [], urdf(3.0));
    const sub = fake.sub('/robot_description');
    assert.equal(sub.type, 'std_msgs/msg/String');
    assert.deepEqual([sub.qos.reliability, sub.qos.durability], [RMW.reliabilityReliable, RMW.durabilityTransientLocal]);
    publishState(fake, clock);
    await connecting;
    assert.equal(robot.spec().limits[2].upper, 3.0);
    assert.equal(robot.spec().limits[0].lower, -3.151);
  });

  it('refuses to start when they differ from what the policy was trained with', async () => {
    const clock = new FakeClock(50);
    const fake = new FakeRcl();
    const config = parseDeployConfig({ ros2: { jointNames: jointMap } });
    const robot = new Ros2Robot({ spec: robotSpecFor('airbot_play'), ros2: config.ros2, clock, controlHz: 60, rcl: fake.module() });
    const s = robotSpecFor('airbot_play');
    const starting = startSafeRobot({ robot, policySpec: { jointNames: s.jointNames, limits: s.limits, cameras: [] }, config, clock, fk: baseFrameFk('airbot_play') });
    await flushMicrotasks();
    fake.deliver('/robot_description', { data: urdf(2.5) });
    publishState(fake, clock);
    await assert.rejects(starting, (e: unknown) => e instanceof SpecMismatchError && /joint3 upper limit is 2.5 on the robot but 3.161 in the policy/.test(e.message));
    assert.ok(fake.destroyed, 'disconnected after refusing');
    assert.equal(fake.pub('/arm_controller/joint_trajectory').messages.length, 0, 'never commanded');
  });

  it('will not start without a URDF unless told to use the description', async () => {
    const a = await connected({ connectTimeoutS: 0.2 }, [], null);
    publishState(a.fake, a.clock);
    const rejected = assert.rejects(a.connecting, /no URDF on '\/robot_description' within 0.2 s.*requireRobotDescription: false/);
    a.clock.advance(0.3);
    await rejected;
    const b = await connected({ connectTimeoutS: 0.2, requireRobotDescription: false }, [], null);
    publishState(b.fake, b.clock);
    await b.connecting;
    assert.equal(b.robot.spec().limits[2].upper, 3.161);
  });

  it('names joints the URDF lacks', async () => {
    const { clock, fake, connecting } = await connected({}, [], urdf().replace(/arm_joint_5/g, 'wrist_pitch'));
    publishState(fake, clock);
    await assert.rejects(connecting, /URDF on '\/robot_description' has no joint arm_joint_5/);
  });
});

describe('safety through the bridge', () => {
  it('holds on the wire when joint states stop arriving', async () => {
    const { clock, fake, config, robot, connecting } = await connected();
    publishState(fake, clock);
    await connecting;
    fake.deliver('/evovla/deadman', { data: true });
    const safe = new SafeRobot({ robot, clock, safety: { ...config.safety, startup: { ...config.safety.startup, holdS: 0 } }, controlHz: 60, fk: baseFrameFk('airbot_play') });
    safe.start();
    const traj = fake.pub('/arm_controller/joint_trajectory');
    for (let k = 1; k <= 10; k++) {
      publishState(fake, clock, HOME.map((v, i) => (i === 0 ? v + 0.01 * k : v)));
      fake.deliver('/evovla/deadman', { data: true });
      safe.read();
      safe.send([...HOME.map((v, i) => (i === 0 ? v + 0.01 * (k + 1) : v)), 0.02]);
      clock.advance(1 / 60);
    }
    assert.equal(safe.lastDecision()!.source, 'policy');
    const published = traj.messages.length;
    // Joint states stop; the deadman keeps coming; the loop is silent too. The watchdog acts alone.
    for (let i = 0; i < 12; i++) {
      fake.deliver('/evovla/deadman', { data: true });
      clock.advance(0.01);
    }
    assert.ok(traj.messages.length > published, 'hold commands were published');
    assert.equal(safe.lastDecision()!.source, 'hold');
    await safe.disconnect();
  });
});

describe('loading rclnodejs', () => {
  it('says what to install when the package is missing', async () => {
    const err = Object.assign(new Error("Cannot find package 'rclnodejs' imported from x"), { code: 'ERR_MODULE_NOT_FOUND' });
    await assert.rejects(loadRclnodejs(() => Promise.reject(err)), (e: unknown) => e instanceof Ros2UnavailableError && /npm install rclnodejs/.test(e.message) && /--robot sim/.test(e.message));
  });

  it('says what to source when the native part fails to load', async () => {
    const saved = process.env.ROS_DISTRO;
    delete process.env.ROS_DISTRO;
    try {
      await assert.rejects(loadRclnodejs(() => Promise.reject(new Error('librcl.so: cannot open shared object file'))), /source \/opt\/ros\/humble\/setup.bash/);
    } finally {
      if (saved !== undefined) process.env.ROS_DISTRO = saved;
    }
  });

  it('fails the same way here, where no ROS 2 is installed', async () => {
    await assert.rejects(loadRclnodejs(), Ros2UnavailableError);
  });
});
