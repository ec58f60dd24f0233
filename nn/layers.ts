/**
 * Model-building blocks. Each layer creates its parameters in a `ParamSet` when constructed and
 * emits graph nodes when applied, so one definition traces into both the inference and the
 * training graph. Weights are stored [in, out] so the forward product needs no transpose.
 */
import { Graph, Tensor, shapeString } from './graph.ts';
import * as op from './ops.ts';
import { init, type Initializer, type ParamSet, type Parameter } from './params.ts';

/** Activation functions by name. */
export type Activation = 'relu' | 'gelu' | 'gelu_tanh' | 'tanh' | 'sigmoid' | 'none';

/**
 * GELU, exact (erf) form: x * Phi(x). Its gradient Phi(x) + x phi(x) is written by hand (reusing
 * Phi from the forward pass): 6 element-wise passes instead of the ~10 that differentiating the
 * composite would emit, on the largest activations of a transformer.
 */
export function gelu(x: Tensor): Tensor {
  const u = op.mul(x, Math.SQRT1_2);
  const cdf = op.mul(op.add(op.erf(u), 1), 0.5);
  const y = op.mul(x, cdf);
  return op.withCustomGradient(y, [x], (dy) => {
    // phi(x) = exp(-x^2 / 2) / sqrt(2 pi) = exp(ln(1 / sqrt(2 pi)) - u^2): the constant rides in
    // the exponent, so x phi(x) costs 4 passes over the activations (u^2, subtract, exp, times x).
    const xPdf = op.mul(op.exp(op.sub(-0.5 * Math.log(2 * Math.PI), op.mul(u, u))), x);
    return [op.mul(dy, op.add(cdf, xPdf))];
  });
}

/**
 * The exact GELU of x = sqrt(2) u, taken in u and times sqrt 2: u (1 + erf(u)) = sqrt(2) gelu(x).
 * `MLP` scales the (small) weight and bias of the product before it by 1/sqrt 2, so the product
 * gives u directly, and the next layer's weight by 1/sqrt 2: no pass over the activations for the
 * erf argument, none for the 1/2. Forward: erf, + 1, times u (3 passes); the gradient, written by
 * hand, is 1 + erf(u) + (2 / sqrt pi) u exp(-u^2) (6 passes, reusing 1 + erf(u)).
 */
function geluScaled(u: Tensor): Tensor {
  const cdf2 = op.add(op.erf(u), 1);
  const y = op.mul(u, cdf2);
  return op.withCustomGradient(y, [u], (dy) => {
    // (2 / sqrt pi) u exp(-u^2) = u exp(ln(2 / sqrt pi) - u^2): the constant rides in the exponent.
    const uPdf = op.mul(op.exp(op.sub(Math.log(2 / Math.sqrt(Math.PI)), op.mul(u, u))), u);
    return [op.mul(dy, op.add(cdf2, uPdf))];
  });
}

/** GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
export function geluTanh(x: Tensor): Tensor {
  const inner = op.mul(op.add(x, op.mul(op.mul(op.mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
  return op.mul(op.mul(x, 0.5), op.add(op.tanh(inner), 1));
}

/** Applies a named activation. */
export function activate(x: Tensor, a: Activation): Tensor {
  switch (a) {
    case 'relu':
      return op.relu(x);
    case 'gelu':
      return gelu(x);
    case 'gelu_tanh':
      return geluTanh(x);
    case 'tanh':
      return op.tanh(x);
    case 'sigmoid':
      return op.sigmoid(x);
    case 'none':
      return x;
  }
}

/** y = x W + b over the last axis. */
export class Linear {
  readonly weight: Parameter;
  readonly bias: Parameter | null;

  constructor(
    params: ParamSet,
    readonly name: string,
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: { bias?: boolean; weightInit?: Initializer; biasInit?: Initializer } = {},
  ) {
    this.weight = params.add(`${name}.weight`, [inFeatures, outFeatures], options.weightInit ?? init.fanInUniform());
    this.bias =
      options.bias === false
        ? null
        : params.add(`${name}.bias`, [outFeatures], options.biasInit ?? init.fanInUniform(), { fan: { fanIn: inFeatures, fanOut: outFeatures } });
  }

