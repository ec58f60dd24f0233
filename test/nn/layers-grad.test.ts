import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gradients } from '../../nn/autodiff.ts';
import { Graph } from '../../nn/graph.ts';
import { Embedding, LayerNorm, Linear, MLP, MultiHeadAttention, TransformerBlock, causalBias, gelu, geluTanh, keyMaskBias, patchify } from '../../nn/layers.ts';
import { crossEntropy, gaussianEntropy, gaussianLogProb, l1, mse, ppoLoss, tripletMargin } from '../../nn/losses.ts';
import * as op from '../../nn/ops.ts';
import { ParamSet } from '../../nn/params.ts';
import { createSession } from '../../nn/runtime.ts';
import { gradCheck, weightedSum } from './gradcheck.ts';

const paramTensors = (g: Graph) => g.params.map((p) => g.param(p));

test('gradient of Linear (weight, bias, input) with a 3-D input', async () => {
  const params = new ParamSet(1);
  const lin = new Linear(params, 'lin', 4, 3);
  await gradCheck((g) => {
    const x = g.input('x', ['B', 2, 4]);
    return { loss: weightedSum(lin.apply(x)), wrt: [x, ...paramTensors(g)] };
  });
});

test('gradient of GELU (erf form: float32 island, looser tolerance) and GELU (tanh form)', async () => {
  await gradCheck(
    (g) => {
      const x = g.input('x', ['B', 5]);
      return { loss: weightedSum(gelu(x)), wrt: [x] };
    },
    { h: 1e-3, rtol: 2e-3, atol: 1e-5 },
  );
  await gradCheck((g) => {
    const x = g.input('x', ['B', 5]);
    return { loss: weightedSum(geluTanh(x)), wrt: [x] };
  });
});

test('gradient of an MLP with tanh-GELU through all parameters', async () => {
  const params = new ParamSet(2);
  const net = new MLP(params, 'mlp', [3, 8, 8, 2], 'gelu_tanh', 'tanh');
  await gradCheck((g) => ({ loss: weightedSum(net.apply(g.input('x', ['B', 3]))), wrt: paramTensors(g) }), { samples: 6 });
});

test('gradient of Embedding and LayerNorm parameters', async () => {
  const params = new ParamSet(3);
  const emb = new Embedding(params, 'emb', 7, 4, (n, rng) => Float32Array.from({ length: n }, () => rng.normal()));
  const ln = new LayerNorm(params, 'ln', 4);
  // Move the norm's gain and bias off their initial 1 / 0 so every term of the rule is exercised.
  ln.scale.data = Float32Array.from([0.5, 1.5, -0.7, 1.1]);
  ln.bias.data = Float32Array.from([0.1, -0.2, 0.3, 0]);
  await gradCheck(
    (g) => {
      const ids = g.input('ids', ['B', 3], 'int64');
      return { loss: weightedSum(ln.apply(emb.apply(ids))), wrt: paramTensors(g) };
    },
    { values: { ids: BigInt64Array.from([1n, 3n, 3n, 6n, 0n, 2n, 5n, 5n, 1n]) } },
  );
});

test('gradient of multi-head self-attention with a key mask and with a causal mask', async () => {
  const params = new ParamSet(4);
  const attn = new MultiHeadAttention(params, 'attn', 8, 2);
  await gradCheck(
    (g) => {
      const x = g.input('x', ['B', 5, 8]);
      const mask = g.input('mask', ['B', 5]);
      return { loss: weightedSum(attn.apply(x, keyMaskBias(mask))), wrt: [x, ...paramTensors(g)] };
    },
    { values: { mask: Float64Array.from([1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 1, 1, 0]) }, samples: 8 },
  );
  await gradCheck((g) => {
    const x = g.input('x', ['B', 5, 8]);
    return { loss: weightedSum(attn.apply(x, causalBias(g, 5))), wrt: [x] };
  });
});

test('masked keys get no attention: outputs do not change when masked inputs change', async () => {
  const params = new ParamSet(5);
  const attn = new MultiHeadAttention(params, 'attn', 4, 2);
  const g = new Graph();
  const x = g.input('x', [1, 3, 4]);
  const mask = g.input('mask', [1, 3]);
  g.output('y', attn.apply(x, keyMaskBias(mask)));
  const s = await createSession(g.toModel({ params: 'initializer' }));
  const m = { data: Float32Array.from([1, 1, 0]), shape: [1, 3] };
  const x1 = Float32Array.from({ length: 12 }, (_, i) => Math.sin(i));
  const x2 = x1.slice();
  for (let i = 8; i < 12; i++) x2[i] = 5 - i; // change only the masked token
  const y1 = (await s.run({ x: { data: x1, shape: [1, 3, 4] }, mask: m })).y.data as Float32Array;
  const y2 = (await s.run({ x: { data: x2, shape: [1, 3, 4] }, mask: m })).y.data as Float32Array;
  for (let i = 0; i < 8; i++) assert.ok(Math.abs(y1[i] - y2[i]) < 1e-6, `unmasked query output ${i} changed`);
});

