/**
 * The training config (`evovla train --config FILE.yaml`): YAML validated with zod. Every field is
 * documented here and has a default except `task`; unknown keys are refused with their path.
 *
 * A run is a list of `phases` executed in order on one model (today: `bc`; the pipeline adds
 * more kinds, e.g. SAR and PPO, as new members of the `phases` union, each with its own phase
 * function). After the last phase the run exports `policy.onnx` and, unless `eval.episodes` is 0,
 * evaluates it on held-out seeds.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { actionNoiseTag, type ActionNoise } from '../../tasks/action_noise.ts';
import { TASKS } from '../../tasks/index.ts';
import { rewardConfigSchema } from '../../rewards/config.ts';
import { poeConfigSchema } from '../../rewards/poe/world_model.ts';
import { physicsRandomizationSchema } from '../../sim/physics_randomization.ts';
import { describeConfigIssue } from '../../sim/config.ts';
import { VlaConfigSchema } from '../vla/config.ts';
import { sarGateOverrideSchema } from '../../rewards/sar/config.ts';
import { ppoConfigSchema } from './ppo.ts';
import { SarPhaseSchema } from './sar_phase.ts';

/** First eval seed: demos use seeds from `data.demoSeed` (0 by default), eval from here up. */
export const EVAL_SEED_BASE = 1_000_000;

/** Behaviour cloning on demonstrations (policy/train/bc.ts). */
export const BcPhaseSchema = z.strictObject({
  kind: z.literal('bc'),
  /** Optimizer steps (one batch each). */
  steps: z.number().int().min(1).max(10_000_000).default(20_000),
  /** Frames per batch. */
  batch: z.number().int().min(1).max(4096).default(64),
  /** AdamW peak learning rate, linear warmup, then cosine decay to lr * minLrRatio. */
  lr: z.number().gt(0).max(1).default(3e-4),
  warmupSteps: z.number().int().min(0).default(500),
  minLrRatio: z.number().min(0).max(1).default(0.1),
  weightDecay: z.number().min(0).max(1).default(0.01),
  /** Global gradient-norm clip. */
  clipNorm: z.number().gt(0).default(1),
  /** Random image shift in pixels (augmentation; 0 = off). */
  shift: z.number().int().min(0).max(32).default(4),
  /**
   * Weight of an auxiliary loss (0: off): a small head on the trunk's features predicts every
   * object's position relative to the tool (the simulator's ground truth recorded in the demos,
   * normalised), L1, added to the action loss. It teaches the image encoder to localise the
   * objects; training-time only (the head, `aux.*`, is not part of policy.onnx, which reads
   * images alone). The validation lines then also report `val_aux_cm`, the mean position error.
   */
  auxState: z.number().min(0).max(100).default(0),
  /** Steps between metrics.jsonl lines. */
  logEvery: z.number().int().min(1).default(50),
  /** Steps between validation losses (on the held-out demo episodes) and checkpoints. */
  checkpointEvery: z.number().int().min(1).default(1000),
  /** Validation batches per check (fixed frames, no augmentation). */
  valBatches: z.number().int().min(1).default(8),
  /**
   * Optional wall-clock budget in minutes: the phase stops at the first checkpoint after it. Runs
   * cut by the clock are not reproducible step for step; leave it unset for that.
   */
  maxMinutes: z.number().gt(0).optional(),
});
export type BcPhaseConfig = z.infer<typeof BcPhaseSchema>;

/**
 * PPO fine-tuning with EvoVLA's rewards (policy/train/ppo_phase.ts): the trunk frozen, the heads
 * (+ memory gate) trained on cached features. Every PPO hyper-parameter of policy/train/ppo.ts's
 * schema is a field here too (defaults EvoVLA's; `totalSteps` is this phase's env-step budget).
 */
