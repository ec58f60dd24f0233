/**
 * Synthetic demonstrations for policy tests: episode files with small random camera images and a
 * smooth joint trajectory, written with the real episode writer (no simulation, no rendering).
 */
import { join } from 'node:path';
import { parseTrainConfig, type TrainConfig } from '../../policy/train/config.ts';
import { EpisodeWriter } from '../../sim/record/writer.ts';
import { EPISODE_FORMAT_VERSION, type EpisodeHeader } from '../../sim/record/types.ts';
import { Rng } from '../../sim/rng.ts';

/**
 * Writes `episodes` files `<task>-<seed>.evep` (seeds 0..) of `steps` steps each into `dir`.
 * `hold`: from step `from` on, for `steps` steps, the joints (proprio and action) stay where they
 * were at `from` (a still wait); with `moving`, only the action holds while proprio goes on moving
 * (a wait the observation does not show as still: fingers closing, action-noise jitter).
 */
export function writeSyntheticDemos(dir: string, opts: { task?: string; episodes: number; steps: number; size: number; cameras?: string[]; hold?: { from: number; steps: number; moving?: boolean } }): string[] {
  const task = opts.task ?? 'stack';
  const cameras = opts.cameras ?? ['eye_side', 'eye_arm'];
  const files: string[] = [];
  for (let seed = 0; seed < opts.episodes; seed++) {
    const rng = new Rng(1000 + seed);
    const header: EpisodeHeader = {
      format: 'evovla.episode',
      version: EPISODE_FORMAT_VERSION,
      task,
      instruction: 'stack the middle block on the base block, then the top block on the middle block',
      robot: 'airbot_play',
      seed,
      controlHz: 60,
      physicsHz: 240,
      actionMode: 'joint',
      configHash: 'synthetic',
      stages: ['a', 'b'],
      cameras,
      meta: { writer: 'test' },
    };
    const file = join(dir, `${task}-${seed}.evep`);
    const w = EpisodeWriter.open(file, header);
    const phase = rng.next() * Math.PI;
    for (let t = 0; t < opts.steps; t++) {
      const tq = opts.hold && t >= opts.hold.from && t < opts.hold.from + opts.hold.steps ? opts.hold.from : t;
      const q = Float32Array.from({ length: 7 }, (_, d) => 0.3 * Math.sin(phase + 0.05 * tq + d));
      const proprio = opts.hold?.moving ? Float32Array.from({ length: 7 }, (_, d) => 0.3 * Math.sin(phase + 0.05 * t + d)) : q;
      const images = Object.fromEntries(cameras.map((c) => [c, { width: opts.size, height: opts.size, rgb: Uint8Array.from({ length: opts.size * opts.size * 3 }, () => rng.int(256)) }]));
      w.append({
        step: t + 1,
        time: (t + 1) / 60,
        action: q,
        proprio,
        links: {},
        // The tool moves with the joints and a block sits still: the privileged state (block minus
        // tool) is then a function of proprio that an auxiliary head can learn.
        ee: { p: [0.3 + 0.1 * q[0], 0.1 * q[1], 0.2 + 0.1 * q[2]], q: [0, 0, 0, 1] },
        objects: { block: { p: [0.4, 0.05 * seed, 0.02], q: [0, 0, 0, 1] } },
        predicates: {},
        stage: 0,
        rewardTerms: {},
        reward: 0,
        terminated: false,
        truncated: t === opts.steps - 1,
        images,
      });
    }
    files.push(w.close({ steps: opts.steps, success: true, finalStateHash: '', maxStage: 2 }));
  }
  return files;
}

/** A tiny model section: 16x16 images, 4 tokens per camera, width 16. */
export const TINY_MODEL = { imageSize: 16, stemPatch: 4, stemChannels: 4, groupPatch: 2, width: 16, depth: 1, heads: 2, mlpRatio: 2, chunk: 4, headHidden: 16 };

/**
 * A tiny training run's config over the synthetic demos in `demoDir` (3 episodes, 1 held out),
 * run folders under `runsDir`, no final evaluation; `overrides` replace top-level keys (phases ...).
 */
export function tinyTrainConfig(name: string, runsDir: string, demoDir: string, overrides: Record<string, unknown> = {}): TrainConfig {
  return parseTrainConfig({
    name,
    runsDir,
    task: 'stack',
    threads: 1,
    model: TINY_MODEL,
    data: { demoDir, episodes: 3, valEpisodes: 1 },
    eval: { episodes: 0 },
    ...overrides,
  });
}
