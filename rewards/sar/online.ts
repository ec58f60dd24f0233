/**
 * The stage-aligned reward during rollouts and evaluation, per env: each step the scorer gives u_k
 * for the stage the env's gate waits on, the baseline turns it into r_stage, the gate may claim
 * the stage, and every claim is judged against the simulator's ground truth (hallucination).
 *
 * `SarGateTracker` is the one place that keeps this per-env state (gate, baselines, claims): PPO's
 * reward model (policy/train/evovla_rewards.ts), `evovla eval --sar` (policy/eval.ts) and
 * `SarRewarder` below all use it, with the settings `sarGateSettings` resolves (the scorer's
 * stored gate and alpha, which come from configs/sar.yaml, overridden key by key by a config).
 *
 *   const sar = new SarRewarder(scorer, task.stages.map((s) => s.name), numEnvs);
 *   const r = await sar.step(frames, infos);     // r[i].stage = r_stage for env i
 *   const h = sar.endEpisode(i);                 // that episode's hallucination figures
 */
import type { StepInfo } from '../../sim/types.ts';
import { episodeHallucination, isTrueCompletion, type EpisodeHallucination, type GateCompletion } from '../hallucination.ts';
import type { SarGateOverride } from './config.ts';
import { StageBaseline, StageGate, type GateOptions } from './score.ts';
import type { FrameImages, SarMetadata, SarScorer } from './scorer.ts';

/** What one env's step earns. */
export interface SarStep {
  /** u_k of the stage the gate was waiting on. */
  u: number;
  /** r_stage = u_k - ubar_k. */
  stage: number;
  /** The gate's stage after this step. */
  gateStage: number;
  /** Stages claimed at this step (usually none; two when the gate's lookahead fires). */
  claimed: number[];
  /** Per claimed stage: whether the ground truth denies it (a hallucinated completion). */
  hallucinatedStages: number[];
  /** Whether any of those claims contradicts the ground truth. */
  hallucinated: boolean;
}

/** Gate and baseline settings of the online SAR bookkeeping. */
export interface SarGateSettings {
  gate: GateOptions;
  /** Baseline smoothing: ubar <- (1 - alpha) ubar + alpha u. */
  alpha: number;
}

/**
 * The settings a run uses: the scorer's own (stored in sar.json from configs/sar.yaml when it was
 * trained), each key overridden by `override` when set (a PPO phase's `gate`, `evovla eval`'s flags).
 */
export function sarGateSettings(meta: Pick<SarMetadata, 'gate' | 'alpha'>, override?: SarGateOverride | null): SarGateSettings {
  const o = override ?? {};
  return {
    gate: {
      window: o.window ?? meta.gate.window,
      threshold: o.threshold ?? meta.gate.threshold,
      lookahead: o.lookahead ?? meta.gate.lookahead ?? 0,
      // Per-stage windows (capped by `window`, so an overriding window still bounds them).
      ...(meta.gate.windows ? { windows: meta.gate.windows } : {}),
    },
    alpha: o.alpha ?? meta.alpha,
  };
}

/** Per-env SAR state: gate, baselines, latest score and the claims of the current episode. */
export class SarGateTracker {
  private readonly gates: StageGate[];
  private readonly baselines: StageBaseline[];
  private readonly claims: GateCompletion[][];
  private readonly latest: Float64Array;
  private claimCount = 0;
  private falseCount = 0;

  constructor(
    readonly stageNames: readonly string[],
    readonly numEnvs: number,
    readonly settings: SarGateSettings,
  ) {
    if (!Number.isInteger(numEnvs) || numEnvs < 1) throw new RangeError(`numEnvs must be an integer >= 1, got ${numEnvs}`);
    this.gates = Array.from({ length: numEnvs }, () => new StageGate(stageNames.length, settings.gate));
    this.baselines = Array.from({ length: numEnvs }, () => new StageBaseline(stageNames.length, settings.alpha));
    this.claims = Array.from({ length: numEnvs }, () => []);
    this.latest = new Float64Array(numEnvs);
  }

  private env(i: number): number {
    if (!Number.isInteger(i) || i < 0 || i >= this.numEnvs) throw new RangeError(`env must be in 0..${this.numEnvs - 1}, got ${i}`);
    return i;
  }

  /** The stage env `i`'s gate waits on (== the stage count once every stage is claimed). */
  gateStage(i: number): number {
    return this.gates[this.env(i)].stage;
  }

  /** The stage whose texts are scored for env `i`: the gate's, held at the last stage once all are claimed. */
  scoredStage(i: number): number {
    return Math.min(this.gateStage(i), this.stageNames.length - 1);
  }

