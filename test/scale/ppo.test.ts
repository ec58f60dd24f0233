/**
 * Distributed PPO on a private loopback nats-server, with the state-based actor-critic (fast):
 * format-2 segments (split, merge, refusal of the other format), a learner + 2 workers training for
 * a few updates (the learner's weights change, every worker rolls out newer versions, metrics
 * lines as local PPO plus versions and segment ages), and a worker killed with SIGKILL mid-rollout
 * (nothing lost, nothing counted twice, its restart resumes its sequence).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Trainer } from '../../nn/trainer.ts';
import { Rng } from '../../sim/rng.ts';
import { parsePpoConfig, ppoLoss, ppoUpdate, type Rollout } from '../../policy/train/ppo.ts';
import { Learner } from '../../scale/learner.ts';
import { encodeParams, mergeSegments, rolloutToSegments } from '../../scale/ppo.ts';
import { trainPpoOverNats } from '../../scale/ppo_learner.ts';
import { CONTEXT_KEY, CONTEXT_OBJECT, decodePpoSegment, decodeSegment, encodePpoSegment, encodeSegment, workerKey, type PpoSegment } from '../../scale/protocol.ts';
import { runWorker, type WorkerStats } from '../../scale/worker.ts';
import { scratchDir } from '../tmp.ts';
import { startTestServer, waitFor } from './helpers.ts';
import { STATE_ACTION_MAP, stateActorCritic, stateBuilder } from './ppo_helpers.ts';

const cleanups: Array<() => Promise<void>> = [];
const children: ChildProcess[] = [];
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const c of cleanups.reverse()) await c();
});

/** A rollout of T steps x N envs whose every value encodes (array, t, env). */
function syntheticRollout(T: number, N: number, F: number): Rollout {
  const size = T * N;
  const v = (tag: number) => Float32Array.from({ length: size }, (_, k) => tag * 1000 + k);
  return {
    numSteps: T,
    numEnvs: N,
    inputs: { features: Float32Array.from({ length: size * F }, (_, k) => k) },
    actions: Float32Array.from({ length: size * 7 }, (_, k) => -k),
    logProbs: v(1),
    valuesExt: v(2),
    valuesInt: v(3),
    nextValuesExt: v(4),
    nextValuesInt: v(5),
    rewardsExt: v(6),
    rewardsInt: v(7),
    terminated: Uint8Array.from({ length: size }, (_, k) => k % 5 === 0 ? 1 : 0),
    ended: Uint8Array.from({ length: size }, (_, k) => k % 3 === 0 ? 1 : 0),
    termSums: { reach: -2.5 },
    episodes: [{ env: 0, seed: 1, length: 3, returnExt: 1, returnInt: 0, success: false, furthestStage: 0, truncated: true }, { env: 4, seed: 2, length: 4, returnExt: 2, returnInt: 1, success: true, furthestStage: 1, truncated: false }],
  };
}

