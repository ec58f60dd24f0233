/**
 * The learner of distributed PPO (`evovla train --config X.yaml --nats URL`): policy/train/ppo.ts's
 * loop with the rollout done by `evovla worker` processes. Read top to bottom:
 *
 *  1. the optimizer and generators, as trainPpo makes them; a checkpoint restores them
 *  2. the run's rollout context (task, PPO settings, every starting parameter, the builder's data)
 *     goes to the object store, then the trained parameters as policy v1 (scale/learner.ts)
 *  3. per iteration: consume PPO segments until they hold ppo.rolloutSteps env steps (staleness:
 *     drop or re-weight), merge them into one rollout, ppoUpdate, one metrics line (trainPpo's,
 *     plus policy_version, segments, segment ages, workers), checkpoint, publish the next version
 *  4. mark the run finished (workers exit 0)
 *
 * Off-policy data: every segment carries its behaviour log-probs, so PPO's clipped ratio
 * pi_theta / pi_behaviour already corrects for the versions between rollout and update; a stale
 * segment kept by `reweight` also has its policy loss scaled by its weight (advantageWeights). The
 * value targets of a stale segment are used as they are.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Trainer } from '../nn/trainer.ts';
import { makeDirectory } from '../sim/files.ts';
import { Rng } from '../sim/rng.ts';
import type { TrainConfig } from '../policy/train/config.ts';
import { iterationMetrics, ppoLoss, ppoUpdate, type IterationMetrics, type PpoCheckpointState, type TrainPpoOptions, type TrainPpoResult } from '../policy/train/ppo.ts';
import type { PpoTrainer } from '../policy/train/ppo_phase.ts';
import { sarModelPath } from '../policy/train/sar_phase.ts';
import { Learner, type LearnerStats, type StalenessConfig } from './learner.ts';
import { FINISHED_KEY, type Log, type StreamLimits } from './nats.ts';
import { checkSegmentFits, encodeContext, encodeParams, mergeSegments, segmentBytesPerStep, type PpoRunContext } from './ppo.ts';
import { CONTEXT_KEY, CONTEXT_OBJECT, decodePpoSegment, type PpoSegment } from './protocol.ts';

/** Where and how the learner talks to its workers. */
export interface NatsPpoOptions {
  url: string;
  run: string;
  /** Default: drop segments more than 1 version old. */
  staleness?: StalenessConfig;
  /** The rollout builder workers use and its data (PpoRunContext.builder/spec). */
  builder: string;
  spec: Record<string, unknown>;
  task: string;
  /** Envs a worker steps unless its --envs says otherwise. */
  envs: number;
  /**
   * Steps per env in a segment (default: ppo.rolloutSteps / envs, as a local rollout, capped so
   * one env's steps fill at most half of the server's max_payload).
   */
  segmentSteps?: number;
  stream?: StreamLimits;
  ackWaitS?: number;
  log?: Log;
  signal?: AbortSignal;
}

/** trainPpo's options without the parts that live on the workers. */
export type DistributedPpoOptions = Pick<TrainPpoOptions, 'config' | 'actorCritic' | 'actionMap' | 'metricsPath' | 'onIteration' | 'checkpoint' | 'restore'>;

/** What a distributed run returns: trainPpo's result and the learner's counters. */
export interface DistributedPpoResult extends TrainPpoResult {
  learner: LearnerStats;
}

/** The default staleness of a PPO learner: PPO is on-policy; one version of lag is what the clip tolerates. */
export const PPO_STALENESS: StalenessConfig = { maxVersions: 1, mode: 'drop' };

/**
 * Trains o.actorCritic with PPO on segments from workers, for o.config.totalSteps env steps
 * (rounded down to whole rollouts, as trainPpo), then marks the run finished.
 */
