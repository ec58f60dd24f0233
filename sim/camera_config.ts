/**
 * Camera configuration as plain data: the zod schemas shared by the env config (sim/config.ts,
 * YAML files) and the headless renderer (sim/render/camera.ts). Nothing here draws, so sim/ can
 * validate cameras without three.js.
 *
 * Intrinsics follow OpenCV: pixel (u, v) with u to the right, v down, the centre of the top-left
 * pixel at (0, 0); fx, fy, cx, cy in pixels, or a vertical field of view `fovy` in degrees. The
 * camera frame is OpenGL's (x right, y up, looking along -z).
 */
import { z } from 'zod';
import type { Pose, Vec3 } from './types.ts';

const finite = z.number().refine(Number.isFinite, 'expected a finite number');
const vec3 = z.tuple([finite, finite, finite], { error: 'expected [x, y, z] in metres' });
const quat = z
  .tuple([finite, finite, finite, finite], { error: 'expected a unit quaternion [x, y, z, w]' })
  .refine((q) => Math.abs(Math.hypot(...q) - 1) < 1e-3, 'must be a unit quaternion [x, y, z, w]');
const pose = z.strictObject({ p: vec3, q: quat }, { error: 'expected a pose {p: [x, y, z], q: [x, y, z, w]}' });

/**
 * Where a camera sits.
 * - `world`: a fixed camera, `pose` of the camera frame in the world.
 * - `lookAt`: a fixed camera at `eye` looking at `target`, world Z up.
 * - `link`: rigidly attached to a robot link (`SimState.links[link]`) or, with link 'ee', to the
 *   tool frame (`SimState.ee`); `pose` is the camera frame in that frame.
 */
export const cameraMountSchema = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({ kind: z.literal('world'), pose }),
    z.strictObject({ kind: z.literal('lookAt'), eye: vec3, target: vec3 }),
    z.strictObject({ kind: z.literal('link'), link: z.string().min(1), pose }),
  ],
  { error: "expected a mount {kind: 'world', pose} | {kind: 'lookAt', eye, target} | {kind: 'link', link, pose}" },
);

export type CameraMount = { kind: 'world'; pose: Pose } | { kind: 'lookAt'; eye: Vec3; target: Vec3 } | { kind: 'link'; link: string; pose: Pose };

export const cameraNameSchema = z.string().min(1).regex(/^[A-Za-z0-9_-]+$/, 'letters, digits, _ and - only');
const fovy = z.number().gt(1).lt(179);
const clip = z.number().positive();

/** The optional fields a camera config may set besides name and size (no defaults here). */
const cameraFields = {
  /** Vertical field of view in degrees; used when fx/fy are not given. */
  fovy: fovy.optional(),
  fx: z.number().positive().optional(),
  fy: z.number().positive().optional(),
  cx: finite.optional(),
  cy: finite.optional(),
  /** Clip planes in metres; depth outside (near, far) reads as 0. */
  near: clip.optional(),
  far: clip.optional(),
  mount: cameraMountSchema.optional(),
  /** Which images to produce besides RGB. */
  depth: z.boolean().optional(),
  segmentation: z.boolean().optional(),
};

const farBeyondNear = {
  message: 'far must be greater than near',
  path: ['far'],
};

/** A full camera config for the renderer (CameraRig); unknown keys are errors. */
export const cameraConfigSchema = z
  .strictObject({
    name: cameraNameSchema,
    width: z.number().int().min(8).max(2048).default(128),
    height: z.number().int().min(8).max(2048).default(128),
    ...cameraFields,
    fovy: fovy.default(60),
    near: clip.default(0.01),
    far: clip.default(5),
    mount: cameraMountSchema,
    depth: z.boolean().default(true),
    segmentation: z.boolean().default(true),
  })
  .refine((c) => c.far > c.near, farBeyondNear);

export type CameraConfig = z.input<typeof cameraConfigSchema>;

/**
 * A camera entry of the env config: name and image size, plus any of the renderer's fields
 * (intrinsics, clip planes, mount, image kinds). Fields left out come from the camera's built-in
 * placement ('eye_side', 'eye_arm') or the renderer's defaults; no defaults are filled in here,
 * so a config that names none hashes as before. Sizes are any positive integers here (an
 * observation hook other than the renderer may use them); the renderer checks its own bounds.
 */
export const envCameraSchema = z
  .strictObject({
    /** Camera name, e.g. 'eye_side' or 'eye_arm' (the key in Observation.images). */
    name: cameraNameSchema,
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    ...cameraFields,
  })
  .refine((c) => c.near === undefined || c.far === undefined || c.far > c.near, farBeyondNear);

export type EnvCameraConfig = z.output<typeof envCameraSchema>;

/** The keys a camera entry may have, for error messages. */
export const ENV_CAMERA_KEYS: readonly string[] = Object.keys(envCameraSchema.shape);
