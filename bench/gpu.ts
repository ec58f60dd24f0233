/**
 * CPU vs CUDA: the same training step and the same inference on both execution providers, with the
 * results compared and samples/s for each. Prints one JSON line.
 *   train:     MLP 256-256-256-8 (ReLU), batch 256, MSE, AdamW; both providers start from the same
 *              parameters and take the same `--steps` steps on the same batches; compared: the loss
 *              of every step and the final parameters
 *   inference: the trained CPU model exported as ONNX, batch 256 forward on each provider
 * Tolerances (float32; a GPU's reductions sum in another order): relative error <= 1e-3 on losses
 * and outputs, max |param difference| <= 1e-3 * max |param|. ONNX Runtime's CUDA provider may use
 * TF32 matrix multiplies on Ampere and newer GPUs, which can exceed these; `equal` says so if it
 * happens. Without a usable CUDA provider the CPU half still runs and `cuda.reason` says why.
 * Usage: npm run bench:gpu [-- --steps=20 --seconds=3 --threads=0]  (threads 0: ONNX Runtime's choice)
 */
import { loadavg } from 'node:os';
import { MLP } from '../nn/layers.ts';
import { mse } from '../nn/losses.ts';
import { exportInference, type ModelDefinition } from '../nn/model.ts';
import { ParamSet } from '../nn/params.ts';
import { createSession, cudaStatus, type ExecutionProvider, type HostTensor } from '../nn/runtime.ts';
import { Trainer } from '../nn/trainer.ts';
import { Rng } from '../sim/rng.ts';

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const steps = Number(args.get('steps') ?? 20);
const seconds = Number(args.get('seconds') ?? 3);
const threadsArg = Number(args.get('threads') ?? 0);
const threads = threadsArg > 0 ? threadsArg : undefined;
const B = 256;

function model(): { model: ModelDefinition; params: ParamSet } {
  const params = new ParamSet(1);
  const net = new MLP(params, 'mlp', [256, 256, 256, 8], 'relu');
  return { params, model: { params, forward: (g) => ({ y: net.apply(g.input('x', ['B', 256])) }) } };
}

const rng = new Rng(7);
const batches = Array.from({ length: steps }, () => ({
  x: { data: Float32Array.from({ length: B * 256 }, () => rng.normal()), shape: [B, 256] } as HostTensor,
  t: { data: Float32Array.from({ length: B * 8 }, () => rng.normal()), shape: [B, 8] } as HostTensor,
}));

async function timed(fn: () => Promise<unknown>): Promise<number> {
  await fn();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    await fn();
    n++;
  }
  return (n * B) / ((performance.now() - t0) / 1000);
}

async function runOn(ep: ExecutionProvider) {
  const m = model();
  const trainer = await Trainer.create({ model: m.model, loss: (g, o) => ({ loss: mse(o.y, g.input('t', ['B', 8])) }), optimizer: { lr: 1e-3 }, session: { executionProvider: ep, threads } });
  const losses: number[] = [];
  for (const b of batches) losses.push((await trainer.trainStep(b)).loss);
  const params = Float32Array.from(m.params.list().flatMap((p) => Array.from(p.data)));
  // The model after the compared steps (the timing loop below moves the parameters on).
  const exported = exportInference(m.model);
  const trainSamplesPerSec = await timed(() => trainer.trainStep(batches[0]));
  await trainer.dispose();
  return { losses, params, exported, trainSamplesPerSec };
}

async function infer(ep: ExecutionProvider, bytes: Uint8Array) {
  const s = await createSession(bytes, { executionProvider: ep, threads });
  const out = (await s.run({ x: batches[0].x }, ['y'])).y.data as Float32Array;
  const inferSamplesPerSec = await timed(() => s.run({ x: batches[0].x }, ['y']));
  await s.dispose();
  return { out, inferSamplesPerSec };
}

const maxRel = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / Math.max(1e-6, Math.abs(b[i])));
  return m;
};
const maxAbs = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
};

const cpu = await runOn('cpu');
const exported = cpu.exported;
const cpuInfer = await infer('cpu', exported);
const status = cudaStatus();
let cuda: Record<string, unknown> = { available: false, reason: status.reason };
if (status.available) {
  try {
    const g = await runOn('cuda');
    const gi = await infer('cuda', exported);
    const lossRel = maxRel(g.losses, cpu.losses);
    const paramDiff = Math.max(...Array.from(g.params, (v, i) => Math.abs(v - cpu.params[i])));
    const outRel = maxRel(gi.out, cpuInfer.out);
    cuda = {
      available: true,
      trainSamplesPerSec: Math.round(g.trainSamplesPerSec),
      inferSamplesPerSec: Math.round(gi.inferSamplesPerSec),
      maxLossRelErr: lossRel,
      maxParamAbsDiff: paramDiff,
      maxOutputRelErr: outRel,
      equal: lossRel <= 1e-3 && outRel <= 1e-3 && paramDiff <= 1e-3 * maxAbs(cpu.params),
    };
  } catch (err) {
    cuda = { available: false, reason: `the CUDA provider library is installed but failed: ${(err as Error).message.split('\n')[0]}` };
  }
}
console.log(
  JSON.stringify({
    bench: 'gpu',
    model: 'MLP 256-256-256-8, batch 256',
    steps,
    threads: threads ?? 'ort-default',
    loadavg1m: Number(loadavg()[0].toFixed(2)),
    cpu: { trainSamplesPerSec: Math.round(cpu.trainSamplesPerSec), inferSamplesPerSec: Math.round(cpuInfer.inferSamplesPerSec), finalLoss: cpu.losses.at(-1) },
    cuda,
  }),
);
