/**
 * Simulator throughput: prints one JSON line. One env of the arm + table + 3 blocks scene with a
 * moving arm (scripted sinusoidal joint targets), then 32 envs serially and over worker threads.
 * Also reports where one physics step's time goes (Rapier world.step vs controller vs the rest).
 * Then the contact-rich case (the Stack expert grasping and stacking: share of steps with an arm
 * link touching a block) and a random policy over the same scene (`--contact-only`: just these).
 * Figures depend on machine load; run on an idle machine for comparisons.
 */
import os from 'node:os';
import { createEnv, pinchedObject } from '../sim/env.ts';
import { VecEnv } from '../sim/vec_env.ts';
import { blocksScriptedAction as scriptedAction, blocksTask } from '../tasks/blocks.ts';
import { randomPolicy } from '../sim/explore.ts';
import { getTask } from '../tasks/index.ts';

const PHASES = [0, 1, 2, 3, 4, 5, 6];

/** Wall and CPU seconds of `fn` (CPU time is the fairer figure on a shared, loaded machine). */
function timed(fn: () => void): { wall: number; cpu: number } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  fn();
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1e6 };
}

async function single(controlSteps: number, repeats: number) {
  const env = await createEnv(blocksTask, { maxSteps: 1e9 });
  env.reset({ seed: 1 });
  const q0 = env.state().q.slice();
  let k = 0;
  for (; k < 120; k++) env.step(scriptedAction(q0, PHASES, k, 1 / 60)); // warm-up (JIT)
  // Best of a few runs: other processes on the machine only ever add time.
  let best = { wall: Infinity, cpu: Infinity };
  for (let r = 0; r < repeats; r++) {
    const t = timed(() => {
      for (let i = 0; i < controlSteps; i++, k++) env.step(scriptedAction(q0, PHASES, k, 1 / 60));
    });
    if (t.wall < best.wall) best = t;
  }
  // Breakdown on the same world: Rapier's step alone, the controller alone, per physics step.
  const pw = (env as unknown as { pw: { step(): void } }).pw;
  const ctrl = (env as unknown as { ctrl: { apply(): void; read(): void } }).ctrl;
  const n = 1000;
  const bestOf = (fn: () => void) => [0, 1, 2].map(() => timed(fn)).reduce((a, b) => (b.wall < a.wall ? b : a));
  // Stepping Rapier without the controller would let the last torques run the arm away, so time
  // control + step together and subtract the controller alone.
  const both = bestOf(() => {
    for (let i = 0; i < n; i++) {
      ctrl.read();
      ctrl.apply();
      pw.step();
    }
  });
  const controller = bestOf(() => {
    for (let i = 0; i < n; i++) {
      ctrl.read();
      ctrl.apply();
    }
  });
  env.free();
  const substeps = 4;
  const physics = controlSteps * substeps;
  const us = (sec: number, count: number) => Number(((sec * 1e6) / count).toFixed(1));
  return {
    controlStepsPerSec: Math.round(controlSteps / best.wall),
    physicsStepsPerSec: Math.round(physics / best.wall),
    physicsStepsPerCpuSec: Math.round(physics / best.cpu),
    usPerPhysicsStep: us(best.wall, physics),
    breakdownUsPerPhysicsStep: {
      rapierWorldStep: Number((us(both.wall, n) - us(controller.wall, n)).toFixed(1)),
      controllerReadApply: us(controller.wall, n),
      envStepRest: Number((us(best.wall, physics) - us(both.wall, n)).toFixed(1)),
    },
  };
}

async function vec(numEnvs: number, workers: number, controlSteps: number) {
  const v = await VecEnv.create({ taskModule: new URL('../tasks/index.ts', import.meta.url).href, taskId: 'blocks', numEnvs, workers, config: { maxSteps: 1e9 } });
  const starts = await v.reset(Array.from({ length: numEnvs }, (_, i) => i));
  const q0s = starts.map((r) => r.info.state.q.slice());
  for (let k = 0; k < 10; k++) await v.step(q0s.map((q0) => scriptedAction(q0, PHASES, k, 1 / 60)));
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let k = 0; k < controlSteps; k++) await v.step(q0s.map((q0) => scriptedAction(q0, PHASES, k, 1 / 60)));
  const sec = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  await v.close();
  const out: Record<string, number> = {
    controlStepsPerSec: Math.round((numEnvs * controlSteps) / sec),
    physicsStepsPerSec: Math.round((numEnvs * controlSteps * 4) / sec),
  };
  // With workers, this process's CPU time excludes theirs only when they are idle; report it for serial runs only.
  if (workers === 0) out.physicsStepsPerCpuSec = Math.round((numEnvs * controlSteps * 4) / ((c.user + c.system) / 1e6));
  return out;
}

