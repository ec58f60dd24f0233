import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../sim/rng.ts';
import { Graph, type Tensor } from '../../nn/graph.ts';
import { Conv2d, Dropout, Embedding, Linear } from '../../nn/layers.ts';
import { batchHardTripletLoss, mse, pairwiseDistances, ppoLoss, semiHardTripletLoss, valueLoss } from '../../nn/losses.ts';
import { exportInference, type ModelDefinition } from '../../nn/model.ts';
import * as op from '../../nn/ops.ts';
import { ParamSet, init } from '../../nn/params.ts';
import { createSession, type HostTensor } from '../../nn/runtime.ts';
import { Trainer } from '../../nn/trainer.ts';
import { gradCheck, weightedSum } from './gradcheck.ts';

const ints = (xs: number[]): BigInt64Array => BigInt64Array.from(xs.map(BigInt));

async function run(g: Graph, feeds: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
  const s = await createSession(g.toModel({ params: 'input' }), { threads: 1 });
  const out = await s.run(feeds);
  await s.dispose();
  return out;
}

test('gradient of Gather along the token axis, repeated indices accumulate (ScatterElements add)', async () => {
  await gradCheck((g) => {
    const x = g.input('x', ['B', 5, 3]);
    const idx = g.constInt64([4, 0, 4, 2], [2, 2]);
    return { loss: weightedSum(op.gatherAxis(x, idx, 1)), wrt: [x] };
  }, { samples: 45 });
});

test('Embedding gradient by scatter: exact rows, repeats accumulate, no one-hot in the graph', async () => {
  const params = new ParamSet(1);
  const emb = new Embedding(params, 'tok', 7, 4);
  await gradCheck((g) => {
    const ids = g.input('ids', ['B', 3], 'int64');
    return { loss: weightedSum(emb.apply(ids)), wrt: [g.param(emb.table)] };
  }, { samples: 28, values: { ids: ints([1, 1, 6, 0, 6, 6, 2, 1, 3]) } });
  const g = new Graph();
  const ids = g.input('ids', ['B', 3], 'int64');
  const y = emb.apply(ids);
  const [d] = (await import('../../nn/autodiff.ts')).gradients(op.reduceSum(y), [g.param(emb.table)]);
  assert.ok(!g.nodes.some((n) => n.op === 'Equal'), 'the gradient must not build a one-hot');
  assert.ok(g.nodes.some((n) => n.op === 'ScatterElements'));
  g.output('d', d);
  const out = await run(g, { ids: { data: ints([1, 1, 6, 0, 6, 6]), shape: [2, 3] }, [emb.table.name]: { data: emb.table.data, shape: emb.table.shape } });
  const counts = [1, 2, 0, 0, 0, 0, 3];
  const dd = out.d.data as Float32Array;
  for (let r = 0; r < 7; r++) for (let c = 0; c < 4; c++) assert.equal(dd[r * 4 + c], counts[r]);
});

test('gradient of GatherElements, selectTokens and ScatterElements(add)', async () => {
  await gradCheck((g) => {
    const x = g.input('x', [3, 4]);
    const idx = g.constInt64([3, 3, 0, 1, 2, 1], [3, 2]);
    return { loss: weightedSum(op.gatherElements(x, idx, 1)), wrt: [x] };
  }, { samples: 12 });
  await gradCheck((g) => {
    const x = g.input('x', [3, 5, 2]);
    const pos = g.constInt64([4, 0, 2]);
    return { loss: weightedSum(op.selectTokens(x, pos)), wrt: [x] };
  }, { samples: 30 });
  await gradCheck((g) => {
    const data = g.input('data', [4, 3]);
    const upd = g.input('upd', [2, 3]);
    const idx = g.constInt64([3, 0, 3, 3, 1, 0], [2, 3]);
    return { loss: weightedSum(op.mul(op.scatterElementsAdd(data, idx, upd, 0), data)), wrt: [data, upd] };
  }, { samples: 12 });
  // selectTokens picks row positions[b] of each sequence.
  const g = new Graph();
  const x = g.input('x', [2, 3, 2]);
  g.output('y', op.selectTokens(x, g.constInt64([2, 0])));
  const out = await run(g, { x: { data: Float32Array.of(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), shape: [2, 3, 2] } });
  assert.deepEqual(Array.from(out.y.data as Float32Array), [4, 5, 6, 7]);
});

