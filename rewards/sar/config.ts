/**
 * SAR settings: the scorer's size, the reward (tau, alpha), the gate (m, theta), training and
 * evaluation data. One zod schema, every field documented, unknown keys rejected; read from YAML
 * (configs/sar.yaml) and validated at the boundary.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../../sim/config.ts';
import { parseConfig } from '../config.ts';

const seedList = z.array(z.number().int().min(0)).min(1);

/**
 * The stage gate: the SAR stage advances when the mean u_k of the last `window` steps reaches
 * `threshold`. These defaults are the only ones: a trained scorer stores them in sar.json, and
 * the online bookkeeping (rewards/sar/online.ts) uses the stored values unless overridden.
 */
export const sarGateSchema = z.strictObject({
  /** m: steps of u_k averaged. */
  window: z.number().int().min(1).default(6),
  /** theta: threshold on that mean. */
  threshold: z.number().gt(0).lt(1).default(0.8),
  /** 1: also claim stage k when stage k+1's window passes (see rewards/sar/score.ts). */
  lookahead: z.union([z.literal(0), z.literal(1)]).default(0),
  /**
   * Per-stage windows from the training demos: stage k's window is half the time its predicate
   * typically holds in the demos (at least 2, at most `window`), stored in sar.json. false: `window`
   * for every stage.
   */
  stageWindows: z.boolean().default(true),
});

/**
 * A key-by-key override of a scorer's stored gate and baseline smoothing (a PPO phase's `gate`):
 * unset keys keep the scorer's values, so no second set of defaults exists.
 */
export const sarGateOverrideSchema = z.strictObject({
  window: z.number().int().min(1).optional(),
  threshold: z.number().gt(0).lt(1).optional(),
  lookahead: z.union([z.literal(0), z.literal(1)]).optional(),
  /** Baseline smoothing alpha. */
  alpha: z.number().positive().max(1).optional(),
});
export type SarGateOverride = z.output<typeof sarGateOverrideSchema>;

