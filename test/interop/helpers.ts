/**
 * Small episode files for the interop tests, written through the public EpisodeWriter: two arm
 * joints' worth of motion, smooth camera images that change every step (so video compression
 * error stays small and a frame mix-up is visible; at most 11 steps keep values under 256), objects, reward terms and stages.
 */
import * as path from 'node:path';
import { EpisodeWriter } from '../../sim/record/writer.ts';
import { EPISODE_FORMAT_VERSION, type EpisodeHeader, type StepRecord } from '../../sim/record/types.ts';

export const CAMERAS = ['eye_side', 'eye_arm'];
export const SIZE = { width: 32, height: 24 };

/** An RGB frame: gradients shifted by step and camera, so every frame differs. */
export function frameFor(step: number, cam: number, episode: number): Uint8Array {
  const { width, height } = SIZE;
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      // No value wraps past 255 (a wrap is a sharp edge the lossy codec would blur).
      rgb[i] = x * 4 + step * 4 + episode * 20;
      rgb[i + 1] = y * 6 + cam * 60;
      rgb[i + 2] = 20 + step * 15;
    }
  }
  return rgb;
}

/** Write one episode of `steps` steps; returns the file path. */
export function writeEpisode(dir: string, name: string, episode: number, steps: number, opts: { cameras?: boolean; instruction?: string; sar?: boolean } = {}): string {
  const cameras = opts.cameras === false ? [] : CAMERAS;
  const header: EpisodeHeader = {
    format: 'evovla.episode',
    version: EPISODE_FORMAT_VERSION,
    task: 'stack',
    instruction: opts.instruction ?? 'stack the blocks',
    robot: 'airbot_play',
    seed: 100 + episode,
    controlHz: 60,
    physicsHz: 240,
    actionMode: 'joint',
    configHash: 'feedbeefcafe0001',
    stages: ['reach', 'grasp', 'lift'],
    cameras,
    meta: { writer: 'test' },
  };
  const file = path.join(dir, `${name}.evep`);
  const w = EpisodeWriter.open(file, header);
  for (let k = 0; k < steps; k++) {
    const q = [0.1 * k, -0.5 + 0.01 * k, 0.9, 1.6 - 0.02 * episode, -1.4, -1.6 + 0.003 * k, 0.04 - 0.002 * k];
    const rec: StepRecord = {
      step: k + 1,
      time: (k + 1) / 60,
      action: Float32Array.from(q.map((v, i) => v + 0.05 * (i + 1))),
      proprio: Float32Array.from(q),
      links: { link1: { p: [0, 0, 0.12], q: [0, 0, Math.sin(k * 0.01), Math.cos(k * 0.01)] }, link6: { p: [0.3, 0, 0.2 + 0.01 * k], q: [0, 0, 0, 1] } },
      ee: { p: [0.3, 0.01 * k, 0.2], q: [0, 0, 0, 1] },
      objects: { base_block: { p: [0.4, 0, 0.02], q: [0, 0, 0, 1] }, top_block: { p: [0.4, 0.1, 0.02 + 0.001 * k], q: [0, 0, 0, 1] } },
      predicates: { reach: k > 1 },
      stage: Math.min(2, Math.floor(k / 2)),
      commandedStage: Math.min(2, Math.floor((k + 1) / 2)),
      // SAR's stage trails the ground truth by one step (a belief that lags what happened).
      ...(opts.sar ? { sarStage: Math.min(2, Math.floor(Math.max(0, k - 1) / 2)) } : {}),
      // Its claims: stage 0 at step index 3 (true), stage 1 at index 5 (hallucinated).
      ...(opts.sar && k === 3 ? { sarClaims: [{ stage: 0, hallucinated: false }] } : {}),
      ...(opts.sar && k === 5 ? { sarClaims: [{ stage: 1, hallucinated: true }] } : {}),
      rewardTerms: { ext: k === steps - 1 ? 1 : 0, stage: 0.1 * k },
      reward: 0.25 * k + episode,
      terminated: k === steps - 1,
      truncated: false,
    };
    if (cameras.length) rec.images = Object.fromEntries(cameras.map((c, i) => [c, { ...SIZE, rgb: frameFor(k, i, episode) }]));
    w.append(rec);
  }
  return w.close({ steps, success: true, finalStateHash: `hash${episode}`, maxStage: 2 });
}
