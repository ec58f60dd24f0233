/**
 * The shared vocabulary of the simulator: geometry, scene descriptions, the world state the
 * rest of the stack reads (tasks, rewards, renderer, recorder, deploy loop), and the Env contract.
 *
 * Pure data and interfaces: no Rapier, three.js, ROS or onnxruntime here.
 * Conventions: world frame is Z-up, metres, seconds, radians. Quaternions are [x, y, z, w]
 * (Rapier's and three.js's order). Cylinders and capsules have their axis along the local Z axis
 * (the builder and the renderer rotate their engine's Y-axis primitives to match).
 */

export type Vec3 = [number, number, number];
/** Unit quaternion [x, y, z, w]. */
export type Quat = [number, number, number, number];

/** A rigid transform: position and orientation. */
export interface Pose {
  p: Vec3;
  q: Quat;
}

/** Linear RGB in 0..1. */
export type Color = [number, number, number];

export type ShapeDesc =
  | { kind: 'box'; halfExtents: Vec3 }
  | { kind: 'sphere'; radius: number }
  /** Axis along local Z. */
  | { kind: 'cylinder'; halfHeight: number; radius: number }
  /** Axis along local Z; halfHeight excludes the caps. */
  | { kind: 'capsule'; halfHeight: number; radius: number };

/** One collision (and visual) primitive attached to a body. */
export interface ColliderDesc {
  shape: ShapeDesc;
  /** Pose in the body frame (default identity). */
  pose?: Pose;
  /** Coulomb friction coefficient (default 0.8). */
  friction?: number;
  restitution?: number;
  /** Density in kg/m^3; ignored when the body gives an explicit mass. */
  density?: number;
  color?: Color;
  /** Visual only: not simulated (e.g. a decal, a target marker). */
  visualOnly?: boolean;
}

/** A free object in the scene (block, cup, table, marker). */
export interface ObjectDesc {
  /** Unique name; also the key in SimState.objects and the segmentation label. */
  name: string;
  type: 'dynamic' | 'fixed' | 'kinematic';
  pose: Pose;
  colliders: ColliderDesc[];
  /** Total mass in kg (dynamic only); when absent, computed from collider densities. */
  mass?: number;
  /** Default colour for colliders without one. */
  color?: Color;
}

/** Everything needed to build a world (objects; the robot comes from its own description). */
export interface SceneDesc {
  /** Robot description id, e.g. 'airbot_play'. */
  robot: string;
  /** Pose of the robot base in the world. */
  robotBase: Pose;
  objects: ObjectDesc[];
  /** Initial arm joint positions (radians) and gripper opening per finger (metres). */
  initialQ?: number[];
  initialGripper?: number;
}

/** Contact between a gripper finger (or any arm link) and an object, from the physics engine. */
export interface ContactInfo {
  /** Link name on the robot, e.g. 'link_finger_left'. */
  link: string;
  object: string;
  /** Largest normal impulse magnitude of this step (N*s). */
  impulse: number;
  /**
   * True when a finger joint moves the link (from the robot description, so tasks need not know
   * finger link names). Set by the env; hand-built states may leave it out.
   */
  finger?: boolean;
}

/**
 * The ground-truth world state after a control step. Everything here is read from physics, so
 * tasks can evaluate stage predicates and the renderer can draw it without touching Rapier.
 */
export interface SimState {
  /** Simulated time in seconds (physics steps * physics dt). Never wall clock. */
  time: number;
  /** Number of control steps since reset. */
  step: number;
  /** Arm joint positions and velocities (rad, rad/s), in the robot description's joint order. */
  q: number[];
  qd: number[];
  /** Gripper opening per finger in metres (0 closed .. 0.04 open on the AIRBOT Play). */
  gripper: number;
  /** World pose of every robot link, by link name (for rendering and contacts). */
  links: Record<string, Pose>;
  /** World pose of the tool centre point (between the finger pads). */
  ee: Pose;
  /**
   * Linear velocity of the tool centre point (m/s, world). Optional so that hand-built states may
   * leave it out (read as zero); the env always sets it. "Still in the hand" is relative to it.
   */
  eeVel?: Vec3;
  /** World pose of every object, by object name. */
  objects: Record<string, Pose>;
  /** Linear velocity of every dynamic object (m/s). */
  objectVel: Record<string, Vec3>;
  contacts: ContactInfo[];
}

