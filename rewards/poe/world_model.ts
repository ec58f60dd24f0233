/**
 * Pose-Based Object Exploration (POE): a world model over z, the current stage object's pose in the
 * end-effector frame (rewards/poe/pose.ts), whose surprise is the curiosity reward.
 *
 * - forward model f(z, a) -> z' (MLP 13 -> 256 -> 256 -> 6, written as z + MLP so that "nothing
 *   moves" is the easy default), inverse model g(z, z') -> a (MLP 12 -> 256 -> 256 -> 7);
 * - loss L_F + 0.1 L_I, both mean over the batch of the summed squared error;
 * - r_cur = eta/2 ||f(z, a) - z'||^2 with the model as it was before it saw the transition;
 * - r_prog = ReLU(mean of the last <= 99 forward losses of the same stream - the current one).
 *
 * EvoVLA's released trainer never updates the world model, which leaves curiosity as the noise of a
 * random network. Here every call of `observe` scores the transitions and then trains on them, in
 * one ONNX Runtime run per minibatch (the training graph also returns the forward pass computed
 * with the weights before the update).
 */
import { z } from 'zod';
import { MLP } from '../../nn/layers.ts';
import type { ModelDefinition } from '../../nn/model.ts';
import * as op from '../../nn/ops.ts';
import { ParamSet } from '../../nn/params.ts';
import type { HostTensor } from '../../nn/runtime.ts';
import { Trainer } from '../../nn/trainer.ts';
import { parseConfig } from '../config.ts';
import { POSE_DIM } from './pose.ts';

/** Action size: 6 joint targets + gripper opening. */
export const ACTION_DIM = 7;

/** POE settings (every field has EvoVLA's value or a documented choice as default). */
export const poeConfigSchema = z.strictObject({
  /** Curiosity scale: r_cur = eta/2 ||f(z,a) - z'||^2. */
  eta: z.number().positive().default(1),
  /** Weight of the inverse-model loss. */
  inverseWeight: z.number().min(0).default(0.1),
  /** Hidden widths of both MLPs. */
  hidden: z.array(z.number().int().positive()).min(1).default([256, 256]),
  /** AdamW learning rate of the online updates. */
  lr: z.number().positive().default(1e-3),
  weightDecay: z.number().min(0).default(0),
  /** Forward losses remembered per stream for r_prog. */
  progressWindow: z.number().int().min(1).max(10000).default(99),
  /** Rows per training step; a call with more transitions takes several steps. */
  batchSize: z.number().int().positive().default(256),
  /** z's translation in metres is multiplied by this (see pose.ts). */
  translationScale: z.number().positive().default(10),
  /** The gripper opening (0..0.04 m) is multiplied by this before it enters the models. */
  gripperScale: z.number().positive().default(25),
  /** Seed of the weight initialisation. */
  seed: z.number().int().default(0),
  /** ONNX Runtime intra-op threads. */
  threads: z.number().int().positive().default(1),
});

/** Parsed POE settings. */
export type PoeConfig = z.output<typeof poeConfigSchema>;

/** Validates POE settings. */
export function parsePoeConfig(input: unknown, source = 'poe config'): Readonly<PoeConfig> {
  return parseConfig(poeConfigSchema, input, source);
}

/** A batch of N transitions (row-major): z [N,6], a [N,7] (raw env actions), z' [N,6]. */
export interface Transitions {
  z: Float32Array;
  action: Float32Array;
  zNext: Float32Array;
  /** Per row: which stream (env) it came from, for r_prog's per-stream window (default all 0). */
  stream?: ArrayLike<number>;
}

/** What `observe` returns per transition, plus the update's figures. */
export interface PoeRewards {
  /** r_cur = eta/2 ||f(z,a) - z'||^2, before the update. */
  cur: Float32Array;
  /** r_prog = ReLU(mean of the stream's recent forward losses - this one). */
  prog: Float32Array;
  /** ||f(z,a) - z'||^2 per transition (before the update). */
  forwardLoss: Float32Array;
  /** Mean training loss L_F + w L_I over the minibatches of this call. */
  trainLoss: number;
  /** Number of training steps taken. */
  updates: number;
}

/** r_prog's memory: the last `window` forward losses of each stream. */
export class ProgressTracker {
  private readonly windows = new Map<number, number[]>();

  constructor(readonly window = 99) {
    if (!Number.isInteger(window) || window < 1) throw new RangeError(`progress window must be an integer >= 1, got ${window}`);
  }

  /** ReLU(mean of the stream's remembered losses - `loss`) (0 for a stream's first loss); then remembers `loss`. */
  push(stream: number, loss: number): number {
    let w = this.windows.get(stream);
    if (!w) this.windows.set(stream, (w = []));
    const progress = w.length === 0 ? 0 : Math.max(0, w.reduce((a, b) => a + b, 0) / w.length - loss);
    w.push(loss);
    if (w.length > this.window) w.shift();
    return progress;
  }

  /** Forgets a stream (an env reset). */
  reset(stream?: number): void {
    if (stream === undefined) this.windows.clear();
    else this.windows.delete(stream);
  }
}

