/**
 * The deploy configuration: one YAML file validated by zod at the boundary, then frozen. Every
 * safety item is ON by default; turning one off takes an explicit `enabled: false`. Unknown keys
 * are errors that name the key, and out-of-range values name the allowed range.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { robotIds } from '../sim/robot/index.ts';

const vec3 = z.tuple([z.number(), z.number(), z.number()]);
const positive = (max: number) => z.number().gt(0).lte(max);

/** Safety layer settings (see docs/deploy.md for what each does and its source). */
export const safetySchema = z
  .strictObject({
    /** Refuse commands with NaN/Inf in any field (MoveIt Servo isValidCommand). */
    finiteCheck: z.strictObject({ enabled: z.boolean().default(true) }).prefault({}),
    /** Clamp joint targets into the position limits, `margin` rad inside them. */
    positionLimits: z
      .strictObject({ enabled: z.boolean().default(true), margin: z.number().min(0).max(0.5).default(0.01) })
      .prefault({}),
    /** Scale the step so no joint exceeds `scale` x its velocity limit. */
    velocityLimits: z
      .strictObject({ enabled: z.boolean().default(true), scale: positive(1).default(1) })
      .prefault({}),
    /** Scale the step so no joint's velocity changes faster than `scale` x its acceleration limit. */
    accelerationLimits: z
      .strictObject({ enabled: z.boolean().default(true), scale: positive(1).default(1) })
      .prefault({}),
    /** Cap the change per control step (LeRobot max_relative_target): rad per joint, m for the gripper. */
    maxStep: z
      .strictObject({
        enabled: z.boolean().default(true),
        joint: positive(1).default(0.05),
        gripper: positive(0.04).default(0.004),
      })
      .prefault({}),
    /** End-effector box in the robot base frame (m). */
    workspace: z
      .strictObject({
        enabled: z.boolean().default(true),
        min: vec3.default([-0.3, -0.7, -0.02]),
        max: vec3.default([0.8, 0.7, 0.9]),
      })
      .prefault({})
      .refine((w) => w.min.every((v, i) => v < w.max[i]), { message: 'workspace.min must be below workspace.max on every axis' }),
    /** Largest end-effector move per control step (m); LeRobot uses 5 cm. */
    eeJump: z.strictObject({ enabled: z.boolean().default(true), maxStep: positive(0.5).default(0.05) }).prefault({}),
    /**
     * Stop when the policy's actions are refused (NaN/Inf, wrong shape) on consecutive ticks for
     * `maxConsecutiveS` seconds (rounded up to whole control periods): the robot halts, a fault is
     * latched (no further motion until restart) and deploy exits non-zero.
     */
    refusals: z
      .strictObject({ enabled: z.boolean().default(true), maxConsecutiveS: positive(60).default(0.5) })
      .prefault({}),
    /** Hold when the newest observation or policy output is older than `timeoutS` (MoveIt Servo: 0.1 s). */
    watchdog: z.strictObject({ enabled: z.boolean().default(true), timeoutS: positive(5).default(0.1) }).prefault({}),
    /** Halt (latched) while the e-stop input is engaged. */
    estop: z.strictObject({ enabled: z.boolean().default(true) }).prefault({}),
    /** Halt when the deadman has not been confirmed for `timeoutS`; an expired lock counts as released. */
    deadman: z.strictObject({ enabled: z.boolean().default(true), timeoutS: positive(10).default(0.5) }).prefault({}),
    /** Hold the measured position for `holdS` before the first policy command; refuse to start when moving faster than `maxVelocity`. */
    startup: z
      .strictObject({
        enabled: z.boolean().default(true),
        holdS: z.number().min(0).max(30).default(1),
        maxVelocity: positive(10).default(0.05),
      })
      .prefault({}),
    /** Refuse to start when joint names, limits or camera shapes differ from the policy's. */
    specCheck: z
      .strictObject({ enabled: z.boolean().default(true), limitTolerance: z.number().min(0).max(1).default(1e-3) })
      .prefault({}),
  })
  .prefault({});

const cameraTopic = z.strictObject({
  topic: z.string().min(1),
  /** Expected frame size; frames of another size are refused (the policy was trained on this one). */
  width: z.number().int().min(1).max(8192),
  height: z.number().int().min(1).max(8192),
  /** sensor_msgs/CompressedImage (jpeg/png) instead of sensor_msgs/Image. */
  compressed: z.boolean().default(false),
});