/**
 * The Stack expert's episodes (seeds 100..) to their end: control steps, the share of them with an
 * arm link on a block, the share run with the finer grasp timestep (both fingers on one object),
 * and physics steps (of 1 / physicsHz) per second.
 */
async function stackExpert(episodes: number, config: { graspSubsteps?: number }) {
  const task = getTask('stack');
  const env = await createEnv(task, config);
  const isArmObject = (c: { object: string }) => c.object !== 'table';
  let steps = 0;
  let contactSteps = 0;
  let pinchSteps = 0;
  let sec = 0;
  let cpu = 0;
  for (let e = 0; e < episodes; e++) {
    let r = env.reset({ seed: 100 + e });
    const expert = task.expert(env.randomization!, env.expertTools());
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    for (;;) {
      if (pinchedObject(r.info.state.contacts) !== null) pinchSteps++;
      const res = env.step(expert.act(r.info.state).action);
      r = { obs: res.obs, info: res.info };
      steps++;
      if (res.info.state.contacts.some(isArmObject)) contactSteps++;
      if (res.terminated || res.truncated) break;
    }
    sec += (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    cpu += (c.user + c.system) / 1e6;
  }
  const substeps = env.config.physicsHz / env.config.controlHz;
  env.free();
  return {
    episodes,
    graspSubsteps: env.config.graspSubsteps,
    controlSteps: steps,
    armObjectContactShare: Number((contactSteps / steps).toFixed(3)),
    pinchShare: Number((pinchSteps / steps).toFixed(3)),
    physicsStepsPerSec: Math.round((steps * substeps) / sec),
    physicsStepsPerCpuSec: Math.round((steps * substeps) / cpu),
  };
}

/**
 * The contact-rich case: the scripted expert grasping and stacking in Stack (episodes to success),
 * with the share of control steps in which an arm link touches a block; and a random policy
 * (uniform joint targets) flailing over the same scene.
 */
async function stackCases(episodes: number) {
  const task = getTask('stack');
  // The anchor in the same run: the same episodes without the finer timestep while pinching.
  // Interleaved rounds, the faster of each kept: the first timed case ran up to ~3x slower than
  // the same case later (JIT, WASM warm-up), and the shared machine's load drifts.
  type Row = Awaited<ReturnType<typeof stackExpert>>;
  const best = (a: Row | null, b: Row) => (a && a.physicsStepsPerCpuSec >= b.physicsStepsPerCpuSec ? a : b);
  let expert: Row | null = null;
  let expertPlain: Row | null = null;
  for (let round = 0; round < 3; round++) {
    expertPlain = best(expertPlain, await stackExpert(episodes, { graspSubsteps: 1 }));
    expert = best(expert, await stackExpert(episodes, {}));
  }
  const random = await createEnv(task, { maxSteps: 300 });
  let rSteps = 0;
  let rContact = 0;
  let rSec = 0;
  for (let e = 0; e < episodes; e++) {
    let r = random.reset({ seed: 200 + e });
    const policy = randomPolicy('uniform_joint', random, 300 + e);
    const t0 = performance.now();
    for (;;) {
      const res = random.step(policy(r.info.state));
      r = { obs: res.obs, info: res.info };
      rSteps++;
      if (res.info.state.contacts.length > 0) rContact++;
      if (res.terminated || res.truncated) break;
    }
    rSec += (performance.now() - t0) / 1000;
  }
  random.free();
  const substeps = random.config.physicsHz / random.config.controlHz;
  return {
    stackExpert: expert,
    stackExpertGraspSubsteps1: expertPlain,
    stackRandomUniformJoint: {
      episodes,
      controlSteps: rSteps,
      anyContactShare: Number((rContact / rSteps).toFixed(3)),
      physicsStepsPerSec: Math.round((rSteps * substeps) / rSec),
    },
  };
}

const workers = Math.max(1, Math.min(os.availableParallelism(), 8));
// --contact-only: just the Stack expert and random-policy cases.
const contactOnly = process.argv.includes('--contact-only');
const contactRich = await stackCases(3);
const one = contactOnly ? undefined : await single(300, 7);
const serial32 = contactOnly ? undefined : await vec(32, 0, 60);
const workers32 = contactOnly ? undefined : await vec(32, workers, 60);
console.log(
  JSON.stringify({
    bench: 'sim',
    scene: 'airbot_play + table + 3 blocks, moving arm, physics 240 Hz, control 60 Hz',
    cpus: os.availableParallelism(),
    loadAverage1m: Number(os.loadavg()[0].toFixed(2)),
    oneEnv: one,
    envs32Serial: serial32,
    envs32Workers: workers32 && { workers, ...workers32 },
    ...contactRich,
  }),
);
