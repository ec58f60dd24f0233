/**
 * EvoVLA's reward for PPO (policy/train/ppo.ts's RewardModel), assembled from rewards/:
 *
 * - ext: the task's success term (1 on the step that succeeds);
 * - stage (SAR): u_c - ubar_c for the SAR stage c an env is in, where u_c is the frozen SAR
 *   encoder's stage score of the new observation and c advances through a stage gate (mean u_c over
 *   the last m steps >= theta). The per-env gate, baselines and claims are rewards/sar/online.ts's
 *   SarGateTracker, with the scorer's stored settings (configs/sar.yaml) unless `gate` overrides a
 *   key. Ground truth is never read for the reward; it is read only to judge each gate claim
 *   (stage hallucination);
 * - cur, prog (POE): curiosity and progress of the pose world model on the pose of the SAR stage's
 *   object in the tool frame; the world model trains on every step's transitions (online).
 *
 * r_ext feeds the extrinsic critic, rho-free intrinsic sum (stage + cur + prog, scaled) the
 * intrinsic critic; rewards/terms.ts's combineRewards applies the configured scales.
 */
import type { Observation, ResetResult } from '../../sim/types.ts';
import type { Task } from '../../sim/task.ts';
import { parseRewardConfig, type RewardConfig } from '../../rewards/config.ts';
import { POSE_DIM, relativePose, stageObject } from '../../rewards/poe/pose.ts';
import type { PoseWorldModel } from '../../rewards/poe/world_model.ts';
import type { SarGateOverride } from '../../rewards/sar/config.ts';
import { checkStages, SarGateTracker, sarGateSettings } from '../../rewards/sar/online.ts';
import type { SarMetadata } from '../../rewards/sar/scorer.ts';
import { reachShaping, shapingObjects } from '../../rewards/shaping.ts';
import { combineRewards } from '../../rewards/terms.ts';
import type { RewardItem, RewardModel, RewardOut } from './ppo.ts';

/** Scores observations against stage texts with the (frozen) SAR encoder: u_k in 0..1 per item. */
export interface StageScorer {
  score(items: ReadonlyArray<{ obs: Observation; stage: number }>): Promise<Float32Array | number[]>;
  /** The gate and smoothing the scorer was trained and judged with (sar.json; configs/sar.yaml's defaults). */
  meta: Pick<SarMetadata, 'task' | 'layout' | 'gate' | 'alpha'>;
}

/** Options of evovlaRewards. */
export interface EvoVlaRewardOptions {
  task: Task;
  numEnvs: number;
  /** SAR scorer; null: no stage reward, no gate (the baseline arm). */
  sar: StageScorer | null;
  /** POE world model; null: no curiosity or progress. */
  poe: PoseWorldModel | null;
  /**
   * Ground-truth-free shaping (rewards/shaping.ts: potential on the tool's distance to the nearest
   * task object), added to the extrinsic stream and logged as `reward/shape`; null: none.
   */
  shaping?: { scale: number; gamma: number } | null;
  /** Key-by-key override of the scorer's stored gate settings (a PPO phase's `gate`). */
  gate?: Readonly<SarGateOverride> | null;
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
  const rewardCfg = o.rewards ?? parseRewardConfig({});
  // The one per-env gate bookkeeping (rewards/sar/online.ts), with the scorer's settings.
  let tracker: SarGateTracker | null = null;
  if (o.sar) {
    checkStages(o.sar.meta, names);
    tracker = new SarGateTracker(names, o.numEnvs, sarGateSettings(o.sar.meta, o.gate));
  }
  let poeLoss = 0;
  let poeCalls = 0;
  const scoredStage = (env: number): number => (tracker ? tracker.scoredStage(env) : 0);
  const shapeObjects = shapingObjects(stages);

  return {
    sarStage: (env) => scoredStage(env),
    stageScore: (env) => (tracker ? tracker.lastScore(env) : 0),
    reset: (env: number, _start: ResetResult) => {
      tracker?.endEpisode(env);
      o.poe?.progress.reset(env);
    },
    step: async (items: readonly RewardItem[]): Promise<RewardOut[]> => {
      const n = items.length;
      const stage = new Float64Array(n);
      if (o.sar && tracker) {
        const t = tracker;
        // Score the gate's stage of every item, and stage k+1 where the gate looks ahead.
        const asked = items.map((it) => ({ obs: it.result.obs, stage: t.scoredStage(it.env) }));
        const nextAt = items.map((it, i) => (t.watchesNext(it.env) ? asked.push({ obs: it.result.obs, stage: asked[i].stage + 1 }) - 1 : -1));
        const u = await o.sar.score(asked);
        items.forEach((it, i) => {
          stage[i] = t.push(it.env, u[i], it.result.info, nextAt[i] >= 0 ? u[nextAt[i]] : undefined).stage;
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
        let ext = b.extrinsic;
        if (o.shaping) {
          const shape = o.shaping.scale * reachShaping(it.prevInfo.state, it.result.info.state, shapeObjects, o.shaping.gamma, it.result.terminated);
          terms.shape = shape;
          ext += shape;
        }
        if (o.sar) terms.stage = b.scaled.stage;
        if (o.poe) {
          terms.cur = b.scaled.cur;
          terms.prog = b.scaled.prog;
        }
        return { ext, int: b.intrinsic, terms };
      });
    },
    afterRollout: () => {
      const out: Record<string, number> = {};
      if (tracker) {
        const c = tracker.drainCounts();
        out.sar_claims = c.claims;
        out.sar_false_claims = c.falseClaims;
        out.hallucination = c.claims ? c.falseClaims / c.claims : NaN;
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
