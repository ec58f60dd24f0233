/**
 * What rollout workers and the learner exchange over NATS JetStream, and under which names.
 *
 *  stream   <PREFIX>_SEGMENTS   subjects <prefix>.segments.<workerId>; work-queue retention (a
 *                               segment is gone once the learner acks it), max-bytes with
 *                               discard-new (a full stream refuses publishes, so workers wait for a
 *                               slow learner instead of data being dropped), message-id dedup
 *  KV       <PREFIX>_POLICY     key `version` = {"version": n, "object": "policy-v<n>"};
 *                               key `worker.<id>` = the next segment sequence number of that worker
 *                               key `context` = the PPO rollout context's object (PPO runs only)
 *  objects  <PREFIX>_WEIGHTS    `policy-v<n>`: the policy's weights for version n (deploy runs: ONNX
 *                               bytes; PPO runs: safetensors of the trained parameters);
 *                               `ppo-context`: what a PPO worker builds its rollout from
 *
 * A segment is `steps` consecutive env steps of all `numEnvs` envs of one worker, packed with
 * msgpackr (typed arrays stay typed). Its message id `<run>.<workerId>.<seq>` is deterministic, so a
 * publish repeated after a lost ack, or after the worker restarts, is stored once.
 */
import { Packr } from 'msgpackr';

/**
 * Format version of `Segment` (deploy-policy rollouts: proprio, actions, rewards); bumped on any
 * incompatible change. Format 2 is `PpoSegment` (below), a different record: each learner decodes
 * only its own and names the other in its error.
 */
export const SEGMENT_FORMAT = 1;

/** The JetStream names of one run (several runs can share one NATS server). */
export interface ScaleNames {
  run: string;
  stream: string;
  /** Subject prefix; a worker publishes to `<subjectPrefix>.<workerId>`. */
  subjectPrefix: string;
  kvBucket: string;
  objectBucket: string;
  /** Durable name of the learner's pull consumer. */
  consumer: string;
}

const RUN_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Names for run `run` (letters, digits, '_' and '-'; at most 64 characters). */
export function scaleNames(run: string): ScaleNames {
  if (!RUN_ID.test(run)) throw new Error(`run id: expected 1-64 letters, digits, '_' or '-', got ${JSON.stringify(run)}`);
  const up = run.toUpperCase().replace(/-/g, '_');
  return {
    run,
    stream: `EVOVLA_${up}_SEGMENTS`,
    subjectPrefix: `evovla.${run}.segments`,
    kvBucket: `EVOVLA_${up}_POLICY`,
    objectBucket: `EVOVLA_${up}_WEIGHTS`,
    consumer: 'learner',
  };
}

/** Object-store name of policy version `version`. */
export function weightsObjectName(version: number): string {
  return `policy-v${version}`;
}

/** KV key holding worker `id`'s next segment sequence number. */
export function workerKey(workerId: number): string {
  return `worker.${workerId}`;
}

/** The message id of a segment (JetStream dedups on it within the stream's duplicate window). */
export function segmentMessageId(run: string, workerId: number, seq: number): string {
  return `${run}.${workerId}.${seq}`;
}

/**
 * One trajectory segment. Arrays are time-major: index [t, e, ...] for step t of env e.
 * `proprio[t]` is the observation the action `actions[t]` was chosen on; `nextProprio` is the
 * observation after the last step (for bootstrapping values).
 */
export interface Segment {
  format: typeof SEGMENT_FORMAT;
  run: string;
  workerId: number;
  seq: number;
  /** Version of the policy weights that chose every action in the segment. */
  policyVersion: number;
  task: string;
  numEnvs: number;
  steps: number;
  proprio: Float32Array; // [steps, numEnvs, 7]
  actions: Float32Array; // [steps, numEnvs, 7]
  rewards: Float32Array; // [steps, numEnvs]
  /** 1 where the episode ended by success or failure (Gymnasium `terminated`). */
  terminated: Uint8Array; // [steps, numEnvs]
  /** 1 where the episode hit its time limit (Gymnasium `truncated`). */
  truncated: Uint8Array; // [steps, numEnvs]
  /**
   * 1 where the env was reset after this step although its own episode went on: a VecEnv resets
   * all its envs together, so when one env's episode ends the others are cut. Treat like
   * `truncated` (bootstrap from the value), but it is not the task's time limit.
   */
  cut: Uint8Array; // [steps, numEnvs]
  nextProprio: Float32Array; // [numEnvs, 7]
}

