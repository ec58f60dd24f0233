/**
 * Losses and distribution terms, built from primitive ops (autodiff differentiates them through
 * those ops, so they need no gradient rules of their own). Each returns a float scalar unless noted.
 */
import { Tensor, shapeString } from './graph.ts';
import * as op from './ops.ts';

const LOG_2PI = Math.log(2 * Math.PI);

function sameShape(name: string, a: Tensor, b: Tensor): void {
  if (a.rank !== b.rank || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new Error(`${name}: ${a.name} ${shapeString(a.shape)} and ${b.name} ${shapeString(b.shape)} must have the same shape`);
  }
}

/** Mean squared error over all elements. */
export function mse(pred: Tensor, target: Tensor): Tensor {
  sameShape('mse', pred, target);
  const d = op.sub(pred, target);
  return op.reduceMean(op.mul(d, d));
}

/** Mean absolute error over all elements. */
export function l1(pred: Tensor, target: Tensor): Tensor {
  sameShape('l1', pred, target);
  return op.reduceMean(op.abs(op.sub(pred, target)));
}

/** Mean cross-entropy of `logits` [..., C] against int64 class `labels` [...]. */
export function crossEntropy(logits: Tensor, labels: Tensor): Tensor {
  const c = logits.shape[logits.rank - 1];
  if (typeof c !== 'number') throw new Error(`crossEntropy: the class axis of ${logits} must be static`);
  if (labels.dtype !== 'int64' || labels.rank !== logits.rank - 1 || labels.shape.some((d, i) => d !== logits.shape[i])) {
    throw new Error(`crossEntropy: labels must be int64 ${shapeString(logits.shape.slice(0, -1))} for logits ${shapeString(logits.shape)}, got ${labels}`);
  }
  const picked = op.reduceSum(op.mul(op.logSoftmax(logits, -1), op.oneHot(labels, c)), [-1]);
  return op.neg(op.reduceMean(picked));
}

/**
 * Triplet margin loss: mean(relu(d(a, p) - d(a, n) + margin)) over rows of [N, D] embeddings.
 * `euclidean`: d = sqrt(|a - b|^2 + 1e-12) (the epsilon keeps the gradient finite at a = b);
 * `cosine`: d = 1 - cos(a, b).
 */
export function tripletMargin(anchor: Tensor, positive: Tensor, negative: Tensor, margin = 1, distance: 'euclidean' | 'cosine' = 'euclidean'): Tensor {
  sameShape('tripletMargin', anchor, positive);
  sameShape('tripletMargin', anchor, negative);
  const dist = (a: Tensor, b: Tensor): Tensor => {
    if (distance === 'euclidean') {
      const d = op.sub(a, b);
      return op.sqrt(op.add(op.reduceSum(op.mul(d, d), [-1]), 1e-12));
    }
    const norm = (x: Tensor): Tensor => op.sqrt(op.add(op.reduceSum(op.mul(x, x), [-1]), 1e-12));
    return op.sub(1, op.div(op.reduceSum(op.mul(a, b), [-1]), op.mul(norm(a), norm(b))));
  };
  return op.reduceMean(op.relu(op.add(op.sub(dist(anchor, positive), dist(anchor, negative)), margin)));
}

/**
 * Default bounds of a log standard deviation: exp(-20) to exp(2) (as SAC and CleanRL use). Outside
 * them exp(-logStd) overflows float32 (logStd < -88) or the policy stops exploring usefully.
 */
export const LOG_STD_BOUNDS: readonly [number, number] = [-20, 2];

/**
 * Clamps a log standard deviation to `bounds` (gradient zero outside, as torch.clamp). Apply it
 * once where the policy produces logStd, so sampling, log-probabilities and entropy agree.
 */
export function clampLogStd(logStd: Tensor, bounds: readonly [number, number] = LOG_STD_BOUNDS): Tensor {
  const [lo, hi] = bounds;
  if (!(lo < hi)) throw new Error(`clampLogStd: bounds must be [lo, hi] with lo < hi, got [${lo}, ${hi}]`);
  return op.clip(logStd, lo, hi);
}

/**
 * Log-density of a diagonal Gaussian, summed over the last axis: [..., A] -> [...]. `logStd` is
 * clamped to `logStdBounds` (default `LOG_STD_BOUNDS`; null leaves it as is), so a runaway
 * log-std cannot turn exp(-logStd) into an infinity.
 */
