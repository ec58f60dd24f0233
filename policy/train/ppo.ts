/**
 * PPO with two critics, as EvoVLA fine-tunes its policy. Read it top to bottom, like CleanRL's
 * ppo_continuous_action.py:
 *
 *   1. the hyper-parameters (one documented config object, validated at the boundary);
 *   2. the parts PPO is given: an actor-critic (the trainable heads, an nn/ model), an observation
 *      encoder (observations -> the heads' inputs; with a frozen trunk these are cached features),
 *      a reward model (named terms -> extrinsic and intrinsic reward) and an action map;
 *   3. small math: Gaussian sampling, GAE with Gymnasium's terminated/truncated contract,
 *      explained variance;
 *   4. the loss, traced into one generated ONNX training graph (forward + gradients + AdamW);
 *   5. the rollout over a vector env, with batched inference and auto-reset;
 *   6. the update: epochs of shuffled minibatches over the rollout;
 *   7. the loop that ties them together and writes metrics.jsonl;
 *   8. greedy evaluation on fixed seeds (before/after figures, the ablation).
 *
 * Two critics: V_ext predicts the extrinsic return (task success), V_int the intrinsic return
 * (stage-aligned reward, curiosity, progress). Each has its own GAE; the policy follows
 * A = (1 - rho) A_ext + rho A_int (EVOVLA.md).
 */
import { appendFileSync } from 'node:fs';
import { makeDirectory } from '../../sim/files.ts';
import { dirname } from 'node:path';
import { z } from 'zod';
import { describeConfigIssue } from '../../sim/config.ts';
import { Rng } from '../../sim/rng.ts';
import type { Observation, ResetResult, StepInfo, StepResult } from '../../sim/types.ts';
import { gaussianEntropy, gaussianLogProb } from '../../nn/losses.ts';
import { ModelRunner } from '../../nn/runner.ts';
import { Trainer, type StepResult as TrainStepResult } from '../../nn/trainer.ts';
import type { LossFn } from '../../nn/train-graph.ts';
import type { ModelDefinition } from '../../nn/model.ts';
import type { Tensor } from '../../nn/graph.ts';
import type { HostTensor } from '../../nn/runtime.ts';
import * as op from '../../nn/ops.ts';

// ---------------------------------------------------------------------------------------------
// 1. Hyper-parameters
// ---------------------------------------------------------------------------------------------

/** PPO's hyper-parameters. Defaults are EvoVLA's (EVOVLA.md, "RL setup") unless noted. */
export const ppoConfigSchema = z.strictObject({
  /** Environment steps to train for, summed over all envs (EvoVLA: 2M). */
  totalSteps: z.number().int().positive().default(2_000_000),
  /** Transitions per rollout, summed over all envs (EvoVLA: 2048). Must divide by numEnvs. */
  rolloutSteps: z.number().int().positive().default(2048),
  /** Passes over each rollout (EvoVLA: 10). */
  epochs: z.number().int().positive().default(10),
  /** Transitions per gradient step (EvoVLA: 64-256). */
  minibatchSize: z.number().int().positive().default(256),
  /** Discount of both returns. */
  gamma: z.number().gt(0).lte(1).default(0.995),
  /** GAE lambda of both critics. */
  gaeLambda: z.number().gte(0).lte(1).default(0.95),
  /** Weight of the intrinsic advantage: A = (1 - rho) A_ext + rho A_int. */
  rho: z.number().gte(0).lte(1).default(0.6),
  /** PPO's ratio clip epsilon. */
  clip: z.number().positive().default(0.2),
  /** Clip each value loss around the rollout's values like the ratio (CleanRL's clip_vloss). Off by default. */
  clipValueLoss: z.boolean().default(false),
  /** Coefficient of each value loss (extrinsic and intrinsic). */
  valueCoef: z.number().gte(0).default(0.5),
  /** Coefficient of the entropy bonus. */
  entropyCoef: z.number().gte(0).default(0.01),
  /** Global gradient-norm clip. */
  maxGradNorm: z.number().positive().default(0.5),
  /** AdamW peak learning rate. */
  lr: z.number().positive().default(3e-4),
  /** Linear warmup of the learning rate, in gradient steps. */
  warmupSteps: z.number().int().gte(0).default(50),
  /** AdamW decoupled weight decay (matrices only; 0 = Adam, CleanRL's choice). */
  weightDecay: z.number().gte(0).default(0),
  /** Anneal the learning rate linearly to 0 over the run (CleanRL's anneal_lr). */
  annealLr: z.boolean().default(true),
  /** Normalise the combined advantage per minibatch (CleanRL's norm_adv). */
  normalizeAdvantages: z.boolean().default(true),
  /** Stop an update's epochs early when the approximate KL passes this; null: never. */
  targetKl: z.number().positive().nullable().default(null),
  /** Seed of action sampling, minibatch shuffling and episode seeds. */
  seed: z.number().int().gte(0).default(0),
  /** ONNX Runtime intra-op threads for rollout inference and updates. */
  threads: z.number().int().positive().default(1),
});

/** Validated PPO hyper-parameters. */
export type PpoConfig = Readonly<z.output<typeof ppoConfigSchema>>;

/**
 * Validates PPO settings (missing keys take the defaults) and freezes them. Errors name the key
 * path under `source` (e.g. `ppo.clip: expected a number > 0, got -1`).
 */
export function parsePpoConfig(input: unknown, source = 'ppo'): PpoConfig {
  const r = ppoConfigSchema.safeParse(input ?? {});
  if (!r.success) {
    const { key, message } = describeConfigIssue(ppoConfigSchema, r.error.issues[0], input);
    throw new Error(`${key === '(root)' ? source : `${source}.${key}`}: ${message}`);
  }
  const c = r.data;
  if (c.rolloutSteps < c.minibatchSize) throw new Error(`${source}.minibatchSize: ${c.minibatchSize} is larger than ${source}.rolloutSteps (${c.rolloutSteps})`);
  return Object.freeze(c);
}

