/**
 * The demonstrations a run trains on: episode files `<task>-<seed>.evep` in the demo folder, made
 * with the task's scripted expert and both cameras when missing (what `evovla demos --cameras`
 * writes), so a config runs on a fresh checkout.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createEnv } from '../../sim/env.ts';
import type { Task } from '../../sim/task.ts';
import { runExpertEpisode } from '../../tasks/rollout.ts';

/** Episode file of `seed` in `dir`. */
export function demoFile(dir: string, task: Task, seed: number): string {
  return join(dir, `${task.id}-${seed}.evep`);
}

/**
 * Returns the files of seeds seed0 .. seed0 + episodes - 1 in `dir`, recording the missing ones
 * with the expert (cameras at size x size). Episodes the expert fails are kept: they are what the
 * expert does, and the summary line says how many there were.
 */
export async function ensureDemos(task: Task, dir: string, seed0: number, episodes: number, cameras: string[], size: number, log: (line: string) => void): Promise<string[]> {
  const files = Array.from({ length: episodes }, (_, i) => demoFile(dir, task, seed0 + i));
  const missing = files.map((f, i) => ({ f, seed: seed0 + i })).filter((x) => !existsSync(x.f));
  if (missing.length === 0) return files;
  log(`recording ${missing.length} expert demos of '${task.id}' into ${dir} (cameras ${cameras.join(',')}@${size}x${size})`);
  const render = await import('../../sim/render/env_cameras.ts');
  const env = await createEnv(task, { cameras: cameras.map((name) => ({ name, width: size, height: size })) });
  const attached = await render.attachEnvCameras(env);
  let failed = 0;
  const t0 = performance.now();
  try {
    for (const [k, m] of missing.entries()) {
      const r = runExpertEpisode(env, task, m.seed, { file: m.f });
      if (!r.success) failed++;
      if ((k + 1) % 10 === 0 || k + 1 === missing.length) log(`demos: ${k + 1}/${missing.length} (${failed} unsuccessful), ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    }
  } finally {
    attached?.detach();
    env.free();
  }
  return files;
}
