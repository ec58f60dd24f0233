/**
 * Simulator throughput: prints one JSON line. One env of the arm + table + 3 blocks scene with a
 * moving arm (scripted sinusoidal joint targets), then 32 envs serially and over worker threads.
 * Also reports where one physics step's time goes (Rapier world.step vs controller vs the rest).
 * Figures depend on machine load; run on an idle machine for comparisons.
 */
import os from 'node:os';
import { createEnv } from '../sim/env.ts';
import { scriptedAction } from '../sim/scripted.ts';
import { VecEnv } from '../sim/vec_env.ts';
import { blocksTask } from '../tasks/blocks.ts';

const PHASES = [0, 1, 2, 3, 4, 5, 6];

async function single(controlSteps: number) {
  const env = await createEnv(blocksTask, { maxSteps: 1e9 });
  env.reset({ seed: 1 });
  const q0 = env.state().q.slice();
  for (let k = 0; k < 60; k++) env.step(scriptedAction(q0, PHASES, k, 1 / 60)); // warm-up
  const t0 = performance.now();
  for (let k = 0; k < controlSteps; k++) env.step(scriptedAction(q0, PHASES, k, 1 / 60));
  const sec = (performance.now() - t0) / 1000;
  // Breakdown: time Rapier's step alone and the controller alone on the same world.
  const pw = (env as unknown as { pw: { world: { step(): void } } }).pw;
  const ctrl = (env as unknown as { ctrl: { apply(): void; read(): void } }).ctrl;
  const n = 2000;
  let t = performance.now();
  for (let i = 0; i < n; i++) pw.world.step();
  const rapierUs = ((performance.now() - t) * 1000) / n;
  t = performance.now();
  for (let i = 0; i < n; i++) {
    ctrl.read();
    ctrl.apply();
  }
  const controllerUs = ((performance.now() - t) * 1000) / n;
  env.free();
  const substeps = 4;
  const physicsUs = (sec * 1e6) / (controlSteps * substeps);
  return {
    controlStepsPerSec: Math.round(controlSteps / sec),
    physicsStepsPerSec: Math.round((controlSteps * substeps) / sec),
    usPerPhysicsStep: Number(physicsUs.toFixed(1)),
    breakdownUs: {
      rapierStep: Number(rapierUs.toFixed(1)),
      controllerReadApply: Number(controllerUs.toFixed(1)),
      perControlStepOverhead: Number(((physicsUs - rapierUs - controllerUs) * substeps).toFixed(1)),
    },
  };
}

async function vec(numEnvs: number, workers: number, controlSteps: number) {
  const v = await VecEnv.create({ taskId: 'blocks', numEnvs, workers, config: { maxSteps: 1e9 } });
  const starts = await v.reset(Array.from({ length: numEnvs }, (_, i) => i));
  const q0s = starts.map((r) => r.info.state.q.slice());
  for (let k = 0; k < 10; k++) await v.step(q0s.map((q0) => scriptedAction(q0, PHASES, k, 1 / 60)));
  const t0 = performance.now();
  for (let k = 0; k < controlSteps; k++) await v.step(q0s.map((q0) => scriptedAction(q0, PHASES, k, 1 / 60)));
  const sec = (performance.now() - t0) / 1000;
  await v.close();
  return { controlStepsPerSec: Math.round((numEnvs * controlSteps) / sec), physicsStepsPerSec: Math.round((numEnvs * controlSteps * 4) / sec) };
}

const workers = Math.max(1, Math.min(os.availableParallelism(), 8));
const one = await single(1500);
const serial32 = await vec(32, 0, 60);
const workers32 = await vec(32, workers, 60);
console.log(
  JSON.stringify({
    bench: 'sim',
    scene: 'airbot_play + table + 3 blocks, moving arm, physics 240 Hz, control 60 Hz',
    cpus: os.availableParallelism(),
    oneEnv: one,
    envs32Serial: serial32,
    envs32Workers: { workers, ...workers32 },
  }),
);