export const sarConfigSchema = z.strictObject({
  /** The vision-language scorer. */
  model: z
    .strictObject({
      /** Camera images are rendered at this size (square), both cameras. */
      imageSize: z.number().int().min(16).max(256).default(64),
      /** Patch size of the image encoder (imageSize must be a multiple). */
      patch: z.number().int().min(2).default(8),
      /** Width each patch is projected to before the patches are flattened together. */
      patchWidth: z.number().int().positive().default(16),
      /**
       * Spatial-softmax keypoints per camera (0: none). A second, fine image path:
       * keypointPatch x keypointPatch patches -> keypointChannels (GELU) -> one logit map per
       * keypoint -> softmax over the map's positions -> the expected (x, y) of each keypoint, which
       * places a block or a finger to a fraction of a patch (the flattened 8x8 patches only say
       * which patch). The 2 x keypoints coordinates of both cameras join the patch features at the
       * image MLP's input.
       */
      keypoints: z.number().int().min(0).max(256).default(16),
      /** Patch size of the keypoint path (imageSize must be a multiple). */
      keypointPatch: z.number().int().min(1).default(4),
      /**
       * Starting value of the learnable per-keypoint logit scale (exp of `kp.log_scale`). At 1 the
       * logits of the initial weights are ~0.1, the maps stay uniform (every keypoint at the image
       * centre) and the weights hardly move: a 2500-step Stack run left them within their init range.
       */
      keypointScale: z.number().positive().default(10),
      /** Width of the keypoint path's per-patch features. */
      keypointChannels: z.number().int().positive().default(32),
      /** Hidden width of the image MLP. */
      hidden: z.number().int().positive().default(256),
      /** Width of the token embeddings of the text encoder (tokens are flattened in order, then an MLP). */
      textWidth: z.number().int().positive().default(32),
      /** Size of the shared embedding space. */
      embedDim: z.number().int().positive().default(64),
      /** Seed of the weight initialisation. */
      seed: z.number().int().default(0),
    })
    .prefault({}),
  /** u_k = sigmoid((s+ - max(s-, sh-)) / tau). */
  tau: z.number().positive().default(0.05),
  /** Baseline smoothing: ubar <- (1 - alpha) ubar + alpha u. */
  alpha: z.number().positive().max(1).default(0.05),
  /** The stage gate (sarGateSchema). */
  gate: sarGateSchema.prefault({}),
  /** Training. */
  train: z
    .strictObject({
      /** Seeds of the expert episodes the training frames come from. */
      seeds: seedList.default([0, 1, 2, 3, 4, 5, 6, 7]),
      /** Keep every n-th control step of a demo as a frame. */
      frameStride: z.number().int().positive().default(3),
      /** Also train on near-miss states made in the simulator (false: the ablation). */
      nearMissStates: z.boolean().default(true),
      /** Share of each batch drawn from the near-miss rows (when there are any). */
      nearMissShare: z.number().gt(0).lt(1).default(0.4),
      /**
       * Rows per empty-handed frame for its `expertOnly` stages (done in the expert's frame of the
       * same step, denied here): up to this many distinct ones, drawn at random. One left the
       * first round's lower/release/retreat asked on a few of the frames where the empty hand
       * hovers over the next block, and the probe was still granted them there.
       */
      expertOnlyRows: z.number().int().min(0).default(3),
      /**
       * Stages an empty-handed frame's context row asks: 'round', one from the reach before its
       * grasp on; 'all', that and one more from any earlier round (on Block Bridge the probe was
       * granted earlier objects' grasps while closing on air beside later ones).
       */
      emptyHandedContext: z.enum(['round', 'all']).default('round'),
      /** Draw demo rows by (stage, label) bucket, each equally likely (rewards/sar/train.ts). */
      balance: z.boolean().default(true),
      /** Optimisation steps. */
      steps: z.number().int().positive().default(2500),
      /** Triplets per step. */
      batch: z.number().int().positive().default(128),
      lr: z.number().positive().default(1e-3),
      weightDecay: z.number().min(0).default(0.01),
      /** Triplet margin in cosine distance. */
      margin: z.number().positive().default(0.3),
      /** Seed of the batch sampling. */
      seed: z.number().int().default(0),
      /** ONNX Runtime threads. */
      threads: z.number().int().positive().default(2),
    })
    .prefault({}),
  /** Near-miss states: perturbed replays of a demo around each stage's completion. */
  nearMiss: z
    .strictObject({
      /** Replays start this many control steps before the stage first completes. */
      before: z.number().int().min(1).default(12),
      /** ... and run this many steps past that point. */
      after: z.number().int().min(1).default(24),
      /** Keep every n-th step of a replay as a frame. */
      frameStride: z.number().int().positive().default(4),
      /** Horizontal offset of the 'offset' perturbation (metres): set down / reach / hover beside. */
      offsetMin: z.number().positive().default(0.02),
      offsetMax: z.number().positive().default(0.03),
      /** Also replay each grasp 2-3 cm beside the object to the demo's end, empty-handed (rewards/sar/data.ts). */
      emptyHanded: z.boolean().default(true),
      /** Longest empty-handed replay (control steps; unset: to the demo's end). Bounds a long task's cost. */
      emptyHandedSteps: z.number().int().positive().optional(),
      /**
       * An empty-handed replay that catches something: 'reject' redraws its offset whenever any
       * grasp holds anywhere in the replay; 'cut' redraws only when the grasp is caught within
       * `after` steps of the expert's grasp, and ends the replay at a later accidental catch
       * (keeping what came before). Long tasks' replays rarely run empty to the end.
       */
      emptyHandedCatch: z.enum(['reject', 'cut']).default('cut'),
      /**
       * Off-task replays per training seed (rewards/sar/data.ts `wanderFrames`): the arm driven to
       * random joint targets from a random demo step, as a failing learner drives it. Without them
       * the main job's scorer granted the first stage to a closed gripper parked by the robot's base.
       */
      wander: z.number().int().min(0).default(2),
      /** Random joint targets per off-task replay. */
      wanderLegs: z.number().int().positive().default(4),
      /** Control steps each off-task target is held. */
      wanderLegSteps: z.number().int().positive().default(30),
    })
    .prefault({}),
  /** Held-out evaluation. */
  eval: z
    .strictObject({
      seeds: seedList.default([100, 101, 102]),
      /** Episodes of the scripted near-miss (hacking) policy. */
      probeSeeds: seedList.default([200, 201]),
      /**
       * Off-task replays per held-out seed (rewards/sar/data.ts `wanderReplays`, with the
       * `nearMiss.wanderLegs` / `wanderLegSteps` settings) on which the gate's false claims are
       * counted, whether or not the model was trained with them.
       */
      offTaskReplays: z.number().int().min(0).default(4),
    })
    .prefault({}),
});

/** Parsed SAR settings. */
export type SarConfig = z.output<typeof sarConfigSchema>;

/** Validates SAR settings (errors name the key path, e.g. `gate.threshold`). */
export function parseSarConfig(input: unknown, source = 'sar config'): Readonly<SarConfig> {
  const c = parseConfig(sarConfigSchema, input, source);
  if (c.model.imageSize % c.model.patch !== 0) throw new ConfigError(source, 'model.patch', `must divide model.imageSize (${c.model.imageSize}), got ${c.model.patch}`);
  if (c.model.keypoints > 0 && c.model.imageSize % c.model.keypointPatch !== 0) {
    throw new ConfigError(source, 'model.keypointPatch', `must divide model.imageSize (${c.model.imageSize}), got ${c.model.keypointPatch}`);
  }
  if (c.nearMiss.offsetMax < c.nearMiss.offsetMin) throw new ConfigError(source, 'nearMiss.offsetMax', `must be >= nearMiss.offsetMin (${c.nearMiss.offsetMin}), got ${c.nearMiss.offsetMax}`);
  return c;
}

/** Reads a SAR config from a YAML (or JSON) file; errors name the file and the key. */
export function loadSarConfig(path: string): Readonly<SarConfig> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(path, '(file)', `cannot read (${(e as Error).message})`);
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (e) {
    throw new ConfigError(path, '(file)', `not valid YAML (${(e as Error).message})`);
  }
  return parseSarConfig(data, path);
}
