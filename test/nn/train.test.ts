import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../sim/rng.ts';
import { gradients } from '../../nn/autodiff.ts';
import { LayerNorm, Linear, MLP, TransformerBlock, Embedding } from '../../nn/layers.ts';
import { crossEntropy, mse } from '../../nn/losses.ts';
import { exportInference, traceForward, type ModelDefinition } from '../../nn/model.ts';
import * as op from '../../nn/ops.ts';
import { ParamSet } from '../../nn/params.ts';
import { createSession, type HostTensor } from '../../nn/runtime.ts';
import { Trainer } from '../../nn/trainer.ts';
import { ModelRunner } from '../../nn/runner.ts';
import type { LossFn } from '../../nn/train-graph.ts';

function tinyModel(seed: number): { model: ModelDefinition; loss: LossFn } {
  const params = new ParamSet(seed);
  const lin = new Linear(params, 'lin', 3, 4);
  const ln = new LayerNorm(params, 'ln', 4);
  const head = new Linear(params, 'head', 4, 2);
  return {
    model: { params, forward: (g) => ({ y: head.apply(op.tanh(ln.apply(lin.apply(g.input('x', ['B', 3]))))) }) },
    loss: (g, o) => ({ loss: mse(o.y, g.input('t', ['B', 2])) }),
  };
}

/** Gradients of the tiny model's loss at the current parameters, from a separate gradient graph. */
async function referenceGradients(model: ModelDefinition, loss: LossFn, batch: Record<string, HostTensor>): Promise<Float64Array[]> {
  const { graph: g, outputs } = traceForward(model);
  const l = loss(g, outputs).loss;
  const ps = model.params.list();
  gradients(l, ps.map((p) => g.param(p))).forEach((d, i) => g.output(`d/${ps[i].name}`, d));
  const s = await createSession(g.toModel({ params: 'input', outputs: ps.map((p) => `d/${p.name}`) }));
  const feeds: Record<string, HostTensor> = { ...batch };
  for (const p of ps) feeds[p.name] = { data: p.data, shape: p.shape };
  const out = await s.run(feeds);
  return ps.map((p) => Float64Array.from(out[`d/${p.name}`].data as Float32Array));
}

test('the in-graph AdamW step (warmup, clipping, decoupled decay, bias correction) matches a reference', async () => {
  const { model, loss } = tinyModel(11);
  const cfg = { lr: 0.05, beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0.1, warmupSteps: 2, clipNorm: 0.05 };
  const trainer = await Trainer.create({ model, loss, optimizer: cfg });
  const rng = new Rng(3);
  const batch = {
    x: { data: Float32Array.from({ length: 15 }, () => rng.normal()), shape: [5, 3] },
    t: { data: Float32Array.from({ length: 10 }, () => rng.normal()), shape: [5, 2] },
  };
  const ps = model.params.list();
  const m = ps.map((p) => new Float64Array(p.data.length));
  const v = ps.map((p) => new Float64Array(p.data.length));
  for (let step = 1; step <= 3; step++) {
    const grads = await referenceGradients(model, loss, batch);
    const before = ps.map((p) => Float64Array.from(p.data));
    const norm = Math.sqrt(grads.reduce((s, gr) => s + gr.reduce((a, x) => a + x * x, 0), 0));
    const scale = Math.min(1, cfg.clipNorm / (norm + 1e-6));
    const lr = cfg.lr * Math.min(1, step / cfg.warmupSteps);
    const result = await trainer.trainStep(batch);
    assert.ok(Math.abs(result.gradNorm - norm) < 1e-5 * (1 + norm), `grad norm ${result.gradNorm} vs ${norm}`);
    assert.ok(Math.abs(result.lr - lr) < 1e-7, `lr ${result.lr} vs ${lr}`);
    assert.ok(scale < 1, 'the test must exercise clipping');
    ps.forEach((p, i) => {
      for (let k = 0; k < p.data.length; k++) {
        const gk = grads[i][k] * scale;
        m[i][k] = cfg.beta1 * m[i][k] + (1 - cfg.beta1) * gk;
        v[i][k] = cfg.beta2 * v[i][k] + (1 - cfg.beta2) * gk * gk;
        const mh = m[i][k] / (1 - cfg.beta1 ** step);
        const vh = v[i][k] / (1 - cfg.beta2 ** step);
        const decay = p.decay ? cfg.weightDecay * before[i][k] : 0;
        const expected = before[i][k] - lr * (mh / (Math.sqrt(vh) + cfg.eps) + decay);
        assert.ok(Math.abs(p.data[k] - expected) < 2e-6, `step ${step} ${p.name}[${k}]: ${p.data[k]} vs ${expected}`);
      }
    });
  }
  assert.equal(trainer.step, 3);
  // LayerNorm gains and biases are exempt from decay; weights are not.
  assert.equal(model.params.get('ln.scale').decay, false);
  assert.equal(model.params.get('lin.weight').decay, true);
});

