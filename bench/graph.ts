/**
 * Training throughput of generated ONNX training graphs (forward + backward + AdamW in one graph),
 * run by onnxruntime-node on the CPU. Prints one JSON line.
 *   mlp:         MLP 256-256-256-8 (ReLU), batch 256, MSE, AdamW (warmup, global-norm clipping)
 *   mlpHandWritten: the same step as a lean hand-written graph (reference for the generated one)
 *   transformer: the policy-sized model: 64 image patches (64x64 RGB, 8x8 patches) + 16 text tokens,
 *                width 128, 4 pre-norm blocks (4 heads, MLP 512, GELU), batch 64, MSE on a 7-D action
 * Usage: npm run bench:graph [-- --threads=1,2 --seconds=4 --rounds=4]
 * samplesPerSec is the median over rounds (the host is shared); bestRoundSamplesPerSec the best.
 * cpuMsPerStep is the process's CPU time (user + system, all threads) per step, median over rounds:
 * at 1 thread it barely moves when other jobs take the cores, so it compares runtimes on a busy host.
 */
import { availableParallelism, loadavg } from 'node:os';
import { Rng } from '../sim/rng.ts';
import { Graph, type Tensor } from '../nn/graph.ts';
import { Linear } from '../nn/layers.ts';
import * as op from '../nn/ops.ts';
import { ParamSet } from '../nn/params.ts';
import { mlpBenchModel, transformerBenchModel } from './graph-models.ts';
import { createSession, type HostTensor } from '../nn/runtime.ts';
import { Trainer, type TrainerOptions } from '../nn/trainer.ts';

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const threadCounts = (args.get('threads') ?? '1,2').split(',').map(Number);
const seconds = Number(args.get('seconds') ?? 4);
const rounds = Number(args.get('rounds') ?? 4);

function mlpCase(threads: number): { options: TrainerOptions; batch: Record<string, HostTensor>; batchSize: number } {
  const { model, loss, batch } = mlpBenchModel();
  const b = 256;
  return { options: { model, loss, optimizer: { lr: 1e-3, warmupSteps: 100, clipNorm: 1 }, session: { threads } }, batch: batch(b, 2), batchSize: b };
}

function transformerCase(threads: number): { options: TrainerOptions; batch: Record<string, HostTensor>; batchSize: number } {
  const { model, loss, batch } = transformerBenchModel();
  const b = 64;
  return { options: { model, loss, optimizer: { lr: 3e-4, warmupSteps: 100, clipNorm: 0.5 }, session: { threads } }, batch: batch(b, 4), batchSize: b };
}

/**
 * The reference: the same MLP training step written by hand as lean ONNX (Gemm with fused bias and
 * ReLU-masked gradients, per-parameter Adam with the bias-corrected step size computed in JS, no
 * clipping, no weight decay). Built with the low-level Graph API only, no autodiff.
 */
async function handWrittenMlp(threads: number): Promise<{ step: () => Promise<void>; batchSize: number }> {
  const b = 256;
  const sizes = [256, 256, 256, 8];
  const g = new Graph({ name: 'mlp_hand' });
  const rng = new Rng(2);
  const x = g.input('x', [b, 256]);
  const t = g.input('t', [b, 8]);
  const stepSize = g.input('step_size', []);
  const params = new ParamSet(1);
  const layers = sizes.slice(1).map((out, i) => new Linear(params, `l${i}`, sizes[i], out));
  const acts: Tensor[] = [x];
  const pre: Tensor[] = [];
  layers.forEach((l, i) => {
    const z = op.gemm(acts[i], g.param(l.weight), { c: g.param(l.bias!) });
    pre.push(z);
    acts.push(i + 1 < layers.length ? op.relu(z) : z);
  });
  const diff = op.sub(acts[layers.length], t);
  g.output('loss', op.reduceMean(op.mul(diff, diff)));
  let dz = op.mul(diff, 2 / (b * 8));
  const grads: [Tensor, Tensor][] = [];
  for (let i = layers.length - 1; i >= 0; i--) {
    grads[i] = [op.gemm(acts[i], dz, { transA: true }), op.reduceSum(dz, [0])];
    if (i > 0) dz = op.where(op.greater(pre[i - 1], 0), op.gemm(dz, g.param(layers[i].weight), { transB: true }), 0);
  }
  const state: Record<string, HostTensor> = {};
  layers.forEach((l, i) => {
    [l.weight, l.bias!].forEach((p, k) => {
      const m = g.input(`m.${p.name}`, p.shape);
      const v = g.input(`v.${p.name}`, p.shape);
      const gr = grads[i][k];
      const m2 = op.add(op.mul(m, 0.9), op.mul(gr, 0.1));
      const v2 = op.add(op.mul(v, 0.999), op.mul(op.mul(gr, gr), 0.001));
      g.output(`${p.name}/next`, op.sub(g.param(p), op.mul(op.div(m2, op.add(op.sqrt(v2), 1e-8)), stepSize)));
      g.output(`m.${p.name}/next`, m2);
      g.output(`v.${p.name}/next`, v2);
      state[p.name] = { data: p.data, shape: p.shape };
      state[`m.${p.name}`] = { data: new Float32Array(p.data.length), shape: p.shape };
      state[`v.${p.name}`] = { data: new Float32Array(p.data.length), shape: p.shape };
    });
  });
  const session = await createSession(g.toModel({ params: 'input' }), { threads });
  const batch = {
    x: { data: Float32Array.from({ length: b * 256 }, () => rng.normal()), shape: [b, 256] },
    t: { data: Float32Array.from({ length: b * 8 }, () => rng.normal()), shape: [b, 8] },
  };
  let n = 0;
  return {
    batchSize: b,
    step: async () => {
      n++;
      const lr = (1e-3 * Math.sqrt(1 - 0.999 ** n)) / (1 - 0.9 ** n);
      const out = await session.run({ ...batch, ...state, step_size: { data: Float32Array.of(lr), shape: [] } });
      for (const name of Object.keys(state)) state[name] = out[`${name}/next`];
    },
  };
}