test('gradient of a transformer block and of patchify + linear patch embedding', async () => {
  const params = new ParamSet(6);
  const block = new TransformerBlock(params, 'blk', 8, 2, 2, 'gelu_tanh');
  await gradCheck((g) => ({ loss: weightedSum(block.apply(g.input('x', ['B', 4, 8]))), wrt: paramTensors(g) }), { samples: 4 });
  const p2 = new ParamSet(7);
  const embed = new Linear(p2, 'patch', 2 * 2 * 2, 5);
  await gradCheck((g) => {
    const img = g.input('img', ['B', 2, 4, 6]);
    return { loss: weightedSum(embed.apply(patchify(img, 2))), wrt: [img, ...paramTensors(g)] };
  });
});

test('patchify lays out patches row-major, channel-first within a patch', async () => {
  const g = new Graph();
  const img = g.input('img', [1, 2, 4, 4]);
  g.output('p', patchify(img, 2));
  const s = await createSession(g.toModel({ params: 'initializer' }));
  const data = Float32Array.from({ length: 32 }, (_, i) => i);
  const { p } = await s.run({ img: { data, shape: [1, 2, 4, 4] } });
  assert.deepEqual(p.shape, [1, 4, 8]);
  // patch 1 = rows 0-1, cols 2-3: channel 0 values 2,3,6,7 then channel 1 values 18,19,22,23
  assert.deepEqual(Array.from((p.data as Float32Array).subarray(8, 16)), [2, 3, 6, 7, 18, 19, 22, 23]);
});

test('gradients of MSE, L1 and cross-entropy', async () => {
  await gradCheck((g) => {
    const p = g.input('p', ['B', 4]);
    const t = g.input('t', ['B', 4]);
    return { loss: mse(p, t), wrt: [p, t] };
  });
  await gradCheck((g) => {
    const p = g.input('p', ['B', 4]);
    const t = g.input('t', ['B', 4]);
    return { loss: l1(p, t), wrt: [p] };
  });
  await gradCheck(
    (g) => {
      const logits = g.input('logits', ['B', 5]);
      const labels = g.input('labels', ['B'], 'int64');
      return { loss: crossEntropy(logits, labels), wrt: [logits] };
    },
    { values: { labels: BigInt64Array.from([4n, 0n, 2n]) } },
  );
});

test('gradients of the triplet margin loss (euclidean and cosine)', async () => {
  for (const distance of ['euclidean', 'cosine'] as const) {
    await gradCheck(
      (g) => {
        const a = g.input('a', ['B', 6]);
        const p = g.input('p', ['B', 6]);
        const n = g.input('n', ['B', 6]);
        // A large margin keeps every triplet active, so the hinge does not sit at a kink.
        return { loss: tripletMargin(a, p, n, 10, distance), wrt: [a, p, n] };
      },
      { dims: { B: 4 } },
    );
  }
});

test('gradients of Gaussian log-prob and entropy', async () => {
  await gradCheck((g) => {
    const x = g.input('x', ['B', 3]);
    const mean = g.input('mean', ['B', 3]);
    const logStd = g.input('logStd', [3]);
    return { loss: op.add(weightedSum(gaussianLogProb(x, mean, logStd)), op.mul(gaussianEntropy(logStd), 0.7)), wrt: [x, mean, logStd] };
  });
});

test('gradient of the PPO loss (clipped surrogate, clipped value loss, entropy)', async () => {
  // Old log-probs spread so some ratios fall inside and some outside [0.8, 1.2].
  const oldLogProb = Float64Array.from([0.0, 0.5, -0.5, 0.05, -0.1, 1.0]);
  await gradCheck(
    (g) => {
      const logProb = g.input('logProb', ['B']);
      const values = g.input('values', ['B']);
      const t = ppoLoss(
        {
          logProb,
          oldLogProb: g.input('oldLogProb', ['B']),
          advantages: g.input('adv', ['B']),
          values,
          returns: g.input('ret', ['B']),
          oldValues: g.input('oldValues', ['B']),
          entropy: op.mul(logProb, -1),
        },
        { clip: 0.2, valueCoef: 0.5, entropyCoef: 0.01, clipValue: true },
      );
      return { loss: t.loss, wrt: [logProb, values] };
    },
    {
      dims: { B: 6 },
      values: {
        logProb: Float64Array.from([0.03, 0.1, -0.1, 0.3, -0.4, 0.7]),
        oldLogProb,
        adv: Float64Array.from([1, -1, 0.5, -0.3, 2, 1]),
        values: Float64Array.from([0.1, 0.5, -0.2, 1.3, 0, 0.4]),
        ret: Float64Array.from([0.3, 0.2, 0.4, 1, -0.5, 0.4]),
        oldValues: Float64Array.from([0.15, 0.9, -0.25, 1.0, 0.5, 0.1]),
      },
    },
  );
});

