/**
 * Simple visual domain randomisation: light, colours and camera jitter, sampled once per episode
 * from a seeded Rng (the same seed gives the same look in any process). Physics is untouched.
 */
import { z } from 'zod';
import type { Rng } from '../rng.ts';
import type { Color, Pose, Quat, Vec3 } from '../types.ts';

const range = z
  .tuple([z.number(), z.number()])
  .refine(([lo, hi]) => Number.isFinite(lo) && Number.isFinite(hi) && lo <= hi, 'must be [lo, hi] with lo <= hi');

/** Randomisation ranges. Every field is optional; absent means "no randomisation of that". */
export const visualRandomizationSchema = z
  .object({
    /** Scale of the key light's intensity, sampled uniformly in [lo, hi]. */
    keyLightScale: range.optional(),
    /** Scale of the ambient light's intensity, in [lo, hi]. */
    ambientLightScale: range.optional(),
    /** Rotation of the key light's direction about world Z, degrees, uniform in +-value. */
    keyLightAzimuthDeg: z.number().min(0).max(180).optional(),
    /** Additive jitter of each object colour channel (linear RGB), uniform in +-value, clamped to 0..1. */
    objectColorJitter: z.number().min(0).max(1).optional(),
    /** Same for the robot's links. */
    robotColorJitter: z.number().min(0).max(1).optional(),
    /** Same for the background and the ground. */
    backgroundColorJitter: z.number().min(0).max(1).optional(),
    /** Camera position jitter in metres, per axis, uniform in +-value (fixed and wrist cameras). */
    cameraPositionJitter: z.number().min(0).max(0.5).optional(),
    /** Camera rotation jitter in degrees about each camera axis, uniform in +-value. */
    cameraRotationJitterDeg: z.number().min(0).max(45).optional(),
  })
  .strict();

export type VisualRandomization = z.infer<typeof visualRandomizationSchema>;

/** One episode's sampled look. */
export interface VisualSample {
  keyLightScale: number;
  ambientLightScale: number;
  keyLightAzimuthRad: number;
  /**
   * Additive colour offset (linear RGB) per segmentation label (objects, `robot/<link>`, 'ground',
   * 'background'): every part of a body shifts together, so a two-tone link stays two-tone.
   */
  colorOffsets: Record<string, Color>;
  /** Extra pose per camera, composed after the mount pose (in the camera frame). */
  cameraOffsets: Record<string, Pose>;
}

/** Validates a randomisation config; errors name the key and the allowed range. */
export function parseVisualRandomization(config: unknown): VisualRandomization {
  const parsed = visualRandomizationSchema.safeParse(config ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${['visualRandomization', ...i.path].join('.')}: ${i.message}`);
    throw new RangeError(`invalid visual randomisation: ${issues.join('; ')}`);
  }
  return parsed.data;
}

/** `base + offset`, clamped to 0..1 per channel. */
export function offsetColor(base: Color, offset: Color | undefined): Color {
  if (!offset) return base;
  const c = (i: number): number => Math.min(1, Math.max(0, base[i] + offset[i]));
  return [c(0), c(1), c(2)];
}

function smallRotation(rng: Rng, maxDeg: number): Quat {
  // Sequential small rotations about x, y, z, composed; fine for jitter of a few degrees.
  const h = (maxDeg * Math.PI) / 180 / 2;
  const ax = rng.uniform(-h, h), ay = rng.uniform(-h, h), az = rng.uniform(-h, h);
  const [sx, cx, sy, cy, sz, cz] = [Math.sin(ax), Math.cos(ax), Math.sin(ay), Math.cos(ay), Math.sin(az), Math.cos(az)];
  // q = qz * qy * qx
  return [
    sx * cy * cz - cx * sy * sz,
    cx * sy * cz + sx * cy * sz,
    cx * cy * sz - sx * sy * cz,
    cx * cy * cz + sx * sy * sz,
  ];
}

/**
 * Samples one episode's look. Draws from `rng` in a fixed order (lights, colour offsets by label
 * in the given order, cameras in the given order), so the result depends only on the seed and
 * the inputs.
 */
export function sampleVisuals(
  rng: Rng,
  config: VisualRandomization,
  labels: readonly string[],
  cameraNames: readonly string[],
): VisualSample {
  const keyLightScale = config.keyLightScale ? rng.uniform(config.keyLightScale[0], config.keyLightScale[1]) : 1;
  const ambientLightScale = config.ambientLightScale ? rng.uniform(config.ambientLightScale[0], config.ambientLightScale[1]) : 1;
  const az = config.keyLightAzimuthDeg ?? 0;
  const keyLightAzimuthRad = az > 0 ? (rng.uniform(-az, az) * Math.PI) / 180 : 0;
  const colorOffsets: Record<string, Color> = {};
  for (const label of labels) {
    const amount =
      label === 'ground' || label === 'background'
        ? config.backgroundColorJitter
        : label.startsWith('robot/')
          ? config.robotColorJitter
          : config.objectColorJitter;
    if (amount && amount > 0) colorOffsets[label] = [rng.uniform(-amount, amount), rng.uniform(-amount, amount), rng.uniform(-amount, amount)];
  }
  const cameraOffsets: Record<string, Pose> = {};
  const pj = config.cameraPositionJitter ?? 0;
  const rj = config.cameraRotationJitterDeg ?? 0;
  if (pj > 0 || rj > 0) {
    for (const name of cameraNames) {
      const p: Vec3 = pj > 0 ? [rng.uniform(-pj, pj), rng.uniform(-pj, pj), rng.uniform(-pj, pj)] : [0, 0, 0];
      const q: Quat = rj > 0 ? smallRotation(rng, rj) : [0, 0, 0, 1];
      cameraOffsets[name] = { p, q };
    }
  }
  return { keyLightScale, ambientLightScale, keyLightAzimuthRad, colorOffsets, cameraOffsets };
}