type Timing = { samplesPerSec: number; bestRoundSamplesPerSec: number; msPerStep: number; cpuMsPerStep: number; steps: number };

/**
 * Times several step functions in alternating rounds (so a change in the host's other load hits
 * all of them alike); reports per function the median and the best round.
 */
async function timeInterleaved(cases: { step: () => Promise<unknown>; batchSize: number }[]): Promise<Timing[]> {
  for (const c of cases) for (let i = 0; i < 3; i++) await c.step();
  const perRound: number[][] = cases.map(() => []);
  const cpuPerRound: number[][] = cases.map(() => []);
  const steps = cases.map(() => 0);
  for (let r = 0; r < rounds; r++) {
    for (const [k, c] of cases.entries()) {
      let n = 0;
      const start = performance.now();
      const cpu = process.cpuUsage();
      while (performance.now() - start < (seconds * 1000) / rounds / cases.length || n < 2) {
        await c.step();
        n++;
      }
      perRound[k].push((c.batchSize * n * 1000) / (performance.now() - start));
      const used = process.cpuUsage(cpu);
      cpuPerRound[k].push((used.user + used.system) / 1000 / n);
      steps[k] += n;
    }
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return cases.map((c, k) => {
    const rate = median(perRound[k]);
    return {
      samplesPerSec: Math.round(rate),
      bestRoundSamplesPerSec: Math.round(Math.max(...perRound[k])),
      msPerStep: Number(((c.batchSize * 1000) / rate).toFixed(3)),
      cpuMsPerStep: Number(median(cpuPerRound[k]).toFixed(3)),
      steps: steps[k],
    };
  });
}

async function trainerCase(build: typeof mlpCase, threads: number) {
  const { options, batch, batchSize } = build(threads);
  const t0 = performance.now();
  const trainer = await Trainer.create(options);
  const createMs = performance.now() - t0;
  return {
    step: () => trainer.trainStep(batch),
    batchSize,
    info: { threads, batch: batchSize, params: options.model.params.count, graphBuildAndSessionMs: Math.round(createMs) },
  };
}

const result: Record<string, unknown> = { bench: 'graph', cores: availableParallelism(), loadAverage1m: Number(loadavg()[0].toFixed(2)), mlp: [], mlpHandWritten: [], transformer: [] };
for (const t of threadCounts) {
  const generated = await trainerCase(mlpCase, t);
  const hand = await handWrittenMlp(t);
  const [g, h] = await timeInterleaved([generated, hand]);
  (result.mlp as unknown[]).push({ ...generated.info, ...g });
  (result.mlpHandWritten as unknown[]).push({ threads: t, ...h });
}
for (const t of threadCounts) {
  const c = await trainerCase(transformerCase, t);
  const [timing] = await timeInterleaved([c]);
  (result.transformer as unknown[]).push({ ...c.info, ...timing });
}
result.loadAverage1mEnd = Number(loadavg()[0].toFixed(2));
console.log(JSON.stringify(result));
