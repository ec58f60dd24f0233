import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createSession } from '../../nn/runtime.ts';
import { ChunkPlayer } from '../../policy/eval.ts';
import { VlaConfigSchema } from '../../policy/vla/config.ts';
import { createVla, exportVla, parameterCounts, type NormStats } from '../../policy/vla/model.ts';
import { taskTexts, taskTokenizer } from '../../policy/vla/tokenizer.ts';
import { robotSpecFor } from '../../robot/spec.ts';
import { TINY_MODEL } from './helpers.ts';

const stats: NormStats = {
  proprioMean: [0, 0, 0, 0, 0, 0, 0.01],
  proprioStd: [1, 1, 1, 1, 1, 1, 0.01],
  actionMean: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.02],
  actionStd: [2, 2, 2, 2, 2, 2, 0.01],
};

function feeds(size: number, n: number, L: number, extra: Record<string, { data: Float32Array; shape: number[] }> = {}) {
  return {
    proprio: { data: new Float32Array(n * 7).fill(0.1), shape: [n, 7] },
    image_eye_side: { data: new Float32Array(n * 3 * size * size).fill(0.5), shape: [n, 3, size, size] },
    image_eye_arm: { data: new Float32Array(n * 3 * size * size).fill(0.2), shape: [n, 3, size, size] },
    instruction: { data: new BigInt64Array(n * L).fill(2n), shape: [n, L] },
    ...extra,
  };
}

test('default VLA: about 1M parameters, split into trunk.* and head.*', () => {
  const vla = createVla(VlaConfigSchema.parse({}), taskTokenizer(), stats, 0);
  const c = parameterCounts(vla);
  assert.ok(c.total > 500_000 && c.total < 3_000_000, `parameters ${c.total}`);
  assert.equal(c.trunk + c.head, c.total, 'every parameter is under trunk.* or head.*');
  assert.equal(c.aux, 0);
  assert.equal(vla.auxState, null);
});

test('auxStateDim adds the training-only aux.state head last: the other parameters are the same as without it; a bad size is refused', () => {
  const cfg = VlaConfigSchema.parse(TINY_MODEL);
  const plain = createVla(cfg, taskTokenizer({ maxLength: cfg.maxTokens }), stats, 9);
  const withAux = createVla(cfg, taskTokenizer({ maxLength: cfg.maxTokens }), stats, 9, { auxStateDim: 9 });
  assert.equal(withAux.auxState!.layers.at(-1)!.outFeatures, 9);
  const c = parameterCounts(withAux);
  assert.equal(c.aux, (cfg.width + 1) * cfg.headHidden + (cfg.headHidden + 1) * 9);
  assert.equal(c.trunk + c.head + c.aux, c.total);
  for (const p of plain.params.list()) assert.deepEqual(withAux.params.get(p.name).data, p.data, p.name);
  assert.throws(() => createVla(cfg, taskTokenizer({ maxLength: cfg.maxTokens }), stats, 9, { auxStateDim: -1 }), /auxStateDim must be an integer >= 0, got -1/);
});

