/**
 * The learner's side of distributed rollouts: consume segments from the run's stream, set aside
 * those rolled out with weights that are too old, hand each batch to an update callback (PPO, or
 * anything that turns segments into new weights), publish the new weights as the next version,
 * and only then acknowledge the batch. A learner that dies mid-update leaves its batch unacked,
 * so JetStream delivers it again; segments seen twice (a redelivery) are counted once.
 *
 * Staleness: a segment's age is (current version - its policyVersion). Up to `maxVersions` old it
 * has weight 1; older ones are dropped (`mode: 'drop'`) or kept with weight
 * decay^(age - maxVersions) (`mode: 'reweight'`), for an off-policy correction in the update.
 */
import { AckPolicy, DeliverPolicy, type JsMsg } from '@nats-io/jetstream';
import { FINISHED_KEY, connectWithRetry, currentVersion, ensureResources, natsReason, publishWeights, type Log, type ScaleResources, type StreamLimits } from './nats.ts';
import { decodeSegment, segmentMessageId, type Segment } from './protocol.ts';

/** What the learner reads of any segment format. */
export type SegmentHeader = Pick<Segment, 'run' | 'workerId' | 'seq' | 'policyVersion' | 'numEnvs' | 'steps'>;

/** A segment and the weight the update should give it. */
export interface WeightedSegment<S extends SegmentHeader = Segment> {
  segment: S;
  /** 1 for fresh segments, < 1 for re-weighted stale ones. */
  weight: number;
  /** Policy versions between the segment's and the one being updated. */
  age: number;
}

/** Turns a batch into the next weights (ONNX policy bytes, as workers load them). */
export type UpdateFn<S extends SegmentHeader = Segment> = (batch: WeightedSegment<S>[], ctx: { version: number; update: number }) => Promise<Uint8Array>;

/** What to do with segments rolled out more than `maxVersions` versions ago. */
export interface StalenessConfig {
  maxVersions: number;
  mode: 'drop' | 'reweight';
  /** Per-version weight factor for `reweight` (default 0.5). */
  decay?: number;
}

/** Options of `Learner.start`. */
export interface LearnerOptions<S extends SegmentHeader = Segment> {
  url: string;
  run: string;
  /** Weights published as version 1 when the run has none yet. */
  initialWeights: Uint8Array;
  /** Segments per update (counted after staleness drops). */
  segmentsPerUpdate: number;
  /**
   * Also wait for this many env steps (steps x envs, summed over the batch) before an update
   * (default 0: segmentsPerUpdate alone decides). A PPO learner sets it to its rollout size.
   */
  envStepsPerUpdate?: number;
  staleness: StalenessConfig;
  update: UpdateFn<S>;
  /**
   * Bytes -> segment (default: decodeSegment, format 1). A message it refuses is logged with the
   * reason and removed from the stream (it could never be used).
   */
  decode?: (bytes: Uint8Array) => S;
  /**
   * Runs after the run's resources exist and before any weights are published (a PPO learner
   * stores its rollout context here, so a worker that sees a version always finds it).
   */
  beforePublish?: (res: ScaleResources) => Promise<void>;
  /**
   * When the run already has weights: publish `initialWeights` as the next version (true; a
   * restarted learner whose own weights are the truth) instead of continuing from them (default).
   */
  republish?: boolean;
  stream?: StreamLimits;
  /** Seconds JetStream waits for an ack before delivering a segment again (default 120). */
  ackWaitS?: number;
  log?: Log;
  signal?: AbortSignal;
}

/** Counters of a learner. */
export interface LearnerStats {
  updates: number;
  /** Segments handed to updates. */
  segments: number;
  envSteps: number;
  /** Encoded bytes of the segments handed to updates. */
  bytes: number;
  /** Segments dropped as too old. */
  dropped: number;
  /** Deliveries of a segment already counted (JetStream redeliveries). */
  redelivered: number;
  /** Per worker id: sequence numbers received, in arrival order. */
  byWorker: Map<number, number[]>;
  /** Current policy version. */
  version: number;
}

