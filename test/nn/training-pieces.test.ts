import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { Rng } from '../../sim/rng.ts';
import { encodeSafetensors, halfToFloat, loadCheckpoint, loadWeights, saveCheckpoint, toFloat32, type StoredTensor } from '../../nn/checkpoint.ts';
import { Ema } from '../../nn/ema.ts';
import { Linear, MLP } from '../../nn/layers.ts';
import { mse } from '../../nn/losses.ts';
import * as op from '../../nn/ops.ts';
import { ParamSet, init } from '../../nn/params.ts';
import type { HostTensor } from '../../nn/runtime.ts';
import { NonFiniteStepError, Trainer } from '../../nn/trainer.ts';
import { scratchDir } from '../tmp.ts';

function mlpSetup(seed = 1) {
  const params = new ParamSet(seed);
  const net = new MLP(params, 'mlp', [3, 8, 2], 'tanh');
  return {
    params,
    options: {
      model: { params, forward: (g: import('../../nn/graph.ts').Graph) => ({ y: net.apply(g.input('x', ['B', 3])) }) },
      loss: (g: import('../../nn/graph.ts').Graph, o: Record<string, import('../../nn/graph.ts').Tensor>) => ({ loss: mse(o.y, g.input('t', ['B', 2])) }),
      optimizer: { lr: 1e-2, warmupSteps: 2, clipNorm: 0.3, weightDecay: 0.05 },
    },
  };
}

function batch(rows: number, seed: number): Record<string, HostTensor> {
  const rng = new Rng(seed);
  return {
    x: { data: Float32Array.from({ length: rows * 3 }, () => rng.normal()), shape: [rows, 3] },
    t: { data: Float32Array.from({ length: rows * 2 }, () => rng.normal()), shape: [rows, 2] },
  };
}

const half = (b: Record<string, HostTensor>, part: 0 | 1): Record<string, HostTensor> => {
  const out: Record<string, HostTensor> = {};
  for (const [k, t] of Object.entries(b)) {
    const rows = t.shape[0] / 2;
    const row = t.data.length / t.shape[0];
    out[k] = { data: (t.data as Float32Array).slice(part * rows * row, (part + 1) * rows * row), shape: [rows, ...t.shape.slice(1)] };
  }
  return out;
};

test('gradient accumulation over two half batches equals one step on the whole batch', async () => {
  const a = mlpSetup();
  const b = mlpSetup();
  const whole = await Trainer.create(a.options);
  const accum = await Trainer.create(b.options);
  for (let step = 0; step < 3; step++) {
    const full = batch(8, 10 + step);
    const r = await whole.trainStep(full);
    const l0 = await accum.accumulate(half(full, 0));
    const l1 = await accum.accumulate(half(full, 1));
    assert.equal(accum.accumulatedSteps, 2);
    const u = await accum.applyAccumulated();
    assert.equal(u.microBatches, 2);
    assert.equal(accum.accumulatedSteps, 0);
    assert.ok(Math.abs((l0.loss + l1.loss) / 2 - r.loss) < 1e-6, `loss ${(l0.loss + l1.loss) / 2} vs ${r.loss}`);
    assert.ok(Math.abs(u.gradNorm - r.gradNorm) < 1e-6 * (1 + r.gradNorm), `grad norm ${u.gradNorm} vs ${r.gradNorm}`);
    assert.ok(Math.abs(u.lr - r.lr) < 1e-9);
  }
  assert.equal(accum.step, 3);
  for (const p of a.params.list()) {
    const q = b.params.get(p.name);
    for (let i = 0; i < p.data.length; i++) assert.ok(Math.abs(p.data[i] - q.data[i]) < 2e-6, `${p.name}[${i}] ${p.data[i]} vs ${q.data[i]}`);
  }
  const sa = whole.optimizerState();
  const sb = accum.optimizerState();
  for (let i = 0; i < sa.m.length; i++) assert.ok(Math.abs(sa.m[i] - sb.m[i]) < 1e-6);
  await assert.rejects(accum.applyAccumulated(), /nothing accumulated/);
  await whole.dispose();
  await accum.dispose();
});

