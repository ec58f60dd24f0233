/**
 * The PPO phase of a training run (`- kind: ppo` in a config's phases): EvoVLA's self-evolving
 * step on the behaviour-cloned VLA.
 *
 *   1. build PPO's view of the VLA (policy/train/vla_ppo.ts): frozen trunk -> features ->
 *      memory fusion -> heads; the bank, SAR (frozen) and POE (online) per the phase's switches;
 *   2. evaluate the greedy policy on held-out seeds: success and SAR-gate hallucination "before";
 *   3. train with policy/train/ppo.ts for `totalSteps` env steps (one metrics line per iteration);
 *   4. evaluate again ("after"), and hand the fused inference model to the run, which exports it
 *      as policy.onnx (played one action per control step: the step PPO trained).
 */
import { parsePoeConfig } from '../../rewards/poe/world_model.ts';
import { PoseWorldModel } from '../../rewards/poe/world_model.ts';
import { wilsonInterval } from '../../tasks/rollout.ts';
import type { Task } from '../../sim/task.ts';
import { ENV_CAMERAS_MODULE } from '../../sim/render/vec_cameras.ts';
import { VecEnv } from '../../sim/vec_env.ts';
import { MemoryBank, parseMemoryBankConfig } from '../memory/bank.ts';
import type { PhaseContext } from './bc.ts';
import { EVAL_SEED_BASE, type PpoPhaseConfig } from './config.ts';
import { evovlaRewards, type EvoVlaRewards, type StageScorer } from './evovla_rewards.ts';
import { evaluateGreedy, parsePpoConfig, ppoConfigSchema, trainPpo, type GreedyEval, type IterationMetrics, type TrainPpoOptions, type TrainPpoResult } from './ppo.ts';
import type { Vla } from '../vla/model.ts';
import { loadPpoCheckpoint, savePpoCheckpoint, type PpoCheckpointParts } from './ppo_checkpoint.ts';
import { vlaEncoder, vlaPpoModel, type VlaEncoder, type VlaPpoModel } from './vla_ppo.ts';

/** Success and hallucination of one greedy evaluation. */
export interface PhaseEval {
  episodes: number;
  successes: number;
  success: { rate: number; low: number; high: number };
  /** Mean furthest ground-truth stage. */
  furthestStage: number;
  /** SAR-gate claims judged against the ground truth (null without SAR). */
  hallucination: { claims: number; false: number; rate: number; low: number; high: number } | null;
}

/** What the phase reports (the run stores it in its summary). */
export interface PpoPhaseResult {
  envSteps: number;
  iterations: number;
  seconds: number;
  before: PhaseEval | null;
  after: PhaseEval | null;
  /** Last iteration's metrics line. */
  last: IterationMetrics | null;
  stoppedEarly: boolean;
  /** How policy.onnx must be played after this phase. */
  inference: { mode: 'chunk'; execute: number; ensembleDecay: number };
}

/** The part of a run's PhaseContext the PPO phase uses (the ablation bench builds one itself). */
export type PpoPhaseContext = Pick<PhaseContext, 'vla' | 'threads' | 'phaseIndex' | 'logMetrics' | 'progress'>;

/** What the phase needs beyond the PhaseContext. */
export interface PpoPhaseDeps {
  task: Task;
  /** The SAR scorer from the run's SAR phase (required when the phase has sar: true). */
  sar: StageScorer | null;
  log: (line: string) => void;
  /** Only evaluate (the ablation's starting point): no PPO iteration runs. */
  skipTraining?: boolean;
  /** Evaluate before PPO too (default true; the ablation evaluates its shared start once). */
  evalBefore?: boolean;
  /** Seeds of the greedy evaluations (default: evalEpisodes seeds from EVAL_SEED_BASE + 500,000). */
  evalSeeds?: readonly number[];
  /**
   * Checkpoints (policy/train/ppo_checkpoint.ts): the run's folder, how many of this phase to keep,
   * and the checkpoint to resume from (null: start PPO from the model as it is). Every
   * `checkpointEvery` iterations of the phase config, and after the last.
   */
  checkpoints?: { dir: string; keep: number; resumeFrom: string | null };
  /** Runs PPO's iterations in trainPpo's place (`evovla train --nats`: rollouts by remote workers). */
  trainer?: PpoTrainer;
}

/**
 * A replacement for trainPpo: the same options and result, plus the phase's VLA (trunk weights
 * and statistics, for workers that build the same rollout) and config.
 */
export type PpoTrainer = (o: TrainPpoOptions, phase: { vla: Vla; config: PpoPhaseConfig; index: number }) => Promise<TrainPpoResult>;