test('gradient of ReduceMax / ReduceMin; ties share the gradient; ArgMax / ArgMin', async () => {
  await gradCheck((g) => {
    const x = g.input('x', ['B', 4, 3]);
    return { loss: op.add(weightedSum(op.reduceMax(x, [1])), weightedSum(op.reduceMin(x, [2], true), 7)), wrt: [x] };
  });
  const g = new Graph({ floatType: 'float64' });
  const x = g.input('x', [2, 3]);
  const [d] = (await import('../../nn/autodiff.ts')).gradients(op.reduceSum(op.reduceMax(x, [1])), [x]);
  g.output('d', d);
  g.output('amax', op.argMax(x, 1));
  g.output('amin', op.argMin(x, 1));
  const out = await run(g, { x: { data: Float64Array.of(1, 5, 5, -1, -2, 0), shape: [2, 3] } });
  assert.deepEqual(Array.from(out.d.data as Float64Array), [0, 0.5, 0.5, 0, 0, 1]);
  assert.deepEqual(Array.from(out.amax.data as BigInt64Array), [1n, 2n]);
  assert.deepEqual(Array.from(out.amin.data as BigInt64Array), [0n, 1n]);
});

test('softplus is stable and has the sigmoid gradient; l2Normalize has a finite gradient at zero', async () => {
  await gradCheck((g) => {
    const x = g.input('x', [8]);
    return { loss: weightedSum(op.softplus(x)), wrt: [x] };
  }, { values: { x: Float64Array.of(-40, -3, -0.5, 0.1, 0.7, 2, 5, 40) } });
  const g = new Graph();
  const x = g.input('x', [4]);
  g.output('y', op.softplus(x));
  const y = (await run(g, { x: { data: Float32Array.of(-200, 0, 100, 200), shape: [4] } })).y.data as Float32Array;
  assert.ok(y[0] >= 0 && y[0] < 1e-30);
  assert.ok(Math.abs(y[1] - Math.LN2) < 1e-6);
  assert.equal(y[2], 100);
  assert.equal(y[3], 200);

  await gradCheck((gg) => {
    const v = gg.input('v', ['B', 5]);
    return { loss: weightedSum(op.l2Normalize(v)), wrt: [v] };
  });
  const g2 = new Graph();
  const v = g2.input('v', [2, 3]);
  const n = op.l2Normalize(v);
  const [d] = (await import('../../nn/autodiff.ts')).gradients(weightedSum(op.cast(n, 'float64')), [v]);
  g2.output('n', n);
  g2.output('d', d);
  const out = await run(g2, { v: { data: Float32Array.of(0, 0, 0, 3, 0, 4), shape: [2, 3] } });
  assert.deepEqual(Array.from(out.n.data as Float32Array), [0, 0, 0, 0.6000000238418579, 0, 0.800000011920929]);
  assert.ok((out.d.data as Float32Array).every(Number.isFinite), `gradient ${Array.from(out.d.data as Float32Array)}`);
});

