/**
 * Closed-loop evaluation of an ONNX policy on a task: `evovla eval`.
 *
 * Seeds: demos use seeds 0, 1, 2, ... (`data.demoSeed` + i); evaluation uses EVAL_SEED_BASE
 * (1,000,000) + offset + i, so no evaluated scene was ever a training demo.
 *
 * Envs run in env slots, each a one-env VecEnv in its own worker process with cameras
 * (sim/render/vec_cameras.ts), so a slot starts its next episode as soon as one ends (a VecEnv
 * resets all its envs together; one env per VecEnv avoids stepping finished envs). The policy runs
 * here, batched over the slots that need an action chunk.
 *
 * Any ONNX file with the documented inputs (proprio; image_<camera> for the cameras in
 * evovla.cameras; optional instruction with evovla.tokenizer; optional memory + memory_mask) and
 * an `action` output [B,7] or [B,K,7] is accepted.
 *
 * Memory: a policy with memory inputs and a `features` output gets the key-frame bank kept the way
 * PPO keeps it (policy/memory/bank.ts; policy/train/vla_ppo.ts): each time the policy is asked, the
 * bank sees the step (features, SAR's latest stage score, the pose of SAR's stage object in the
 * tool frame) and the policy reads the bank. Without a `features` output the memory is fed empty.
 *
 * SAR (`sar`): the stage-aligned reward's gate runs beside the policy (rewards/sar/online.ts), each
 * gate completion is judged against the simulator's ground truth, and the result carries the stage
 * hallucination rate per episode and pooled with a 95% Wilson interval; recorded steps carry the
 * gate's stage (`sarStage`) and its claims (`sarClaims`, hallucinated ones flagged) for the viewer.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSession, type HostTensor, type Session } from '../nn/runtime.ts';
import { Tokenizer } from '../nn/tokenizer.ts';
import { aggregateHallucination, type EpisodeHallucination, type HallucinationSummary } from '../rewards/hallucination.ts';
import { relativePose, stageObject } from '../rewards/poe/pose.ts';
import type { SarGateOverride } from '../rewards/sar/config.ts';
import { SarRewarder } from '../rewards/sar/online.ts';
import { SarScorer } from '../rewards/sar/scorer.ts';
import { readOnnxInfo, type OnnxModelInfo } from '../robot/policies/onnx_meta.ts';
import { createEnv, type SimEnv } from '../sim/env.ts';
import { makeDirectory } from '../sim/files.ts';
import { EpisodeWriter } from '../sim/record/writer.ts';
import type { StepResult } from '../sim/types.ts';
import { VecEnv } from '../sim/vec_env.ts';
import { getTask } from '../tasks/index.ts';
import { episodeHeader, stepRecord, wilsonInterval } from '../tasks/rollout.ts';
import { MemoryBank, parseMemoryBankConfig } from './memory/bank.ts';

/** How the chunk is played: see the `inference` section of the training config. */
export interface InferenceMode {
  mode: 'chunk' | 'ensemble';
  execute: number;
  ensembleDecay: number;
}

/** A policy file that cannot be read or does not follow the policy contract (docs/policy.md). */
export class PolicyFileError extends Error {
  override name = 'PolicyFileError';
}

/** A policy file opened for batched closed-loop use. */
export class BatchedPolicy {
  private constructor(
    readonly file: string,
    readonly session: Session,
    readonly info: OnnxModelInfo,
    readonly cameras: { name: string; width: number; height: number }[],
    readonly tokenizer: Tokenizer | null,
    readonly instructionLength: number,
    readonly memory: { slots: number; size: number } | null,
    /** Chunk length K (1 for an [B,7] action). */
    readonly chunk: number,
    readonly inference: InferenceMode | null,
    /** Whether the model has a `features` output (pooled trunk features, [B,F]). */
    readonly hasFeatures: boolean,
  ) {}

