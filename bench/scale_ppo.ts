/**
 * Distributed PPO's rollout throughput: env steps/s of the VLA PPO rollout (frozen trunk on both
 * cameras, memory bank, POE curiosity; policy/train/ppo.ts's collectRollout) in one process, and
 * of 1 and 2 local `evovla worker` processes publishing format-2 segments through a private
 * nats-server to a learner that only consumes (its update republishes the same weights); and the
 * segment bytes per env step. The model is the config's default VLA with fresh weights (throughput
 * does not depend on what it learned); SAR is off (it would need a trained scorer). Prints one JSON
 * line with the 1-minute load average; on a host with fewer free cores than workers the figures
 * show contention, not the transport.
 * Usage: npm run bench:scale-ppo [-- --task=stack --envs=2 --seconds=20 --workers=1,2]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ModelRunner } from '../nn/runner.ts';
import { parseTrainConfig } from '../policy/train/config.ts';
import { collectRollout, parsePpoConfig, ppoConfigSchema, rolloutContext, startEpisodes } from '../policy/train/ppo.ts';
import { vlaPpoModel } from '../policy/train/vla_ppo.ts';
import { createVla, identityStats } from '../policy/vla/model.ts';
import { taskTokenizer } from '../policy/vla/tokenizer.ts';
import { Learner } from '../scale/learner.ts';
import { learnerRate } from './learner_rate.ts';
import { encodeContext, encodeParams, segmentBytesPerStep, type PpoRunContext } from '../scale/ppo.ts';
import { vlaRolloutBuilder } from '../scale/ppo_worker.ts';
import { CONTEXT_KEY, CONTEXT_OBJECT, decodePpoSegment, type PpoSegment } from '../scale/protocol.ts';
import { startNatsServer } from '../scale/server.ts';

const args = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=') as [string, string]));
const task = args.get('task') ?? 'stack';
const envs = Number(args.get('envs') ?? 2);
const seconds = Number(args.get('seconds') ?? 20);
const workerCounts = (args.get('workers') ?? '1,2').split(',').map(Number);
const segmentSteps = 16;
const BIN = fileURLToPath(new URL('../bin/evovla.mjs', import.meta.url));

// The run: the default VLA, one PPO phase (SAR off, POE and memory on), envs stepped in-thread.
const train = parseTrainConfig({ name: 'bench', task, phases: [{ kind: 'ppo', sar: false, envs, workers: 0 }] });
const phase = train.phases[0] as Extract<(typeof train.phases)[number], { kind: 'ppo' }>;
const stats = identityStats();
const vla = createVla(train.model, taskTokenizer({ buckets: train.model.tokenizerBuckets, maxLength: train.model.maxTokens }), stats, 0);
const model = vlaPpoModel(vla, phase.memorySlots);
const ppoKeys = Object.keys(ppoConfigSchema.shape);
const ppo = parsePpoConfig({ ...Object.fromEntries(Object.entries(phase).filter(([k]) => ppoKeys.includes(k))), rolloutSteps: envs * segmentSteps, minibatchSize: envs * segmentSteps });
const context: PpoRunContext = {
  format: 'evovla.ppo-context',
  version: 1,
  task,
  segmentSteps,
  envs,
  ppo,
  actionSize: model.actorCritic.actionSize,
  inputShapes: Object.fromEntries(Object.entries(model.actorCritic.inputShapes).map(([k, s]) => [k, [...s]])),
  params: encodeParams(vla.params, 'all'),
  builder: 'vla',
  spec: { train: JSON.parse(JSON.stringify(train)) as unknown, phaseIndex: 0, normStats: stats, sar: null },
};
const trained = encodeParams(vla.params, 'trained');

/** The worker's rollout loop (same builder, same collectRollout) without the transport. */
async function inProcess(): Promise<number> {
  const parts = await vlaRolloutBuilder(context, { numEnvs: envs, threads: 1, log: () => undefined });
  const runner = await ModelRunner.create(parts.actorCritic.model, { threads: 1 });
  try {
    const ctx = rolloutContext({ config: ppo, env: parts.env, actorCritic: parts.actorCritic, encoder: parts.encoder, rewards: parts.rewards, actionMap: parts.actionMap }, runner);
    const cur = await startEpisodes(ctx);
    await collectRollout(ctx, cur); // warm-up, like the workers' first segment
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < seconds * 1000) {
      await collectRollout(ctx, cur);
      await parts.rewards.afterRollout?.();
      n += envs * segmentSteps;
    }
    return n / ((performance.now() - t0) / 1000);
  } finally {
    await runner.dispose();
    await parts.close();
  }
}

async function throughNats(k: number): Promise<{ stepsPerSec: number; bytesPerStep: number }> {
  const store = mkdtempSync(join(tmpdir(), 'evovla-bench-nats-'));
  const server = await startNatsServer({ storeDir: store });
  const run = `benchppo${k}`;
  const learner = await Learner.start<PpoSegment>({
    url: server.url,
    run,
    initialWeights: trained,
    segmentsPerUpdate: 1,
    staleness: { maxVersions: 1000, mode: 'drop' },
    decode: decodePpoSegment,
    beforePublish: async (res) => {
      await res.weights.putBlob({ name: CONTEXT_OBJECT }, encodeContext(context));
      await res.kv.put(CONTEXT_KEY, JSON.stringify({ object: CONTEXT_OBJECT }));
    },
    update: async () => trained,
    log: () => undefined,
  });
  const procs: ChildProcess[] = [];
  try {
    for (let w = 0; w < k; w++) procs.push(spawn(process.execPath, [BIN, 'worker', '--nats', server.url, '--run', run, '--worker-id', String(w), '--envs', String(envs)], { stdio: 'ignore' }));
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
  nats[`workers${k}`] = { stepsPerSec: Number(r.stepsPerSec.toFixed(1)), bytesPerStep: Math.round(r.bytesPerStep) };
}
console.log(
  JSON.stringify({
    bench: 'scale-ppo',
    task,
    model: { width: train.model.width, imageSize: train.model.imageSize, cameras: train.model.cameras, memorySlots: phase.memorySlots },
    envsPerWorker: envs,
    segmentSteps,
    seconds,
    /** Float32 payload per transition before msgpack framing. */
    payloadBytesPerStep: segmentBytesPerStep(model.actorCritic.inputShapes, model.actorCritic.actionSize),
    inProcessStepsPerSec: Number(base.toFixed(1)),
    nats,
    loadavg1m: [load0, load1, loadavg()[0]].map((l) => Number(l.toFixed(2))),
  }),
);