test('the fused float32 LayerNormalization gradient matches the float64 rule', async () => {
  const run = async (floatType: 'float32' | 'float64') => {
    const params = new ParamSet(8);
    const ln = new LayerNorm(params, 'ln', 6);
    ln.scale.data = Float32Array.from([0.5, 1.5, -0.7, 1.1, 2, 0.2]);
    const g = new Graph({ floatType });
    const x = g.input('x', ['B', 6]);
    const y = ln.apply(x);
    const wrt = [x, g.param(ln.scale), g.param(ln.bias)];
    const grads = gradients(weightedSum(op.mul(y, y)), wrt);
    grads.forEach((d, i) => g.output(`d${i}`, d));
    const s = await createSession(g.toModel({ params: 'initializer' }));
    const xv = Float64Array.from({ length: 18 }, (_, i) => Math.sin(1.3 * i) * 2);
    const out = await s.run({ x: { data: floatType === 'float64' ? xv : Float32Array.from(xv), shape: [3, 6] } });
    return [0, 1, 2].map((i) => Array.from(out[`d${i}`].data as Float32Array | Float64Array));
  };
  const f32 = await run('float32');
  const f64 = await run('float64');
  for (let i = 0; i < 3; i++) {
    f64[i].forEach((v, k) => assert.ok(Math.abs(f32[i][k] - v) <= 1e-4 * (1 + Math.abs(v)), `gradient ${i}[${k}]: ${f32[i][k]} vs ${v}`));
  }
});

test('spatialSoftmax: a map peaked on one cell gives its centre, a map split between two cells the point between; gradient checked', async () => {
  const { spatialSoftmax } = await import('../../nn/layers.ts');
  const h = 3;
  const w = 4;
  const g = new Graph();
  const logits = g.input('logits', ['B', h * w, 2]);
  g.output('xy', spatialSoftmax(logits, h, w));
  const s = await createSession(g.toModel({ params: 'input' }));
  // Map 0 peaked on row 2, column 1; map 1 split evenly between (0, 0) and (0, 1).
  const data = new Float32Array(h * w * 2).fill(-40);
  data[(2 * w + 1) * 2 + 0] = 40;
  data[(0 * w + 0) * 2 + 1] = 40;
  data[(0 * w + 1) * 2 + 1] = 40;
  const out = (await s.run({ logits: { data, shape: [1, h * w, 2] } })).xy.data as Float32Array;
  const cx = (j: number) => ((j + 0.5) / w) * 2 - 1;
  const cy = (i: number) => ((i + 0.5) / h) * 2 - 1;
  const want = [cx(1), cy(2), (cx(0) + cx(1)) / 2, cy(0)];
  want.forEach((v, k) => assert.ok(Math.abs(out[k] - v) < 1e-5, `output ${k}: ${out[k]} vs ${v}`));
  assert.throws(() => spatialSoftmax(g.input('bad', ['B', 5, 2]), h, w), /\[B, 12, K\] for a 3x4 grid/);
  await gradCheck((gg) => {
    const x = gg.input('x', ['B', h * w, 3]);
    return { loss: weightedSum(spatialSoftmax(x, h, w)), wrt: [x] };
  });
});

test('SpatialKeypoints: named parameters, scale starts at the configured value, [B, K, 2] inside -1..1; gradient through every parameter', async () => {
  const { SpatialKeypoints } = await import('../../nn/layers.ts');
  const params = new ParamSet(5);
  const kp = new SpatialKeypoints(params, 'cam.kp', { inChannels: 2, patch: 2, channels: 4, keypoints: 3, scale: 10 });
  assert.deepEqual(params.list().map((p) => p.name).sort(), ['cam.kp.log_scale', 'cam.kp.logits.bias', 'cam.kp.logits.weight', 'cam.kp.stem.bias', 'cam.kp.stem.weight']);
  assert.ok(Array.from(kp.logScale.data).every((v) => Math.abs(v - Math.log(10)) < 1e-6));
  assert.throws(() => new SpatialKeypoints(new ParamSet(1), 'bad', { inChannels: 2, patch: 2, channels: 4, keypoints: 3, scale: 0 }), /scale must be > 0, got 0/);
  const g = new Graph();
  g.output('xy', kp.apply(g.input('img', ['B', 2, 6, 4])));
  const s = await createSession(g.toModel({ params: 'initializer' }));
  const img = Float32Array.from({ length: 2 * 2 * 6 * 4 }, (_, i) => Math.sin(i * 1.7));
  const out = await s.run({ img: { data: img, shape: [2, 2, 6, 4] } });
  assert.deepEqual(out.xy.shape, [2, 3, 2]);
  assert.ok(Array.from(out.xy.data as Float32Array).every((v) => Math.abs(v) <= 1));
  await gradCheck((gg) => ({ loss: weightedSum(kp.apply(gg.input('x', ['B', 2, 4, 4]))), wrt: paramTensors(gg) }), { samples: 6 });
});
