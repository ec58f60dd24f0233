/**
 * Training throughput of generated ONNX training graphs (forward + backward + AdamW in one graph),
 * run by onnxruntime-node on the CPU. Prints one JSON line.
 *   mlp:         MLP 256-256-256-8 (ReLU), batch 256, MSE, AdamW
 *   transformer: the policy-sized model: 64 image patches (64x64 RGB, 8x8 patches) + 16 text tokens,
 *                width 128, 4 pre-norm blocks (4 heads, MLP 512, GELU), batch 64, MSE on a 7-D action
 * Usage: npm run bench:graph [-- --threads=1,2 --seconds=4 --rounds=4]
 * samplesPerSec is the median over rounds (the host is shared); bestRoundSamplesPerSec the best.
 */
import { availableParallelism, loadavg } from 'node:os';
import { Rng } from '../sim/rng.ts';
import { Embedding, LayerNorm, Linear, MLP, TransformerBlock, keyMaskBias, patchify } from '../nn/layers.ts';
import { mse } from '../nn/losses.ts';
import * as op from '../nn/ops.ts';
import { ParamSet, init } from '../nn/params.ts';
import type { HostTensor } from '../nn/runtime.ts';
import { Trainer, type TrainerOptions } from '../nn/trainer.ts';

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const threadCounts = (args.get('threads') ?? '1,2').split(',').map(Number);
const seconds = Number(args.get('seconds') ?? 4);
const rounds = Number(args.get('rounds') ?? 4);

function mlpCase(threads: number): { options: TrainerOptions; batch: Record<string, HostTensor>; batchSize: number } {
  const params = new ParamSet(1);
  const net = new MLP(params, 'mlp', [256, 256, 256, 8], 'relu');
  const rng = new Rng(2);
  const b = 256;
  return {
    options: {
      model: { params, forward: (g) => ({ y: net.apply(g.input('x', ['B', 256])) }) },
      loss: (g, o) => ({ loss: mse(o.y, g.input('t', ['B', 8])) }),
      optimizer: { lr: 1e-3, warmupSteps: 100, clipNorm: 1 },
      session: { threads },
    },
    batch: {
      x: { data: Float32Array.from({ length: b * 256 }, () => rng.normal()), shape: [b, 256] },
      t: { data: Float32Array.from({ length: b * 8 }, () => rng.normal()), shape: [b, 8] },
    },
    batchSize: b,
  };
}

function transformerCase(threads: number): { options: TrainerOptions; batch: Record<string, HostTensor>; batchSize: number } {
  const width = 128;
  const textLen = 16;
  const patches = 64;
  const params = new ParamSet(3);
  const patchEmbed = new Linear(params, 'patch', 3 * 8 * 8, width);
  const tok = new Embedding(params, 'tok', 512, width);
  const pos = params.add('pos', [patches + textLen, width], init.truncatedNormal(0.02), { decay: false });
  const blocks = Array.from({ length: 4 }, (_, i) => new TransformerBlock(params, `blk${i}`, width, 4, 4, 'gelu'));
  const lnf = new LayerNorm(params, 'lnf', width);
  const head = new Linear(params, 'action', width, 7);
  const rng = new Rng(4);
  const b = 64;
  return {
    options: {
      model: {
        params,
        forward: (g) => {
          const image = patchEmbed.apply(patchify(g.input('image', ['B', 3, 64, 64]), 8));
          const text = tok.apply(g.input('text', ['B', textLen], 'int64'));
          const textMask = g.input('text_mask', ['B', textLen]);
          // Image patches are always attended; text padding is masked.
          const keyMask = op.pad(textMask, [0, patches, 0, 0], 1);
          let h = op.add(op.concat([image, text], 1), g.param(pos));
          const bias = keyMaskBias(keyMask);
          for (const blk of blocks) h = blk.apply(h, bias);
          return { action: head.apply(op.reduceMean(lnf.apply(h), [1])) };
        },
      },
      loss: (g, o) => ({ loss: mse(o.action, g.input('target', ['B', 7])) }),
      optimizer: { lr: 3e-4, warmupSteps: 100, clipNorm: 0.5 },
      session: { threads },
    },
    batch: {
      image: { data: Float32Array.from({ length: b * 3 * 64 * 64 }, () => rng.next()), shape: [b, 3, 64, 64] },
      text: { data: BigInt64Array.from({ length: b * textLen }, () => BigInt(rng.int(512))), shape: [b, textLen] },
      text_mask: { data: Float32Array.from({ length: b * textLen }, (_, i) => (i % textLen < 10 ? 1 : 0)), shape: [b, textLen] },
      target: { data: Float32Array.from({ length: b * 7 }, () => rng.normal()), shape: [b, 7] },
    },
    batchSize: b,
  };
}

/** Steps in `rounds` timed rounds; reports the median and best round (the host is shared and noisy). */
async function measure(build: typeof mlpCase, threads: number): Promise<Record<string, number>> {
  const { options, batch, batchSize } = build(threads);
  const t0 = performance.now();
  const trainer = await Trainer.create(options);
  const createMs = performance.now() - t0;
  for (let i = 0; i < 3; i++) await trainer.trainStep(batch);
  const perRound: number[] = [];
  let steps = 0;
  for (let r = 0; r < rounds; r++) {
    let n = 0;
    const start = performance.now();
    while (performance.now() - start < (seconds * 1000) / rounds || n < 2) {
      await trainer.trainStep(batch);
      n++;
    }
    perRound.push((batchSize * n * 1000) / (performance.now() - start));
    steps += n;
  }
  await trainer.dispose();
  perRound.sort((a, b) => a - b);
  const median = perRound[Math.floor(perRound.length / 2)];
  return {
    threads,
    samplesPerSec: Math.round(median),
    bestRoundSamplesPerSec: Math.round(perRound[perRound.length - 1]),
    msPerStep: Number(((batchSize * 1000) / median).toFixed(3)),
    steps,
    batch: batchSize,
    params: options.model.params.count,
    graphBuildAndSessionMs: Math.round(createMs),
  };
}

const result: Record<string, unknown> = { bench: 'graph', cores: availableParallelism(), loadAverage1m: Number(loadavg()[0].toFixed(2)), mlp: [], transformer: [] };
for (const t of threadCounts) (result.mlp as unknown[]).push(await measure(mlpCase, t));
for (const t of threadCounts) (result.transformer as unknown[]).push(await measure(transformerCase, t));
console.log(JSON.stringify(result));