/** Summarises a greedy evaluation. */
export function phaseEval(r: GreedyEval): PhaseEval {
  const n = r.episodes.length;
  const claims = r.rewardMetrics.sar_claims;
  const falseClaims = r.rewardMetrics.sar_false_claims;
  return {
    episodes: n,
    successes: r.successes,
    success: wilsonInterval(r.successes, n),
    furthestStage: n ? r.episodes.reduce((s, e) => s + e.furthestStage, 0) / n : 0,
    hallucination: claims === undefined ? null : { claims, false: falseClaims, ...wilsonInterval(falseClaims, claims) },
  };
}

/** One line for an evaluation. */
export function formatPhaseEval(e: PhaseEval): string {
  const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
  const h = e.hallucination;
  const hall = h ? `hallucination ${h.claims ? `${pct(h.rate)} [${pct(h.low)}, ${pct(h.high)}] of ${h.claims} gate claims` : 'n/a (no gate claims)'}` : 'hallucination n/a (no SAR)';
  return `success ${e.successes}/${e.episodes} = ${pct(e.success.rate)} [95% CI ${pct(e.success.low)}, ${pct(e.success.high)}], mean furthest stage ${e.furthestStage.toFixed(2)}; ${hall}`;
}

/** The rollout of a VLA PPO phase: what the local phase and a distributed worker both train on. */
export interface VlaRollout {
  env: VecEnv;
  /** PPO's view of the VLA (frozen trunk -> memory fusion -> heads) and its action map. */
  model: VlaPpoModel;
  encoder: VlaEncoder;
  /** EvoVLA's reward model: task success (+ shaping), SAR stage reward and gate, POE. */
  rewards: EvoVlaRewards;
  poe: PoseWorldModel | null;
  /** Releases the encoder, the POE world model and the env. */
  close(): Promise<void>;
}

/**
 * Builds the rollout of PPO phase `phase` on `vla`: a VecEnv of `numEnvs` envs with the policy's
 * cameras in `workers` processes, the frozen SAR scorer `sar` (null: no stage reward), a fresh POE
 * world model, the key-frame bank, and the trunk encoder. The bank reads its stage score and stage
 * object from `stageSource()` when it returns a reward model (the phase's evaluations swap in their
 * own), else from the rollout's. Used by runPpoPhase and by `evovla worker` on a distributed run
 * (scale/ppo_worker.ts), so both roll out the same way.
 */
export async function buildVlaRollout(o: {
  vla: Vla;
  task: Task;
  phase: PpoPhaseConfig;
  numEnvs: number;
  workers: number;
  threads: number;
  gamma: number;
  sar: StageScorer | null;
  stageSource?: () => EvoVlaRewards | null;
}): Promise<VlaRollout> {
  const { vla, task, phase } = o;
  const model = vlaPpoModel(vla, phase.memory ? phase.memorySlots : 0);
  const c = vla.config;
  const cameras = c.cameras.map((name) => ({ name, width: c.imageSize, height: c.imageSize, depth: false, segmentation: false }));
  const env = await VecEnv.create({
    taskModule: new URL('../../tasks/index.ts', import.meta.url).href,
    taskId: task.id,
    numEnvs: o.numEnvs,
    workers: o.workers,
    config: { cameras, ...(phase.episodeSteps ? { maxSteps: phase.episodeSteps } : {}), ...(phase.physicsRandomization ? { physicsRandomization: phase.physicsRandomization } : {}) },
    envSetupModule: ENV_CAMERAS_MODULE,
  });
  let poe: PoseWorldModel | null = null;
  try {
    poe = phase.poe ? await PoseWorldModel.create(parsePoeConfig({ ...phase.poeModel, threads: 1 })) : null;
    const shaping = phase.shaping ? { scale: phase.shaping.scale, gamma: o.gamma } : null;
    const rewards = evovlaRewards({ task, numEnvs: o.numEnvs, sar: o.sar, poe, shaping, gate: phase.gate ?? undefined, rewards: phase.rewards });
    const bank = phase.memory ? new MemoryBank(o.numEnvs, c.width, parseMemoryBankConfig({ slots: phase.memorySlots })) : null;
    const from = (): EvoVlaRewards => o.stageSource?.() ?? rewards;
    const encoder = await vlaEncoder(vla, { task, numEnvs: o.numEnvs, threads: o.threads, bank, stageScore: (e) => from().stageScore(e), sarStage: (e) => from().sarStage(e) });
    const w = poe;
    return {
      env,
      model,
      encoder,
      rewards,
      poe,
      close: async () => {
        await encoder.dispose();
        await w?.dispose();
        await env.close();
      },
    };
  } catch (err) {
    await poe?.dispose();
    await env.close();
    throw err;
  }
}