for (const actionFrame of ['delta', 'absolute'] as const) test(`policy.onnx (${actionFrame} joints): contract outputs and shapes; action is the denormalised chunk in absolute joint targets; trunk and head models compose`, async () => {
  const cfg = VlaConfigSchema.parse({ ...TINY_MODEL, actionFrame });
  const vla = createVla(cfg, taskTokenizer({ maxLength: cfg.maxTokens }), stats, 3);
  // Zero the last action layer: the normalised chunk is then its bias; set that to 0 too, so
  // the denormalised action must equal the dataset mean (+ the current joints, 0.1, in delta mode).
  const last = vla.head.action.layers.at(-1)!;
  last.weight.data.fill(0);
  last.bias!.data.fill(0);
  const s = await createSession(exportVla(vla, robotSpecFor('airbot_play')));
  const out = await s.run(feeds(16, 2, cfg.maxTokens));
  assert.deepEqual(out.action.shape, [2, cfg.chunk, 7]);
  assert.deepEqual(out.features.shape, [2, cfg.width]);
  assert.deepEqual(out.value_ext.shape, [2]);
  assert.deepEqual(out.value_int.shape, [2]);
  assert.deepEqual(out.action_log_std.shape, [7]);
  const a = out.action.data as Float32Array;
  const offset = (d: number) => (actionFrame === 'delta' && d < 6 ? 0.1 : 0);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - stats.actionMean[i % 7] - offset(i % 7)) < 1e-6, `action[${i}] = ${a[i]}`);
  const logStd = out.action_log_std.data as Float32Array;
  assert.ok(Math.abs(logStd[0] - (cfg.initLogStd + Math.log(2))) < 1e-6);
  // trunk -> features -> head gives the inference model's values.
  const trunk = await createSession((await import('../../nn/model.ts')).exportInference(vla.trunkModel));
  const head = await createSession((await import('../../nn/model.ts')).exportInference(vla.headModel));
  const f = await trunk.run(feeds(16, 2, cfg.maxTokens));
  assert.deepEqual(Array.from(f.features.data as Float32Array), Array.from(out.features.data as Float32Array));
  const headFeeds: Record<string, { data: Float32Array; shape: number[] }> = { features: f.features as { data: Float32Array; shape: number[] } };
  // In delta mode the heads read proprio too (the joint offset of the action).
  if (actionFrame === 'delta') headFeeds.proprio = feeds(16, 2, cfg.maxTokens).proprio;
  const h = await head.run(headFeeds);
  assert.deepEqual(Array.from(h.value_ext.data as Float32Array), Array.from(out.value_ext.data as Float32Array));
  assert.deepEqual(Array.from(h.action.data as Float32Array), Array.from(a));
});

for (const keypoints of [0, 3]) test(`memory tokens (keypoints ${keypoints}): filled slots change the features, empty (masked) slots do not`, async () => {
  const cfg = VlaConfigSchema.parse({ ...TINY_MODEL, memorySlots: 2, keypoints });
  const vla = createVla(cfg, taskTokenizer({ maxLength: cfg.maxTokens }), stats, 4);
  const s = await createSession(exportVla(vla, robotSpecFor('airbot_play')));
  const mem = (v: number, m: number) => ({
    memory: { data: new Float32Array(2 * cfg.width).fill(v), shape: [1, 2, cfg.width] },
    memory_mask: { data: new Float32Array(2).fill(m), shape: [1, 2] },
  });
  const base = (await s.run(feeds(16, 1, cfg.maxTokens, mem(0, 0)))).features.data as Float32Array;
  const maskedJunk = (await s.run(feeds(16, 1, cfg.maxTokens, mem(5, 0)))).features.data as Float32Array;
  const filled = (await s.run(feeds(16, 1, cfg.maxTokens, mem(5, 1)))).features.data as Float32Array;
  for (let i = 0; i < base.length; i++) assert.ok(Math.abs(base[i] - maskedJunk[i]) < 1e-5, 'masked memory must not matter');
  assert.ok(base.some((x, i) => Math.abs(x - filled[i]) > 1e-4), 'filled memory must change the features');
});

