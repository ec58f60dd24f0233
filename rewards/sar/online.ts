/**
 * The stage-aligned reward during rollouts and evaluation, per env: each step the scorer gives u_k
 * for the stage the env's gate waits on, the baseline turns it into r_stage, the gate may claim
 * the stage, and every claim is judged against the simulator's ground truth (hallucination).
 *
 *   const sar = new SarRewarder(scorer, task.stages.map((s) => s.name), numEnvs);
 *   const r = await sar.step(frames, infos);     // r[i].stage = r_stage for env i
 *   const h = sar.endEpisode(i);                 // that episode's hallucination figures
 */
import type { StepInfo } from '../../sim/types.ts';
import { episodeHallucination, isTrueCompletion, type EpisodeHallucination, type GateCompletion } from '../hallucination.ts';
import { StageBaseline, StageGate } from './score.ts';
import type { FrameImages, SarScorer } from './scorer.ts';

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
  /** Whether any of those claims contradicts the ground truth. */
  hallucinated: boolean;
}

/** Per-env SAR state: gate, baselines and the claims of the current episode. */
export class SarRewarder {
  private readonly gates: StageGate[];
  private readonly baselines: StageBaseline[];
  private readonly claims: GateCompletion[][];

  constructor(
    readonly scorer: SarScorer,
    readonly stageNames: readonly string[],
    readonly numEnvs: number,
  ) {
    if (scorer.meta.layout.stages.length !== stageNames.length || scorer.meta.layout.stages.some((s, i) => s.name !== stageNames[i])) {
      throw new Error(`SAR model was trained for task '${scorer.meta.task}' (stages ${scorer.meta.layout.stages.map((s) => s.name).join(', ')}), not for these stages`);
    }
    this.gates = Array.from({ length: numEnvs }, () => new StageGate(stageNames.length, scorer.meta.gate));
    this.baselines = Array.from({ length: numEnvs }, () => new StageBaseline(stageNames.length, scorer.meta.alpha));
    this.claims = Array.from({ length: numEnvs }, () => []);
  }

  /** Scores one step of every env (frames[i], infos[i] for env i), in one batched image pass. */
  async step(frames: readonly FrameImages[], infos: readonly StepInfo[]): Promise<SarStep[]> {
    if (frames.length !== this.numEnvs || infos.length !== this.numEnvs) {
      throw new RangeError(`step needs one frame and one info per env (${this.numEnvs}), got ${frames.length} and ${infos.length}`);
    }
    const emb = await this.scorer.embed(frames);
    return infos.map((info, i) => {
      const gate = this.gates[i];
      if (gate.stage >= this.stageNames.length) return { u: 0, stage: 0, gateStage: gate.stage, claimed: [], hallucinated: false };
      const k = gate.stage;
      const u = this.scorer.scores(emb, i, k).u;
      const stage = this.baselines[i].reward(k, u);
      const claimed = gate.push(u, gate.watchesNext ? this.scorer.scores(emb, i, k + 1).u : undefined);
      let hallucinated = false;
      for (const c of claimed) {
        const groundTruth = isTrueCompletion(c, this.stageNames, info.predicates, info.stage);
        hallucinated ||= !groundTruth;
        this.claims[i].push({ step: info.state.step, stage: c, groundTruth });
      }
      return { u, stage, gateStage: gate.stage, claimed, hallucinated };
    });
  }

  /** Ends env `i`'s episode: returns its hallucination figures and resets its gate and baselines. */
  endEpisode(i: number): EpisodeHallucination {
    const h = episodeHallucination(this.claims[i]);
    this.claims[i] = [];
    this.gates[i].reset();
    this.baselines[i].reset();
    return h;
  }
}
