import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MLP } from '../../nn/layers.ts';
import { exportInference, saveInference } from '../../nn/model.ts';
import { ParamSet } from '../../nn/params.ts';
import { createSession, cudaStatus, padBatch } from '../../nn/runtime.ts';

/** Reference ReLU MLP in plain JS, weights [in, out]. */
function referenceMlp(net: MLP, x: Float32Array, batch: number): Float64Array {
  let h = Float64Array.from(x);
  net.layers.forEach((layer, li) => {
    const { inFeatures: nin, outFeatures: nout } = layer;
    const out = new Float64Array(batch * nout);
    for (let b = 0; b < batch; b++) {
      for (let o = 0; o < nout; o++) {
        let s = layer.bias!.data[o];
        for (let i = 0; i < nin; i++) s += h[b * nin + i] * layer.weight.data[i * nout + o];
        out[b * nout + o] = li + 1 < net.layers.length ? Math.max(s, 0) : s;
      }
    }
    h = out;
  });
  return h;
}

test('an exported MLP runs in a fresh session and matches a plain-JS forward pass', async () => {
  const params = new ParamSet(7);
  const net = new MLP(params, 'policy', [7, 32, 32, 7], 'relu');
  const bytes = exportInference({ params, forward: (g) => ({ action: net.apply(g.input('proprio', ['B', 7])) }) });
  const session = await createSession(bytes, { executionProvider: 'cpu', threads: 1 });
  assert.deepEqual(session.inputNames, ['proprio']);
  assert.deepEqual(session.outputNames, ['action']);
  const batch = 5;
  const x = Float32Array.from({ length: batch * 7 }, (_, i) => Math.sin(i * 0.7));
  const { action } = await session.run({ proprio: { data: x, shape: [batch, 7] } });
  assert.deepEqual(action.shape, [batch, 7]);
  const expected = referenceMlp(net, x, batch);
  for (let i = 0; i < expected.length; i++) assert.ok(Math.abs((action.data as Float32Array)[i] - expected[i]) < 1e-5, `element ${i}`);
  await session.dispose();
});

test('saveInference writes a loadable file atomically', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'nn-rt-'));
  try {
    const params = new ParamSet(1);
    const net = new MLP(params, 'm', [3, 4, 2]);
    const path = join(dir, 'sub', 'policy.onnx');
    const n = saveInference({ params, forward: (g) => ({ y: net.apply(g.input('x', ['B', 3])) }) }, path);
    assert.equal(readFileSync(path).length, n);
    const session = await createSession(path);
    const { y } = await session.run({ x: { data: new Float32Array(6), shape: [2, 3] } });
    assert.deepEqual(y.shape, [2, 2]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("executionProvider 'cuda' either runs on CUDA or fails naming the missing provider", async () => {
  const params = new ParamSet(1);
  const net = new MLP(params, 'm', [3, 2]);
  const bytes = exportInference({ params, forward: (g) => ({ y: net.apply(g.input('x', ['B', 3])) }) });
  const status = cudaStatus();
  if (status.available) {
    const session = await createSession(bytes, { executionProvider: 'cuda' });
    assert.equal(session.executionProvider, 'cuda');
  } else {
    await assert.rejects(createSession(bytes, { executionProvider: 'cuda' }), (e: Error) => e.message.includes("'cuda' is not available") && e.message.includes(status.library));
  }
  await assert.rejects(createSession(bytes, { executionProvider: 'tpu' as never }), /'cpu' or 'cuda', got "tpu"/);
  await assert.rejects(createSession(bytes, { threads: 0 }), /threads must be a positive integer, got 0/);
  // Both thread-pool wait policies create working sessions.
  for (const spinning of [true, false]) {
    const s = await createSession(bytes, { threads: 2, spinning });
    const { y } = await s.run({ x: { data: Float32Array.from([1, 2, 3]), shape: [1, 3] } });
    assert.equal(y.data.length, 2);
  }
});

test('run names missing inputs and shape mismatches', async () => {
  const params = new ParamSet(1);
  const net = new MLP(params, 'm', [3, 2]);
  const session = await createSession(exportInference({ params, forward: (g) => ({ y: net.apply(g.input('x', ['B', 3])) }) }));
  await assert.rejects(session.run({}), /missing inputs x/);
  await assert.rejects(session.run({ x: { data: new Float32Array(5), shape: [2, 3] } }), /input "x": 5 values do not fill shape \[2,3\]/);
  await assert.rejects(session.run({ x: { data: new Float32Array(8), shape: [2, 4] } }), /run failed \(cpu\) with inputs x\[2,4\]: .*x/);
});

test('runPadded pads the batch with zeros and cuts the outputs back', async () => {
  const params = new ParamSet(3);
  const net = new MLP(params, 'm', [3, 8, 2]);
  const session = await createSession(exportInference({ params, forward: (g) => ({ y: net.apply(g.input('x', ['B', 3])) }) }));
  const x = { data: Float32Array.from([1, 2, 3, -1, 0.5, 2]), shape: [2, 3] };
  const plain = await session.run({ x });
  const padded = await session.runPadded({ x }, 8);
  assert.deepEqual(padded.y.shape, [2, 2]);
  assert.deepEqual(Array.from(padded.y.data as Float32Array), Array.from(plain.y.data as Float32Array));
  assert.deepEqual(Array.from(padBatch(x, 3).data as Float32Array), [1, 2, 3, -1, 0.5, 2, 0, 0, 0]);
  assert.throws(() => padBatch(x, 1, 'x'), /x has batch 2, more than the padded size 1/);
});