  apply(x: Tensor): Tensor {
    const g = x.graph;
    return this.product(x, g.param(this.weight), this.bias ? g.param(this.bias) : undefined);
  }

  /**
   * `apply(norm.apply(x))`; in training graphs with the norm's gain and bias folded into this
   * layer's weight and bias (W' = diag(gain) W, b' = bias W + b: products of small tensors), so
   * the activations are only normalised: the norm's gradient then skips the gain multiply and its
   * two reductions over the activations. Inference graphs (weights fed as inputs to rollout
   * runners) would redo the small products every run, so there the norm is applied as it is.
   * Same parameters, same result up to float rounding.
   */
  applyNormalized(x: Tensor, norm: LayerNorm): Tensor {
    // Only training graphs fold (see MultiHeadAttention.apply): inference applies the norm as is.
    if (!x.graph.training) return this.apply(norm.apply(x));
    const folded = foldNorm(norm, x.graph.param(this.weight), this.bias ? x.graph.param(this.bias) : null);
    return this.product(norm.normalize(x), folded.weight, folded.bias);
  }

  /** x W + b for given weight and bias tensors (the layer's own, or derived from them). */
  product(x: Tensor, w: Tensor, b?: Tensor): Tensor {
    if (x.shape[x.rank - 1] !== this.inFeatures) {
      throw new Error(`${this.name}: input ${x.name} has shape ${shapeString(x.shape)}, expected last dimension ${this.inFeatures}`);
    }
    // One GEMM with the bias fused in (no separate Add pass), on rows folded to 2-D. Folding needs
    // every axis but the first to be static, to unfold the result.
    const inner = x.shape.slice(1, -1);
    if (x.rank >= 2 && inner.every((d) => typeof d === 'number')) {
      const rows = x.rank === 2 ? x : op.reshape(x, [-1, this.inFeatures]);
      const y = op.gemm(rows, w, { c: b });
      return x.rank === 2 ? y : op.reshape(y, [-1, ...(inner as number[]), this.outFeatures]);
    }
    const y = op.matmul(x, w);
    return b ? op.add(y, b) : y;
  }
}

/** A table of `count` learned vectors of size `dim`, looked up by int64 ids. */
export class Embedding {
  readonly table: Parameter;

  constructor(params: ParamSet, readonly name: string, readonly count: number, readonly dim: number, initializer: Initializer = init.normal(0.02)) {
    this.table = params.add(`${name}.table`, [count, dim], initializer, { decay: false });
  }

  apply(ids: Tensor): Tensor {
    return op.gather(ids.graph.param(this.table), ids);
  }
}

/** Layer normalisation over the last axis with learned gain and bias. */
export class LayerNorm {
  readonly scale: Parameter;
  readonly bias: Parameter;

  constructor(params: ParamSet, readonly name: string, readonly dim: number, readonly epsilon = 1e-5) {
    this.scale = params.add(`${name}.scale`, [dim], init.ones(), { decay: false });
    this.bias = params.add(`${name}.bias`, [dim], init.zeros(), { decay: false });
  }

  apply(x: Tensor): Tensor {
    const g = x.graph;
    return op.layerNorm(x, g.param(this.scale), g.param(this.bias), this.epsilon);
  }

  /** The normalisation alone, (x - mean) / std, without gain and bias (see `foldNorm`). */
  normalize(x: Tensor): Tensor {
    return op.layerNorm(x, null, null, this.epsilon);
  }
}

/**
 * Folds a LayerNorm's gain and bias into the product that follows it: (xhat g + c) W + b =
 * xhat (diag(g) W) + (c W + b). Returns the folded weight [in, out] and bias [out].
 */
export function foldNorm(norm: LayerNorm, weight: Tensor, bias: Tensor | null): { weight: Tensor; bias: Tensor } {
  const g = weight.graph;
  const [inF, outF] = weight.shape as [number, number];
  if (weight.rank !== 2 || inF !== norm.dim) throw new Error(`foldNorm: weight ${weight} must be [${norm.dim}, out] for ${norm.name}`);
  const shift = op.reshape(op.gemm(op.reshape(g.param(norm.bias), [1, inF]), weight), [outF]);
  return { weight: op.mul(op.unsqueeze(g.param(norm.scale), [1]), weight), bias: bias ? op.add(shift, bias) : shift };
}

