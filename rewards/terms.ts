/**
 * EvoVLA's reward as a named dict of unscaled terms (MuJoCo Playground style): the scales come from
 * config, the sum is r = ext + rho (stage + cur + prog) with each term multiplied by its scale, and
 * every term is returned scaled and unscaled so a trainer logs all of them per step.
 *
 * - ext: the task's extrinsic reward (1 on success in EvoVLA).
 * - stage: the stage-aligned reward u_k - ubar_k (rewards/sar/).
 * - cur: pose-based curiosity eta/2 ||f(z, a) - z'||^2 (rewards/poe/).
 * - prog: progress of the world model, ReLU(mean of recent forward losses - current) (rewards/poe/).
 */
import { parseRewardConfig, type RewardConfig } from './config.ts';

/** The four unscaled reward terms of one step. */
export interface RewardTerms {
  ext: number;
  stage: number;
  cur: number;
  prog: number;
}

/** Names of the terms, in log order. */
export const TERM_NAMES = ['ext', 'stage', 'cur', 'prog'] as const;

/** One step's reward: the total, its extrinsic and intrinsic parts, and every term for the log. */
export interface RewardBreakdown {
  /** r = scaled ext + rho (scaled stage + scaled cur + scaled prog). */
  total: number;
  /** Scaled extrinsic term (what the extrinsic critic learns). */
  extrinsic: number;
  /** Scaled intrinsic sum before rho (what the intrinsic critic learns). */
  intrinsic: number;
  /** Unscaled terms, as given. */
  terms: RewardTerms;
  /** Terms after their scales (rho not applied). */
  scaled: RewardTerms;
}

/**
 * Combines named terms into the reward with the config's scales and rho. A non-finite term is an
 * error naming it: one NaN would otherwise reach every return through GAE.
 */
export function combineRewards(terms: RewardTerms, config: Readonly<RewardConfig> = parseRewardConfig({})): RewardBreakdown {
  const scaled = {} as RewardTerms;
  for (const name of TERM_NAMES) {
    const v = terms[name];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new RangeError(`reward term '${name}' must be a finite number, got ${String(v)}`);
    scaled[name] = v * config.scales[name];
  }
  const intrinsic = scaled.stage + scaled.cur + scaled.prog;
  return { total: scaled.ext + config.rho * intrinsic, extrinsic: scaled.ext, intrinsic, terms: { ...terms }, scaled };
}

/**
 * The log record of one step: `reward/<term>` (unscaled), `reward/<term>_scaled`, `reward/total`,
 * `reward/ext_part`, `reward/int_part`. Flat, so a metrics.jsonl line or the viewer's plot takes it
 * as is.
 */
export function rewardLogRecord(b: RewardBreakdown): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of TERM_NAMES) {
    out[`reward/${name}`] = b.terms[name];
    out[`reward/${name}_scaled`] = b.scaled[name];
  }
  out['reward/total'] = b.total;
  out['reward/ext_part'] = b.extrinsic;
  out['reward/int_part'] = b.intrinsic;
  return out;
}

/**
 * Sums step records over an episode (for per-episode logging): each `reward/*` key summed.
 */
export function sumRewardLogs(records: readonly Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of records) for (const [k, v] of Object.entries(r)) out[k] = (out[k] ?? 0) + v;
  return out;
}
