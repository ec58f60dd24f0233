/**
 * Primitive ops over `Tensor`s, each with its static shape rule, and beside each one its
 * vector-Jacobian product written as standard ONNX ops (the `VJP` table autodiff reads). Only ops
 * from the default ONNX domain at opset 17 are emitted: onnxruntime-node has no training kernels.
 */
import { Graph, Tensor, shapeString, type DType, type Dim, type Node, type Shape } from './graph.ts';
import { DataType, type AttributeValue } from './proto.ts';

/** A tensor, or a number that becomes a scalar constant of the other operand's graph. */
export type TensorLike = Tensor | number;

/** Vector-Jacobian product: output gradients in, one gradient (or null) per input out. */
export type Vjp = (node: Node, gradOutputs: readonly (Tensor | null)[], needs: readonly boolean[]) => (Tensor | null)[];

/** op type -> VJP builder. Ops absent here are not differentiable (comparisons, shapes, indices). */
export const VJP: Record<string, Vjp> = {};

const int = (value: number): AttributeValue => ({ kind: 'int', value });
const ints = (value: readonly number[]): AttributeValue => ({ kind: 'ints', value });
const float = (value: number): AttributeValue => ({ kind: 'float', value });

function attrInt(n: Node, name: string): number {
  const a = n.attrs[name];
  if (!a || a.kind !== 'int') throw new Error(`internal: ${n.op} has no int attribute ${name}`);
  return a.value;
}
function attrInts(n: Node, name: string): readonly number[] {
  const a = n.attrs[name];
  if (!a || a.kind !== 'ints') throw new Error(`internal: ${n.op} has no ints attribute ${name}`);
  return a.value;
}
function attrFloat(n: Node, name: string): number {
  const a = n.attrs[name];
  if (!a || a.kind !== 'float') throw new Error(`internal: ${n.op} has no float attribute ${name}`);
  return a.value;
}

function graphOf(...xs: TensorLike[]): Graph {
  for (const x of xs) if (x instanceof Tensor) return x.graph;
  throw new Error('an op needs at least one Tensor operand (got only numbers)');
}

// Numbers become scalar constants of the other operand's float type, so float32 islands inside
// float64 graphs (Erf) stay type-consistent.
function lift(g: Graph, x: TensorLike, like?: TensorLike): Tensor {
  if (x instanceof Tensor) return x;
  const dtype = like instanceof Tensor && (like.dtype === 'float32' || like.dtype === 'float64') ? like.dtype : g.floatType;
  return g.constant(x, undefined, dtype);
}

function isFloat(t: Tensor): boolean {
  return t.dtype === 'float32' || t.dtype === 'float64';
}