export const PpoPhaseSchema = z.strictObject({
  kind: z.literal('ppo'),
  ...ppoConfigSchema.shape,
  /** Envs stepped together, and the worker processes they run in (0: this process). */
  envs: z.number().int().min(1).max(1024).default(8),
  workers: z.number().int().min(0).max(256).default(2),
  /** Episode length in control steps (time limit: truncation); default the task's. */
  episodeSteps: z.number().int().min(1).optional(),
  /**
   * Seeded per-episode physics randomisation of the rollout envs for sim-to-real (object mass and
   * friction, joint damping, actuator strength, action latency; sim/physics_randomization.ts);
   * absent: none. Each episode's draw is in its episode header (`meta.physics`).
   */
  physicsRandomization: physicsRandomizationSchema.optional(),
  /** EvoVLA's parts, each switchable (the ablation): stage-aligned reward, pose curiosity, memory. */
  sar: z.boolean().default(true),
  poe: z.boolean().default(true),
  memory: z.boolean().default(true),
  /**
   * log-std of the policy (normalised action units) at the start of PPO; null keeps the model's.
   * BC never trains it, and exploration noise much above ~0.2 demo standard deviations per step
   * undoes a precise manipulation policy before PPO can learn anything.
   */
  initLogStd: z.number().min(-10).max(2).nullable().default(-1.6),
  /**
   * Shaping that reads no stage predicate (rewards/shaping.ts): potential-based, on the tool's
   * distance to the nearest task object, times `scale`, in the extrinsic stream. null: none (the
   * default, EvoVLA's recipe); the ablation's arms all use it (bench:evovla).
   */
  shaping: z.strictObject({ scale: z.number().positive().default(1) }).nullable().default(null),
  /** Checkpoint every this many PPO iterations (and after the last); `evovla train --resume` continues from the latest. */
  checkpointEvery: z.number().int().min(1).default(5),
  /**
   * Stop an update's epochs once an epoch's mean approximate KL passes this (null: never). 0.02 by
   * default for the VLA: at lr 3e-4 one update of the heads moved the policy by a KL of 0.08-0.30
   * (a 0.2-std policy makes small shifts of the mean large in KL).
   */
  targetKl: z.number().positive().nullable().default(0.02),
  /** Key-frame bank slots M when memory is on. */
  memorySlots: z.number().int().min(2).max(256).default(8),
  /**
   * SAR gate (window, threshold, lookahead) and baseline smoothing (alpha), key by key over the SAR
   * model's own (sar.json, from configs/sar.yaml); null or unset keys: the model's.
   */
  gate: sarGateOverrideSchema.nullable().default(null),
  /** Scales of the reward terms (rewards/config.ts; rho here is only reported, PPO's rho weights the advantages). */
  rewards: rewardConfigSchema.prefault({}),
  /** POE world model settings (rewards/poe/world_model.ts). */
  poeModel: poeConfigSchema.prefault({}),
  /** Held-out episodes the greedy policy is evaluated on before and after PPO (success, hallucination); 0: skip. */
  evalEpisodes: z.number().int().min(0).default(20),
});
export type PpoPhaseConfig = z.infer<typeof PpoPhaseSchema>;

/** The phases a run may list; new kinds are added to this union. */
export const PhaseSchema = z.discriminatedUnion('kind', [BcPhaseSchema, SarPhaseSchema, PpoPhaseSchema]);
export type PhaseConfig = z.infer<typeof PhaseSchema>;