test('a regression MLP converges', async () => {
  const params = new ParamSet(21);
  const net = new MLP(params, 'mlp', [2, 32, 32, 1], 'relu');
  const trainer = await Trainer.create({
    model: { params, forward: (g) => ({ y: net.apply(g.input('x', ['B', 2])) }) },
    loss: (g, o) => ({ loss: mse(o.y, g.input('t', ['B', 1])) }),
    optimizer: { lr: 3e-3, warmupSteps: 20, clipNorm: 1 },
    session: { threads: 1 },
  });
  const rng = new Rng(5);
  const target = (a: number, b: number): number => Math.sin(2 * a) * Math.cos(b) + 0.3 * a * b;
  const batchOf = (n: number) => {
    const x = Float32Array.from({ length: 2 * n }, () => rng.uniform(-1.5, 1.5));
    const t = Float32Array.from({ length: n }, (_, i) => target(x[2 * i], x[2 * i + 1]));
    return { x: { data: x, shape: [n, 2] }, t: { data: t, shape: [n, 1] } };
  };
  const first = (await trainer.trainStep(batchOf(128))).loss;
  let last = first;
  for (let i = 0; i < 600; i++) last = (await trainer.trainStep(batchOf(128))).loss;
  // The target's variance is ~0.3; a converged fit is far below it.
  assert.ok(last < 0.01 && last < first / 20, `loss went from ${first} to ${last}`);
});

test('a 2-layer transformer learns a synthetic sequence task (reverse a sequence)', async () => {
  const vocab = 6;
  const len = 6;
  const width = 32;
  const params = new ParamSet(31);
  const tok = new Embedding(params, 'tok', vocab, width);
  const pos = params.add('pos', [len, width], (n, r) => Float32Array.from({ length: n }, () => r.normal(0, 0.1)), { decay: false });
  const blocks = [0, 1].map((i) => new TransformerBlock(params, `blk${i}`, width, 4, 2));
  const lnf = new LayerNorm(params, 'lnf', width);
  const out = new Linear(params, 'out', width, vocab);
  const forward = (g: import('../../nn/graph.ts').Graph) => {
    let h = op.add(tok.apply(g.input('ids', ['B', len], 'int64')), g.param(pos));
    for (const b of blocks) h = b.apply(h);
    return { logits: out.apply(lnf.apply(h)) };
  };
  const trainer = await Trainer.create({
    model: { params, forward },
    loss: (g, o) => {
      const labels = g.input('labels', ['B', len], 'int64');
      const correct = op.cast(op.greaterOrEqual(op.reduceSum(op.mul(op.softmax(o.logits), op.oneHot(labels, vocab)), [-1]), 0.5), 'float32');
      return { loss: crossEntropy(o.logits, labels), metrics: { accuracy: op.reduceMean(correct) } };
    },
    optimizer: { lr: 3e-3, warmupSteps: 30, clipNorm: 1, weightDecay: 0.01 },
    session: { threads: 1 },
  });
  const rng = new Rng(8);
  const batchOf = (n: number) => {
    const ids = new BigInt64Array(n * len);
    const labels = new BigInt64Array(n * len);
    for (let b = 0; b < n; b++) {
      for (let i = 0; i < len; i++) ids[b * len + i] = BigInt(rng.int(vocab));
      for (let i = 0; i < len; i++) labels[b * len + i] = ids[b * len + (len - 1 - i)];
    }
    return { ids: { data: ids, shape: [n, len] }, labels: { data: labels, shape: [n, len] } };
  };
  let r = await trainer.trainStep(batchOf(64));
  const firstLoss = r.loss;
  for (let i = 0; i < 400 && r.metrics.accuracy < 0.99; i++) r = await trainer.trainStep(batchOf(64));
  // Chance is 1/6; reversing needs attention across positions.
  assert.ok(r.metrics.accuracy > 0.95, `accuracy ${r.metrics.accuracy}, loss ${firstLoss} -> ${r.loss}`);
});

