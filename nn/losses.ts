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

/**
 * Euclidean distances between the rows of x [N, D] and y [M, D] -> [N, M], via
 * |x|^2 + |y|^2 - 2 x.y (one GEMM), clamped at 1e-12 before the square root so the gradient stays
 * finite on the diagonal; `squared` skips the root.
 */
export function pairwiseDistances(x: Tensor, y: Tensor = x, squared = false): Tensor {
  if (x.rank !== 2 || y.rank !== 2 || x.shape[1] !== y.shape[1]) throw new Error(`pairwiseDistances: need [N, D] and [M, D], got ${x} and ${y}`);
  const xx = op.reduceSum(op.mul(x, x), [1], true);
  const yy = op.transpose(op.reduceSum(op.mul(y, y), [1], true), [1, 0]);
  const d2 = op.maximum(op.sub(op.add(xx, yy), op.mul(op.gemm(x, y, { transB: true }), 2)), 1e-12);
  return squared ? d2 : op.sqrt(d2);
}

/** Result of a mined triplet loss. */
export interface MinedTriplets {
  loss: Tensor;
  /** Share of anchors (batch-hard) or anchor-positive pairs (semi-hard) with a non-zero loss. */
  activeFraction: Tensor;
  /** Batch-hard only: per anchor, the index of its hardest positive and hardest negative (int64 [N]). */
  hardestPositive?: Tensor;
  hardestNegative?: Tensor;
}

function labelMasks(labels: Tensor, n: number): { same: Tensor; positive: Tensor; negative: Tensor } {
  if (labels.dtype !== 'int64' || labels.rank !== 1) throw new Error(`triplet mining: labels must be int64 [N], got ${labels}`);
  const g = labels.graph;
  const eq = g.addNode('Equal', [op.unsqueeze(labels, [1]), op.unsqueeze(labels, [0])], {}, [{ shape: [labels.shape[0], labels.shape[0]], dtype: 'bool' }])[0];
  const same = op.cast(eq, g.floatType);
  const offDiagonal = new Float32Array(n * n).fill(1);
  for (let i = 0; i < n; i++) offDiagonal[i * n + i] = 0;
  const positive = op.mul(same, g.constantData(offDiagonal, [n, n]));
  return { same, positive, negative: op.sub(1, same) };
}

/**
 * Batch-hard triplet loss (Hermans et al. 2017) over embeddings [N, D] with int64 labels [N]: for
 * each anchor its farthest positive and nearest negative; hinge max(d_ap - d_an + margin, 0), or the
 * soft-margin form softplus(d_ap - d_an) with `soft: true`. Averaged over anchors that have both a
 * positive and a negative in the batch. N must be static.
 */
export function batchHardTripletLoss(embeddings: Tensor, labels: Tensor, options: { margin?: number; soft?: boolean; squared?: boolean } = {}): MinedTriplets {
  const n = embeddings.shape[0];
  if (typeof n !== 'number') throw new Error(`batchHardTripletLoss: the batch of ${embeddings} must be static`);
  const margin = options.margin ?? 0.2;
  const d = pairwiseDistances(embeddings, embeddings, options.squared ?? false);
  const { positive, negative } = labelMasks(labels, n);
  // Distances are >= 0: masked-out positives become 0 (never the max), negatives + a large offset.
  const posD = op.mul(d, positive);
  const big = op.add(op.reduceMax(op.stopGradient(d)), 1);
  const negD = op.add(d, op.mul(op.sub(1, negative), big));
  const hardPos = op.reduceMax(posD, [1]);
  const hardNeg = op.reduceMin(negD, [1]);
  const valid = op.mul(op.reduceMax(positive, [1]), op.reduceMax(negative, [1]));
  const gap = op.sub(hardPos, hardNeg);
  const perAnchor = options.soft ? op.softplus(gap) : op.relu(op.add(gap, margin));
  const count = op.maximum(op.reduceSum(valid), 1);
  const loss = op.div(op.reduceSum(op.mul(perAnchor, valid)), count);
  const active = op.div(op.reduceSum(op.mul(op.cast(op.greater(perAnchor, 1e-12), perAnchor.dtype), valid)), count);
  return { loss, activeFraction: active, hardestPositive: op.argMax(posD, 1), hardestNegative: op.argMin(negD, 1) };
}

/**
 * Semi-hard triplet loss (FaceNet; TensorFlow Addons' semantics) over embeddings [N, D] and int64
 * labels [N]: every anchor-positive pair takes the nearest negative farther than the positive; where
 * none is, the farthest negative. Hinge max(d_ap - d_an + margin, 0) averaged over positive pairs.
 */
