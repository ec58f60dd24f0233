/**
 * The ROS 2 bridge: a Robot on rclnodejs talking to ros2_control. sensor_msgs/JointState and
 * camera images in (best-effort, as sensor drivers publish), trajectory_msgs/JointTrajectory to
 * joint_trajectory_controller and a gripper command out (reliable, as controllers subscribe),
 * std_msgs/Bool e-stop and deadman in, diagnostic_msgs/DiagnosticArray out.
 *
 * Operator inputs (e-stop, deadman) are subscribed best-effort on purpose: a best-effort
 * subscription matches publishers of either reliability, so a pendant publishing best-effort is
 * never silently ignored; a missed deadman message still fails safe through its expiry.
 */
import type { Clock } from '../clock.ts';
import type { Ros2Config } from '../config.ts';
import type { Decision } from '../safety/layer.ts';
import type { Robot, RobotObservation, RobotSpec, SafetyInputs } from '../types.ts';
import type { CameraFrame } from '../../sim/types.ts';
import {
  compressedToFrame,
  decisionDiagnostics,
  urdfJointLimits,
  gripperCommandMessage,
  gripperPositionMessage,
  imageToFrame,
  type JointMapping,
  readJointState,
  trajectoryMessage,
} from './convert.ts';
import type { BoolMsg, CompressedImageMsg, ImageMsg, JointStateMsg } from './messages.ts';
import { ACCEL_PER_VELOCITY } from '../spec.ts';
import { commandQos, latchedQos, loadRclnodejs, type RclActionClient, type Rclnodejs, type RclNode, type RclPublisher, sensorQos } from './rcl.ts';

export interface Ros2RobotOptions {
  spec: RobotSpec;
  ros2: Ros2Config;
  clock: Clock;
  controlHz: number;
  /** The rclnodejs module (a fake in tests); loaded lazily when absent. */
  rcl?: Rclnodejs;
}

/** A failure while connecting: names the topic and what to check. */
export class Ros2ConnectError extends Error {
  override name = 'Ros2ConnectError';
}

/** A real arm over ROS 2 (ros2_control), behind the Robot interface. */
export class Ros2Robot implements Robot {
  private readonly opts: Ros2RobotOptions;
  private readonly map: JointMapping;
  private rcl: Rclnodejs | null = null;
  private node: RclNode | null = null;
  private trajectoryPub: RclPublisher | null = null;
  private gripperPub: RclPublisher | null = null;
  private gripperAction: RclActionClient | null = null;
  private diagnosticsPub: RclPublisher | null = null;
  private latest: RobotObservation | null = null;
  /** Limits read from the robot's URDF on /robot_description, by our joint order. */
  private liveLimits: RobotSpec['limits'] | null = null;
  private descriptionError: Error | null = null;
  private lastStateError: Error | null = null;
  private prevForVelocity: { q: number[]; t: number } | null = null;
  private frames: Record<string, { frame: CameraFrame; stamp: number }> = {};
  private frameError: Error | null = null;
  private estop = false;
  private deadmanStamp: number | null = null;
  private lastGripperGoal = NaN;
  private lastDiagnosticsAt = -Infinity;
  private lastDiagnosticsKey = '';
  /** Called after every incoming message while connect() waits. */
  private wake: () => void = () => {};
  /** Messages published, by topic (for status output and tests). */
  readonly published = new Map<string, number>();

  constructor(opts: Ros2RobotOptions) {
    this.opts = opts;
    const names = opts.spec.jointNames.map((n) => opts.ros2.jointNames[n] ?? n);
    const unknown = Object.keys(opts.ros2.jointNames).filter((k) => !opts.spec.jointNames.includes(k));
    if (unknown.length) {
      throw new Ros2ConnectError(`ros2.jointNames maps unknown joint${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (the robot's joints are ${opts.spec.jointNames.join(', ')})`);
    }
    this.map = { rosNames: names, gripperName: opts.ros2.gripper.jointName, gripperScale: opts.ros2.gripper.scale };
  }

  /** The configured spec; after connect, with the joint limits the robot's own URDF declares. */
  spec(): RobotSpec {
    return this.liveLimits ? { ...this.opts.spec, limits: this.liveLimits } : this.opts.spec;
  }

