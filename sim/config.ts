/**
 * Env configuration: one zod schema, every field documented, unknown keys rejected. Parsed once at
 * the boundary (createEnv, a YAML file) and then frozen.
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { envCameraSchema, type EnvCameraConfig } from './camera_config.ts';
import { physicsRandomizationSchema } from './physics_randomization.ts';

const positiveInt = z.number().int().positive();

export const envConfigSchema = z
  .strictObject({
    /** How step() reads its action: 'joint' (6 joint targets + gripper) or 'ee_delta' (tool deltas + gripper). */
    actionMode: z.enum(['joint', 'ee_delta']).default('joint'),
    /** Physics rate (Hz). 240 as in Discoverse. */
    physicsHz: positiveInt.default(240),
    /** Policy/control rate (Hz); physicsHz must be a multiple of it (substeps = physicsHz / controlHz). */
    controlHz: positiveInt.default(60),
    /** Episode length in control steps; overrides the task's maxSteps when set. */
    maxSteps: positiveInt.optional(),
    /** Scale of each named reward term; reward = sum of scale * term. Terms without a scale count 0. */
    rewardScales: z.record(z.string(), z.number().refine(Number.isFinite, 'expected a finite number')).default({ success: 1, stageProgress: 0.1 }),
    /** Natural frequency of the arm's computed-torque response (rad/s). */
    armWn: z.number().positive().default(40),
    /** Natural frequency of the finger PD (rad/s). */
    fingerWn: z.number().positive().default(60),
    /** Finger squeezing force limit (N); default: the robot description's gripper force. */
    gripperForce: z.number().positive().optional(),
    /**
     * Largest speed (m/s) the controller drives the tool point at: all arm joints' speeds are
     * scaled down together beyond it. 1 m/s, a usual tool speed limit of small collaborative arms
     * (the AIRBOT Play publishes none); random joint targets drove the hand at up to 3 m/s, and
     * striking the table at that speed kicked joint2/joint3/joint6 to 1.5-2.1x their speed limits.
     */
    toolSpeedLimit: z.number().positive().default(1),
    /** Largest tool translation per control step in ee_delta mode (m); larger requests are clamped and reported. */
    eeMaxTranslation: z.number().positive().default(0.02),
    /** Largest tool rotation per control step and axis in ee_delta mode (rad). */
    eeMaxRotation: z.number().positive().default(0.1),
    /**
     * Rapier solver iterations per physics step. 2 holds a grasp at 240 Hz and costs about 60% of
     * 4; with 1, Rapier applies a step's joint torques only in the next step and control fails.
     */
    solverIterations: z.number().int().min(2).default(2),
    /**
     * Physics steps run as this many shorter steps while both fingers pinch the same object (read
     * from the previous control step's contacts). A held object's drift along the pads is a
     * timestep error of Rapier's contact solver (more solver iterations do not reduce it), so the
     * grasp, and only the grasp, gets the finer timestep: 2 cut the slip of a block carried at
     * 0.5 m/s through six reversals from 2.5 to 1.4 mm. 1 turns it off.
     */
    graspSubsteps: z.number().int().min(1).max(8).default(2),
    /**
     * Cameras whose images the observation hook should attach (rendering lives outside sim/):
     * `{name, width, height}` plus, optionally, the renderer's fields: `fovy` or `fx`/`fy`/`cx`/`cy`,
     * `near`, `far`, `mount`, `depth`, `segmentation` (sim/camera_config.ts).
     */
    cameras: z.array(envCameraSchema).default([]),
    /**
     * Per-episode physics randomisation ranges (object mass and friction, joint damping, actuator
     * strength, action latency; sim/physics_randomization.ts). Absent: none (the benchmarks' default).
     */
    physicsRandomization: physicsRandomizationSchema.optional(),
  })
  .refine((c) => c.physicsHz % c.controlHz === 0, {
    message: 'physicsHz must be a whole multiple of controlHz',
    path: ['controlHz'],
  });

export type EnvConfig = z.output<typeof envConfigSchema>;
/** A camera entry of the env config. */
export type CameraConfig = EnvCameraConfig;