export async function trainPpoOverNats(o: DistributedPpoOptions, n: NatsPpoOptions): Promise<DistributedPpoResult> {
  const cfg = o.config;
  const log = n.log ?? ((line: string) => console.error(`[learner] ${line}`));
  const numIterations = Math.floor(cfg.totalSteps / cfg.rolloutSteps);
  if (numIterations < 1) throw new Error(`ppo.totalSteps: ${cfg.totalSteps} is less than one rollout (ppo.rolloutSteps = ${cfg.rolloutSteps})`);
  const ac = o.actorCritic;
  const params = ac.model.params;

  // 1. The optimizer and generators, as trainPpo makes them (the worker-side ones are only stored).
  const trainer = await Trainer.create({
    model: ac.model,
    loss: ppoLoss(cfg, ac.actionSize),
    optimizer: { lr: cfg.lr, warmupSteps: cfg.warmupSteps, clipNorm: cfg.maxGradNorm, weightDecay: cfg.weightDecay },
    session: { threads: cfg.threads },
  });
  const root = new Rng(cfg.seed);
  const rngs = { actions: root.fork('actions'), episodes: root.fork('episodes'), minibatches: new Rng(cfg.seed).fork('minibatches') };
  const state = (iteration: number): PpoCheckpointState => ({ iteration, trainer, rngs, episodes: [] });
  let learner: Learner<PpoSegment> | null = null;
  try {
    const restored = state(0);
    const done = o.restore ? await o.restore(restored) : 0;
    if (!Number.isInteger(done) || done < 0 || done > numIterations) throw new Error(`PPO checkpoint: ${done} iterations done, expected 0..${numIterations}`);
    if (o.metricsPath) makeDirectory(dirname(o.metricsPath));

    const iterations: IterationMetrics[] = [];
    let envSteps = done * cfg.rolloutSteps;
    let waitStart = performance.now();
    let segmentSteps = 0;
    // 2. Context, then v1 (Learner.start); 3. one update per learner step.
    learner = await Learner.start<PpoSegment>({
      url: n.url,
      run: n.run,
      initialWeights: encodeParams(params, 'trained'),
      segmentsPerUpdate: 1,
      envStepsPerUpdate: cfg.rolloutSteps,
      staleness: n.staleness ?? PPO_STALENESS,
      // Checked against this learner's actor-critic and segment length: a segment another context
      // made (an earlier phase's worker still running) is logged and removed instead of failing the update.
      decode: (bytes) => {
        const s = decodePpoSegment(bytes);
        checkSegmentFits(s, ac, segmentSteps);
        return s;
      },
      republish: true,
      stream: n.stream,
      ackWaitS: n.ackWaitS,
      log,
      signal: n.signal,
      beforePublish: async (res) => {
        const maxPayload = res.nc.info?.max_payload ?? 1 << 20;
        const perStep = segmentBytesPerStep(ac.inputShapes, ac.actionSize);
        const cap = Math.max(1, Math.floor(maxPayload / 2 / perStep));
        segmentSteps = n.segmentSteps ?? Math.max(1, Math.min(cap, Math.floor(cfg.rolloutSteps / n.envs)));
        if (segmentSteps * perStep > maxPayload * 0.9) throw new Error(`segmentSteps ${segmentSteps}: one env's segment would be ${segmentSteps * perStep} bytes, over 90% of the NATS server's max_payload (${maxPayload}); use at most ${cap}`);
        const context: PpoRunContext = {
          format: 'evovla.ppo-context',
          version: 1,
          task: n.task,
          segmentSteps,
          envs: n.envs,
          ppo: { ...cfg },
          actionSize: ac.actionSize,
          inputShapes: Object.fromEntries(Object.entries(ac.inputShapes).map(([k, s]) => [k, [...s]])),
          params: encodeParams(params, 'all'),
          builder: n.builder,
          spec: n.spec,
        };
        const bytes = encodeContext(context);
        // A run id reused (a resumed learner, a second PPO phase): segments left in the stream were
        // rolled out for weights this learner does not have, and `finished` would stop the workers.
        const left = (await res.jsm.streams.info(res.names.stream)).state.messages;
        if (left > 0) {
          await res.jsm.streams.purge(res.names.stream);
          log(`discarded ${left} segments an earlier learner of run '${n.run}' left in the stream`);
        }
        await res.kv.delete(FINISHED_KEY);
        await res.weights.putBlob({ name: CONTEXT_OBJECT }, bytes);
        await res.kv.put(CONTEXT_KEY, JSON.stringify({ object: CONTEXT_OBJECT, bytes: bytes.length }));
        log(`rollout context for run '${n.run}': task ${n.task}, builder '${n.builder}', ${segmentSteps} steps per segment (${perStep} bytes per env step), ${bytes.length} bytes`);
      },
      update: async (batch, { version, update }) => {
        const iteration = done + update + 1;
        const t1 = performance.now();
        if (cfg.annealLr) trainer.learningRate = cfg.lr * (1 - (iteration - 1) / numIterations);
        const { rollout, rewardMetrics } = mergeSegments(batch, ac);
        const stats = await ppoUpdate(cfg, trainer, ac, rollout, rngs.minibatches);
        const t2 = performance.now();
        envSteps += rollout.numSteps * rollout.numEnvs;
        const m = iterationMetrics(iteration, envSteps, rollout, stats, rewardMetrics);
        const ages = batch.map((b) => b.age);
        m.policy_version = version;
        m.segments = batch.length;
        m.segment_age_mean = ages.reduce((a, b) => a + b, 0) / ages.length;
        m.segment_age_max = Math.max(...ages);
        m.segments_stale_weighted = batch.filter((b) => b.weight < 1).length;
        m.segments_dropped = learner?.stats.dropped ?? 0;
        m.workers = new Set(batch.map((b) => b.segment.workerId)).size;
        m.rollout_seconds = (t1 - waitStart) / 1000;
        m.update_seconds = (t2 - t1) / 1000;
        if (o.metricsPath) appendFileSync(o.metricsPath, JSON.stringify(m) + '\n');
        iterations.push(m);
        await o.onIteration?.(m);
        if (o.checkpoint && (iteration % o.checkpoint.every === 0 || iteration === numIterations)) await o.checkpoint.save(state(iteration));
        return encodeParams(params, 'trained');
      },
    });
    for (let it = done + 1; it <= numIterations; it++) {
      waitStart = performance.now();
      await learner.step();
    }
    // 4. Workers exit after their current rollout.
    await learner.finish();
    log(`run '${n.run}' finished: ${learner.stats.updates} updates, ${learner.stats.segments} segments (${learner.stats.envSteps} env steps), ${learner.stats.dropped} dropped as stale, ${learner.stats.redelivered} redeliveries ignored`);
    return { iterations, learner: learner.stats };
  } finally {
    await learner?.close();
    await trainer.dispose();
  }
}