  /** Opens and checks a policy file; a `PolicyFileError` names what is missing or malformed. */
  static async open(file: string, threads = 1): Promise<BatchedPolicy> {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(file);
    } catch (err) {
      throw new PolicyFileError(`cannot read policy '${file}': ${(err as Error).message}`);
    }
    let info: OnnxModelInfo;
    try {
      info = readOnnxInfo(bytes);
    } catch (err) {
      throw new PolicyFileError(`${file}: ${(err as Error).message}`);
    }
    const meta = info.metadata;
    const inputs = new Map(info.inputs.map((v) => [v.name, v]));
    if (!inputs.has('proprio')) throw new PolicyFileError(`${file}: no input 'proprio' (inputs: ${[...inputs.keys()].join(', ')}); expected proprio float32 [B, 7]`);
    const cameras = meta['evovla.cameras'] ? (JSON.parse(meta['evovla.cameras']) as { name: string; width: number; height: number }[]) : [];
    for (const c of cameras) if (!inputs.has(`image_${c.name}`)) throw new PolicyFileError(`${file}: evovla.cameras lists '${c.name}' but there is no input image_${c.name}`);
    let tokenizer: Tokenizer | null = null;
    let instructionLength = 0;
    const instr = inputs.get('instruction');
    if (instr) {
      if (!meta['evovla.tokenizer']) throw new PolicyFileError(`${file}: input 'instruction' needs metadata evovla.tokenizer (the vocabulary; nn/tokenizer.ts toJSON)`);
      tokenizer = Tokenizer.fromJSON(meta['evovla.tokenizer']);
      const L = instr.shape[1];
      instructionLength = typeof L === 'number' ? L : tokenizer.maxLength;
    }
    let memory: { slots: number; size: number } | null = null;
    const mem = inputs.get('memory');
    if (mem) {
      const [, m, f] = mem.shape;
      if (typeof m !== 'number' || typeof f !== 'number') throw new PolicyFileError(`${file}: input memory must have static [B, M, F], got [${mem.shape.join(', ')}]`);
      memory = { slots: m, size: f };
    }
    const known = new Set(['proprio', 'instruction', 'memory', 'memory_mask', ...cameras.map((c) => `image_${c.name}`)]);
    const unknown = [...inputs.keys()].filter((n) => !known.has(n));
    if (unknown.length) throw new PolicyFileError(`${file}: inputs ${unknown.join(', ')} are not part of the policy contract (docs/policy.md)`);
    const action = info.outputs.find((o) => o.name === 'action');
    if (!action) throw new PolicyFileError(`${file}: no output 'action'`);
    const chunk = action.shape.length === 3 && typeof action.shape[1] === 'number' ? action.shape[1] : 1;
    const inference = meta['evovla.inference'] ? (JSON.parse(meta['evovla.inference']) as InferenceMode) : null;
    const features = info.outputs.find((o) => o.name === 'features');
    const session = await createSession(bytes, { threads });
    return new BatchedPolicy(file, session, info, cameras, tokenizer, instructionLength, memory, chunk, inference, features !== undefined);
  }

  /** Action chunks [n][K][7] for n observations (`memory`: the bank's batch; default empty). */
  async act(obs: PolicyObservation[], memory?: { memory: Float32Array; mask: Float32Array }): Promise<Float32Array[][]> {
    const out = await this.session.run(this.feeds(obs, memory), ['action']);
    const a = out.action.data as Float32Array;
    const K = this.chunk;
    return Array.from({ length: obs.length }, (_, i) => Array.from({ length: K }, (_, k) => a.slice((i * K + k) * 7, (i * K + k + 1) * 7)));
  }

  /** Pooled trunk features [n*F] of n observations (the trunk does not read the memory). */
  async features(obs: PolicyObservation[]): Promise<Float32Array> {
    if (!this.hasFeatures) throw new Error(`policy ${this.file} has no 'features' output`);
    const out = await this.session.run(this.feeds(obs), ['features']);
    return out.features.data as Float32Array;
  }

  private feeds(obs: PolicyObservation[], memory?: { memory: Float32Array; mask: Float32Array }): Record<string, HostTensor> {
    const n = obs.length;
    const feeds: Record<string, HostTensor> = {};
    const proprio = new Float32Array(n * 7);
    obs.forEach((o, i) => {
      for (let d = 0; d < 7; d++) proprio[i * 7 + d] = o.proprio[d];
    });
    feeds.proprio = { data: proprio, shape: [n, 7] };
    for (const c of this.cameras) {
      const plane = c.width * c.height;
      const data = new Float32Array(n * 3 * plane);
      obs.forEach((o, i) => {
        const f = o.images?.[c.name];
        if (!f) throw new Error(`policy ${this.file} needs camera '${c.name}' but the observation has none`);
        if (f.width !== c.width || f.height !== c.height) throw new Error(`camera '${c.name}' frame is ${f.width}x${f.height}, policy expects ${c.width}x${c.height}`);
        const base = i * 3 * plane;
        for (let p = 0; p < plane; p++) {
          data[base + p] = f.rgb[3 * p] / 255;
          data[base + plane + p] = f.rgb[3 * p + 1] / 255;
          data[base + 2 * plane + p] = f.rgb[3 * p + 2] / 255;
        }
      });
      feeds[`image_${c.name}`] = { data, shape: [n, 3, c.height, c.width] };
    }
    if (this.tokenizer) {
      const L = this.instructionLength;
      const enc = new Tokenizer({ ...this.tokenizer.toJSON(), maxLength: L }).encode(obs.map((o) => o.instruction));
      feeds.instruction = { data: enc.ids, shape: [n, L] };
    }
    if (this.memory) {
      const { slots, size } = this.memory;
      if (memory && (memory.memory.length !== n * slots * size || memory.mask.length !== n * slots)) {
        throw new RangeError(`memory must be [${n}, ${slots}, ${size}] with a [${n}, ${slots}] mask, got ${memory.memory.length} and ${memory.mask.length} values`);
      }
      feeds.memory = { data: memory?.memory ?? new Float32Array(n * slots * size), shape: [n, slots, size] };
      feeds.memory_mask = { data: memory?.mask ?? new Float32Array(n * slots), shape: [n, slots] };
    }
    return feeds;
  }

  close(): Promise<void> {
    return this.session.dispose();
  }
}

