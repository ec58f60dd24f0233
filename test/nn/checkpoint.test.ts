import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Rng } from '../../sim/rng.ts';
import { decodeSafetensors, encodeSafetensors, loadCheckpoint, saveCheckpoint } from '../../nn/checkpoint.ts';
import { MLP } from '../../nn/layers.ts';
import { mse } from '../../nn/losses.ts';
import { ParamSet } from '../../nn/params.ts';
import { Trainer } from '../../nn/trainer.ts';

async function setup(sizes: number[], seed = 1) {
  const params = new ParamSet(seed);
  const net = new MLP(params, 'mlp', sizes, 'tanh');
  const trainer = await Trainer.create({
    model: { params, forward: (g) => ({ y: net.apply(g.input('x', ['B', sizes[0]])) }) },
    loss: (g, o) => ({ loss: mse(o.y, g.input('t', ['B', sizes[sizes.length - 1]])) }),
    optimizer: { lr: 1e-2, warmupSteps: 3 },
  });
  return { params, trainer };
}

function batches(n: number) {
  const rng = new Rng(4);
  return Array.from({ length: n }, () => ({
    x: { data: Float32Array.from({ length: 8 * 3 }, () => rng.normal()), shape: [8, 3] },
    t: { data: Float32Array.from({ length: 8 * 2 }, () => rng.normal()), shape: [8, 2] },
  }));
}

test('resuming from a checkpoint continues training exactly', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nn-ckpt-'));
  try {
    const data = batches(6);
    const a = await setup([3, 8, 2]);
    const sampler = new Rng(77);
    for (const b of data.slice(0, 3)) await a.trainer.trainStep(b);
    sampler.next();
    const path = join(dir, 'ckpt.safetensors');
    saveCheckpoint(path, { params: a.params, trainer: a.trainer, rngs: { sampler }, metadata: { run: 'test' } });
    assert.deepEqual(readdirSync(dir), ['ckpt.safetensors'], 'no temp file is left behind');
    const expectedDraw = sampler.next();
    for (const b of data.slice(3)) await a.trainer.trainStep(b);

    const b = await setup([3, 8, 2], 999); // different initial weights: the checkpoint must overwrite them
    const sampler2 = new Rng(1);
    const { metadata, step } = loadCheckpoint(path, { params: b.params, trainer: b.trainer, rngs: { sampler: sampler2 } });
    assert.equal(step, 3);
    assert.equal(metadata.run, 'test');
    assert.equal(b.trainer.step, 3);
    assert.equal(sampler2.next(), expectedDraw);
    for (const batch of data.slice(3)) await b.trainer.trainStep(batch);
    for (const p of a.params.list()) assert.deepEqual(Array.from(b.params.get(p.name).data), Array.from(p.data), p.name);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('loading into a different model lists every difference and changes nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nn-ckpt-'));
  try {
    const a = await setup([3, 8, 2]);
    const path = join(dir, 'ckpt.safetensors');
    saveCheckpoint(path, { params: a.params, trainer: a.trainer });
    const other = new ParamSet(2);
    new MLP(other, 'mlp', [3, 16, 2, 2], 'tanh');
    const before = other.get('mlp.0.weight').data;
    assert.throws(
      () => loadCheckpoint(path, { params: other }),
      (e: Error) =>
        e.message.includes('mlp.0.weight has shape [3,8], the model has [3,16]') &&
        e.message.includes('missing mlp.2.weight [2,2]') &&
        !e.message.includes('mlp.1.bias') &&
        e.message.includes('mlp.1.weight has shape [8,2], the model has [16,2]'),
    );
    assert.equal(other.get('mlp.0.weight').data, before);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a truncated checkpoint is reported as such', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nn-ckpt-'));
  try {
    const a = await setup([3, 8, 2]);
    const path = join(dir, 'ckpt.safetensors');
    saveCheckpoint(path, { params: a.params });
    const bytes = readFileSync(path);
    writeFileSync(path, bytes.subarray(0, bytes.length - 10));
    assert.throws(() => loadCheckpoint(path, { params: a.params }), /lies outside the file; truncated\?/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('safetensors encoding: aligned data, round trip of F32/F64/I64 and metadata', () => {
  const tensors = new Map([
    ['a', { dtype: 'F32' as const, shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) }],
    ['b', { dtype: 'F64' as const, shape: [3], data: Float64Array.from([0.1, 0.2, 0.3]) }],
    ['c', { dtype: 'I64' as const, shape: [], data: BigInt64Array.from([7n]) }],
  ]);
  const bytes = encodeSafetensors(tensors, { k: 'v' });
  const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + headerLength) % 8, 0);
  const { tensors: back, metadata } = decodeSafetensors(bytes);
  assert.deepEqual(metadata, { k: 'v' });
  assert.deepEqual(Array.from(back.get('a')!.data as Float32Array), [1, 2, 3, 4]);
  assert.deepEqual(Array.from(back.get('b')!.data as Float64Array), [0.1, 0.2, 0.3]);
  assert.equal((back.get('c')!.data as BigInt64Array)[0], 7n);
  assert.deepEqual(back.get('a')!.shape, [2, 2]);
});
