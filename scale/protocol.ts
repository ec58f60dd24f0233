/**
 * What rollout workers and the learner exchange over NATS JetStream, and under which names.
 *
 *  stream   <PREFIX>_SEGMENTS   subjects <prefix>.segments.<workerId>; work-queue retention (a
 *                               segment is gone once the learner acks it), max-bytes with
 *                               discard-new (a full stream refuses publishes, so workers wait for a
 *                               slow learner instead of data being dropped), message-id dedup
 *  KV       <PREFIX>_POLICY     key `version` = {"version": n, "object": "policy-v<n>"};
 *                               key `worker.<id>` = the next segment sequence number of that worker
 *  objects  <PREFIX>_WEIGHTS    `policy-v<n>`: the policy's ONNX bytes for version n
 *
 * A segment is `steps` consecutive env steps of all `numEnvs` envs of one worker, packed with
 * msgpackr (typed arrays stay typed). Its message id `<run>.<workerId>.<seq>` is deterministic, so a
 * publish repeated after a lost ack, or after the worker restarts, is stored once.
 */
import { Packr } from 'msgpackr';

/** Format version of `Segment`; bumped on any incompatible change. */
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
  for (const k of ['workerId', 'seq', 'policyVersion', 'numEnvs', 'steps'] as const) {
    if (!Number.isInteger(s[k]) || s[k] < 0) throw new Error(`segment.${k}: expected a non-negative integer, got ${String(s[k])}`);
  }
  const n = s.steps * s.numEnvs;
  const want: Array<[keyof Segment, Function, number]> = [
    ['proprio', Float32Array, n * 7],
    ['actions', Float32Array, n * 7],
    ['rewards', Float32Array, n],
    ['terminated', Uint8Array, n],
    ['truncated', Uint8Array, n],
    ['cut', Uint8Array, n],
    ['nextProprio', Float32Array, s.numEnvs * 7],
  ];
  for (const [k, ctor, len] of want) {
    const v = s[k] as unknown;
    if (!(v instanceof ctor) || (v as ArrayLike<number>).length !== len) {
      const got = v instanceof Object ? `${v.constructor.name}(${(v as ArrayLike<number>).length})` : String(v);
      throw new Error(`segment.${k}: expected ${ctor.name}(${len}) for ${s.steps} steps x ${s.numEnvs} envs, got ${got}`);
    }
  }
}

/** Segment -> bytes (msgpack). */
export function encodeSegment(s: Segment): Uint8Array {
  checkSegment(s);
  return packr.pack(s);
}

/** Bytes -> segment, checked. */
export function decodeSegment(bytes: Uint8Array): Segment {
  let s: Segment;
  try {
    s = packr.unpack(bytes) as Segment;
  } catch (err) {
    throw new Error(`segment: not valid msgpack (${bytes.length} bytes): ${(err as Error).message}`);
  }
  if (typeof s !== 'object' || s === null) throw new Error(`segment: expected a map, got ${typeof s}`);
  checkSegment(s);
  return s;
}