/** What the policy is shown for one env. */
export interface PolicyObservation {
  proprio: ArrayLike<number>;
  images?: Record<string, { width: number; height: number; rgb: Uint8Array }>;
  instruction: string;
}

/**
 * Turns action chunks into one action per step: chunked execution (a queue refilled every
 * `execute` steps) or temporal ensembling as ACT (every chunk's prediction for this step, weighted
 * by exp(-decay * age), age = steps since the prediction was made). One per env.
 */
export class ChunkPlayer {
  private queue: Float32Array[] = [];
  /** Ensemble: predictions for future steps, keyed by absolute step: [weight-sum, sum]. */
  private pending = new Map<number, { w: number; sum: Float64Array }>();
  private t = 0;

  constructor(readonly mode: InferenceMode) {}

  /** True when the next step needs a fresh chunk from the model. */
  needsChunk(): boolean {
    return this.mode.mode === 'ensemble' || this.queue.length === 0;
  }

  /** Feeds the chunk predicted from the current observation. */
  push(chunk: Float32Array[]): void {
    if (this.mode.mode === 'chunk') {
      this.queue = chunk.slice(0, Math.min(this.mode.execute, chunk.length));
      return;
    }
    chunk.forEach((a, k) => {
      const step = this.t + k;
      let e = this.pending.get(step);
      if (!e) this.pending.set(step, (e = { w: 0, sum: new Float64Array(7) }));
      // The age of a prediction is k, how many steps into its own chunk it lies: decay > 0 favours
      // the newest predictions, decay < 0 the oldest (ACT's w_i = exp(-m i), i = 0 the oldest, is
      // decay = -m; its m = 0.01 is close to a plain average, decay = 0).
      const w = Math.exp(-this.mode.ensembleDecay * k);
      e.w += w;
      for (let d = 0; d < 7; d++) e.sum[d] += w * a[d];
    });
  }

  /** The action for this step. */
  next(): Float32Array {
    if (this.mode.mode === 'chunk') {
      const a = this.queue.shift();
      if (!a) throw new Error('ChunkPlayer: no action queued; push a chunk first');
      this.t++;
      return a;
    }
    const e = this.pending.get(this.t);
    if (!e) throw new Error(`ChunkPlayer: no prediction for step ${this.t}`);
    this.pending.delete(this.t);
    this.t++;
    return Float32Array.from(e.sum, (s) => s / e.w);
  }
}