test('keypoint tokens: a one-pixel move of a dot that the patch tokens cannot see moves the features; bad sizes are refused', async () => {
  const dotImage = (x: number, y: number) => {
    const img = new Float32Array(3 * 16 * 16).fill(0.5);
    img[y * 16 + x] = 1; // red channel
    return { data: img, shape: [1, 3, 16, 16] };
  };
  const featuresFor = async (keypoints: number) => {
    const cfg = VlaConfigSchema.parse({ ...TINY_MODEL, keypoints, keypointPatch: 2, keypointChannels: 4 });
    const vla = createVla(cfg, taskTokenizer({ maxLength: cfg.maxTokens }), stats, 6);
    // Blind the patch path: its tokens are then the same for any image.
    vla.trunk.stem.weight.data.fill(0);
    vla.trunk.group.weight.data.fill(0);
    if (keypoints > 0) {
      // Keypoint channel 0 = the patch's red sum; every logit map = 20 x that channel.
      const kp = vla.trunk.keypoints.eye_side;
      kp.points.stem.weight.data.fill(0);
      kp.points.stem.bias!.data.fill(0);
      for (let r = 0; r < 4; r++) kp.points.stem.weight.data[r * 4] = 1; // rows (channel 0 = red, 2x2 pixels), column 0
      kp.points.logits.weight.data.fill(0);
      for (let k = 0; k < keypoints; k++) kp.points.logits.weight.data[k] = 20; // row 0 (channel 0) -> every map
    }
    const s = await createSession(exportVla(vla, robotSpecFor('airbot_play')));
    const at = async (x: number, y: number) => (await s.run({ ...feeds(16, 1, cfg.maxTokens), image_eye_side: dotImage(x, y) })).features.data as Float32Array;
    return { a: await at(4, 6), b: await at(6, 6) };
  };
  const blind = await featuresFor(0);
  assert.ok(blind.a.every((v, i) => Math.abs(v - blind.b[i]) < 1e-6), 'without keypoints the blinded model cannot see the dot');
  const seeing = await featuresFor(3);
  assert.ok(seeing.a.some((v, i) => Math.abs(v - seeing.b[i]) > 1e-4), 'the keypoint token must follow the dot');
  assert.throws(() => createVla(VlaConfigSchema.parse({ ...TINY_MODEL, keypoints: 2, keypointPatch: 3 }), taskTokenizer({ maxLength: 24 }), stats, 0), /multiple of model.keypointPatch 3/);
});

test('instruction tokens reach the features; the tokenizer covers every task text', async () => {
  const cfg = VlaConfigSchema.parse(TINY_MODEL);
  const tok = taskTokenizer({ maxLength: cfg.maxTokens });
  const vla = createVla(cfg, tok, stats, 5);
  const s = await createSession(exportVla(vla, robotSpecFor('airbot_play')));
  const run = async (text: string) => {
    const f = feeds(16, 1, cfg.maxTokens);
    f.instruction = { data: tok.encode([text]).ids as BigInt64Array<ArrayBuffer>, shape: [1, cfg.maxTokens] };
    return (await s.run(f)).features.data as Float32Array;
  };
  const a = await run('stack the middle block on the base block');
  const b = await run('put the jujube into the cup');
  assert.ok(a.some((x, i) => Math.abs(x - b[i]) > 1e-5));
  for (const t of taskTexts()) for (const id of tok.tokenize(t)) assert.ok(id >= 1 && id <= tok.words.length, `task word out of vocabulary in "${t}"`);
});

test('chunked execution plays `execute` actions per chunk; temporal ensembling averages overlapping predictions', () => {
  const chunk = (base: number) => Array.from({ length: 4 }, (_, k) => new Float32Array(7).fill(base + k));
  const p = new ChunkPlayer({ mode: 'chunk', execute: 2, ensembleDecay: 0 });
  assert.equal(p.needsChunk(), true);
  p.push(chunk(0));
  assert.equal(p.next()[0], 0);
  assert.equal(p.needsChunk(), false);
  assert.equal(p.next()[0], 1);
  assert.equal(p.needsChunk(), true);
  const e = new ChunkPlayer({ mode: 'ensemble', execute: 1, ensembleDecay: 0 });
  e.push(chunk(0)); // predicts steps 0..3 as 0,1,2,3
  assert.equal(e.next()[0], 0);
  e.push(chunk(10)); // predicts steps 1..4 as 10..13
  assert.equal(e.next()[0], (1 + 10) / 2); // equal weights with decay 0
  assert.throws(() => new ChunkPlayer({ mode: 'chunk', execute: 2, ensembleDecay: 0 }).next(), /push a chunk first/);
});