  /** Load rclnodejs, create the node, wire topics, and wait for the first joint state and frames. */
  async connect(): Promise<void> {
    if (this.node) return; // already connected
    const { ros2, clock } = this.opts;
    const rcl = this.opts.rcl ?? (await loadRclnodejs());
    this.rcl = rcl;
    await rcl.init();
    const node = new rcl.Node(ros2.nodeName);
    this.node = node;
    const sensor = { qos: sensorQos(rcl) };
    const command = { qos: commandQos(rcl) };

    node.createSubscription('sensor_msgs/msg/JointState', ros2.topics.jointStates, sensor, (msg: JointStateMsg) => this.onJointState(msg));
    for (const cam of this.opts.spec.cameras) {
      const topic = ros2.cameras[cam.name];
      if (!topic) throw new Ros2ConnectError(`camera '${cam.name}' has no topic: add ros2.cameras.${cam.name}: {topic: ..., width: ${cam.width}, height: ${cam.height}} to the config`);
      const type = topic.compressed ? 'sensor_msgs/msg/CompressedImage' : 'sensor_msgs/msg/Image';
      node.createSubscription(type, topic.topic, sensor, (msg: ImageMsg | CompressedImageMsg) => this.onImage(cam.name, cam.width, cam.height, msg, topic.compressed));
    }
    node.createSubscription('std_msgs/msg/String', ros2.topics.robotDescription, { qos: latchedQos(rcl) }, (msg: { data: string }) => this.onDescription(msg.data));
    node.createSubscription('std_msgs/msg/Bool', ros2.topics.estop, sensor, (msg: BoolMsg) => {
      this.estop = Boolean(msg.data);
    });
    node.createSubscription('std_msgs/msg/Bool', ros2.topics.deadman, sensor, (msg: BoolMsg) => {
      this.deadmanStamp = msg.data ? clock.now() : null;
    });
    this.trajectoryPub = node.createPublisher('trajectory_msgs/msg/JointTrajectory', ros2.topics.trajectory, command);
    if (ros2.gripper.mode === 'position_topic') {
      this.gripperPub = node.createPublisher('std_msgs/msg/Float64MultiArray', ros2.gripper.topic, command);
    } else {
      this.gripperAction = new rcl.ActionClient(node, 'control_msgs/action/GripperCommand', ros2.gripper.action);
    }
    this.diagnosticsPub = node.createPublisher('diagnostic_msgs/msg/DiagnosticArray', ros2.topics.diagnostics, command);
    node.spin();

    // Wait for the first joint state and frame of each camera (or an error), event-driven.
    await new Promise<void>((resolve) => {
      const timer = clock.setTimer(ros2.connectTimeoutS, finish);
      this.wake = () => {
        const ready =
          this.latest !== null &&
          this.opts.spec.cameras.every((c) => this.frames[c.name]) &&
          (this.liveLimits !== null || !ros2.requireRobotDescription);
        if (ready || this.lastStateError || this.frameError || this.descriptionError) finish();
      };
      function finish() {
        timer.cancel();
        resolve();
      }
      this.wake();
    });
    this.wake = () => {};
    if (this.lastStateError) throw new Ros2ConnectError(this.lastStateError.message);
    if (this.frameError) throw new Ros2ConnectError(this.frameError.message);
    if (this.descriptionError) throw new Ros2ConnectError(this.descriptionError.message);
    if (!this.liveLimits && ros2.requireRobotDescription) {
      throw new Ros2ConnectError(`no URDF on '${ros2.topics.robotDescription}' within ${ros2.connectTimeoutS} s, so the robot's joint limits cannot be checked: run robot_state_publisher, or set ros2.requireRobotDescription: false to use the ${this.opts.spec.model} description's limits`);
    }
    if (!this.latest) {
      throw new Ros2ConnectError(`no sensor_msgs/JointState on '${ros2.topics.jointStates}' within ${ros2.connectTimeoutS} s: is the controller manager with joint_state_broadcaster running? (check: ros2 topic echo ${ros2.topics.jointStates})`);
    }
    const missing = this.opts.spec.cameras.filter((c) => !this.frames[c.name]).map((c) => `'${c.name}' on ${ros2.cameras[c.name]?.topic}`);
    if (missing.length) throw new Ros2ConnectError(`no camera frames within ${ros2.connectTimeoutS} s from ${missing.join(', ')}`);
    if (this.gripperAction && !(await this.gripperAction.waitForServer(ros2.connectTimeoutS * 1000))) {
      throw new Ros2ConnectError(`no control_msgs/action/GripperCommand server at '${ros2.gripper.action}' within ${ros2.connectTimeoutS} s`);
    }
  }

  private onDescription(urdf: string): void {
    const limits = urdfJointLimits(urdf);
    const missing = this.map.rosNames.filter((n) => !limits.has(n));
    if (missing.length) {
      this.descriptionError = new Error(`the robot's URDF on '${this.opts.ros2.topics.robotDescription}' has no joint${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (set ros2.jointNames)`);
    } else {
      this.liveLimits = this.map.rosNames.map((n) => {
        const l = limits.get(n) as { lower: number; upper: number; velocity: number };
        return { ...l, acceleration: l.velocity * ACCEL_PER_VELOCITY };
      });
    }
    this.wake();
  }