/** A stack of Linear layers with an activation between them (none after the last by default). */
export class MLP {
  readonly layers: Linear[] = [];

  /** @param sizes [in, hidden..., out], e.g. [13, 256, 256, 6]. */
  constructor(
    params: ParamSet,
    readonly name: string,
    sizes: readonly number[],
    readonly activation: Activation = 'relu',
    readonly finalActivation: Activation = 'none',
  ) {
    if (sizes.length < 2) throw new Error(`${name}: MLP sizes need at least [in, out], got [${sizes.join(',')}]`);
    for (let i = 0; i + 1 < sizes.length; i++) this.layers.push(new Linear(params, `${name}.${i}`, sizes[i], sizes[i + 1]));
  }

  /**
   * Applies the stack; with `norm`, to `norm.apply(x)`. In training graphs the norm's gain and bias
   * are folded into the first layer (see `Linear.applyNormalized`), and a hidden exact GELU is
   * taken in u = x / sqrt 2 (see `geluScaled`): the layer before it has its weight and bias scaled
   * by 1/sqrt 2 and the layer after it its weight (products of small tensors), which saves two
   * passes over the widest activations. Inference graphs compute the plain composition (no per-run
   * weight products).
   */
  apply(x: Tensor, norm?: LayerNorm): Tensor {
    let h = x;
    // Factor on this layer's weight left by the previous activation (1/sqrt 2 after a scaled GELU).
    let carried = 1;
    const last = this.layers.length - 1;
    this.layers.forEach((layer, i) => {
      const g = h.graph;
      const a = i < last ? this.activation : this.finalActivation;
      const scaledGelu = a === 'gelu' && i < last && g.training;
      const out = scaledGelu ? Math.SQRT1_2 : 1;
      const folded = i === 0 && norm !== undefined;
      if (carried === 1 && out === 1) h = folded ? layer.applyNormalized(h, norm) : layer.apply(h);
      else {
        let w = g.param(layer.weight);
        let b: Tensor | null = layer.bias ? g.param(layer.bias) : null;
        if (folded) ({ weight: w, bias: b } = foldNorm(norm, w, b));
        if (carried * out !== 1) w = op.mul(w, carried * out);
        if (out !== 1 && b) b = op.mul(b, out);
        h = layer.product(folded ? norm.normalize(h) : h, w, b ?? undefined);
      }
      h = scaledGelu ? geluScaled(h) : activate(h, a);
      carried = scaledGelu ? Math.SQRT1_2 : 1;
    });
    return h;
  }
}

/**
 * Cuts images [B, C, H, W] into non-overlapping p x p patches: [B, (H/p)(W/p), C p p], row-major
 * over the patch grid, each patch flattened channel-first.
 */
export function patchify(images: Tensor, patch: number): Tensor {
  const [, c, h, w] = images.shape;
  if (images.rank !== 4 || typeof c !== 'number' || typeof h !== 'number' || typeof w !== 'number' || h % patch !== 0 || w % patch !== 0) {
    throw new Error(`patchify: images must be [B, C, H, W] with H and W multiples of ${patch}, got ${images}`);
  }
  const gh = h / patch;
  const gw = w / patch;
  const split = op.reshape(images, [0, c, gh, patch, gw, patch]);
  const grouped = op.transpose(split, [0, 2, 4, 1, 3, 5]);
  return op.reshape(grouped, [0, gh * gw, c * patch * patch]);
}

/** Additive attention bias from a key mask [B, T] (1 = attend, 0 = ignore) -> [B, 1, 1, T]. */
export function keyMaskBias(mask: Tensor): Tensor {
  return op.unsqueeze(op.mul(op.sub(mask, 1), 1e9), [1, 2]);
}