export function semiHardTripletLoss(embeddings: Tensor, labels: Tensor, options: { margin?: number; squared?: boolean } = {}): MinedTriplets {
  const n = embeddings.shape[0];
  if (typeof n !== 'number') throw new Error(`semiHardTripletLoss: the batch of ${embeddings} must be static`);
  const margin = options.margin ?? 0.2;
  const d = pairwiseDistances(embeddings, embeddings, options.squared ?? false);
  const { positive, negative } = labelMasks(labels, n);
  const dAp = op.unsqueeze(d, [2]); // [N(anchor), N(positive), 1]
  const dAn = op.unsqueeze(d, [1]); // [N(anchor), 1, N(negative)]
  const neg3 = op.unsqueeze(negative, [1]);
  // Semi-hard candidates: negatives with d_an > d_ap (mask from values, no gradient through it).
  const farther = op.mul(op.cast(op.greater(op.stopGradient(dAn), op.stopGradient(dAp)), d.dtype), neg3); // [N, N, N]
  const big = op.add(op.reduceMax(op.stopGradient(d)), 1);
  const nearestFarther = op.reduceMin(op.add(dAn, op.mul(op.sub(1, farther), big)), [2]); // [N, N]
  const hasFarther = op.greater(op.reduceMax(farther, [2]), 0);
  const farthestNeg = op.reduceMax(op.mul(d, negative), [1], true); // [N, 1]
  const chosen = op.where(hasFarther, nearestFarther, op.expand(farthestNeg, nearestFarther));
  const perPair = op.relu(op.add(op.sub(d, chosen), margin));
  const count = op.maximum(op.reduceSum(positive), 1);
  const loss = op.div(op.reduceSum(op.mul(perPair, positive)), count);
  const active = op.div(op.reduceSum(op.mul(op.cast(op.greater(perPair, 1e-12), perPair.dtype), positive)), count);
  return { loss, activeFraction: active };
}

/**
 * A value loss: 0.5 mean((V - R)^2), or with `oldValues` and `clip` CleanRL's clipped form
 * 0.5 mean(max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2)).
 */
export function valueLoss(values: Tensor, returns: Tensor, options: { oldValues?: Tensor; clip?: number } = {}): Tensor {
  sameShape('valueLoss', values, returns);
  const err = op.sub(values, returns);
  if (options.clip === undefined) return op.mul(op.reduceMean(op.mul(err, err)), 0.5);
  if (!options.oldValues) throw new Error('valueLoss: clip needs oldValues');
  if (!(options.clip > 0)) throw new Error(`valueLoss: clip must be > 0, got ${options.clip}`);
  sameShape('valueLoss', values, options.oldValues);
  const vClipped = op.add(options.oldValues, op.clip(op.sub(values, options.oldValues), -options.clip, options.clip));
  const errClipped = op.sub(vClipped, returns);
  return op.mul(op.reduceMean(op.maximum(op.mul(err, err), op.mul(errClipped, errClipped))), 0.5);
}

/** One critic of a PPO loss with several value heads (e.g. extrinsic and intrinsic returns). */
export interface PpoCritic {
  values: Tensor;
  returns: Tensor;
  /** For the clipped value loss. */
  oldValues?: Tensor;
  /** Weight of this critic's loss (default 1; the total is then scaled by `valueCoef`). */
  coef?: number;
}

/** Inputs of the PPO loss; all per-sample tensors are [N]. */
export interface PpoInputs {
  logProb: Tensor;
  oldLogProb: Tensor;
  advantages: Tensor;
  /** The single critic's values and returns (or use `critics`). */
  values?: Tensor;
  returns?: Tensor;
  /** Per-sample or scalar policy entropy (entropy bonus). */
  entropy?: Tensor;
  /** Values from the rollout, for the clipped value loss (CleanRL's clip_vloss). */
  oldValues?: Tensor;
  /**
   * Several value heads, each with its own returns (EvoVLA: `ext` and `int`): the value loss is
   * sum(coef_k * loss_k), each clipped when `clipValue` is set and it has `oldValues`.
   */
  critics?: Readonly<Record<string, PpoCritic>>;
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
  /** Per-critic value losses (with `critics`). */
  valueLosses: Record<string, Tensor>;
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
  const critics: Record<string, PpoCritic> = { ...x.critics };
  if (x.values || x.returns) {
    if (!x.values || !x.returns) throw new Error('ppoLoss: values and returns go together');
    if (critics.value) throw new Error('ppoLoss: a critic named "value" clashes with values/returns');
    critics.value = { values: x.values, returns: x.returns, oldValues: x.oldValues };
  }
  if (Object.keys(critics).length === 0) throw new Error('ppoLoss: needs values/returns or critics');
  const valueLosses: Record<string, Tensor> = {};
  let vLoss: Tensor | null = null;
  for (const [name, c] of Object.entries(critics)) {
    if (cfg.clipValue && !c.oldValues) throw new Error(`ppoLoss: clipValue needs oldValues (critic "${name}")`);
    const l = valueLoss(c.values, c.returns, cfg.clipValue ? { oldValues: c.oldValues, clip: cfg.clip } : {});
    valueLosses[name] = l;
    const weighted = c.coef === undefined || c.coef === 1 ? l : op.mul(l, c.coef);
    vLoss = vLoss ? op.add(vLoss, weighted) : weighted;
  }
  const valueLossTotal = vLoss!;
  const entropy = x.entropy ? op.reduceMean(x.entropy) : op.mul(policyLoss, 0);
  let loss = op.add(policyLoss, op.mul(valueLossTotal, cfg.valueCoef));
  if (x.entropy && cfg.entropyCoef !== 0) loss = op.sub(loss, op.mul(entropy, cfg.entropyCoef));
  // Diagnostics as in CleanRL: approx KL = mean((r - 1) - log r); share of clipped ratios.
  const approxKl = op.reduceMean(op.sub(op.sub(ratio, 1), logRatio));
  const clipFraction = op.reduceMean(op.cast(op.greater(op.abs(op.sub(ratio, 1)), cfg.clip), ratio.dtype));
  return { loss, policyLoss, valueLoss: valueLossTotal, entropy, approxKl, clipFraction, valueLosses };
}
