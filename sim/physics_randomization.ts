/**
 * Physics randomisation for sim-to-real: per-episode draws of object mass and friction, extra
 * joint damping, actuator strength and action latency, from ranges given in the env config
 * (`physicsRandomization`). Every draw comes from a stream forked from the episode's seeded Rng,
 * so a seed gives the same physics in any process, and turning the randomisation on does not
 * change the scene's layout (the layout's draws come first, from the parent stream). Absent
 * (the default, as in every benchmark) means no randomisation at all.
 */
import { z } from 'zod';
import type { Rng } from './rng.ts';
import type { SceneDesc } from './types.ts';

const range = (min: number) =>
  z
    .tuple([z.number().min(min), z.number().min(min)])
    .refine(([lo, hi]) => Number.isFinite(lo) && Number.isFinite(hi) && lo <= hi, `expected [lo, hi] with ${min} <= lo <= hi`);

/** Randomisation ranges; every field optional, absent means "not randomised". */
export const physicsRandomizationSchema = z.strictObject({
  /** Each dynamic object's mass is multiplied by its own factor drawn uniformly from [lo, hi]. */
  objectMassScale: range(0.01).optional(),
  /** Each object's friction coefficients (all its colliders) are multiplied by its own factor from [lo, hi]. */
  objectFrictionScale: range(0).optional(),
  /**
   * Viscous damping (N m s/rad) added to each arm joint, drawn per joint from [lo, hi]: joint
   * friction the controller does not know about (it still acts against the joint's motion).
   */
  jointDamping: range(0).optional(),
  /** The arm's torque limits and the grip force are multiplied by one factor drawn from [lo, hi]. */
  actuatorStrengthScale: range(0.01).optional(),
  /**
   * Latency of the action in control steps, an integer drawn uniformly from [lo, hi]: the action
   * given at step t is applied at step t + latency; until then the previous command is held.
   */
  actionLatencySteps: z
    .tuple([z.number().int().min(0).max(60), z.number().int().min(0).max(60)])
    .refine(([lo, hi]) => lo <= hi, 'expected [lo, hi] with lo <= hi (integers 0..60)')
    .optional(),
});

export type PhysicsRandomization = z.infer<typeof physicsRandomizationSchema>;

/** One episode's draw (recorded in the episode header as `meta.physics`). */
export interface PhysicsSample {
  /** Mass factor per dynamic object (1 when not randomised). */
  objectMassScale: Record<string, number>;
  /** Friction factor per object. */
  objectFrictionScale: Record<string, number>;
  /** Extra viscous damping per arm joint (N m s/rad). */
  jointDamping: number[];
  /** Factor on the arm's torque limits and the grip force. */
  actuatorStrengthScale: number;
  /** Control steps between an action and its effect. */
  actionLatencySteps: number;
}

/**
 * Draw one episode's physics from `config` with `rng` (fork it from the episode's stream). Draws
 * happen in a fixed order (objects in scene order, then joints), each field only when configured.
 */
export function samplePhysics(rng: Rng, config: PhysicsRandomization, scene: SceneDesc, armJoints: number): PhysicsSample {
  const draw = (r: readonly [number, number] | undefined): number => (r ? rng.uniform(r[0], r[1]) : 1);
  const objectMassScale: Record<string, number> = {};
  const objectFrictionScale: Record<string, number> = {};
  for (const o of scene.objects) {
    objectMassScale[o.name] = o.type === 'dynamic' ? draw(config.objectMassScale) : 1;
    objectFrictionScale[o.name] = draw(config.objectFrictionScale);
  }
  const jointDamping = Array.from({ length: armJoints }, () => (config.jointDamping ? rng.uniform(config.jointDamping[0], config.jointDamping[1]) : 0));
  const actuatorStrengthScale = draw(config.actuatorStrengthScale);
  const lat = config.actionLatencySteps;
  const actionLatencySteps = lat ? lat[0] + rng.int(lat[1] - lat[0] + 1) : 0;
  return { objectMassScale, objectFrictionScale, jointDamping, actuatorStrengthScale, actionLatencySteps };
}

/**
 * The scene with the sample's object masses and friction applied. A body without an explicit mass
 * has its colliders' densities scaled; friction is scaled from the collider's own coefficient or
 * the simulator's default (`defaultFriction`).
 */
export function applyPhysicsSample(scene: SceneDesc, sample: PhysicsSample, defaultFriction: number): SceneDesc {
  return {
    ...scene,
    objects: scene.objects.map((o) => {
      const m = sample.objectMassScale[o.name] ?? 1;
      const f = sample.objectFrictionScale[o.name] ?? 1;
      return {
        ...o,
        ...(o.mass !== undefined ? { mass: o.mass * m } : {}),
        colliders: o.colliders.map((c) => ({
          ...c,
          friction: (c.friction ?? defaultFriction) * f,
          ...(o.mass === undefined && o.type === 'dynamic' ? { density: (c.density ?? 1000) * m } : {}),
        })),
      };
    }),
  };
}
