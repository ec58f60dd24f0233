/**
 * NATS connection and the JetStream resources of a run (see protocol.ts for the names): connect
 * with retries and plain messages while the server is away, create or open the segment stream,
 * the policy KV bucket and the weights object store, publish and fetch policy weights.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { DiscardPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { scaleNames, weightsObjectName, type ScaleNames } from './protocol.ts';

/** Where progress and trouble are reported (a line each). */
export type Log = (line: string) => void;

/** Resolves after `ms`, or early (rejecting) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason ?? new Error('aborted'));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason ?? new Error('aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A short reason for a NATS or JetStream error. */
export function natsReason(err: unknown): string {
  const e = err as { message?: string; code?: string | number };
  const msg = e?.message ?? String(err);
  return e?.code !== undefined && !msg.includes(String(e.code)) ? `${msg} (${e.code})` : msg;
}

/**
 * Connects to `url`, retrying every `retryMs` (doubling to 5 s) with a line on `log` per failure,
 * until it succeeds or `signal` aborts. Once connected the client reconnects by itself forever;
 * each disconnect and reconnect is logged.
 */
export async function connectWithRetry(url: string, opts: { name: string; log: Log; signal?: AbortSignal; retryMs?: number }): Promise<NatsConnection> {
  if (!/^(nats|tls|ws|wss):\/\/[^\s]+$/.test(url)) throw new Error(`NATS URL: expected nats://host:port (or tls://, ws://, wss://), got ${JSON.stringify(url)}`);
  let wait = opts.retryMs ?? 250;
  for (let attempt = 1; ; attempt++) {
    try {
      const nc = await connect({ servers: url, name: opts.name, reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout: 2000 });
      if (attempt > 1) opts.log(`connected to NATS at ${url} after ${attempt} attempts`);
      void watchStatus(nc, url, opts.log);
      return nc;
    } catch (err) {
      opts.log(`cannot reach NATS at ${url}: ${natsReason(err)}; retrying in ${(wait / 1000).toFixed(2)} s (is nats-server running with -js?)`);
      await sleep(wait, opts.signal);
      wait = Math.min(5000, wait * 2);
    }
  }
}

async function watchStatus(nc: NatsConnection, url: string, log: Log): Promise<void> {
  for await (const s of nc.status()) {
    if (s.type === 'disconnect') log(`lost the connection to NATS at ${url}; reconnecting (work resumes when it is back)`);
    else if (s.type === 'reconnect') log(`reconnected to NATS at ${url}`);
  }
}

/** Limits of the segment stream. */
export interface StreamLimits {
  /** Bytes the stream may hold before publishes are refused (default 256 MiB). */
  maxBytes?: number;
  /** Window in which a repeated message id is dropped (default 10 min). */
  duplicateWindowMs?: number;
}

/** The opened JetStream resources of one run. */
export interface ScaleResources {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  names: ScaleNames;
  kv: KV;
  weights: ObjectStore;
}

/**
 * Creates (learner) or updates the stream, KV bucket and object store of run `run`; idempotent.
 * The stream is file-backed, so a restarted nats-server keeps unconsumed segments.
 */
export async function ensureResources(nc: NatsConnection, run: string, limits: StreamLimits = {}): Promise<ScaleResources> {
  const names = scaleNames(run);
  const maxBytes = limits.maxBytes ?? 256 * 2 ** 20;
  if (!Number.isInteger(maxBytes) || maxBytes < 1024) throw new Error(`stream maxBytes: expected an integer >= 1024, got ${maxBytes}`);
  const jsm = await jetstreamManager(nc);
  const config = {
    name: names.stream,
    subjects: [`${names.subjectPrefix}.>`],
    retention: RetentionPolicy.Workqueue,
    discard: DiscardPolicy.New,
    storage: StorageType.File,
    max_bytes: maxBytes,
    duplicate_window: (limits.duplicateWindowMs ?? 600_000) * 1e6,
  };
  const existing = await jsm.streams.info(names.stream).catch(() => null);
  if (existing) await jsm.streams.update(names.stream, { max_bytes: config.max_bytes, duplicate_window: config.duplicate_window });
  else await jsm.streams.add(config);
  const js = jetstream(nc);
  const kv = await new Kvm(js).create(names.kvBucket, { history: 1 });
  const weights = await new Objm(js).create(names.objectBucket);
  return { nc, js, jsm, names, kv, weights };
}

