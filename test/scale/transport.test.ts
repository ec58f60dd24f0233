/**
 * The NATS transport in one process: segment encoding, staleness, message-id dedup after a crash
 * between publish and progress record, back-pressure from a full stream, and workers that wait out
 * a missing or stopped nats-server. Workers here are in-process (runWorker); the multi-process
 * SIGKILL test is workers.test.ts.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Learner, stalenessWeight, type LearnerOptions } from '../../scale/learner.ts';
import { SEGMENT_FORMAT, decodeSegment, encodeSegment, scaleNames, segmentMessageId, workerKey, type Segment } from '../../scale/protocol.ts';
import { connectWithRetry, ensureResources, openResources } from '../../scale/nats.ts';
import { freePort, type LocalNatsServer } from '../../scale/server.ts';
import { runWorker, type WorkerOptions } from '../../scale/worker.ts';
import { scratchDir } from '../tmp.ts';
import { bcLearner, startTestServer, waitFor } from './helpers.ts';

let server: LocalNatsServer;
const cleanups: Array<() => Promise<void>> = [];
before(async () => {
  server = await startTestServer();
});
after(async () => {
  for (const c of cleanups.reverse()) await c();
  await server.stop();
});

function segment(over: Partial<Segment> = {}): Segment {
  const T = 2;
  const E = 1;
  return {
    format: SEGMENT_FORMAT, run: 'r', workerId: 0, seq: 0, policyVersion: 1, task: 'blocks', numEnvs: E, steps: T,
    proprio: new Float32Array(T * E * 7).fill(0.5), actions: new Float32Array(T * E * 7).fill(0.25), rewards: Float32Array.of(1, 2),
    terminated: Uint8Array.of(0, 1), truncated: new Uint8Array(2), cut: new Uint8Array(2), nextProprio: new Float32Array(7),
    ...over,
  };
}

async function startLearner(run: string, over: Partial<LearnerOptions> = {}): Promise<{ learner: Learner; logs: string[] }> {
  const bc = await bcLearner(2);
  const logs: string[] = [];
  const learner = await Learner.start({
    url: server.url, run, initialWeights: bc.initial, segmentsPerUpdate: 2, staleness: { maxVersions: 1, mode: 'drop' }, update: bc.update,
    log: (l) => logs.push(l), ...over,
  });
  cleanups.push(() => learner.close());
  return { learner, logs };
}

function workerOpts(url: string, run: string, over: Partial<WorkerOptions> = {}): WorkerOptions & { logs: string[] } {
  const logs: string[] = [];
  return { url, run, workerId: 0, taskId: 'blocks', numEnvs: 2, segmentSteps: 4, seed: 1, envConfig: { maxSteps: 20 }, log: (l) => logs.push(l), logs, ...over };
}

/** Consume until the stream is empty; returns the learner's per-worker sequence list. */
async function drain(learner: Learner): Promise<void> {
  for (;;) {
    const u = learner.stats.updates;
    await learner.step({ partialAfterIdleMs: 500 });
    const left = (await learner.res.jsm.streams.info(learner.res.names.stream)).state.messages;
    if (learner.stats.updates === u && left === 0) return;
  }
}

test('segments round-trip through msgpack with typed arrays; bad ones are named', () => {
  const s = segment();
  const back = decodeSegment(encodeSegment(s));
  assert.ok(back.proprio instanceof Float32Array && back.terminated instanceof Uint8Array);
  assert.deepEqual(back, s);
  assert.throws(() => encodeSegment(segment({ rewards: new Float32Array(3) })), /segment\.rewards: expected Float32Array\(2\) for 2 steps x 1 envs, got Float32Array\(3\)/);
  assert.throws(() => encodeSegment(segment({ actions: new Float64Array(14) as unknown as Float32Array })), /segment\.actions: expected Float32Array\(14\).*Float64Array/);
  assert.throws(() => decodeSegment(encodeSegment(s).subarray(0, 40)), /segment: not valid msgpack \(40 bytes\)/);
  assert.throws(() => scaleNames('bad run!'), /run id: expected 1-64 letters, digits, '_' or '-', got "bad run!"/);
  assert.equal(segmentMessageId('r', 3, 7), 'r.3.7');
});

