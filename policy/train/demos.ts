/**
 * The demonstrations a run trains on: episode files `<task>-<seed>.evep` in the demo folder, made
 * with the task's scripted expert and both cameras when missing (what `evovla demos --cameras`
 * writes), so a config runs on a fresh checkout. Missing demos are recorded by `workers` child
 * processes in parallel (each seed's episode depends on its seed alone, so the files are the same
 * whatever the worker count).
 */
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createEnv } from '../../sim/env.ts';
import { readEpisodeHeader } from '../../sim/record/reader.ts';
import type { Task } from '../../sim/task.ts';
import type { ActionNoise } from '../../tasks/action_noise.ts';
import { runExpertEpisode } from '../../tasks/rollout.ts';

/** Episode file of `seed` in `dir`. */
export function demoFile(dir: string, task: Task, seed: number): string {
  return join(dir, `${task.id}-${seed}.evep`);
}

/** The action noise an episode header says its demo was recorded with (undefined: clean). */
export function headerNoise(meta: Record<string, unknown>): ActionNoise | undefined {
  const n = meta.actionNoise as Partial<ActionNoise> | undefined;
  return n && typeof n === 'object' ? { std: Number(n.std), holdSteps: Number(n.holdSteps), seed: Number(n.seed) } : undefined;
}

const noiseName = (n: ActionNoise | undefined) => (n ? `action noise std ${n.std} rad, hold ${n.holdSteps} steps, seed ${n.seed}` : 'no action noise');

/** What one recording child process is asked to do. */
export interface DemoShard {
  taskId: string;
  dir: string;
  seeds: number[];
  cameras: string[];
  size: number;
  noise?: ActionNoise;
}

/** What a recording child process reports. */
export type DemoWorkerMessage = { kind: 'episode'; seed: number; success: boolean } | { kind: 'done' } | { kind: 'error'; message: string };

/** Records the expert's episodes of `seeds` into `dir` (cameras at size x size; `noise`: DART action noise), in this process. */
export async function recordDemoSeeds(task: Task, dir: string, seeds: readonly number[], cameras: string[], size: number, noise: ActionNoise | undefined, onEpisode: (seed: number, success: boolean) => void | Promise<void>): Promise<void> {
  const render = await import('../../sim/render/env_cameras.ts');
  // RGB only: training reads no depth or segmentation, and rendering them doubles the cost.
  const env = await createEnv(task, { cameras: cameras.map((name) => ({ name, width: size, height: size, depth: false, segmentation: false })) });
  const attached = await render.attachEnvCameras(env);
  try {
    for (const seed of seeds) {
      const r = runExpertEpisode(env, task, seed, { file: demoFile(dir, task, seed), ...(noise ? { actionNoise: noise } : {}) });
      await onEpisode(seed, r.success);
    }
  } finally {
    attached?.detach();
    env.free();
  }
}

/** Runs one shard in a child process; resolves when it reported `done`, rejects naming its seeds otherwise. */
function recordInChild(shard: DemoShard, onEpisode: (seed: number, success: boolean) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    // execArgv []: the entry registers its own TypeScript loader; the parent's flags are not for it.
    const child = fork(new URL('./demo_worker.mjs', import.meta.url), [], { execArgv: [], serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const seeds = `seeds ${shard.seeds[0]}..${shard.seeds[shard.seeds.length - 1]}`;
    let outcome: Error | 'done' | null = null;
    child.on('message', (m: DemoWorkerMessage) => {
      if (m.kind === 'episode') onEpisode(m.seed, m.success);
      else if (m.kind === 'done') outcome = 'done';
      else outcome = new Error(`recording demos (${seeds}) failed: ${m.message}`);
    });
    child.on('error', (err) => {
      outcome ??= new Error(`recording demos (${seeds}): could not run the recording process: ${err.message}`);
    });
    child.on('exit', (code, signal) => {
      if (outcome === 'done') resolve();
      else reject(outcome ?? new Error(`recording demos (${seeds}): the recording process exited (code ${code}, signal ${signal}) before finishing`));
    });
    child.send(shard);
  });
}

/**
 * Returns the files of seeds seed0 .. seed0 + episodes - 1 in `dir`, recording the missing ones
 * with the expert (cameras at size x size; with `noise`, DART action noise, the label kept as the
 * action), in `workers` child processes when more than one (0 or 1: in this process). Episodes the
 * expert fails are kept: they are what the expert does, and the summary line says how many there
 * were. Files already there must have been recorded with the same noise setting (from their
 * headers): a run never trains on a mix it did not ask for.
 */
export async function ensureDemos(
  task: Task,
  dir: string,
  seed0: number,
  episodes: number,
  cameras: string[],
  size: number,
  log: (line: string) => void,
  opts: { noise?: ActionNoise; workers?: number } = {},
): Promise<string[]> {
  const { noise, workers = 1 } = opts;
  if (!Number.isInteger(workers) || workers < 0) throw new Error(`demo workers: expected an integer >= 0, got ${workers}`);
  const files = Array.from({ length: episodes }, (_, i) => demoFile(dir, task, seed0 + i));
  for (const f of files.filter((f) => existsSync(f))) {
    const had = headerNoise(readEpisodeHeader(f).meta);
    if (JSON.stringify(had ?? null) !== JSON.stringify(noise ?? null)) {
      throw new Error(`${f} was recorded with ${noiseName(had)}, but the config asks for ${noiseName(noise)} (data.noise); use another data.demoDir or remove the folder`);
    }
  }
  const missing = files.map((f, i) => ({ f, seed: seed0 + i })).filter((x) => !existsSync(x.f)).map((x) => x.seed);
  if (missing.length === 0) return files;
  const procs = Math.min(workers, missing.length);
  log(`recording ${missing.length} expert demos of '${task.id}' into ${dir} (cameras ${cameras.join(',')}@${size}x${size}; ${noiseName(noise)}${procs > 1 ? `; ${procs} processes` : ''})`);
  let done = 0;
  let failed = 0;
  const t0 = performance.now();
  const onEpisode = (_seed: number, success: boolean): void => {
    done++;
    if (!success) failed++;
    if (done % 10 === 0 || done === missing.length) log(`demos: ${done}/${missing.length} (${failed} unsuccessful), ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  };
  if (procs <= 1) {
    await recordDemoSeeds(task, dir, missing, cameras, size, noise, onEpisode);
  } else {
    // Round-robin shards: episodes of neighbouring seeds cost about the same, so shards stay even.
    const shards = Array.from({ length: procs }, (_, k) => missing.filter((_, i) => i % procs === k));
    const runs = shards.map((seeds) => recordInChild({ taskId: task.id, dir, seeds, cameras, size, ...(noise ? { noise } : {}) }, onEpisode));
    // Wait for every process before reporting a failure, so none is left writing behind us.
    const outcomes = await Promise.allSettled(runs);
    const bad = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (bad) throw bad.reason;
  }
  return files;
}
