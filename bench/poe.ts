/**
 * POE world-model throughput: transitions per second through `PoseWorldModel.observe` (score with
 * the current weights + one AdamW update of the forward and inverse MLPs 13/12 -> 256 -> 256 -> 6/7,
 * batch 256), at 1 thread. Prints one JSON line with the 1-minute load average (the host is
 * shared) and, as an anchor measured in the same run, the same count for a plain nn MLP
 * 256-256-256-8 training step (bench:graph's mlp case) so figures from different loads compare.
 * Usage: npm run bench:poe [-- --seconds=3 --rounds=3]
 */
import { loadavg } from 'node:os';
import { MLP } from '../nn/layers.ts';
import { mse } from '../nn/losses.ts';
import { ParamSet } from '../nn/params.ts';
import { Trainer } from '../nn/trainer.ts';
import { Rng } from '../sim/rng.ts';
import { POSE_DIM } from '../rewards/poe/pose.ts';
import { ACTION_DIM, parsePoeConfig, PoseWorldModel, type Transitions } from '../rewards/poe/world_model.ts';

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const seconds = Number(args.get('seconds') ?? 3);
const rounds = Number(args.get('rounds') ?? 3);
const BATCH = 256;

async function timed(step: () => Promise<unknown>, rows: number): Promise<number> {
  for (let i = 0; i < 5; i++) await step();
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < seconds * 1000) {
    await step();
    n += rows;
  }
  return n / ((performance.now() - t0) / 1000);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const rng = new Rng(1);
const rand = (n: number) => Float32Array.from({ length: n }, () => rng.normal(0, 0.5));
const batch: Transitions = { z: rand(BATCH * POSE_DIM), action: rand(BATCH * ACTION_DIM), zNext: rand(BATCH * POSE_DIM) };
const wm = await PoseWorldModel.create(parsePoeConfig({ batchSize: BATCH, threads: 1 }));

const params = new ParamSet(1);
const net = new MLP(params, 'mlp', [256, 256, 256, 8]);
const anchor = await Trainer.create({
  model: { params, forward: (g) => ({ y: net.apply(g.input('x', ['B', 256])) }) },
  loss: (g, o) => ({ loss: mse(o.y, g.input('t', ['B', 8])) }),
  optimizer: { lr: 1e-3 },
  session: { threads: 1 },
});
const anchorBatch = { x: { data: rand(BATCH * 256), shape: [BATCH, 256] }, t: { data: rand(BATCH * 8), shape: [BATCH, 8] } };

const poeRates: number[] = [];
const anchorRates: number[] = [];
for (let r = 0; r < rounds; r++) {
  poeRates.push(await timed(() => wm.observe(batch), BATCH));
  anchorRates.push(await timed(() => anchor.trainStep(anchorBatch), BATCH));
}
await wm.dispose();
await anchor.dispose();
console.log(
  JSON.stringify({
    bench: 'poe',
    batch: BATCH,
    threads: 1,
    poeUpdateSamplesPerSec: Math.round(median(poeRates)),
    anchorMlp256SamplesPerSec: Math.round(median(anchorRates)),
    load1: Number(loadavg()[0].toFixed(2)),
  }),
);
