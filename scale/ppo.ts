/**
 * What the learner and the workers of a distributed PPO run (`evovla train --nats`) share besides
 * segments:
 *
 *  - the rollout context (object `ppo-context`, announced by KV key `context`): the task, PPO's
 *    settings, the actor-critic's input shapes, every parameter at the start of the phase (the
 *    frozen trunk included) as safetensors, and the name and data of the builder a worker makes
 *    its env, encoder and reward model with (`vla`: the run's config, norm stats and SAR scorer);
 *  - the per-version weights: safetensors of the trained parameters only (every parameter not
 *    under `trunk.`: heads, log-std, memory gate), a few hundred KB instead of the whole VLA;
 *  - the mapping between policy/train/ppo.ts's `Rollout` and format-2 `PpoSegment`s: a rollout is
 *    cut along the env axis into segments small enough for one NATS message, and the learner merges
 *    a batch of segments (same number of steps) back into one rollout for `ppoUpdate`.
 */
import { decodeSafetensors, encodeSafetensors, type StoredTensor } from '../nn/checkpoint.ts';
import type { ParamSet } from '../nn/params.ts';
import { emptyRollout, type ActorCritic, type EpisodeStats, type PpoConfig, type Rollout } from '../policy/train/ppo.ts';
import { PPO_SEGMENT_FORMAT, packValue, unpackValue, type PpoSegment } from './protocol.ts';

/** Parameters under this prefix are frozen during PPO and sent once, in the context. */
export const FROZEN_PREFIX = 'trunk.';

/** The rollout context of a distributed PPO run. */
export interface PpoRunContext {
  format: 'evovla.ppo-context';
  version: 1;
  task: string;
  /** Steps per env in every segment of the run (the learner's choice). */
  segmentSteps: number;
  /** Envs a worker steps unless told otherwise. */
  envs: number;
  /** PPO's settings (the worker uses rolloutSteps' share, seed and nothing of the update). */
  ppo: PpoConfig;
  actionSize: number;
  inputShapes: Record<string, number[]>;
  /** Every parameter at the start (safetensors): the frozen trunk and the trained ones. */
  params: Uint8Array;
  /** Which rollout builder a worker needs (`vla`, or a name a program registers). */
  builder: string;
  /** The builder's own data (for `vla`: the run's config, phase index, norm stats, SAR files). */
  spec: Record<string, unknown>;
}

/** Context -> bytes. */
export function encodeContext(c: PpoRunContext): Uint8Array {
  return packValue(c);
}

/** Bytes -> context, checked. */
export function decodeContext(bytes: Uint8Array): PpoRunContext {
  const c = unpackValue(bytes, 'PPO context') as PpoRunContext;
  if (typeof c !== 'object' || c === null || c.format !== 'evovla.ppo-context') throw new Error(`PPO context: expected format 'evovla.ppo-context', got ${JSON.stringify((c as { format?: unknown } | null)?.format)}`);
  if (c.version !== 1) throw new Error(`PPO context version ${String(c.version)}: this program reads version 1`);
  for (const k of ['segmentSteps', 'envs', 'actionSize'] as const) if (!Number.isInteger(c[k]) || c[k] < 1) throw new Error(`PPO context.${k}: expected an integer >= 1, got ${String(c[k])}`);
  if (!(c.params instanceof Uint8Array)) throw new Error('PPO context.params: expected safetensors bytes');
  if (typeof c.builder !== 'string') throw new Error(`PPO context.builder: expected a name, got ${String(c.builder)}`);
  return c;
}

/** Safetensors of the parameters `which` selects ('all', or 'trained': not under FROZEN_PREFIX). */
export function encodeParams(params: ParamSet, which: 'all' | 'trained'): Uint8Array {
  const m = new Map<string, StoredTensor>();
  for (const p of params.list()) if (which === 'all' || !p.name.startsWith(FROZEN_PREFIX)) m.set(p.name, { dtype: 'F32', shape: [...p.shape], data: p.data });
  return encodeSafetensors(m, { 'evovla.params': which });
}

/**
 * Sets `params` from safetensors bytes made by encodeParams. 'all': the bytes must hold exactly the
 * set's parameters; 'trained': exactly those not under FROZEN_PREFIX. Shapes are checked before
 * anything changes.
 */