// ---------------------------------------------------------------------------------------------
// 2. What PPO is given
// ---------------------------------------------------------------------------------------------

/** Output names every actor-critic model must have. */
export const AC_OUTPUTS = {
  /** Gaussian mean in the normalised action space, [B, A]. */
  mean: 'action_mean',
  /** State-independent log standard deviation, [A]. */
  logStd: 'action_log_std',
  /** Extrinsic value, [B]. */
  valueExt: 'value_ext',
  /** Intrinsic value, [B]. */
  valueInt: 'value_int',
} as const;

/**
 * The model PPO trains: a forward that reads per-sample float32 inputs of `inputShapes` (batch
 * first; e.g. `{features: [F]}` or `{features: [F], memory: [M, F], memory_mask: [M]}`) and returns
 * the outputs named in AC_OUTPUTS. With EvoVLA's frozen trunk these are the heads (+ the memory
 * gate) over cached trunk features, so an update costs an MLP's time.
 */
export interface ActorCritic {
  model: ModelDefinition;
  inputShapes: Readonly<Record<string, readonly number[]>>;
  actionSize: number;
}

/** One observation to encode: which env, what it saw, and why it is encoded. */
export interface EncodeItem {
  env: number;
  obs: Observation;
  info: StepInfo;
  /**
   * 'reset': the first observation of an episode; 'step': any later one the policy acts on;
   * 'final': the last observation of a truncated episode, encoded only to bootstrap its value
   * (an encoder with per-env state, such as a memory bank, should not keep it).
   */
  kind: 'reset' | 'step' | 'final';
}

/**
 * Turns observations into the actor-critic's inputs. Returns, for each input name, the items'
 * rows concatenated in order (items.length x prod(inputShapes[name]) floats).
 */
export interface ObservationEncoder {
  encode(items: readonly EncodeItem[]): Promise<Record<string, Float32Array>>;
}

/** One transition handed to the reward model. */
export interface RewardItem {
  env: number;
  /** Info before the step (the previous step's, or the reset's). */
  prevInfo: StepInfo;
  result: StepResult;
  /** The env action that was sent. */
  action: readonly number[];
}

/** Reward of one transition: the two streams and the named (scaled) terms they were built from. */
export interface RewardOut {
  ext: number;
  int: number;
  terms: Record<string, number>;
}

/**
 * Turns transitions into rewards. `reset` is called when env `env` starts an episode (per-env
 * state such as SAR's smoothed baseline starts over); `afterRollout` runs once per rollout (the
 * POE world model trains there) and returns metrics to log (e.g. `hallucination`).
 */
export interface RewardModel {
  step(items: readonly RewardItem[]): Promise<RewardOut[]> | RewardOut[];
  reset?(env: number, start: ResetResult): void;
  afterRollout?(): Promise<Record<string, number>> | Record<string, number>;
}

/**
 * env action = center + scale * clip(a, -limit, limit), per dimension (a is the normalised action),
 * plus the current proprio value in the dimensions marked `relative` (a policy that predicts joint
 * steps from where the arm is, as the VLA does with `model.actionFrame: delta`).
 */
export interface ActionMap {
  center: readonly number[];
  scale: readonly number[];
  /** Dimensions predicted relative to proprio (joints 0-5, gripper 6); default none. */
  relative?: readonly boolean[];
  /** Bound of the normalised action (default 1; e.g. 3 when a is a z-score of the demo actions). */
  limit?: number;
}

/** The vector env PPO steps (sim/vec_env.ts's VecEnv satisfies it). */
export interface RolloutEnv {
  readonly numEnvs: number;
  reset(seeds: number[]): Promise<ResetResult[]>;
  resetEnvs(seeds: ReadonlyArray<number | null>): Promise<Array<ResetResult | null>>;
  step(actions: number[][]): Promise<{ results: StepResult[] }>;
}

/**
 * The reward model of plain PPO: the env's own named terms. `ext` sums the terms in
 * `extScales` times their scale (default: task success), `int` those in `intScales` (default:
 * none). Every scaled term is reported under its name.
 */
