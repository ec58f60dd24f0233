import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../sim/rng.ts';
import { Embedding, LayerNorm, Linear, TransformerBlock, keyMaskBias, patchify } from '../../nn/layers.ts';
import { gaussianEntropy, gaussianLogProb, ppoLoss } from '../../nn/losses.ts';
import { exportInference, type ModelDefinition } from '../../nn/model.ts';
import * as op from '../../nn/ops.ts';
import { ParamSet, init } from '../../nn/params.ts';
import { createSession } from '../../nn/runtime.ts';
import { Trainer } from '../../nn/trainer.ts';
import { gradCheck } from './gradcheck.ts';

/** A miniature of the planned policy: image patches + text tokens + proprio through a transformer. */
function tinyPolicy(seed: number) {
  const width = 8;
  const params = new ParamSet(seed);
  const patch = new Linear(params, 'patch', 3 * 2 * 2, width);
  const tok = new Embedding(params, 'tok', 5, width, init.normal(0.5));
  const proprio = new Linear(params, 'proprio', 2, width);
  const block = new TransformerBlock(params, 'blk', width, 2, 2, 'gelu_tanh');
  const ln = new LayerNorm(params, 'ln', width);
  const mean = new Linear(params, 'mean', width, 2);
  const value = new Linear(params, 'value', width, 1);
  const logStd = params.add('log_std', [2], init.constant(-0.5), { decay: false });
  const model: ModelDefinition = {
    params,
    forward: (g) => {
      const img = patch.apply(patchify(g.input('image', ['B', 3, 4, 4]), 2)); // 4 patches
      const text = tok.apply(g.input('text', ['B', 3], 'int64'));
      const state = op.unsqueeze(proprio.apply(g.input('proprio', ['B', 2])), [1]);
      const mask = op.pad(g.input('text_mask', ['B', 3]), [0, 4, 0, 1], 1); // patches and proprio always attended
      const h = ln.apply(block.apply(op.concat([img, text, state], 1), keyMaskBias(mask)));
      const pooled = op.reduceMean(h, [1]);
      return { action_mean: mean.apply(pooled), value: op.squeeze(value.apply(pooled), [1]), log_std: g.param(logStd) };
    },
  };
  return { model, params };
}

function ppo(g: import('../../nn/graph.ts').Graph, out: Record<string, import('../../nn/graph.ts').Tensor>) {
  const logProb = gaussianLogProb(g.input('action', ['B', 2]), out.action_mean, out.log_std);
  const t = ppoLoss(
    {
      logProb,
      oldLogProb: g.input('old_log_prob', ['B']),
      advantages: g.input('advantages', ['B']),
      values: out.value,
      returns: g.input('returns', ['B']),
      entropy: gaussianEntropy(out.log_std),
    },
    { clip: 0.2, valueCoef: 0.5, entropyCoef: 0.01 },
  );
  return { loss: t.loss, metrics: { approx_kl: t.approxKl, clip_fraction: t.clipFraction } };
}

function batch(rng: Rng, n: number) {
  return {
    image: { data: Float32Array.from({ length: n * 48 }, () => rng.next()), shape: [n, 3, 4, 4] },
    text: { data: BigInt64Array.from({ length: n * 3 }, () => BigInt(rng.int(5))), shape: [n, 3] },
    text_mask: { data: Float32Array.from({ length: n * 3 }, (_, i) => (i % 3 < 2 ? 1 : 0)), shape: [n, 3] },
    proprio: { data: Float32Array.from({ length: n * 2 }, () => rng.normal()), shape: [n, 2] },
    action: { data: Float32Array.from({ length: n * 2 }, () => rng.normal()), shape: [n, 2] },
    old_log_prob: { data: Float32Array.from({ length: n }, () => -2 + 0.3 * rng.normal()), shape: [n] },
    advantages: { data: Float32Array.from({ length: n }, () => rng.normal()), shape: [n] },
    returns: { data: Float32Array.from({ length: n }, () => rng.normal()), shape: [n] },
  };
}

test('policy-shaped model: PPO gradient through patches, tokens, masks and the transformer matches finite differences', async () => {
  const { model, params } = tinyPolicy(1);
  const rng = new Rng(2);
  const b = batch(rng, 3);
  const values: Record<string, Float64Array | BigInt64Array> = {};
  for (const [k, v] of Object.entries(b)) values[k] = v.data instanceof BigInt64Array ? v.data : Float64Array.from(v.data);
  // Old log-probs near the current ones keep most ratios inside the clip range (smooth there).
  values.old_log_prob = Float64Array.from([-2.2, -2.6, -2.4]);
  await gradCheck(
    (g) => {
      const out = model.forward(g);
      return { loss: ppo(g, out).loss, wrt: params.list().map((p) => g.param(p)) };
    },
    { values, samples: 3 },
  );
});

test('policy-shaped model trains with PPO and exports action_mean, value and log_std', async () => {
  const { model } = tinyPolicy(3);
  const trainer = await Trainer.create({ model, loss: ppo, optimizer: { lr: 1e-3, clipNorm: 0.5, warmupSteps: 5 }, exposeForward: true });
  const rng = new Rng(4);
  const b = batch(rng, 16);
  let last = await trainer.trainStep(b);
  const first = last.loss;
  for (let i = 0; i < 30; i++) last = await trainer.trainStep(b);
  assert.ok(last.loss < first, `PPO loss on a fixed batch should fall: ${first} -> ${last.loss}`);
  assert.ok(last.metrics.clip_fraction >= 0 && last.metrics.clip_fraction <= 1);
  const session = await createSession(exportInference(model));
  assert.deepEqual([...session.outputNames].sort(), ['action_mean', 'log_std', 'value']);
  const out = await session.run({ image: b.image, text: b.text, text_mask: b.text_mask, proprio: b.proprio });
  assert.deepEqual(out.action_mean.shape, [16, 2]);
  assert.deepEqual(out.value.shape, [16]);
  assert.deepEqual(Array.from(out.log_std.data as Float32Array), Array.from(model.params.get('log_std').data));
});