function checkOptions<S extends SegmentHeader>(o: LearnerOptions<S>): void {
  if (!Number.isInteger(o.segmentsPerUpdate) || o.segmentsPerUpdate < 1) throw new Error(`learner segmentsPerUpdate: expected an integer >= 1, got ${o.segmentsPerUpdate}`);
  const s = o.staleness;
  if (!Number.isInteger(s?.maxVersions) || s.maxVersions < 0) throw new Error(`learner staleness.maxVersions: expected an integer >= 0, got ${s?.maxVersions}`);
  if (s.mode !== 'drop' && s.mode !== 'reweight') throw new Error(`learner staleness.mode: expected 'drop' or 'reweight', got ${JSON.stringify(s.mode)}`);
  if (s.decay !== undefined && !(s.decay > 0 && s.decay <= 1)) throw new Error(`learner staleness.decay: expected a number in (0, 1], got ${s.decay}`);
  if (!(o.initialWeights instanceof Uint8Array) || o.initialWeights.length === 0) throw new Error('learner initialWeights: expected non-empty weights bytes');
  if (o.envStepsPerUpdate !== undefined && !(Number.isInteger(o.envStepsPerUpdate) && o.envStepsPerUpdate >= 0)) throw new Error(`learner envStepsPerUpdate: expected an integer >= 0, got ${o.envStepsPerUpdate}`);
}

/** The weight of a segment of age `age` under `s`, or null when it is dropped. */
export function stalenessWeight(age: number, s: StalenessConfig): number | null {
  if (age <= s.maxVersions) return 1;
  if (s.mode === 'drop') return null;
  return (s.decay ?? 0.5) ** (age - s.maxVersions);
}

/** A learner attached to a run's stream. */
export class Learner<S extends SegmentHeader = Segment> {
  readonly stats: LearnerStats = { updates: 0, segments: 0, envSteps: 0, bytes: 0, dropped: 0, redelivered: 0, byWorker: new Map(), version: 0 };
  private readonly seen = new Set<string>();
  /** The consumer's message stream (pulls continuously; the client re-pulls after reconnects). */
  private iterator: AsyncIterator<JsMsg> | null = null;
  private messages: { stop(): void } | null = null;
  /** A `next()` still in flight from an earlier wait that timed out (never call next twice). */
  private pending: Promise<IteratorResult<JsMsg>> | null = null;
  private readonly log: Log;

  private constructor(
    readonly res: ScaleResources,
    private readonly opts: LearnerOptions<S>,
  ) {
    this.log = opts.log ?? ((line) => console.error(`[learner] ${line}`));
  }

  /** Connects, creates the run's resources, publishes version 1 unless the run already has weights. */
  static async start<S extends SegmentHeader = Segment>(opts: LearnerOptions<S>): Promise<Learner<S>> {
    checkOptions(opts);
    const log = opts.log ?? ((line: string) => console.error(`[learner] ${line}`));
    const nc = await connectWithRetry(opts.url, { name: 'evovla-learner', log, signal: opts.signal });
    try {
      const res = await ensureResources(nc, opts.run, opts.stream);
      await res.jsm.consumers.add(res.names.stream, {
        durable_name: res.names.consumer,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: (opts.ackWaitS ?? 120) * 1e9,
      });
      const l = new Learner<S>(res, { ...opts, log });
      await opts.beforePublish?.(res);
      const current = await currentVersion(res);
      if (current && opts.republish) {
        await publishWeights(res, current.version + 1, opts.initialWeights);
        l.stats.version = current.version + 1;
        log(`run '${opts.run}' had policy v${current.version}; published this learner's weights as v${l.stats.version}`);
      } else if (current) {
        l.stats.version = current.version;
        log(`run '${opts.run}' already has policy v${current.version}; continuing from it`);
      } else {
        await publishWeights(res, 1, opts.initialWeights);
        l.stats.version = 1;
        log(`published policy v1 (${opts.initialWeights.length} bytes)`);
      }
      return l;
    } catch (err) {
      await nc.close().catch(() => undefined);
      throw err;
    }
  }

  /** Publishes `bytes` as the next version (for callers that change weights outside `update`). */
  async publish(bytes: Uint8Array): Promise<number> {
    const v = this.stats.version + 1;
    await publishWeights(this.res, v, bytes);
    this.stats.version = v;
    return v;
  }