test('accumulate refuses a non-finite gradient and adds nothing', async () => {
  const params = new ParamSet(2);
  const w = params.add('w', [3], init.constant(0.5), { decay: false });
  const trainer = await Trainer.create({
    model: { params, forward: (g) => ({ y: op.mul(g.param(w), g.input('x', [3])) }) },
    loss: (_g, o) => ({ loss: op.reduceSum(op.sqrt(op.mul(o.y, o.y))) }),
    optimizer: { lr: 0.1 },
  });
  await assert.rejects(trainer.accumulate({ x: { data: Float32Array.of(0, 1, 1), shape: [3] } }), (e: unknown) => e instanceof NonFiniteStepError && e.parameters[0] === 'w');
  assert.equal(trainer.accumulatedSteps, 0);
  await trainer.accumulate({ x: { data: Float32Array.of(1, 1, 1), shape: [3] } });
  await trainer.applyAccumulated();
  assert.ok(w.data.every((v) => Math.abs(v - 0.4) < 1e-6));
});

test('EMA of weights follows the reference recurrence, swaps in and out, warms up', () => {
  const params = new ParamSet(3);
  const lin = new Linear(params, 'lin', 2, 2);
  const frozen = params.add('frozen', [2], init.ones(), { trainable: false });
  const ema = new Ema(params, { decay: 0.9 });
  assert.ok(!ema.shadow.has('frozen'));
  const ref = new Map(params.list().map((p) => [p.name, Float64Array.from(p.data)]));
  const rng = new Rng(1);
  for (let t = 0; t < 5; t++) {
    for (const p of [lin.weight, lin.bias!]) p.data = Float32Array.from(p.data, (v) => v + rng.normal());
    ema.update();
    for (const p of [lin.weight, lin.bias!]) {
      const r = ref.get(p.name)!;
      for (let i = 0; i < r.length; i++) r[i] = 0.9 * r[i] + 0.1 * p.data[i];
    }
  }
  for (const [name, s] of ema.shadow) {
    const r = ref.get(name)!;
    for (let i = 0; i < s.length; i++) assert.ok(Math.abs(s[i] - r[i]) < 1e-5);
  }
  const trained = lin.weight.data;
  ema.swapIn();
  assert.deepEqual(lin.weight.data, ema.shadow.get('lin.weight'));
  assert.throws(() => ema.update(), /swapped in/);
  ema.swapOut();
  assert.equal(lin.weight.data, trained);
  assert.deepEqual(Array.from(frozen.data), [1, 1]);
  const warm = new Ema(params, { decay: 0.999, warmup: true });
  assert.ok(Math.abs(warm.currentDecay() - 0.1) < 1e-12);
  assert.throws(() => new Ema(params, { decay: 1 }), /decay must be in \[0, 1\)/);
});

test('a checkpoint holds every optimizer and the EMA, and restores them exactly', async () => {
  const dir = scratchDir('nn-ckpt-multi-');
  const make = async () => {
    const params = new ParamSet(5);
    const enc = new Linear(params, 'enc', 3, 4);
    const actor = new Linear(params, 'actor', 4, 2);
    const critic = new Linear(params, 'critic', 4, 1);
    const forward = (g: import('../../nn/graph.ts').Graph) => {
      const h = op.tanh(enc.apply(g.input('x', ['B', 3])));
      return { a: actor.apply(h), v: critic.apply(op.stopGradient(h)) };
    };
    const actorT = await Trainer.create({ model: { params, forward }, loss: (g, o) => ({ loss: mse(o.a, g.input('t', ['B', 2])) }), optimizer: { lr: 0.01 } });
    const criticT = await Trainer.create({ model: { params, forward }, loss: (g, o) => ({ loss: mse(o.v, g.input('r', ['B', 1])) }), optimizer: { lr: 0.03 } });
    return { params, actorT, criticT, ema: new Ema(params, { decay: 0.5 }) };
  };
  const data = (seed: number): Record<string, HostTensor> => {
    const rng = new Rng(seed);
    return {
      x: { data: Float32Array.from({ length: 12 }, () => rng.normal()), shape: [4, 3] },
      t: { data: Float32Array.from({ length: 8 }, () => rng.normal()), shape: [4, 2] },
      r: { data: Float32Array.from({ length: 4 }, () => rng.normal()), shape: [4, 1] },
    };
  };
  const a = await make();
  const stepAll = async (m: Awaited<ReturnType<typeof make>>, seed: number) => {
    await m.actorT.trainStep(data(seed));
    await m.criticT.trainStep(data(seed));
    m.ema.update();
  };
  for (let s = 0; s < 2; s++) await stepAll(a, s);
  const path = join(dir, 'multi.safetensors');
  saveCheckpoint(path, { params: a.params, trainers: { actor: a.actorT, critic: a.criticT }, ema: a.ema });
  for (let s = 2; s < 4; s++) await stepAll(a, s);
  const b = await make();
  const { step } = loadCheckpoint(path, { params: b.params, trainers: { actor: b.actorT, critic: b.criticT }, ema: b.ema });
  assert.equal(step, 2);
  assert.equal(b.criticT.step, 2);
  assert.equal(b.ema.steps, 2);
  for (let s = 2; s < 4; s++) await stepAll(b, s);
  for (const p of a.params.list()) assert.deepEqual(b.params.get(p.name).data, p.data, p.name);
  for (const [name, s] of a.ema.shadow) assert.deepEqual(b.ema.shadow.get(name), s, `ema ${name}`);
  // Asking for an optimizer the file lacks is reported with the rest.
  const c = await make();
  assert.throws(() => loadCheckpoint(path, { params: c.params, trainers: { actor: c.actorT, other: c.criticT } }), /missing optim\.other\.m\/critic\.weight[\s\S]*unexpected optim\.critic\.m/);
});