test('staleness: fresh segments weigh 1, older ones are dropped or decayed', async () => {
  assert.equal(stalenessWeight(1, { maxVersions: 1, mode: 'drop' }), 1);
  assert.equal(stalenessWeight(2, { maxVersions: 1, mode: 'drop' }), null);
  assert.equal(stalenessWeight(3, { maxVersions: 1, mode: 'reweight', decay: 0.5 }), 0.25);
  // Through the stream: the learner is at v3; a v1 segment (age 2) is dropped, v2 and v3 are used.
  const { learner } = await startLearner('stale');
  const bytes = () => new Uint8Array(100);
  await learner.publish(bytes());
  await learner.publish(bytes());
  assert.equal(learner.stats.version, 3);
  const subject = `${learner.res.names.subjectPrefix}.0`;
  for (const [seq, v] of [[0, 1], [1, 2], [2, 3]]) {
    await learner.res.js.publish(subject, encodeSegment(segment({ run: 'stale', seq, policyVersion: v })), { msgID: segmentMessageId('stale', 0, seq) });
  }
  await learner.step();
  assert.equal(learner.stats.dropped, 1);
  assert.deepEqual(learner.stats.byWorker.get(0), [1, 2]);
  assert.equal(learner.stats.version, 4);
  await assert.rejects(Learner.start({ url: server.url, run: 'x', initialWeights: bytes(), segmentsPerUpdate: 1, staleness: { maxVersions: 1, mode: 'keep' as 'drop' }, update: async () => bytes() }), /staleness\.mode: expected 'drop' or 'reweight', got "keep"/);
});

test('a segment published again after a crash before its progress was recorded is stored once', async () => {
  const { learner } = await startLearner('dedup');
  const a = await runWorker(workerOpts(server.url, 'dedup', { maxSegments: 2 }));
  assert.deepEqual([a.segments, a.duplicates, a.versions], [2, 0, [1]]);
  // The worker published segment 1 and died before recording seq 2: its restart rolls segment 1 again.
  await learner.res.kv.put(workerKey(0), '1');
  const b = workerOpts(server.url, 'dedup', { maxSegments: 2 });
  const stats = await runWorker(b);
  assert.equal(stats.duplicates, 1, 'JetStream reported the repeated message id');
  assert.ok(b.logs.some((l) => l.includes('resuming at segment 1')), b.logs.join('\n'));
  await drain(learner);
  assert.deepEqual(learner.stats.byWorker.get(0)!.toSorted(), [0, 1, 2], 'segment 1 counted once');
  assert.equal(learner.stats.envSteps, 3 * 2 * 4);
  // Once the learner finishes the run, a worker exits normally (a Kubernetes Job completes).
  await learner.finish();
  const c = workerOpts(server.url, 'dedup');
  assert.equal((await runWorker(c)).segments, 0);
  assert.ok(c.logs.some((l) => l.includes("the learner finished run 'dedup'")), c.logs.join('\n'));
});

test('a full stream holds workers back until the learner catches up; nothing is dropped', async () => {
  const { learner } = await startLearner('full', { stream: { maxBytes: 3000 } });
  const opts = workerOpts(server.url, 'full', { maxSegments: 6 });
  const done = runWorker(opts);
  await waitFor(() => opts.logs.some((l) => l.includes('is full (the learner is behind)')), 60_000, 'the worker to meet a full stream', () => opts.logs.join('\n'));
  const info = await learner.res.jsm.streams.info(learner.res.names.stream);
  assert.ok(info.state.bytes <= 3000, `stream holds ${info.state.bytes} bytes`);
  const stats = await Promise.all([done, (async () => {
    while ((learner.stats.byWorker.get(0)?.length ?? 0) < 6) await learner.step({ partialAfterIdleMs: 500 });
  })()]).then(([s]) => s);
  assert.ok(stats.fullRetries > 0);
  assert.equal(stats.segments, 6);
  assert.deepEqual(learner.stats.byWorker.get(0)!.toSorted(), [0, 1, 2, 3, 4, 5]);
});

