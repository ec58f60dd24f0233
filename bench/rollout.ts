/**
 * Rollout throughput of the PPO loop as `evovla train` runs it: prints one JSON line.
 *
 * Stack, 2 cameras at 64x64 (RGB), envs in 2 worker processes, the tiny VLA's frozen trunk
 * (default model config, seeded random weights: the speed does not depend on them) batched over the
 * envs, the memory bank + fusion and heads, SAR (the default scorer architecture; initial weights)
 * and POE trained online. It runs policy/train/ppo.ts's collectRollout with each part
 * wrapped in a timer:
 * - `envStep`: awaiting VecEnv.step (physics + render in the workers + IPC of images and actions);
 * - `trunk`: the trunk's batched forward (+ image conversion); `memory`: the bank;
 * - `rewardsSarPoe`: the reward model (SAR's image embedding + gate; POE's forward + online update);
 * - `reset`: auto-resets; `heads`: the rest (heads inference, sampling, bookkeeping).
 * `physicsAlone` / `renderAlone`: one env's step without cameras and the two cameras' render, timed
 * in this process, so the worker side of `envStep` can be split. `update`: PPO update samples/s of
 * the heads + memory gate on cached features (epochs x minibatches of 256 over the rollout).
 *
 * Usage: node --import tsx bench/rollout.ts [--envs 8] [--steps 256] [--workers 2]
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { createEnv } from '../sim/env.ts';
import { attachEnvCameras } from '../sim/render/env_cameras.ts';
import { ENV_CAMERAS_MODULE } from '../sim/render/vec_cameras.ts';
import { VecEnv } from '../sim/vec_env.ts';
import { getTask } from '../tasks/index.ts';
import { Rng } from '../sim/rng.ts';
import { ModelRunner } from '../nn/runner.ts';
import { Trainer } from '../nn/trainer.ts';
import { parsePoeConfig, PoseWorldModel } from '../rewards/poe/world_model.ts';
import { parseSarConfig } from '../rewards/sar/config.ts';
import { SarNetwork } from '../rewards/sar/model.ts';
import { SarScorer, sarTokenizer, textLayout } from '../rewards/sar/scorer.ts';
import { sarStageScorer } from '../policy/train/sar_phase.ts';
import { MemoryBank, parseMemoryBankConfig } from '../policy/memory/bank.ts';
import { evovlaRewards } from '../policy/train/evovla_rewards.ts';
import { collectRollout, parsePpoConfig, ppoLoss, rolloutContext, startEpisodes, type ObservationEncoder, type RewardModel, type RolloutEnv } from '../policy/train/ppo.ts';
import { vlaEncoder, vlaPpoModel } from '../policy/train/vla_ppo.ts';
import { defaultVlaConfig } from '../policy/vla/config.ts';
import { createVla, identityStats } from '../policy/vla/model.ts';
import { taskTokenizer } from '../policy/vla/tokenizer.ts';

const { values: args } = parseArgs({
  options: { envs: { type: 'string', default: '8' }, steps: { type: 'string', default: '256' }, workers: { type: 'string', default: '2' } },
});
const N = Number(args.envs);
const STEPS = Number(args.steps);
const WORKERS = Number(args.workers);
const TASK = 'stack';
const SIZE = 64;
const task = getTask(TASK);
const cameras = ['eye_side', 'eye_arm'].map((name) => ({ name, width: SIZE, height: SIZE, depth: false, segmentation: false }));
const load0 = os.loadavg();

const timers: Record<string, number> = { envStep: 0, trunk: 0, memory: 0, rewards: 0, reset: 0 };
async function timed<T>(key: string, f: () => Promise<T> | T): Promise<T> {
  const t0 = performance.now();
  try {
    return await f();
  } finally {
    timers[key] += performance.now() - t0;
  }
}

const cfg = defaultVlaConfig();
const vla = createVla(cfg, taskTokenizer({ buckets: cfg.tokenizerBuckets, maxLength: cfg.maxTokens }), identityStats(), 0);
const model = vlaPpoModel(vla, 8);
const vec = await VecEnv.create({ taskModule: new URL('../tasks/index.ts', import.meta.url).href, taskId: TASK, numEnvs: N, workers: WORKERS, config: { cameras, maxSteps: 400 }, envSetupModule: ENV_CAMERAS_MODULE });
const poe = await PoseWorldModel.create(parsePoeConfig({}));
// A SAR scorer of the default architecture with its initial weights (the speed does not depend on them).
const sarCfg = parseSarConfig({});
const layout = textLayout(task.stages);
const sarTok = sarTokenizer(layout);
const sarNet = new SarNetwork(sarCfg.model, sarTok.vocabSize, sarTok.maxLength);
const sarScorer = await SarScorer.fromModel(sarNet.inference(), {
  format: 'evovla.sar',
  task: task.id,
  imageSize: sarCfg.model.imageSize,
  embedDim: sarCfg.model.embedDim,
  tau: sarCfg.tau,
  gate: { ...sarCfg.gate },
  alpha: sarCfg.alpha,
  tokenizer: sarTok.toJSON(),
  layout,
  nearMissStates: true,
});
const rewards = evovlaRewards({ task, numEnvs: N, sar: sarStageScorer(sarScorer), poe });
const bank = new MemoryBank(N, cfg.width, parseMemoryBankConfig({ slots: 8 }));
const inner = await vlaEncoder(vla, { task, numEnvs: N, threads: 1, bank, stageScore: rewards.stageScore, sarStage: rewards.sarStage });
const env: RolloutEnv = {
  numEnvs: N,
  reset: (s) => timed('reset', () => vec.reset(s)),
  resetEnvs: (s) => timed('reset', () => vec.resetEnvs(s)),
  step: (a) => timed('envStep', () => vec.step(a)),
};
const encoder: ObservationEncoder = {
  encode: async (items) => {
    const before = inner.trunkMs;
    const t0 = performance.now();
    const out = await inner.encode(items);
    const all = performance.now() - t0;
    const trunk = inner.trunkMs - before;
    timers.trunk += trunk;
    // What encode spent outside the trunk's run: image conversion and the bank.
    timers.memory += all - trunk;
    return out;
  },
};
const timedRewards: RewardModel = { ...rewards, step: (items) => timed('rewards', () => rewards.step(items)) };
const config = parsePpoConfig({ rolloutSteps: N * STEPS, minibatchSize: Math.min(256, N * STEPS) });
const runner = await ModelRunner.create(model.actorCritic.model, { threads: 1 });
const ctx = rolloutContext({ config, env, actorCritic: model.actorCritic, encoder, rewards: timedRewards, actionMap: model.actionMap }, runner);
const cur = await startEpisodes(ctx);
// Warm-up rollout (JIT, sessions, shader compiles), then the timed one.
await collectRollout(ctx, cur);
for (const k of Object.keys(timers)) timers[k] = 0;
const t0 = performance.now();
const ro = await collectRollout(ctx, cur);
const wall = performance.now() - t0;
await runner.dispose();
await inner.dispose();
await vec.close();
await poe.dispose();
await sarScorer.dispose();

// The PPO update on this rollout's cached inputs.
const trainer = await Trainer.create({ model: model.actorCritic.model, loss: ppoLoss(config, 7), optimizer: { lr: 3e-4, clipNorm: 0.5 }, session: { threads: 1 } });
const B = Math.min(256, N * STEPS);
const rng = new Rng(1);
const rows = Array.from({ length: B }, () => rng.int(N * STEPS));
const gather = (src: Float32Array, w: number): Float32Array => {
  const o = new Float32Array(B * w);
  rows.forEach((r, i) => o.set(src.subarray(r * w, (r + 1) * w), i * w));
  return o;
};
const batch: Record<string, { data: Float32Array; shape: number[] }> = {
  actions: { data: gather(ro.actions, 7), shape: [B, 7] },
  old_log_prob: { data: gather(ro.logProbs, 1), shape: [B] },
  advantages: { data: Float32Array.from({ length: B }, () => rng.normal()), shape: [B] },
  returns_ext: { data: gather(ro.valuesExt, 1), shape: [B] },
  returns_int: { data: gather(ro.valuesInt, 1), shape: [B] },
};
for (const [name, shape] of Object.entries(model.actorCritic.inputShapes)) batch[name] = { data: gather(ro.inputs[name], shape.reduce((a, b) => a * b, 1)), shape: [B, ...shape] };
for (let i = 0; i < 3; i++) await trainer.trainStep(batch);
const u0 = performance.now();
const updates = 20;
for (let i = 0; i < updates; i++) await trainer.trainStep(batch);
const updateRate = (updates * B) / ((performance.now() - u0) / 1000);
await trainer.dispose();

// Physics and rendering alone, in this process, for the split of envStep.
const single = await createEnv(task, { maxSteps: 1e6, cameras });
const cams = await attachEnvCameras(single);
single.reset({ seed: 1 });
const hold = [...single.state().q, 0.04];
for (let i = 0; i < 20; i++) single.step(hold);
const state = single.state();
let r0 = performance.now();
for (let i = 0; i < 100; i++) cams!.rig.render(state);
const renderMs = (performance.now() - r0) / 100;
cams!.detach();
r0 = performance.now();
for (let i = 0; i < 100; i++) single.step(hold);
const physicsMs = (performance.now() - r0) / 100;
single.free();

const steps = N * STEPS;
const per = (ms: number): number => +(ms / steps).toFixed(3);
const accounted = timers.envStep + timers.trunk + timers.memory + timers.rewards + timers.reset;
console.log(
  JSON.stringify({
    bench: 'rollout',
    task: TASK,
    envs: N,
    workers: WORKERS,
    cameras: `2 x ${SIZE}x${SIZE} RGB`,
    stages: ['physics', 'render', 'trunk (tiny VLA, default config)', 'memory bank + fusion', 'heads', 'SAR (default scorer architecture)', 'POE (online)'],
    envStepsPerSecond: Math.round(steps / (wall / 1000)),
    msPerEnvStep: {
      envStep: per(timers.envStep),
      trunk: per(timers.trunk),
      memoryAndImages: per(timers.memory),
      rewardsSarPoe: per(timers.rewards),
      reset: per(timers.reset),
      headsAndRest: per(wall - accounted),
      total: per(wall),
    },
    workerSideAlone: { physicsMsPerEnvStep: +physicsMs.toFixed(3), renderMsPerEnvStep: +renderMs.toFixed(3), note: `over ${WORKERS} workers the ideal env-step share is (physics + render) / ${WORKERS}` },
    update: { samplesPerSecond: Math.round(updateRate), minibatch: B },
    loadAverage: { start: load0.map((x) => +x.toFixed(2)), end: os.loadavg().map((x) => +x.toFixed(2)) },
    cpus: os.cpus().length,
  }),
);