/** Additive causal bias [T, T]: position i attends to j <= i. */
export function causalBias(g: Graph, length: number): Tensor {
  const data = new Float32Array(length * length);
  for (let i = 0; i < length; i++) for (let j = i + 1; j < length; j++) data[i * length + j] = -1e9;
  return g.constantData(data, [length, length]);
}

/** Multi-head self-attention over [B, T, D]; `bias` is added to the scores (broadcast to [B, H, T, T]). */
export class MultiHeadAttention {
  readonly q: Linear;
  readonly k: Linear;
  readonly v: Linear;
  readonly out: Linear;
  readonly headDim: number;

  constructor(params: ParamSet, readonly name: string, readonly dim: number, readonly heads: number) {
    if (dim % heads !== 0) throw new Error(`${name}: width ${dim} is not divisible by ${heads} heads`);
    this.headDim = dim / heads;
    const w = init.xavierUniform();
    this.q = new Linear(params, `${name}.q`, dim, dim, { weightInit: w, biasInit: init.zeros() });
    this.k = new Linear(params, `${name}.k`, dim, dim, { weightInit: w, biasInit: init.zeros() });
    this.v = new Linear(params, `${name}.v`, dim, dim, { weightInit: w, biasInit: init.zeros() });
    this.out = new Linear(params, `${name}.out`, dim, dim, { weightInit: w, biasInit: init.zeros() });
  }

  /**
   * Self-attention of `x` [B, T, D]; with `norm`, of `norm.apply(x)`, in training graphs with its
   * gain and bias folded into the projections (see `Linear.applyNormalized`).
   *
   * Layout: separate q, k and v products, each reshaped and transposed once to [B, H, T, hd]. One
   * [D, 3D] product measured no faster: ONNX Runtime moves the head transpose behind the Split that
   * unpacks it, which then costs a strided copy (and its Concat in the backward pass). kᵀ is never
   * materialised: the score product's gradient is written as dq = dS k, dk = dSᵀ q, with
   * transposed operands ONNX Runtime fuses into its matrix product. The 1/sqrt(hd) scale is folded
   * into the q weight and bias.
   */
  apply(x: Tensor, bias?: Tensor, norm?: LayerNorm): Tensor {
    const t = x.shape[1];
    if (x.rank !== 3 || typeof t !== 'number') throw new Error(`${this.name}: input must be [B, T, ${this.dim}] with static T, got ${x}`);
    if (x.shape[2] !== this.dim) throw new Error(`${this.name}: input ${x.name} has shape ${shapeString(x.shape)}, expected last dimension ${this.dim}`);
    const g = x.graph;
    // Folding pays in the backward pass; an inference graph fed its weights as inputs would only
    // redo the small weight products every run, so it applies the norm as it is.
    if (norm && !g.training) return this.apply(norm.apply(x), bias);
    const scale = 1 / Math.sqrt(this.headDim);
    const input = norm ? norm.normalize(x) : x;
    const rows = op.reshape(input, [-1, this.dim]);
    const project = (lin: Linear, factor: number): Tensor => {
      let w = g.param(lin.weight);
      let b = g.param(lin.bias!);
      if (factor !== 1) [w, b] = [op.mul(w, factor), op.mul(b, factor)];
      if (norm) ({ weight: w, bias: b } = foldNorm(norm, w, b));
      return op.transpose(op.reshape(op.gemm(rows, w, { c: b }), [-1, t, this.heads, this.headDim]), [0, 2, 1, 3]);
    };
    const [q, k, v] = [project(this.q, scale), project(this.k, 1), project(this.v, 1)];
    let scores = scoresProduct(q, k);
    if (bias) scores = op.add(scores, bias);
    const attended = attend(scores, v);
    const merged = op.reshape(op.transpose(attended, [0, 2, 1, 3]), [-1, this.dim]);
    return op.reshape(this.out.apply(merged), [-1, t, this.dim]);
  }
}

/** x with its last two axes swapped. */
function swapLast(x: Tensor): Tensor {
  const perm = x.shape.map((_, i) => i);
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return op.transpose(x, perm);
}