/** Bad configuration: names the source (a file or 'env config'), the key and what was expected. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly source: string,
    readonly key: string,
    readonly expected: string,
  ) {
    super(`${source}: key '${key}': ${expected}`);
  }
}

/**
 * Validate and freeze an env config. `source` names where the input came from (a file path) so the
 * error can point there.
 */
export function parseEnvConfig(input: unknown, source = 'env config'): Readonly<EnvConfig> {
  const r = envConfigSchema.safeParse(input ?? {});
  if (!r.success) {
    const { key, message } = describeConfigIssue(envConfigSchema, r.error.issues[0], input);
    throw new ConfigError(source, key, message);
  }
  const c = r.data;
  return Object.freeze({ ...c, rewardScales: Object.freeze({ ...c.rewardScales }), cameras: deepFreeze(c.cameras) });
}

/**
 * The key path of a validation issue (the unknown key itself for an unknown key; '(root)' for the
 * top level) and what was expected: for an unknown key, the keys allowed there (read from
 * `schema`); otherwise zod's message and the value given. Every config parser of the project
 * words its errors with this.
 */
export function describeConfigIssue(schema: z.ZodType, issue: z.core.$ZodIssue, input: unknown): { key: string; message: string } {
  if (issue.code === 'unrecognized_keys') {
    const keys = keysAt(schema, issue.path, input);
    return { key: [...issue.path.map(String), issue.keys[0]].join('.'), message: `unknown key (expected one of: ${keys ? keys.join(', ') : '?'})` };
  }
  const got = issue.path.reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as Record<PropertyKey, unknown>)[k] : undefined), input);
  return { key: issue.path.map(String).join('.') || '(root)', message: `${issue.message}, got ${JSON.stringify(got)}` };
}

function deepFreeze<T>(x: T): T {
  if (x && typeof x === 'object') {
    for (const v of Object.values(x)) deepFreeze(v);
    Object.freeze(x);
  }
  return x;
}

type SchemaDef = {
  type: string;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  innerType?: z.ZodType;
  in?: z.ZodType;
  options?: z.ZodType[];
  values?: unknown[];
};
const defOf = (s: z.ZodType): SchemaDef => (s as unknown as { _zod: { def: SchemaDef } })._zod.def;

/**
 * The keys the object schema at `path` accepts (for 'unknown key' messages), following the input
 * through arrays, wrappers and tagged unions (the option whose literal fields match the input).
 */
function keysAt(schema: z.ZodType, path: readonly PropertyKey[], value: unknown): string[] | null {
  let d = defOf(schema);
  while (d.innerType || (d.type === 'pipe' && d.in)) d = defOf((d.innerType ?? d.in)!);
  if (d.type === 'union' && d.options) {
    const v = (value ?? {}) as Record<string, unknown>;
    const match = d.options.find((o) => {
      const shape = defOf(o).shape ?? {};
      return Object.entries(shape).every(([k, f]) => defOf(f).type !== 'literal' || defOf(f).values!.includes(v[k]));
    });
    return match ? keysAt(match, path, value) : null;
  }
  const next = (value as Record<PropertyKey, unknown> | undefined)?.[path[0]];
  if (d.type === 'object' && d.shape) return path.length === 0 ? Object.keys(d.shape) : d.shape[path[0] as string] ? keysAt(d.shape[path[0] as string], path.slice(1), next) : null;
  if (d.type === 'array' && d.element && path.length > 0) return keysAt(d.element, path.slice(1), next);
  return null;
}

/**
 * Read an env config from a YAML (or JSON) file; errors name the file and the key.
 */
export function loadEnvConfig(path: string): Readonly<EnvConfig> {
  const fs = process.getBuiltinModule('node:fs') as typeof import('node:fs');
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(path, '(file)', `cannot read (${(e as Error).message})`);
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (e) {
    throw new ConfigError(path, '(file)', `expected YAML (${(e as Error).message.split('\n')[0]})`);
  }
  if (data !== null && data !== undefined && (typeof data !== 'object' || Array.isArray(data))) {
    throw new ConfigError(path, '(root)', `expected a mapping of config keys, got ${Array.isArray(data) ? 'a list' : typeof data}`);
  }
  return parseEnvConfig(data ?? {}, path);
}