/** What `evovla train --nats` passes besides the URL. */
export interface NatsTrainOptions {
  url: string;
  /** Run id (default: the config's name). */
  run?: string;
  staleness?: StalenessConfig;
  segmentSteps?: number;
  log?: Log;
  signal?: AbortSignal;
}

/**
 * The PPO phases of `train` run over NATS: workers build the same VLA rollout as the local phase
 * (builder `vla`: the run's resolved config, the phase index, the norm statistics, and the SAR
 * scorer of the run folder when the phase uses SAR).
 */
export function natsPpoTrainer(train: TrainConfig, o: NatsTrainOptions): PpoTrainer {
  return async (opts, phase) => {
    const runDir = join(train.runsDir, train.name);
    let sar: { onnx: Uint8Array; json: string } | null = null;
    if (phase.config.sar) {
      const onnx = sarModelPath(runDir);
      const json = join(dirname(onnx), 'sar.json');
      if (!existsSync(onnx) || !existsSync(json)) throw new Error(`phase ${phase.index} (ppo) uses SAR but ${onnx} or ${json} is missing`);
      sar = { onnx: new Uint8Array(readFileSync(onnx)), json: readFileSync(json, 'utf8') };
    }
    const spec = { train: JSON.parse(JSON.stringify(train)) as unknown, phaseIndex: phase.index, normStats: phase.vla.stats, sar };
    return trainPpoOverNats(opts, {
      url: o.url,
      run: o.run ?? train.name,
      staleness: o.staleness,
      segmentSteps: o.segmentSteps,
      builder: 'vla',
      spec,
      task: train.task,
      envs: phase.config.envs,
      log: o.log,
      signal: o.signal,
    });
  };
}