/**
 * q kᵀ over the last two axes, [.., T, d] x [.., S, d] -> [.., T, S], with the gradient written
 * as dq = dS k and dk = dSᵀ q: no transposed copy of k is kept for the backward pass, and the
 * transposed operands are ones ONNX Runtime fuses into its matrix product.
 */
function scoresProduct(q: Tensor, k: Tensor): Tensor {
  const s = op.matmul(q, swapLast(k));
  return op.withCustomGradient(s, [q, k], (ds) => [op.matmul(ds, k), op.matmul(swapLast(ds), q)]);
}

/**
 * softmax(scores) v over the last axis, [.., T, S] and [.., S, d] -> A [.., T, d], with the
 * gradient written as FlashAttention's: the softmax gradient dS = P (dP - rowsum(dP P)) needs the
 * row sums of dP P over the S keys, which equal rowsum(dA A) over the d head features (dP = dA vᵀ,
 * A = P v), a product over a tensor S/d times smaller. The [.., T, S] tensors then take two
 * element-wise passes in the gradient (subtract, multiply) instead of three and a reduction.
 */
function attend(scores: Tensor, v: Tensor): Tensor {
  const p = op.softmax(scores, -1);
  const a = op.matmul(p, v);
  return op.withCustomGradient(a, [scores, v], (da) => {
    const rows = op.reduceSum(op.mul(da, a), [-1], true);
    const ds = op.mul(p, op.sub(op.matmul(da, swapLast(v)), rows));
    return [ds, op.matmul(swapLast(p), da)];
  });
}

/** Pre-norm transformer block: x + attn(ln(x)); x + mlp(ln(x)). */
export class TransformerBlock {
  readonly ln1: LayerNorm;
  readonly attn: MultiHeadAttention;
  readonly ln2: LayerNorm;
  readonly mlp: MLP;

  constructor(params: ParamSet, readonly name: string, dim: number, heads: number, mlpRatio = 4, activation: Activation = 'gelu') {
    this.ln1 = new LayerNorm(params, `${name}.ln1`, dim);
    this.attn = new MultiHeadAttention(params, `${name}.attn`, dim, heads);
    this.ln2 = new LayerNorm(params, `${name}.ln2`, dim);
    this.mlp = new MLP(params, `${name}.mlp`, [dim, dim * mlpRatio, dim], activation);
  }

  apply(x: Tensor, bias?: Tensor): Tensor {
    // The norms' gains and biases are folded into the products that follow them.
    const h = op.add(x, this.attn.apply(x, bias, this.ln1));
    return op.add(h, this.mlp.apply(h, this.ln2));
  }
}

/**
 * Dropout with a train/eval switch: active only in training graphs (`graph.training`, set by
 * `buildTrainingGraph`), the identity in inference exports and rollout runners. Each instance needs
 * its own seed (e.g. the run seed plus its index) so two sites never draw the same masks.
 */
export class Dropout {
  constructor(
    readonly p: number,
    readonly seed: number,
  ) {
    if (!(p >= 0 && p < 1)) throw new Error(`Dropout: p must be in [0, 1), got ${p}`);
    if (!Number.isInteger(seed)) throw new Error(`Dropout: seed must be an integer, got ${seed}`);
  }

  apply(x: Tensor): Tensor {
    return x.graph.training && this.p > 0 ? op.dropout(x, this.p, this.seed) : x;
  }
}

/**
 * 2-D convolution layer, NCHW, weight [O, C, kh, kw] as PyTorch's nn.Conv2d (same default
 * initialisation). A strided stem, e.g. `new Conv2d(params, 'stem', 3, 32, 4, { stride: 4 })`,
 * then `tokens(x)` gives [B, Ho*Wo, O] for a transformer.
 */
export class Conv2d {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly stride: number;
  readonly padding: number;

  constructor(
    params: ParamSet,
    readonly name: string,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernel: number,
    options: { stride?: number; padding?: number; bias?: boolean; weightInit?: Initializer } = {},
  ) {
    this.stride = options.stride ?? 1;
    this.padding = options.padding ?? 0;
    const fan = { fanIn: inChannels * kernel * kernel, fanOut: outChannels * kernel * kernel };
    this.weight = params.add(`${name}.weight`, [outChannels, inChannels, kernel, kernel], options.weightInit ?? init.fanInUniform(), { fan });
    this.bias = options.bias === false ? null : params.add(`${name}.bias`, [outChannels], init.fanInUniform(), { fan });
  }

