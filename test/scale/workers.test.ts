/**
 * Three `evovla worker` processes and a learner on a private loopback nats-server: a weight roll
 * reaches every worker, a worker killed with SIGKILL mid-segment loses nothing and duplicates
 * nothing (the learner goes on with the other two; the restarted worker resumes its sequence), and
 * after a drain every worker's segments 0..n-1 were each used exactly once.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Learner } from '../../scale/learner.ts';
import { workerKey } from '../../scale/protocol.ts';
import { bcLearner, startTestServer, testProcesses, waitFor, type EvovlaProcess } from './helpers.ts';

const { evovla, cleanups } = testProcesses();

function startWorker(url: string, id: number): EvovlaProcess {
  return evovla(['worker', '--nats', url, '--run', 'wtest', '--worker-id', String(id), '--task', 'blocks', '--envs', '2', '--segment-steps', '6', '--max-steps', '30', '--seed', '5']);
}

test('3 workers + learner: weight roll, SIGKILL mid-segment, restart, nothing lost or counted twice', { timeout: 240_000 }, async () => {
  const server = await startTestServer();
  cleanups.push(() => server.stop());
  const bc = await bcLearner(3);
  const logs: string[] = [];
  const learner = await Learner.start({
    url: server.url,
    run: 'wtest',
    initialWeights: bc.initial,
    segmentsPerUpdate: 3,
    staleness: { maxVersions: 1, mode: 'reweight', decay: 0.5 },
    update: bc.update,
    log: (l) => logs.push(l),
  });
  cleanups.push(() => learner.close());
  const workers = [0, 1, 2].map((id) => startWorker(server.url, id));
  const from = (w: number) => learner.stats.byWorker.get(w)?.length ?? 0;

  // Every worker rolls out and its segments reach the learner.
  while (![0, 1, 2].every((w) => from(w) > 0)) await learner.step();
  // One more update: a version newer than any a worker has loaded so far.
  const rolled = await learner.step();
  // The roll reaches every worker: each switches from an older version to it.
  await waitFor(() => workers.every((p) => new RegExp(`policy v${rolled} `).test(p.out)), 60_000, `every worker to load v${rolled}`, () => workers.map((p) => p.out).join('\n'));
  for (const p of workers) {
    const loaded = [...p.out.matchAll(/rolling out with policy v(\d+) /g)].map((m) => Number(m[1]));
    assert.ok(loaded.length >= 2 && loaded[0] < rolled && loaded.at(-1) === rolled, `versions loaded: ${loaded.join(', ')}`);
  }

  // SIGKILL worker 2 while it rolls out (it switched weights and is mid-segment).
  workers[2].child.kill('SIGKILL');
  assert.equal(await workers[2].exited, null, 'killed by a signal');
  const before = [0, 1].map(from);
  const updatesBefore = learner.stats.updates;
  while (!(from(0) > before[0] && from(1) > before[1] && learner.stats.updates >= updatesBefore + 1)) await learner.step();

  // A restarted worker 2 (what a Kubernetes Job does with the same index) resumes its sequence.
  const kvSeq = Number((await learner.res.kv.get(workerKey(2)))!.string());
  const w2 = startWorker(server.url, 2);
  await waitFor(() => /rolling out with policy v\d+/.test(w2.out), 60_000, 'the restarted worker to start', () => w2.out);
  if (kvSeq > 0) assert.match(w2.out, new RegExp(`resuming at segment ${kvSeq}\\b`));
  const after2 = from(2);
  while (from(2) < after2 + 1) await learner.step();

  // Stop the workers (each finishes its segment), drain the stream.
  for (const p of [workers[0], workers[1], w2]) p.child.kill('SIGTERM');
  for (const p of [workers[0], workers[1], w2]) assert.equal(await p.exited, 0, p.out);
  for (;;) {
    const v = learner.stats.version;
    const u = learner.stats.updates;
    await learner.step({ partialAfterIdleMs: 1000 });
    const left = (await learner.res.jsm.streams.info(learner.res.names.stream)).state.messages;
    if (learner.stats.updates === u && learner.stats.version === v && left === 0) break;
  }

  // Exactly segments 0..n-1 of every worker, each once.
  for (const w of [0, 1, 2]) {
    const next = Number((await learner.res.kv.get(workerKey(w)))!.string());
    const got = [...(learner.stats.byWorker.get(w) ?? [])].sort((a, b) => a - b);
    assert.deepEqual(got, Array.from({ length: next }, (_, i) => i), `worker ${w}: segments received vs published (next seq ${next})`);
  }
  assert.equal(learner.stats.dropped, 0);
  assert.equal(learner.stats.segments, bc.seen.reduce((s, u) => s + u.segments, 0), 'every counted segment went into an update');
  assert.equal(learner.stats.envSteps, learner.stats.segments * 2 * 6);
});