  private onJointState(msg: JointStateMsg): void {
    const now = this.opts.clock.now();
    let reading;
    try {
      reading = readJointState(msg, this.map);
    } catch (err) {
      // Wrong names are a configuration error: keep it so connect() (or the next read) reports it.
      this.lastStateError = err as Error;
      this.wake();
      return;
    }
    let qd = reading.qd;
    if (!qd) {
      // No velocities in the message: estimate them so the start-state check still sees motion.
      const prev = this.prevForVelocity;
      qd = prev && now > prev.t ? reading.q.map((v, i) => (v - prev.q[i]) / (now - prev.t)) : reading.q.map(() => 0);
    }
    this.prevForVelocity = { q: reading.q, t: now };
    this.latest = {
      stamp: now,
      seq: (this.latest?.seq ?? 0) + 1,
      q: reading.q,
      qd,
      gripper: reading.gripper,
      images: this.latestImages(),
    };
    this.wake();
  }

  private onImage(name: string, width: number, height: number, msg: ImageMsg | CompressedImageMsg, compressed: boolean): void {
    try {
      const frame = compressed ? compressedToFrame(msg as CompressedImageMsg) : imageToFrame(msg as ImageMsg);
      if (frame.width !== width || frame.height !== height) {
        throw new Error(`camera '${name}' sends ${frame.width}x${frame.height} frames but the policy expects ${width}x${height}`);
      }
      this.frames[name] = { frame, stamp: this.opts.clock.now() };
    } catch (err) {
      this.frameError = err as Error;
    }
    this.wake();
  }

  private latestImages(): Record<string, CameraFrame> | undefined {
    const names = Object.keys(this.frames);
    if (!names.length) return undefined;
    return Object.fromEntries(names.map((n) => [n, this.frames[n].frame]));
  }

  read(): RobotObservation {
    if (this.lastStateError) throw new Ros2ConnectError(this.lastStateError.message);
    if (this.frameError) throw new Ros2ConnectError(this.frameError.message);
    if (!this.latest) throw new Ros2ConnectError('read() before the first joint state: call connect() first');
    // Images change between joint states; hand out the newest of each.
    return { ...this.latest, images: this.latestImages() };
  }

  safetyInputs(): SafetyInputs {
    return { estop: this.estop, deadmanStamp: this.deadmanStamp };
  }

  send(action: ArrayLike<number>): number[] {
    if (!this.trajectoryPub) throw new Ros2ConnectError('send() before connect()');
    const sent = Array.from(action, Number);
    const periodS = (1 / this.opts.controlHz) * this.opts.ros2.trajectoryPeriods;
    this.publish(this.trajectoryPub, this.opts.ros2.topics.trajectory, trajectoryMessage(sent.slice(0, 6), this.map, periodS));
    this.sendGripper(sent[6]);
    return sent;
  }

  private sendGripper(opening: number): void {
    const g = this.opts.ros2.gripper;
    if (this.gripperPub) {
      this.publish(this.gripperPub, g.topic, gripperPositionMessage(opening, this.map));
    } else if (this.gripperAction && !(Math.abs(opening - this.lastGripperGoal) <= 1e-4)) {
      // One goal per change, not per tick: each goal pre-empts the last and restarts the controller's stall logic.
      this.lastGripperGoal = opening;
      const goal = { command: gripperCommandMessage(opening, this.map, g.maxEffort) };
      this.published.set(g.action, (this.published.get(g.action) ?? 0) + 1);
      this.gripperAction.sendGoal(goal).catch((err: unknown) => {
        this.frameError = new Error(`gripper action '${g.action}' rejected a goal: ${(err as Error).message ?? err}`);
      });
    }
  }

  /** Hold the measured arm position (the gripper keeps its last target, so a held object stays held). */
  halt(): void {
    if (!this.trajectoryPub || !this.latest) return;
    const periodS = 1 / this.opts.controlHz;
    this.publish(this.trajectoryPub, this.opts.ros2.topics.trajectory, trajectoryMessage(this.latest.q, this.map, periodS));
  }

  /**
   * Publish a safety decision on /diagnostics: at once when the status changes, else at most 2 Hz
   * (diagnostic_aggregator expects ~1 Hz, not the control rate).
   */
  publishDecision(d: Decision): void {
    if (!this.diagnosticsPub) return;
    const now = this.opts.clock.now();
    const key = `${d.mode}|${d.reason}|${d.refusals.length > 0}|${d.clamps.length > 0}`;
    if (key === this.lastDiagnosticsKey && now - this.lastDiagnosticsAt < 0.5) return;
    this.lastDiagnosticsKey = key;
    this.lastDiagnosticsAt = now;
    this.publish(this.diagnosticsPub, this.opts.ros2.topics.diagnostics, decisionDiagnostics(d, 'evovla: safety', this.opts.ros2.nodeName, Date.now() / 1000));
  }

  private publish(pub: RclPublisher, topic: string, msg: unknown): void {
    pub.publish(msg);
    this.published.set(topic, (this.published.get(topic) ?? 0) + 1);
  }

  async disconnect(): Promise<void> {
    this.gripperAction?.destroy?.();
    this.node?.destroy();
    this.node = null;
    this.trajectoryPub = this.gripperPub = this.diagnosticsPub = null;
    this.gripperAction = null;
    if (this.rcl) await this.rcl.shutdown();
    this.rcl = null;
  }
}