test('PPO segments: a rollout cut along the env axis merges back to itself; each format refuses the other by name', () => {
  const ro = syntheticRollout(3, 5, 4);
  const ac = { inputShapes: { features: [4] }, actionSize: 7 };
  const parts = rolloutToSegments(ro, ac, { sar_claims: 4, sar_false_claims: 1, poe_loss: 0.5 }, { run: 'r', workerId: 2, seq: 10, policyVersion: 3, task: 'blocks' }, 2);
  assert.deepEqual(parts.map((p) => [p.seq, p.numEnvs]), [[10, 2], [11, 2], [12, 1]]);
  assert.deepEqual(parts.map((p) => p.episodes.map((e) => e.env)), [[0], [], [0]], 'episodes go with their env, re-based');
  const decoded = parts.map((p) => decodePpoSegment(encodePpoSegment(p)));
  const { rollout, rewardMetrics } = mergeSegments(decoded.map((segment) => ({ segment, weight: 1 })), ac);
  for (const k of ['actions', 'logProbs', 'valuesExt', 'valuesInt', 'nextValuesExt', 'nextValuesInt', 'rewardsExt', 'rewardsInt', 'terminated', 'ended'] as const) assert.deepEqual(rollout[k], ro[k], k);
  assert.deepEqual(rollout.inputs.features, ro.inputs.features);
  assert.deepEqual(rollout.termSums, ro.termSums);
  assert.deepEqual(rollout.episodes, ro.episodes);
  assert.equal(rollout.advantageWeights, undefined, 'fresh segments carry no weights');
  assert.deepEqual(rewardMetrics, { sar_claims: 4, sar_false_claims: 1, poe_loss: 0.5, hallucination: 0.25 });

  // A stale segment's weight lands on exactly its transitions.
  const w = mergeSegments([{ segment: decoded[0], weight: 1 }, { segment: decoded[2], weight: 0.25 }], ac).rollout;
  assert.deepEqual([...w.advantageWeights!], [1, 1, 0.25, 1, 1, 0.25, 1, 1, 0.25]);
  // Segments of different lengths cannot share a rollout.
  const short = rolloutToSegments(syntheticRollout(2, 1, 4), ac, {}, { run: 'r', workerId: 0, seq: 0, policyVersion: 1, task: 'blocks' }, 1)[0];
  assert.throws(() => mergeSegments([{ segment: decoded[0], weight: 1 }, { segment: short, weight: 1 }], ac), /segment r\.0\.0 has 2 steps, the batch's first has 3/);

  // Format 1 and format 2 are told apart on decode.
  const deploy = encodeSegment({ format: 1, run: 'r', workerId: 0, seq: 0, policyVersion: 1, task: 'blocks', numEnvs: 1, steps: 1, proprio: new Float32Array(7), actions: new Float32Array(7), rewards: new Float32Array(1), terminated: new Uint8Array(1), truncated: new Uint8Array(1), cut: new Uint8Array(1), nextProprio: new Float32Array(7) });
  assert.throws(() => decodePpoSegment(deploy), /segment format 1 is a deploy-policy segment .* this PPO learner consumes format 2/);
  assert.throws(() => decodeSegment(encodePpoSegment(parts[0])), /segment format 2 is a PPO rollout segment .* consumes format 1/);
  const bad = { ...parts[0], logProbs: new Float32Array(3) };
  assert.throws(() => encodePpoSegment(bad), /PPO segment\.logProbs: expected Float32Array\(6\) for 3 steps x 2 envs, got Float32Array\(3\)/);
});

test('weights: a version carries the trained parameters only (not trunk.*); a context or weights that do not fit are refused by name', async () => {
  const { ParamSet, init } = await import('../../nn/params.ts');
  const { decodeContext, encodeContext, loadParams } = await import('../../scale/ppo.ts');
  const make = (seed: number) => {
    const p = new ParamSet(seed);
    p.add('trunk.w', [4, 3], init.normal(1));
    p.add('head.w', [3, 2], init.normal(1));
    return p;
  };
  const a = make(1);
  const b = make(2);
  loadParams(b, encodeParams(a, 'trained'), 'trained', 'policy-v2');
  assert.deepEqual(b.get('head.w').data, a.get('head.w').data);
  assert.notDeepEqual(b.get('trunk.w').data, a.get('trunk.w').data, 'the trunk is not in a version');
  loadParams(b, encodeParams(a, 'all'), 'all', 'ppo-context');
  assert.deepEqual(b.get('trunk.w').data, a.get('trunk.w').data);
  const other = new ParamSet(3);
  other.add('head.w', [2, 3], init.normal(1));
  other.add('head.v', [1], init.zeros());
  assert.throws(() => loadParams(other, encodeParams(a, 'trained'), 'trained', 'policy-v2'), /policy-v2: parameters do not match this worker's model \(missing: head\.v; unknown: none\)/);
  const onlyHead = new ParamSet(4);
  onlyHead.add('head.w', [2, 3], init.normal(1));
  assert.throws(() => loadParams(onlyHead, encodeParams(a, 'trained'), 'trained', 'policy-v2'), /policy-v2: head\.w is F32 \[3,2\], the model's is F32 \[2,3\]/);
  assert.throws(() => decodeContext(encodeContext({ format: 'evovla.ppo-context', version: 2 } as never)), /PPO context version 2: this program reads version 1/);
  assert.throws(() => decodeContext(new Uint8Array([0xa3, 0x61])), /PPO context: (not valid msgpack|expected format 'evovla.ppo-context')/);
});

test('reweight: advantageWeights scale the policy loss exactly; weight 0 leaves the actor untouched while the critics learn', async () => {
  const ac = stateActorCritic();
  const F = ac.inputShapes.features[0];
  const ro = syntheticRollout(8, 4, F);
  const rng = new Rng(9);
  ro.inputs.features = Float32Array.from(ro.inputs.features, () => rng.normal());
  ro.actions = Float32Array.from(ro.actions, () => rng.normal() * 0.3);
  for (const k of ['logProbs', 'valuesExt', 'valuesInt', 'nextValuesExt', 'nextValuesInt', 'rewardsExt', 'rewardsInt'] as const) ro[k] = Float32Array.from(ro[k], () => rng.normal());
  const config = parsePpoConfig({ rolloutSteps: 32, minibatchSize: 32, epochs: 1, warmupSteps: 0, lr: 1e-2, entropyCoef: 0 });
  const run = async (weights: Float32Array | undefined) => {
    const fresh = stateActorCritic();
    const trainer = await Trainer.create({ model: fresh.model, loss: ppoLoss(config, 7), optimizer: { lr: 1e-2, weightDecay: 0 } });
    try {
      const stats = await ppoUpdate(config, trainer, fresh, { ...ro, advantageWeights: weights }, new Rng(1));
      return { stats, params: new Map(fresh.model.params.list().map((p) => [p.name, Float32Array.from(p.data)])) };
    } finally {
      await trainer.dispose();
    }
  };
  const initial = new Map(ac.model.params.list().map((p) => [p.name, p.data]));
  const full = await run(undefined);
  const half = await run(new Float32Array(32).fill(0.5));
  const zero = await run(new Float32Array(32));
  // One minibatch, one step from the same start: the surrogate is linear in the advantage.
  assert.ok(Math.abs(half.stats.policy_loss - 0.5 * full.stats.policy_loss) < 1e-5, `${half.stats.policy_loss} vs ${full.stats.policy_loss}`);
  assert.equal(zero.stats.policy_loss, 0);
  assert.deepEqual(zero.params.get('head.actor.out.weight'), initial.get('head.actor.out.weight'), 'no policy gradient at weight 0');
  assert.notDeepEqual(zero.params.get('head.value_ext.out.weight'), initial.get('head.value_ext.out.weight'), 'the critics still learn');
  assert.notDeepEqual(full.params.get('head.actor.out.weight'), initial.get('head.actor.out.weight'));
});

test('distributed PPO: a learner and 2 workers train for 3 updates; the weights change and every worker rolls out newer versions', { timeout: 120_000 }, async () => {
  const server = await startTestServer();
  cleanups.push(() => server.stop());
  const dir = scratchDir('evovla-dppo-');
  const ac = stateActorCritic();
  const initial = ac.model.params.list().map((p) => Float32Array.from(p.data));
  const config = parsePpoConfig({ totalSteps: 3 * 48, rolloutSteps: 48, minibatchSize: 24, epochs: 2, lr: 3e-3, warmupSteps: 0, seed: 4 });
  // A worker that fails stops the learner (instead of leaving it waiting for segments).
  const abort = new AbortController();
  const workerStats: Array<Promise<WorkerStats>> = [0, 1].map((id) =>
    runWorker({ url: server.url, run: 'dppo', workerId: id, numEnvs: 2, seed: 0, ppoBuilders: { state: stateBuilder }, log: () => {} }).catch((err) => {
      abort.abort(err);
      throw err;
    }),
  );
  const lines: string[] = [];
  const metricsPath = join(dir, 'metrics.jsonl');
  const result = await trainPpoOverNats(
    { config, actorCritic: ac, actionMap: STATE_ACTION_MAP, metricsPath },
    { url: server.url, run: 'dppo', builder: 'state', spec: {}, task: 'blocks', envs: 2, segmentSteps: 12, log: (l) => lines.push(l), signal: abort.signal },
  );
  // The learner marked the run finished: both workers exit by themselves.
  const stats = await Promise.all(workerStats);

  assert.equal(result.iterations.length, 3);
  const changed = ac.model.params.list().filter((p, i) => p.data.some((x, j) => x !== initial[i][j])).map((p) => p.name);
  assert.ok(changed.includes('head.actor.out.weight') && changed.includes('head.value_ext.out.weight') && changed.includes('head.log_std'), `changed: ${changed.join(', ')}`);
  const m = readFileSync(metricsPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(m.length, 3);
  assert.deepEqual(m.map((l) => l.policy_version), [1, 2, 3], 'update k trains on rollouts no older than the staleness bound and publishes v(k+1)');
  for (const l of m) {
    for (const key of ['policy_loss', 'value_loss_ext', 'approx_kl', 'entropy', 'reward/reach', 'episodes', 'segments', 'segment_age_mean', 'segment_age_max', 'test_metric', 'update_seconds']) assert.ok(key in l, `metrics lack ${key}`);
    assert.ok(l.segment_age_max <= 1, 'staleness: drop beyond one version');
    assert.ok(l.env_steps >= l.iteration * 48);
  }
  assert.equal(result.learner.envSteps, result.learner.segments * 2 * 12);
  for (const [i, s] of stats.entries()) {
    assert.ok(s.segments > 0, `worker ${i} published`);
    assert.ok(s.versions.length >= 2 && s.versions[0] === 1 && s.versions.at(-1)! > 1, `worker ${i} versions: ${s.versions.join(', ')}`);
  }
  assert.ok([0, 1].every((w) => (result.learner.byWorker.get(w)?.length ?? 0) > 0), 'both workers fed the learner');
  assert.match(lines.join('\n'), /12 steps per segment/);
});

test('distributed PPO: a learner that dies is replaced by one with a new context; the running worker rebuilds its rollout and the new learner finishes', { timeout: 120_000 }, async () => {
  const server = await startTestServer();
  cleanups.push(() => server.stop());
  const logs: string[] = [];
  const worker = runWorker({ url: server.url, run: 'dppo-new', workerId: 0, numEnvs: 2, seed: 0, ppoBuilders: { state: stateBuilder }, log: (l) => logs.push(l) });
  const failedWorker = worker.then(() => null, (err: Error) => err);
  const config = parsePpoConfig({ totalSteps: 3 * 48, rolloutSteps: 48, minibatchSize: 24, epochs: 1, warmupSteps: 0, seed: 4 });
  // Learner A dies after its first update (no `finished`: the worker keeps going).
  const crash = new AbortController();
  await assert.rejects(
    trainPpoOverNats(
      { config, actorCritic: stateActorCritic(), actionMap: STATE_ACTION_MAP, onIteration: () => crash.abort(new Error('learner A killed')) },
      { url: server.url, run: 'dppo-new', builder: 'state', spec: {}, task: 'blocks', envs: 2, segmentSteps: 12, log: () => {}, signal: crash.signal },
    ),
    /learner A killed/,
  );
  // Learner B: other segment length, so another context; segments of A's context are refused.
  const linesB: string[] = [];
  const result = await trainPpoOverNats(
    { config: parsePpoConfig({ ...config, totalSteps: 2 * 48 }), actorCritic: stateActorCritic(), actionMap: STATE_ACTION_MAP },
    { url: server.url, run: 'dppo-new', builder: 'state', spec: {}, task: 'blocks', envs: 2, segmentSteps: 8, log: (l) => linesB.push(l) },
  );
  assert.equal(result.iterations.length, 2);
  assert.equal(await failedWorker, null, 'the worker ends normally when learner B finishes');
  assert.match(logs.join('\n'), /published a new rollout context; rebuilding the rollout/);
  assert.match(linesB.join('\n'), /had policy v2; published this learner's weights as v3/);
  assert.deepEqual(result.iterations.map((m) => m.policy_version), [3, 4]);
  for (const l of linesB.filter((x) => x.startsWith('discarding'))) assert.match(l, /has 12 steps, this run's segments have 8/);
});

interface Proc {
  child: ChildProcess;
  stderr: string;
  exited: Promise<number | null>;
}

const FIXTURE = fileURLToPath(new URL('./fixtures/state_ppo_worker.ts', import.meta.url));

// A worker process that exits by itself with an error stops the learner (instead of leaving it waiting).
const failed = new AbortController();

function startWorker(url: string, id: number): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, url, 'dppo-kill', String(id), '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  const p: Proc = { child, stderr: '', exited: new Promise((r) => child.once('exit', (code) => r(code))) };
  child.once('exit', (code) => {
    if (code !== null && code !== 0) failed.abort(new Error(`worker ${id} exited with code ${code}:\n${p.stderr}`));
  });
  child.stderr!.on('data', (d: Buffer) => (p.stderr += d.toString()));
  child.stdout!.resume();
  return p;
}

test('distributed PPO: a worker killed with SIGKILL mid-rollout loses nothing and nothing is counted twice; its restart resumes', { timeout: 180_000 }, async () => {
  const server = await startTestServer();
  cleanups.push(() => server.stop());
  const ac = stateActorCritic();
  const config = parsePpoConfig({ rolloutSteps: 48, minibatchSize: 24, epochs: 1, warmupSteps: 0, seed: 5 });
  const trainer = await Trainer.create({ model: ac.model, loss: ppoLoss(config, ac.actionSize), optimizer: { lr: 1e-3 } });
  cleanups.push(() => trainer.dispose());
  const rng = new Rng(1);
  let updates = 0;
  // The update trainPpoOverNats runs (merge + ppoUpdate), on a Learner driven step by step here.
  const learner = await Learner.start<PpoSegment>({
    url: server.url,
    run: 'dppo-kill',
    initialWeights: encodeParams(ac.model.params, 'trained'),
    segmentsPerUpdate: 1,
    envStepsPerUpdate: 48,
    staleness: { maxVersions: 100, mode: 'drop' },
    decode: decodePpoSegment,
    log: () => {},
    signal: failed.signal,
    beforePublish: async (res) => {
      const { encodeContext } = await import('../../scale/ppo.ts');
      const bytes = encodeContext({ format: 'evovla.ppo-context', version: 1, task: 'blocks', segmentSteps: 12, envs: 2, ppo: config, actionSize: 7, inputShapes: { features: [...ac.inputShapes.features] }, params: encodeParams(ac.model.params, 'all'), builder: 'state', spec: {} });
      await res.weights.putBlob({ name: CONTEXT_OBJECT }, bytes);
      await res.kv.put(CONTEXT_KEY, JSON.stringify({ object: CONTEXT_OBJECT }));
    },
    update: async (batch) => {
      const { rollout } = mergeSegments(batch, ac);
      const s = await ppoUpdate(config, trainer, ac, rollout, rng);
      assert.ok(Number.isFinite(s.policy_loss));
      updates++;
      return encodeParams(ac.model.params, 'trained');
    },
  });
  cleanups.push(() => learner.close());
  const from = (w: number) => learner.stats.byWorker.get(w)?.length ?? 0;
  const workers = [0, 1].map((id) => startWorker(server.url, id));
  while (!(from(0) > 0 && from(1) > 0)) await learner.step();

  // Kill worker 1 right after a segment is acknowledged: it is then rolling out the next one.
  const published = (p: Proc) => [...p.stderr.matchAll(/published segment (\d+)/g)].length;
  const seen = published(workers[1]);
  await waitFor(() => published(workers[1]) > seen, 60_000, 'worker 1 to publish another segment', () => workers[1].stderr);
  workers[1].child.kill('SIGKILL');
  assert.equal(await workers[1].exited, null, 'killed by a signal');
  const before0 = from(0);
  while (from(0) < before0 + 2) await learner.step();

  // Restarted with the same id, it resumes at its stored sequence.
  const kvSeq = Number((await learner.res.kv.get(workerKey(1)))!.string());
  const w1 = startWorker(server.url, 1);
  await waitFor(() => new RegExp(`published segment ${kvSeq}\\b`).test(w1.stderr), 60_000, `the restarted worker to publish segment ${kvSeq}`, () => w1.stderr);
  assert.match(w1.stderr, new RegExp(`resuming at segment ${kvSeq}\\b`));

  // Stop both (each finishes its rollout), drain the stream.
  for (const p of [workers[0], w1]) p.child.kill('SIGTERM');
  for (const p of [workers[0], w1]) assert.equal(await p.exited, 0, p.stderr);
  for (;;) {
    const u = learner.stats.updates;
    await learner.step({ partialAfterIdleMs: 1000 });
    const left = (await learner.res.jsm.streams.info(learner.res.names.stream)).state.messages;
    if (learner.stats.updates === u && left === 0) break;
  }
  for (const w of [0, 1]) {
    const next = Number((await learner.res.kv.get(workerKey(w)))!.string());
    const got = [...(learner.stats.byWorker.get(w) ?? [])].sort((a, b) => a - b);
    assert.deepEqual(got, Array.from({ length: next }, (_, i) => i), `worker ${w}: segments received vs published (next seq ${next})`);
  }
  assert.equal(learner.stats.envSteps, learner.stats.segments * 2 * 12);
  assert.equal(updates, learner.stats.updates);
});