test('loadWeights reads F16 and BF16 safetensors (widened exactly), renames, and reports all mismatches at once', () => {
  // Half floats: 1.5, -2, the smallest normal 2^-14, the largest 65504, a subnormal 2^-24, -infinity.
  const f16 = Uint16Array.of(0x3e00, 0xc000, 0x0400, 0x7bff, 0x0001, 0xfc00);
  assert.deepEqual(Array.from(f16, halfToFloat), [1.5, -2, 2 ** -14, 65504, 2 ** -24, -Infinity]);
  // bfloat16: the top halves of float32 values 1.0, -0.5, 3.140625.
  const asBf16 = (x: number): number => new Uint32Array(Float32Array.of(x).buffer)[0] >>> 16;
  const bf16 = Uint16Array.from([1, -0.5, 3.140625], asBf16);
  const tensors = new Map<string, StoredTensor>([
    ['vision.w', { dtype: 'F16', shape: [2, 3], data: f16 }],
    ['vision.b', { dtype: 'BF16', shape: [3], data: bf16 }],
    ['text.unused', { dtype: 'F32', shape: [1], data: Float32Array.of(1) }],
  ]);
  const bytes = encodeSafetensors(tensors);
  assert.deepEqual(Array.from(toFloat32({ dtype: 'BF16', shape: [3], data: bf16 })), [1, -0.5, 3.140625]);
  const params = new ParamSet(0);
  const w = params.add('trunk.w', [2, 3], init.zeros());
  const b = params.add('trunk.b', [3], init.zeros());
  const rename = (n: string): string | null => (n.startsWith('vision.') ? `trunk.${n.slice(7)}` : null);
  const r = loadWeights(bytes, params, { rename });
  assert.deepEqual(r.loaded.sort(), ['trunk.b', 'trunk.w']);
  assert.deepEqual(r.unused, ['text.unused']);
  assert.deepEqual(Array.from(w.data), [1.5, -2, 2 ** -14, 65504, 2 ** -24, -Infinity]);
  assert.deepEqual(Array.from(b.data), [1, -0.5, 3.140625]);
  // Strict: a file name with no parameter, a shape mismatch and a parameter left empty, all in one error; nothing changes.
  const other = new ParamSet(0);
  const ow = other.add('vision.w', [3, 2], init.zeros());
  other.add('extra', [1], init.zeros());
  assert.throws(() => loadWeights(bytes, other), (e: Error) => {
    assert.match(e.message, /vision\.w has shape \[2,3\], parameter vision\.w is \[3,2\]/);
    assert.match(e.message, /vision\.b matches no parameter/);
    assert.match(e.message, /no values for 2 parameter\(s\): vision\.w, extra/);
    return true;
  });
  assert.ok(ow.data.every((v) => v === 0));
  // A transpose for weights stored [out, in].
  const t = new ParamSet(0);
  const tw = t.add('trunk.w', [3, 2], init.zeros());
  loadWeights(bytes, t, {
    strict: false,
    rename,
    transform: (name, data, shape) => {
      if (name !== 'trunk.w') return { data, shape };
      const [r0, c0] = shape;
      const out = new Float32Array(data.length);
      for (let i = 0; i < r0; i++) for (let j = 0; j < c0; j++) out[j * r0 + i] = data[i * c0 + j];
      return { data: out, shape: [c0, r0] };
    },
  });
  assert.deepEqual(Array.from(tw.data), [1.5, 65504, -2, 2 ** -24, 2 ** -14, -Infinity]);
});