  /** [B, C, H, W] -> [B, O, Ho, Wo]. */
  apply(x: Tensor): Tensor {
    const g = x.graph;
    return op.conv2d(x, g.param(this.weight), this.bias ? g.param(this.bias) : null, { stride: this.stride, padding: this.padding });
  }

  /** [B, C, H, W] -> [B, Ho*Wo, O]: the feature map as a sequence of tokens, row-major. */
  tokens(x: Tensor): Tensor {
    const y = this.apply(x);
    const [, o, ho, wo] = y.shape as [unknown, number, number, number];
    return op.transpose(op.reshape(y, [0, o, ho * wo]), [0, 2, 1]);
  }
}

/**
 * Spatial softmax (Levine et al. 2016): logit maps [B, N, K] over an h x w grid (N = h w, row-major
 * as `patchify` lays patches out) -> for each of the K maps, the softmax-weighted mean position of
 * the grid cells' centres, [B, K, 2] as (x, y) in -1..1 (x left to right, y top to bottom). A
 * differentiable "where is it" that keeps sub-cell precision: a map peaked on one cell gives that
 * cell's centre, a map spread over two neighbours a point between them.
 */
export function spatialSoftmax(logits: Tensor, h: number, w: number): Tensor {
  const [, n, k] = logits.shape;
  if (logits.rank !== 3 || n !== h * w || typeof k !== 'number') throw new Error(`spatialSoftmax: logits must be [B, ${h * w}, K] for a ${h}x${w} grid, got ${logits}`);
  const coords: number[] = [];
  for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) coords.push(((j + 0.5) / w) * 2 - 1, ((i + 0.5) / h) * 2 - 1);
  const weights = op.softmax(op.transpose(logits, [0, 2, 1]), -1); // [B, K, N]
  return op.matmul(weights, logits.graph.constant(coords, [n, 2]));
}

/**
 * Learnt image keypoints: images [B, C, S, S] -> [B, K, 2], the expected (x, y) in -1..1 of K
 * learnt features. A linear+GELU stem over `patch` x `patch` patches, one logit map per keypoint,
 * sharpened by a learnt per-keypoint scale (log-parameterised, starting at `scale`: at scale 1 the
 * maps stay near uniform and every keypoint sits at the image centre), then `spatialSoftmax`.
 * Parameters: `<name>.stem`, `<name>.logits`, `<name>.log_scale`.
 */
export class SpatialKeypoints {
  readonly stem: Linear;
  readonly logits: Linear;
  readonly logScale: Parameter;

  constructor(
    params: ParamSet,
    name: string,
    readonly options: { inChannels: number; patch: number; channels: number; keypoints: number; scale: number },
  ) {
    const { inChannels, patch, channels, keypoints, scale } = options;
    if (!(scale > 0)) throw new Error(`SpatialKeypoints ${name}: scale must be > 0, got ${scale}`);
    this.stem = new Linear(params, `${name}.stem`, inChannels * patch * patch, channels);
    this.logits = new Linear(params, `${name}.logits`, channels, keypoints);
    this.logScale = params.add(`${name}.log_scale`, [keypoints], init.constant(Math.log(scale)), { decay: false });
  }

  /** Images [B, C, S, S] (S a multiple of `patch`) -> keypoint positions [B, K, 2]. */
  apply(images: Tensor): Tensor {
    const [, , h, w] = images.shape;
    if (typeof h !== 'number' || typeof w !== 'number') throw new Error(`SpatialKeypoints: images need a static size, got ${images}`);
    const { patch } = this.options;
    const feats = gelu(this.stem.apply(patchify(images, patch))); // [B, n*n, C]
    const logits = op.mul(this.logits.apply(feats), op.exp(images.graph.param(this.logScale))); // [B, n*n, K]
    return spatialSoftmax(logits, h / patch, w / patch);
  }
}