/**
 * Opens the resources a worker needs, waiting (with a line on `log` every few tries) until the
 * learner has created all of them. The learner creates the stream, then the KV bucket, then the
 * object store, so a worker that finds the stream may still be ahead of the other two: it waits
 * for each rather than failing.
 */
export async function openResources(nc: NatsConnection, run: string, log: Log, signal?: AbortSignal): Promise<ScaleResources> {
  const names = scaleNames(run);
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  for (let attempt = 0; ; attempt++) {
    let missing: string;
    try {
      const info = await jsm.streams.info(names.stream).catch(() => null);
      if (info) {
        missing = `KV bucket ${names.kvBucket}`;
        const kv = await new Kvm(js).open(names.kvBucket);
        // open() only binds; status() asks the server, so a bucket not created yet fails here.
        await kv.status();
        missing = `object store ${names.objectBucket}`;
        const weights = await new Objm(js).open(names.objectBucket);
        return { nc, js, jsm, names, kv, weights };
      }
      missing = `stream ${names.stream}`;
    } catch (err) {
      missing = `${missing!} (${natsReason(err)})`;
    }
    if (attempt % 10 === 0) log(`waiting for the learner to create ${missing} on run '${run}'`);
    await sleep(300, signal);
  }
}

/** The current policy version and its object name, or null before the first publish. */
export async function currentVersion(res: ScaleResources): Promise<{ version: number; object: string } | null> {
  const e = await res.kv.get('version');
  if (!e || e.operation !== 'PUT' || e.length === 0) return null;
  const v = e.json<{ version: number; object: string }>();
  if (!Number.isInteger(v.version) || v.version < 1 || typeof v.object !== 'string') {
    throw new Error(`KV ${res.names.kvBucket}/version: expected {"version": n >= 1, "object": name}, got ${e.string()}`);
  }
  return v;
}

/**
 * Stores `bytes` as policy version `version` (object first, then the KV key, so a worker that sees
 * the key always finds the object) and deletes objects older than `keep` versions.
 */
export async function publishWeights(res: ScaleResources, version: number, bytes: Uint8Array, keep = 3): Promise<void> {
  if (!Number.isInteger(version) || version < 1) throw new Error(`policy version: expected an integer >= 1, got ${version}`);
  const object = weightsObjectName(version);
  await res.weights.putBlob({ name: object }, bytes);
  await res.kv.put('version', JSON.stringify({ version, object }));
  const old = version - keep;
  if (old >= 1) {
    // Older objects may be mid-download by a slow worker; it retries with the newest version.
    const stale = await res.weights.info(weightsObjectName(old)).catch(() => null);
    if (stale && !stale.deleted) await res.weights.delete(weightsObjectName(old));
  }
}

/** The bytes of object `object`; throws when it is missing. */
export async function fetchWeights(res: ScaleResources, object: string): Promise<Uint8Array> {
  const bytes = await res.weights.getBlob(object);
  if (!bytes) throw new Error(`object store ${res.names.objectBucket} has no '${object}'`);
  return bytes;
}

/** KV key the learner sets when the run is over; workers seeing it exit normally. */
export const FINISHED_KEY = 'finished';

/** Whether the learner has marked the run finished. */
export async function runFinished(res: ScaleResources): Promise<boolean> {
  const e = await res.kv.get(FINISHED_KEY);
  return !!e && e.operation === 'PUT' && e.length > 0;
}