/** Direct convolution in JS (NCHW, weight [O, C, k, k]). */
function convRef(x: Float64Array, [b, c, h, w]: number[], wt: Float64Array, bias: Float64Array, o: number, k: number, stride: number, pad: number): { y: Float64Array; ho: number; wo: number } {
  const ho = Math.floor((h + 2 * pad - k) / stride) + 1;
  const wo = Math.floor((w + 2 * pad - k) / stride) + 1;
  const y = new Float64Array(b * o * ho * wo);
  for (let n = 0; n < b; n++)
    for (let oc = 0; oc < o; oc++)
      for (let i = 0; i < ho; i++)
        for (let j = 0; j < wo; j++) {
          let acc = bias[oc];
          for (let ic = 0; ic < c; ic++)
            for (let di = 0; di < k; di++)
              for (let dj = 0; dj < k; dj++) {
                const r = i * stride + di - pad;
                const q = j * stride + dj - pad;
                if (r < 0 || q < 0 || r >= h || q >= w) continue;
                acc += x[((n * c + ic) * h + r) * w + q] * wt[((oc * c + ic) * k + di) * k + dj];
              }
          y[((n * o + oc) * ho + i) * wo + j] = acc;
        }
  return { y, ho, wo };
}

for (const [k, stride, pad, h, w] of [
  [3, 2, 1, 7, 6],
  [4, 4, 0, 8, 8],
  [2, 1, 0, 4, 5],
  [3, 3, 1, 7, 7],
]) {
  test(`Conv2d k${k} s${stride} p${pad} on ${h}x${w}: matches direct convolution, gradients by finite differences`, async () => {
    const params = new ParamSet(k * 10 + stride);
    const conv = new Conv2d(params, 'conv', 2, 3, k, { stride, padding: pad });
    const rng = new Rng(5);
    const xs = Float64Array.from({ length: 2 * 2 * h * w }, () => rng.normal());
    const g = new Graph({ floatType: 'float64' });
    g.output('y', conv.apply(g.input('x', [2, 2, h, w])));
    const out = await run(g, {
      x: { data: xs, shape: [2, 2, h, w] },
      'conv.weight': { data: Float64Array.from(conv.weight.data), shape: conv.weight.shape },
      'conv.bias': { data: Float64Array.from(conv.bias!.data), shape: conv.bias!.shape },
    });
    const ref = convRef(xs, [2, 2, h, w], Float64Array.from(conv.weight.data), Float64Array.from(conv.bias!.data), 3, k, stride, pad);
    assert.deepEqual(out.y.shape, [2, 3, ref.ho, ref.wo]);
    const y = out.y.data as Float64Array;
    for (let i = 0; i < y.length; i++) assert.ok(Math.abs(y[i] - ref.y[i]) < 1e-12, `y[${i}] ${y[i]} vs ${ref.y[i]}`);
    await gradCheck((gg) => {
      const x = gg.input('x', ['B', 2, h, w]);
      return { loss: weightedSum(conv.tokens(x)), wrt: [x, gg.param(conv.weight), gg.param(conv.bias!)] };
    }, { dims: { B: 2 }, samples: 16 });
  });
}

test('Dropout: active only in training graphs, seeded, scaled by 1/(1-p), gradient through the same mask', async () => {
  const drop = new Dropout(0.25, 7);
  const params = new ParamSet(1);
  const lin = new Linear(params, 'lin', 64, 64, { weightInit: init.constant(0), biasInit: init.constant(1) });
  const model: ModelDefinition = { params, forward: (g) => ({ y: drop.apply(lin.apply(g.input('x', ['B', 64]))) }) };
  // Eval: the inference export has no Dropout and returns the input unchanged.
  const infer = await createSession(exportInference(model));
  const x = { data: new Float32Array(64 * 32), shape: [32, 64] };
  const evalY = (await infer.run({ x })).y.data as Float32Array;
  assert.ok(evalY.every((v) => v === 1));
  // Train: masks from the seed; the same in a fresh session, different from step to step.
  const g = new Graph({ training: true });
  const xin = g.input('x', [32, 64]);
  const yd = drop.apply(xin);
  const [dx] = (await import('../../nn/autodiff.ts')).gradients(op.reduceSum(op.mul(yd, 3)), [xin]);
  g.output('y', yd);
  g.output('dx', dx);
  const bytes = g.toModel({ params: 'input' });
  const ones = { x: { data: new Float32Array(64 * 32).fill(1), shape: [32, 64] } };
  const s1 = await createSession(bytes);
  const s2 = await createSession(bytes);
  const a1 = await s1.run(ones);
  const a2 = await s1.run(ones);
  const b1 = await s2.run(ones);
  const y1 = a1.y.data as Float32Array;
  assert.deepEqual(y1, b1.y.data, 'same seed, fresh session: same mask');
  assert.notDeepEqual(y1, a2.y.data, 'the next step draws a new mask');
  const dropped = y1.filter((v) => v === 0).length / y1.length;
  assert.ok(Math.abs(dropped - 0.25) < 0.05, `dropped ${dropped}`);
  assert.ok(y1.every((v) => v === 0 || Math.abs(v - 1 / 0.75) < 1e-6));
  const d1 = a1.dx.data as Float32Array;
  for (let i = 0; i < y1.length; i++) assert.ok(Math.abs(d1[i] - 3 * y1[i]) < 1e-5, 'gradient = 3 * mask / (1 - p)');
  // A trainer's graph is a training graph: its forward output shows dropped units.
  const trainer = await Trainer.create({ model, loss: (gg, o) => ({ loss: mse(o.y, gg.input('t', ['B', 64])) }), optimizer: { lr: 0 }, exposeForward: true });
  const r = await trainer.trainStep({ x, t: { data: new Float32Array(64 * 32), shape: [32, 64] } });
  assert.ok((r.forward.y.data as Float32Array).some((v) => v === 0));
  assert.throws(() => new Dropout(1, 0), /p must be in \[0, 1\)/);
});