  /** Whether env `i`'s gate wants stage k+1's score too (lookahead). */
  watchesNext(i: number): boolean {
    return this.gates[this.env(i)].watchesNext;
  }

  /** Latest u of env `i` (0 before its first step of the episode). */
  lastScore(i: number): number {
    return this.latest[this.env(i)];
  }

  /**
   * One step of env `i`: `u` is the score of `scoredStage(i)` on the new observation (`uNext` the
   * next stage's when `watchesNext(i)`), `info` the simulator's step info after it (ground truth,
   * read only to judge claims). Returns the stage reward and the claims.
   */
  push(i: number, u: number, info: Pick<StepInfo, 'predicates' | 'stage'> & { state: { step: number } }, uNext?: number): SarStep {
    const gate = this.gates[this.env(i)];
    this.latest[i] = u;
    if (gate.stage >= this.stageNames.length) return { u, stage: 0, gateStage: gate.stage, claimed: [], hallucinatedStages: [], hallucinated: false };
    const k = gate.stage;
    const stage = this.baselines[i].reward(k, u);
    const claimed = gate.push(u, gate.watchesNext ? uNext : undefined);
    const hallucinatedStages: number[] = [];
    for (const c of claimed) {
      const groundTruth = isTrueCompletion(c, this.stageNames, info.predicates, info.stage);
      if (!groundTruth) hallucinatedStages.push(c);
      this.claims[i].push({ step: info.state.step, stage: c, groundTruth });
      this.claimCount++;
      if (!groundTruth) this.falseCount++;
    }
    return { u, stage, gateStage: gate.stage, claimed, hallucinatedStages, hallucinated: hallucinatedStages.length > 0 };
  }

  /** Ends env `i`'s episode: returns its hallucination figures and resets its gate, baselines and score. */
  endEpisode(i: number): EpisodeHallucination {
    const h = episodeHallucination(this.claims[this.env(i)]);
    this.claims[i] = [];
    this.gates[i].reset();
    this.baselines[i].reset();
    this.latest[i] = 0;
    return h;
  }

  /** Claims (and false ones) over all envs since the last call; resets the counts. */
  drainCounts(): { claims: number; falseClaims: number } {
    const out = { claims: this.claimCount, falseClaims: this.falseCount };
    this.claimCount = 0;
    this.falseCount = 0;
    return out;
  }
}

/** A SAR scorer plus the per-env bookkeeping: scores frames itself (one batched image pass). */
export class SarRewarder {
  readonly tracker: SarGateTracker;

  constructor(
    readonly scorer: SarScorer,
    readonly stageNames: readonly string[],
    readonly numEnvs: number,
    override?: SarGateOverride | null,
  ) {
    checkStages(scorer.meta, stageNames);
    this.tracker = new SarGateTracker(stageNames, numEnvs, sarGateSettings(scorer.meta, override));
  }

  /**
   * Scores one step of the envs `envs` (default all; frames[j], infos[j] belong to env envs[j]),
   * in one batched image pass.
   */
  async step(frames: readonly FrameImages[], infos: readonly StepInfo[], envs?: readonly number[]): Promise<SarStep[]> {
    const ids = envs ?? Array.from({ length: this.numEnvs }, (_, i) => i);
    if (frames.length !== ids.length || infos.length !== ids.length) {
      throw new RangeError(`step needs one frame and one info per env (${ids.length}), got ${frames.length} and ${infos.length}`);
    }
    const emb = await this.scorer.embed(frames);
    return ids.map((env, j) => {
      const k = this.tracker.scoredStage(env);
      const u = this.scorer.scores(emb, j, k).u;
      const uNext = this.tracker.watchesNext(env) ? this.scorer.scores(emb, j, k + 1).u : undefined;
      return this.tracker.push(env, u, infos[j], uNext);
    });
  }

  /** Ends env `i`'s episode: returns its hallucination figures and resets its gate and baselines. */
  endEpisode(i: number): EpisodeHallucination {
    return this.tracker.endEpisode(i);
  }
}

/** A scorer trained for another task's stages is refused by name. */
export function checkStages(meta: Pick<SarMetadata, 'task' | 'layout'>, stageNames: readonly string[]): void {
  const stages = meta.layout.stages;
  if (stages.length !== stageNames.length || stages.some((s, i) => s.name !== stageNames[i])) {
    throw new Error(`SAR model was trained for task '${meta.task}' (stages ${stages.map((s) => s.name).join(', ')}), not for these stages (${stageNames.join(', ')})`);
  }
}
