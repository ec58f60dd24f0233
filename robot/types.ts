/**
 * The Robot interface: one contract for the simulator-as-robot ("sim twin") and the ROS 2 bridge,
 * so the deploy loop is the same code for both (LeRobot's `robots/robot.py` shape: features known
 * before connecting, `send` returns the action actually sent).
 */
import type { CameraFrame } from '../sim/types.ts';

/** Limits of one arm joint, in the robot description's units (rad, rad/s, rad/s^2). */
export interface JointLimits {
  lower: number;
  upper: number;
  velocity: number;
  acceleration: number;
}

/** A camera the robot provides (or a policy was trained with). */
export interface CameraSpec {
  name: string;
  width: number;
  height: number;
}

/** What a robot is, readable offline (before `connect`). */
export interface RobotSpec {
  /** Robot description id, e.g. 'airbot_play'. */
  model: string;
  /** Arm joint names in action order (the policy's order). */
  jointNames: string[];
  /** One entry per arm joint, same order. */
  limits: JointLimits[];
  /** Gripper opening per finger (m) and its speed limit (m/s). */
  gripper: { lower: number; upper: number; velocity: number };
  cameras: CameraSpec[];
}

/** One reading of the robot's state. */
export interface RobotObservation {
  /** When the reading was taken, on the deploy clock (s). The watchdog ages observations by it. */
  stamp: number;
  /** Increases by one per new reading from the robot; a repeat means nothing new arrived. */
  seq: number;
  /** Joint positions (rad) and velocities (rad/s), in `spec().jointNames` order. */
  q: number[];
  qd: number[];
  /** Gripper opening per finger (m). */
  gripper: number;
  images?: Record<string, CameraFrame>;
}

/** Operator safety inputs as last received (e-stop topic, deadman). */
export interface SafetyInputs {
  /** True while the e-stop is engaged (or the robot reports a protective/emergency stop). */
  estop: boolean;
  /** Clock time of the last "deadman held" message, or null if none has arrived yet. */
  deadmanStamp: number | null;
}

/**
 * A robot the deploy loop can drive. Actions are 6 joint-position targets (rad) + gripper opening
 * (m per finger), the same layout as the simulator's 'joint' action mode.
 */
export interface Robot {
  /** Joint names, limits, cameras. Must not need a connection. */
  spec(): RobotSpec;
  connect(): Promise<void>;
  /** The latest reading (may repeat if nothing new arrived; check `seq` and `stamp`). */
  read(): RobotObservation;
  safetyInputs(): SafetyInputs;
  /** Command a target; returns the action actually transmitted. */
  send(action: ArrayLike<number>): number[];
  /** Stop moving now: hold the measured position. */
  halt(): void;
  disconnect(): Promise<void>;
}
