/**
 * AdamW with linear warmup and global gradient-norm clipping, emitted as ONNX ops into the training
 * graph. Gradients, parameters and both moments are handled as single flat vectors, so the update
 * is ~15 element-wise nodes for the whole model instead of ~15 per parameter tensor.
 */
import type { Graph, Parameter, Tensor } from './graph.ts';
import * as op from './ops.ts';

/** AdamW hyper-parameters (defaults as PyTorch's AdamW, plus warmup and clipping). */
export interface AdamWConfig {
  /** Peak learning rate; the value fed at run time (`optim.lr`) can override it per step. */
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay, applied to parameters with `decay: true` (default 0.01). */
  weightDecay?: number;
  /** Linear warmup: lr * min(1, step / warmupSteps). 0 disables (default). */
  warmupSteps?: number;
  /** Global L2 norm the gradient is clipped to; 0 or undefined disables. */
  clipNorm?: number;
}

/** Fully specified AdamW settings. */
export type ResolvedAdamW = Required<AdamWConfig>;

/** Fills defaults and validates. */
export function resolveAdamW(c: AdamWConfig): ResolvedAdamW {
  const r: ResolvedAdamW = {
    lr: c.lr,
    beta1: c.beta1 ?? 0.9,
    beta2: c.beta2 ?? 0.999,
    eps: c.eps ?? 1e-8,
    weightDecay: c.weightDecay ?? 0.01,
    warmupSteps: c.warmupSteps ?? 0,
    clipNorm: c.clipNorm ?? 0,
  };
  const bad = (k: string, v: number, want: string): never => {
    throw new Error(`AdamW ${k} must be ${want}, got ${v}`);
  };
  if (!(r.lr >= 0)) bad('lr', r.lr, '>= 0');
  if (!(r.beta1 >= 0 && r.beta1 < 1)) bad('beta1', r.beta1, 'in [0, 1)');
  if (!(r.beta2 >= 0 && r.beta2 < 1)) bad('beta2', r.beta2, 'in [0, 1)');
  if (!(r.eps > 0)) bad('eps', r.eps, '> 0');
  if (!(r.weightDecay >= 0)) bad('weightDecay', r.weightDecay, '>= 0');
  if (!(Number.isInteger(r.warmupSteps) && r.warmupSteps >= 0)) bad('warmupSteps', r.warmupSteps, 'an integer >= 0');
  if (!(r.clipNorm >= 0)) bad('clipNorm', r.clipNorm, '>= 0');
  return r;
}

/** Graph tensors of the optimizer state. `step` is the 1-based index of this update (float scalar). */
export interface AdamWState {
  m: Tensor;
  v: Tensor;
  step: Tensor;
  lr: Tensor;
}

/** What one AdamW update produces. */
export interface AdamWUpdate {
  params: Tensor[];
  m: Tensor;
  v: Tensor;
  /** Global gradient norm before clipping. */
  gradNorm: Tensor;
  /** The learning rate applied this step (after warmup). */
  lr: Tensor;
}

/**
 * Emits one AdamW update of `params` (their graph tensors) given their gradients. Moments are flat
 * vectors in parameter order. PyTorch semantics: p <- p - lr_t (wd p + m_hat / (sqrt(v_hat) + eps)).
 */
export function adamw(g: Graph, params: readonly Parameter[], grads: readonly Tensor[], cfg: ResolvedAdamW, state: AdamWState): AdamWUpdate {
  const sizes = params.map((p) => p.data.length);
  const flatten = (t: Tensor): Tensor => (t.rank === 1 ? t : op.reshape(t, [-1]));
  const flat = (ts: readonly Tensor[]): Tensor => (ts.length === 1 ? flatten(ts[0]) : op.concat(ts.map(flatten), 0));
  const gFlat = flat(grads);
  const pFlat = flat(params.map((p) => g.param(p)));

  const gSquared = op.mul(gFlat, gFlat);
  const gradNorm = op.sqrt(op.reduceSum(gSquared));
  // Clip factor min(1, c / (norm + 1e-6)), folded into the moment coefficients (scalar math only).
  const scale = cfg.clipNorm > 0 ? op.minimum(op.div(cfg.clipNorm, op.add(gradNorm, 1e-6)), 1) : null;
  const c1 = scale ? op.mul(scale, 1 - cfg.beta1) : 1 - cfg.beta1;
  const c2 = scale ? op.mul(op.mul(scale, scale), 1 - cfg.beta2) : 1 - cfg.beta2;
  const m = op.add(op.mul(state.m, cfg.beta1), op.mul(gFlat, c1));
  const v = op.add(op.mul(state.v, cfg.beta2), op.mul(gSquared, c2));

  const t = state.step;
  const lr = cfg.warmupSteps > 0 ? op.mul(state.lr, op.minimum(op.div(t, cfg.warmupSteps), 1)) : state.lr;
  const bias1 = op.sub(1, powScalar(g, cfg.beta1, t));
  const bias2 = op.sub(1, powScalar(g, cfg.beta2, t));
  // m_hat / (sqrt(v_hat) + eps) = (m / bias1) / (sqrt(v) / sqrt(bias2) + eps)
  //                            = m / (sqrt(v) + eps sqrt(bias2)) * sqrt(bias2) / bias1,
  // which keeps the bias corrections in scalar math: 4 passes over the vectors instead of 5.
  const sqrtBias2 = op.sqrt(bias2);
  const denom = op.add(op.sqrt(v), op.mul(sqrtBias2, cfg.eps));
  const stepSize = op.div(op.mul(lr, sqrtBias2), bias1);
  let next = op.sub(pFlat, op.mul(op.div(m, denom), stepSize));
  if (cfg.weightDecay > 0) {
    const decayed = params.filter((p) => p.decay).length;
    if (decayed === params.length) next = op.sub(next, op.mul(pFlat, op.mul(lr, cfg.weightDecay)));
    else if (decayed > 0) {
      const mask = new Float32Array(pFlat.shape[0] as number);
      let offset = 0;
      for (const p of params) {
        if (p.decay) mask.fill(1, offset, offset + p.data.length);
        offset += p.data.length;
      }
      next = op.sub(next, op.mul(op.mul(pFlat, g.constantData(mask, [mask.length])), op.mul(lr, cfg.weightDecay)));
    }
  }
  const pieces = params.length === 1 ? [next] : op.split(next, sizes, 0);
  const newParams = pieces.map((piece, i) => (params[i].shape.length === 1 ? piece : op.reshape(piece, params[i].shape)));
  return { params: newParams, m, v, gradNorm, lr };
}

/** base ** t for a constant base and a scalar tensor exponent. */
function powScalar(g: Graph, base: number, t: Tensor): Tensor {
  return g.addNode('Pow', [g.constant(base), t], {}, [{ shape: [], dtype: t.dtype }])[0];
}
