import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../sim/rng.ts';
import { LayerNorm, Linear, MLP, TransformerBlock, gelu } from '../../nn/layers.ts';
import { gaussianEntropy, gaussianLogProb, mse } from '../../nn/losses.ts';
import { exportInference, type ModelDefinition } from '../../nn/model.ts';
import * as op from '../../nn/ops.ts';
import { ParamSet, init } from '../../nn/params.ts';
import { createSession, type HostTensor } from '../../nn/runtime.ts';
import { NonFiniteStepError, Trainer } from '../../nn/trainer.ts';
import { TRAIN_IO, buildTrainingGraph, encodeTrainingGraph, trainingOutputNames } from '../../nn/train-graph.ts';
import { Graph } from '../../nn/graph.ts';
import { gradCheck, weightedSum } from './gradcheck.ts';
import { transformerBenchModel } from '../../bench/graph-models.ts';

const snapshot = (ps: ParamSet): Map<string, Float32Array> => new Map(ps.list().map((p) => [p.name, p.data.slice()]));

test('a step whose gradient is not finite (finite loss) is refused, keeps the state and names the parameters', async () => {
  const params = new ParamSet(1);
  const lin = new Linear(params, 'lin', 3, 2);
  const w = params.add('w', [2], init.zeros(), { decay: false });
  const model: ModelDefinition = { params, forward: (g) => ({ y: lin.apply(g.input('x', ['B', 3])) }) };
  const trainer = await Trainer.create({
    model,
    // sqrt((w s)^2) at w s = 0: value 0, gradient 0.5 / 0 * 0 = NaN.
    loss: (g, o) => {
      const ws = op.mul(g.param(w), g.input('s', [2]));
      return { loss: op.add(mse(o.y, g.input('t', ['B', 2])), op.reduceSum(op.sqrt(op.mul(ws, ws)))) };
    },
    optimizer: { lr: 0.01, clipNorm: 1 },
  });
  const batch = (s: number): Record<string, HostTensor> => ({
    x: { data: Float32Array.of(1, 2, 3, -1, 0, 1), shape: [2, 3] },
    t: { data: Float32Array.of(0.5, -0.5, 1, 0), shape: [2, 2] },
    s: { data: Float32Array.of(s, s), shape: [2] },
  });
  const before = snapshot(params);
  const state = trainer.optimizerState();
  await assert.rejects(trainer.trainStep(batch(1)), (e: unknown) => {
    assert.ok(e instanceof NonFiniteStepError, String(e));
    assert.ok(Number.isFinite(e.loss), `loss ${e.loss} should be finite`);
    assert.ok(Number.isNaN(e.gradNorm));
    assert.deepEqual(e.parameters, ['w']);
    assert.match(e.message, /non-finite gradients in 1 parameter\(s\): w/);
    return true;
  });
  for (const [name, data] of before) assert.deepEqual(params.get(name).data, data, `${name} changed`);
  const after = trainer.optimizerState();
  assert.equal(after.step, state.step);
  assert.deepEqual(after.m, state.m);
  assert.deepEqual(after.v, state.v);
  assert.equal(trainer.step, 0);
});

test('the trainer goes on after a refused step', async () => {
  const params = new ParamSet(2);
  const w = params.add('w', [3], init.constant(0.5), { decay: false });
  const trainer = await Trainer.create({
    model: { params, forward: (g) => ({ y: op.mul(g.param(w), g.input('x', [3])) }) },
    // sqrt(y^2): NaN gradient where y = 0, finite elsewhere.
    loss: (_g, o) => ({ loss: op.reduceSum(op.sqrt(op.mul(o.y, o.y))) }),
    optimizer: { lr: 0.1 },
  });
  await assert.rejects(trainer.trainStep({ x: { data: Float32Array.of(0, 1, 1), shape: [3] } }), NonFiniteStepError);
  assert.deepEqual(Array.from(w.data), [0.5, 0.5, 0.5]);
  const r = await trainer.trainStep({ x: { data: Float32Array.of(1, 1, 1), shape: [3] } });
  assert.ok(Number.isFinite(r.gradNorm));
  assert.equal(trainer.step, 1);
  assert.ok(w.data.every((v) => Math.abs(v - 0.4) < 1e-6), `w after one step: ${Array.from(w.data)}`);
});