/** Options of `evaluatePolicy`. */
export interface EvalOptions {
  policy: string;
  task: string;
  episodes: number;
  /** Worker processes, one env slot each (0: `envs` slots in this process). */
  workers: number;
  /** Env slots when workers is 0 (default 8). */
  envs?: number;
  /** First seed (EVAL_SEED_BASE + offset). */
  seed: number;
  /** Intra-op threads of the policy session. */
  threads?: number;
  /** Folder for episode files (the viewer replays them); none when unset. */
  record?: string;
  /** Record at most this many episodes (default all). */
  recordLimit?: number;
  /** Episode length limit in control steps (default: the task's). */
  maxSteps?: number;
  /** Overrides the policy's own inference metadata. */
  inference?: Partial<InferenceMode>;
  /** A SAR model (sar.onnx, sar.json beside it): run its gate and report stage hallucination. */
  sar?: string;
  /** Key-by-key override of the SAR model's stored gate settings. */
  sarGate?: SarGateOverride;
  /** Keep the key-frame bank for a policy with memory inputs (default true; false feeds it empty). */
  memory?: boolean;
  log?: (line: string) => void;
}

/** One evaluated episode. */
export interface EvalEpisode {
  seed: number;
  success: boolean;
  steps: number;
  maxStage: number;
  file?: string;
  /** SAR-gate completions of the episode judged against the ground truth (with a SAR model). */
  hallucination?: EpisodeHallucination;
  /** Furthest SAR-gate stage (with a SAR model). */
  sarStage?: number;
}

/** The evaluation result (eval.json). */
export interface EvalResult {
  policy: string;
  task: string;
  episodes: number;
  successes: number;
  successRate: number;
  ci95: [number, number];
  meanMaxStage: number;
  stages: number;
  /** Share of episodes that completed stage k (furthest stage > k, or success). */
  stageCompletion: number[];
  meanSteps: number;
  seeds: [number, number];
  inference: InferenceMode;
  wallSeconds: number;
  /** Env steps per second of wall time (counted steps only), policy in the loop. */
  envStepsPerSecond: number;
  perEpisode: EvalEpisode[];
  /** Stage hallucination over the episodes (with a SAR model): pooled rate, 95% Wilson CI, mean per-episode rate. */
  hallucination?: HallucinationSummary & { sar: string };
  /** Whether the policy read a key-frame bank (false: memoryless play, or no memory inputs). */
  memory: boolean;
}

/** One env slot: its own VecEnv (one env), so it starts its next episode as soon as one ends. */
interface Slot {
  vec: VecEnv;
  episode: EvalEpisode | null;
  player: ChunkPlayer | null;
  obs: StepResult['obs'] | null;
  info: StepResult['info'] | null;
  writer: EpisodeWriter | null;
}

