/**
 * Rollout throughput: prints one JSON line.
 *
 * `endToEnd`: env steps/s of the PPO rollout loop on Stack with two 64x64 RGB cameras, envs in 2
 * worker processes, batched policy inference in the main process (the stage list says what runs in
 * the loop). `breakdown`: what one env step costs, each part timed alone in this process (ms per
 * env step): physics (env.step without cameras), render (the two cameras), policy (batched
 * inference / N), and, when present, SAR, POE, memory. `transferAndOther` is the end-to-end time per
 * step not explained by the parts given the 2 workers (IPC of observations and actions, waiting).
 * `update`: PPO update samples/s for the heads on cached features (minibatch 256).
 *
 * Usage: node --import tsx bench/rollout.ts [--envs 8] [--steps 200] [--workers 2]
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { createEnv } from '../sim/env.ts';
import { attachEnvCameras } from '../sim/render/env_cameras.ts';
import { ENV_CAMERAS_MODULE } from '../sim/render/vec_cameras.ts';
import { VecEnv } from '../sim/vec_env.ts';
import { getTask } from '../tasks/index.ts';
import { ModelRunner } from '../nn/runner.ts';
import { Trainer } from '../nn/trainer.ts';
import { Rng } from '../sim/rng.ts';
import { AC_OUTPUTS, parsePpoConfig, ppoLoss } from '../policy/train/ppo.ts';
import { mlpActorCritic } from '../policy/train/state_policy.ts';

const { values: args } = parseArgs({
  options: { envs: { type: 'string', default: '8' }, steps: { type: 'string', default: '200' }, workers: { type: 'string', default: '2' } },
});
const N = Number(args.envs);
const STEPS = Number(args.steps);
const WORKERS = Number(args.workers);
const TASK = 'stack';
const SIZE = 64;
const FEATURES = 128;
const TASKS_MODULE = new URL('../tasks/index.ts', import.meta.url).href;
const cameras = ['eye_side', 'eye_arm'].map((name) => ({ name, width: SIZE, height: SIZE, depth: false, segmentation: false }));

function msPer(n: number, fn: () => void): number {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) / n;
}

/** The actor-critic of the loop: heads over 128-d features (the VLA's heads have this shape). */
const ac = mlpActorCritic({ featureSize: FEATURES, actionSize: 7, hidden: [256, 256], seed: 0 });

async function endToEnd(): Promise<{ stepsPerSecond: number; msPerStep: number; msPolicyPerStep: number }> {
  const vec = await VecEnv.create({ taskModule: TASKS_MODULE, taskId: TASK, numEnvs: N, workers: WORKERS, config: { cameras, maxSteps: 1e6 }, envSetupModule: ENV_CAMERAS_MODULE });
  const runner = await ModelRunner.create(ac.model, { threads: 1 });
  try {
    const starts = await vec.reset(Array.from({ length: N }, (_, i) => i));
    const q0 = starts.map((s) => Array.from(s.obs.proprio));
    const rng = new Rng(0);
    const features = new Float32Array(N * FEATURES);
    let policyMs = 0;
    const run = async (steps: number): Promise<void> => {
      for (let t = 0; t < steps; t++) {
        const p0 = performance.now();
        // Stand-in features from the images (what the trunk reads), so the transfer is real work.
        const obs = t === 0 ? starts.map((s) => s.obs) : last;
        obs.forEach((o, i) => {
          const rgb = o.images!.eye_side.rgb;
          for (let j = 0; j < FEATURES; j++) features[i * FEATURES + j] = rgb[(j * 97) % rgb.length] / 255;
        });
        const out = await runner.run({ features: { data: features, shape: [N, FEATURES] } }, [AC_OUTPUTS.mean]);
        const mean = out[AC_OUTPUTS.mean].data as Float32Array;
        policyMs += performance.now() - p0;
        const actions = q0.map((q, i) => q.map((v, j) => v + 0.05 * Math.tanh(mean[i * 7 + j]) + 0.01 * rng.normal()));
        last = (await vec.step(actions)).results.map((r) => r.obs);
      }
    };
    let last = starts.map((s) => s.obs);
    await run(10); // warm-up
    policyMs = 0;
    const t0 = performance.now();
    await run(STEPS);
    const wall = performance.now() - t0;
    return { stepsPerSecond: Math.round((STEPS * N) / (wall / 1000)), msPerStep: wall / (STEPS * N), msPolicyPerStep: policyMs / (STEPS * N) };
  } finally {
    await runner.dispose();
    await vec.close();
  }
}

