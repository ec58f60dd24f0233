/**
 * A rollout worker: fetch the current policy weights from the run's object store, roll out its
 * own VecEnv for `segmentSteps` steps, publish the segment (tagged with the policy version) to the
 * run's stream, repeat. Read top to bottom:
 *
 *  1. connect (retrying while NATS is away), open the run's stream/KV/object store
 *  2. read this worker's next sequence number from KV `worker.<id>` (0 on a first start): a worker
 *     restarted after a crash (a Kubernetes Job restarts the pod with the same index) carries on
 *     where its last acknowledged segment ended
 *  3. wait for the learner's first weights; a run with a PPO rollout context (KV `context`, written
 *     by `evovla train --nats` before them) is handed to scale/ppo_worker.ts's runPpoWorker, which
 *     publishes format-2 PPO segments the same way; the rest of this file is the deploy-policy run
 *  4. per segment: pick up a newer policy version if there is one, act + step + record, publish
 *     with message id <run>.<id>.<seq> until JetStream acknowledges it (a full stream or a lost
 *     server means: wait and retry with the same id, so nothing is dropped and nothing is stored
 *     twice), then store seq + 1 in KV
 *
 * A worker killed mid-segment publishes nothing of that segment; after a restart it rolls segment
 * `seq` again. Exploration noise, env seeds and episode resets all come from one seeded Rng.
 */
import { JetStreamApiError } from '@nats-io/jetstream';
import { Rng } from '../sim/rng.ts';
import type { Observation } from '../sim/types.ts';
import { VecEnv } from '../sim/vec_env.ts';
import type { EnvConfig } from '../sim/env.ts';
import { connectWithRetry, currentVersion, fetchWeights, natsReason, openResources, runFinished, sleep, type Log, type ScaleResources } from './nats.ts';
import { onnxPolicyLoader, type PolicyLoader, type RolloutPolicy } from './policy.ts';
import { CONTEXT_KEY, SEGMENT_FORMAT, encodeSegment, segmentMessageId, workerKey, type Segment } from './protocol.ts';
import type { PpoRolloutBuilder } from './ppo_worker.ts';

/** Options of `runWorker`. */
export interface WorkerOptions {
  /** nats://host:port */
  url: string;
  /** Run id shared with the learner (names the stream, buckets). */
  run: string;
  /** This worker's id (Kubernetes: JOB_COMPLETION_INDEX); its subject and sequence key. */
  workerId: number;
  /** Task of a deploy-policy run (default stack); a PPO run's task comes from its context (a different one is an error). */
  taskId?: string;
  /** Envs of this worker (default: 4; a PPO run: its phase's `envs`). */
  numEnvs?: number;
  /** Env steps per segment (default 32; a PPO run uses its learner's choice). */
  segmentSteps?: number;
  seed: number;
  /** VecEnv worker threads (0: step in this thread). */
  vecWorkers?: number;
  envConfig?: Partial<EnvConfig>;
  /** Std of the Gaussian exploration noise added to the policy's joint targets (rad; default 0.02). */
  noiseStd?: number;
  /** Default: ONNX policy bytes (onnxPolicyLoader). */
  loadPolicy?: PolicyLoader;
  /** Stop after this many segments published by this process (default: run until aborted). */
  maxSegments?: number;
  log?: Log;
  signal?: AbortSignal;
  /** Called after every acknowledged segment (for progress displays and tests). */
  onSegment?: (info: { seq: number; policyVersion: number; bytes: number; duplicate: boolean }) => void;
  /** PPO rollout builders besides the built-in ones (scale/ppo_worker.ts's PPO_BUILDERS), by the name a run's context gives. */
  ppoBuilders?: Readonly<Record<string, PpoRolloutBuilder>>;
}

/** What a worker did. */
export interface WorkerStats {
  segments: number;
  envSteps: number;
  bytes: number;
  /** Publishes JetStream reported as repeats of a stored message id. */
  duplicates: number;
  /** Versions the worker rolled out with, in order. */
  versions: number[];
  /** Publishes refused because the stream was full (the learner was behind). */
  fullRetries: number;
}

const TASKS_MODULE = new URL('../tasks/index.ts', import.meta.url).href;

function checkOptions(o: WorkerOptions): void {
  const ints: Array<[string, number | undefined, number]> = [
    ['workerId', o.workerId, 0],
    ['numEnvs', o.numEnvs, 1],
    ['segmentSteps', o.segmentSteps, 1],
    ['seed', o.seed, 0],
  ];
  for (const [k, v, min] of ints) if (v !== undefined && (!Number.isInteger(v) || v < min)) throw new Error(`worker ${k}: expected an integer >= ${min}, got ${v}`);
  if (o.noiseStd !== undefined && !(o.noiseStd >= 0)) throw new Error(`worker noiseStd: expected a number >= 0, got ${o.noiseStd}`);
}