export function loadParams(params: ParamSet, bytes: Uint8Array, which: 'all' | 'trained', source: string): void {
  const { tensors } = decodeSafetensors(bytes, source);
  const want = params.list().filter((p) => which === 'all' || !p.name.startsWith(FROZEN_PREFIX));
  const missing = want.filter((p) => !tensors.has(p.name)).map((p) => p.name);
  const names = new Set(want.map((p) => p.name));
  const extra = [...tensors.keys()].filter((n) => !names.has(n));
  if (missing.length || extra.length) {
    throw new Error(`${source}: parameters do not match this worker's model (missing: ${missing.slice(0, 5).join(', ') || 'none'}; unknown: ${extra.slice(0, 5).join(', ') || 'none'}); do the learner and the worker run the same model?`);
  }
  for (const p of want) {
    const t = tensors.get(p.name)!;
    if (t.dtype !== 'F32' || t.shape.join(',') !== p.shape.join(',')) throw new Error(`${source}: ${p.name} is ${t.dtype} [${t.shape.join(',')}], the model's is F32 [${p.shape.join(',')}]`);
  }
  for (const p of want) p.data = tensors.get(p.name)!.data as Float32Array;
}

/** Float32 values per transition of a segment (inputs, action, log-prob, 2 values, 2 next values, 2 rewards) and bytes of flags. */
export function segmentBytesPerStep(inputShapes: Readonly<Record<string, readonly number[]>>, actionSize: number): number {
  let floats = actionSize + 7;
  for (const s of Object.values(inputShapes)) floats += s.reduce((a, b) => a * b, 1);
  return floats * 4 + 2;
}

/** Header fields of the segments cut from one rollout. */
export interface SegmentHeaderFields {
  run: string;
  workerId: number;
  /** Sequence number of the first part; the others follow. */
  seq: number;
  policyVersion: number;
  task: string;
}

/** Rows [from, to) of env axis of a [T, N, width] array. */
function envSlice<A extends Float32Array | Uint8Array>(src: A, T: number, N: number, width: number, from: number, to: number): A {
  const n = to - from;
  const out = new (src.constructor as new (len: number) => A)(T * n * width);
  for (let t = 0; t < T; t++) out.set(src.subarray((t * N + from) * width, (t * N + to) * width), t * n * width);
  return out;
}

/**
 * Cuts a rollout into segments of at most `envsPerSegment` envs (all `numSteps` steps each). The
 * first carries the rollout's term sums and reward-model metrics; episodes go with their env.
 */
export function rolloutToSegments(ro: Rollout, ac: Pick<ActorCritic, 'inputShapes' | 'actionSize'>, rewardMetrics: Record<string, number>, h: SegmentHeaderFields, envsPerSegment: number): PpoSegment[] {
  const T = ro.numSteps;
  const N = ro.numEnvs;
  const A = ac.actionSize;
  const out: PpoSegment[] = [];
  for (let from = 0, part = 0; from < N; from += envsPerSegment, part++) {
    const to = Math.min(N, from + envsPerSegment);
    const f = (a: Float32Array) => envSlice(a, T, N, 1, from, to);
    const u = (a: Uint8Array) => envSlice(a, T, N, 1, from, to);
    out.push({
      format: PPO_SEGMENT_FORMAT,
      run: h.run,
      workerId: h.workerId,
      seq: h.seq + part,
      policyVersion: h.policyVersion,
      task: h.task,
      numEnvs: to - from,
      steps: T,
      actionSize: A,
      inputs: Object.fromEntries(Object.entries(ac.inputShapes).map(([k, s]) => [k, envSlice(ro.inputs[k], T, N, s.reduce((a, b) => a * b, 1), from, to)])),
      actions: envSlice(ro.actions, T, N, A, from, to),
      logProbs: f(ro.logProbs),
      valuesExt: f(ro.valuesExt),
      valuesInt: f(ro.valuesInt),
      nextValuesExt: f(ro.nextValuesExt),
      nextValuesInt: f(ro.nextValuesInt),
      rewardsExt: f(ro.rewardsExt),
      rewardsInt: f(ro.rewardsInt),
      terminated: u(ro.terminated),
      ended: u(ro.ended),
      termSums: part === 0 ? { ...ro.termSums } : {},
      episodes: ro.episodes.filter((e) => e.env >= from && e.env < to).map((e) => ({ ...e, env: e.env - from })),
      rewardMetrics: part === 0 ? { ...rewardMetrics } : {},
    });
  }
  return out;
}