test('the gradient norm is reduced per tensor: exact to float32 precision at 4M values', async () => {
  const params = new ParamSet(3);
  const ws = Array.from({ length: 64 }, (_, i) => params.add(`w${i}`, [256, 256], init.zeros()));
  const trainer = await Trainer.create({
    model: {
      params,
      forward: (g) => {
        const x = g.input('x', [256, 256]);
        return { y: op.sum(ws.map((w) => op.reduceSum(op.mul(g.param(w), x)))) };
      },
    },
    loss: (_g, o) => ({ loss: o.y }),
    optimizer: { lr: 0 },
  });
  const rng = new Rng(4);
  const x = Float32Array.from({ length: 256 * 256 }, () => rng.uniform(0.5, 1));
  let sq = 0;
  for (const v of x) sq += v * v;
  const exact = Math.sqrt(64 * sq);
  const r = await trainer.trainStep({ x: { data: x, shape: [256, 256] } });
  const rel = Math.abs(r.gradNorm - exact) / exact;
  // A few float32 ulps; one float32 sum over the flat 4M-value gradient was 2.6e-4 low.
  assert.ok(rel < 1e-6, `grad norm ${r.gradNorm} vs ${exact}: relative error ${rel.toExponential(2)}`);
  // One 4M-value tensor: reduced in rows, the row sums added in float64.
  const big = new ParamSet(4);
  const w = big.add('w', [1024, 4096], init.zeros());
  const t2 = await Trainer.create({
    model: { params: big, forward: (g) => ({ y: op.reduceSum(op.mul(g.param(w), g.input('x', [1024, 4096]))) }) },
    loss: (_g, o) => ({ loss: o.y }),
    optimizer: { lr: 0 },
  });
  const xs = Float32Array.from({ length: 1024 * 4096 }, () => rng.uniform(0.5, 1));
  let sq2 = 0;
  for (const v of xs) sq2 += v * v;
  const r2 = await t2.trainStep({ x: { data: xs, shape: [1024, 4096] } });
  const rel2 = Math.abs(r2.gradNorm - Math.sqrt(sq2)) / Math.sqrt(sq2);
  assert.ok(rel2 < 1e-6, `one 4M tensor: grad norm ${r2.gradNorm} vs ${Math.sqrt(sq2)}: relative error ${rel2.toExponential(2)}`);
});

test('parameters the loss does not reach are not updated (no weight decay, no momentum), as PyTorch', async () => {
  const params = new ParamSet(5);
  const encoder = new Linear(params, 'enc', 4, 8);
  const actor = new Linear(params, 'actor', 8, 2);
  const critic = new Linear(params, 'critic', 8, 1);
  const forward = (g: Graph) => {
    const h = op.tanh(encoder.apply(g.input('x', ['B', 4])));
    return { action: actor.apply(h), value: critic.apply(op.stopGradient(h)) };
  };
  const model: ModelDefinition = { params, forward };
  const optimizer = { lr: 0.05, weightDecay: 0.5 };
  const actorTrainer = await Trainer.create({ model, loss: (g, o) => ({ loss: mse(o.action, g.input('a', ['B', 2])) }), optimizer });
  const criticTrainer = await Trainer.create({ model, loss: (g, o) => ({ loss: mse(o.value, g.input('r', ['B', 1])) }), optimizer });
  assert.deepEqual(actorTrainer.layout.unreached, ['critic.weight', 'critic.bias']);
  assert.deepEqual(criticTrainer.layout.unreached, ['enc.weight', 'enc.bias', 'actor.weight', 'actor.bias']);
  assert.deepEqual(criticTrainer.layout.trainable.map((s) => s.name), ['critic.weight', 'critic.bias']);
  const rng = new Rng(6);
  const batch = {
    x: { data: Float32Array.from({ length: 20 }, () => rng.normal()), shape: [5, 4] },
    a: { data: Float32Array.from({ length: 10 }, () => rng.normal()), shape: [5, 2] },
    r: { data: Float32Array.from({ length: 5 }, () => rng.normal()), shape: [5, 1] },
  };
  for (let i = 0; i < 3; i++) {
    const before = snapshot(params);
    await actorTrainer.trainStep(batch);
    for (const name of ['critic.weight', 'critic.bias']) assert.deepEqual(params.get(name).data, before.get(name), `actor step moved ${name}`);
    assert.notDeepEqual(params.get('enc.weight').data, before.get('enc.weight'));
    const mid = snapshot(params);
    await criticTrainer.trainStep(batch);
    for (const name of ['enc.weight', 'enc.bias', 'actor.weight', 'actor.bias']) assert.deepEqual(params.get(name).data, mid.get(name), `critic step moved ${name}`);
    assert.notDeepEqual(params.get('critic.weight').data, mid.get('critic.weight'));
  }
  await actorTrainer.dispose();
  await criticTrainer.dispose();
});

