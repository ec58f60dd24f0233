import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../sim/rng.ts';
import { gradients } from '../../nn/autodiff.ts';
import { Graph, type Node, type Tensor } from '../../nn/graph.ts';
import { LayerNorm, Linear, MLP, MultiHeadAttention, TransformerBlock, gelu, keyMaskBias } from '../../nn/layers.ts';
import * as op from '../../nn/ops.ts';
import { ParamSet } from '../../nn/params.ts';
import { createSession, type HostTensor } from '../../nn/runtime.ts';
import { gradCheck, weightedSum } from './gradcheck.ts';

// The layers' fast layouts (norm gain and bias folded into the next product, GELU taken in x/√2 with the
// scale folded into the products around it, score product with a hand-written gradient, one Sum per
// gradient accumulation) against the plain compositions they replace, and by finite differences.

const paramTensors = (g: Graph) => g.params.map((p) => g.param(p));

/** A norm whose gain and bias are off their initial 1 / 0, so folding them is exercised. */
function movedNorm(params: ParamSet, name: string, dim: number, seed: number): LayerNorm {
  const ln = new LayerNorm(params, name, dim);
  const rng = new Rng(seed);
  ln.scale.data = Float32Array.from({ length: dim }, () => 1 + 0.5 * rng.normal());
  ln.bias.data = Float32Array.from({ length: dim }, () => 0.3 * rng.normal());
  return ln;
}

/** Multi-head attention written the plain way: separate projections, per-head transposes, q kᵀ. */
function referenceAttention(attn: MultiHeadAttention, x: Tensor, bias?: Tensor): Tensor {
  const t = x.shape[1] as number;
  const heads = (y: Tensor) => op.transpose(op.reshape(y, [-1, t, attn.heads, attn.headDim]), [0, 2, 1, 3]);
  const q = heads(op.mul(attn.q.apply(x), 1 / Math.sqrt(attn.headDim)));
  const k = heads(attn.k.apply(x));
  const v = heads(attn.v.apply(x));
  let scores = op.matmul(q, op.transpose(k, [0, 1, 3, 2]));
  if (bias) scores = op.add(scores, bias);
  const merged = op.reshape(op.transpose(op.matmul(op.softmax(scores, -1), v), [0, 2, 1, 3]), [-1, t, attn.dim]);
  return attn.out.apply(merged);
}

/** Runs a float64 graph with seeded inputs and the parameters' current values. */
async function run64(g: Graph, batch: number, seed: number, fixed: Record<string, HostTensor> = {}): Promise<Record<string, Float64Array>> {
  const rng = new Rng(seed);
  const feeds: Record<string, HostTensor> = { ...fixed };
  for (const t of g.inputs) {
    if (feeds[t.name]) continue;
    const shape = t.shape.map((d) => (typeof d === 'number' ? d : batch));
    feeds[t.name] = { data: Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal()), shape };
  }
  for (const p of g.params) feeds[p.name] = { data: Float64Array.from(p.data), shape: p.shape };
  const session = await createSession(g.toModel({ params: 'input' }), { threads: 1 });
  const out = await session.run(feeds);
  await session.dispose();
  return Object.fromEntries(Object.entries(out).map(([k, v]) => [k, v.data as Float64Array]));
}

function assertClose(a: Float64Array, b: Float64Array, what: string, tol = 1e-10): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  let scale = 0;
  for (const x of b) scale = Math.max(scale, Math.abs(x));
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol * Math.max(1, scale), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

test('attention with the norm folded into its projections equals norm -> plain attention (outputs and gradients)', async () => {
  const params = new ParamSet(11);
  const ln = movedNorm(params, 'ln', 8, 1);
  const attn = new MultiHeadAttention(params, 'attn', 8, 2);
  const build = (fast: boolean) => {
    const g = new Graph({ floatType: 'float64', training: true });
    const x = g.input('x', ['B', 5, 8]);
    const bias = keyMaskBias(g.input('mask', ['B', 5]));
    const y = fast ? attn.apply(x, bias, ln) : referenceAttention(attn, ln.apply(x), bias);
    const loss = weightedSum(y);
    g.output('y', y);
    const wrt = [x, ...paramTensors(g)];
    gradients(loss, wrt).forEach((d, i) => g.output(`d/${wrt[i].name}`, d));
    return g;
  };
  const mask = { data: Float64Array.from([1, 1, 1, 0, 0, 1, 1, 1, 1, 1]), shape: [2, 5] };
  const fast = await run64(build(true), 2, 3, { mask });
  const ref = await run64(build(false), 2, 3, { mask });
  assert.deepEqual(Object.keys(fast).sort(), Object.keys(ref).sort());
  for (const k of Object.keys(ref)) assertClose(fast[k], ref[k], k);
});