/** Runs the phase on ctx.vla (its heads and memory gate change in place). */
export async function runPpoPhase(ctx: PpoPhaseContext, cfg: PpoPhaseConfig, deps: PpoPhaseDeps): Promise<PpoPhaseResult> {
  const { task, log } = deps;
  if (cfg.sar && !deps.sar) throw new Error("phase 'ppo' has sar: true but no SAR model was trained or loaded before it (add a 'sar' phase before 'ppo', or set sar: false)");
  const vla = ctx.vla;
  const ppoKeys = Object.keys(ppoConfigSchema.shape);
  const ppo = parsePpoConfig(Object.fromEntries(Object.entries(cfg).filter(([k]) => ppoKeys.includes(k))), `phases.${ctx.phaseIndex}`);
  if (cfg.initLogStd !== null) vla.params.get('head.log_std').data = new Float32Array(vla.head.logStd.data.length).fill(cfg.initLogStd);
  let stageFrom: EvoVlaRewards | null = null;
  const rollout = await buildVlaRollout({ vla, task, phase: cfg, numEnvs: cfg.envs, workers: Math.min(cfg.workers, cfg.envs), threads: ctx.threads, gamma: ppo.gamma, sar: cfg.sar ? deps.sar : null, stageSource: () => stageFrom });
  const { env, model, encoder, rewards, poe } = rollout;
  // Evaluation judges the SAR gate's claims whenever a SAR model exists (also for arms that do not
  // train on SAR: hallucination is a property of the trajectories), and trains nothing (no POE).
  const evalRewards = evovlaRewards({ task, numEnvs: cfg.envs, sar: deps.sar, poe: null, gate: cfg.gate ?? undefined, rewards: cfg.rewards });
  const run = { env, actorCritic: model.actorCritic, encoder, actionMap: model.actionMap, threads: ctx.threads };
  const seeds = deps.evalSeeds ?? Array.from({ length: cfg.evalEpisodes }, (_, i) => EVAL_SEED_BASE + 500_000 + i);
  const ckpt = deps.checkpoints;
  const parts: PpoCheckpointParts = { vla: vla.params, poe: poe ? poe.checkpointParts() : null };
  const t0 = performance.now();
  try {
    let before: PhaseEval | null = null;
    if (ckpt?.resumeFrom) {
      // Resumed: the weights are the checkpoint's (loaded below, inside trainPpo); the "before"
      // figures were measured on the BC weights and stored with it.
      log(`ppo: resuming from ${ckpt.resumeFrom}`);
    } else if (seeds.length && deps.evalBefore !== false) {
      stageFrom = evalRewards;
      before = phaseEval(await evaluateGreedy({ ...run, rewards: evalRewards }, seeds));
      log(`ppo: before: ${formatPhaseEval(before)}`);
    }
    stageFrom = rewards;
    const total = Math.floor(ppo.totalSteps / ppo.rolloutSteps);
    let last: IterationMetrics | null = null;
    let done = 0;
    const train = deps.trainer ? (o: TrainPpoOptions) => deps.trainer!(o, { vla, config: cfg, index: ctx.phaseIndex }) : trainPpo;
    const { iterations } = deps.skipTraining ? { iterations: [] } : await train({
      ...run,
      config: ppo,
      rewards,
      ...(ckpt
        ? {
            checkpoint: {
              every: cfg.checkpointEvery,
              save: (s) => {
                savePpoCheckpoint(ckpt.dir, ctx.phaseIndex, ckpt.keep, s, parts, { before, env_steps: s.iteration * ppo.rolloutSteps });
              },
            },
            restore: (s) => {
              if (!ckpt.resumeFrom) return 0;
              const r = loadPpoCheckpoint(ckpt.resumeFrom, s, parts);
              before = (r.extra.before as PhaseEval | null) ?? null;
              done = r.iteration;
              log(`ppo: resumed after iteration ${r.iteration} of ${total} (${r.iteration * ppo.rolloutSteps} env steps)`);
              return r.iteration;
            },
          }
        : {}),
      onIteration: (m) => {
        last = m;
        const line: Record<string, number | string> = { phase: 'ppo', step: m.iteration };
        for (const [k, v] of Object.entries(m)) if (typeof v === 'number') line[k] = v;
        ctx.logMetrics(line);
        const s = m.success === null ? '-' : (m.success as number).toFixed(2);
        ctx.progress(m.iteration, total, `success ${s} stage ${m.furthest_stage === null ? '-' : (m.furthest_stage as number).toFixed(1)} kl ${m.approx_kl.toFixed(3)}`);
      },
    });
    let after: PhaseEval | null = null;
    if (seeds.length && !deps.skipTraining) {
      stageFrom = evalRewards;
      after = phaseEval(await evaluateGreedy({ ...run, rewards: evalRewards }, seeds));
      log(`ppo: after: ${formatPhaseEval(after)}`);
    }
    // The run exports this model as policy.onnx: trunk -> fusion -> heads.
    vla.inference = model.inference;
    return {
      envSteps: (done + iterations.length) * ppo.rolloutSteps,
      iterations: done + iterations.length,
      seconds: (performance.now() - t0) / 1000,
      before,
      after,
      last,
      stoppedEarly: false,
      inference: { mode: 'chunk', execute: 1, ensembleDecay: 0.1 },
    };
  } finally {
    await rollout.close();
  }
}
