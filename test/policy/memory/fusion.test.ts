import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Graph } from '../../../nn/graph.ts';
import { ParamSet } from '../../../nn/params.ts';
import { ModelRunner } from '../../../nn/runner.ts';
import { Trainer } from '../../../nn/trainer.ts';
import { mse } from '../../../nn/losses.ts';
import { MemoryFusion } from '../../../policy/memory/fusion.ts';
import { gradCheck, weightedSum } from '../../nn/gradcheck.ts';
import * as op from '../../../nn/ops.ts';

const F = 4;
const M = 3;

test('gradients of the fusion (query, key, gate, x and memory) match finite differences', async () => {
  const params = new ParamSet(3);
  const fusion = new MemoryFusion(params, F, { gateBias: 0 });
  await gradCheck(
    (g: Graph) => {
      const x = g.input('x', ['B', F]);
      const memory = g.input('memory', ['B', M, F]);
      const mask = g.input('mask', ['B', M]);
      return { loss: weightedSum(fusion.apply(x, memory, mask)), wrt: [x, memory, ...g.params.map((p) => g.param(p))] };
    },
    { samples: 6, values: { mask: Float64Array.from([1, 1, 0, 1, 0, 0, 1, 1, 1]) } },
  );
  assert.deepEqual(
    params.list().map((p) => p.name).sort(),
    ['memory.gate.bias', 'memory.gate.weight', 'memory.key.bias', 'memory.key.weight', 'memory.query.bias', 'memory.query.weight'],
  );
});

async function runFusion(fusion: MemoryFusion, params: ParamSet, x: Float32Array, memory: Float32Array, mask: Float32Array, b: number) {
  const runner = await ModelRunner.create({
    params,
    forward: (g) => {
      const r = fusion.read(g.input('x', ['B', F]), g.input('memory', ['B', M, F]), g.input('mask', ['B', M]));
      return { h: r.h, gate: r.gate!, attention: r.attention! };
    },
  });
  const out = await runner.run({ x: { data: x, shape: [b, F] }, memory: { data: memory, shape: [b, M, F] }, mask: { data: mask, shape: [b, M] } });
  await runner.dispose();
  return { h: out.h.data as Float32Array, gate: out.gate.data as Float32Array, attention: out.attention.data as Float32Array };
}

test('an empty bank leaves the features untouched; empty slots get no attention', async () => {
  const params = new ParamSet(4);
  const fusion = new MemoryFusion(params, F, { gateBias: 3 });
  const x = Float32Array.from([1, -2, 0.5, 3, 0.1, 0.2, 0.3, 0.4]);
  const memory = new Float32Array(2 * M * F);
  memory.set([9, 9, 9, 9], M * F); // row 1, slot 0 filled
  memory.set([-50, 50, -50, 50], M * F + F); // row 1, slot 1 holds garbage but is masked out
  const mask = Float32Array.from([0, 0, 0, 1, 0, 0]);
  const r = await runFusion(fusion, params, x, memory, mask, 2);
  assert.deepEqual(Array.from(r.h.subarray(0, F)), [1, -2, 0.5, 3]);
  assert.ok(Math.abs(r.attention[M] - 1) < 1e-6 && r.attention[M + 1] < 1e-6);
  // Gate ~ sigmoid(3 + ...) leans on the read [9, 9, 9, 9].
  for (let i = 0; i < F; i++) {
    const g = r.gate[F + i];
    assert.ok(Math.abs(r.h[F + i] - (g * 9 + (1 - g) * x[F + i])) < 1e-4);
  }
});

test('the attention read picks the slot whose key matches the query', async () => {
  const params = new ParamSet(5);
  const fusion = new MemoryFusion(params, F, { gateBias: 20 });
  // Identity query/key maps scaled up: the read is the slot most aligned with x.
  const eye = (s: number) => Float32Array.from({ length: F * F }, (_, i) => (i % (F + 1) === 0 ? s : 0));
  params.get('memory.query.weight').data = eye(10);
  params.get('memory.key.weight').data = eye(10);
  params.get('memory.gate.weight').data = new Float32Array(2 * F * F);
  const x = Float32Array.from([0, 1, 0, 0]);
  const memory = Float32Array.from([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]);
  const r = await runFusion(fusion, params, x, memory, Float32Array.from([1, 1, 1]), 1);
  assert.ok(r.attention[1] > 0.99, `attention ${Array.from(r.attention)}`);
  assert.ok(Math.abs(r.h[1] - 1) < 0.02 && Math.abs(r.h[0]) < 0.02);
});

test('query, key and gate learn to fetch a marked key frame from the bank (training through nn Trainer)', async () => {
  const params = new ParamSet(6);
  const fusion = new MemoryFusion(params, F);
  const trainer = await Trainer.create({
    model: { params, forward: (g) => ({ h: fusion.apply(g.input('x', ['B', F]), g.input('memory', ['B', M, F]), g.input('mask', ['B', M])) }) },
    loss: (g, out) => ({ loss: mse(out.h, g.input('target', ['B', F])) }),
    optimizer: { lr: 3e-2, weightDecay: 0 },
  });
  const b = 16;
  const x = Float32Array.from({ length: b * F }, (_, i) => Math.sin(i * 1.7));
  const memory = Float32Array.from({ length: b * M * F }, (_, i) => Math.cos(i * 0.9));
  const mask = new Float32Array(b * M).fill(1);
  // Target: the slot marked by a large first feature (a key event the read must find by content).
  const target = new Float32Array(b * F);
  for (let r = 0; r < b; r++) {
    const j = r % M;
    memory[(r * M + j) * F] = 3;
    target.set(memory.subarray((r * M + j) * F, (r * M + j + 1) * F), r * F);
  }
  const batch = { x: { data: x, shape: [b, F] }, memory: { data: memory, shape: [b, M, F] }, mask: { data: mask, shape: [b, M] }, target: { data: target, shape: [b, F] } };
  const first = (await trainer.trainStep(batch)).loss;
  let last = first;
  for (let i = 0; i < 300; i++) last = (await trainer.trainStep(batch)).loss;
  await trainer.dispose();
  assert.ok(last < 0.1 * first, `loss ${first} -> ${last}`);
});

test('disabled (the ablation): identity, no parameters, no memory inputs needed', () => {
  const params = new ParamSet(7);
  const fusion = new MemoryFusion(params, F, { enabled: false });
  assert.equal(params.list().length, 0);
  const runner = ModelRunner.create({ params, forward: (g) => ({ h: op.identity(fusion.apply(g.input('x', ['B', F]))) }) });
  return runner.then(async (r) => {
    const out = await r.run({ x: { data: Float32Array.from([1, 2, 3, 4]), shape: [1, F] } });
    assert.deepEqual(Array.from(out.h.data as Float32Array), [1, 2, 3, 4]);
    await r.dispose();
  });
});
