/**
 * The cost of the NATS transport: rollout env steps/s of 1, 2 and 3 local `evovla worker` processes
 * publishing segments through a private nats-server to a learner that only consumes (its update
 * republishes the same weights), against the same rollout loop (ONNX policy act + noise + VecEnv
 * step) in one process without NATS; and segment bytes per env step. Prints one JSON line.
 * Each worker is one process stepping its envs in its own thread, so on a host with fewer free
 * cores than workers the figures show contention, not the transport; loadavg1m is recorded.
 * Usage: npm run bench:scale [-- --task=stack --envs=4 --segment-steps=32 --seconds=10 --workers=1,2,3]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tinyPolicyBytes } from '../robot/policies/tiny_mlp.ts';
import { Learner } from '../scale/learner.ts';
import { learnerRate } from './learner_rate.ts';
import { onnxPolicyLoader } from '../scale/policy.ts';
import { startNatsServer } from '../scale/server.ts';
import { Rng } from '../sim/rng.ts';
import { VecEnv } from '../sim/vec_env.ts';

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const task = args.get('task') ?? 'stack';
const envs = Number(args.get('envs') ?? 4);
const segSteps = Number(args.get('segment-steps') ?? 32);
const seconds = Number(args.get('seconds') ?? 10);
const workerCounts = (args.get('workers') ?? '1,2,3').split(',').map(Number);
const BIN = fileURLToPath(new URL('../bin/evovla.mjs', import.meta.url));
const weights = tinyPolicyBytes({ seed: 1 });

/** The worker's rollout loop without the transport. */
async function inProcess(): Promise<number> {
  const vec = await VecEnv.create({ taskModule: new URL('../tasks/index.ts', import.meta.url).href, taskId: task, numEnvs: envs, config: { maxSteps: 1e9 } });
  const policy = await onnxPolicyLoader(weights, 1);
  const rng = new Rng(1);
  let obs = (await vec.reset(Array.from({ length: envs }, (_, i) => i))).map((r) => r.obs);
  const step = async () => {
    const acts = (await policy.act(obs)).map((a) => Array.from(a, (v, j) => (j < 6 ? v + 0.02 * rng.normal() : v)));
    obs = (await vec.step(acts)).results.map((r) => r.obs);
  };
  // Warm-up like the workers' (their first segment is not timed): one segment's steps.
  for (let t = 0; t < segSteps; t++) await step();
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < seconds * 1000) {
    await step();
    n += envs;
  }
  const rate = n / ((performance.now() - t0) / 1000);
  await policy.close();
  await vec.close();
  return rate;
}

async function throughNats(k: number): Promise<{ stepsPerSec: number; bytesPerStep: number }> {
  const store = mkdtempSync(join(tmpdir(), 'evovla-bench-nats-'));
  const server = await startNatsServer({ storeDir: store });
  const run = `bench${k}`;
  const learner = await Learner.start({ url: server.url, run, initialWeights: weights, segmentsPerUpdate: 4, staleness: { maxVersions: 1000, mode: 'drop' }, update: async () => weights, log: () => undefined });
  const procs: ChildProcess[] = [];
  try {
    for (let w = 0; w < k; w++) {
      const argv = [BIN, 'worker', '--nats', server.url, '--run', run, '--worker-id', String(w), '--task', task, '--envs', String(envs), '--segment-steps', String(segSteps), '--max-steps', '1000000000'];
      procs.push(spawn(process.execPath, argv, { stdio: 'ignore' }));
    }
    return await learnerRate(learner, k, seconds);
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await learner.close();
    await server.stop();
    rmSync(store, { recursive: true, force: true });
  }
}

const load0 = loadavg()[0];
const base = await inProcess();
const load1 = loadavg()[0];
const nats: Record<string, { stepsPerSec: number; bytesPerStep: number }> = {};
for (const k of workerCounts) {
  const r = await throughNats(k);
  nats[`workers${k}`] = { stepsPerSec: Math.round(r.stepsPerSec), bytesPerStep: Math.round(r.bytesPerStep) };
}
console.log(
  JSON.stringify({
    bench: 'scale',
    task,
    envsPerWorker: envs,
    segmentSteps: segSteps,
    seconds,
    inProcessStepsPerSec: Math.round(base),
    nats,
    /** 1-minute load average: start, after the in-process run, end. */
    loadavg1m: [load0, load1, loadavg()[0]].map((l) => Number(l.toFixed(2))),
  }),
);