/** Throws unless segment `s` has the actor-critic's inputs and action size (and `steps` steps when given). */
export function checkSegmentFits(s: PpoSegment, ac: Pick<ActorCritic, 'inputShapes' | 'actionSize'>, steps?: number): void {
  const id = `segment ${s.run}.${s.workerId}.${s.seq}`;
  if (steps !== undefined && s.steps !== steps) throw new Error(`${id} has ${s.steps} steps, this run's segments have ${steps} (a worker of an earlier rollout context?)`);
  if (s.actionSize !== ac.actionSize) throw new Error(`${id} has actions of size ${s.actionSize}, the actor-critic's are ${ac.actionSize}`);
  const names = Object.keys(ac.inputShapes).sort().join(', ');
  if (Object.keys(s.inputs).sort().join(', ') !== names) throw new Error(`${id} has inputs ${Object.keys(s.inputs).sort().join(', ')}, the actor-critic takes ${names}`);
  for (const [k, shape] of Object.entries(ac.inputShapes)) {
    const want = s.steps * s.numEnvs * shape.reduce((a, b) => a * b, 1);
    if (s.inputs[k].length !== want) throw new Error(`${id}: input '${k}' has ${s.inputs[k].length} values, expected ${s.steps} x ${s.numEnvs} x [${shape.join(', ')}]`);
  }
}

/** A segment and the weight of its policy loss (scale/learner.ts's staleness). */
export interface WeightedPpoSegment {
  segment: PpoSegment;
  weight: number;
}

/**
 * Merges segments of the same step count into one rollout (envs side by side, in batch order) for
 * ppoUpdate. Segments with weight < 1 get that weight on their advantages (`advantageWeights`).
 * Reward-model metrics: counts (`*_claims`) are summed and `hallucination` recomputed from them;
 * other keys are averaged over the segments that carry them.
 */
export function mergeSegments(batch: readonly WeightedPpoSegment[], ac: Pick<ActorCritic, 'inputShapes' | 'actionSize'>): { rollout: Rollout; rewardMetrics: Record<string, number> } {
  if (batch.length === 0) throw new Error('mergeSegments: no segments');
  const T = batch[0].segment.steps;
  const A = ac.actionSize;
  for (const { segment: s } of batch) {
    if (s.steps !== T) throw new Error(`segment ${s.run}.${s.workerId}.${s.seq} has ${s.steps} steps, the batch's first has ${T}; every worker of a run uses the context's segmentSteps`);
    checkSegmentFits(s, ac);
  }
  const N = batch.reduce((n, b) => n + b.segment.numEnvs, 0);
  const size = T * N;
  const weighted = batch.some((b) => b.weight !== 1);
  const ro: Rollout = { ...emptyRollout(T, N, ac), ...(weighted ? { advantageWeights: new Float32Array(size) } : {}) };
  const put = (dst: Float32Array | Uint8Array, src: Float32Array | Uint8Array, n: number, offset: number, width: number): void => {
    for (let t = 0; t < T; t++) dst.set(src.subarray(t * n * width, (t + 1) * n * width), (t * N + offset) * width);
  };
  const sums: Record<string, number> = {};
  const counts: Record<string, number> = {};
  let offset = 0;
  for (const { segment: s, weight } of batch) {
    const n = s.numEnvs;
    for (const [k, shape] of Object.entries(ac.inputShapes)) put(ro.inputs[k], s.inputs[k], n, offset, shape.reduce((a, b) => a * b, 1));
    put(ro.actions, s.actions, n, offset, A);
    for (const k of ['logProbs', 'valuesExt', 'valuesInt', 'nextValuesExt', 'nextValuesInt', 'rewardsExt', 'rewardsInt', 'terminated', 'ended'] as const) put(ro[k], s[k], n, offset, 1);
    if (ro.advantageWeights) for (let t = 0; t < T; t++) ro.advantageWeights.fill(weight, t * N + offset, t * N + offset + n);
    for (const [k, v] of Object.entries(s.termSums)) ro.termSums[k] = (ro.termSums[k] ?? 0) + v;
    for (const e of s.episodes) ro.episodes.push({ ...(e as EpisodeStats), env: e.env + offset });
    for (const [k, v] of Object.entries(s.rewardMetrics)) {
      if (!Number.isFinite(v)) continue;
      sums[k] = (sums[k] ?? 0) + v;
      counts[k] = (counts[k] ?? 0) + 1;
    }
    offset += n;
  }
  const rewardMetrics: Record<string, number> = {};
  for (const [k, v] of Object.entries(sums)) rewardMetrics[k] = k.endsWith('_claims') ? v : v / counts[k];
  if ('sar_claims' in rewardMetrics) rewardMetrics.hallucination = rewardMetrics.sar_claims ? (rewardMetrics.sar_false_claims ?? 0) / rewardMetrics.sar_claims : NaN;
  return { rollout: ro, rewardMetrics };
}
