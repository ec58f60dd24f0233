/**
 * The long-horizon memory's key-frame bank: per env, a bounded list of feature vectors taken at
 * the moments that matter. EvoVLA's paper describes "selective context retention" without code or
 * formulas; our rule:
 *
 * - Keep: the first frame of an episode (the scene before anything moved: the task context), and
 *   afterwards a frame whose stage score or object pose changed sharply since the last kept frame
 *   (|delta u| >= `stageScoreJump`, or the pose moved by >= `poseJump.translation` metres or
 *   turned by >= `poseJump.rotation` radians), at most one per `minGap` steps.
 * - Drop, when all `slots` are full: the oldest kept frame except the episode's first, so the bank
 *   always holds the context plus the most recent key events (a FIFO behind a pinned slot 0).
 *   Older events matter less to the current stage: a stage's evidence is its recent key frames.
 * - `reset(env)` empties that env's bank (a new episode).
 *
 * Training (PPO rollouts) and deploy keep the bank with this same class, so the policy sees memory
 * filled the same way in both. `batch()` gives the policy.onnx inputs `memory` [B, M, F] and
 * `memory_mask` [B, M] (1 = slot filled), slots in the order they were kept.
 */
import { z } from 'zod';
import { parseConfig } from '../../rewards/config.ts';

/** Bank settings. */
export const memoryBankConfigSchema = z.strictObject({
  /** Slots per env (M). */
  slots: z.number().int().min(2).max(256).default(8),
  /** Keep a frame when the stage score moved this much since the last kept frame. */
  stageScoreJump: z.number().positive().default(0.25),
  /** Keep a frame when the object pose moved this much since the last kept frame. */
  poseJump: z
    .strictObject({
      /** Metres. */
      translation: z.number().positive().default(0.03),
      /** Radians. */
      rotation: z.number().positive().default(0.35),
    })
    .prefault({}),
  /** Fewest steps between two kept frames (a jump spread over a few steps is one event). */
  minGap: z.number().int().min(0).default(3),
});

/** Parsed bank settings. */
export type MemoryBankConfig = z.output<typeof memoryBankConfigSchema>;

/** Validates bank settings. */
export function parseMemoryBankConfig(input: unknown, source = 'memory bank config'): Readonly<MemoryBankConfig> {
  return parseConfig(memoryBankConfigSchema, input, source);
}

/** What the bank is shown at each step of one env. */
export interface MemoryObservation {
  /** Control step in the episode. */
  step: number;
  /** The policy's features [F] at this step. */
  features: ArrayLike<number>;
  /** The SAR stage score u_k of the current stage (0..1). */
  stageScore: number;
  /**
   * Pose of the current stage's object: [x, y, z] in metres, then optionally an axis-angle
   * rotation [rx, ry, rz] in radians.
   */
  pose: ArrayLike<number>;
}

/** Why a frame was kept (for logs and tests). */
export type KeepReason = 'first' | 'stage' | 'pose' | null;

interface Slot {
  step: number;
  features: Float32Array;
}

interface EnvBank {
  slots: Slot[];
  lastStep: number;
  lastScore: number;
  lastPose: Float64Array;
}

/** Per-env key-frame banks for `numEnvs` envs with feature size `featureDim`. */
export class MemoryBank {
  private readonly banks: (EnvBank | null)[];

  constructor(
    readonly numEnvs: number,
    readonly featureDim: number,
    readonly config: Readonly<MemoryBankConfig> = parseMemoryBankConfig({}),
  ) {
    if (!Number.isInteger(numEnvs) || numEnvs < 1) throw new RangeError(`numEnvs must be an integer >= 1, got ${numEnvs}`);
    if (!Number.isInteger(featureDim) || featureDim < 1) throw new RangeError(`featureDim must be an integer >= 1, got ${featureDim}`);
    this.banks = new Array(numEnvs).fill(null);
  }

