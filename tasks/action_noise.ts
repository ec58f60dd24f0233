/**
 * Noise injected into the actions an expert's demonstration executes, to record recovery data
 * (DART, Laskey et al. 2017, "DART: Noise Injection for Robust Imitation Learning").
 *
 * While recording, the env is stepped with the expert's joint targets plus a Gaussian offset per
 * joint, drawn from a seeded stream and held for `holdSteps` control steps (a held offset moves the
 * arm off the demonstrated path; a fresh one every step would mostly be filtered out by the joint
 * controllers). The label kept for learning is the expert's own clean action, computed from the
 * perturbed state the episode is actually in, so the demos show how the expert corrects a drift
 * (the states a cloned policy reaches after its own small errors), which clean demos never do.
 *
 * The scripted experts interpolate their joint command toward IK goals computed from the state at
 * each script step, and they emit absolute joint targets: after a perturbation, the clean label
 * still points to where the arm should be, so it is corrective in joint space, and later script
 * steps aim from where the objects really are (e.g. the block as it was grasped).
 *
 * The gripper opening is not perturbed: a perturbed opening drops a held object or closes early,
 * which ends the demonstration instead of showing a recovery.
 */
import { Rng } from '../sim/rng.ts';

/** Settings of the action noise (all three together decide every offset of an episode). */
export interface ActionNoise {
  /** Standard deviation of the offset added to each of the six joint targets (rad); 0 = off. */
  std: number;
  /** Control steps each offset is held before a new one is drawn (>= 1). */
  holdSteps: number;
  /** Seed of the noise stream; mixed with the episode's seed, so each episode draws its own. */
  seed: number;
}

/** Number of arm joints perturbed (the seventh action entry, the gripper, is left alone). */
const ARM_JOINTS = 6;

/** Check a noise setting; `where` names it in the error (a config key path or a flag). */
export function validateActionNoise(noise: ActionNoise, where: string): ActionNoise {
  if (!Number.isFinite(noise.std) || noise.std < 0) throw new RangeError(`${where}.std must be a finite number >= 0 (rad), got ${noise.std}`);
  if (!Number.isInteger(noise.holdSteps) || noise.holdSteps < 1) throw new RangeError(`${where}.holdSteps must be an integer >= 1, got ${noise.holdSteps}`);
  if (!Number.isInteger(noise.seed) || noise.seed < 0) throw new RangeError(`${where}.seed must be an integer >= 0, got ${noise.seed}`);
  return noise;
}

/**
 * The executed actions of one episode: `apply(label)` returns the action to send to the env for
 * the next control step (the label plus the current held offset on the arm joints, rounded to
 * float32 as episode files store it). Call it once per control step, in order.
 */
export class ActionNoiseInjector {
  private readonly rng: Rng;
  private readonly offset = new Float64Array(ARM_JOINTS);
  private steps = 0;

  constructor(
    readonly noise: ActionNoise,
    episodeSeed: number,
  ) {
    validateActionNoise(noise, 'action noise');
    this.rng = new Rng(noise.seed).fork(`action-noise/${episodeSeed}`);
  }

  apply(label: ArrayLike<number>): Float32Array {
    if (label.length < ARM_JOINTS) throw new RangeError(`action noise expects joint actions of at least ${ARM_JOINTS} entries, got ${label.length}`);
    if (this.steps % this.noise.holdSteps === 0) for (let j = 0; j < ARM_JOINTS; j++) this.offset[j] = this.rng.normal(0, this.noise.std);
    this.steps++;
    const out = Float32Array.from(label);
    for (let j = 0; j < ARM_JOINTS; j++) out[j] = label[j] + this.offset[j];
    return out;
  }
}

/** A short name for a noise setting, for folder names: `dart0.02h10` (`dart0.02h10s3` with a seed). */
export function actionNoiseTag(noise: ActionNoise): string {
  return `dart${noise.std}h${noise.holdSteps}${noise.seed ? `s${noise.seed}` : ''}`;
}
