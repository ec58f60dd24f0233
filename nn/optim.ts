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
  /**
   * Parameter groups with their own learning rate and weight decay (PyTorch's param_groups). A
   * parameter belongs to the first group that matches it; unmatched ones use the settings above.
   */
  groups?: readonly ParamGroup[];
}

/**
 * A parameter group. `params` selects by name: a prefix string (e.g. "trunk."), a list of exact
 * names, a RegExp or a predicate.
 */
export interface ParamGroup {
  /** For messages and logs. */
  name?: string;
  params: string | readonly string[] | RegExp | ((name: string) => boolean);
  /**
   * Learning rate of the group. Stored as a multiple of the base `lr`, so changing the rate at run
   * time (`trainer.learningRate`, warmup) scales every group alike, as a scheduler does in PyTorch.
   */
  lr?: number;
  /** Decoupled weight decay of the group (still only for parameters with `decay: true`). */
  weightDecay?: number;
}

/** Fully specified AdamW settings. */
export type ResolvedAdamW = Required<AdamWConfig>;

/** The group a parameter name falls in (index into `groups`), or -1 for the base settings. */
export function groupIndex(groups: readonly ParamGroup[], name: string): number {
  return groups.findIndex((gr) => {
    const sel = gr.params;
    if (typeof sel === 'string') return name.startsWith(sel);
    if (sel instanceof RegExp) return sel.test(name);
    if (typeof sel === 'function') return sel(name);
    return sel.includes(name);
  });
}

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
    groups: c.groups ?? [],
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
  r.groups.forEach((gr, i) => {
    const key = `groups[${i}]${gr.name ? ` (${gr.name})` : ''}`;
    if (gr.lr !== undefined && !(gr.lr >= 0)) bad(`${key}.lr`, gr.lr, '>= 0');
    if (gr.lr !== undefined && gr.lr !== r.lr && r.lr === 0) bad(`${key}.lr`, gr.lr, 'equal to the base lr when the base lr is 0 (group rates are multiples of it)');
    if (gr.weightDecay !== undefined && !(gr.weightDecay >= 0)) bad(`${key}.weightDecay`, gr.weightDecay, '>= 0');
  });
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
  /** Squared L2 norm of each parameter's gradient, [P] float64 (names the culprits of a NaN). */
  gradSquares: Tensor;
  /** The learning rate applied this step (after warmup). */
  lr: Tensor;
}

/**
 * Squared L2 norm of each gradient as a [P] float64 vector: each tensor reduced on its own
 * (ReduceSumSquare over the whole tensor up to 64k values; larger ones in rows of at least 4k
 * values, whose sums are added in float64), then the per-tensor sums in float64. One float32
 * ReduceSum over the flat gradient loses precision with size (5e-5 relative at 0.9M values, 8e-4 at
 * 16M). A full reduction is ONNX Runtime's fast path; reductions over a last axis are 3-5x slower.
 */
export function gradientSquares(grads: readonly Tensor[], shapes?: readonly (readonly number[])[]): Tensor {
  const parts = grads.map((d, i) => {
    // `shapes`: the original shapes of gradients given flattened (the rows follow them).
    const shape = shapes?.[i] ?? d.shape;
    const size = shape.reduce<number>((a, b) => a * (b as number), 1);
    let sq: Tensor;
    if (d.rank === 0) sq = op.mul(d, d);
    else if (size <= 65536 || !shape.every((x) => typeof x === 'number')) sq = reduceSumSquare(d, d.shape.map((_, i) => i));
    else {
      let cols = 1;
      let k = shape.length;
      while (k > 0 && cols < 4096) cols *= shape[--k] as number;
      const rows = size / cols;
      sq = rows === 1 ? reduceSumSquare(d, d.shape.map((_, i) => i)) : reduceSumSquare(op.reshape(d, [rows, cols]), [1]);
    }
    const wide = sq.dtype === 'float64' ? sq : op.cast(sq, 'float64');
    return op.reshape(wide.rank === 0 ? wide : op.reduceSum(wide), [1]);
  });
  return parts.length === 1 ? parts[0] : op.concat(parts, 0);
}