/** Schema of the whole training config. */
export const TrainConfigSchema = z.strictObject({
  /** Run name: outputs go to `<runsDir>/<name>/`. Letters, digits, _ . - */
  name: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only'),
  /** Folder holding run folders. */
  runsDir: z.string().min(1).default('runs'),
  /** Task id (tasks/index.ts). */
  task: z.string().refine((t) => Object.hasOwn(TASKS, t), { message: `unknown task; expected one of ${Object.keys(TASKS).join(', ')}` }),
  /** Seed of parameter initialisation and batch sampling. */
  seed: z.number().int().min(0).default(0),
  /** Intra-op threads for training and evaluation inference. */
  threads: z.number().int().min(1).max(256).default(2),
  model: VlaConfigSchema.prefault({}),
  data: z
    .strictObject({
      /** Folder of episode files; generated with the task's expert when it has none. */
      demoDir: z.string().optional(),
      /** Demos to use (generated if missing): seeds demoSeed .. demoSeed + episodes - 1. */
      episodes: z.number().int().min(1).max(100_000).default(100),
      demoSeed: z.number().int().min(0).max(EVAL_SEED_BASE - 1).default(0),
      /** Demo episodes held out for the validation loss (the last ones by file name). */
      valEpisodes: z.number().int().min(0).default(5),
      /**
       * Training frames dropped from still waits (FrameCache.stillWait): a frame whose observation
       * did not move since the last one while the expert's command stays the same for this many
       * actions is left out of training (validation keeps every frame). The grasp's settle wait is
       * the case: from a state the images cannot tell apart its labels say "hold" 1..n more steps,
       * and a BC policy held the grasped block for the rest of the episode. 0 keeps every frame.
       */
      dropWaits: z.number().int().min(0).max(1000).default(0),
      /**
       * What makes a frame part of a wait for `dropWaits`: 'still' (the observation did not move
       * since the last frame, and the command holds) or 'command' (the expert's command holds,
       * whatever the arm does: also the fingers closing on the block and, in demos recorded with
       * action noise, the jitter the noise adds during the wait, which 'still' keeps).
       */
      dropWaitsBy: z.enum(['still', 'command']).default('still'),
      /** Processes recording missing demos in parallel (0 or 1: in the training process). */
      workers: z.number().int().min(0).max(64).default(2),
      /**
       * Action noise while recording the demos (DART recovery data, tasks/action_noise.ts): the
       * expert's six joint targets get a Gaussian offset of `std` rad, held for `holdSteps` control
       * steps and drawn from `seed` mixed with each demo's seed; the demos keep the expert's clean
       * action as the label. Absent or std 0: clean demos. With noise the default demo folder gets a
       * suffix naming it (e.g. `_dart0.01h10`), so clean and noisy demos never mix.
       */
      noise: z
        .strictObject({
          std: z.number().min(0).max(0.5),
          holdSteps: z.number().int().min(1).default(10),
          seed: z.number().int().min(0).default(0),
        })
        .optional(),
    })
    .prefault({}),
  phases: z.array(PhaseSchema).min(1).default([{ kind: 'bc' } as never]),
  checkpoints: z
    .strictObject({
      /** Periodic checkpoints kept (older ones are deleted); best.safetensors is kept besides. */
      keep: z.number().int().min(1).default(3),
    })
    .prefault({}),
  /** How the policy is run in closed loop (eval; recorded in policy.onnx metadata for deploy). */
  inference: z
    .strictObject({
      /**
       * 'chunk': run the model every `execute` steps and play the first `execute` actions of the
       * chunk. 'ensemble': run it every step and average, for each step, every chunk's prediction
       * of it with weights exp(-ensembleDecay * age), age = steps since the prediction was made
       * (temporal ensembling as ACT; decay > 0 favours the newest predictions, < 0 the oldest, ACT's
       * own m = 0.01 is decay -0.01).
       */
      mode: z.enum(['chunk', 'ensemble']).default('chunk'),
      execute: z.number().int().min(1).default(8),
      ensembleDecay: z.number().min(-1).max(10).default(0.1),
    })
    .prefault({}),
  eval: z
    .strictObject({
      /** Episodes evaluated after training (0: skip). Seeds EVAL_SEED_BASE + seed .. (never demo seeds). */
      episodes: z.number().int().min(0).default(100),
      /** Worker processes, one env slot each (0: `envs` slots in this process). The policy runs batched over the slots. */
      workers: z.number().int().min(0).default(2),
      envs: z.number().int().min(1).default(8),
      /** Offset of the first eval seed above EVAL_SEED_BASE. */
      seed: z.number().int().min(0).default(0),
    })
    .prefault({}),
});
export type TrainConfig = z.infer<typeof TrainConfigSchema>;

