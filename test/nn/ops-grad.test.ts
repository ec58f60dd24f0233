import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as op from '../../nn/ops.ts';
import { gradients } from '../../nn/autodiff.ts';
import { Graph, type Tensor } from '../../nn/graph.ts';
import { createSession } from '../../nn/runtime.ts';
import { gradCheck, weightedSum } from './gradcheck.ts';

/** Checks d/dx sum(w * f(inputs)) for an op applied to freshly declared inputs. */
function unaryCase(name: string, f: (x: Tensor) => Tensor, shape: (number | string)[] = ['B', 4], values?: (n: number) => number) {
  test(`gradient of ${name}`, async () => {
    const size = shape.map((d) => (typeof d === 'number' ? d : 3)).reduce((a, b) => a * b, 1);
    const opts = values ? { values: { x: Float64Array.from({ length: size }, (_, i) => values(i)) } } : {};
    const r = await gradCheck((g) => {
      const x = g.input('x', shape);
      return { loss: weightedSum(f(x)), wrt: [x] };
    }, opts);
    assert.ok(r.checked > 0);
  });
}

function binaryCase(name: string, f: (a: Tensor, b: Tensor) => Tensor, sa: (number | string)[], sb: (number | string)[], values?: Record<string, Float64Array>) {
  test(`gradient of ${name} ${JSON.stringify(sa)} with ${JSON.stringify(sb)}`, async () => {
    await gradCheck(
      (g) => {
        const a = g.input('a', sa);
        const b = g.input('b', sb);
        return { loss: weightedSum(f(a, b)), wrt: [a, b] };
      },
      values ? { values } : {},
    );
  });
}

// Inputs kept away from kinks (|x| >= 0.2) so central differences do not straddle them.
const awayFromZero = (i: number): number => (i % 2 ? 1 : -1) * (0.2 + ((i * 0.37) % 1.3));
const positive = (i: number): number => 0.3 + ((i * 0.61) % 2);

binaryCase('Add', op.add, ['B', 3, 4], [4]);
binaryCase('Add', op.add, [3, 1], [1, 4]);
binaryCase('Sub', op.sub, ['B', 1, 4], [5, 1]);
binaryCase('Mul', op.mul, ['B', 3, 4], [3, 1]);
binaryCase('Div', op.div, [2, 3], [3], { a: Float64Array.from({ length: 6 }, (_, i) => i - 2.5), b: Float64Array.from([0.7, -1.3, 2.1]) });
binaryCase('Min', op.minimum, [3, 4], [4], { a: Float64Array.from({ length: 12 }, (_, i) => i * 0.3 - 1.7), b: Float64Array.from([0.05, -0.4, 1.01, 0.52]) });
binaryCase('Max', op.maximum, [3, 4], [4], { a: Float64Array.from({ length: 12 }, (_, i) => i * 0.3 - 1.7), b: Float64Array.from([0.05, -0.4, 1.01, 0.52]) });
binaryCase('MatMul 2-D', op.matmul, [3, 4], [4, 5]);
binaryCase('MatMul 3-D x 2-D (weight)', op.matmul, ['B', 3, 4], [4, 5]);
binaryCase('MatMul batched 4-D', op.matmul, ['B', 2, 3, 4], ['B', 2, 4, 5]);
binaryCase('MatMul broadcast batch', op.matmul, [2, 3, 4], [1, 4, 5]);
binaryCase('Gemm transA', (a, b) => op.gemm(a, b, { transA: true }), [4, 3], [4, 5]);
binaryCase('Gemm transB', (a, b) => op.gemm(a, b, { transB: true }), [3, 4], [5, 4]);
binaryCase('Gemm transA transB', (a, b) => op.gemm(a, b, { transA: true, transB: true }), [4, 3], [5, 4]);
binaryCase('Concat axis 1', (a, b) => op.concat([a, b, a], 1), ['B', 2, 3], ['B', 4, 3]);
binaryCase('Sum', (a, b) => op.sum([a, b, a]), ['B', 3], [3]);
binaryCase('Where', (a, b) => op.where(op.greater(a, 0), a, b), [3, 4], [4]);