/**
 * Runs a rollout worker until `maxSegments` are published, the learner marks the run finished
 * (then it exits normally, so a Kubernetes Job completes), or `signal` aborts.
 */
export async function runWorker(opts: WorkerOptions): Promise<WorkerStats> {
  checkOptions(opts);
  const log = opts.log ?? ((line: string) => console.error(`[worker ${opts.workerId}] ${line}`));
  const loadPolicy = opts.loadPolicy ?? onnxPolicyLoader;
  const noiseStd = opts.noiseStd ?? 0.02;
  const stats: WorkerStats = { segments: 0, envSteps: 0, bytes: 0, duplicates: 0, versions: [], fullRetries: 0 };

  const nc = await connectWithRetry(opts.url, { name: `evovla-worker-${opts.workerId}`, log, signal: opts.signal });
  let vec: VecEnv | null = null;
  let policy: RolloutPolicy | null = null;
  try {
    const res = await openResources(nc, opts.run, log, opts.signal);
    let seq = await retrying(log, opts.signal, 'read the worker sequence', async () => {
      const e = await res.kv.get(workerKey(opts.workerId));
      return e && e.operation === 'PUT' && e.length > 0 ? Number(e.string()) : 0;
    });
    if (seq > 0) log(`resuming at segment ${seq}`);
    // Which kind of run: a PPO learner stores its rollout context before its first weights.
    const kind = await runKind(res, opts, log);
    if (kind === 'finished') {
      log(`the learner finished run '${opts.run}'; exiting`);
      return stats;
    }
    if (kind !== 'policy') {
      const { runPpoWorker } = await import('./ppo_worker.ts');
      for (let context: Uint8Array | null = kind; context; ) ({ seq, newContext: context } = await runPpoWorker(res, opts, seq, context, log, stats));
      return stats;
    }
    const taskId = opts.taskId ?? 'stack';
    const numEnvs = opts.numEnvs ?? 4;
    const segmentSteps = opts.segmentSteps ?? 32;
    // Seeds depend on where this process starts, so a restarted worker does not repeat episodes.
    const rng = new Rng(opts.seed * 1_000_003 + opts.workerId * 7919 + seq);
    vec = await VecEnv.create({ taskModule: TASKS_MODULE, taskId, numEnvs, workers: opts.vecWorkers ?? 0, config: opts.envConfig });
    const newSeeds = () => Array.from({ length: numEnvs }, () => rng.int(2 ** 31));
    let obs: Observation[] = (await vec.reset(newSeeds())).map((r) => r.obs);
    let version = 0;

    while (opts.maxSegments === undefined || stats.segments < opts.maxSegments) {
      if (opts.signal?.aborted) break;
      // 1. The newest weights (waiting for the first ones), unless the learner has finished the run.
      if (await retrying(log, opts.signal, 'read the run state', () => runFinished(res))) {
        log(`the learner finished run '${opts.run}'; exiting`);
        break;
      }
      const current = await retrying(log, opts.signal, 'read the policy version', () => currentVersion(res));
      if (!current) {
        if (version === 0) log(`waiting for the learner to publish policy weights (KV ${res.names.kvBucket}/version)`);
        await sleep(200, opts.signal);
        continue;
      }
      if (current.version !== version) {
        const bytes = await retrying(log, opts.signal, `fetch ${current.object}`, () => fetchWeights(res, current.object));
        await policy?.close();
        policy = null;
        policy = await loadPolicy(bytes, current.version);
        version = current.version;
        stats.versions.push(version);
        log(`rolling out with policy v${version} (${bytes.length} bytes)`);
      }
      // 2. Roll out one segment.
      const E = numEnvs;
      const T = segmentSteps;
      const seg: Segment = {
        format: SEGMENT_FORMAT,
        run: opts.run,
        workerId: opts.workerId,
        seq,
        policyVersion: version,
        task: taskId,
        numEnvs: E,
        steps: T,
        proprio: new Float32Array(T * E * 7),
        actions: new Float32Array(T * E * 7),
        rewards: new Float32Array(T * E),
        terminated: new Uint8Array(T * E),
        truncated: new Uint8Array(T * E),
        cut: new Uint8Array(T * E),
        nextProprio: new Float32Array(E * 7),
      };
      for (let t = 0; t < T; t++) {
        const acts = await policy!.act(obs);
        const actions: number[][] = [];
        for (let e = 0; e < E; e++) {
          const a = Array.from(acts[e]);
          for (let j = 0; j < 6; j++) a[j] += noiseStd * rng.normal();
          seg.proprio.set(obs[e].proprio.subarray(0, 7), (t * E + e) * 7);
          seg.actions.set(a, (t * E + e) * 7);
          actions.push(a);
        }
        const step = await vec.step(actions);
        let anyEnded = false;
        step.results.forEach((r, e) => {
          seg.rewards[t * E + e] = r.reward;
          seg.terminated[t * E + e] = r.terminated ? 1 : 0;
          seg.truncated[t * E + e] = r.truncated ? 1 : 0;
          anyEnded ||= r.terminated || r.truncated;
        });
        obs = step.results.map((r) => r.obs);
        if (anyEnded) {
          step.results.forEach((r, e) => {
            if (!r.terminated && !r.truncated) seg.cut[t * E + e] = 1;
          });
          obs = (await vec.reset(newSeeds())).map((r) => r.obs);
        }
      }
      obs.forEach((o, e) => seg.nextProprio.set(o.proprio.subarray(0, 7), e * 7));
      // 3. Publish until acknowledged (same message id on every try), then record progress.
      const bytes = encodeSegment(seg);
      const duplicate = await publishSegment(res, opts, seq, bytes, log, stats);
      await retrying(log, opts.signal, 'store the worker sequence', () => res.kv.put(workerKey(opts.workerId), String(seq + 1)));
      stats.segments++;
      stats.envSteps += T * E;
      stats.bytes += bytes.length;
      if (duplicate) stats.duplicates++;
      opts.onSegment?.({ seq, policyVersion: version, bytes: bytes.length, duplicate });
      seq++;
    }
    return stats;
  } finally {
    await policy?.close();
    await vec?.close();
    await nc.close().catch((err) => log(`closing the NATS connection: ${natsReason(err)}`));
  }
}