/** A config error naming every bad key path. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Formats zod issues as "path: message, got VALUE" lines (`raw`: the input, for the value given). */
function describeIssues(error: z.ZodError, raw: unknown): string {
  return error.issues
    .map((i) => {
      const path = i.path.map(String).join('.') || '(root)';
      if (i.code === 'unrecognized_keys') return `${path ? `${path === '(root)' ? '' : `${path}.`}` : ''}${i.keys.join(', ')}: unknown key${i.keys.length > 1 ? 's' : ''}`;
      return `${path}: ${describeConfigIssue(TrainConfigSchema, i, raw).message}`;
    })
    .join('\n  ');
}

/** Validates a parsed config object. */
export function parseTrainConfig(raw: unknown, source = 'config'): TrainConfig {
  const r = TrainConfigSchema.safeParse(raw ?? {});
  if (!r.success) throw new ConfigError(`${source}:\n  ${describeIssues(r.error, raw ?? {})}`);
  return r.data;
}

/** Parses a `--set key=value` value: YAML scalar syntax (numbers, booleans, strings, [lists]). */
function parseValue(text: string): unknown {
  return parseYaml(text);
}

/**
 * Applies `key.path=value` overrides (numeric segments index lists: `phases.0.steps=100`) to a raw
 * config object, creating objects on the way.
 */
export function applyOverrides(raw: Record<string, unknown>, sets: readonly string[]): Record<string, unknown> {
  const out = structuredClone(raw);
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--set expects key.path=value, got '${s}'`);
    const path = s.slice(0, eq).split('.');
    if (path.some((p) => p === '')) throw new ConfigError(`--set: empty segment in key path '${s.slice(0, eq)}'`);
    let node: Record<string, unknown> | unknown[] = out;
    for (let i = 0; i < path.length - 1; i++) {
      const key = path[i];
      const cur = (node as Record<string, unknown>)[key];
      if (cur === undefined || cur === null) {
        const fresh = /^\d+$/.test(path[i + 1]) ? [] : {};
        (node as Record<string, unknown>)[key] = fresh;
        node = fresh;
      } else if (typeof cur === 'object') node = cur as Record<string, unknown>;
      else throw new ConfigError(`--set ${s.slice(0, eq)}: '${path.slice(0, i + 1).join('.')}' is ${JSON.stringify(cur)}, not a section`);
    }
    (node as Record<string, unknown>)[path[path.length - 1]] = parseValue(s.slice(eq + 1));
  }
  return out;
}

/** Reads, overrides and validates a YAML config file. */
export function loadTrainConfig(file: string, sets: readonly string[] = []): TrainConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config '${file}': ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (err) {
    throw new ConfigError(`${file}: not valid YAML: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`${file}: expected a mapping at the top level`);
  return parseTrainConfig(applyOverrides(raw as Record<string, unknown>, sets), file);
}

/** Demo folder of a config: data.demoDir, or demos/<task>_<cameras>_<size>[_<noise tag>]. */
export function demoDirOf(cfg: TrainConfig): string {
  const noise = demoNoiseOf(cfg);
  return cfg.data.demoDir ?? `demos/${cfg.task}_${cfg.model.cameras.join('-')}_${cfg.model.imageSize}${noise ? `_${actionNoiseTag(noise)}` : ''}`;
}

/** The action noise a config's demos are recorded with, or undefined for clean demos. */
export function demoNoiseOf(cfg: TrainConfig): ActionNoise | undefined {
  const n = cfg.data.noise;
  return n && n.std > 0 ? { std: n.std, holdSteps: n.holdSteps, seed: n.seed } : undefined;
}
