/**
 * The demonstrations a run trains on: episode files `<task>-<seed>.evep` in the demo folder, made
 * with the task's scripted expert and both cameras when missing (what `evovla demos --cameras`
 * writes), so a config runs on a fresh checkout.
 */
import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { createEnv } from '../../sim/env.ts';
import { episodePackr, FRAME_HEADER_BYTES, KIND_HEADER, MAX_FRAME_BYTES, PREAMBLE_BYTES } from '../../sim/record/format.ts';
import { checkPreamble } from '../../sim/record/reader.ts';
import type { EpisodeHeader } from '../../sim/record/types.ts';
import type { Task } from '../../sim/task.ts';
import type { ActionNoise } from '../../tasks/action_noise.ts';
import { runExpertEpisode } from '../../tasks/rollout.ts';

/** Episode file of `seed` in `dir`. */
export function demoFile(dir: string, task: Task, seed: number): string {
  return join(dir, `${task.id}-${seed}.evep`);
}

/**
 * The header record of an episode file, read alone (the first record after the preamble), so a
 * check of a demo folder does not read every step. A damaged start throws, naming the file.
 */
export function readEpisodeHeader(file: string): EpisodeHeader {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(PREAMBLE_BYTES + FRAME_HEADER_BYTES);
    const got = readSync(fd, head, 0, head.length, 0);
    const version = checkPreamble(head.subarray(0, Math.min(got, PREAMBLE_BYTES)), got);
    if (typeof version !== 'number') throw new Error(`${file}: not a readable episode file: ${version.message}`);
    const length = got < head.length ? 0 : head.readUInt32LE(PREAMBLE_BYTES);
    const payload = Buffer.alloc(Math.min(length, MAX_FRAME_BYTES));
    if (length === 0 || length > MAX_FRAME_BYTES || readSync(fd, payload, 0, length, head.length) !== length || payload[0] !== KIND_HEADER) {
      throw new Error(`${file}: the episode file does not start with a header record`);
    }
    return episodePackr.unpack(payload.subarray(1)) as EpisodeHeader;
  } finally {
    closeSync(fd);
  }
}

/** The action noise an episode header says its demo was recorded with (undefined: clean). */
export function headerNoise(meta: Record<string, unknown>): ActionNoise | undefined {
  const n = meta.actionNoise as Partial<ActionNoise> | undefined;
  return n && typeof n === 'object' ? { std: Number(n.std), holdSteps: Number(n.holdSteps), seed: Number(n.seed) } : undefined;
}

const noiseName = (n: ActionNoise | undefined) => (n ? `action noise std ${n.std} rad, hold ${n.holdSteps} steps, seed ${n.seed}` : 'no action noise');

/**
 * Returns the files of seeds seed0 .. seed0 + episodes - 1 in `dir`, recording the missing ones
 * with the expert (cameras at size x size; with `noise`, DART action noise, the label kept as the
 * action). Episodes the expert fails are kept: they are what the expert does, and the summary line
 * says how many there were. Files already there must have been recorded with the same noise
 * setting (from their headers): a run never trains on a mix it did not ask for.
 */
export async function ensureDemos(
  task: Task,
  dir: string,
  seed0: number,
  episodes: number,
  cameras: string[],
  size: number,
  log: (line: string) => void,
  noise?: ActionNoise,
): Promise<string[]> {
  const files = Array.from({ length: episodes }, (_, i) => demoFile(dir, task, seed0 + i));
  const missing = files.map((f, i) => ({ f, seed: seed0 + i })).filter((x) => !existsSync(x.f));
  for (const f of files.filter((f) => existsSync(f))) {
    const had = headerNoise(readEpisodeHeader(f).meta);
    if (JSON.stringify(had ?? null) !== JSON.stringify(noise ?? null)) {
      throw new Error(`${f} was recorded with ${noiseName(had)}, but the config asks for ${noiseName(noise)} (data.noise); use another data.demoDir or remove the folder`);
    }
  }
  if (missing.length === 0) return files;
  log(`recording ${missing.length} expert demos of '${task.id}' into ${dir} (cameras ${cameras.join(',')}@${size}x${size}; ${noiseName(noise)})`);
  const render = await import('../../sim/render/env_cameras.ts');
  // RGB only: training reads no depth or segmentation, and rendering them doubles the cost.
  const env = await createEnv(task, { cameras: cameras.map((name) => ({ name, width: size, height: size, depth: false, segmentation: false })) });
  const attached = await render.attachEnvCameras(env);
  let failed = 0;
  const t0 = performance.now();
  try {
    for (const [k, m] of missing.entries()) {
      const r = runExpertEpisode(env, task, m.seed, { file: m.f, ...(noise ? { actionNoise: noise } : {}) });
      if (!r.success) failed++;
      if ((k + 1) % 10 === 0 || k + 1 === missing.length) log(`demos: ${k + 1}/${missing.length} (${failed} unsuccessful), ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    }
  } finally {
    attached?.detach();
    env.free();
  }
  return files;
}