/** The two MLPs as one nn model: inputs z, action, z_next; outputs the forward error and both predictions. */
export function poeModel(config: Readonly<PoeConfig>, params = new ParamSet(config.seed)): ModelDefinition {
  const forwardNet = new MLP(params, 'poe.forward', [POSE_DIM + ACTION_DIM, ...config.hidden, POSE_DIM]);
  const inverseNet = new MLP(params, 'poe.inverse', [2 * POSE_DIM, ...config.hidden, ACTION_DIM]);
  return {
    params,
    name: 'poe',
    forward: (g) => {
      const zNow = g.input('z', ['B', POSE_DIM]);
      const action = g.input('action', ['B', ACTION_DIM]);
      const zNext = g.input('z_next', ['B', POSE_DIM]);
      const predicted = op.add(zNow, forwardNet.apply(op.concat([zNow, action], 1)));
      const diff = op.sub(predicted, zNext);
      const actionPredicted = inverseNet.apply(op.concat([zNow, zNext], 1));
      const actionDiff = op.sub(actionPredicted, action);
      return {
        z_predicted: predicted,
        action_predicted: actionPredicted,
        forward_error: op.reduceSum(op.mul(diff, diff), [1]),
        inverse_error: op.reduceSum(op.mul(actionDiff, actionDiff), [1]),
      };
    },
  };
}

/** The online world model with its curiosity and progress rewards. */
export class PoseWorldModel {
  readonly progress: ProgressTracker;

  private constructor(
    readonly config: Readonly<PoeConfig>,
    readonly model: ModelDefinition,
    private readonly trainer: Trainer,
  ) {
    this.progress = new ProgressTracker(config.progressWindow);
  }

  /** Builds the models and their training graph. */
  static async create(config: Readonly<PoeConfig> = parsePoeConfig({})): Promise<PoseWorldModel> {
    const model = poeModel(config);
    const w = config.inverseWeight;
    const trainer = await Trainer.create({
      model,
      loss: (_g, out) => {
        const lf = op.reduceMean(out.forward_error);
        const li = op.reduceMean(out.inverse_error);
        return { loss: w === 0 ? lf : op.add(lf, op.mul(li, w)), metrics: { forward: lf, inverse: li } };
      },
      optimizer: { lr: config.lr, weightDecay: config.weightDecay },
      exposeForward: true,
      session: { threads: config.threads },
    });
    return new PoseWorldModel(config, model, trainer);
  }

  /** Its parameters (`poe.forward.*`, `poe.inverse.*`) and optimizer, for checkpoints. */
  checkpointParts(): { params: ParamSet; trainer: Trainer } {
    return { params: this.model.params, trainer: this.trainer };
  }

  /** Training steps applied so far. */
  get updates(): number {
    return this.trainer.step;
  }

  /**
   * Scores the transitions with the current model (r_cur, forward loss, r_prog in row order per
   * stream), then trains on them, minibatch by minibatch: each minibatch is scored by the weights
   * before its own update.
   */
  async observe(batch: Transitions): Promise<PoeRewards> {
    const n = this.rows(batch);
    const forwardLoss = new Float32Array(n);
    let lossSum = 0;
    let steps = 0;
    for (let start = 0; start < n; start += this.config.batchSize) {
      const end = Math.min(n, start + this.config.batchSize);
      const r = await this.trainer.trainStep(this.feeds(batch, start, end));
      forwardLoss.set(r.forward.forward_error.data as Float32Array, start);
      lossSum += r.loss;
      steps++;
    }
    return { ...this.rewardsFrom(batch, forwardLoss), trainLoss: steps ? lossSum / steps : 0, updates: steps };
  }

  private rewardsFrom(batch: Transitions, forwardLoss: Float32Array): { cur: Float32Array; prog: Float32Array; forwardLoss: Float32Array } {
    const n = forwardLoss.length;
    const cur = new Float32Array(n);
    const prog = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      cur[i] = (this.config.eta / 2) * forwardLoss[i];
      prog[i] = this.progress.push(batch.stream ? batch.stream[i] : 0, forwardLoss[i]);
    }
    return { cur, prog, forwardLoss };
  }

  private rows(batch: Transitions): number {
    const n = batch.z.length / POSE_DIM;
    if (!Number.isInteger(n) || batch.zNext.length !== n * POSE_DIM || batch.action.length !== n * ACTION_DIM) {
      throw new RangeError(
        `transitions must be z [N,${POSE_DIM}], action [N,${ACTION_DIM}], z_next [N,${POSE_DIM}]; got ${batch.z.length}, ${batch.action.length}, ${batch.zNext.length} values`,
      );
    }
    if (batch.stream && batch.stream.length !== n) throw new RangeError(`stream must have one entry per transition (${n}), got ${batch.stream.length}`);
    for (const [name, arr] of [['z', batch.z], ['action', batch.action], ['z_next', batch.zNext]] as const) {
      const bad = arr.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw new RangeError(`transitions.${name}[${bad}] is ${arr[bad]}; POE needs finite values`);
    }
    return n;
  }

  private feeds(batch: Transitions, start: number, end: number): Record<string, HostTensor> {
    const rows = end - start;
    const action = batch.action.slice(start * ACTION_DIM, end * ACTION_DIM);
    for (let i = 0; i < rows; i++) action[i * ACTION_DIM + 6] *= this.config.gripperScale;
    return {
      z: { data: batch.z.subarray(start * POSE_DIM, end * POSE_DIM), shape: [rows, POSE_DIM] },
      action: { data: action, shape: [rows, ACTION_DIM] },
      z_next: { data: batch.zNext.subarray(start * POSE_DIM, end * POSE_DIM), shape: [rows, POSE_DIM] },
    };
  }

  async dispose(): Promise<void> {
    await this.trainer.dispose();
  }
}