/** Plain-JS batch-hard and semi-hard references. */
function tripletRefs(e: number[][], labels: number[], margin: number): { hard: number; semi: number } {
  const n = e.length;
  const dist = (a: number[], b: number[]): number => Math.sqrt(Math.max(a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0), 1e-12));
  const d = e.map((a) => e.map((b) => dist(a, b)));
  let hardSum = 0;
  let hardCount = 0;
  let semiSum = 0;
  let semiCount = 0;
  for (let i = 0; i < n; i++) {
    const pos = [...Array(n).keys()].filter((j) => j !== i && labels[j] === labels[i]);
    const neg = [...Array(n).keys()].filter((j) => labels[j] !== labels[i]);
    if (pos.length && neg.length) {
      hardSum += Math.max(0, Math.max(...pos.map((j) => d[i][j])) - Math.min(...neg.map((j) => d[i][j])) + margin);
      hardCount++;
    }
    for (const j of pos) {
      const farther = neg.filter((k) => d[i][k] > d[i][j]).map((k) => d[i][k]);
      const dn = farther.length ? Math.min(...farther) : Math.max(0, ...neg.map((k) => d[i][k]));
      semiSum += Math.max(0, d[i][j] - dn + margin);
      semiCount++;
    }
  }
  return { hard: hardSum / Math.max(hardCount, 1), semi: semiSum / Math.max(semiCount, 1) };
}

