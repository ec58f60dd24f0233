/**
 * A PPO rollout worker (`evovla worker` on a run whose learner is `evovla train --nats`). Read top
 * to bottom:
 *
 *  1. read the run's rollout context (object `ppo-context`) and build the rollout with the builder
 *     it names: for `vla`, the same VecEnv with cameras, frozen trunk encoder with its key-frame
 *     bank, and EvoVLA reward model (the run's SAR scorer; a POE world model of its own, trained
 *     online on this worker's transitions only) as the local PPO phase (policy/train/ppo_phase.ts)
 *  2. load every starting parameter (the BC-trained trunk included) from the context
 *  3. per rollout: pick up a newer policy version (trained parameters only), run policy/train/ppo.ts's
 *     collectRollout on this worker's envs for `segmentSteps` steps, cut it along the env axis into
 *     format-2 segments that fit one NATS message, and publish each as scale/worker.ts publishes
 *     deploy-policy segments (message-id dedup, retries, the worker's sequence in KV)
 *
 * Exploration noise and episode seeds come from the rollout context's generators, seeded from the
 * run's PPO seed, the worker id and the sequence number this process starts at.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelRunner } from '../nn/runner.ts';
import { SarScorer } from '../rewards/sar/scorer.ts';
import { getTask } from '../tasks/index.ts';
import { parseTrainConfig } from '../policy/train/config.ts';
import { collectRollout, parsePpoConfig, rolloutContext, startEpisodes, type ActionMap, type ActorCritic, type Cursor, type ObservationEncoder, type RewardModel, type RolloutEnv } from '../policy/train/ppo.ts';
import { buildVlaRollout } from '../policy/train/ppo_phase.ts';
import { sarStageScorer } from '../policy/train/sar_phase.ts';
import { createVla, type NormStats } from '../policy/vla/model.ts';
import { taskTokenizer } from '../policy/vla/tokenizer.ts';
import { currentVersion, fetchWeights, runFinished, sleep, type Log, type ScaleResources } from './nats.ts';
import { decodeContext, loadParams, rolloutToSegments, segmentBytesPerStep, type PpoRunContext } from './ppo.ts';
import { CONTEXT_KEY, CONTEXT_OBJECT, encodePpoSegment, workerKey } from './protocol.ts';
import { publishSegment, retrying, type WorkerOptions, type WorkerStats } from './worker.ts';

/** What a worker rolls out with: trainPpo's parts, built from a run's context. */
export interface PpoRolloutParts {
  env: RolloutEnv;
  actorCritic: ActorCritic;
  encoder: ObservationEncoder;
  rewards: RewardModel;
  actionMap: ActionMap;
  /** Releases the env, sessions and temp files. */
  close(): Promise<void>;
}

/** Builds a worker's rollout parts from the run's context (the builder named in it). */
export type PpoRolloutBuilder = (context: PpoRunContext, o: { numEnvs: number; vecWorkers?: number; threads: number; log: Log }) => Promise<PpoRolloutParts>;

/** The VLA builder's data in the context (written by scale/ppo_learner.ts's natsPpoTrainer). */
interface VlaSpec {
  train: unknown;
  phaseIndex: number;
  normStats: NormStats;
  sar: { onnx: Uint8Array; json: string } | null;
}

/**
 * The rollout of the local PPO phase, built by the same function (policy/train/ppo_phase.ts's
 * buildVlaRollout): the run's VLA with PPO's memory fusion, a VecEnv with the policy's cameras, the
 * run's frozen SAR scorer (from the context), a fresh POE world model, the key-frame bank.
 */