unaryCase('Neg', op.neg);
unaryCase('Exp', op.exp);
unaryCase('Log', op.log, ['B', 4], positive);
unaryCase('Sqrt', op.sqrt, ['B', 4], positive);
unaryCase('Reciprocal', op.reciprocal, ['B', 4], positive);
unaryCase('Pow 3', (x) => op.pow(x, 3));
unaryCase('Pow 0.5', (x) => op.pow(x, 0.5), ['B', 4], positive);
unaryCase('Abs', op.abs, ['B', 4], awayFromZero);
unaryCase('Tanh', op.tanh);
unaryCase('Sigmoid', op.sigmoid);
unaryCase('Relu', op.relu, ['B', 4], awayFromZero);
unaryCase('Clip', (x) => op.clip(x, -0.5, 0.7), ['B', 6], (i) => [-1.2, -0.3, 0.1, 0.4, 0.9, 2][i % 6]);
unaryCase('ReduceSum all', (x) => op.reduceSum(x));
unaryCase('ReduceSum axis 1 keepdims', (x) => op.reduceSum(x, [1], true), ['B', 4, 2]);
unaryCase('ReduceSum axes 0,2', (x) => op.reduceSum(x, [0, 2]), ['B', 4, 2]);
unaryCase('ReduceMean static axis', (x) => op.reduceMean(x, [-1]), ['B', 4]);
unaryCase('ReduceMean over the symbolic batch', (x) => op.reduceMean(x, [0]), ['B', 4]);
unaryCase('Reshape', (x) => op.reshape(x, [0, 2, -1]), ['B', 6]);
unaryCase('Transpose', (x) => op.transpose(x, [2, 0, 1]), ['B', 3, 2]);
unaryCase('Unsqueeze', (x) => op.unsqueeze(x, [1]), ['B', 3]);
unaryCase('Squeeze', (x) => op.squeeze(x, [1]), ['B', 1, 3]);
unaryCase('Slice', (x) => op.slice(x, [1, 0], [4, -1], [1, 2]), ['B', 5, 3]);
test('gradient of Expand', async () => {
  await gradCheck((g) => {
    const x = g.input('x', [1, 3]);
    const like = g.input('like', ['B', 3]);
    return { loss: weightedSum(op.mul(op.expand(x, like), like)), wrt: [x] };
  });
});
unaryCase('Pad', (x) => op.pad(x, [0, 2, 1, 0, 1, 0], 0.5), ['B', 3, 2]);
unaryCase('Split (one piece unused)', (x) => {
  const [a, , c] = op.split(x, [1, 2, 1], 1);
  return op.concat([op.mul(a, c), c], 1);
}, ['B', 4, 2]);
unaryCase('Softmax', (x) => op.softmax(x, -1), ['B', 5]);
unaryCase('Softmax axis 1', (x) => op.softmax(x, 1), ['B', 4, 2]);
unaryCase('LogSoftmax', (x) => op.logSoftmax(x, -1), ['B', 5]);
test('gradient of Cast (float64 -> float32 -> float64: looser tolerance)', async () => {
  await gradCheck(
    (g) => {
      const x = g.input('x', ['B', 4]);
      return { loss: weightedSum(op.cast(op.exp(op.cast(x, 'float32')), 'float64')), wrt: [x] };
    },
    { h: 1e-3, rtol: 2e-3, atol: 1e-5 },
  );
});

test('gradient of Erf (float32 kernel between casts: looser tolerance)', async () => {
  await gradCheck(
    (g) => {
      const x = g.input('x', ['B', 4]);
      return { loss: weightedSum(op.erf(x)), wrt: [x] };
    },
    { h: 1e-3, rtol: 2e-3, atol: 1e-5 },
  );
});

test('gradient of Gather (embedding table)', async () => {
  await gradCheck(
    (g) => {
      const table = g.input('table', [6, 3]);
      const ids = g.input('ids', ['B', 4], 'int64');
      return { loss: weightedSum(op.gather(table, ids)), wrt: [table] };
    },
    { values: { ids: BigInt64Array.from([0n, 2n, 2n, 5n, 1n, 0n, 3n, 3n, 4n, 5n, 5n, 2n]) }, samples: 18 },
  );
});

test('gradient of LayerNormalization (float64 recomputes the statistics)', async () => {
  await gradCheck((g) => {
    const x = g.input('x', ['B', 5, 8]);
    const scale = g.input('scale', [8]);
    const bias = g.input('bias', [8]);
    return { loss: weightedSum(op.layerNorm(x, scale, bias)), wrt: [x, scale, bias] };
  });
});

test('a tensor used several times accumulates its gradient contributions', async () => {
  await gradCheck((g: Graph) => {
    const x = g.input('x', ['B', 3]);
    const y = op.add(op.mul(x, op.tanh(x)), op.exp(op.mul(x, 0.3)));
    return { loss: weightedSum(op.mul(y, x)), wrt: [x] };
  });
});

test('stopGradient blocks the gradient: d/dx sum(x * stop(x)) = x, not 2x', async () => {
  const g = new Graph({ floatType: 'float64' });
  const x = g.input('x', [4]);
  const [dx] = gradients(op.reduceSum(op.mul(x, op.stopGradient(x))), [x]);
  g.output('dx', dx);
  const session = await createSession(g.toModel({ params: 'input' }));
  const values = Float64Array.from([0.5, -1, 2, 3]);
  const { dx: out } = await session.run({ x: { data: values, shape: [4] } });
  assert.deepEqual(Array.from(out.data as Float64Array), Array.from(values));
});

test('an op without a gradient rule on the path is named in the error', () => {
  const g = new Graph({ floatType: 'float64' });
  const x = g.input('x', [4]);
  const [y] = g.addNode('Floor', [x], {}, [{ shape: [4], dtype: 'float64' }]);
  assert.throws(() => gradients(op.reduceSum(y), [x]), /op Floor .* has no gradient rule/);
});

test('shape errors name both shapes', () => {
  const g = new Graph();
  const a = g.input('a', ['B', 3]);
  const b = g.input('b', [4]);
  assert.throws(() => op.add(a, b), /Add: shapes \[B,3\] and \[4\] do not broadcast/);
  assert.throws(() => op.matmul(a, g.input('w', [4, 2])), /MatMul: inner dimensions differ: \[B,3\] x \[4,2\]/);
});