test('batch-hard and semi-hard triplet losses match plain-JS references and pass gradient checks', async () => {
  const rng = new Rng(9);
  const n = 8;
  const labels = [0, 1, 0, 2, 1, 2, 0, 3];
  const e = Array.from({ length: n }, () => Array.from({ length: 3 }, () => rng.normal()));
  const g = new Graph({ floatType: 'float64' });
  const x = g.input('x', [n, 3]);
  const lab = g.input('labels', [n], 'int64');
  const hard = batchHardTripletLoss(x, lab, { margin: 0.5 });
  g.output('hard', hard.loss);
  g.output('soft', batchHardTripletLoss(x, lab, { soft: true }).loss);
  g.output('semi', semiHardTripletLoss(x, lab, { margin: 0.5 }).loss);
  g.output('hp', hard.hardestPositive!);
  const out = await run(g, { x: { data: Float64Array.from(e.flat()), shape: [n, 3] }, labels: { data: ints(labels), shape: [n] } });
  const ref = tripletRefs(e, labels, 0.5);
  assert.ok(Math.abs(Number(out.hard.data[0]) - ref.hard) < 1e-9, `batch-hard ${out.hard.data[0]} vs ${ref.hard}`);
  assert.ok(Math.abs(Number(out.semi.data[0]) - ref.semi) < 1e-9, `semi-hard ${out.semi.data[0]} vs ${ref.semi}`);
  assert.ok(Number(out.soft.data[0]) > 0);
  const hp = Array.from(out.hp.data as BigInt64Array, Number);
  assert.equal(labels[hp[0]], labels[0]);
  for (const which of ['hard', 'soft', 'semi'] as const) {
    await gradCheck((gg) => {
      const xx = gg.input('x', [n, 3]);
      const l = gg.input('labels', [n], 'int64');
      const loss = which === 'semi' ? semiHardTripletLoss(xx, l, { margin: 0.5 }).loss : batchHardTripletLoss(xx, l, { margin: 0.5, soft: which === 'soft' }).loss;
      return { loss, wrt: [xx] };
    }, { values: { x: Float64Array.from(e.flat()), labels: ints(labels) }, samples: 24 });
  }
  await gradCheck((gg) => {
    const a = gg.input('a', [4, 3]);
    return { loss: weightedSum(pairwiseDistances(a)), wrt: [a] };
  });
});

test('PPO with two critics: clipped value losses per head, weights, and gradients', async () => {
  const build = (g: Graph) => {
    const logProb = g.input('logp', [6]);
    const vExt = g.input('v_ext', [6]);
    const vInt = g.input('v_int', [6]);
    const terms = ppoLoss(
      {
        logProb,
        oldLogProb: g.input('old_logp', [6]),
        advantages: g.input('adv', [6]),
        critics: {
          ext: { values: vExt, returns: g.input('r_ext', [6]), oldValues: g.input('ov_ext', [6]) },
          int: { values: vInt, returns: g.input('r_int', [6]), oldValues: g.input('ov_int', [6]), coef: 0.5 },
        },
      },
      { clip: 0.2, valueCoef: 0.5, entropyCoef: 0, clipValue: true },
    );
    return { terms, wrt: [logProb, vExt, vInt] };
  };
  await gradCheck((g) => {
    const { terms, wrt } = build(g);
    return { loss: terms.loss, wrt };
  }, { values: { v_ext: Float64Array.of(0.1, 0.5, -0.3, 1.2, 0.05, -1), ov_ext: Float64Array.of(0, 0.1, 0.2, 0.3, 0.4, 0.5), v_int: Float64Array.of(1, 2, 3, 0, -0.1, 0.33), ov_int: Float64Array.of(0.9, 2.5, 2.9, -0.35, 0, 0.3) } });
  const g = new Graph({ floatType: 'float64' });
  const { terms } = build(g);
  g.output('ext', terms.valueLosses.ext);
  g.output('int', terms.valueLosses.int);
  g.output('total', terms.valueLoss);
  const vals = {
    v_ext: [0.1, 0.5, -0.3, 1.2, 0.05, -1],
    ov_ext: [0, 0.1, 0.2, 0.3, 0.4, 0.5],
    r_ext: [0, 1, 0, 1, 0, 1],
    v_int: [1, 2, 3, 0, -0.1, 0.33],
    ov_int: [0.9, 2.5, 2.9, -0.35, 0, 0.3],
    r_int: [1, 1, 1, 1, 1, 1],
  };
  const feeds: Record<string, HostTensor> = {};
  for (const name of ['logp', 'old_logp', 'adv']) feeds[name] = { data: new Float64Array(6), shape: [6] };
  for (const [k, v] of Object.entries(vals)) feeds[k] = { data: Float64Array.from(v), shape: [6] };
  const out = await run(g, feeds);
  const ref = (v: number[], ov: number[], r: number[]): number =>
    (0.5 * v.reduce((s, vi, i) => s + Math.max((vi - r[i]) ** 2, (ov[i] + Math.min(Math.max(vi - ov[i], -0.2), 0.2) - r[i]) ** 2), 0)) / v.length;
  const ext = ref(vals.v_ext, vals.ov_ext, vals.r_ext);
  const int = ref(vals.v_int, vals.ov_int, vals.r_int);
  assert.ok(Math.abs(Number(out.ext.data[0]) - ext) < 1e-12);
  assert.ok(Math.abs(Number(out.int.data[0]) - int) < 1e-12);
  assert.ok(Math.abs(Number(out.total.data[0]) - (ext + 0.5 * int)) < 1e-12);
  // valueLoss alone, unclipped, is 0.5 MSE.
  const g2 = new Graph({ floatType: 'float64' });
  g2.output('l', valueLoss(g2.input('v', [2]), g2.input('r', [2])));
  const l = await run(g2, { v: { data: Float64Array.of(1, 2), shape: [2] }, r: { data: Float64Array.of(0, 0), shape: [2] } });
  assert.equal(Number(l.l.data[0]), 1.25);
  assert.throws(() => ppoLoss({ logProb: g2.input('a', [2]), oldLogProb: g2.input('b', [2]), advantages: g2.input('c', [2]) }, { clip: 0.2, valueCoef: 1, entropyCoef: 0 }), /needs values\/returns or critics/);
});