/** Runs `episodes` held-out episodes of the policy and summarises them. */
export async function evaluatePolicy(opts: EvalOptions): Promise<EvalResult> {
  const log = opts.log ?? (() => {});
  const task = getTask(opts.task);
  const policy = await BatchedPolicy.open(opts.policy, opts.threads ?? 1);
  const mode: InferenceMode = { mode: 'chunk', execute: Math.min(8, policy.chunk), ensembleDecay: 0.1, ...(policy.inference ?? {}), ...opts.inference };
  if (mode.mode === 'chunk') mode.execute = Math.min(mode.execute, policy.chunk);
  // Slots: one worker process each (workers > 0), or `envs` envs in this process (workers = 0).
  const slotCount = Math.max(1, Math.min(opts.workers > 0 ? opts.workers : (opts.envs ?? 8), opts.episodes));
  // RGB only: a policy reads no depth or segmentation, and rendering them doubles the cost of a step
  // (same RGB pixels either way).
  const cameras = policy.cameras.map((c) => ({ name: c.name, width: c.width, height: c.height, depth: false, segmentation: false }));
  let sar: SarRewarder | null = null;
  if (opts.sar) {
    let scorer: SarScorer;
    try {
      scorer = await SarScorer.load(opts.sar, opts.threads ?? 1);
    } catch (err) {
      await policy.close();
      throw new SarFileError(`cannot load SAR model '${opts.sar}': ${(err as Error).message}`);
    }
    try {
      sar = new SarRewarder(scorer, task.stages.map((s) => s.name), slotCount, opts.sarGate);
      // SAR scores both cameras at its own size; the policy's cameras of the same name must match it.
      for (const name of SAR_CAMERAS) {
        const mine = cameras.find((c) => c.name === name);
        const size = scorer.meta.imageSize;
        if (!mine) cameras.push({ name, width: size, height: size, depth: false, segmentation: false });
        else if (mine.width !== size || mine.height !== size) throw new SarFileError(`SAR model '${opts.sar}' scores ${name} at ${size}x${size}, the policy renders it at ${mine.width}x${mine.height}`);
      }
    } catch (err) {
      await scorer.dispose();
      await policy.close();
      throw err instanceof SarFileError ? err : new SarFileError(`SAR model '${opts.sar}': ${(err as Error).message}`);
    }
  }
  // The key-frame bank, kept as PPO keeps it (see the file comment).
  const useBank = policy.memory !== null && policy.hasFeatures && opts.memory !== false;
  if (policy.memory && !policy.hasFeatures && opts.memory !== false) log(`eval: policy ${opts.policy} has memory inputs but no 'features' output: memory fed empty`);
  const bank = useBank ? new MemoryBank(slotCount, policy.memory!.size, parseMemoryBankConfig({ slots: policy.memory!.slots })) : null;
  const pose = new Float32Array(6);
  const envConfig = { cameras, ...(opts.maxSteps !== undefined ? { maxSteps: opts.maxSteps } : {}) };
  const { ENV_CAMERAS_MODULE } = await import('../sim/render/vec_cameras.ts');
  const slots: Slot[] = [];
  // A local env (no rendering) only to write episode headers: same config, same seeds.
  const headerEnv: SimEnv | null = opts.record ? await createEnv(task, envConfig) : null;
  if (opts.record) makeDirectory(opts.record);
  const recordLimit = opts.recordLimit ?? Number.POSITIVE_INFINITY;
  const perEpisode: EvalEpisode[] = [];
  const t0 = performance.now();
  let counted = 0;
  let next = 0;
  try {
    // Worker processes start in parallel (each loads the physics engine and GL); in-process slots one by one.
    const create = () =>
      VecEnv.create({
        taskModule: new URL('../tasks/index.ts', import.meta.url).href,
        taskId: task.id,
        numEnvs: 1,
        workers: opts.workers > 0 ? 1 : 0,
        config: envConfig,
        ...(cameras.length ? { envSetupModule: ENV_CAMERAS_MODULE } : {}),
      });
    const settled = opts.workers > 0 ? await Promise.allSettled(Array.from({ length: slotCount }, create)) : [];
    for (const r of settled) if (r.status === 'fulfilled') slots.push({ vec: r.value, episode: null, player: null, obs: null, info: null, writer: null });
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    if (opts.workers === 0) for (let i = 0; i < slotCount; i++) slots.push({ vec: await create(), episode: null, player: null, obs: null, info: null, writer: null });
    const start = async (slot: Slot) => {
      const k = next++;
      const seed = opts.seed + k;
      const [reset] = await slot.vec.reset([seed]);
      slot.episode = { seed, success: false, steps: 0, maxStage: reset.info.stage };
      slot.player = new ChunkPlayer(mode);
      slot.obs = reset.obs;
      slot.info = reset.info;
      slot.writer = null;
      const i = slots.indexOf(slot);
      bank?.reset(i);
      sar?.endEpisode(i);
      if (sar) slot.episode.sarStage = 0;
      if (opts.record && headerEnv && k < recordLimit) {
        headerEnv.reset({ seed });
        const file = join(opts.record, `${task.id}-${seed}.evep`);
        slot.episode.file = file;
        slot.writer = EpisodeWriter.open(file, episodeHeader(headerEnv, task, seed, { writer: 'policy', policy: opts.policy, inference: mode }));
      }
    };
    await Promise.all(slots.map((s) => (next < opts.episodes ? start(s) : Promise.resolve())));
    let lastLog = performance.now();
    for (;;) {
      const active = slots.filter((s) => s.episode !== null);
      if (active.length === 0) break;
      const need = active.filter((s) => s.player!.needsChunk());
      if (need.length) {
        const obs = need.map((s) => s.obs!);
        let memory: { memory: Float32Array; mask: Float32Array } | undefined;
        if (bank) {
          // The bank sees this step first (as PPO's encoder does), then the policy reads it. The
          // keep decision does not read the features, so they are computed only for kept steps.
          const seen = need.map((s) => {
            const i = slots.indexOf(s);
            const info = s.info!;
            const object = stageObject(task.stages, sar ? sar.tracker.scoredStage(i) : 0);
            return { i, j: 0, step: info.state.step, stageScore: sar ? sar.tracker.lastScore(i) : 0, pose: Float32Array.from(relativePose(info.state, object, 1, pose)) };
          });
          const kept = seen.map((v, j) => ({ ...v, j })).filter((v) => bank.keepReason(v.i, v) !== null);
          if (kept.length) {
            const F = policy.memory!.size;
            const feats = await policy.features(kept.map((v) => obs[v.j]));
            kept.forEach((v, r) => bank.observe(v.i, { ...v, features: feats.subarray(r * F, (r + 1) * F) }));
          }
          const b = bank.batch(seen.map((v) => v.i));
          memory = { memory: b.memory, mask: b.mask };
        }
        const chunks = await policy.act(obs, memory);
        need.forEach((s, j) => s.player!.push(chunks[j]));
      }
      const actions = active.map((s) => s.player!.next());
      const results = await Promise.all(active.map((s, j) => s.vec.step([Array.from(actions[j])])));
      // SAR: one batched pass over the active slots' new frames; the gate judges its claims.
      const sarSteps = sar
        ? await sar.step(
            results.map((x) => sarFrame(x.results[0].obs)),
            results.map((x) => x.results[0].info),
            active.map((s) => slots.indexOf(s)),
          )
        : null;
      const restarts: Promise<void>[] = [];
      active.forEach((s, j) => {
        const r = results[j].results[0];
        const e = s.episode!;
        counted++;
        e.steps++;
        e.maxStage = Math.max(e.maxStage, r.info.stage);
        const rec = stepRecord(r, actions[j]);
        const ss = sarSteps?.[j];
        if (ss) {
          rec.sarStage = ss.gateStage;
          if (ss.claimed.length) rec.sarClaims = ss.claimed.map((stage) => ({ stage, hallucinated: ss.hallucinatedStages.includes(stage) }));
          e.sarStage = Math.max(e.sarStage ?? 0, ss.gateStage);
        }
        s.writer?.append(rec);
        s.obs = r.obs;
        s.info = r.info;
        if (r.terminated || r.truncated) {
          if (sar) e.hallucination = sar.endEpisode(slots.indexOf(s));
          e.success = r.info.success;
          s.writer?.close({ steps: e.steps, success: e.success, finalStateHash: results[j].hashes[0], maxStage: e.maxStage });
          perEpisode.push(e);
          s.episode = null;
          s.writer = null;
          if (next < opts.episodes) restarts.push(start(s));
          const ok = perEpisode.filter((x) => x.success).length;
          // Seed and outcome on each line: episodes finish out of seed order (successes are shorter),
          // so a partial count is only unbiased over a complete prefix of the seeds.
          const h = e.hallucination ? `, SAR stage ${e.sarStage}, ${e.hallucination.hallucinated}/${e.hallucination.completions} gate claims hallucinated` : '';
          log(`eval: seed ${e.seed} ${e.success ? 'success' : 'failure'} (furthest stage ${e.maxStage}${h}, ${e.steps} steps); ${perEpisode.length}/${opts.episodes} episodes, ${ok} successful, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
        }
      });
      await Promise.all(restarts);
      if (performance.now() - lastLog > 60_000) {
        lastLog = performance.now();
        log(`eval: ${counted} env steps, ${(counted / ((lastLog - t0) / 1000)).toFixed(1)} steps/s, ${perEpisode.length}/${opts.episodes} episodes done`);
      }
    }
  } finally {
    for (const s of slots) s.writer?.discard();
    headerEnv?.free();
    await Promise.all(slots.map((s) => s.vec.close()));
    await policy.close();
    await sar?.scorer.dispose();
  }
  perEpisode.sort((x, y) => x.seed - y.seed);
  const wall = (performance.now() - t0) / 1000;
  const n = perEpisode.length;
  const successes = perEpisode.filter((e) => e.success).length;
  const ci = wilsonInterval(successes, n);
  const stages = task.stages.length;
  return {
    policy: opts.policy,
    task: task.id,
    episodes: n,
    successes,
    successRate: ci.rate,
    ci95: [ci.low, ci.high],
    meanMaxStage: n ? perEpisode.reduce((a, e) => a + e.maxStage, 0) / n : 0,
    stages,
    stageCompletion: Array.from({ length: stages }, (_, k) => (n ? perEpisode.filter((e) => e.success || e.maxStage > k).length / n : 0)),
    meanSteps: n ? perEpisode.reduce((a, e) => a + e.steps, 0) / n : 0,
    seeds: [opts.seed, opts.seed + opts.episodes - 1],
    inference: mode,
    wallSeconds: wall,
    envStepsPerSecond: counted / wall,
    perEpisode,
    ...(sar && opts.sar ? { hallucination: { ...aggregateHallucination(perEpisode.map((e) => e.hallucination!)), sar: opts.sar } } : {}),
    memory: bank !== null,
  };
}

/** A SAR model file that cannot be loaded or does not fit the task or the policy's cameras. */
export class SarFileError extends Error {
  override name = 'SarFileError';
}

/** The cameras the SAR scorer reads (rewards/sar/scorer.ts FrameImages). */
const SAR_CAMERAS = ['eye_side', 'eye_arm'] as const;

/** Both SAR cameras of an observation. */
function sarFrame(obs: StepResult['obs']): { eye_side: Uint8Array; eye_arm: Uint8Array } {
  const side = obs.images?.eye_side;
  const arm = obs.images?.eye_arm;
  if (!side || !arm) throw new Error('SAR scores both cameras (eye_side, eye_arm); the observation lacks one');
  return { eye_side: side.rgb, eye_arm: arm.rgb };
}

/** Human-readable summary of an evaluation. */
export function formatEval(r: EvalResult): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const reach = r.stageCompletion.map((c, k) => `${k}:${Math.round(100 * c)}`).join(' ');
  return [
    `${r.task}: ${r.successes}/${r.episodes} successful (${pct(r.successRate)}, 95% Wilson CI ${pct(r.ci95[0])}-${pct(r.ci95[1])}) on seeds ${r.seeds[0]}..${r.seeds[1]}`,
    `mean furthest stage ${r.meanMaxStage.toFixed(2)} of ${r.stages}; mean length ${r.meanSteps.toFixed(0)} steps; ${r.inference.mode} execution${r.inference.mode === 'chunk' ? ` (${r.inference.execute} steps per chunk)` : ''}`,
    `share completing each stage (%): ${reach}`,
    ...(r.hallucination ? [formatHallucination(r.hallucination)] : []),
    `${r.wallSeconds.toFixed(1)} s wall, ${r.envStepsPerSecond.toFixed(1)} env steps/s with the policy in the loop${r.memory ? ' (memory: key-frame bank)' : ''}`,
  ].join('\n');
}

/** One line of stage hallucination. */
export function formatHallucination(h: HallucinationSummary): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  if (h.completions === 0) return `stage hallucination: n/a (the SAR gate claimed no stage in ${h.episodes} episodes)`;
  const mean = h.meanEpisodeRate === null ? '' : `; mean per-episode rate ${pct(h.meanEpisodeRate)}`;
  return `stage hallucination ${pct(h.rate)} (95% Wilson CI ${pct(h.low)}-${pct(h.high)}): ${h.hallucinated} of ${h.completions} SAR-gate completions made while the ground truth said not done${mean}`;
}