function reduceSumSquare(x: Tensor, axes: readonly number[]): Tensor {
  const drop = new Set(axes.map((a) => (a < 0 ? a + x.rank : a)));
  return x.graph.addNode('ReduceSumSquare', [x], { axes: { kind: 'ints', value: axes }, keepdims: { kind: 'int', value: 0 } }, [
    { shape: x.shape.filter((_, i) => !drop.has(i)), dtype: x.dtype },
  ])[0];
}

/**
 * Emits one AdamW update of `params` (their graph tensors) given their gradients. Moments are flat
 * vectors in parameter order. PyTorch semantics: p <- p - lr_t (wd p + m_hat / (sqrt(v_hat) + eps)),
 * with lr_t and wd per parameter group.
 */
export function adamw(g: Graph, params: readonly Parameter[], grads: readonly Tensor[], cfg: ResolvedAdamW, state: AdamWState): AdamWUpdate {
  const sizes = params.map((p) => p.data.length);
  const flatten = (t: Tensor): Tensor => (t.rank === 1 ? t : op.reshape(t, [-1]));
  // The squared norms read the flattened gradients, so each Reshape has one reader and ONNX
  // Runtime can alias it instead of copying.
  const gPieces = grads.map(flatten);
  const gFlat = gPieces.length === 1 ? gPieces[0] : op.concat(gPieces, 0);

  const gSquared = op.mul(gFlat, gFlat);
  const gradSquares = gradientSquares(gPieces, params.map((p) => p.shape));
  const norm64 = op.sqrt(op.reduceSum(gradSquares));
  const gradNorm = g.floatType === 'float64' ? norm64 : op.cast(norm64, 'float32');
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

  // Per-parameter learning-rate multiples and decay rates (groups); scalars when uniform.
  const groupOf = params.map((p) => groupIndex(cfg.groups, p.name));
  const lrScaleOf = (k: number): number => (k < 0 || cfg.groups[k].lr === undefined ? 1 : cfg.groups[k].lr! / (cfg.lr || 1));
  const decayOf = (i: number): number => {
    if (!params[i].decay) return 0;
    const k = groupOf[i];
    return k < 0 || cfg.groups[k].weightDecay === undefined ? cfg.weightDecay : cfg.groups[k].weightDecay!;
  };
  const perParam = (f: (i: number) => number): number | Tensor => {
    const values = params.map((_, i) => f(i));
    if (values.every((x) => x === values[0])) return values[0];
    const vec = new Float32Array(sizes.reduce((a, b) => a + b, 0));
    let offset = 0;
    values.forEach((x, i) => {
      vec.fill(x, offset, offset + sizes[i]);
      offset += sizes[i];
    });
    return g.constantData(vec, [vec.length]);
  };
  const lrScale = perParam((i) => lrScaleOf(groupOf[i]));

  // Per-group rates scale the step size: a scalar when uniform, else one constant vector.
  const stepFactor = typeof lrScale === 'number' ? (lrScale === 1 ? stepSize : op.mul(stepSize, lrScale)) : op.mul(lrScale, stepSize);
  const update = op.mul(op.div(m, denom), stepFactor);
  // The update is split per parameter and applied to each in its own shape: decoupled decay as
  // PyTorch applies it, p (1 - lr scale wd) - update, with the factor a scalar per parameter (no
  // flat parameter vector, no per-element factor vector rebuilt every step).
  const pieces = params.length === 1 ? [update] : op.split(update, sizes, 0);
  const factors = new Map<number, Tensor>();
  const factorFor = (rate: number): Tensor => {
    let f = factors.get(rate);
    if (!f) factors.set(rate, (f = op.sub(1, op.mul(lr, rate))));
    return f;
  };
  const newParams = pieces.map((piece, i) => {
    const p = g.param(params[i]);
    const u = params[i].shape.length === 1 ? piece : op.reshape(piece, params[i].shape);
    const rate = decayOf(i) * lrScaleOf(groupOf[i]);
    return op.sub(rate > 0 ? op.mul(p, factorFor(rate)) : p, u);
  });
  return { params: newParams, m, v, gradNorm, gradSquares, lr };
}
/** base ** t for a constant base and a scalar tensor exponent. */
function powScalar(g: Graph, base: number, t: Tensor): Tensor {
  return g.addNode('Pow', [g.constant(base), t], {}, [{ shape: [], dtype: t.dtype }])[0];
}