const packr = new Packr({ useRecords: false, moreTypes: true });

/** Checks the shapes of a segment; throws naming the first bad field. */
export function checkSegment(s: Segment): void {
  if (s.format !== SEGMENT_FORMAT) throw new Error(`segment format ${String(s.format)}: expected ${SEGMENT_FORMAT}`);
  checkHeader(s as unknown as Record<string, unknown>, ['workerId', 'seq', 'policyVersion', 'numEnvs', 'steps'], 'segment');
  const n = s.steps * s.numEnvs;
  const shape = `${s.steps} steps x ${s.numEnvs} envs`;
  const want: Array<[keyof Segment, Function, number]> = [
    ['proprio', Float32Array, n * 7],
    ['actions', Float32Array, n * 7],
    ['rewards', Float32Array, n],
    ['terminated', Uint8Array, n],
    ['truncated', Uint8Array, n],
    ['cut', Uint8Array, n],
    ['nextProprio', Float32Array, s.numEnvs * 7],
  ];
  for (const [k, ctor, len] of want) checkArray(`segment.${k}`, s[k], ctor, len, shape);
}

/** Segment -> bytes (msgpack). */
export function encodeSegment(s: Segment): Uint8Array {
  checkSegment(s);
  return packr.pack(s);
}

/** Bytes -> segment, checked. */
export function decodeSegment(bytes: Uint8Array): Segment {
  const s = unpack(bytes, 'segment');
  if (s.format === PPO_SEGMENT_FORMAT) throw new Error(`segment format ${PPO_SEGMENT_FORMAT} is a PPO rollout segment (evovla train --nats); this learner consumes format ${SEGMENT_FORMAT} (deploy-policy segments)`);
  checkSegment(s as Segment);
  return s as Segment;
}

// ---------------------------------------------------------------------------------------------
// Format 2: PPO rollout segments (`evovla train --nats`)
// ---------------------------------------------------------------------------------------------

/** Format version of `PpoSegment`: a different record from `Segment`, never mixed in one run. */
export const PPO_SEGMENT_FORMAT = 2;

/** KV key holding `{"object": name, "bytes": n}` of the run's PPO rollout context (absent: a deploy-policy run). */
export const CONTEXT_KEY = 'context';

/** Object-store name of the PPO rollout context. */
export const CONTEXT_OBJECT = 'ppo-context';

/** One finished episode of a PPO segment (policy/train/ppo.ts's EpisodeStats, env index local to the segment). */
export interface PpoEpisode {
  env: number;
  seed: number;
  length: number;
  returnExt: number;
  returnInt: number;
  success: boolean;
  furthestStage: number;
  truncated: boolean;
}

/**
 * One PPO rollout segment: what policy/train/ppo.ts's collectRollout returns for `numEnvs` envs and
 * `steps` steps, laid out [t, e] (index t * numEnvs + e). The actor-critic's inputs are cached (the
 * frozen trunk's features, + memory), so the learner never runs the trunk or the env.
 */
export interface PpoSegment {
  format: typeof PPO_SEGMENT_FORMAT;
  run: string;
  workerId: number;
  seq: number;
  /** Version of the weights that chose every action (and computed logProbs and values). */
  policyVersion: number;
  task: string;
  numEnvs: number;
  steps: number;
  actionSize: number;
  /** The actor-critic's inputs by name, [steps * numEnvs, ...shape] each. */
  inputs: Record<string, Float32Array>;
  /** Sampled normalised actions, [steps * numEnvs, actionSize]. */
  actions: Float32Array;
  /** Behaviour log-probabilities of the actions (PPO's ratio is taken against them). */
  logProbs: Float32Array;
  valuesExt: Float32Array;
  valuesInt: Float32Array;
  nextValuesExt: Float32Array;
  nextValuesInt: Float32Array;
  rewardsExt: Float32Array;
  rewardsInt: Float32Array;
  terminated: Uint8Array;
  ended: Uint8Array;
  /** Sums of the named reward terms over the rollout this segment was cut from (only its first part carries them). */
  termSums: Record<string, number>;
  episodes: PpoEpisode[];
  /** The worker's reward-model metrics of that rollout (SAR claims, POE loss; only the first part). */
  rewardMetrics: Record<string, number>;
}

