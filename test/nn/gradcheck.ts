/**
 * Finite-difference gradient checks for nn/ graphs, in float64. The graph under test is built with
 * floatType float64; its analytic gradients (autodiff) are compared with central differences of
 * the loss, run through ONNX Runtime as well.
 */
import assert from 'node:assert/strict';
import { Rng } from '../../sim/rng.ts';
import { gradients } from '../../nn/autodiff.ts';
import { Graph, Tensor } from '../../nn/graph.ts';
import { mul, reduceSum } from '../../nn/ops.ts';
import { createSession, type HostData, type HostTensor } from '../../nn/runtime.ts';

export interface GradCheckOptions {
  /** Elements checked per tensor (spread over the tensor). Default 12. */
  samples?: number;
  /** Central-difference step. Default 1e-6. */
  h?: number;
  /** Pass when |analytic - numeric| <= atol + rtol * |numeric|. Defaults 1e-7 and 1e-5. */
  atol?: number;
  rtol?: number;
  /** Runtime value of symbolic dims (default B = 3). */
  dims?: Record<string, number>;
  seed?: number;
  /** Custom values for named inputs (default: N(0, 1) for floats). */
  values?: Record<string, HostData>;
  /** Trace as a training graph (layers use their training-graph layouts). Default false. */
  training?: boolean;
}

/** Outcome of a check, for messages. */
export interface GradCheckReport {
  checked: number;
  maxAbsErr: number;
  maxRelErr: number;
}

/**
 * Builds a float64 graph with `build` (which declares inputs and returns a scalar loss and the
 * tensors to differentiate, inputs or parameters), then asserts analytic == numeric gradients.
 */
export async function gradCheck(build: (g: Graph) => { loss: Tensor; wrt: Tensor[] }, options: GradCheckOptions = {}): Promise<GradCheckReport> {
  const g = new Graph({ floatType: 'float64', name: 'gradcheck', training: options.training ?? false });
  const { loss, wrt } = build(g);
  const grads = gradients(loss, wrt);
  g.output('loss', loss);
  grads.forEach((d, i) => g.output(`grad/${i}`, d));
  const session = await createSession(g.toModel({ params: 'input' }), { threads: 1 });

  const rng = new Rng(options.seed ?? 1);
  const dims = { B: 3, ...options.dims };
  const resolve = (shape: readonly (number | string)[]): number[] =>
    shape.map((d) => {
      if (typeof d === 'number') return d;
      const v = dims[d as keyof typeof dims];
      if (v === undefined) throw new Error(`gradCheck: no value for dim ${d}`);
      return v;
    });
  const feeds: Record<string, HostTensor> = {};
  for (const t of g.inputs) {
    const shape = resolve(t.shape);
    const size = shape.reduce((a, b) => a * b, 1);
    const given = options.values?.[t.name];
    if (given) {
      assert.equal(given.length, size, `values for ${t.name}`);
      feeds[t.name] = { data: given, shape };
    } else if (t.dtype === 'float64') feeds[t.name] = { data: Float64Array.from({ length: size }, () => rng.normal()), shape };
    else throw new Error(`gradCheck: give values for non-float input ${t.name}`);
  }
  for (const p of g.params) {
    feeds[p.name] = { data: options.values?.[p.name] ?? Float64Array.from(p.data), shape: [...p.shape] };
  }
  const out = await session.run(feeds);
  const lossAt = async (): Promise<number> => ((await session.run(feeds, ['loss'])).loss.data as Float64Array)[0];

  const h = options.h ?? 1e-6;
  const atol = options.atol ?? 1e-7;
  const rtol = options.rtol ?? 1e-5;
  const samples = options.samples ?? 12;
  let maxAbsErr = 0;
  let maxRelErr = 0;
  let checked = 0;
  for (let i = 0; i < wrt.length; i++) {
    const t = wrt[i];
    const feed = feeds[t.name];
    assert.ok(feed, `gradCheck: ${t.name} must be a graph input or parameter`);
    const x = feed.data as Float64Array;
    const analytic = out[`grad/${i}`].data as Float64Array;
    assert.equal(analytic.length, x.length, `gradient of ${t.name} has ${analytic.length} values for ${x.length}`);
    const count = Math.min(samples, x.length);
    for (let s = 0; s < count; s++) {
      const k = count === x.length ? s : Math.floor(((s + rng.next()) * x.length) / count);
      const orig = x[k];
      x[k] = orig + h;
      const up = await lossAt();
      x[k] = orig - h;
      const down = await lossAt();
      x[k] = orig;
      const numeric = (up - down) / (2 * h);
      const err = Math.abs(analytic[k] - numeric);
      maxAbsErr = Math.max(maxAbsErr, err);
      maxRelErr = Math.max(maxRelErr, err / Math.max(Math.abs(numeric), 1e-12));
      checked++;
      assert.ok(
        err <= atol + rtol * Math.abs(numeric),
        `d loss / d ${t.name}[${k}]: analytic ${analytic[k]} vs numeric ${numeric} (error ${err.toExponential(2)})`,
      );
    }
  }
  await session.dispose();
  return { checked, maxAbsErr, maxRelErr };
}

/** A fixed random weighting, so sum(w * f(x)) has a non-trivial gradient for every element. */
export function weightedSum(y: Tensor, seed = 99): Tensor {
  const g = y.graph;
  const shape = y.shape.map((d) => (typeof d === 'number' ? d : 1));
  const size = shape.reduce((a, b) => a * b, 1);
  const rng = new Rng(seed);
  const w = g.constantData(Float64Array.from({ length: size }, () => rng.normal()), shape);
  return reduceSum(mul(y, w));
}
