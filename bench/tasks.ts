/**
 * `npm run bench:tasks [-- --seeds N] [--tasks a,b] [--episodes K]`: per Discoverse-L task, the
 * scripted expert's episodes per second of wall time (K episodes, default 3) and, with --seeds N,
 * its success rate over seeds 0..N-1 with a 95% Wilson interval, mean episode length, how far
 * failed episodes got, how often the ground-truth stage predicates first became true out of
 * the expert's order, and how often the ground-truth stage moved backwards. With --noise
 * 0.005,0.01,0.02 it also runs --noise-seeds episodes (default 20) per level with Gaussian noise
 * of that standard deviation (m, per axis, a new draw every 0.5 s) on the expert's target
 * positions, and reports their success. Prints one JSON object on stdout; progress goes to stderr.
 *
 * Wall-clock figures depend on the machine and its load (shared CI runners are noisy); the JSON
 * carries the load average so readers can judge.
 */
import * as os from 'node:os';
import { flag, intFlag } from './args.ts';
import { createEnv } from '../sim/env.ts';
import { getTask } from '../tasks/index.ts';
import { runExpertEpisode, stageOrderViolations, wilsonInterval, type EpisodeResult } from '../tasks/rollout.ts';

/** Seconds each draw of the target noise is held. */
const NOISE_HOLD_S = 0.5;

const DISCOVERSE_L = ['stack', 'jujube_cup', 'block_bridge'];

interface TaskFigures {
  task: string;
  stages: number;
  speed: { episodes: number; wallSeconds: number; episodesPerSecond: number; controlStepsPerSecond: number; physicsStepsPerSecond: number };
  success?: {
    seeds: number;
    successes: number;
    rate: number;
    ci95: [number, number];
    meanSteps: number;
    meanMaxStage: number;
    failedSeeds: { seed: number; maxStage: number; stageName: string; error?: string }[];
    /** Episodes in which some stage predicate first held before an earlier stage's did. */
    stageOrderViolations: number;
    /** Episodes in which the ground-truth stage moved backwards at least once, and how many times in all. */
    stageDropEpisodes: number;
    stageDrops: number;
    wallSeconds: number;
  };
  /** Success with Gaussian noise on the expert's targets, per standard deviation (m). */
  noise?: { std: number; seeds: number; successes: number; rate: number; ci95: [number, number]; failedStages: Record<string, number> }[];
}

async function benchTask(id: string, seeds: number, speedEpisodes: number, noiseLevels: number[], noiseSeeds: number): Promise<TaskFigures> {
  const task = getTask(id);
  const env = await createEnv(task);
  try {
    // Warm-up (WASM compile, JIT) outside the timing.
    runExpertEpisode(env, task, 1_000_000);
    let steps = 0;
    const t0 = performance.now();
    for (let i = 0; i < speedEpisodes; i++) steps += runExpertEpisode(env, task, 2_000_000 + i).steps;
    const wall = (performance.now() - t0) / 1000;
    const substeps = env.config.physicsHz / env.config.controlHz;
    const out: TaskFigures = {
      task: id,
      stages: task.stages.length,
      speed: {
        episodes: speedEpisodes,
        wallSeconds: wall,
        episodesPerSecond: speedEpisodes / wall,
        controlStepsPerSecond: steps / wall,
        physicsStepsPerSecond: (steps * substeps) / wall,
      },
    };
    if (seeds > 0) {
      const results: EpisodeResult[] = [];
      const t1 = performance.now();
      for (let seed = 0; seed < seeds; seed++) {
        results.push(runExpertEpisode(env, task, seed));
        if (process.stderr.isTTY) process.stderr.write(`\r${id}: ${seed + 1}/${seeds} episodes, ${results.filter((r) => r.success).length} successful`);
      }
      if (process.stderr.isTTY) process.stderr.write('\n');
      const ok = results.filter((r) => r.success).length;
      const ci = wilsonInterval(ok, seeds);
      out.success = {
        seeds,
        successes: ok,
        rate: ci.rate,
        ci95: [ci.low, ci.high],
        meanSteps: results.reduce((a, r) => a + r.steps, 0) / seeds,
        meanMaxStage: results.reduce((a, r) => a + r.maxStage, 0) / seeds,
        failedSeeds: results
          .filter((r) => !r.success)
          .map((r) => ({ seed: r.seed, maxStage: r.maxStage, stageName: task.stages[r.maxStage]?.name ?? 'done', ...(r.error ? { error: r.error } : {}) })),
        stageOrderViolations: results.filter((r) => stageOrderViolations(r).length > 0).length,
        stageDropEpisodes: results.filter((r) => r.stageDrops.length > 0).length,
        stageDrops: results.reduce((a, r) => a + r.stageDrops.length, 0),
        wallSeconds: (performance.now() - t1) / 1000,
      };
    }
    for (const std of noiseLevels) {
      let ok = 0;
      const failedStages: Record<string, number> = {};
      for (let seed = 0; seed < noiseSeeds; seed++) {
        const r = runExpertEpisode(env, task, seed, { targetNoise: { std, holdS: NOISE_HOLD_S, seed: 7_000_000 + seed } });
        if (r.success) ok++;
        else {
          const name = task.stages[r.maxStage]?.name ?? 'done';
          failedStages[name] = (failedStages[name] ?? 0) + 1;
        }
        if (process.stderr.isTTY) process.stderr.write(`\r${id} noise ${std} m: ${seed + 1}/${noiseSeeds} episodes, ${ok} successful`);
      }
      if (process.stderr.isTTY) process.stderr.write('\n');
      const ci = wilsonInterval(ok, noiseSeeds);
      (out.noise ??= []).push({ std, seeds: noiseSeeds, successes: ok, rate: ci.rate, ci95: [ci.low, ci.high], failedStages });
    }
    return out;
  } finally {
    env.free();
  }
}

const seeds = intFlag('seeds', 0, 0);
const speedEpisodes = intFlag('episodes', 3, 0);
const tasks = (flag('tasks') ?? DISCOVERSE_L.join(',')).split(',');
const noiseArg = flag('noise');
const noiseLevels = noiseArg === undefined ? [] : noiseArg.split(',').map(Number);
for (const [i, v] of noiseLevels.entries()) {
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--noise must be positive standard deviations in metres separated by commas (e.g. 0.005,0.01,0.02), got '${noiseArg}' (item ${i + 1})`);
}
const noiseSeeds = intFlag('noise-seeds', 20, 0);
const figures: TaskFigures[] = [];
for (const id of tasks) figures.push(await benchTask(id, seeds, speedEpisodes, noiseLevels, noiseSeeds));
console.log(
  JSON.stringify(
    {
      bench: 'tasks',
      node: process.version,
      cpus: os.cpus().length,
      loadAverage: os.loadavg(),
      tasks: figures,
    },
    null,
    2,
  ),
);