/** ROS 2 bridge settings: topic names, joint-name mapping, gripper interface. */
export const ros2Schema = z
  .strictObject({
    nodeName: z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'a ROS node name (letters, digits, _)').default('evovla_deploy'),
    /** Policy joint name -> ROS joint name, for robots whose URDF names differ. Missing = same name. */
    jointNames: z.record(z.string(), z.string()).default({}),
    topics: z
      .strictObject({
        jointStates: z.string().default('/joint_states'),
        trajectory: z.string().default('/arm_controller/joint_trajectory'),
        estop: z.string().default('/evovla/estop'),
        deadman: z.string().default('/evovla/deadman'),
        diagnostics: z.string().default('/diagnostics'),
        /** URDF from robot_state_publisher (std_msgs/String, transient local): the real joint limits. */
        robotDescription: z.string().default('/robot_description'),
      })
      .prefault({}),
    cameras: z.record(z.string(), cameraTopic).default({}),
    gripper: z
      .strictObject({
        /** 'position_topic': std_msgs/Float64MultiArray to a position controller; 'gripper_action': control_msgs/action/GripperCommand. */
        mode: z.enum(['position_topic', 'gripper_action']).default('position_topic'),
        topic: z.string().default('/gripper_controller/commands'),
        action: z.string().default('/gripper_controller/gripper_cmd'),
        /** ROS joint name of the gripper in /joint_states. */
        jointName: z.string().default('gripper'),
        /** Multiplies our per-finger opening (m) into the controller's unit (e.g. 2 for total width). */
        scale: z.number().gt(0).default(1),
        maxEffort: z.number().min(0).default(10),
      })
      .prefault({}),
    /** time_from_start of each trajectory point, in control periods (>= 1 so the controller interpolates). */
    trajectoryPeriods: z.number().min(1).max(10).default(1),
    /**
     * Refuse to start unless the robot's URDF arrives on topics.robotDescription, so its joint limits
     * can be checked against the policy's. When false and none arrives, the description's limits are used.
     */
    requireRobotDescription: z.boolean().default(true),
    /** How long connect() waits for the first /joint_states (and camera frames). */
    connectTimeoutS: z.number().gt(0).max(120).default(5),
  })
  .prefault({});

/** The whole deploy config file. */
export const deployConfigSchema = z
  .strictObject({
    /**
     * Robot description id (sim/robot's registry). A URDF file is refused here: the sim twin, the
     * tasks' scenes and experts, and the 6-joint safety layer are built for registered descriptions.
     */
    robot: z
      .string()
      .default('airbot_play')
      .superRefine((id, ctx) => {
        if (robotIds().includes(id)) return;
        const urdf = /\.urdf$/i.test(id);
        ctx.addIssue({
          code: 'custom',
          message: `${urdf ? `'${id}' is a URDF file; deploy accepts only a registered robot id` : `unknown robot '${id}'`} (expected one of: ${robotIds().join(', ')})`,
        });
      }),
    controlHz: z.number().min(1).max(1000).default(60),
    /** Where the MCAP command log goes. */
    logDir: z.string().default('runs/deploy'),
    /** MCAP chunk size: a crash loses at most the unflushed chunk. */
    logChunkBytes: z.number().int().min(1024).max(16 * 1024 * 1024).default(32 * 1024),
    /** Task and seed for the sim twin (and the scripted-expert policy). */
    sim: z.strictObject({ task: z.string().default('blocks'), seed: z.number().int().default(0) }).prefault({}),
    safety: safetySchema,
    ros2: ros2Schema,
  })
  .prefault({});

/** A validated, frozen deploy config with every default filled. */
export type DeployConfig = z.output<typeof deployConfigSchema>;
export type SafetyConfig = z.output<typeof safetySchema>;
export type Ros2Config = z.output<typeof ros2Schema>;

/** A config file that failed validation; `message` lists every problem with its key path. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

function formatIssue(issue: z.core.$ZodIssue): string {
  const at = issue.path.length ? issue.path.join('.') : '(top level)';
  if (issue.code === 'unrecognized_keys') {
    return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')} at ${at}`;
  }
  return `${at}: ${issue.message}`;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Validate a parsed config object (e.g. from YAML); returns a frozen config with defaults filled. */
export function parseDeployConfig(raw: unknown, source = 'config'): DeployConfig {
  const result = deployConfigSchema.safeParse(raw ?? {});
  if (!result.success) {
    throw new ConfigError(`${source}: ${result.error.issues.map(formatIssue).join('; ')}`);
  }
  return deepFreeze(result.data);
}

/** Read and validate a YAML deploy config file. */
export function loadDeployConfig(path: string): DeployConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config '${path}': ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError(`${path}: not valid YAML: ${(err as Error).message}`);
  }
  return parseDeployConfig(raw, path);
}
