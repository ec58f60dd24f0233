/**
 * Running a task's scripted expert for one episode, optionally recording it to an episode file,
 * and replaying a recorded episode. Shared by `evovla demos`, `evovla replay` and the task bench.
 *
 * Actions are rounded to float32 before they reach the env, because episode files store them as
 * Float32Array: the recorded action is then exactly the applied one, and a replay from the seed
 * and the recorded actions reproduces the physics bit for bit.
 */
import type { SimEnv } from '../sim/env.ts';
import { ActionNoiseInjector, type ActionNoise } from './action_noise.ts';
import { EPISODE_FORMAT_VERSION, type EpisodeHeader, type StepRecord } from '../sim/record/types.ts';
import { EpisodeWriter } from '../sim/record/writer.ts';
import type { Task } from '../sim/task.ts';
import { Rng } from '../sim/rng.ts';
import type { StepInfo, StepResult, Vec3 } from '../sim/types.ts';

/** What one expert episode did. */
export interface EpisodeResult {
  seed: number;
  /** Control steps taken. */
  steps: number;
  success: boolean;
  failure: boolean;
  truncated: boolean;
  /** Highest ground-truth stage index reached (0..stages.length). */
  maxStage: number;
  /** Ground-truth stage at the end. */
  finalStage: number;
  /** Stage the expert was executing at the end. */
  expertStage: number;
  finalStateHash: string;
  /** For each stage, the first control step at which its predicate held (-1 if never). */
  firstTrue: number[];
  /** For each stage, the first control step at which the expert executed it (-1 if never). */
  firstCommanded: number[];
  /**
   * Control steps at which the ground-truth stage fell below the previous step's. Under a
   * successful expert each one is either a real setback (an object slipped) or noise in a predicate.
   */
  stageDrops: { step: number; from: number; to: number }[];
  /** Set when the expert gave up (e.g. an unreachable IK target). */
  error?: string;
  /** Path of the episode file, when recorded. */
  file?: string;
}