function normAxis(axis: number, rank: number, op: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`${op}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Numpy broadcasting over static shapes; symbolic dims match only themselves or 1. */
export function broadcastShapes(op: string, ...shapes: Shape[]): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let dim: Dim = 1;
    for (const s of shapes) {
      const d = s[s.length - rank + i];
      if (d === undefined || d === 1) continue;
      if (dim === 1) dim = d;
      else if (dim !== d) {
        throw new Error(`${op}: shapes ${shapes.map(shapeString).join(' and ')} do not broadcast (dimension ${i} of the result)`);
      }
    }
    out.push(dim);
  }
  return out;
}

/** Sums `grad` (shaped like a broadcast result) back down to the shape of `target`. */
export function unbroadcast(grad: Tensor, target: Tensor): Tensor {
  const lead = grad.rank - target.rank;
  const axes: number[] = [];
  for (let i = 0; i < grad.rank; i++) {
    if (i < lead) axes.push(i);
    else if (target.shape[i - lead] === 1 && grad.shape[i] !== 1) axes.push(i);
  }
  if (axes.length === 0) return grad;
  // Only leading axes: one ReduceSum without keepdims already has the target's shape.
  if (axes.length === lead) return reduceSum(grad, axes, false);
  const summed = reduceSum(grad, axes, true);
  return lead > 0 ? reshapeLike(summed, target) : summed;
}

function elementwise(op: string, inputs: Tensor[], dtype?: DType): Tensor {
  const g = inputs[0].graph;
  return g.addNode(op, inputs, {}, [{ shape: broadcastShapes(op, ...inputs.map((t) => t.shape)), dtype: dtype ?? inputs[0].dtype }])[0];
}

function binary(op: string, a: TensorLike, b: TensorLike): Tensor {
  const g = graphOf(a, b);
  return elementwise(op, [lift(g, a, b), lift(g, b, a)]);
}

function unary(op: string, x: Tensor, attrs: Record<string, AttributeValue> = {}): Tensor {
  return x.graph.addNode(op, [x], attrs, [{ shape: x.shape, dtype: x.dtype }])[0];
}

// ---------------------------------------------------------------------------------------------
// Element-wise arithmetic

/** a + b (broadcasting). */
export const add = (a: TensorLike, b: TensorLike): Tensor => binary('Add', a, b);
VJP.Add = (n, [dy], needs) => [needs[0] ? unbroadcast(dy!, n.inputs[0]!) : null, needs[1] ? unbroadcast(dy!, n.inputs[1]!) : null];

/** a - b (broadcasting). */
export const sub = (a: TensorLike, b: TensorLike): Tensor => binary('Sub', a, b);
VJP.Sub = (n, [dy], needs) => [needs[0] ? unbroadcast(dy!, n.inputs[0]!) : null, needs[1] ? unbroadcast(neg(dy!), n.inputs[1]!) : null];

/** a * b (broadcasting). */
export const mul = (a: TensorLike, b: TensorLike): Tensor => binary('Mul', a, b);
VJP.Mul = (n, [dy], needs) => {
  const [a, b] = n.inputs as Tensor[];
  return [needs[0] ? unbroadcast(mul(dy!, b), a) : null, needs[1] ? unbroadcast(mul(dy!, a), b) : null];
};

/** a / b (broadcasting). */
export const div = (a: TensorLike, b: TensorLike): Tensor => binary('Div', a, b);
VJP.Div = (n, [dy], needs) => {
  const [a, b] = n.inputs as Tensor[];
  const y = n.outputs[0];
  return [needs[0] ? unbroadcast(div(dy!, b), a) : null, needs[1] ? unbroadcast(neg(div(mul(dy!, y), b)), b) : null];
};

/** Sum of any number of same-broadcastable tensors (one node; used to accumulate gradients). */
export function sum(xs: readonly Tensor[]): Tensor {
  if (xs.length === 0) throw new Error('sum: needs at least one tensor');
  if (xs.length === 1) return xs[0];
  return elementwise('Sum', [...xs]);
}
VJP.Sum = (n, [dy], needs) => n.inputs.map((x, i) => (needs[i] ? unbroadcast(dy!, x!) : null));

/** x ** p for a constant exponent p. */
export function pow(x: Tensor, p: number): Tensor {
  if (p === 2) return mul(x, x);
  return x.graph.addNode('Pow', [x, lift(x.graph, p, x)], {}, [{ shape: x.shape, dtype: x.dtype }])[0];
}
VJP.Pow = (n, [dy], needs) => {
  const [x, p] = n.inputs as Tensor[];
  return [needs[0] ? mul(dy!, mul(p, binary('Pow', x, sub(p, 1)))) : null, null];
};

/** -x */
export const neg = (x: Tensor): Tensor => unary('Neg', x);
VJP.Neg = (_n, [dy]) => [neg(dy!)];

/** e^x */
export const exp = (x: Tensor): Tensor => unary('Exp', x);
VJP.Exp = (n, [dy]) => [mul(dy!, n.outputs[0])];

/** Natural log. */
export const log = (x: Tensor): Tensor => unary('Log', x);
VJP.Log = (n, [dy]) => [div(dy!, n.inputs[0]!)];

/** Square root. */
export const sqrt = (x: Tensor): Tensor => unary('Sqrt', x);
VJP.Sqrt = (n, [dy]) => [div(mul(dy!, 0.5), n.outputs[0])];

/** 1 / x */
export const reciprocal = (x: Tensor): Tensor => unary('Reciprocal', x);
VJP.Reciprocal = (n, [dy]) => [neg(mul(dy!, mul(n.outputs[0], n.outputs[0])))];

/** |x| (subgradient 0 at 0). */
export const abs = (x: Tensor): Tensor => unary('Abs', x);
VJP.Abs = (n, [dy]) => [mul(dy!, unary('Sign', n.inputs[0]!))];

/** tanh(x) */
export const tanh = (x: Tensor): Tensor => unary('Tanh', x);
VJP.Tanh = (n, [dy]) => {
  const y = n.outputs[0];
  return [mul(dy!, sub(1, mul(y, y)))];
};

/** Logistic sigmoid. */
export const sigmoid = (x: Tensor): Tensor => unary('Sigmoid', x);
VJP.Sigmoid = (n, [dy]) => {
  const y = n.outputs[0];
  return [mul(dy!, mul(y, sub(1, y)))];
};

/** max(x, 0) */
export const relu = (x: Tensor): Tensor => unary('Relu', x);
// dy * (y > 0) with the mask cast to floats: three fast passes. ONNX Runtime's Where is several
// times slower per element than Mul, and its Sign (the previous mask) about 10x slower than
// Greater + Cast. A NaN in dy reaches the gradient (NaN * 0 is NaN) instead of being masked.
VJP.Relu = (n, [dy]) => {
  const y = n.outputs[0];
  return [mul(dy!, cast(greater(y, 0), y.dtype))];
};

/**
 * The error function. ONNX Runtime has no float64 Erf kernel on CPU, so in float64 graphs (gradient
 * checks) it is computed to double precision by its series (see `erfSeries`), with the exact
 * derivative as its gradient: composites using exact GELU can be checked as tightly as the others.
 */
export function erf(x: Tensor): Tensor {
  if (x.dtype === 'float64') return erfSeries(x);
  return unary('Erf', x);
}

/**
 * erf(u) = 2/sqrt(pi) u exp(-u^2) sum_n (2u^2)^n / (1*3*...*(2n+1)), all terms positive (no
 * cancellation), 80 terms by Horner on u clamped to [-5, 5]: within 2e-15 of erf (|erf| > 1 - 2e-12
 * beyond). Element-wise ops only, so it runs in any float type; meant for float64 graphs.
 */
export function erfSeries(x: Tensor): Tensor {
  const u = clip(x, -5, 5);
  const y = mul(u, u);
  // In z = u^2 / 25 the coefficients stay within float32's range (3e-8 to 7e8): ONNX Runtime's
  // constant sharing compares scalar initializers as float32 and merged the tiny unscaled ones.
  const z = mul(y, 1 / 25);
  const coef: number[] = [1];
  for (let n = 1; n < 80; n++) coef.push((coef[n - 1] * 2 * 25) / (2 * n + 1));
  let acc: Tensor = add(mul(z, coef[79]), coef[78]);
  for (let n = 77; n >= 0; n--) acc = add(mul(acc, z), coef[n]);
  const out = mul(mul(acc, exp(neg(y))), mul(u, 2 / Math.sqrt(Math.PI)));
  return withCustomGradient(out, [x], (dy) => [mul(dy, mul(exp(neg(mul(x, x))), 2 / Math.sqrt(Math.PI)))]);
}
VJP.Erf = (n, [dy]) => {
  const x = n.inputs[0]!;
  return [mul(dy!, mul(2 / Math.sqrt(Math.PI), exp(neg(mul(x, x)))))];
};

/** Element-wise minimum of two tensors (gradient goes to `a` on ties). */
export const minimum = (a: TensorLike, b: TensorLike): Tensor => binary('Min', a, b);
VJP.Min = (n, [dy], needs) => {
  const [a, b] = n.inputs as Tensor[];
  const takeA = lessOrEqual(a, b);
  return [needs[0] ? unbroadcast(where(takeA, dy!, 0), a) : null, needs[1] ? unbroadcast(where(takeA, 0, dy!), b) : null];
};

/** Element-wise maximum of two tensors (gradient goes to `a` on ties). */
export const maximum = (a: TensorLike, b: TensorLike): Tensor => binary('Max', a, b);
VJP.Max = (n, [dy], needs) => {
  const [a, b] = n.inputs as Tensor[];
  const takeA = greaterOrEqual(a, b);
  return [needs[0] ? unbroadcast(where(takeA, dy!, 0), a) : null, needs[1] ? unbroadcast(where(takeA, 0, dy!), b) : null];
};

/** Clamps x to [lo, hi] (constant bounds); the gradient is zero outside. */
export function clip(x: Tensor, lo: number, hi: number): Tensor {
  const g = x.graph;
  return g.addNode('Clip', [x, lift(g, lo, x), lift(g, hi, x)], {}, [{ shape: x.shape, dtype: x.dtype }])[0];
}
VJP.Clip = (n, [dy]) => {
  const [x, lo, hi] = n.inputs as Tensor[];
  const inside = x.graph.addNode('And', [greaterOrEqual(x, lo), lessOrEqual(x, hi)], {}, [{ shape: x.shape, dtype: 'bool' }])[0];
  return [where(inside, dy!, 0), null, null];
};

/** Selects a where cond is true, else b (broadcasting). */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const g = cond.graph;
  const ta = lift(g, a, b);
  const tb = lift(g, b, a);
  return g.addNode('Where', [cond, ta, tb], {}, [{ shape: broadcastShapes('Where', cond.shape, ta.shape, tb.shape), dtype: ta.dtype }])[0];
}
VJP.Where = (n, [dy], needs) => {
  const [cond, a, b] = n.inputs as Tensor[];
  return [null, needs[1] ? unbroadcast(where(cond, dy!, 0), a) : null, needs[2] ? unbroadcast(where(cond, 0, dy!), b) : null];
};

function compare(op: string, a: TensorLike, b: TensorLike): Tensor {
  const g = graphOf(a, b);
  return elementwise(op, [lift(g, a, b), lift(g, b, a)], 'bool');
}
/** a > b (bool). */
export const greater = (a: TensorLike, b: TensorLike): Tensor => compare('Greater', a, b);
/** a < b (bool). */
export const less = (a: TensorLike, b: TensorLike): Tensor => compare('Less', a, b);
/** a >= b (bool). */
export const greaterOrEqual = (a: TensorLike, b: TensorLike): Tensor => compare('GreaterOrEqual', a, b);
/** a <= b (bool). */
export const lessOrEqual = (a: TensorLike, b: TensorLike): Tensor => compare('LessOrEqual', a, b);

/** Converts element type. Float-to-float casts pass gradients through. */
export function cast(x: Tensor, to: DType): Tensor {
  const code = { float32: DataType.FLOAT, float64: DataType.DOUBLE, int64: DataType.INT64, bool: DataType.BOOL }[to];
  return x.graph.addNode('Cast', [x], { to: int(code) }, [{ shape: x.shape, dtype: to }])[0];
}
VJP.Cast = (n, [dy]) => {
  const x = n.inputs[0]!;
  if (!isFloat(x)) return [null];
  return [cast(dy!, x.dtype)];
};

/**
 * Gives the composite `output` = f(inputs) a hand-written gradient: autodiff calls `vjp(dy)` for
 * the inputs' gradients and ignores the nodes between them.
 */
export function withCustomGradient(output: Tensor, inputs: readonly Tensor[], vjp: (dy: Tensor) => (Tensor | null)[]): Tensor {
  if (!output.graph.producer.has(output)) throw new Error(`withCustomGradient: ${output} must be produced by a node`);
  output.graph.customGradients.set(output, { inputs, vjp });
  return output;
}

/** Identity (gradient passes through). */
export function identity(x: Tensor): Tensor {
  return unary('Identity', x);
}
VJP.Identity = (_n, [dy]) => [dy];

/** A value treated as a constant by autodiff (e.g. PPO targets computed in-graph). */
export function stopGradient(x: Tensor): Tensor {
  const [y] = x.graph.addNode('Identity', [x], {}, [{ shape: x.shape, dtype: x.dtype }]);
  x.graph.stopGradientNodes.add(x.graph.producer.get(y)!);
  return y;
}

// ---------------------------------------------------------------------------------------------
// Linear algebra

function matmulShape(a: Shape, b: Shape): Dim[] {
  if (a.length < 2 || b.length < 2) {
    throw new Error(`MatMul: operands need rank >= 2, got ${shapeString(a)} and ${shapeString(b)}`);
  }
  const k1 = a[a.length - 1];
  const k2 = b[b.length - 2];
  if (k1 !== k2) throw new Error(`MatMul: inner dimensions differ: ${shapeString(a)} x ${shapeString(b)}`);
  const batch = broadcastShapes('MatMul', a.slice(0, -2), b.slice(0, -2));
  return [...batch, a[a.length - 2], b[b.length - 1]];
}

/** Matrix product with numpy batching: [..., m, k] x [..., k, n]. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  return a.graph.addNode('MatMul', [a, b], {}, [{ shape: matmulShape(a.shape, b.shape), dtype: a.dtype }])[0];
}
VJP.MatMul = (n, [dy], needs) => {
  const [a, b] = n.inputs as Tensor[];
  let da: Tensor | null = null;
  let db: Tensor | null = null;
  if (b.rank === 2) {
    // Weight-style product: fold all leading axes of `a` into rows so the weight gradient is one GEMM.
    const k = a.shape[a.rank - 1];
    const nOut = b.shape[1];
    if (needs[0]) da = a.rank === 2 ? gemm(dy!, b, { transB: true }) : matmul(dy!, transpose(b, [1, 0]));
    if (needs[1]) {
      const a2 = a.rank === 2 ? a : reshape(a, [-1, k as number]);
      const dy2 = a.rank === 2 ? dy! : reshape(dy!, [-1, nOut as number]);
      db = gemm(a2, dy2, { transA: true });
    }
  } else {
    const swapLast = (t: Tensor): Tensor => {
      const perm = t.shape.map((_, i) => i);
      [perm[t.rank - 2], perm[t.rank - 1]] = [perm[t.rank - 1], perm[t.rank - 2]];
      return transpose(t, perm);
    };
    if (needs[0]) da = unbroadcast(matmul(dy!, swapLast(b)), a);
    if (needs[1]) db = unbroadcast(matmul(swapLast(a), dy!), b);
  }
  return [da, db];
};

/** 2-D GEMM: op(a) x op(b) (+ c). Emitted by the MatMul gradient; also usable directly. */
export function gemm(a: Tensor, b: Tensor, opts: { transA?: boolean; transB?: boolean; c?: Tensor } = {}): Tensor {
  if (a.rank !== 2 || b.rank !== 2) throw new Error(`Gemm: operands must be 2-D, got ${shapeString(a.shape)} and ${shapeString(b.shape)}`);
  const [m, k1] = opts.transA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [k2, nOut] = opts.transB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (k1 !== k2 && typeof k1 === 'number' && typeof k2 === 'number') {
    throw new Error(`Gemm: inner dimensions differ: ${shapeString(a.shape)}${opts.transA ? 'ᵀ' : ''} x ${shapeString(b.shape)}${opts.transB ? 'ᵀ' : ''}`);
  }
  const attrs: Record<string, AttributeValue> = {};
  if (opts.transA) attrs.transA = int(1);
  if (opts.transB) attrs.transB = int(1);
  const inputs = opts.c ? [a, b, opts.c] : [a, b];
  return a.graph.addNode('Gemm', inputs, attrs, [{ shape: [m, nOut], dtype: a.dtype }])[0];
}
VJP.Gemm = (n, [dy], needs) => {
  const [a, b, c] = n.inputs as (Tensor | undefined)[];
  const transA = n.attrs.transA !== undefined;
  const transB = n.attrs.transB !== undefined;
  let da: Tensor | null = null;
  let db: Tensor | null = null;
  if (needs[0]) da = transA ? gemm(b!, dy!, { transA: transB, transB: true }) : gemm(dy!, b!, { transB: !transB });
  if (needs[1]) db = transB ? gemm(dy!, a!, { transA: true, transB: transA }) : gemm(a!, dy!, { transA: !transA });
  const dc = c && needs[2] ? (c.rank === 1 && dy!.rank === 2 && typeof dy!.shape[1] === 'number' ? columnSums(dy!) : unbroadcast(dy!, c)) : null;
  return [da, db, dc];
};

/**
 * Column sums of dy [M, N] -> [N] (a bias gradient) as the product 1ᵀ dy of a [1, M] row of ones:
 * ONNX Runtime's ReduceSum over the rows took 0.060 ms on [256, 256] where the product took 0.012
 * (0.88 vs 0.82 ms on [5120, 512], equal on [5120, 128]). The row of ones is a constant when M is
 * static, else expanded from dy's runtime row count (four tiny nodes).
 */
function columnSums(dy: Tensor): Tensor {
  const g = dy.graph;
  const [m, n] = dy.shape;
  const dtype = dy.dtype as 'float32' | 'float64';
  let ones: Tensor;
  if (typeof m === 'number') ones = g.constant(new Array<number>(m).fill(1), [1, m], dtype);
  else {
    const rows = g.addNode('Slice', [g.shape(dy), g.constInt64([0]), g.constInt64([1]), g.constInt64([0])], {}, [{ shape: [1], dtype: 'int64' }])[0];
    const shape = g.addNode('Concat', [g.constInt64([1]), rows], { axis: int(0) }, [{ shape: [2], dtype: 'int64' }])[0];
    ones = g.addNode('Expand', [g.constant(1, [], dtype), shape], {}, [{ shape: [1, m], dtype }])[0];
  }
  return reshape(gemm(ones, dy), [n as number]);
}

// ---------------------------------------------------------------------------------------------
// Reductions

function reducedShape(x: Tensor, axes: readonly number[], keepdims: boolean): Dim[] {
  const set = new Set(axes.map((a) => normAxis(a, x.rank, 'Reduce')));
  const out: Dim[] = [];
  x.shape.forEach((d, i) => {
    if (!set.has(i)) out.push(d);
    else if (keepdims) out.push(1);
  });
  return out;
}

/** Sum over `axes` (all axes when omitted). */
export function reduceSum(x: Tensor, axes?: readonly number[], keepdims = false): Tensor {
  const ax = axes ?? x.shape.map((_, i) => i);
  const g = x.graph;
  return g.addNode('ReduceSum', [x, g.constInt64(ax)], { keepdims: int(keepdims ? 1 : 0) }, [{ shape: reducedShape(x, ax, keepdims), dtype: x.dtype }])[0];
}

function expandBack(n: Node, dy: Tensor, axes: readonly number[]): Tensor {
  const x = n.inputs[0]!;
  const keep = attrInt(n, 'keepdims') === 1;
  const kept = keep ? dy : unsqueeze(dy, axes.map((a) => normAxis(a, x.rank, 'Reduce')).sort((p, q) => p - q));
  return expand(kept, x);
}
VJP.ReduceSum = (n, [dy]) => {
  const axes = constInts(n.inputs[1]!);
  return [expandBack(n, dy!, axes), null];
};

/** Mean over `axes` (all axes when omitted). */
export function reduceMean(x: Tensor, axes?: readonly number[], keepdims = false): Tensor {
  const ax = axes ?? x.shape.map((_, i) => i);
  return x.graph.addNode('ReduceMean', [x], { axes: ints(ax), keepdims: int(keepdims ? 1 : 0) }, [{ shape: reducedShape(x, ax, keepdims), dtype: x.dtype }])[0];
}
VJP.ReduceMean = (n, [dy]) => {
  const x = n.inputs[0]!;
  const axes = attrInts(n, 'axes');
  const dims = axes.map((a) => x.shape[normAxis(a, x.rank, 'ReduceMean')]);
  let count: TensorLike;
  if (dims.every((d) => typeof d === 'number')) count = (dims as number[]).reduce((p, q) => p * q, 1);
  else {
    const size = (t: Tensor): Tensor => cast(t.graph.addNode('Size', [t], {}, [{ shape: [], dtype: 'int64' }])[0], x.dtype);
    count = div(size(x), size(n.outputs[0]));
  }
  return [div(expandBack(n, dy!, axes), count)];
};

// The int64 values of a constant tensor created by `constInt64` (axes, starts, ends inputs).
function constInts(t: Tensor): number[] {
  const values = t.graph.int64Values(t);
  if (!values) throw new Error(`internal: ${t.name} is not an int64 constant`);
  return values;
}

// ---------------------------------------------------------------------------------------------
// Shapes

/**
 * Reshape with ONNX semantics: 0 copies the input's dimension, -1 is inferred. Static shape
 * tracking keeps symbolic dimensions (e.g. the batch) where it can.
 */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const out: Dim[] = shape.map((d, i) => (d === 0 ? x.shape[i] : d));
  const inferred = out.indexOf(-1);
  if (out.filter((d) => d === -1).length > 1) throw new Error(`reshape: at most one -1 allowed, got ${shapeString(shape)}`);
  // A symbolic dim may be a product such as "B*80"; split it into symbols and a numeric factor.
  const known = (s: readonly Dim[]): { num: number; syms: string[] } => {
    let num = 1;
    const syms: string[] = [];
    for (const d of s) {
      if (typeof d === 'number') {
        if (d !== -1) num *= d;
        continue;
      }
      for (const part of d.split('*')) {
        if (/^\d+$/.test(part)) num *= Number(part);
        else syms.push(part);
      }
    }
    return { num, syms };
  };
  const src = known(x.shape);
  const dst = known(out);
  const left = [...src.syms];
  let unmatched = 0;
  for (const s of dst.syms) {
    const i = left.indexOf(s);
    if (i >= 0) left.splice(i, 1);
    else unmatched++;
  }
  if (inferred >= 0) {
    const ratio = src.num / dst.num;
    if (left.length === 0 && unmatched === 0) {
      if (!Number.isInteger(ratio)) throw new Error(`reshape: cannot reshape ${x} to ${shapeString(shape)}`);
      out[inferred] = ratio;
    } else {
      out[inferred] = Number.isInteger(ratio) && ratio !== 1 && unmatched === 0 ? [...left, String(ratio)].join('*') : unmatched === 0 && ratio === 1 ? left.join('*') : x.graph.fresh('dim');
    }
  } else if (left.length === 0 && unmatched === 0 && src.num !== dst.num) {
    throw new Error(`reshape: ${x} has ${src.num} elements, the target ${shapeString(shape)} has ${dst.num}`);
  }
  return x.graph.addNode('Reshape', [x, x.graph.constInt64(shape)], {}, [{ shape: out, dtype: x.dtype }])[0];
}
VJP.Reshape = (n, [dy]) => [reshapeLike(dy!, n.inputs[0]!), null];

/** Reshapes `x` to the (runtime) shape of `like`. */
export function reshapeLike(x: Tensor, like: Tensor): Tensor {
  return x.graph.addNode('Reshape', [x, x.graph.shape(like)], {}, [{ shape: like.shape, dtype: x.dtype }])[0];
}

/** Broadcasts `x` to the runtime shape of `like`. */
export function expand(x: Tensor, like: Tensor): Tensor {
  return x.graph.addNode('Expand', [x, x.graph.shape(like)], {}, [{ shape: broadcastShapes('Expand', x.shape, like.shape), dtype: x.dtype }])[0];
}
VJP.Expand = (n, [dy]) => [unbroadcast(dy!, n.inputs[0]!), null];

/** Permutes axes. */
export function transpose(x: Tensor, perm: readonly number[]): Tensor {
  if (perm.length !== x.rank || [...perm].sort().some((p, i) => p !== i)) {
    throw new Error(`transpose: perm ${shapeString(perm)} is not a permutation of ${x.rank} axes of ${x}`);
  }
  return x.graph.addNode('Transpose', [x], { perm: ints(perm) }, [{ shape: perm.map((p) => x.shape[p]), dtype: x.dtype }])[0];
}
VJP.Transpose = (n, [dy]) => {
  const perm = attrInts(n, 'perm');
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return [transpose(dy!, inv)];
};

/** Inserts size-1 axes (positions in the output). */
export function unsqueeze(x: Tensor, axes: readonly number[]): Tensor {
  const rank = x.rank + axes.length;
  const set = new Set(axes.map((a) => normAxis(a, rank, 'unsqueeze')));
  const out: Dim[] = [];
  let j = 0;
  for (let i = 0; i < rank; i++) out.push(set.has(i) ? 1 : x.shape[j++]);
  return x.graph.addNode('Unsqueeze', [x, x.graph.constInt64(axes)], {}, [{ shape: out, dtype: x.dtype }])[0];
}
VJP.Unsqueeze = (n, [dy]) => [reshapeLike(dy!, n.inputs[0]!), null];

/** Removes size-1 axes. */
export function squeeze(x: Tensor, axes: readonly number[]): Tensor {
  const set = new Set(axes.map((a) => normAxis(a, x.rank, 'squeeze')));
  for (const a of set) if (x.shape[a] !== 1) throw new Error(`squeeze: axis ${a} of ${x} is not 1`);
  return x.graph.addNode('Squeeze', [x, x.graph.constInt64(axes)], {}, [{ shape: x.shape.filter((_, i) => !set.has(i)), dtype: x.dtype }])[0];
}
VJP.Squeeze = (n, [dy]) => [reshapeLike(dy!, n.inputs[0]!), null];

/** Joins tensors along `axis` (other dimensions must match). */
export function concat(xs: readonly Tensor[], axis: number): Tensor {
  if (xs.length === 0) throw new Error('concat: needs at least one tensor');
  const rank = xs[0].rank;
  const ax = normAxis(axis, rank, 'concat');
  let total: Dim = 0;
  for (const x of xs) {
    if (x.rank !== rank || x.shape.some((d, i) => i !== ax && d !== xs[0].shape[i])) {
      throw new Error(`concat: shapes ${xs.map((t) => shapeString(t.shape)).join(', ')} differ outside axis ${ax}`);
    }
    const d = x.shape[ax];
    total = typeof total === 'number' && typeof d === 'number' ? total + d : `${total}+${d}`;
  }
  const shape = xs[0].shape.map((d, i) => (i === ax ? total : d));
  return xs[0].graph.addNode('Concat', [...xs], { axis: int(ax) }, [{ shape, dtype: xs[0].dtype }])[0];
}
VJP.Concat = (n, [dy], needs) => {
  const ax = attrInt(n, 'axis');
  let offset = 0;
  return n.inputs.map((x, i) => {
    const d = x!.shape[ax];
    if (typeof d !== 'number') throw new Error(`concat gradient: axis ${ax} of ${x} must have a static size`);
    const start = offset;
    offset += d;
    return needs[i] ? slice(dy!, [start], [start + d], [ax]) : null;
  });
};

/** Static slice [starts, ends) on `axes` (step 1). Negative indices count from the end. */
export function slice(x: Tensor, starts: readonly number[], ends: readonly number[], axes: readonly number[]): Tensor {
  const g = x.graph;
  const shape = [...x.shape];
  axes.forEach((a, i) => {
    const ax = normAxis(a, x.rank, 'slice');
    const d = x.shape[ax];
    if (typeof d !== 'number') throw new Error(`slice: axis ${ax} of ${x} must have a static size`);
    const norm = (v: number): number => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
    shape[ax] = Math.max(norm(ends[i]) - norm(starts[i]), 0);
  });
  return g.addNode('Slice', [x, g.constInt64(starts), g.constInt64(ends), g.constInt64(axes)], {}, [{ shape, dtype: x.dtype }])[0];
}
VJP.Slice = (n, [dy]) => {
  const x = n.inputs[0]!;
  const starts = constInts(n.inputs[1]!);
  const ends = constInts(n.inputs[2]!);
  const axes = constInts(n.inputs[3]!);
  const pads = new Array<number>(2 * x.rank).fill(0);
  axes.forEach((a, i) => {
    const ax = normAxis(a, x.rank, 'slice');
    const d = x.shape[ax] as number;
    const norm = (v: number): number => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
    pads[ax] = norm(starts[i]);
    pads[ax + x.rank] = d - norm(ends[i]);
  });
  const g = x.graph;
  const padded = g.addNode('Pad', [dy!, g.constInt64(pads)], {}, [{ shape: x.shape, dtype: x.dtype }])[0];
  return [padded, null, null, null];
};

/**
 * Constant padding: `pads` = [before_0, ..., before_{r-1}, after_0, ..., after_{r-1}] (ONNX order),
 * non-negative. Padded axes must have a static size.
 */
export function pad(x: Tensor, pads: readonly number[], value = 0): Tensor {
  if (pads.length !== 2 * x.rank || pads.some((p) => !Number.isInteger(p) || p < 0)) {
    throw new Error(`pad: pads must be ${2 * x.rank} non-negative integers for ${x}, got [${pads.join(',')}]`);
  }
  const shape = x.shape.map((d, i) => {
    const extra = pads[i] + pads[i + x.rank];
    if (extra === 0) return d;
    if (typeof d !== 'number') throw new Error(`pad: axis ${i} of ${x} must have a static size to be padded`);
    return d + extra;
  });
  const g = x.graph;
  return g.addNode('Pad', [x, g.constInt64(pads), lift(g, value, x)], { mode: { kind: 'string', value: 'constant' } }, [{ shape, dtype: x.dtype }])[0];
}
VJP.Pad = (n, [dy]) => {
  const x = n.inputs[0]!;
  const pads = constInts(n.inputs[1]!);
  const axes: number[] = [];
  const starts: number[] = [];
  const ends: number[] = [];
  for (let i = 0; i < x.rank; i++) {
    if (pads[i] === 0 && pads[i + x.rank] === 0) continue;
    axes.push(i);
    starts.push(pads[i]);
    ends.push(pads[i] + (x.shape[i] as number));
  }
  return [axes.length ? slice(dy!, starts, ends, axes) : dy, null, null];
};

/** Rows of `table` [V, D] picked by int64 `indices` [...] -> [..., D] (an embedding lookup). */
export function gather(table: Tensor, indices: Tensor): Tensor {
  if (table.rank !== 2) throw new Error(`gather: the table must be [V, D], got ${table}`);
  return gatherAxis(table, indices, 0);
}

/**
 * Picks slices of `x` along `axis` by int64 `indices` of any shape (ONNX Gather): the result is
 * x.shape[:axis] + indices.shape + x.shape[axis+1:]. E.g. fixed token positions of [B, T, D] with
 * axis 1. The gradient scatters back with ScatterElements(add) (repeated indices accumulate), never
 * a one-hot product (a 32k vocabulary would make a 131 MB one-hot per 1,024 tokens). Axes after
 * `axis` must have static sizes.
 */
export function gatherAxis(x: Tensor, indices: Tensor, axis: number): Tensor {
  if (indices.dtype !== 'int64') throw new Error(`gather: indices must be int64, got ${indices}`);
  const ax = normAxis(axis, x.rank, 'gather');
  const shape = [...x.shape.slice(0, ax), ...indices.shape, ...x.shape.slice(ax + 1)];
  return x.graph.addNode('Gather', [x, indices], { axis: int(ax) }, [{ shape, dtype: x.dtype }])[0];
}
VJP.Gather = (n, [dy], needs) => {
  const [x, indices] = n.inputs as Tensor[];
  if (!needs[0]) return [null, null];
  const ax = attrInt(n, 'axis');
  const tail = x.shape.slice(ax + 1);
  if (!tail.every((d) => typeof d === 'number')) throw new Error(`gather gradient: axes after ${ax} of ${x} must have static sizes`);
  const g = x.graph;
  // dy as x.shape[:axis] + [K] + tail, the indices broadcast to that shape, scattered with add.
  const lead = x.shape.slice(0, ax).map(() => 0);
  const flatIdx = reshape(indices, [...lead.map(() => 1), -1, ...tail.map(() => 1)]);
  const dyFlat = reshape(dy!, [...lead, -1, ...(tail as number[])]);
  const idx = expand(flatIdx, dyFlat);
  return [scatterElementsAdd(zerosLike(x), idx, dyFlat, ax), null];
};

/** Zeros of `x`'s (runtime) shape and type. */
export function zerosLike(x: Tensor): Tensor {
  return expand(x.graph.constant(0, undefined, x.dtype as 'float32' | 'float64'), x);
}

/**
 * `data` with `updates` added at `indices` along `axis` (ONNX ScatterElements, reduction add):
 * out[... idx[i,j,..] ...] += updates[i,j,..]. `indices` and `updates` have the same shape.
 */
export function scatterElementsAdd(data: Tensor, indices: Tensor, updates: Tensor, axis: number): Tensor {
  if (indices.dtype !== 'int64') throw new Error(`scatterElementsAdd: indices must be int64, got ${indices}`);
  if (indices.rank !== data.rank || updates.rank !== data.rank) {
    throw new Error(`scatterElementsAdd: data ${data}, indices ${indices} and updates ${updates} must have the same rank`);
  }
  const ax = normAxis(axis, data.rank, 'scatterElementsAdd');
  return data.graph.addNode('ScatterElements', [data, indices, updates], { axis: int(ax), reduction: { kind: 'string', value: 'add' } }, [
    { shape: data.shape, dtype: data.dtype },
  ])[0];
}
VJP.ScatterElements = (n, [dy], needs) => {
  const [, indices, updates] = n.inputs as Tensor[];
  const ax = attrInt(n, 'axis');
  return [needs[0] ? dy : null, null, needs[2] ? reshapeLike(gatherElements(dy!, indices, ax), updates) : null];
};

/** out[i][j][k] = x[i][idx[i][j][k]][k] for axis 1 (ONNX GatherElements); the result has idx's shape. */
export function gatherElements(x: Tensor, indices: Tensor, axis: number): Tensor {
  if (indices.dtype !== 'int64') throw new Error(`gatherElements: indices must be int64, got ${indices}`);
  if (indices.rank !== x.rank) throw new Error(`gatherElements: indices ${indices} must have the rank of ${x}`);
  const ax = normAxis(axis, x.rank, 'gatherElements');
  return x.graph.addNode('GatherElements', [x, indices], { axis: int(ax) }, [{ shape: indices.shape, dtype: x.dtype }])[0];
}
VJP.GatherElements = (n, [dy], needs) => {
  const [x, indices] = n.inputs as Tensor[];
  return [needs[0] ? scatterElementsAdd(zerosLike(x), indices, dy!, attrInt(n, 'axis')) : null, null];
};

/**
 * One row of each sequence: x [B, T, D] and int64 positions [B] -> [B, D] (e.g. the last real token
 * of each instruction). GatherElements, so the gradient reaches only the picked rows.
 */
export function selectTokens(x: Tensor, positions: Tensor): Tensor {
  const d = x.shape[2];
  if (x.rank !== 3 || typeof d !== 'number') throw new Error(`selectTokens: x must be [B, T, D] with static D, got ${x}`);
  if (positions.rank !== 1 || positions.dtype !== 'int64') throw new Error(`selectTokens: positions must be int64 [B], got ${positions}`);
  const idx = expand(reshape(positions, [-1, 1, 1]), reshape(slice(x, [0], [1], [1]), [0, 1, d]));
  return reshape(gatherElements(x, idx, 1), [0, d]);
}

/** Index of the largest value along `axis` (int64; first index on ties). Not differentiable. */
export function argMax(x: Tensor, axis = -1, keepdims = false): Tensor {
  const ax = normAxis(axis, x.rank, 'argMax');
  return x.graph.addNode('ArgMax', [x], { axis: int(ax), keepdims: int(keepdims ? 1 : 0) }, [{ shape: reducedShape(x, [ax], keepdims), dtype: 'int64' }])[0];
}

/** Index of the smallest value along `axis` (int64; first index on ties). Not differentiable. */
export function argMin(x: Tensor, axis = -1, keepdims = false): Tensor {
  const ax = normAxis(axis, x.rank, 'argMin');
  return x.graph.addNode('ArgMin', [x], { axis: int(ax), keepdims: int(keepdims ? 1 : 0) }, [{ shape: reducedShape(x, [ax], keepdims), dtype: 'int64' }])[0];
}

/** Maximum over `axes` (all when omitted). The gradient is shared equally among tied maxima (torch.amax). */
export function reduceMax(x: Tensor, axes?: readonly number[], keepdims = false): Tensor {
  const ax = axes ?? x.shape.map((_, i) => i);
  return x.graph.addNode('ReduceMax', [x], { axes: ints(ax), keepdims: int(keepdims ? 1 : 0) }, [{ shape: reducedShape(x, ax, keepdims), dtype: x.dtype }])[0];
}

/** Minimum over `axes` (all when omitted). The gradient is shared equally among tied minima (torch.amin). */
export function reduceMin(x: Tensor, axes?: readonly number[], keepdims = false): Tensor {
  const ax = axes ?? x.shape.map((_, i) => i);
  return x.graph.addNode('ReduceMin', [x], { axes: ints(ax), keepdims: int(keepdims ? 1 : 0) }, [{ shape: reducedShape(x, ax, keepdims), dtype: x.dtype }])[0];
}
const extremumVjp: Vjp = (n, [dy]) => {
  const x = n.inputs[0]!;
  const axes = attrInts(n, 'axes').map((a) => normAxis(a, x.rank, n.op));
  const keep = attrInt(n, 'keepdims') === 1;
  const y = keep ? n.outputs[0] : unsqueeze(n.outputs[0], [...axes].sort((p, q) => p - q));
  const hit = cast(elementwise('Equal', [x, y], 'bool'), x.dtype);
  const share = div(hit, reduceSum(hit, axes, true));
  return [mul(share, expandBack(n, dy!, axes))];
};
VJP.ReduceMax = extremumVjp;
VJP.ReduceMin = extremumVjp;

/**
 * One-hot encoding of int64 `indices` along a new last axis of size `depth`, as
 * Equal(indices, 0..depth-1) then Cast: ONNX Runtime's OneHot kernel lacks float64 outputs.
 */
export function oneHot(indices: Tensor, depth: number, dtype: DType = indices.graph.floatType): Tensor {
  const g = indices.graph;
  const range = g.constInt64(Array.from({ length: depth }, (_, i) => i));
  const hit = elementwise('Equal', [unsqueeze(indices, [indices.rank]), range], 'bool');
  return cast(hit, dtype);
}

/**
 * Training-mode dropout (ONNX Dropout with training_mode true): zeroes each element with
 * probability `p` and scales the rest by 1/(1-p). `seed` fixes the mask sequence of the kernel:
 * a fresh session draws the same masks step after step; give each dropout site its own seed.
 * The gradient reuses the node's mask output. In eval mode use the input itself (see `Dropout`).
 */
export function dropout(x: Tensor, p: number, seed: number): Tensor {
  if (!(p >= 0 && p < 1)) throw new Error(`dropout: p must be in [0, 1), got ${p}`);
  if (!Number.isInteger(seed)) throw new Error(`dropout: seed must be an integer, got ${seed}`);
  if (p === 0) return x;
  const g = x.graph;
  const training = cast(g.constInt64([1], []), 'bool');
  const [y] = g.addNode('Dropout', [x, lift(g, p, x), training], { seed: int(seed) }, [
    { shape: x.shape, dtype: x.dtype },
    { shape: x.shape, dtype: 'bool' },
  ]);
  return y;
}
VJP.Dropout = (n, [dy]) => {
  const [x, ratio] = n.inputs as Tensor[];
  const mask = cast(n.outputs[1], x.dtype);
  return [mul(dy!, div(mask, sub(1, ratio))), null, null];
};

/**
 * 2-D convolution, NCHW: x [B, C, H, W], weight [O, C, kh, kw] (PyTorch's layout, so pretrained
 * weights load as they are), optional bias [O] -> [B, O, Ho, Wo], Ho = (H + 2 pad - kh) / stride + 1.
 * Lowered to im2col (strided slices as reshapes, no Slice steps) and one MatMul, so every piece
 * has a float64 kernel and a gradient; a kernel equal to its stride (the usual patch stem) is one
 * Transpose. C, H and W must be static.
 */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null, options: { stride?: number; padding?: number } = {}): Tensor {
  const stride = options.stride ?? 1;
  const padding = options.padding ?? 0;
  const [, c, h, w] = x.shape;
  const [o, wc, kh, kw] = weight.shape as number[];
  if (x.rank !== 4 || typeof c !== 'number' || typeof h !== 'number' || typeof w !== 'number') {
    throw new Error(`conv2d: input must be [B, C, H, W] with static C, H, W, got ${x}`);
  }
  if (weight.rank !== 4 || wc !== c) throw new Error(`conv2d: weight must be [O, ${c}, kh, kw] for input ${x}, got ${weight}`);
  if (bias && (bias.rank !== 1 || bias.shape[0] !== o)) throw new Error(`conv2d: bias must be [${o}], got ${bias}`);
  if (!Number.isInteger(stride) || stride < 1) throw new Error(`conv2d: stride must be a positive integer, got ${stride}`);
  if (!Number.isInteger(padding) || padding < 0) throw new Error(`conv2d: padding must be a non-negative integer, got ${padding}`);
  const hp = h + 2 * padding;
  const wp = w + 2 * padding;
  if (hp < kh || wp < kw) throw new Error(`conv2d: kernel ${kh}x${kw} is larger than the padded input ${hp}x${wp}`);
  const ho = Math.floor((hp - kh) / stride) + 1;
  const wo = Math.floor((wp - kw) / stride) + 1;
  let cols: Tensor; // [B, C*kh*kw, Ho*Wo], rows ordered (c, i, j) like the flattened weight
  if (kh === stride && kw === stride && padding === 0 && h % stride === 0 && w % stride === 0) {
    const split = reshape(x, [0, c, ho, stride, wo, stride]);
    cols = reshape(transpose(split, [0, 1, 3, 5, 2, 4]), [0, c * kh * kw, ho * wo]);
  } else {
    // Pad so that every tap's window [i, i + stride*Ho) fits, then take every stride-th row/column
    // by reshaping to [.., Ho, stride, ..] and keeping index 0.
    const extraH = Math.max(0, kh - 1 + stride * ho - hp);
    const extraW = Math.max(0, kw - 1 + stride * wo - wp);
    const xp = padding + extraH + extraW > 0 ? pad(x, [0, 0, padding, padding, 0, 0, padding + extraH, padding + extraW]) : x;
    const taps: Tensor[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        let t = slice(xp, [i, j], [i + stride * ho, j + stride * wo], [2, 3]);
        if (stride > 1) t = slice(reshape(t, [0, c, ho, stride, wo, stride]), [0, 0], [1, 1], [3, 5]);
        taps.push(reshape(t, [0, c, 1, ho * wo]));
      }
    }
    cols = reshape(concat(taps, 2), [0, c * kh * kw, ho * wo]);
  }
  let y = matmul(reshape(weight, [o, c * kh * kw]), cols); // [B, O, Ho*Wo]
  if (bias) y = add(y, reshape(bias, [o, 1]));
  return reshape(y, [0, o, ho, wo]);
}

/** Softplus log(1 + e^x), computed stably as max(x, 0) + log(1 + e^-|x|); gradient sigmoid(x). */
export function softplus(x: Tensor): Tensor {
  const y = add(relu(x), log(add(exp(neg(abs(x))), 1)));
  return withCustomGradient(y, [x], (dy) => [mul(dy, sigmoid(x))]);
}

/** x / max(||x||_2, eps) along `axis` (PyTorch's F.normalize); finite gradient at x = 0. */
export function l2Normalize(x: Tensor, axis = -1, eps = 1e-12): Tensor {
  const ax = normAxis(axis, x.rank, 'l2Normalize');
  const sq = reduceSum(mul(x, x), [ax], true);
  // max on the squared norm: sqrt never sees 0, so its derivative stays finite.
  return div(x, sqrt(maximum(sq, eps * eps)));
}

// ---------------------------------------------------------------------------------------------
// Normalisation and probability

/** Softmax over `axis`. */
export function softmax(x: Tensor, axis = -1): Tensor {
  return unary('Softmax', x, { axis: int(normAxis(axis, x.rank, 'softmax')) });
}
VJP.Softmax = (n, [dy]) => {
  const y = n.outputs[0];
  const axis = attrInt(n, 'axis');
  return [mul(y, sub(dy!, reduceSum(mul(dy!, y), [axis], true)))];
};

/** log(softmax(x)) over `axis`, computed stably. */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return unary('LogSoftmax', x, { axis: int(normAxis(axis, x.rank, 'logSoftmax')) });
}
VJP.LogSoftmax = (n, [dy]) => {
  const y = n.outputs[0];
  const axis = attrInt(n, 'axis');
  return [sub(dy!, mul(exp(y), reduceSum(dy!, [axis], true)))];
};

/**
 * Unit-gain and zero-bias constants made by `layerNorm(x, null, null)`: the gradient of a plain
 * normalisation needs no gain multiply, and its output is x̂ itself (not recomputed from x).
 */
const unitGains = new WeakSet<Tensor>();
const zeroBiases = new WeakSet<Tensor>();

/**
 * Layer normalisation over the last axis with gain and bias (null for both: plain normalisation,
 * e.g. when the gain and bias are folded into the next product, see `Linear.applyNormalized`). In float32 graphs this is ONNX's fused
 * LayerNormalization, whose saved mean and 1/std feed the gradient; in float64 graphs ONNX Runtime
 * has no kernel for those side outputs, so only Y is produced and the gradient recomputes them.
 */
export function layerNorm(x: Tensor, scale: Tensor | null, bias: Tensor | null, epsilon = 1e-5): Tensor {
  const d = x.shape[x.rank - 1];
  if (scale === null || bias === null) {
    // Plain normalisation (unit gain, zero bias): the gain multiply is skipped in the gradient.
    if (typeof d !== 'number') throw new Error(`layerNorm: the last axis of ${x} must be static to normalise without gain and bias`);
    const ones = x.graph.constantData(new Float32Array(d).fill(1), [d]);
    const zeros = x.graph.constantData(new Float32Array(d), [d]);
    unitGains.add(ones);
    zeroBiases.add(zeros);
    return layerNorm(x, scale ?? ones, bias ?? zeros, epsilon);
  }
  if (scale.rank !== 1 || scale.shape[0] !== d || bias.rank !== 1 || bias.shape[0] !== d) {
    throw new Error(`layerNorm: scale ${scale} and bias ${bias} must be [${d}] for input ${x}`);
  }
  const statShape = [...x.shape.slice(0, -1), 1];
  const outs =
    x.dtype === 'float64'
      ? [{ shape: x.shape, dtype: x.dtype }]
      : [
          { shape: x.shape, dtype: x.dtype },
          { shape: statShape, dtype: x.dtype },
          { shape: statShape, dtype: x.dtype },
        ];
  return x.graph.addNode('LayerNormalization', [x, scale, bias], { axis: int(-1), epsilon: float(epsilon) }, outs)[0];
}
VJP.LayerNormalization = (n, [dy], needs) => {
  const [x, scale, bias] = n.inputs as Tensor[];
  const eps = attrFloat(n, 'epsilon');
  let mean: Tensor;
  let invStd: Tensor;
  if (n.outputs.length === 3) {
    [, mean, invStd] = n.outputs;
  } else {
    mean = reduceMean(x, [-1], true);
    const centred = sub(x, mean);
    invStd = reciprocal(sqrt(add(reduceMean(mul(centred, centred), [-1], true), eps)));
  }
  const plain = unitGains.has(scale) && zeroBiases.has(bias);
  const xhat = plain ? n.outputs[0] : mul(sub(x, mean), invStd);
  const dxhat = unitGains.has(scale) ? dy! : mul(dy!, scale);
  // dx = invStd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), with the per-row factors applied to
  // the [.., 1] statistics and the three terms added by one broadcasting Sum: 3 passes, not 4.
  const dx = needs[0]
    ? sum([
        mul(dxhat, invStd),
        mul(xhat, neg(mul(reduceMean(mul(dxhat, xhat), [-1], true), invStd))),
        neg(mul(reduceMean(dxhat, [-1], true), invStd)),
      ])
    : null;
  return [dx, needs[1] ? unbroadcast(mul(dy!, xhat), scale) : null, needs[2] ? unbroadcast(dy!, bias) : null];
};

/** Splits `x` along `axis` into pieces of the given static sizes. */
export function split(x: Tensor, sizes: readonly number[], axis = 0): Tensor[] {
  const ax = normAxis(axis, x.rank, 'split');
  const d = x.shape[ax];
  const total = sizes.reduce((a, b) => a + b, 0);
  if (typeof d === 'number' && d !== total) throw new Error(`split: sizes [${sizes.join(',')}] sum to ${total}, axis ${ax} of ${x} is ${d}`);
  const g = x.graph;
  return g.addNode(
    'Split',
    [x, g.constInt64(sizes)],
    { axis: int(ax) },
    sizes.map((s) => ({ shape: x.shape.map((dim, i) => (i === ax ? s : dim)), dtype: x.dtype })),
  );
}
VJP.Split = (n, gradOutputs) => {
  // Pieces the loss does not use contribute zeros, so the concatenation keeps the input's shape.
  const x = n.inputs[0]!;
  const axis = attrInt(n, 'axis');
  const parts = gradOutputs.map((d, i) => d ?? expand(x.graph.constant(0, undefined, x.dtype as 'float32' | 'float64'), n.outputs[i]));
  return [concat(parts, axis), null];
};