test('parameter groups: own learning rate and weight decay per group (first match wins)', async () => {
  const params = new ParamSet(2);
  const trunk = params.add('trunk.w', [2, 3], init.constant(2));
  const head = params.add('head.w', [3, 2], init.constant(2));
  const other = params.add('other.w', [2, 2], init.constant(2));
  const lr = 0.1;
  const trainer = await Trainer.create({
    model: {
      params,
      forward: (g: Graph) => ({ y: op.sum([trunk, head, other].map((p) => op.reduceSum(op.mul(g.param(p), g.input(`c_${p.name}`, p.shape as number[]))))) }),
    },
    loss: (_g, o) => ({ loss: o.y }),
    optimizer: {
      lr,
      weightDecay: 0.01,
      groups: [
        { name: 'trunk', params: 'trunk.', lr: lr / 10, weightDecay: 0 },
        { name: 'head', params: /^head\./, lr: lr * 3, weightDecay: 0.5 },
        { params: (name: string) => name.startsWith('head'), lr: 99 },
      ],
    },
  });
  const feeds: Record<string, HostTensor> = {};
  for (const p of [trunk, head, other]) feeds[`c_${p.name}`] = { data: new Float32Array(p.data.length).fill(1), shape: p.shape };
  await trainer.trainStep(feeds);
  // Step 1 with gradient 1: Adam's step is 1 / (1 + eps); decay acts on the old value 2.
  const expected = (plr: number, wd: number): number => 2 - plr * (1 / (1 + 1e-8) + wd * 2);
  const close = (p: { data: Float32Array }, want: number, name: string): void =>
    assert.ok(p.data.every((v) => Math.abs(v - want) < 5e-6), `${name}: ${p.data[0]} vs ${want}`);
  close(trunk, expected(lr / 10, 0), 'trunk');
  close(head, expected(lr * 3, 0.5), 'head');
  close(other, expected(lr, 0.01), 'other');
  await assert.rejects(Trainer.create({ model: { params, forward: (g: Graph) => ({ y: op.reduceSum(g.param(trunk)) }) }, loss: (_g, o) => ({ loss: o.y }), optimizer: { lr: 0.1, groups: [{ params: 'x', lr: -1 }] } }), /groups\[0\]\.lr must be >= 0/);
});

test('typed errors for bad conv and gather inputs', () => {
  const g = new Graph();
  const x = g.input('x', ['B', 3, 8, 8]);
  const params = new ParamSet(0);
  const conv = new Conv2d(params, 'c', 4, 8, 3);
  assert.throws(() => conv.apply(x), /weight must be \[O, 3, kh, kw\]/);
  assert.throws(() => op.gatherAxis(x, g.input('i', [2]), 1), /indices must be int64/);
  const unused: Tensor = x;
  assert.ok(unused);
});
