/**
 * EvoVLA's reward for PPO (policy/train/ppo.ts's RewardModel), assembled from rewards/:
 *
 * - ext: the task's success term (1 on the step that succeeds);
 * - stage (SAR): u_c - ubar_c for the SAR stage c an env is in, where u_c is the frozen SAR
 *   encoder's stage score of the new observation and c advances through a stage gate (mean u_c over
 *   the last m steps >= theta). Ground truth is never read for the reward; it is read only to judge
 *   each gate claim (stage hallucination);
 * - cur, prog (POE): curiosity and progress of the pose world model on the pose of the SAR stage's
 *   object in the tool frame; the world model trains on every step's transitions (online).
 *
 * r_ext feeds the extrinsic critic, rho-free intrinsic sum (stage + cur + prog, scaled) the
 * intrinsic critic; rewards/terms.ts's combineRewards applies the configured scales.
 */
import { z } from 'zod';
import type { Observation, ResetResult } from '../../sim/types.ts';
import type { Task } from '../../sim/task.ts';
import { parseConfig, parseRewardConfig, type RewardConfig } from '../../rewards/config.ts';
import { isTrueCompletion } from '../../rewards/hallucination.ts';
import { POSE_DIM, relativePose, stageObject } from '../../rewards/poe/pose.ts';
import type { PoseWorldModel } from '../../rewards/poe/world_model.ts';
import { StageBaseline, StageGate } from '../../rewards/sar/score.ts';
import { combineRewards } from '../../rewards/terms.ts';
import type { RewardItem, RewardModel, RewardOut } from './ppo.ts';

/** Scores observations against stage texts with the (frozen) SAR encoder: u_k in 0..1 per item. */
export interface StageScorer {
  score(items: ReadonlyArray<{ obs: Observation; stage: number }>): Promise<Float32Array | number[]>;
  /** The gate and smoothing the scorer was trained and judged with (used unless the config sets one). */
  gate?: SarGateConfig;
}

/** The SAR gate and smoothing settings. */
export const sarGateConfigSchema = z.strictObject({
  /** Steps m of u_c averaged by the gate. */
  window: z.number().int().min(1).default(4),
  /** Threshold theta on that mean for the gate to claim stage c complete. */
  threshold: z.number().gt(0).lt(1).default(0.6),
  /** Smoothing alpha of the per-stage baseline ubar. */
  alpha: z.number().gt(0).lte(1).default(0.05),
});
export type SarGateConfig = z.output<typeof sarGateConfigSchema>;

/** Validates gate settings (errors name the key path under `source`). */
export function parseSarGateConfig(input: unknown, source = 'sar gate'): Readonly<SarGateConfig> {
  return parseConfig(sarGateConfigSchema, input, source);
}

/** Options of evovlaRewards. */
export interface EvoVlaRewardOptions {
  task: Task;
  numEnvs: number;
  /** SAR scorer; null: no stage reward, no gate (the baseline arm). */
  sar: StageScorer | null;
  /** POE world model; null: no curiosity or progress. */
  poe: PoseWorldModel | null;
  gate?: Readonly<SarGateConfig>;
  rewards?: Readonly<RewardConfig>;
}

/** The reward model, plus what the encoder (memory bank) reads from it. */
export interface EvoVlaRewards extends RewardModel {
  /** SAR stage c env `env` is in (0 without SAR). */
  sarStage(env: number): number;
  /** Latest stage score u of env `env` (0 without SAR, or before its first step). */
  stageScore(env: number): number;
}

/** Builds EvoVLA's reward model for `numEnvs` envs of `task`. */
export function evovlaRewards(o: EvoVlaRewardOptions): EvoVlaRewards {
  const stages = o.task.stages;
  const names = stages.map((s) => s.name);
  const gateCfg = o.gate ?? o.sar?.gate ?? parseSarGateConfig({});
  const rewardCfg = o.rewards ?? parseRewardConfig({});
  const gates = Array.from({ length: o.numEnvs }, () => new StageGate(stages.length, { window: gateCfg.window, threshold: gateCfg.threshold }));
  const baselines = Array.from({ length: o.numEnvs }, () => new StageBaseline(stages.length, gateCfg.alpha));
  const scores = new Float64Array(o.numEnvs);
  let claims = 0;
  let falseClaims = 0;
  let poeLoss = 0;
  let poeCalls = 0;
  // The stage whose texts are scored: the gate's, held at the last stage once every stage is claimed.
  const scoredStage = (env: number): number => Math.min(gates[env].stage, stages.length - 1);

  return {
    sarStage: (env) => (o.sar ? scoredStage(env) : 0),
    stageScore: (env) => scores[env],
    reset: (env: number, _start: ResetResult) => {
      gates[env].reset();
      baselines[env].reset();
      scores[env] = 0;
      o.poe?.progress.reset(env);
    },
    step: async (items: readonly RewardItem[]): Promise<RewardOut[]> => {
      const n = items.length;
      const stage = new Float64Array(n);
      if (o.sar) {
        const at = items.map((it) => scoredStage(it.env));
        const u = await o.sar.score(items.map((it, i) => ({ obs: it.result.obs, stage: at[i] })));
        items.forEach((it, i) => {
          scores[it.env] = u[i];
          stage[i] = baselines[it.env].reward(at[i], u[i]);
          // Without lookahead the gate claims at most one stage per step.
          for (const claimed of gates[it.env].push(u[i])) {
            claims++;
            if (!isTrueCompletion(claimed, names, it.result.info.predicates, it.result.info.stage)) falseClaims++;
          }
        });
      }
      const cur = new Float64Array(n);
      const prog = new Float64Array(n);
      const poe = o.poe;
      if (poe) {
        const zNow = new Float32Array(n * POSE_DIM);
        const zNext = new Float32Array(n * POSE_DIM);
        const action = new Float32Array(n * 7);
        items.forEach((it, i) => {
          // The object of the stage the policy is working on (SAR's stage: no ground truth).
          const object = stageObject(stages, o.sar ? scoredStage(it.env) : 0);
          relativePose(it.prevInfo.state, object, poe.config.translationScale, zNow.subarray(i * POSE_DIM, (i + 1) * POSE_DIM));
          relativePose(it.result.info.state, object, poe.config.translationScale, zNext.subarray(i * POSE_DIM, (i + 1) * POSE_DIM));
          action.set(it.action.slice(0, 7), i * 7);
        });
        const r = await poe.observe({ z: zNow, action, zNext, stream: items.map((it) => it.env) });
        cur.set(r.cur);
        prog.set(r.prog);
        poeLoss += r.trainLoss;
        poeCalls++;
      }
      return items.map((it, i) => {
        const b = combineRewards({ ext: it.result.info.rewardTerms.success ?? 0, stage: stage[i], cur: cur[i], prog: prog[i] }, rewardCfg);
        const terms: Record<string, number> = { ext: b.scaled.ext };
        if (o.sar) terms.stage = b.scaled.stage;
        if (o.poe) {
          terms.cur = b.scaled.cur;
          terms.prog = b.scaled.prog;
        }
        return { ext: b.extrinsic, int: b.intrinsic, terms };
      });
    },
    afterRollout: () => {
      const out: Record<string, number> = {};
      if (o.sar) {
        out.sar_claims = claims;
        out.sar_false_claims = falseClaims;
        out.hallucination = claims ? falseClaims / claims : NaN;
        claims = 0;
        falseClaims = 0;
      }
      if (o.poe) {
        out.poe_loss = poeCalls ? poeLoss / poeCalls : NaN;
        poeLoss = 0;
        poeCalls = 0;
      }
      return out;
    },
  };
}