/**
 * Waits for the run's first weights and says what kind of run it is: 'policy' (deploy-policy
 * rollouts), the PPO rollout context's bytes, or 'finished'.
 */
async function runKind(res: ScaleResources, opts: WorkerOptions, log: Log): Promise<'policy' | 'finished' | Uint8Array> {
  for (let waited = false; ; waited = true) {
    if (await retrying(log, opts.signal, 'read the run state', () => runFinished(res))) return 'finished';
    if (await retrying(log, opts.signal, 'read the policy version', () => currentVersion(res))) break;
    if (!waited) log(`waiting for the learner to publish policy weights (KV ${res.names.kvBucket}/version)`);
    await sleep(200, opts.signal);
  }
  const entry = await retrying(log, opts.signal, 'read the run kind', () => res.kv.get(CONTEXT_KEY));
  if (!entry || entry.operation !== 'PUT' || entry.length === 0) return 'policy';
  const { object } = entry.json<{ object: string }>();
  return retrying(log, opts.signal, `fetch ${object}`, () => fetchWeights(res, object));
}

/** JetStream's answer when a discard-new stream is at its max-bytes limit. */
function isStreamFull(err: unknown): boolean {
  return err instanceof JetStreamApiError && /maximum bytes/i.test(err.message);
}

/** Publishes a segment until JetStream acknowledges it (same message id on every try); true when it was a duplicate. */
export async function publishSegment(res: ScaleResources, opts: WorkerOptions, seq: number, bytes: Uint8Array, log: Log, stats: WorkerStats): Promise<boolean> {
  const subject = `${res.names.subjectPrefix}.${opts.workerId}`;
  const msgID = segmentMessageId(opts.run, opts.workerId, seq);
  let wait = 100;
  let fullLogged = false;
  for (;;) {
    try {
      const ack = await res.js.publish(subject, bytes, { msgID, timeout: 5000 });
      if (fullLogged) log(`stream ${res.names.stream} has room again; segment ${seq} stored`);
      return ack.duplicate;
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      if (isStreamFull(err)) {
        stats.fullRetries++;
        if (!fullLogged) log(`stream ${res.names.stream} is full (the learner is behind); holding segment ${seq} until it has room`);
        fullLogged = true;
      } else {
        log(`publishing segment ${seq} failed: ${natsReason(err)}; retrying in ${(wait / 1000).toFixed(1)} s with the same message id`);
      }
      await sleep(wait, opts.signal);
      wait = Math.min(2000, wait * 2);
    }
  }
}

/**
 * Runs `fn` until it succeeds, waiting between tries: NATS calls fail while the server is away,
 * and the worker's job is to wait for it, not to exit.
 */
export async function retrying<T>(log: Log, signal: AbortSignal | undefined, what: string, fn: () => Promise<T>): Promise<T> {
  let wait = 100;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (signal?.aborted) throw err;
      log(`could not ${what}: ${natsReason(err)}; retrying in ${(wait / 1000).toFixed(1)} s`);
      await sleep(wait, signal);
      wait = Math.min(2000, wait * 2);
    }
  }
}
