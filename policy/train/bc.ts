/**
 * Behaviour cloning: fit the VLA's action chunk to the expert's, L1 on normalised actions (as ACT
 * and OpenVLA-OFT do), AdamW with warmup + cosine decay, random-shift augmentation. One phase of a
 * training run (policy/train/run.ts): it receives the model, the data and the run's services
 * (metrics, checkpoints, progress) and reads top to bottom.
 *
 * Determinism: parameter init comes from the config seed (the ParamSet), batches and shifts from
 * one sampler Rng forked from it; both are saved in each checkpoint, so a resumed run replays the
 * same batches and reaches the same weights as an uninterrupted one.
 */
import type { Tensor } from '../../nn/graph.ts';
import { l1 } from '../../nn/losses.ts';
import type { ModelDefinition } from '../../nn/model.ts';
import * as op from '../../nn/ops.ts';
import { ModelRunner } from '../../nn/runner.ts';
import type { HostTensor } from '../../nn/runtime.ts';
import { Trainer } from '../../nn/trainer.ts';
import { Rng } from '../../sim/rng.ts';
import { VLA_IO, relativeDims, type Vla } from '../vla/model.ts';
import type { BcPhaseConfig } from './config.ts';
import { sampleBatch, type Batch, type FrameCache } from './dataset.ts';

/** What a phase gets from the run. */
export interface PhaseContext {
  vla: Vla;
  cache: FrameCache;
  /** Frames to train on and held-out frames for validation (may be empty). */
  trainFrames: Int32Array;
  valFrames: Int32Array;
  /** The run's seed. */
  seed: number;
  threads: number;
  /** Index of this phase in the config's list (checkpoint names carry it). */
  phaseIndex: number;
  /** Appends one metrics line. */
  logMetrics(line: Record<string, number | string>): void;
  /** Progress: called every step. */
  progress(step: number, total: number, note: string): void;
  /** Saves a checkpoint of this phase at `step` (with the trainer and RNGs); `valLoss` ranks best. */
  checkpoint(step: number, trainer: Trainer, rngs: Record<string, Rng>, valLoss: number | null): void;
  /** The checkpoint to resume this phase from, if any: loads state into trainer and rngs, returns its step. */
  resume(trainer: Trainer, rngs: Record<string, Rng>): number;
  /** Set by tests: stop (as if killed) right after the checkpoint at this step. */
  haltAfterStep?: number;
}

/** Result of the phase. */
export interface BcResult {
  steps: number;
  finalLoss: number;
  bestValLoss: number | null;
  seconds: number;
  samplesPerSecond: number;
  /** Set when the phase stopped early (maxMinutes or a test halt). */
  stoppedEarly: boolean;
}

/** Learning rate at `step` (1-based): linear warmup, then cosine from lr to lr * minLrRatio. */
export function bcLearningRate(cfg: BcPhaseConfig, step: number): number {
  if (cfg.warmupSteps > 0 && step <= cfg.warmupSteps) return (cfg.lr * step) / cfg.warmupSteps;
  const span = Math.max(1, cfg.steps - cfg.warmupSteps);
  const t = Math.min(1, (step - cfg.warmupSteps) / span);
  const min = cfg.lr * cfg.minLrRatio;
  return min + 0.5 * (cfg.lr - min) * (1 + Math.cos(Math.PI * t));
}

/** Model inputs for a batch (the instruction row repeated). */
export function batchFeeds(vla: Vla, cache: FrameCache, b: Batch, n: number, instruction: BigInt64Array): Record<string, HostTensor> {
  const S = vla.config.imageSize;
  const L = vla.config.maxTokens;
  const ids = new BigInt64Array(n * L);
  for (let i = 0; i < n; i++) ids.set(instruction, i * L);
  const feeds: Record<string, HostTensor> = {
    [VLA_IO.proprio]: { data: b.proprio, shape: [n, 7] },
    [VLA_IO.instruction]: { data: ids, shape: [n, L] },
  };
  cache.cameras.forEach((cam, c) => (feeds[VLA_IO.image(cam)] = { data: b.images[c], shape: [n, 3, S, S] }));
  const M = vla.config.memorySlots;
  if (M > 0) {
    feeds[VLA_IO.memory] = { data: new Float32Array(n * M * vla.config.width), shape: [n, M, vla.config.width] };
    feeds[VLA_IO.memoryMask] = { data: new Float32Array(n * M), shape: [n, M] };
  }
  return feeds;
}