  /**
   * Collects one batch (`segmentsPerUpdate` fresh-enough segments), runs the update, publishes its
   * weights as the next version and acks the batch. Returns the new version.
   *
   * `partialAfterIdleMs`: when no segment arrives for this long, update with the segments there are
   * (none: return the current version without an update). For draining a stream at shutdown.
   */
  async step(opts_: { partialAfterIdleMs?: number } = {}): Promise<number> {
    const { opts } = this;
    const batch: WeightedSegment<S>[] = [];
    const msgs: JsMsg[] = [];
    let idleSince = Date.now();
    let lastNote = Date.now();
    const needSteps = opts.envStepsPerUpdate ?? 0;
    const steps = (): number => batch.reduce((n, b) => n + b.segment.steps * b.segment.numEnvs, 0);
    // A batch of many env steps can take longer to fill than JetStream's ack wait: tell it the
    // segments held so far are in progress, so it does not deliver them again meanwhile.
    const ackWaitMs = (opts.ackWaitS ?? 120) * 1000;
    let lastProgress = Date.now();
    while (batch.length < opts.segmentsPerUpdate || steps() < needSteps) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
      if (Date.now() - lastProgress >= ackWaitMs / 3) {
        lastProgress = Date.now();
        for (const m of msgs) m.working();
      }
      const m = await this.next(250);
      if (m) {
        this.take(m, batch, msgs);
        idleSince = Date.now();
        continue;
      }
      const idle = Date.now() - idleSince;
      if (opts_.partialAfterIdleMs !== undefined) {
        if (idle >= opts_.partialAfterIdleMs) break;
      } else if (Date.now() - lastNote >= 10_000) {
        lastNote = Date.now();
        const have = needSteps ? `${steps()}/${needSteps} env steps` : `${batch.length}/${opts.segmentsPerUpdate} segments`;
        this.log(`no segments for ${(idle / 1000).toFixed(0)} s (${have} in this batch); are workers running on run '${opts.run}'?`);
      }
    }
    if (batch.length === 0) {
      await Promise.all(msgs.map((m) => m.ackAck()));
      return this.stats.version;
    }
    const version = this.stats.version;
    for (const m of msgs) m.working();
    const bytes = await opts.update(batch, { version, update: this.stats.updates });
    await this.publish(bytes);
    // Ack after the new weights are out: a crash before this point redelivers the batch.
    await Promise.all(msgs.map((m) => m.ackAck()));
    this.stats.updates++;
    return this.stats.version;
  }

  /** The next delivered message, or null after `waitMs` without one. */
  private async next(waitMs: number): Promise<JsMsg | null> {
    if (!this.iterator) {
      const consumer = await this.res.js.consumers.get(this.res.names.stream, this.res.names.consumer);
      // Buffer at most one batch ahead: a buffered message's ack clock is already running.
      const messages = await consumer.consume({ max_messages: Math.max(2, this.opts.segmentsPerUpdate) });
      this.messages = messages;
      this.iterator = messages[Symbol.asyncIterator]();
    }
    this.pending ??= this.iterator.next();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), waitMs)));
    const r = await Promise.race([this.pending, timeout]);
    clearTimeout(timer);
    if (r === null) return null;
    this.pending = null;
    if (r.done) throw new Error(`the consumer ${this.res.names.consumer} on stream ${this.res.names.stream} stopped delivering`);
    return r.value;
  }

  private take(m: JsMsg, batch: WeightedSegment<S>[], msgs: JsMsg[]): void {
    let seg: S;
    try {
      seg = this.opts.decode ? this.opts.decode(m.data) : (decodeSegment(m.data) as unknown as S);
    } catch (err) {
      // A malformed message can never be used: say so and remove it rather than redeliver forever.
      this.log(`discarding message ${m.seq} on ${m.subject}: ${(err as Error).message}`);
      m.term();
      return;
    }
    const id = segmentMessageId(seg.run, seg.workerId, seg.seq);
    if (this.seen.has(id)) {
      this.stats.redelivered++;
      msgs.push(m);
      return;
    }
    this.seen.add(id);
    const age = this.stats.version - seg.policyVersion;
    const weight = stalenessWeight(age, this.opts.staleness);
    if (weight === null) {
      this.stats.dropped++;
      msgs.push(m);
      return;
    }
    const list = this.stats.byWorker.get(seg.workerId) ?? [];
    list.push(seg.seq);
    this.stats.byWorker.set(seg.workerId, list);
    this.stats.segments++;
    this.stats.envSteps += seg.steps * seg.numEnvs;
    this.stats.bytes += m.data.length;
    batch.push({ segment: seg, weight, age });
    msgs.push(m);
  }

  /** Marks the run finished: workers exit after their current segment (a Kubernetes Job completes). */
  async finish(): Promise<void> {
    await this.res.kv.put(FINISHED_KEY, new Date().toISOString());
  }

  /** Stops consuming (unacked segments go back to the stream) and closes the connection. */
  async close(): Promise<void> {
    if (this.messages) {
      // stop(), not close(): close() waits for the server, which may be the thing that is gone.
      this.messages.stop();
      this.messages = null;
      this.iterator = null;
    }
    await this.res.nc.close().catch((err) => this.log(`closing the NATS connection: ${natsReason(err)}`));
  }
}