test('MLP with the norm folded in and a scaled GELU equals norm -> Linear -> GELU -> Linear (outputs and gradients)', async () => {
  const params = new ParamSet(12);
  const ln = movedNorm(params, 'ln', 6, 2);
  const mlp = new MLP(params, 'mlp', [6, 10, 10, 4], 'gelu');
  const build = (fast: boolean) => {
    const g = new Graph({ floatType: 'float64', training: true });
    const x = g.input('x', ['B', 3, 6]);
    let y: Tensor;
    if (fast) y = mlp.apply(x, ln);
    else {
      y = ln.apply(x);
      mlp.layers.forEach((l: Linear, i) => {
        y = l.apply(y);
        if (i + 1 < mlp.layers.length) y = gelu(y);
      });
    }
    g.output('y', y);
    const wrt = [x, ...paramTensors(g)];
    gradients(weightedSum(y), wrt).forEach((d, i) => g.output(`d/${wrt[i].name}`, d));
    return g;
  };
  const fast = await run64(build(true), 2, 4);
  const ref = await run64(build(false), 2, 4);
  assert.deepEqual(Object.keys(fast).sort(), Object.keys(ref).sort());
  for (const k of Object.keys(ref)) assertClose(fast[k], ref[k], k);
});

test('inference graphs keep the plain composition (no per-run weight products) and agree with the training layout', async () => {
  const params = new ParamSet(17);
  const block = new TransformerBlock(params, 'blk', 8, 2, 2, 'gelu');
  for (const ln of [block.ln1, block.ln2]) ln.scale.data = ln.scale.data.map((_, i) => 0.8 + 0.05 * i);
  const build = (training: boolean) => {
    const g = new Graph({ floatType: 'float64', training });
    g.output('y', block.apply(g.input('x', ['B', 4, 8])));
    return g;
  };
  const inference = build(false);
  const normed = inference.nodes.filter((n) => n.op === 'LayerNormalization');
  assert.equal(normed.length, 2);
  assert.ok(normed.every((n) => params.list().some((p) => p.name === n.inputs[1]!.name)), 'inference norms apply their own gain');
  const weightProducts = inference.nodes.filter((n) => n.op === 'Mul' && n.inputs.some((t) => t && /weight$/.test(t.name)));
  assert.equal(weightProducts.length, 1, 'only the q scale touches a weight in inference');
  const a = await run64(inference, 2, 5);
  const b = await run64(build(true), 2, 5);
  assertClose(a.y, b.y, 'y');
});

test('finite differences: folded attention (key mask), folded exact-GELU MLP, plain normalisation, exact-GELU transformer block', async () => {
  const params = new ParamSet(13);
  const ln = movedNorm(params, 'ln', 8, 3);
  const attn = new MultiHeadAttention(params, 'attn', 8, 2);
  await gradCheck(
    (g) => {
      const x = g.input('x', ['B', 4, 8]);
      return { loss: weightedSum(attn.apply(x, keyMaskBias(g.input('mask', ['B', 4])), ln)), wrt: [x, ...paramTensors(g)] };
    },
    { values: { mask: Float64Array.from([1, 1, 0, 1, 1, 1, 1, 0, 1, 0, 1, 1]) }, samples: 6, training: true },
  );
  const p2 = new ParamSet(14);
  const ln2 = movedNorm(p2, 'ln', 5, 4);
  const mlp = new MLP(p2, 'mlp', [5, 9, 9, 3], 'gelu');
  await gradCheck((g) => {
    const x = g.input('x', ['B', 5]);
    return { loss: weightedSum(mlp.apply(x, ln2)), wrt: [x, ...paramTensors(g)] };
  }, { training: true });
  await gradCheck((g) => {
    const x = g.input('x', ['B', 2, 6]);
    return { loss: weightedSum(op.layerNorm(x, null, null)), wrt: [x] };
  });
  const p3 = new ParamSet(15);
  const block = new TransformerBlock(p3, 'blk', 8, 2, 2, 'gelu');
  for (const ln3 of [block.ln1, block.ln2]) {
    ln3.scale.data = ln3.scale.data.map((_, i) => 1 + 0.1 * i);
    ln3.bias.data = ln3.bias.data.map((_, i) => 0.05 * (i - 3));
  }
  await gradCheck((g) => ({ loss: weightedSum(block.apply(g.input('x', ['B', 3, 8]))), wrt: paramTensors(g) }), { samples: 4, training: true });
});