test('a loss that reaches no trainable parameter is an error naming the cause', async () => {
  const params = new ParamSet(1);
  const lin = new Linear(params, 'lin', 2, 2);
  await assert.rejects(
    Trainer.create({
      model: { params, forward: (g) => ({ y: op.stopGradient(lin.apply(g.input('x', ['B', 2]))) }) },
      loss: (g, o) => ({ loss: mse(o.y, g.input('t', ['B', 2])) }),
      optimizer: { lr: 0.1 },
    }),
    /reaches none of the 2 trainable parameters/,
  );
});

test('frozen parameters are fed, pass gradients through, and never change', async () => {
  const params = new ParamSet(7);
  const first = new Linear(params, 'first', 3, 4);
  const frozenW = params.add('frozen.weight', [4, 4], init.xavierUniform(), { trainable: false });
  const last = new Linear(params, 'last', 4, 2);
  const model: ModelDefinition = { params, forward: (g) => ({ y: last.apply(op.tanh(op.matmul(first.apply(g.input('x', ['B', 3])), g.param(frozenW)))) }) };
  const trainer = await Trainer.create({ model, loss: (g, o) => ({ loss: mse(o.y, g.input('t', ['B', 2])) }), optimizer: { lr: 0.05, weightDecay: 0.1 } });
  assert.deepEqual(trainer.layout.frozen, ['frozen.weight']);
  assert.ok(!trainer.layout.trainable.some((s) => s.name === 'frozen.weight'));
  const rng = new Rng(8);
  const batch = {
    x: { data: Float32Array.from({ length: 24 }, () => rng.normal()), shape: [8, 3] },
    t: { data: Float32Array.from({ length: 16 }, () => rng.normal()), shape: [8, 2] },
  };
  const frozenBefore = frozenW.data.slice();
  const firstBefore = params.get('first.weight').data.slice();
  let loss0 = 0;
  let loss = 0;
  for (let i = 0; i < 30; i++) {
    loss = (await trainer.trainStep(batch)).loss;
    if (i === 0) loss0 = loss;
  }
  assert.deepEqual(frozenW.data, frozenBefore);
  assert.notDeepEqual(params.get('first.weight').data, firstBefore, 'the gradient must flow through the frozen product');
  assert.ok(loss < loss0 * 0.8, `loss ${loss0} -> ${loss}`);
  // The exported model uses the frozen weight as given.
  const session = await createSession(exportInference(model));
  const out = await session.run({ x: batch.x });
  assert.equal(out.y.shape[1], 2);
});