export const vlaRolloutBuilder: PpoRolloutBuilder = async (context, o) => {
  const spec = context.spec as unknown as VlaSpec;
  const train = parseTrainConfig(spec.train, 'PPO context spec.train');
  const phase = train.phases[spec.phaseIndex];
  if (phase?.kind !== 'ppo') throw new Error(`PPO context spec.phaseIndex: phase ${spec.phaseIndex} of the run's config is ${phase ? `'${phase.kind}'` : 'missing'}, expected 'ppo'`);
  const vla = createVla(train.model, taskTokenizer({ buckets: train.model.tokenizerBuckets, maxLength: train.model.maxTokens }), spec.normStats, train.seed);
  let sar: ReturnType<typeof sarStageScorer> | null = null;
  if (phase.sar) {
    if (!spec.sar) throw new Error(`PPO context: phase ${spec.phaseIndex} uses SAR but the context carries no SAR model`);
    // SarScorer loads from files: the model and its sar.json go through a private temp folder.
    const dir = mkdtempSync(join(tmpdir(), 'evovla-sar-'));
    try {
      writeFileSync(join(dir, 'sar.onnx'), spec.sar.onnx);
      writeFileSync(join(dir, 'sar.json'), spec.sar.json);
      sar = sarStageScorer(await SarScorer.load(join(dir, 'sar.onnx')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  try {
    const r = await buildVlaRollout({ vla, task: getTask(train.task), phase, numEnvs: o.numEnvs, workers: o.vecWorkers ?? Math.min(phase.workers, o.numEnvs), threads: o.threads, gamma: context.ppo.gamma, sar });
    return {
      env: r.env,
      actorCritic: r.model.actorCritic,
      encoder: r.encoder,
      rewards: r.rewards,
      actionMap: r.model.actionMap,
      close: async () => {
        await r.close();
        await sar?.dispose();
      },
    };
  } catch (err) {
    await sar?.dispose();
    throw err;
  }
};

/** Builders a worker knows by name (a program may pass more in WorkerOptions.ppoBuilders). */
export const PPO_BUILDERS: Readonly<Record<string, PpoRolloutBuilder>> = { vla: vlaRolloutBuilder };

function sameShapes(a: Readonly<Record<string, readonly number[]>>, b: Readonly<Record<string, readonly number[]>>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.join() === kb.join() && ka.every((k) => a[k].join() === b[k].join());
}

/** Why runPpoWorker returned: done (stopped, finished, maxSegments), or a new context to build from. */
export interface PpoWorkerExit {
  /** The next sequence number. */
  seq: number;
  /** The learner's new rollout context (a restarted learner, a new PPO phase), or null when done. */
  newContext: Uint8Array | null;
}

/** The KV revision of the run's context key (0 when absent). */
async function contextRevision(res: ScaleResources): Promise<number> {
  const e = await res.kv.get(CONTEXT_KEY);
  return e && e.operation === 'PUT' ? e.revision : 0;
}

/**
 * Runs PPO rollouts for the run whose context is `contextBytes`, from sequence number `seq`, until
 * `maxSegments` are published, the learner finishes the run, the signal aborts, or the learner
 * publishes a different context (then it returns it, for the caller to build again).
 */
export async function runPpoWorker(res: ScaleResources, opts: WorkerOptions, seq: number, contextBytes: Uint8Array, log: Log, stats: WorkerStats): Promise<PpoWorkerExit> {
  let revision = await retrying(log, opts.signal, 'read the context revision', () => contextRevision(res));
  const context = decodeContext(contextBytes);
  if (opts.taskId !== undefined && opts.taskId !== context.task) throw new Error(`worker task '${opts.taskId}': run '${opts.run}' trains '${context.task}' (leave --task out for a PPO run)`);
  const build = opts.ppoBuilders?.[context.builder] ?? PPO_BUILDERS[context.builder];
  if (!build) throw new Error(`PPO context builder '${context.builder}': this worker knows ${[...new Set([...Object.keys(PPO_BUILDERS), ...Object.keys(opts.ppoBuilders ?? {})])].join(', ')}`);
  const numEnvs = opts.numEnvs ?? context.envs;
  const T = context.segmentSteps;
  if (opts.segmentSteps !== undefined && opts.segmentSteps !== T) log(`segment steps ${opts.segmentSteps} ignored: run '${opts.run}' uses ${T} (its learner's choice)`);
  const parts = await build(context, { numEnvs, vecWorkers: opts.vecWorkers, threads: context.ppo.threads, log });
  let runner: ModelRunner | null = null;
  try {
    const ac = parts.actorCritic;
    if (ac.actionSize !== context.actionSize || !sameShapes(ac.inputShapes, context.inputShapes)) {
      throw new Error(`builder '${context.builder}' made an actor-critic with inputs ${JSON.stringify(ac.inputShapes)} and ${ac.actionSize} actions; the run's are ${JSON.stringify(context.inputShapes)} and ${context.actionSize}`);
    }
    loadParams(ac.model.params, context.params, 'all', `${CONTEXT_OBJECT} of run '${opts.run}'`);
    const rolloutSteps = T * numEnvs;
    const seed = (context.ppo.seed * 1_000_003 + (opts.workerId + 1) * 7919 + seq) % 2 ** 31;
    const cfg = parsePpoConfig({ ...context.ppo, rolloutSteps, minibatchSize: Math.min(context.ppo.minibatchSize, rolloutSteps), seed }, 'PPO context.ppo');
    runner = await ModelRunner.create(ac.model, { threads: cfg.threads });
    const ctx = rolloutContext({ config: cfg, env: parts.env, actorCritic: ac, encoder: parts.encoder, rewards: parts.rewards, actionMap: parts.actionMap }, runner);
    const maxPayload = res.nc.info?.max_payload ?? 1 << 20;
    const columnBytes = T * segmentBytesPerStep(ac.inputShapes, ac.actionSize);
    const envsPerSegment = Math.max(1, Math.floor((maxPayload * 0.8) / columnBytes));
    let cur: Cursor | null = null;
    let version = 0;
    let misfit = 0;
    while (opts.maxSegments === undefined || stats.segments < opts.maxSegments) {
      if (opts.signal?.aborted) break;
      if (await retrying(log, opts.signal, 'read the run state', () => runFinished(res))) {
        log(`the learner finished run '${opts.run}'; exiting`);
        break;
      }
      const rev = await retrying(log, opts.signal, 'read the context revision', () => contextRevision(res));
      if (rev !== revision) {
        const bytes = await retrying(log, opts.signal, `fetch ${CONTEXT_OBJECT}`, () => fetchWeights(res, CONTEXT_OBJECT));
        revision = rev;
        if (Buffer.compare(bytes, contextBytes) !== 0) {
          log(`the learner of run '${opts.run}' published a new rollout context; rebuilding the rollout`);
          return { seq, newContext: bytes };
        }
      }
      const current = await retrying(log, opts.signal, 'read the policy version', () => currentVersion(res));
      if (current && current.version !== version) {
        const bytes = await retrying(log, opts.signal, `fetch ${current.object}`, () => fetchWeights(res, current.object));
        try {
          loadParams(ac.model.params, bytes, 'trained', `${current.object} of run '${opts.run}'`);
        } catch (err) {
          // Right after a new context, the version key may still name the previous learner's weights.
          if (misfit !== current.version) log(`${(err as Error).message}; waiting for weights that fit the run's context`);
          misfit = current.version;
          await sleep(300, opts.signal);
          continue;
        }
        version = current.version;
        stats.versions.push(version);
        log(`rolling out with policy v${version} (${bytes.length} bytes)`);
      }
      if (version === 0) {
        // No weights yet (the version key was removed): never roll out with the context's start weights untagged.
        await sleep(200, opts.signal);
        continue;
      }
      cur ??= await startEpisodes(ctx);
      const ro = await collectRollout(ctx, cur);
      const rewardMetrics = (await parts.rewards.afterRollout?.()) ?? {};
      const segments = rolloutToSegments(ro, ac, rewardMetrics, { run: opts.run, workerId: opts.workerId, seq, policyVersion: version, task: context.task }, envsPerSegment);
      for (const s of segments) {
        const bytes = encodePpoSegment(s);
        const duplicate = await publishSegment(res, opts, s.seq, bytes, log, stats);
        await retrying(log, opts.signal, 'store the worker sequence', () => res.kv.put(workerKey(opts.workerId), String(s.seq + 1)));
        stats.segments++;
        stats.envSteps += s.steps * s.numEnvs;
        stats.bytes += bytes.length;
        if (duplicate) stats.duplicates++;
        opts.onSegment?.({ seq: s.seq, policyVersion: version, bytes: bytes.length, duplicate });
      }
      seq += segments.length;
    }
    return { seq, newContext: null };
  } finally {
    await runner?.dispose();
    await parts.close();
  }
}