test('gradient accumulation adds all terms of a tensor in one Sum (no Sum reads a Sum that nothing else reads)', () => {
  const params = new ParamSet(16);
  const block = new TransformerBlock(params, 'blk', 8, 2, 2, 'gelu');
  const g = new Graph({ training: true });
  const x = g.input('x', ['B', 3, 8]);
  const grads = gradients(weightedSum(block.apply(x)), [x, ...paramTensors(g)]);
  // Live nodes: those the gradients need (what export keeps).
  const live = new Set<Tensor>(grads);
  const kept: Node[] = [];
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i];
    if (!n.outputs.some((o) => live.has(o))) continue;
    kept.push(n);
    for (const t of n.inputs) if (t) live.add(t);
  }
  const sums = kept.filter((n) => n.op === 'Sum');
  assert.ok(sums.length > 0, 'the block gradient accumulates with Sum');
  const sumOutputs = new Set(sums.flatMap((n) => n.outputs));
  // A Sum read by other nodes too (an accumulated gradient passed on) is computed once, rightly.
  const readers = new Map<Tensor, number>();
  for (const n of kept) for (const t of n.inputs) if (t) readers.set(t, (readers.get(t) ?? 0) + 1);
  const nested = sums.filter((n) => n.inputs.some((t) => t && sumOutputs.has(t) && readers.get(t) === 1));
  const describe = (n: Node) => `${n.outputs[0].name} <- ${n.inputs.map((t) => `${t!.name}${t && sumOutputs.has(t) ? '(Sum)' : ''}`).join(' + ')}`;
  assert.equal(nested.length, 0, `Sum nodes reading a Sum: ${nested.map(describe).join('; ')}`);
});

test('ReLU gradient passes a NaN through instead of masking it', async () => {
  const g = new Graph();
  const x = g.input('x', [4]);
  const [dx] = gradients(op.reduceSum(op.mul(op.relu(x), op.relu(x))), [x]);
  g.output('dx', dx);
  const s = await createSession(g.toModel({ params: 'input' }));
  const out = (await s.run({ x: { data: Float32Array.from([-1, 0, 2, Number.NaN]), shape: [4] } })).dx.data as Float32Array;
  assert.deepEqual(Array.from(out.slice(0, 3)), [0, 0, 4]);
  assert.ok(Number.isNaN(out[3]), `gradient at NaN input is ${out[3]}`);
});

test('a Sum of 4 or more terms is exported as a chain of Adds with the same values (broadcast terms too)', async () => {
  const g = new Graph();
  const xs = [0, 1, 2, 3].map((i) => g.input(`x${i}`, [2, 3]));
  const row = g.input('row', [2, 1]);
  g.output('y', op.sum([...xs, row]));
  g.output('z', op.sum(xs.slice(0, 3)));
  const bytes = g.toModel({ params: 'input' });
  const text = new TextDecoder('latin1').decode(bytes);
  // One Sum remains (the 3-term one, which ONNX Runtime adds as fast as two Adds).
  assert.equal(text.split('Sum').length - 1, 1, 'Sum op types in the exported graph');
  const rng = new Rng(21);
  const feeds: Record<string, HostTensor> = { row: { data: Float32Array.from([0.5, -1.25]), shape: [2, 1] } };
  for (let i = 0; i < 4; i++) feeds[`x${i}`] = { data: Float32Array.from({ length: 6 }, () => rng.normal()), shape: [2, 3] };
  const out = await (await createSession(bytes)).run(feeds);
  const y = out.y.data as Float32Array;
  for (let j = 0; j < 6; j++) {
    let acc = 0;
    for (let i = 0; i < 4; i++) acc = Math.fround(acc + (feeds[`x${i}`].data as Float32Array)[j]);
    acc = Math.fround(acc + (feeds.row.data as Float32Array)[Math.floor(j / 3)]);
    assert.equal(y[j], acc, `y[${j}]`);
  }
});