test('toModel renames outputs instead of copying them through Identity', async () => {
  const params = new ParamSet(9);
  const lin = new Linear(params, 'lin', 3, 2);
  const model: ModelDefinition = { params, forward: (g) => ({ y: lin.apply(g.input('x', ['B', 3])) }) };
  const text = (b: Uint8Array): string => Buffer.from(b).toString('latin1');
  assert.ok(!text(exportInference(model)).includes('Identity'), 'inference export has an Identity');
  const { graph, layout } = buildTrainingGraph(model, (g, o) => ({ loss: mse(o.y, g.input('t', ['B', 2])), metrics: { l1: op.reduceMean(op.abs(o.y)) } }), {
    // (warmup: without it the applied lr is the lr input itself, which needs one copy)
    optimizer: { lr: 0.1, warmupSteps: 10 },
    exposeForward: true,
  });
  const bytes = encodeTrainingGraph(graph, layout);
  assert.ok(!text(bytes).includes('Identity'), 'training graph has an Identity');
  const session = await createSession(bytes);
  assert.deepEqual([...session.outputNames].sort(), trainingOutputNames(layout).sort());
  // A tensor exported twice still needs one copy, and both names work.
  const g = new Graph();
  const x = g.input('x', [2]);
  const y = op.mul(x, 2);
  g.output('a', y);
  g.output('b', y);
  g.output('x_again', x);
  const two = g.toModel({ params: 'input' });
  const s2 = await createSession(two);
  const out = await s2.run({ x: { data: Float32Array.of(1, 2), shape: [2] } });
  assert.deepEqual(Array.from(out.a.data as Float32Array), [2, 4]);
  assert.deepEqual(Array.from(out.b.data as Float32Array), [2, 4]);
  assert.deepEqual(Array.from(out.x_again.data as Float32Array), [1, 2]);
});

test('gaussianLogProb and gaussianEntropy clamp logStd (finite at logStd = -200, zero gradient outside)', async () => {
  const g = new Graph();
  const x = g.input('x', [2, 3]);
  const mean = g.input('mean', [2, 3]);
  const logStd = g.input('log_std', [3]);
  g.output('lp', gaussianLogProb(x, mean, logStd));
  g.output('h', gaussianEntropy(logStd));
  g.output('lp_raw', gaussianLogProb(x, mean, logStd, null));
  const s = await createSession(g.toModel({ params: 'input' }));
  const out = await s.run({
    x: { data: Float32Array.of(1, 0, 0, 0, 1, 0), shape: [2, 3] },
    mean: { data: new Float32Array(6), shape: [2, 3] },
    log_std: { data: Float32Array.of(-200, 0, 50), shape: [3] },
  });
  const lp = out.lp.data as Float32Array;
  assert.ok(lp.every(Number.isFinite), `log-prob ${Array.from(lp)}`);
  // Row 0: dim 0 at z = 1 / e^-20 (huge but finite in float32), dim 2 clamped to logStd 2.
  const raw = out.lp_raw.data as Float32Array;
  assert.ok(!Number.isFinite(raw[0]), 'without bounds the first row overflows (the case the clamp prevents)');
  const h = (out.h.data as Float32Array)[0];
  assert.ok(Math.abs(h - (-20 + 0 + 2 + 1.5 * (1 + Math.log(2 * Math.PI)))) < 1e-4, `entropy ${h}`);
  await gradCheck((gg) => {
    const ls = gg.input('ls', [3]);
    const xx = gg.input('xx', [2, 3]);
    return { loss: op.reduceSum(gaussianLogProb(xx, op.mul(xx, 0.5), ls)), wrt: [ls] };
  }, { values: { ls: Float64Array.of(-30, 0.3, 5), xx: Float64Array.of(1e-9, 2, 3, -1e-9, 0.5, 2) } });
});

test('exact (erf) GELU in composites passes tight finite-difference checks (float64 erf series)', async () => {
  await gradCheck((g) => {
    const x = g.input('x', [20]);
    return { loss: weightedSum(op.erf(x)), wrt: [x] };
  }, { values: { x: Float64Array.from({ length: 20 }, (_, i) => -6 + 0.6 * i) } });
  const params = new ParamSet(11);
  const mlp = new MLP(params, 'mlp', [5, 16, 3], 'gelu');
  await gradCheck((g) => {
    const x = g.input('x', ['B', 5]);
    return { loss: weightedSum(mlp.apply(x)), wrt: [x, ...params.list().map((p) => g.param(p))] };
  });
  const tp = new ParamSet(12);
  const block = new TransformerBlock(tp, 'blk', 8, 2, 4, 'gelu');
  const ln = new LayerNorm(tp, 'ln', 8);
  await gradCheck((g) => {
    const x = g.input('x', ['B', 4, 8]);
    return { loss: weightedSum(gelu(ln.apply(block.apply(x)))), wrt: [x, ...tp.list().map((p) => g.param(p))] };
  }, { samples: 6 });
});