/** Stable JSON (sorted keys) so that equal configs hash equally. */
function stableJson(x: unknown): string {
  if (x === null || typeof x !== 'object') return JSON.stringify(x);
  if (Array.isArray(x)) return `[${x.map(stableJson).join(',')}]`;
  const o = x as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .filter((k) => o[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${stableJson(o[k])}`)
    .join(',')}}`;
}

/** FNV-1a 32-bit over a string, twice with different seeds, as 16 hex digits. */
function hashString(s: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0');
}

/**
 * Hash of everything that changes what an episode does besides the seed and the actions: the env
 * config, the task's id, time limit and stage names. Replay refuses a file whose hash differs.
 */
export function configHash(task: Task, envConfig: unknown): string {
  return hashString(stableJson({ env: envConfig, task: { id: task.id, maxSteps: task.maxSteps, stages: task.stages.map((s) => s.name) } }));
}

/**
 * The header of an episode file written by `runExpertEpisode`. Call after `env.reset()`: `meta`
 * carries the env config (`envConfig`) and the episode's scene (`scene`, the SceneDesc the reset
 * built), so readers such as the viewer can draw the episode without the task registry; entries
 * of `meta` given here override both.
 */
export function episodeHeader(env: SimEnv, task: Task, seed: number, meta: Record<string, unknown> = {}): EpisodeHeader {
  return {
    format: 'evovla.episode',
    version: EPISODE_FORMAT_VERSION,
    task: task.id,
    instruction: task.instruction,
    robot: env.robot.id,
    seed,
    controlHz: env.config.controlHz,
    physicsHz: env.config.physicsHz,
    actionMode: env.actionMode,
    configHash: configHash(task, env.config),
    stages: task.stages.map((s) => s.name),
    cameras: env.config.cameras.map((c) => c.name),
    meta: {
      envConfig: structuredClone(env.config),
      ...(env.randomization ? { scene: task.buildScene(env.randomization) } : {}),
      ...(env.physicsSample ? { physics: structuredClone(env.physicsSample) } : {}),
      ...meta,
    },
  };
}

/**
 * The episode-file record of one env step: the action sent, the observation and the step's ground
 * truth; `commandedStage` is the stage a scripted expert says it executes (omitted for policies).
 * With `executedAction` (action noise), `action` is the label and `executedAction` what was sent.
 */
export function stepRecord(res: StepResult, action: Float32Array, commandedStage?: number, executedAction?: Float32Array): StepRecord {
  const info: StepInfo = res.info;
  const s = info.state;
  const rec: StepRecord = {
    step: s.step,
    time: s.time,
    action,
    proprio: res.obs.proprio,
    links: s.links,
    ee: s.ee,
    objects: s.objects,
    predicates: info.predicates,
    stage: info.stage,
    rewardTerms: info.rewardTerms,
    reward: res.reward,
    terminated: res.terminated,
    truncated: res.truncated,
  };
  if (commandedStage !== undefined) rec.commandedStage = commandedStage;
  if (executedAction !== undefined) rec.executedAction = executedAction;
  if (res.obs.images) rec.images = res.obs.images;
  return rec;
}

/**
 * Reset `env` with `seed`, run the task's expert until the episode ends, and (when `file` is given)
 * record it. An expert that gives up (IK failure) ends the episode as a failure with `error` set;
 * the episode file is still written and closed.
 */
/**
 * Gaussian noise on an expert's target positions: an offset of `std` metres per axis, drawn from
 * `seed` and held for `holdS` seconds, is added to every tool target the expert sets while it is
 * in force (a robustness test: does the expert still succeed when it aims a little off?).
 */
export interface TargetNoise {
  std: number;
  holdS: number;
  seed: number;
}

/** An ExpertTools perturbation for `noise`. */
export function targetNoisePerturbation(noise: TargetNoise): (p: Vec3, time: number) => Vec3 {
  const rng = new Rng(noise.seed);
  let period = -1;
  let offset: Vec3 = [0, 0, 0];
  return (p, time) => {
    const k = Math.floor(time / noise.holdS);
    // Draw every period in turn, so the offset at a time does not depend on which steps asked.
    while (period < k) {
      offset = [rng.normal(0, noise.std), rng.normal(0, noise.std), rng.normal(0, noise.std)];
      period++;
    }
    return [p[0] + offset[0], p[1] + offset[1], p[2] + offset[2]];
  };
}

/** Options of an expert episode. */
export interface ExpertEpisodeOptions {
  /** Episode file to record (none: not recorded). */
  file?: string;
  /** Extra header meta. */
  meta?: Record<string, unknown>;
  /** Offsets on the expert's tool targets (the expert's own aim is off; a robustness test). */
  targetNoise?: TargetNoise;
  /**
   * Noise on the executed joint targets (DART recovery data, tasks/action_noise.ts): the env gets
   * the expert's action plus noise, the file records the clean action as `action` and the sent one
   * as `executedAction`, and the header's `meta.actionNoise` names the setting. Off when absent or
   * when std is 0.
   */
  actionNoise?: ActionNoise;
}

export function runExpertEpisode(
  env: SimEnv,
  task: Task,
  seed: number,
  opts: ExpertEpisodeOptions = {},
): EpisodeResult {
  const run = expertEpisodeSteps(env, task, seed, opts);
  for (;;) {
    const next = run.next();
    if (next.done) return next.value;
  }
}

/**
 * `runExpertEpisode` one control step at a time: yields the number of steps taken after each step
 * and returns the result. A caller that must stay responsive (Ctrl+C, a live view) drives it and
 * gives the event loop a turn between steps; stopping it early (`return()`) closes the episode
 * file without a footer and leaves it as `<file>.partial`, as a crash would.
 */
export function* expertEpisodeSteps(
  env: SimEnv,
  task: Task,
  seed: number,
  opts: ExpertEpisodeOptions = {},
): Generator<number, EpisodeResult, void> {
  const reset = env.reset({ seed });
  if (!env.randomization) throw new Error('env.reset() left no randomization');
  const tools = env.expertTools();
  const expert = task.expert(
    env.randomization,
    opts.targetNoise ? { ...tools, perturbTarget: targetNoisePerturbation(opts.targetNoise) } : tools,
  );
  const noise = opts.actionNoise && opts.actionNoise.std > 0 ? new ActionNoiseInjector(opts.actionNoise, seed) : null;
  const noiseMeta = noise ? { actionNoise: { ...noise.noise }, actionLabels: 'expert action from the perturbed state; executedAction was sent' } : {};
  const writer = opts.file ? EpisodeWriter.open(opts.file, episodeHeader(env, task, seed, { writer: 'scripted-expert', ...noiseMeta, ...opts.meta })) : null;
  const n = task.stages.length;
  const firstTrue = new Array<number>(n).fill(-1);
  const firstCommanded = new Array<number>(n).fill(-1);
  const markTrue = (info: StepInfo, step: number) => {
    for (let k = 0; k < n; k++) if (firstTrue[k] < 0 && info.predicates[task.stages[k].name]) firstTrue[k] = step;
  };
  let info = reset.info;
  markTrue(info, 0);
  let maxStage = info.stage;
  const stageDrops: EpisodeResult['stageDrops'] = [];
  let steps = 0;
  let expertStage = 0;
  let error: string | undefined;
  let last: StepResult | null = null;
  let finished = false;
  try {
    try {
      for (;;) {
        const out = expert.act(info.state);
        expertStage = out.stage;
        if (expertStage < n && firstCommanded[expertStage] < 0) firstCommanded[expertStage] = steps;
        const action = Float32Array.from(out.action as ArrayLike<number>);
        const executed = noise ? noise.apply(action) : action;
        last = env.step(executed);
        steps++;
        if (last.info.stage < info.stage) stageDrops.push({ step: steps, from: info.stage, to: last.info.stage });
        info = last.info;
        markTrue(info, steps);
        maxStage = Math.max(maxStage, info.stage);
        writer?.append(stepRecord(last, action, expertStage, noise ? executed : undefined));
        if (last.terminated || last.truncated) break;
        yield steps;
      }
    } catch (err) {
      // Only the expert's own refusal (an unreachable target) ends an episode quietly; anything else
      // is a bug and propagates after the partial file is closed.
      if ((err as Error).name !== 'ExpertIkError') {
        writer?.discard();
        throw err;
      }
      error = (err as Error).message;
    }
    const finalStateHash = env.stateHash();
    const result: EpisodeResult = {
      seed,
      steps,
      success: info.success,
      failure: info.failure || error !== undefined,
      truncated: last?.truncated ?? false,
      maxStage,
      finalStage: info.stage,
      expertStage,
      finalStateHash,
      firstTrue,
      firstCommanded,
      stageDrops,
    };
    if (error) result.error = error;
    if (writer) result.file = writer.close({ steps, success: info.success, finalStateHash, maxStage });
    finished = true;
    return result;
  } finally {
    // Stopped between steps by the caller: keep what was recorded as a .partial file.
    if (!finished) writer?.abandon();
  }
}

/** Outcome of replaying recorded actions. */
export interface ReplayResult {
  steps: number;
  finalStateHash: string;
  success: boolean;
  /** First step whose recorded ground-truth stage differs from the replay's (-1 if none). */
  firstStageMismatch: number;
}

/** Reset with `seed` and step the recorded actions in order. */
export function replayActions(env: SimEnv, seed: number, actions: ArrayLike<number>[], recordedStages?: number[]): ReplayResult {
  env.reset({ seed });
  let success = false;
  let firstStageMismatch = -1;
  for (let i = 0; i < actions.length; i++) {
    const res = env.step(actions[i]);
    success = res.info.success;
    if (recordedStages && firstStageMismatch < 0 && recordedStages[i] !== res.info.stage) firstStageMismatch = i;
    if ((res.terminated || res.truncated) && i < actions.length - 1) {
      throw new Error(`replay ended at step ${i + 1} (${res.terminated ? 'terminated' : 'truncated'}) but the file has ${actions.length} actions`);
    }
  }
  return { steps: actions.length, finalStateHash: env.stateHash(), success, firstStageMismatch };
}

/** Wilson score interval for a binomial proportion (z = 1.96 for 95%). */
export function wilsonInterval(successes: number, n: number, z = 1.96): { rate: number; low: number; high: number } {
  if (n === 0) return { rate: 0, low: 0, high: 1 };
  const p = successes / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  return { rate: p, low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

/** Does the ground truth follow the expert? Stage k's predicate first holds no earlier than stage k-1's, for every stage that became true. */
export function stageOrderViolations(r: EpisodeResult): string[] {
  const out: string[] = [];
  let prev = -1;
  let prevK = -1;
  for (let k = 0; k < r.firstTrue.length; k++) {
    const t = r.firstTrue[k];
    if (t < 0) continue;
    if (t < prev) out.push(`stage ${k} first true at step ${t}, before stage ${prevK} (step ${prev})`);
    prev = Math.max(prev, t);
    prevK = k;
  }
  return out;
}