/** Action interpretation, fixed per env by config. */
export type ActionMode = 'joint' | 'ee_delta';

/**
 * Action vector, length 7.
 * - 'joint': 6 absolute joint-position targets (rad) + gripper opening target (m, per finger).
 * - 'ee_delta': dx, dy, dz (m), droll, dpitch, dyaw (rad) of the tool in the world frame,
 *   + gripper opening target (m).
 */
export type Action = ArrayLike<number>;

/** Observation given to a policy. */
export interface Observation {
  /** Joint positions (6) + gripper opening (1). */
  proprio: Float32Array;
  /** Camera images when rendering is enabled, by camera name (e.g. 'eye_side', 'eye_arm'). */
  images?: Record<string, CameraFrame>;
  /** The task's language instruction. */
  instruction: string;
}

export interface CameraFrame {
  width: number;
  height: number;
  /** RGB, row-major from the top-left, width*height*3. */
  rgb: Uint8Array;
  /** Metres along the optical axis, width*height (optional). */
  depth?: Float32Array;
  /** Per-pixel object id (0 = background), width*height (optional). */
  segmentation?: Uint16Array;
}

/** Named, unscaled reward terms; scales come from config (MuJoCo Playground style). */
export type RewardTerms = Record<string, number>;

/** Ground truth carried in every step's info. */
export interface StepInfo {
  state: SimState;
  /** Named predicates from the task's evaluate() (e.g. isGrasped, success). */
  predicates: Record<string, boolean>;
  /** Index of the first stage whose predicate is not yet satisfied in order (ground truth). */
  stage: number;
  success: boolean;
  failure: boolean;
  rewardTerms: RewardTerms;
  /** What the controller was actually asked to do after clamping to joint limits. */
  clampedAction: number[];
  /** Names of the action fields that were clamped this step, e.g. ['joint3', 'gripper']. */
  clamped: string[];
  /**
   * Set when the simulation reached a state no real arm can be in (a non-finite value, a joint
   * faster than 1.5x its speed limit or more than 0.05 rad past its range, a finger more than
   * 2 mm outside its travel); the episode then ends as truncated. Names what broke, e.g.
   * "joint5 speed 9.71 rad/s > 1.5 x 6.28". A defect of the simulator, never of the policy.
   */
  simFault?: string;
}

export interface ResetResult {
  obs: Observation;
  info: StepInfo;
}

export interface StepResult {
  obs: Observation;
  reward: number;
  /** Episode ended by the task: success or failure. Never by the time limit. */
  terminated: boolean;
  /** Episode ended by the time limit. Never by success or failure. */
  truncated: boolean;
  info: StepInfo;
}

/** Gymnasium-style environment. Seeding only through reset({seed}). */
export interface Env {
  readonly actionMode: ActionMode;
  readonly maxSteps: number;
  reset(opts?: { seed?: number }): ResetResult;
  step(action: Action): StepResult;
  /** Opaque copy of the whole world (physics + controller + rng + step counter). */
  snapshot(): EnvSnapshot;
  restore(snapshot: EnvSnapshot): void;
  /** A stable hash of the full physics state (bodies' poses and velocities, joint state). */
  stateHash(): string;
  /** Release the physics world. */
  free(): void;
}

export interface EnvSnapshot {
  readonly kind: 'evovla.env-snapshot';
  readonly data: Uint8Array;
  readonly meta: unknown;
}