/** Runs behaviour cloning for `cfg.steps` steps (or resumes it). */
export async function runBcPhase(ctx: PhaseContext, cfg: BcPhaseConfig): Promise<BcResult> {
  const { vla, cache } = ctx;
  const K = vla.config.chunk;
  const t0 = performance.now();
  if (ctx.trainFrames.length === 0) throw new Error('bc: no training frames');
  const instruction = vla.tokenizer.encode([cache.episodes[0].instruction]).ids;
  const relative = relativeDims(vla.config.actionFrame);

  // Auxiliary privileged-state head (cfg.auxState > 0): features -> objects' positions relative to the tool.
  const D = cache.stateDim;
  if (cfg.auxState > 0 && D > 0 && vla.auxState?.layers.at(-1)!.outFeatures !== D) {
    throw new Error(`bc: phases[].auxState needs the model built with createVla's auxStateDim ${D} (the frame cache's state size), got ${vla.auxState?.layers.at(-1)!.outFeatures ?? 'none'}`);
  }
  const aux = cfg.auxState > 0 && D > 0 && vla.auxState ? { head: vla.auxState, norm: cache.stateStats(ctx.trainFrames) } : null;
  const model: ModelDefinition = aux
    ? {
        params: vla.params,
        name: 'evovla_vla_bc_aux',
        forward: (g) => {
          const features = vla.trunk.apply(g);
          return { [VLA_IO.actionNorm]: vla.head.apply(features).actionNorm, [AUX_STATE]: aux.head.apply(features) };
        },
      }
    : vla.training;
  const trainer = await Trainer.create({
    model,
    loss: (g, out): { loss: Tensor; metrics: Record<string, Tensor> } => {
      const target = g.input('target', ['B', K, 7]);
      const action = l1(out[VLA_IO.actionNorm], target);
      // The first step of the chunk is what chunked execution plays first: worth watching alone.
      const first = l1(firstOfChunk(out[VLA_IO.actionNorm]), firstOfChunk(target));
      if (!aux) return { loss: action, metrics: { l1_first: first } };
      const auxLoss = l1(out[AUX_STATE], g.input('state', ['B', D]));
      return { loss: op.add(action, op.mul(auxLoss, cfg.auxState)), metrics: { l1_first: first, l1_action: action, l1_aux: auxLoss } };
    },
    optimizer: { lr: cfg.lr, warmupSteps: 0, clipNorm: cfg.clipNorm, weightDecay: cfg.weightDecay },
    session: { threads: ctx.threads },
  });
  const sampler = new Rng(ctx.seed).fork(`bc-sampler-${ctx.phaseIndex}`);
  const rngs = { sampler };
  let step = ctx.resume(trainer, rngs);

  // Validation: fixed frames of the held-out episodes, no augmentation, drawn once from their own Rng.
  const runner = ctx.valFrames.length ? await ModelRunner.create(model, { threads: ctx.threads }) : null;
  const valRng = new Rng(ctx.seed).fork('bc-val');
  const valBatches = runner ? Array.from({ length: cfg.valBatches }, () => sampleBatch(cache, ctx.valFrames, cfg.batch, K, vla.stats, valRng, 0, undefined, relative, aux?.norm)) : [];
  /** Validation L1 of the actions and, with the auxiliary head, its mean object position error in cm. */
  const validate = async (): Promise<{ loss: number; auxCm?: number } | null> => {
    if (!runner) return null;
    let sum = 0;
    let cm = 0;
    for (const b of valBatches) {
      const out = await runner.run(batchFeeds(vla, cache, b, cfg.batch, instruction), aux ? [VLA_IO.actionNorm, AUX_STATE] : [VLA_IO.actionNorm]);
      const pred = out[VLA_IO.actionNorm].data as Float32Array;
      let s = 0;
      for (let i = 0; i < pred.length; i++) s += Math.abs(pred[i] - b.target[i]);
      sum += s / pred.length;
      if (aux && b.state) {
        const p = out[AUX_STATE].data as Float32Array;
        let e = 0;
        for (let i = 0; i < p.length; i += 3) {
          const err = [0, 1, 2].map((a) => (p[i + a] - b.state![i + a]) * aux.norm.std[(i + a) % D]);
          e += Math.hypot(err[0], err[1], err[2]);
        }
        cm += (100 * e) / (p.length / 3);
      }
    }
    return { loss: sum / valBatches.length, auxCm: aux ? cm / valBatches.length : undefined };
  };

  const scratch = new Uint8Array(cache.frameBytes);
  let lossSum = 0;
  let firstSum = 0;
  let auxSum = 0;
  let gradSum = 0;
  let count = 0;
  let lastLoss = Number.NaN;
  let bestVal: number | null = null;
  let windowStart = performance.now();
  const startStep = step;
  let stoppedEarly = false;
  try {
    while (step < cfg.steps) {
      const b = sampleBatch(cache, ctx.trainFrames, cfg.batch, K, vla.stats, sampler, cfg.shift, scratch, relative, aux?.norm);
      trainer.learningRate = bcLearningRate(cfg, step + 1);
      const feeds = batchFeeds(vla, cache, b, cfg.batch, instruction);
      feeds.target = { data: b.target, shape: [cfg.batch, K, 7] };
      if (aux && b.state) feeds.state = { data: b.state, shape: [cfg.batch, D] };
      const r = await trainer.trainStep(feeds);
      step++;
      lastLoss = r.loss;
      lossSum += r.loss;
      firstSum += r.metrics.l1_first;
      if (aux) auxSum += r.metrics.l1_aux;
      gradSum += r.gradNorm;
      count++;
      ctx.progress(step, cfg.steps, `loss ${r.loss.toFixed(4)}`);
      if (step % cfg.logEvery === 0 || step === cfg.steps) {
        const now = performance.now();
        ctx.logMetrics({
          phase: 'bc',
          step,
          loss: lossSum / count,
          l1_first: firstSum / count,
          ...(aux ? { l1_aux: auxSum / count } : {}),
          grad_norm: gradSum / count,
          lr: r.lr,
          samples_per_s: (count * cfg.batch) / ((now - windowStart) / 1000),
          elapsed_s: (now - t0) / 1000,
        });
        lossSum = firstSum = gradSum = auxSum = 0;
        count = 0;
        windowStart = now;
      }
      const timeUp = cfg.maxMinutes !== undefined && (performance.now() - t0) / 60000 >= cfg.maxMinutes;
      if (step % cfg.checkpointEvery === 0 || step === cfg.steps || timeUp) {
        const val = await validate();
        if (val !== null) {
          ctx.logMetrics({ phase: 'bc', step, val_loss: val.loss, ...(val.auxCm !== undefined ? { val_aux_cm: val.auxCm } : {}), elapsed_s: (performance.now() - t0) / 1000 });
          bestVal = bestVal === null ? val.loss : Math.min(bestVal, val.loss);
        }
        ctx.checkpoint(step, trainer, rngs, val?.loss ?? null);
        if (ctx.haltAfterStep !== undefined && step >= ctx.haltAfterStep) {
          stoppedEarly = true;
          break;
        }
        if (timeUp) {
          stoppedEarly = true;
          break;
        }
      }
    }
  } finally {
    await trainer.dispose();
    await runner?.dispose();
  }
  const seconds = (performance.now() - t0) / 1000;
  return { steps: step, finalLoss: lastLoss, bestValLoss: bestVal, seconds, samplesPerSecond: ((step - startStep) * cfg.batch) / seconds, stoppedEarly };
}

/** Output name of the auxiliary privileged-state head in the BC training model. */
const AUX_STATE = 'aux_state';


/** The first action of each chunk: [B,K,7] -> [B,7]. */
function firstOfChunk(t: Tensor): Tensor {
  return op.reshape(op.slice(t, [0], [1], [1]), [0, 7]);
}