function checkHeader(s: { [k: string]: unknown }, ints: readonly string[], what: string): void {
  for (const k of ints) {
    const v = s[k];
    if (!Number.isInteger(v) || (v as number) < 0) throw new Error(`${what}.${k}: expected a non-negative integer, got ${String(v)}`);
  }
}

/** How a bad array field is named in errors: `Float32Array(12)`, or the value itself. */
function describeArray(v: unknown): string {
  return v instanceof Object ? `${v.constructor.name}(${(v as ArrayLike<number>).length})` : String(v);
}

function checkArray(what: string, v: unknown, ctor: Function, len: number, shape: string): void {
  if (!(v instanceof ctor) || (v as ArrayLike<number>).length !== len) throw new Error(`${what}: expected ${ctor.name}(${len}) for ${shape}, got ${describeArray(v)}`);
}

/** Checks the shapes of a PPO segment; throws naming the first bad field. */
export function checkPpoSegment(s: PpoSegment): void {
  if (s.format !== PPO_SEGMENT_FORMAT) throw new Error(`PPO segment format ${String(s.format)}: expected ${PPO_SEGMENT_FORMAT}`);
  checkHeader(s as unknown as Record<string, unknown>, ['workerId', 'seq', 'policyVersion', 'numEnvs', 'steps', 'actionSize'], 'PPO segment');
  const n = s.steps * s.numEnvs;
  const shape = `${s.steps} steps x ${s.numEnvs} envs`;
  checkArray('PPO segment.actions', s.actions, Float32Array, n * s.actionSize, `${shape} x ${s.actionSize}`);
  for (const k of ['logProbs', 'valuesExt', 'valuesInt', 'nextValuesExt', 'nextValuesInt', 'rewardsExt', 'rewardsInt'] as const) checkArray(`PPO segment.${k}`, s[k], Float32Array, n, shape);
  for (const k of ['terminated', 'ended'] as const) checkArray(`PPO segment.${k}`, s[k], Uint8Array, n, shape);
  if (typeof s.inputs !== 'object' || s.inputs === null || Object.keys(s.inputs).length === 0) throw new Error('PPO segment.inputs: expected a map of input name -> Float32Array');
  for (const [k, v] of Object.entries(s.inputs)) {
    if (!(v instanceof Float32Array) || n === 0 || v.length % n !== 0) throw new Error(`PPO segment.inputs.${k}: expected a Float32Array of ${shape} rows, got ${describeArray(v)}`);
  }
  if (!Array.isArray(s.episodes)) throw new Error(`PPO segment.episodes: expected a list, got ${typeof s.episodes}`);
  for (const k of ['termSums', 'rewardMetrics'] as const) if (typeof s[k] !== 'object' || s[k] === null) throw new Error(`PPO segment.${k}: expected a map of numbers, got ${String(s[k])}`);
}

/** PPO segment -> bytes (msgpack). */
export function encodePpoSegment(s: PpoSegment): Uint8Array {
  checkPpoSegment(s);
  return packr.pack(s);
}

function unpack(bytes: Uint8Array, what: string): { format?: unknown } {
  let s: unknown;
  try {
    s = packr.unpack(bytes);
  } catch (err) {
    throw new Error(`${what}: not valid msgpack (${bytes.length} bytes): ${(err as Error).message}`);
  }
  if (typeof s !== 'object' || s === null) throw new Error(`${what}: expected a map, got ${typeof s}`);
  return s as { format?: unknown };
}

/** Bytes -> PPO segment, checked; a deploy-policy segment (format 1) is refused by name. */
export function decodePpoSegment(bytes: Uint8Array): PpoSegment {
  const s = unpack(bytes, 'PPO segment');
  if (s.format === SEGMENT_FORMAT) throw new Error(`segment format ${SEGMENT_FORMAT} is a deploy-policy segment (proprio/actions/rewards); this PPO learner consumes format ${PPO_SEGMENT_FORMAT} (PPO rollouts); is an 'evovla worker' of another run, or of an older version, publishing to this run?`);
  checkPpoSegment(s as PpoSegment);
  return s as PpoSegment;
}

/** Any msgpack value (the PPO rollout context). */
export function packValue(v: unknown): Uint8Array {
  return packr.pack(v);
}

/** Bytes -> value, with `what` named in the error. */
export function unpackValue(bytes: Uint8Array, what: string): unknown {
  try {
    return packr.unpack(bytes);
  } catch (err) {
    throw new Error(`${what}: not valid msgpack (${bytes.length} bytes): ${(err as Error).message}`);
  }
}