async function parts(): Promise<Record<string, number>> {
  const task = getTask(TASK);
  const env = await createEnv(task, { maxSteps: 1e6, cameras });
  const cams = await attachEnvCameras(env);
  if (!cams) throw new Error('cameras did not attach');
  env.reset({ seed: 1 });
  const q0 = Array.from(env.state().q);
  const hold = [...q0, 0.04];
  for (let i = 0; i < 20; i++) env.step(hold);
  const state = env.state();
  const render = msPer(STEPS, () => {
    for (let i = 0; i < STEPS; i++) cams.rig.render(state);
  });
  cams.detach();
  const physics = msPer(STEPS, () => {
    for (let i = 0; i < STEPS; i++) env.step(hold);
  });
  env.free();
  const runner = await ModelRunner.create(ac.model, { threads: 1 });
  const feats = { data: new Float32Array(N * FEATURES).fill(0.1), shape: [N, FEATURES] };
  for (let i = 0; i < 10; i++) await runner.run({ features: feats });
  const t0 = performance.now();
  for (let i = 0; i < STEPS; i++) await runner.run({ features: feats });
  const policy = (performance.now() - t0) / (STEPS * N);
  await runner.dispose();
  return { physics, render, policy };
}

async function updateRate(): Promise<number> {
  const cfg = parsePpoConfig({});
  const trainer = await Trainer.create({ model: ac.model, loss: ppoLoss(cfg, 7), optimizer: { lr: 3e-4, clipNorm: 0.5 }, session: { threads: 1 } });
  const B = 256;
  const rng = new Rng(1);
  const f = (n: number): Float32Array => Float32Array.from({ length: n }, () => rng.normal() * 0.1);
  const batch = {
    features: { data: f(B * FEATURES), shape: [B, FEATURES] },
    actions: { data: f(B * 7), shape: [B, 7] },
    old_log_prob: { data: f(B), shape: [B] },
    advantages: { data: f(B), shape: [B] },
    returns_ext: { data: f(B), shape: [B] },
    returns_int: { data: f(B), shape: [B] },
  };
  for (let i = 0; i < 5; i++) await trainer.trainStep(batch);
  const steps = 40;
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) await trainer.trainStep(batch);
  const rate = (steps * B) / ((performance.now() - t0) / 1000);
  await trainer.dispose();
  return Math.round(rate);
}

const e2e = await endToEnd();
const p = await parts();
const upd = await updateRate();
// With W workers stepping in parallel, physics + render cost (sum) / W of wall time per env step.
const explained = (p.physics + p.render) / Math.max(1, WORKERS) + e2e.msPolicyPerStep;
console.log(
  JSON.stringify({
    bench: 'rollout',
    task: TASK,
    envs: N,
    workers: WORKERS,
    cameras: `2 x ${SIZE}x${SIZE} RGB`,
    stages: ['physics', 'render', 'policy (heads on stand-in features)'],
    endToEnd: { envStepsPerSecond: e2e.stepsPerSecond, msPerEnvStep: +e2e.msPerStep.toFixed(3) },
    breakdownMsPerEnvStep: {
      physics: +p.physics.toFixed(3),
      render: +p.render.toFixed(3),
      policy: +p.policy.toFixed(3),
      policyInLoop: +e2e.msPolicyPerStep.toFixed(3),
      transferAndOther: +(e2e.msPerStep - explained).toFixed(3),
    },
    update: { samplesPerSecond: upd, minibatch: 256 },
    loadAverage: os.loadavg().map((x) => +x.toFixed(2)),
    cpus: os.cpus().length,
  }),
);