  /**
   * Why `observe` would keep this step, or null, without storing anything. The decision never
   * reads the features, so a caller can skip computing them for a step the bank will not keep.
   */
  keepReason(env: number, obs: Omit<MemoryObservation, 'features'>): KeepReason {
    this.checkEnv(env);
    if (obs.pose.length !== 3 && obs.pose.length !== 6) throw new RangeError(`pose must be [x,y,z] or [x,y,z,rx,ry,rz], got ${obs.pose.length} values`);
    if (!Number.isFinite(obs.stageScore)) throw new RangeError(`stageScore must be finite, got ${obs.stageScore}`);
    const bank = this.banks[env];
    if (!bank) return 'first';
    if (obs.step - bank.lastStep < this.config.minGap) return null;
    if (Math.abs(obs.stageScore - bank.lastScore) >= this.config.stageScoreJump) return 'stage';
    if (this.poseMoved(bank.lastPose, obs.pose)) return 'pose';
    return null;
  }

  /** Shows env `env` one step; returns why the frame was kept, or null. */
  observe(env: number, obs: MemoryObservation): KeepReason {
    this.checkEnv(env);
    if (obs.features.length !== this.featureDim) throw new RangeError(`features must have ${this.featureDim} values, got ${obs.features.length}`);
    const reason = this.keepReason(env, obs);
    const bank = this.banks[env];
    if (reason === null) return null;
    const slot = { step: obs.step, features: Float32Array.from(obs.features) };
    if (!bank) {
      this.banks[env] = { slots: [slot], lastStep: obs.step, lastScore: obs.stageScore, lastPose: Float64Array.from(obs.pose) };
      return reason;
    }
    // Full: drop the oldest after the pinned first frame.
    if (bank.slots.length >= this.config.slots) bank.slots.splice(1, 1);
    bank.slots.push(slot);
    bank.lastStep = obs.step;
    bank.lastScore = obs.stageScore;
    bank.lastPose = Float64Array.from(obs.pose);
    return reason;
  }

  private poseMoved(last: Float64Array, pose: ArrayLike<number>): boolean {
    const dt = Math.hypot(pose[0] - last[0], pose[1] - last[1], pose[2] - last[2]);
    if (dt >= this.config.poseJump.translation) return true;
    if (pose.length === 6 && last.length === 6) {
      const dr = Math.hypot(pose[3] - last[3], pose[4] - last[4], pose[5] - last[5]);
      if (dr >= this.config.poseJump.rotation) return true;
    }
    return false;
  }

  /** Empties env `env`'s bank (new episode), or every bank. */
  reset(env?: number): void {
    if (env === undefined) this.banks.fill(null);
    else {
      this.checkEnv(env);
      this.banks[env] = null;
    }
  }

  /** Steps of the frames env `env` holds, oldest first. */
  keptSteps(env: number): number[] {
    this.checkEnv(env);
    return this.banks[env]?.slots.map((s) => s.step) ?? [];
  }

  /**
   * The policy inputs for the given envs (default all, in order): `memory` [B, M, F] with empty
   * slots zero, `memory_mask` [B, M].
   */
  batch(envs: readonly number[] = Array.from({ length: this.numEnvs }, (_, i) => i)): { memory: Float32Array; mask: Float32Array; shape: [number, number, number] } {
    const m = this.config.slots;
    const f = this.featureDim;
    const memory = new Float32Array(envs.length * m * f);
    const mask = new Float32Array(envs.length * m);
    envs.forEach((env, b) => {
      this.checkEnv(env);
      this.banks[env]?.slots.forEach((slot, j) => {
        memory.set(slot.features, (b * m + j) * f);
        mask[b * m + j] = 1;
      });
    });
    return { memory, mask, shape: [envs.length, m, f] };
  }

  private checkEnv(env: number): void {
    if (!Number.isInteger(env) || env < 0 || env >= this.numEnvs) throw new RangeError(`env must be an integer in 0..${this.numEnvs - 1}, got ${env}`);
  }
}