export function envRewardModel(extScales: Record<string, number> = { success: 1 }, intScales: Record<string, number> = {}): RewardModel {
  return {
    step: (items) =>
      items.map(({ result }) => {
        const terms: Record<string, number> = {};
        let ext = 0;
        let int = 0;
        for (const [k, s] of Object.entries(extScales)) {
          terms[k] = s * (result.info.rewardTerms[k] ?? 0);
          ext += terms[k];
        }
        for (const [k, s] of Object.entries(intScales)) {
          terms[k] = s * (result.info.rewardTerms[k] ?? 0);
          int += terms[k];
        }
        return { ext, int, terms };
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// 3. Math
// ---------------------------------------------------------------------------------------------

const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

/** Log-density of a diagonal Gaussian at x (the same formula as nn/losses.ts gaussianLogProb). */
export function gaussianLogDensity(x: ArrayLike<number>, mean: ArrayLike<number>, logStd: ArrayLike<number>): number {
  let s = 0;
  for (let j = 0; j < x.length; j++) {
    const z = (x[j] - mean[j]) * Math.exp(-logStd[j]);
    s += -0.5 * z * z - logStd[j] - LOG_SQRT_2PI;
  }
  return s;
}

/** Arrays laid out [T, N] (index t * numEnvs + env). */
export interface GaeInput {
  numSteps: number;
  numEnvs: number;
  rewards: Float32Array;
  values: Float32Array;
  /**
   * Value of the state after each step: V(s_{t+1}) while the episode goes on, V(final observation)
   * when it was truncated (the time limit is not part of the task, so the return continues), and
   * ignored when it terminated.
   */
  nextValues: Float32Array;
  /** 1 where the step ended the episode by success or failure (no bootstrap). */
  terminated: Uint8Array;
  /** 1 where the step ended the episode for any reason (terminated or truncated): GAE stops there. */
  ended: Uint8Array;
  gamma: number;
  lambda: number;
}

/**
 * Generalised advantage estimation over a rollout with auto-reset:
 * delta_t = r_t + gamma (1 - terminated_t) V'_t - V_t, A_t = delta_t + gamma lambda (1 - ended_t) A_{t+1},
 * returns = A + V. Truncated steps bootstrap from V'_t (the final observation's value) but do not
 * carry the next episode's advantages back.
 */
export function computeGae(x: GaeInput): { advantages: Float32Array; returns: Float32Array } {
  const { numSteps: T, numEnvs: N } = x;
  const size = T * N;
  for (const [name, a] of Object.entries({ rewards: x.rewards, values: x.values, nextValues: x.nextValues, terminated: x.terminated, ended: x.ended })) {
    if (a.length !== size) throw new RangeError(`computeGae: ${name} has ${a.length} entries, expected numSteps * numEnvs = ${size}`);
  }
  const advantages = new Float32Array(size);
  const returns = new Float32Array(size);
  for (let i = 0; i < N; i++) {
    let next = 0;
    for (let t = T - 1; t >= 0; t--) {
      const k = t * N + i;
      const delta = x.rewards[k] + x.gamma * (x.terminated[k] ? 0 : x.nextValues[k]) - x.values[k];
      next = delta + x.gamma * x.lambda * (x.ended[k] ? 0 : next);
      advantages[k] = next;
      returns[k] = next + x.values[k];
    }
  }
  return { advantages, returns };
}

/** 1 - Var(y - pred) / Var(y): 1 is a perfect critic, 0 no better than the mean, NaN when y is constant. */
export function explainedVariance(pred: ArrayLike<number>, y: ArrayLike<number>): number {
  const n = y.length;
  let my = 0;
  let md = 0;
  for (let k = 0; k < n; k++) {
    my += y[k];
    md += y[k] - pred[k];
  }
  my /= n;
  md /= n;
  let vy = 0;
  let vd = 0;
  for (let k = 0; k < n; k++) {
    vy += (y[k] - my) ** 2;
    vd += (y[k] - pred[k] - md) ** 2;
  }
  return vy === 0 ? NaN : 1 - vd / vy;
}

// ---------------------------------------------------------------------------------------------
// 4. The loss (traced once into the training graph)
// ---------------------------------------------------------------------------------------------

/**
 * loss = -mean(min(r A, clip(r, 1 - e, 1 + e) A)) + c_v (L_ext + L_int) - c_e H,
 * r = exp(log pi(a) - log pi_old(a)), L = 0.5 mean((V - R)^2) per critic (optionally clipped around
 * the rollout's values). Metrics: the parts, approx KL (CleanRL's (r - 1) - log r) and clip fraction.
 */
export function ppoLoss(cfg: PpoConfig, actionSize: number): LossFn {
  return (g, out) => {
    for (const name of Object.values(AC_OUTPUTS)) if (!out[name]) throw new Error(`ppoLoss: the actor-critic has no output '${name}' (it must return ${Object.values(AC_OUTPUTS).join(', ')})`);
    const actions = g.input('actions', ['B', actionSize]);
    const oldLogProb = g.input('old_log_prob', ['B']);
    const advantages = g.input('advantages', ['B']);

    const logProb = gaussianLogProb(actions, out[AC_OUTPUTS.mean], out[AC_OUTPUTS.logStd]);
    const logRatio = op.sub(logProb, oldLogProb);
    const ratio = op.exp(logRatio);
    const surrogate = op.minimum(op.mul(ratio, advantages), op.mul(op.clip(ratio, 1 - cfg.clip, 1 + cfg.clip), advantages));
    const policyLoss = op.neg(op.reduceMean(surrogate));

    const valueLoss = (value: Tensor, which: 'ext' | 'int'): Tensor => {
      const returns = g.input(`returns_${which}`, ['B']);
      const err = op.sub(value, returns);
      if (!cfg.clipValueLoss) return op.mul(op.reduceMean(op.mul(err, err)), 0.5);
      const oldValue = g.input(`old_value_${which}`, ['B']);
      const clipped = op.sub(op.add(oldValue, op.clip(op.sub(value, oldValue), -cfg.clip, cfg.clip)), returns);
      return op.mul(op.reduceMean(op.maximum(op.mul(err, err), op.mul(clipped, clipped))), 0.5);
    };
    const valueLossExt = valueLoss(out[AC_OUTPUTS.valueExt], 'ext');
    const valueLossInt = valueLoss(out[AC_OUTPUTS.valueInt], 'int');

    const entropy = gaussianEntropy(out[AC_OUTPUTS.logStd]);
    const loss = op.sub(op.add(policyLoss, op.mul(op.add(valueLossExt, valueLossInt), cfg.valueCoef)), op.mul(entropy, cfg.entropyCoef));

    const approxKl = op.reduceMean(op.sub(op.sub(ratio, 1), logRatio));
    const clipFraction = op.reduceMean(op.cast(op.greater(op.abs(op.sub(ratio, 1)), cfg.clip), ratio.dtype));
    return {
      loss,
      metrics: { policy_loss: policyLoss, value_loss_ext: valueLossExt, value_loss_int: valueLossInt, entropy, approx_kl: approxKl, clip_fraction: clipFraction },
    };
  };
}

// ---------------------------------------------------------------------------------------------
// 5. The rollout
// ---------------------------------------------------------------------------------------------

/** Everything one rollout collected, laid out [T, N] (index t * numEnvs + env). */
export interface Rollout {
  numSteps: number;
  numEnvs: number;
  /** The actor-critic's inputs per transition, by name (cached: the update never re-encodes). */
  inputs: Record<string, Float32Array>;
  /** Sampled normalised actions, [T * N, A]. */
  actions: Float32Array;
  logProbs: Float32Array;
  valuesExt: Float32Array;
  valuesInt: Float32Array;
  nextValuesExt: Float32Array;
  nextValuesInt: Float32Array;
  rewardsExt: Float32Array;
  rewardsInt: Float32Array;
  terminated: Uint8Array;
  ended: Uint8Array;
  /** Sum over the rollout of each named reward term (divide by the transitions for the mean). */
  termSums: Record<string, number>;
  /** Episodes that ended during the rollout. */
  episodes: EpisodeStats[];
  /**
   * Per-transition weight of the policy loss (default 1): the (normalised) advantage is multiplied
   * by it, which scales that transition's clipped surrogate exactly. Distributed rollouts give
   * stale segments a weight < 1 (scale/ppo_learner.ts).
   */
  advantageWeights?: Float32Array;
}

/** One finished episode. */
export interface EpisodeStats {
  env: number;
  seed: number;
  length: number;
  returnExt: number;
  returnInt: number;
  success: boolean;
  /** Furthest ground-truth stage reached (count of stages done in order). */
  furthestStage: number;
  truncated: boolean;
}

/** The rollout's live state between rollouts: current observations and running episodes. */
export interface Cursor {
  results: ResetResult[];
  inputs: Record<string, Float32Array>;
  seeds: number[];
  length: number[];
  returnExt: number[];
  returnInt: number[];
  furthestStage: number[];
}

/** Everything a rollout needs (built by rolloutContext). */
export interface RolloutContext {
  cfg: PpoConfig;
  env: RolloutEnv;
  ac: ActorCritic;
  encoder: ObservationEncoder;
  rewards: RewardModel;
  actionMap: ActionMap;
  runner: ModelRunner;
  rng: Rng;
  episodeRng: Rng;
}

function inputSize(ac: ActorCritic, name: string): number {
  return ac.inputShapes[name].reduce((a, b) => a * b, 1);
}

/** Runs the actor-critic on N encoded observations (one batched inference). */
async function evaluate(ctx: RolloutContext, inputs: Record<string, Float32Array>, n: number): Promise<{ mean: Float32Array; logStd: Float32Array; valueExt: Float32Array; valueInt: Float32Array }> {
  const feeds: Record<string, HostTensor> = {};
  for (const [name, shape] of Object.entries(ctx.ac.inputShapes)) {
    const data = inputs[name];
    if (!data || data.length !== n * inputSize(ctx.ac, name)) {
      throw new Error(`observation encoder: input '${name}' has ${data?.length ?? 0} values for ${n} observations, expected ${n} x [${shape.join(', ')}]`);
    }
    feeds[name] = { data, shape: [n, ...shape] };
  }
  const out = await ctx.runner.run(feeds, Object.values(AC_OUTPUTS));
  return {
    mean: out[AC_OUTPUTS.mean].data as Float32Array,
    logStd: out[AC_OUTPUTS.logStd].data as Float32Array,
    valueExt: out[AC_OUTPUTS.valueExt].data as Float32Array,
    valueInt: out[AC_OUTPUTS.valueInt].data as Float32Array,
  };
}

/**
 * Normalised action -> env action (clipped to +-limit first; the log-prob is of the unclipped
 * sample). `state` (the observation the action was chosen from) is needed when the map has
 * relative dimensions.
 */
export function toEnvAction(map: ActionMap, a: ArrayLike<number>, state?: Pick<StepInfo['state'], 'q' | 'gripper'>): number[] {
  const out = new Array<number>(map.center.length);
  const lim = map.limit ?? 1;
  for (let j = 0; j < out.length; j++) out[j] = map.center[j] + map.scale[j] * Math.max(-lim, Math.min(lim, a[j]));
  if (map.relative?.some(Boolean)) {
    if (!state) throw new Error('toEnvAction: the action map is relative to proprio; pass the observation state');
    map.relative.forEach((r, j) => {
      if (r) out[j] += j < 6 ? state.q[j] : state.gripper;
    });
  }
  return out;
}

function nextEpisodeSeed(ctx: RolloutContext): number {
  return ctx.episodeRng.int(2 ** 31);
}

/**
 * Resets every env to a fresh episode and encodes the first observations. `seeds[i]` (when given
 * and not null) is env i's seed; the others are drawn from the run's episode generator.
 */
export async function startEpisodes(ctx: RolloutContext, seeds0: ReadonlyArray<number | null> = []): Promise<Cursor> {
  const n = ctx.env.numEnvs;
  const seeds = Array.from({ length: n }, (_, i) => seeds0[i] ?? nextEpisodeSeed(ctx));
  const results = await ctx.env.reset(seeds);
  results.forEach((r, i) => ctx.rewards.reset?.(i, r));
  const inputs = await ctx.encoder.encode(results.map((r, i) => ({ env: i, obs: r.obs, info: r.info, kind: 'reset' as const })));
  return {
    results,
    inputs,
    seeds,
    length: new Array(n).fill(0),
    returnExt: new Array(n).fill(0),
    returnInt: new Array(n).fill(0),
    furthestStage: results.map((r) => r.info.stage),
  };
}

/** A zero-filled rollout of T steps of N envs for actor-critic `ac` (filled by collectRollout, or from segments). */
export function emptyRollout(T: number, N: number, ac: Pick<ActorCritic, 'inputShapes' | 'actionSize'>): Rollout {
  const size = T * N;
  return {
    numSteps: T,
    numEnvs: N,
    inputs: Object.fromEntries(Object.entries(ac.inputShapes).map(([k, shape]) => [k, new Float32Array(size * shape.reduce((a, b) => a * b, 1))])),
    actions: new Float32Array(size * ac.actionSize),
    logProbs: new Float32Array(size),
    valuesExt: new Float32Array(size),
    valuesInt: new Float32Array(size),
    nextValuesExt: new Float32Array(size),
    nextValuesInt: new Float32Array(size),
    rewardsExt: new Float32Array(size),
    rewardsInt: new Float32Array(size),
    terminated: new Uint8Array(size),
    ended: new Uint8Array(size),
    termSums: {},
    episodes: [],
  };
}

/**
 * Collects cfg.rolloutSteps transitions: each step one batched inference over all envs, a sampled
 * action per env, one vector-env step, the reward model, and auto-reset of the envs whose episode
 * ended (after bootstrapping the value of a truncated episode's final observation).
 */
export async function collectRollout(ctx: RolloutContext, cur: Cursor): Promise<Rollout> {
  const N = ctx.env.numEnvs;
  const T = ctx.cfg.rolloutSteps / N;
  const A = ctx.ac.actionSize;
  const ro = emptyRollout(T, N, ctx.ac);
  const sample = new Float64Array(A);
  for (let t = 0; t < T; t++) {
    // Act: one batched forward over the N current observations.
    const net = await evaluate(ctx, cur.inputs, N);
    for (const [k, data] of Object.entries(cur.inputs)) ro.inputs[k].set(data, t * N * inputSize(ctx.ac, k));
    const envActions: number[][] = [];
    for (let i = 0; i < N; i++) {
      const k = t * N + i;
      // The previous step's next-state value is this step's value when its episode went on.
      if (t > 0 && !ro.ended[k - N]) {
        ro.nextValuesExt[k - N] = net.valueExt[i];
        ro.nextValuesInt[k - N] = net.valueInt[i];
      }
      const mean = net.mean.subarray(i * A, (i + 1) * A);
      for (let j = 0; j < A; j++) sample[j] = mean[j] + Math.exp(net.logStd[j]) * ctx.rng.normal();
      ro.actions.set(sample, k * A);
      ro.logProbs[k] = gaussianLogDensity(sample, mean, net.logStd);
      ro.valuesExt[k] = net.valueExt[i];
      ro.valuesInt[k] = net.valueInt[i];
      envActions.push(toEnvAction(ctx.actionMap, sample, cur.results[i].info.state));
    }

    // Step every env, then score the transitions.
    const { results } = await ctx.env.step(envActions);
    const rewards = await ctx.rewards.step(results.map((result, i) => ({ env: i, prevInfo: cur.results[i].info, result, action: envActions[i] })));
    const finals: EncodeItem[] = [];
    const resetSeeds: Array<number | null> = new Array(N).fill(null);
    for (let i = 0; i < N; i++) {
      const k = t * N + i;
      const r = results[i];
      const rw = rewards[i];
      ro.rewardsExt[k] = rw.ext;
      ro.rewardsInt[k] = rw.int;
      for (const [name, v] of Object.entries(rw.terms)) ro.termSums[name] = (ro.termSums[name] ?? 0) + v;
      cur.length[i]++;
      cur.returnExt[i] += rw.ext;
      cur.returnInt[i] += rw.int;
      cur.furthestStage[i] = Math.max(cur.furthestStage[i], r.info.stage);
      if (!(r.terminated || r.truncated)) continue;
      ro.terminated[k] = r.terminated ? 1 : 0;
      ro.ended[k] = 1;
      ro.episodes.push({
        env: i,
        seed: cur.seeds[i],
        length: cur.length[i],
        returnExt: cur.returnExt[i],
        returnInt: cur.returnInt[i],
        success: r.info.success,
        furthestStage: cur.furthestStage[i],
        truncated: !r.terminated,
      });
      // Gymnasium: a time limit is not a terminal state; its return continues past the cut.
      if (!r.terminated) finals.push({ env: i, obs: r.obs, info: r.info, kind: 'final' });
      resetSeeds[i] = nextEpisodeSeed(ctx);
    }
    if (finals.length > 0) {
      const net = await evaluate(ctx, await ctx.encoder.encode(finals), finals.length);
      finals.forEach((f, j) => {
        ro.nextValuesExt[t * N + f.env] = net.valueExt[j];
        ro.nextValuesInt[t * N + f.env] = net.valueInt[j];
      });
    }

    // Auto-reset the envs whose episode ended, then encode what every env now sees.
    const restarted = resetSeeds.some((s) => s !== null) ? await ctx.env.resetEnvs(resetSeeds) : resetSeeds.map(() => null);
    const items: EncodeItem[] = [];
    for (let i = 0; i < N; i++) {
      const fresh = restarted[i];
      if (fresh) {
        cur.results[i] = fresh;
        cur.seeds[i] = resetSeeds[i]!;
        cur.length[i] = 0;
        cur.returnExt[i] = 0;
        cur.returnInt[i] = 0;
        cur.furthestStage[i] = fresh.info.stage;
        ctx.rewards.reset?.(i, fresh);
        items.push({ env: i, obs: fresh.obs, info: fresh.info, kind: 'reset' });
      } else {
        cur.results[i] = results[i];
        items.push({ env: i, obs: results[i].obs, info: results[i].info, kind: 'step' });
      }
    }
    cur.inputs = await ctx.encoder.encode(items);
  }
  // Bootstrap the last step of every episode still running.
  const net = await evaluate(ctx, cur.inputs, N);
  for (let i = 0; i < N; i++) {
    const k = (T - 1) * N + i;
    if (!ro.ended[k]) {
      ro.nextValuesExt[k] = net.valueExt[i];
      ro.nextValuesInt[k] = net.valueInt[i];
    }
  }
  return ro;
}

// ---------------------------------------------------------------------------------------------
// 6. The update
// ---------------------------------------------------------------------------------------------

/** What one update measured (means over its minibatches, except where noted). */
export interface UpdateStats {
  policy_loss: number;
  value_loss_ext: number;
  value_loss_int: number;
  entropy: number;
  approx_kl: number;
  clip_fraction: number;
  grad_norm: number;
  lr: number;
  /** Of each critic on the rollout, before the update (CleanRL's convention). */
  explained_variance_ext: number;
  explained_variance_int: number;
  gradient_steps: number;
  /** True when targetKl stopped the epochs early. */
  early_stop: boolean;
}

/** Rows `idx` of a [rows, width] array. */
function gather(src: Float32Array, width: number, idx: ArrayLike<number>): Float32Array {
  const out = new Float32Array(idx.length * width);
  for (let r = 0; r < idx.length; r++) out.set(src.subarray(idx[r] * width, (idx[r] + 1) * width), r * width);
  return out;
}

/**
 * cfg.epochs passes over the rollout in shuffled minibatches, each one gradient step of the
 * generated training graph on the cached inputs.
 */
export async function ppoUpdate(cfg: PpoConfig, trainer: Trainer, ac: ActorCritic, ro: Rollout, rng: Rng): Promise<UpdateStats> {
  const size = ro.numSteps * ro.numEnvs;
  const gaeArgs = { numSteps: ro.numSteps, numEnvs: ro.numEnvs, terminated: ro.terminated, ended: ro.ended, gamma: cfg.gamma, lambda: cfg.gaeLambda };
  const ext = computeGae({ ...gaeArgs, rewards: ro.rewardsExt, values: ro.valuesExt, nextValues: ro.nextValuesExt });
  const int = computeGae({ ...gaeArgs, rewards: ro.rewardsInt, values: ro.valuesInt, nextValues: ro.nextValuesInt });
  const advantages = new Float32Array(size);
  for (let k = 0; k < size; k++) advantages[k] = (1 - cfg.rho) * ext.advantages[k] + cfg.rho * int.advantages[k];

  const sums: Record<string, number> = {};
  let steps = 0;
  let earlyStop = false;
  const order = Array.from({ length: size }, (_, k) => k);
  for (let epoch = 0; epoch < cfg.epochs && !earlyStop; epoch++) {
    shuffle(order, rng);
    let epochKl = 0;
    let epochBatches = 0;
    for (let start = 0; start + cfg.minibatchSize <= size; start += cfg.minibatchSize) {
      const idx = order.slice(start, start + cfg.minibatchSize);
      const n = idx.length;
      const adv = gather(advantages, 1, idx);
      if (cfg.normalizeAdvantages) normalizeInPlace(adv);
      if (ro.advantageWeights) for (let r = 0; r < n; r++) adv[r] *= ro.advantageWeights[idx[r]];
      const batch: Record<string, HostTensor> = {
        actions: { data: gather(ro.actions, ac.actionSize, idx), shape: [n, ac.actionSize] },
        old_log_prob: { data: gather(ro.logProbs, 1, idx), shape: [n] },
        advantages: { data: adv, shape: [n] },
        returns_ext: { data: gather(ext.returns, 1, idx), shape: [n] },
        returns_int: { data: gather(int.returns, 1, idx), shape: [n] },
        old_value_ext: { data: gather(ro.valuesExt, 1, idx), shape: [n] },
        old_value_int: { data: gather(ro.valuesInt, 1, idx), shape: [n] },
      };
      for (const [name, shape] of Object.entries(ac.inputShapes)) batch[name] = { data: gather(ro.inputs[name], inputSize(ac, name), idx), shape: [n, ...shape] };
      const r: TrainStepResult = await trainer.trainStep(batch);
      for (const [k, v] of Object.entries(r.metrics)) sums[k] = (sums[k] ?? 0) + v;
      sums.grad_norm = (sums.grad_norm ?? 0) + r.gradNorm;
      sums.lr = r.lr;
      steps++;
      epochKl += r.metrics.approx_kl;
      epochBatches++;
    }
    if (cfg.targetKl !== null && epochKl / epochBatches > cfg.targetKl) earlyStop = true;
  }
  const mean = (k: string): number => (sums[k] ?? NaN) / steps;
  return {
    policy_loss: mean('policy_loss'),
    value_loss_ext: mean('value_loss_ext'),
    value_loss_int: mean('value_loss_int'),
    entropy: mean('entropy'),
    approx_kl: mean('approx_kl'),
    clip_fraction: mean('clip_fraction'),
    grad_norm: mean('grad_norm'),
    lr: sums.lr ?? NaN,
    explained_variance_ext: explainedVariance(ro.valuesExt, ext.returns),
    explained_variance_int: explainedVariance(ro.valuesInt, int.returns),
    gradient_steps: steps,
    early_stop: earlyStop,
  };
}

function shuffle(a: number[], rng: Rng): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

function normalizeInPlace(a: Float32Array): void {
  let m = 0;
  for (const x of a) m += x;
  m /= a.length;
  let v = 0;
  for (const x of a) v += (x - m) ** 2;
  const std = Math.sqrt(v / Math.max(1, a.length - 1));
  for (let k = 0; k < a.length; k++) a[k] = (a[k] - m) / (std + 1e-8);
}

// ---------------------------------------------------------------------------------------------
// 7. The loop
// ---------------------------------------------------------------------------------------------

/** One line of metrics.jsonl: what an iteration (rollout + update) measured. */
export interface IterationMetrics extends UpdateStats {
  iteration: number;
  /** Env steps so far, summed over envs. */
  env_steps: number;
  /** Mean per transition of each reward term, under `reward/<name>`. */
  [key: string]: number | boolean | null;
}

/** What trainPpo is given (the hyper-parameters and the parts of section 2). */
export interface TrainPpoOptions {
  config: PpoConfig;
  env: RolloutEnv;
  actorCritic: ActorCritic;
  encoder: ObservationEncoder;
  rewards: RewardModel;
  actionMap: ActionMap;
  /** metrics.jsonl to append one line per iteration to (created with its folder); none if absent. */
  metricsPath?: string;
  /** Called after each iteration (progress display). */
  onIteration?: (m: IterationMetrics) => void | Promise<void>;
  /**
   * Checkpoints: `save` is called after every `every`-th iteration and after the last one, with
   * what PPO's own state is (the caller adds the model's parameters and any other learner).
   */
  checkpoint?: { every: number; save: (s: PpoCheckpointState) => void | Promise<void> };
  /**
   * Restores a checkpoint before the first iteration (sets the optimizer state and the generators
   * in `s`); returns the number of iterations it was taken after (0: start from scratch). The run
   * then continues with the next iteration on fresh episodes (an episode in progress at the
   * checkpoint is not part of it).
   */
  restore?: (s: PpoCheckpointState) => number | Promise<number>;
}

/** PPO's own state at an iteration boundary: what a checkpoint must hold besides the weights. */
export interface PpoCheckpointState {
  /** Iterations done. */
  iteration: number;
  /** The optimizer of the trained parameters (AdamW moments, step count, learning rate). */
  trainer: Trainer;
  /** Action sampling, episode seeds, minibatch order (save with Rng.exportState: it keeps the spare normal). */
  rngs: { actions: Rng; episodes: Rng; minibatches: Rng };
  /**
   * Per env: the seed of its current episode and whether that episode has not taken a step yet.
   * A restore fills it; a fresh episode restarts on its seed (an exact continuation), one in
   * progress is replaced by a new episode.
   */
  episodes: { seed: number; fresh: boolean }[];
}

/** The result of a run: every iteration's metrics. */
export interface TrainPpoResult {
  iterations: IterationMetrics[];
}

/**
 * Trains the actor-critic's trainable parameters (in place, in its ParamSet) with PPO for
 * cfg.totalSteps env steps, rounded down to whole rollouts.
 */
export async function trainPpo(o: TrainPpoOptions): Promise<TrainPpoResult> {
  const cfg = o.config;
  const N = o.env.numEnvs;
  if (cfg.rolloutSteps % N !== 0) throw new Error(`ppo.rolloutSteps: ${cfg.rolloutSteps} must be a multiple of the number of envs (${N})`);
  if (o.actionMap.center.length !== o.actorCritic.actionSize || o.actionMap.scale.length !== o.actorCritic.actionSize) {
    throw new Error(`action map: center and scale need ${o.actorCritic.actionSize} entries (the action size), got ${o.actionMap.center.length} and ${o.actionMap.scale.length}`);
  }
  const numIterations = Math.floor(cfg.totalSteps / cfg.rolloutSteps);
  if (numIterations < 1) throw new Error(`ppo.totalSteps: ${cfg.totalSteps} is less than one rollout (ppo.rolloutSteps = ${cfg.rolloutSteps})`);

  const session = { threads: cfg.threads };
  const runner = await ModelRunner.create(o.actorCritic.model, session);
  const trainer = await Trainer.create({
    model: o.actorCritic.model,
    loss: ppoLoss(cfg, o.actorCritic.actionSize),
    optimizer: { lr: cfg.lr, warmupSteps: cfg.warmupSteps, clipNorm: cfg.maxGradNorm, weightDecay: cfg.weightDecay },
    session,
  });
  const ctx = rolloutContext(o, runner);
  const shuffleRng = new Rng(cfg.seed).fork('minibatches');
  if (o.metricsPath) makeDirectory(dirname(o.metricsPath));
  const iterations: IterationMetrics[] = [];
  const state = (iteration: number, cur: Cursor | null): PpoCheckpointState => ({
    iteration,
    trainer,
    rngs: { actions: ctx.rng, episodes: ctx.episodeRng, minibatches: shuffleRng },
    episodes: cur ? cur.seeds.map((seed, i) => ({ seed, fresh: cur.length[i] === 0 })) : [],
  });
  try {
    const restored = state(0, null);
    const done = o.restore ? await o.restore(restored) : 0;
    if (!Number.isInteger(done) || done < 0 || done > numIterations) throw new Error(`PPO checkpoint: ${done} iterations done, expected 0..${numIterations}`);
    if (restored.episodes.length !== 0 && restored.episodes.length !== N) throw new Error(`PPO checkpoint: episodes of ${restored.episodes.length} envs, this run has ${N}`);
    let cur = await startEpisodes(ctx, restored.episodes.map((e) => (e.fresh ? e.seed : null)));
    for (let iteration = done + 1; iteration <= numIterations; iteration++) {
      if (cfg.annealLr) trainer.learningRate = cfg.lr * (1 - (iteration - 1) / numIterations);
      const t0 = performance.now();
      const ro = await collectRollout(ctx, cur);
      const t1 = performance.now();
      const rewardMetrics = (await o.rewards.afterRollout?.()) ?? {};
      const update = await ppoUpdate(cfg, trainer, o.actorCritic, ro, shuffleRng);
      const t2 = performance.now();
      const m = iterationMetrics(iteration, iteration * cfg.rolloutSteps, ro, update, rewardMetrics);
      m.rollout_seconds = (t1 - t0) / 1000;
      m.update_seconds = (t2 - t1) / 1000;
      if (o.metricsPath) appendFileSync(o.metricsPath, JSON.stringify(m) + '\n');
      iterations.push(m);
      await o.onIteration?.(m);
      if (o.checkpoint && (iteration % o.checkpoint.every === 0 || iteration === numIterations)) await o.checkpoint.save(state(iteration, cur));
    }
  } finally {
    await runner.dispose();
    await trainer.dispose();
  }
  return { iterations };
}

/** The rollout context of a run: its parts, the inference runner, and the seeded generators. */
export function rolloutContext(o: Omit<TrainPpoOptions, 'metricsPath' | 'onIteration'>, runner: ModelRunner): RolloutContext {
  const root = new Rng(o.config.seed);
  return {
    cfg: o.config,
    env: o.env,
    ac: o.actorCritic,
    encoder: o.encoder,
    rewards: o.rewards,
    actionMap: o.actionMap,
    runner,
    rng: root.fork('actions'),
    episodeRng: root.fork('episodes'),
  };
}

/** Flattens a rollout and an update into one metrics line. */
export function iterationMetrics(iteration: number, envSteps: number, ro: Rollout, update: UpdateStats, rewardMetrics: Record<string, number>): IterationMetrics {
  const size = ro.numSteps * ro.numEnvs;
  const m: IterationMetrics = { iteration, env_steps: envSteps, ...update };
  let ext = 0;
  let int = 0;
  for (let k = 0; k < size; k++) {
    ext += ro.rewardsExt[k];
    int += ro.rewardsInt[k];
  }
  m['reward/ext'] = ext / size;
  m['reward/int'] = int / size;
  for (const [name, sum] of Object.entries(ro.termSums)) m[`reward/${name}`] = sum / size;
  const eps = ro.episodes;
  m.episodes = eps.length;
  // null rather than NaN when no episode ended: JSON has no NaN.
  const avg = (f: (e: EpisodeStats) => number): number | null => (eps.length ? eps.reduce((s, e) => s + f(e), 0) / eps.length : null);
  m.success = avg((e) => (e.success ? 1 : 0));
  m.furthest_stage = avg((e) => e.furthestStage);
  m.episode_return_ext = avg((e) => e.returnExt);
  m.episode_return_int = avg((e) => e.returnInt);
  m.episode_length = avg((e) => e.length);
  for (const [k, v] of Object.entries(rewardMetrics)) m[k] = v;
  for (const [k, v] of Object.entries(m)) if (typeof v === 'number' && !Number.isFinite(v)) m[k] = null;
  return m;
}

// ---------------------------------------------------------------------------------------------
// 8. Evaluation (deterministic policy, fixed seeds)
// ---------------------------------------------------------------------------------------------

/** What evaluateGreedy returns. */
export interface GreedyEval {
  episodes: EpisodeStats[];
  successes: number;
  /** The reward model's afterRollout() over the whole evaluation (e.g. SAR gate claims). */
  rewardMetrics: Record<string, number>;
}

/**
 * Runs one episode per seed with the policy's mean action (no sampling), in waves of numEnvs
 * episodes. The reward model sees every transition (for SAR gate claims, i.e. hallucination); give
 * it one without learning parts (no POE) so evaluation changes nothing.
 */
export async function evaluateGreedy(o: Omit<TrainPpoOptions, 'metricsPath' | 'onIteration' | 'config'> & { threads?: number }, seeds: readonly number[]): Promise<GreedyEval> {
  const N = o.env.numEnvs;
  const A = o.actorCritic.actionSize;
  const runner = await ModelRunner.create(o.actorCritic.model, { threads: o.threads ?? 1 });
  const ctx = rolloutContext({ ...o, config: parsePpoConfig({ rolloutSteps: N, minibatchSize: N, threads: o.threads ?? 1 }) }, runner);
  const episodes: EpisodeStats[] = [];
  try {
    for (let first = 0; first < seeds.length; first += N) {
      const live = Math.min(N, seeds.length - first);
      // Envs beyond the last seed replay the wave's first one; their results are not counted.
      const wave = Array.from({ length: N }, (_, i) => seeds[first + (i < live ? i : 0)]);
      const starts = await o.env.reset(wave);
      starts.forEach((r, i) => o.rewards.reset?.(i, r));
      let inputs = await o.encoder.encode(starts.map((r, i) => ({ env: i, obs: r.obs, info: r.info, kind: 'reset' as const })));
      const prev = starts.map((r) => r.info);
      const stats = wave.map((seed, i) => ({ env: i, seed, length: 0, returnExt: 0, returnInt: 0, success: false, furthestStage: starts[i].info.stage, truncated: false }));
      const done = wave.map((_, i) => i >= live);
      while (done.some((d) => !d)) {
        const net = await evaluate(ctx, inputs, N);
        const actions = Array.from({ length: N }, (_, i) => toEnvAction(o.actionMap, net.mean.subarray(i * A, (i + 1) * A), prev[i].state));
        const { results } = await o.env.step(actions);
        const liveIdx = results.flatMap((_, i) => (done[i] ? [] : [i]));
        const rewards = await o.rewards.step(liveIdx.map((i) => ({ env: i, prevInfo: prev[i], result: results[i], action: actions[i] })));
        liveIdx.forEach((i, j) => {
          const r = results[i];
          const s = stats[i];
          s.length++;
          s.returnExt += rewards[j].ext;
          s.returnInt += rewards[j].int;
          s.furthestStage = Math.max(s.furthestStage, r.info.stage);
          prev[i] = r.info;
          if (r.terminated || r.truncated) {
            done[i] = true;
            s.success = r.info.success;
            s.truncated = !r.terminated;
          }
        });
        // Finished envs start their seed over so the vector env can keep stepping; ignored.
        const restart = results.map((r, i) => (r.terminated || r.truncated ? wave[i] : null));
        const fresh = restart.some((x) => x !== null) ? await o.env.resetEnvs(restart) : restart.map(() => null);
        if (done.every((d) => d)) break;
        inputs = await o.encoder.encode(results.map((r, i) => (fresh[i] ? { env: i, obs: fresh[i]!.obs, info: fresh[i]!.info, kind: 'reset' as const } : { env: i, obs: r.obs, info: r.info, kind: 'step' as const })));
      }
      episodes.push(...stats.slice(0, live));
    }
  } finally {
    await runner.dispose();
  }
  const rewardMetrics = (await o.rewards.afterRollout?.()) ?? {};
  return { episodes, successes: episodes.filter((e) => e.success).length, rewardMetrics };
}