test('one float32 training step of the bench transformer matches the float64 graph', async () => {
  const bench = transformerBenchModel();
  const optimizer = { lr: 3e-4, warmupSteps: 100, clipNorm: 0.5 };
  const batch = bench.batch(4, 21);
  const run = async (floatType: 'float32' | 'float64') => {
    const { graph, layout } = buildTrainingGraph(bench.model, bench.loss, { optimizer, floatType });
    const s = await createSession(encodeTrainingGraph(graph, layout), { threads: 1 });
    const F = floatType === 'float64' ? Float64Array : Float32Array;
    const feeds: Record<string, HostTensor> = {};
    for (const [name, t] of Object.entries(batch)) feeds[name] = t.data instanceof Float32Array ? { data: F.from(t.data), shape: t.shape } : t;
    for (const p of bench.model.params.list()) feeds[p.name] = { data: F.from(p.data), shape: p.shape };
    feeds[TRAIN_IO.m] = { data: new F(layout.flatSize), shape: [layout.flatSize] };
    feeds[TRAIN_IO.v] = { data: new F(layout.flatSize), shape: [layout.flatSize] };
    feeds[TRAIN_IO.step] = { data: F.of(1), shape: [] };
    feeds[TRAIN_IO.lr] = { data: F.of(optimizer.lr), shape: [] };
    const out = await s.run(feeds);
    await s.dispose();
    return { out, layout };
  };
  const a = await run('float32');
  const b = await run('float64');
  const num = (t: HostTensor): number => Number(t.data[0]);
  const loss32 = num(a.out[TRAIN_IO.loss]);
  const loss64 = num(b.out[TRAIN_IO.loss]);
  assert.ok(Math.abs(loss32 - loss64) <= 1e-5 * Math.abs(loss64), `loss ${loss32} vs ${loss64}`);
  const n32 = num(a.out[TRAIN_IO.gradNorm]);
  const n64 = num(b.out[TRAIN_IO.gradNorm]);
  assert.ok(Math.abs(n32 - n64) <= 1e-4 * n64, `grad norm ${n32} vs ${n64}`);
  // The first moment after step 1 is (1 - beta1) * clip * gradient: compare gradients per tensor.
  const m32 = a.out[TRAIN_IO.nextM].data as Float32Array;
  const m64 = b.out[TRAIN_IO.nextM].data as Float64Array;
  // Relative to the tensor's gradient, or to 1e-3 of the mean tensor's where a gradient is zero
  // in exact arithmetic (the key bias: softmax ignores a shift shared by all keys).
  let total = 0;
  for (let i = 0; i < m64.length; i++) total += m64[i] ** 2;
  const floor = (1e-3 * total) / a.layout.trainable.length;
  let worst = 0;
  let worstName = '';
  for (const slot of a.layout.trainable) {
    let diff = 0;
    let ref = 0;
    for (let i = slot.offset; i < slot.offset + slot.size; i++) {
      diff += (m32[i] - m64[i]) ** 2;
      ref += m64[i] ** 2;
    }
    const rel = Math.sqrt(diff / Math.max(ref, floor));
    if (rel > worst) [worst, worstName] = [rel, slot.name];
  }
  assert.ok(worst < 1e-4, `worst gradient relative error ${worst.toExponential(2)} in ${worstName}`);
  // Updated parameters agree too.
  let worstP = 0;
  for (const slot of a.layout.trainable) {
    const p32 = a.out[TRAIN_IO.next(slot.name)].data as Float32Array;
    const p64 = b.out[TRAIN_IO.next(slot.name)].data as Float64Array;
    for (let i = 0; i < p32.length; i++) worstP = Math.max(worstP, Math.abs(p32[i] - p64[i]));
  }
  // One AdamW step moves each weight by about lr; float32 may flip the sign of a near-zero gradient.
  assert.ok(worstP <= 2 * optimizer.lr + 1e-6, `worst parameter difference ${worstP}`);
});