test("the exported inference graph reproduces the training graph's forward pass in a fresh session", async () => {
  const params = new ParamSet(41);
  const blk = new TransformerBlock(params, 'blk', 16, 2);
  const head = new Linear(params, 'head', 16, 3);
  const model: ModelDefinition = { params, forward: (g) => ({ y: head.apply(blk.apply(g.input('x', ['B', 5, 16]))) }) };
  const trainer = await Trainer.create({
    model,
    loss: (g, o) => ({ loss: mse(o.y, g.input('t', ['B', 5, 3])) }),
    optimizer: { lr: 1e-2 },
    exposeForward: true,
  });
  const rng = new Rng(9);
  const batch = () => ({
    x: { data: Float32Array.from({ length: 4 * 80 }, () => rng.normal()), shape: [4, 5, 16] },
    t: { data: Float32Array.from({ length: 4 * 15 }, () => rng.normal()), shape: [4, 5, 3] },
  });
  for (let i = 0; i < 5; i++) await trainer.trainStep(batch());
  // Weights now differ from their initial values; the forward output of the next step is computed
  // with exactly the weights the ParamSet holds before that step.
  const b = batch();
  const session = await createSession(exportInference(model));
  const { y } = await session.run({ x: b.x });
  const { forward } = await trainer.trainStep(b);
  const a = forward.y.data as Float32Array;
  const e = y.data as Float32Array;
  assert.deepEqual(forward.y.shape, y.shape);
  let maxDiff = 0;
  for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - e[i]));
  assert.ok(maxDiff < 1e-5, `max abs diff ${maxDiff}`);
});

test('trainStep names a missing batch input, refuses a non-finite loss without updating, and refuses overlapping steps', async () => {
  const { model, loss } = tinyModel(12);
  const trainer = await Trainer.create({ model, loss, optimizer: { lr: 0.1 } });
  await assert.rejects(trainer.trainStep({ x: { data: new Float32Array(3), shape: [1, 3] } }), /batch lacks "t" \(expects x, t\)/);
  const before = model.params.get('lin.weight').data;
  await assert.rejects(
    trainer.trainStep({ x: { data: Float32Array.from([NaN, 0, 0]), shape: [1, 3] }, t: { data: new Float32Array(2), shape: [1, 2] } }),
    /loss is NaN at step 1; parameters were not updated/,
  );
  assert.equal(model.params.get('lin.weight').data, before);
  assert.equal(trainer.step, 0);
  const ok = { x: { data: new Float32Array(3), shape: [1, 3] }, t: { data: new Float32Array(2), shape: [1, 2] } };
  const first = trainer.trainStep(ok);
  await assert.rejects(trainer.trainStep(ok), /step 1 started before the previous step finished/);
  await first;
  assert.equal(trainer.step, 1);
});

test('ModelRunner always uses the current weights', async () => {
  const { model, loss } = tinyModel(13);
  const runner = await ModelRunner.create(model, { threads: 1 });
  assert.deepEqual(runner.inputNames, ['x']);
  const trainer = await Trainer.create({ model, loss, optimizer: { lr: 0.05 } });
  const x = { data: Float32Array.from([0.3, -1, 2, 1, 1, 1]), shape: [2, 3] };
  const before = (await runner.run({ x })).y.data as Float32Array;
  await trainer.trainStep({ x, t: { data: Float32Array.from([1, 2, 3, 4]), shape: [2, 2] } });
  const after = (await runner.run({ x })).y.data as Float32Array;
  const exported = (await (await createSession(exportInference(model))).run({ x })).y.data as Float32Array;
  assert.notDeepEqual(Array.from(after), Array.from(before));
  after.forEach((v, i) => assert.ok(Math.abs(v - exported[i]) < 1e-6, `output ${i}: ${v} vs ${exported[i]}`));
  await assert.rejects(runner.run({}), /missing input "x"/);
});