test('a worker that finds the stream before the KV bucket and object store waits for them', async () => {
  const nc = await connectWithRetry(server.url, { name: 'early', log: () => undefined });
  cleanups.push(() => nc.close());
  // The learner's first step: the stream exists, the bucket and store do not yet.
  const names = scaleNames('early');
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: names.stream, subjects: [`${names.subjectPrefix}.>`] });
  const logs: string[] = [];
  const opening = openResources(nc, 'early', (l) => logs.push(l));
  await waitFor(() => logs.some((l) => l.includes(`waiting for the learner to create KV bucket ${names.kvBucket}`)), 20_000, 'the wait for the KV bucket', () => logs.join('\n'));
  await ensureResources(nc, 'early');
  const res = await opening;
  await res.kv.put(workerKey(0), '3');
  assert.equal((await res.kv.get(workerKey(0)))!.string(), '3');
  assert.equal(await res.weights.getBlob('absent'), null);
});

test('workers wait for a nats-server that is not up yet, and retry through a restart', async () => {
  const port = await freePort();
  const store = scratchDir('evovla-nats-restart-');
  const url = `nats://127.0.0.1:${port}`;
  const abort = new AbortController();
  let published = 0;
  const opts = workerOpts(url, 'restart', { signal: abort.signal, onSegment: () => void published++ });
  const worker = runWorker(opts).catch((err: Error) => (abort.signal.aborted ? null : Promise.reject(err)));
  await waitFor(() => opts.logs.some((l) => l.startsWith(`cannot reach NATS at ${url}`) && l.includes('retrying')), 20_000, 'a retry message');

  let local = await startTestServer(port, store);
  cleanups.push(() => local.stop());
  const bc = await bcLearner(4);
  // The learner consumes nothing until drain(): every segment is rolled out with v1, and each
  // one-segment update adds a version, so segment k is k versions old when it is used. How many
  // segments the worker gets out around the restart depends on the machine's load, so no
  // staleness limit may drop any of them here (staleness has its own test above).
  const learner = await Learner.start({ url, run: 'restart', initialWeights: bc.initial, segmentsPerUpdate: 1, staleness: { maxVersions: 1_000_000, mode: 'drop' }, update: bc.update, log: () => undefined });
  cleanups.push(() => learner.close());
  await waitFor(() => published >= 1, 60_000, 'a first segment', () => opts.logs.join('\n'));

  await local.stop();
  await waitFor(() => opts.logs.some((l) => l.includes('lost the connection to NATS')), 20_000, 'the disconnect to be reported', () => opts.logs.join('\n'));
  await new Promise((r) => setTimeout(r, 1500));
  const during = published;
  local = await startTestServer(port, store);
  cleanups.push(() => local.stop());
  await waitFor(() => published >= during + 2, 60_000, 'the worker to resume after the restart', () => opts.logs.join('\n'));
  abort.abort();
  await worker;
  assert.ok(opts.logs.some((l) => l.startsWith('reconnected to NATS')), opts.logs.join('\n'));
  await drain(learner);
  const next = Number((await learner.res.kv.get(workerKey(0)))!.string());
  assert.equal(learner.stats.dropped, 0, 'no segment set aside as stale');
  assert.deepEqual(learner.stats.byWorker.get(0)!.toSorted((a, b) => a - b), Array.from({ length: next }, (_, i) => i), `every segment the worker stored (0..${next - 1}) used once`);
  await learner.close();
  await local.stop();
});

test('a batch that takes longer to fill than the ack wait is not delivered again (the learner marks it in progress)', { timeout: 60_000 }, async () => {
  const run = 'slowbatch';
  const { learner } = await startLearner(run, { segmentsPerUpdate: 3, ackWaitS: 1 });
  // Three segments 0.9 s apart: the batch fills after ~1.8 s, past the 1 s ack wait.
  const publisher = (async () => {
    for (let seq = 0; seq < 3; seq++) {
      await learner.res.js.publish(`${learner.res.names.subjectPrefix}.0`, encodeSegment(segment({ run, seq })), { msgID: segmentMessageId(run, 0, seq) });
      await new Promise((r) => setTimeout(r, 900));
    }
  })();
  await learner.step();
  await publisher;
  assert.equal(learner.stats.updates, 1);
  assert.deepEqual(learner.stats.byWorker.get(0), [0, 1, 2]);
  // Wait past another ack wait: nothing comes back.
  await learner.step({ partialAfterIdleMs: 1500 });
  assert.equal(learner.stats.redelivered, 0, 'no segment of the batch was delivered twice');
  assert.equal((await learner.res.jsm.streams.info(learner.res.names.stream)).state.messages, 0);
});
