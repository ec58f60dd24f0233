/**
 * Checkpoints of the PPO phase: one safetensors file per checkpoint (nn/checkpoint.ts's format,
 * written atomically) holding every weight of the VLA (trunk, heads, memory fusion), the POE world
 * model's weights, both optimizers' AdamW state (`optim.ppo.*`, `optim.poe.*`), PPO's step
 * counters (iteration, env steps), generator states (action sampling, episode seeds, minibatch
 * order, with their spare normal deviates) and each env's current episode seed, plus the phase's
 * "before" evaluation, so a resumed run continues where the killed one stopped instead of starting
 * PPO over from the BC weights. Episodes that had not begun at the checkpoint restart on their
 * seeds (exactly as the uninterrupted run plays them); an episode in progress is replaced by a
 * new one (its env state, memory bank, SAR gate and POE window are not saved).
 *
 * Files: `<run>/checkpoints/p<phase>-step<iteration>.safetensors` (the run's naming, so
 * `evovla train --resume` finds the latest); the last `keep` of the phase are kept.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadCheckpoint, saveCheckpoint } from '../../nn/checkpoint.ts';
import { ParamSet } from '../../nn/params.ts';
import type { Trainer } from '../../nn/trainer.ts';
import type { Rng } from '../../sim/rng.ts';
import type { PpoCheckpointState } from './ppo.ts';

/** What the PPO phase checkpoints besides PPO's own state. */
export interface PpoCheckpointParts {
  /** The VLA's parameters (with `memory.*` once PPO built its model). */
  vla: ParamSet;
  /** The POE world model's parameters and optimizer (null when POE is off). */
  poe: { params: ParamSet; trainer: Trainer } | null;
}

/** Free-form values stored with a checkpoint (JSON). */
export type PpoCheckpointExtra = Record<string, unknown>;

const RNG_KEYS = ['actions', 'episodes', 'minibatches'] as const;

/** Both models' parameters in one set (same data arrays; names are distinct by prefix). */
function combined(parts: PpoCheckpointParts): ParamSet {
  const all = new ParamSet(0);
  for (const set of [parts.vla, parts.poe?.params]) {
    if (!set) continue;
    for (const p of set.list()) all.add(p.name, p.shape, () => p.data);
  }
  all.rng.setState(parts.vla.rng.getState());
  return all;
}

/** The file of a checkpoint after `iteration` iterations of phase `phase`. */
export function ppoCheckpointPath(dir: string, phase: number, iteration: number): string {
  return join(dir, `p${phase}-step${String(iteration).padStart(8, '0')}.safetensors`);
}

/** Writes a checkpoint (atomically) and deletes the phase's older ones beyond `keep`. */
export function savePpoCheckpoint(dir: string, phase: number, keep: number, s: PpoCheckpointState, parts: PpoCheckpointParts, extra: PpoCheckpointExtra): string {
  const file = ppoCheckpointPath(dir, phase, s.iteration);
  const metadata: Record<string, string> = { phase: String(phase), kind: 'ppo', step: String(s.iteration), 'ppo/iteration': String(s.iteration), 'ppo/extra': JSON.stringify(extra) };
  for (const k of RNG_KEYS) metadata[`ppo/rng/${k}`] = JSON.stringify(s.rngs[k].exportState());
  metadata['ppo/episodes'] = JSON.stringify(s.episodes);
  saveCheckpoint(file, { params: combined(parts), trainers: { ppo: s.trainer, ...(parts.poe ? { poe: parts.poe.trainer } : {}) }, metadata });
  const mine = readdirSync(dir)
    .filter((f) => new RegExp(`^p${phase}-step\\d+\\.safetensors$`).test(f))
    .sort();
  for (const old of mine.slice(0, Math.max(0, mine.length - keep))) rmSync(join(dir, old), { force: true });
  return file;
}

/**
 * Restores a checkpoint into the models, the optimizers and the generators of `s`; returns the
 * iterations it was taken after and its extra values. Every tensor is checked by name and shape
 * before anything changes (nn/checkpoint.ts).
 */
export function loadPpoCheckpoint(file: string, s: PpoCheckpointState, parts: PpoCheckpointParts): { iteration: number; extra: PpoCheckpointExtra } {
  const all = combined(parts);
  const { metadata } = loadCheckpoint(file, { params: all, trainers: { ppo: s.trainer, ...(parts.poe ? { poe: parts.poe.trainer } : {}) } });
  if (metadata.kind !== 'ppo' || metadata['ppo/iteration'] === undefined) throw new Error(`${file} is not a PPO checkpoint (kind ${JSON.stringify(metadata.kind)})`);
  // loadCheckpoint replaced the combined set's arrays: hand them to the models' own parameters.
  for (const set of [parts.vla, parts.poe?.params]) {
    if (!set) continue;
    for (const p of set.list()) p.data = all.get(p.name).data;
  }
  parts.vla.rng.setState(all.rng.getState());
  for (const k of RNG_KEYS) {
    const raw = metadata[`ppo/rng/${k}`];
    if (raw === undefined) throw new Error(`${file}: missing generator state ppo/rng/${k}`);
    (s.rngs[k] as Rng).importState(JSON.parse(raw) as { s: number[]; spareNormal: number | null });
  }
  s.episodes.length = 0;
  s.episodes.push(...(JSON.parse(metadata['ppo/episodes'] ?? '[]') as PpoCheckpointState['episodes']));
  return { iteration: Number(metadata['ppo/iteration']), extra: JSON.parse(metadata['ppo/extra'] ?? '{}') as PpoCheckpointExtra };
}
