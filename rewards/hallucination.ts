/**
 * Stage hallucination: the share of stage completions the SAR gate claims while the simulator's
 * ground truth says the stage is not done. EvoVLA's script measures it from u_k alone (and, with
 * its tau multiplied, degenerately); here the simulator knows the truth, so we judge every gate
 * completion against it.
 *
 * A completion of stage k at step t is TRUE when stage k's predicate holds at t, or when the
 * ground-truth stage index at t is already past k (the stage was done and a later one has taken
 * over, e.g. "above the block" stops holding once the fingers reach down: a late gate is not a
 * hallucinating one). Otherwise it is hallucinated.
 */
import { wilsonInterval } from '../tasks/rollout.ts';

/** One stage completion the SAR gate claimed, with the ground truth at that step. */
export interface GateCompletion {
  /** Control step of the claim. */
  step: number;
  /** Index of the stage the gate marked complete. */
  stage: number;
  /** Whether the ground truth agrees (see `isTrueCompletion`). */
  groundTruth: boolean;
}

/**
 * Whether a claimed completion of `stage` is true: its predicate holds now (`predicates[name]`),
 * or the ground-truth stage index `gtStage` is already past it.
 */
export function isTrueCompletion(stage: number, stageNames: readonly string[], predicates: Readonly<Record<string, boolean>>, gtStage: number): boolean {
  if (!Number.isInteger(stage) || stage < 0 || stage >= stageNames.length) {
    throw new RangeError(`stage must be an integer in 0..${stageNames.length - 1}, got ${stage}`);
  }
  const name = stageNames[stage];
  if (!(name in predicates)) throw new RangeError(`predicates lack stage '${name}' (have: ${Object.keys(predicates).join(', ')})`);
  return predicates[name] === true || gtStage > stage;
}

/** One episode's hallucination figures. */
export interface EpisodeHallucination {
  completions: number;
  hallucinated: number;
  /** hallucinated / completions; null when the gate claimed nothing. */
  rate: number | null;
  /** Steps and stages of the hallucinated completions (for the viewer's timeline marks). */
  marks: { step: number; stage: number }[];
}

/** Counts one episode's gate completions against the ground truth. */
export function episodeHallucination(completions: readonly GateCompletion[]): EpisodeHallucination {
  const marks = completions.filter((c) => !c.groundTruth).map((c) => ({ step: c.step, stage: c.stage }));
  return {
    completions: completions.length,
    hallucinated: marks.length,
    rate: completions.length === 0 ? null : marks.length / completions.length,
    marks,
  };
}

/** Hallucination over many episodes. */
export interface HallucinationSummary {
  episodes: number;
  completions: number;
  hallucinated: number;
  /** Pooled share: all hallucinated / all completions (0 when there were none). */
  rate: number;
  /** 95% Wilson interval of the pooled share. */
  low: number;
  high: number;
  /** Mean of the per-episode rates over episodes with at least one completion (null if none). */
  meanEpisodeRate: number | null;
}

/**
 * Aggregates episodes: the pooled rate with a 95% Wilson interval (completions are the trials),
 * and the mean of per-episode rates (which weights short and long episodes alike).
 */
export function aggregateHallucination(episodes: readonly EpisodeHallucination[]): HallucinationSummary {
  let completions = 0;
  let hallucinated = 0;
  const rates: number[] = [];
  for (const e of episodes) {
    completions += e.completions;
    hallucinated += e.hallucinated;
    if (e.rate !== null) rates.push(e.rate);
  }
  const ci = wilsonInterval(hallucinated, completions);
  return {
    episodes: episodes.length,
    completions,
    hallucinated,
    rate: ci.rate,
    low: ci.low,
    high: ci.high,
    meanEpisodeRate: rates.length === 0 ? null : rates.reduce((a, b) => a + b, 0) / rates.length,
  };
}