export function gaussianLogProb(x: Tensor, mean: Tensor, logStd: Tensor, logStdBounds: readonly [number, number] | null = LOG_STD_BOUNDS): Tensor {
  const ls = logStdBounds ? clampLogStd(logStd, logStdBounds) : logStd;
  const z = op.mul(op.sub(x, mean), op.exp(op.neg(ls)));
  const perDim = op.sub(op.add(op.mul(op.mul(z, z), -0.5), op.neg(ls)), 0.5 * LOG_2PI);
  return op.reduceSum(perDim, [-1]);
}

/**
 * Entropy of a diagonal Gaussian, summed over the last axis of `logStd`: [..., A] -> [...]. Clamped
 * like `gaussianLogProb`.
 */
export function gaussianEntropy(logStd: Tensor, logStdBounds: readonly [number, number] | null = LOG_STD_BOUNDS): Tensor {
  const ls = logStdBounds ? clampLogStd(logStd, logStdBounds) : logStd;
  return op.reduceSum(op.add(ls, 0.5 * (1 + LOG_2PI)), [-1]);
}

/** Inputs of the PPO loss; all per-sample tensors are [N]. */
export interface PpoInputs {
  logProb: Tensor;
  oldLogProb: Tensor;
  advantages: Tensor;
  values: Tensor;
  returns: Tensor;
  /** Per-sample or scalar policy entropy (entropy bonus). */
  entropy?: Tensor;
  /** Values from the rollout, for the clipped value loss (CleanRL's clip_vloss). */
  oldValues?: Tensor;
}

/** PPO coefficients (EvoVLA: clip 0.2, value 0.5, entropy 0.01). */
export interface PpoConfig {
  clip: number;
  valueCoef: number;
  entropyCoef: number;
  /** Clip the value loss like the policy ratio (needs `oldValues`). */
  clipValue?: boolean;
}

/** The PPO loss and its parts (diagnostics carry no gradient into the loss). */
export interface PpoTerms {
  loss: Tensor;
  policyLoss: Tensor;
  valueLoss: Tensor;
  entropy: Tensor;
  approxKl: Tensor;
  clipFraction: Tensor;
}

/**
 * PPO's clipped surrogate with value loss and entropy bonus:
 * loss = -mean(min(r A, clip(r, 1-e, 1+e) A)) + c_v * 0.5 mean((V - R)^2) - c_e * mean(H), r = exp(logp - logp_old).
 */
export function ppoLoss(x: PpoInputs, cfg: PpoConfig): PpoTerms {
  const logRatio = op.sub(x.logProb, x.oldLogProb);
  const ratio = op.exp(logRatio);
  const unclipped = op.mul(ratio, x.advantages);
  const clipped = op.mul(op.clip(ratio, 1 - cfg.clip, 1 + cfg.clip), x.advantages);
  const policyLoss = op.neg(op.reduceMean(op.minimum(unclipped, clipped)));
  let valueLoss: Tensor;
  const err = op.sub(x.values, x.returns);
  if (cfg.clipValue) {
    if (!x.oldValues) throw new Error('ppoLoss: clipValue needs oldValues');
    const vClipped = op.add(x.oldValues, op.clip(op.sub(x.values, x.oldValues), -cfg.clip, cfg.clip));
    const errClipped = op.sub(vClipped, x.returns);
    valueLoss = op.mul(op.reduceMean(op.maximum(op.mul(err, err), op.mul(errClipped, errClipped))), 0.5);
  } else {
    valueLoss = op.mul(op.reduceMean(op.mul(err, err)), 0.5);
  }
  const entropy = x.entropy ? op.reduceMean(x.entropy) : op.mul(policyLoss, 0);
  let loss = op.add(policyLoss, op.mul(valueLoss, cfg.valueCoef));
  if (x.entropy && cfg.entropyCoef !== 0) loss = op.sub(loss, op.mul(entropy, cfg.entropyCoef));
  // Diagnostics as in CleanRL: approx KL = mean((r - 1) - log r); share of clipped ratios.
  const approxKl = op.reduceMean(op.sub(op.sub(ratio, 1), logRatio));
  const clipFraction = op.reduceMean(op.cast(op.greater(op.abs(op.sub(ratio, 1)), cfg.clip), ratio.dtype));
  return { loss, policyLoss, valueLoss, entropy, approxKl, clipFraction };
}
