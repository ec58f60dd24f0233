/**
 * Camera throughput: prints one JSON line. For 128x128 and 224x224, the blocks scene with the
 * arm moving (scripted joint targets), both cameras ('eye_side' fixed, 'eye_arm' on the wrist)
 * producing RGB + depth + segmentation:
 * - `withSim`: env.step() with images attached to each observation (what a rollout pays);
 * - `renderOnly`: the two cameras re-rendered on the latest state (the rendering alone);
 * - `simOnly`: env.step() without cameras, for reference.
 * Rates are camera pairs (both cameras) per second, best of a few runs, wall time; CPU seconds
 * are reported too because the machine is shared (`cpuBoundPairsPerSecondWithSim` is the rate one
 * unshared core would give). Target: >= 400 pairs/s at 128x128.
 */
import os from 'node:os';
import { createEnv } from '../sim/env.ts';
import { attachEnvCameras } from '../sim/render/env_cameras.ts';
import { blocksScriptedAction as scriptedAction, blocksTask } from '../tasks/blocks.ts';

const PHASES = [0, 1, 2, 3, 4, 5, 6];
const REPEATS = 3;

function best(n: number, fn: () => void): { perSecond: number; cpuSecondsPerItem: number } {
  let wall = Infinity;
  let cpu = Infinity;
  for (let r = 0; r < REPEATS; r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    fn();
    const w = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    if (w < wall) {
      wall = w;
      cpu = (c.user + c.system) / 1e6;
    }
  }
  return { perSecond: Math.round(n / wall), cpuSecondsPerItem: Number((cpu / n).toExponential(3)) };
}

async function measure(size: number, steps: number) {
  const cameras = [
    { name: 'eye_side', width: size, height: size },
    { name: 'eye_arm', width: size, height: size },
  ];
  const env = await createEnv(blocksTask, { maxSteps: 1e9, cameras });
  const cams = await attachEnvCameras(env);
  if (!cams) throw new Error('cameras did not attach');
  env.reset({ seed: 1 });
  const q0 = env.state().q.slice();
  let k = 0;
  for (; k < 60; k++) env.step(scriptedAction(q0, PHASES, k, 1 / 60)); // warm-up: JIT, shader compiles
  const withSim = best(steps, () => {
    for (let i = 0; i < steps; i++, k++) env.step(scriptedAction(q0, PHASES, k, 1 / 60));
  });
  const state = env.state();
  const renderOnly = best(steps, () => {
    for (let i = 0; i < steps; i++) cams.rig.render(state);
  });
  cams.detach();
  const simOnly = best(steps, () => {
    for (let i = 0; i < steps; i++, k++) env.step(scriptedAction(q0, PHASES, k, 1 / 60));
  });
  env.free();
  return {
    size: `${size}x${size}`,
    outputs: 'rgb+depth+segmentation',
    withSimPairsPerSecond: withSim.perSecond,
    renderOnlyPairsPerSecond: renderOnly.perSecond,
    simOnlyStepsPerSecond: simOnly.perSecond,
    cpuSecondsPerPairWithSim: withSim.cpuSecondsPerItem,
    // What one unshared core would reach: on a loaded machine wall time includes waiting for a CPU.
    cpuBoundPairsPerSecondWithSim: Math.round(1 / withSim.cpuSecondsPerItem),
  };
}

const results = [await measure(128, 400), await measure(224, 200)];
console.log(
  JSON.stringify({
    bench: 'render',
    node: process.version,
    cpus: os.cpus().length,
    loadavg1: Number(os.loadavg()[0].toFixed(2)),
    display: process.env.DISPLAY ?? null,
    results,
    targetPairsPerSecondAt128: 400,
  }),
);
