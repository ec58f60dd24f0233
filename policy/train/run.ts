/**
 * A training run: the config's phases in order on one VLA, with the run folder every phase shares.
 *
 *   <runsDir>/<name>/config.yaml        resolved config (every default filled in)
 *                    norm_stats.json    action / proprio statistics of the training demos
 *                    metrics.jsonl      one JSON line per log interval (phase, step, loss terms, samples/s, lr, grad norm)
 *                    checkpoints/       p<phase>-step<step>.safetensors (last `checkpoints.keep`) + best.safetensors
 *                    policy.onnx        the exported policy (contract in docs/policy.md)
 *                    eval.json          the held-out evaluation (unless eval.episodes is 0)
 *
 * Adding a phase kind: add its schema to `PhaseSchema` (config.ts), write its phase function
 * (like runBcPhase), and add a case to `runPhase` below. Checkpoints carry the phase index, so
 * `--resume` skips finished phases and continues the interrupted one.
 */
import { appendFileSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { decodeSafetensors, loadCheckpoint, saveCheckpoint } from '../../nn/checkpoint.ts';
import { writeFileAtomic } from '../../nn/model.ts';
import type { Trainer } from '../../nn/trainer.ts';
import { robotSpecFor } from '../../robot/spec.ts';
import { makeDirectory } from '../../sim/files.ts';
import { Rng } from '../../sim/rng.ts';
import { getTask } from '../../tasks/index.ts';
import { auxStateDimOf, createVla, exportVla, parameterCounts, relativeDims, type NormStats } from '../vla/model.ts';
import { taskTokenizer } from '../vla/tokenizer.ts';
import { runBcPhase, type PhaseContext } from './bc.ts';
import { EVAL_SEED_BASE, demoDirOf, demoNoiseOf, parseTrainConfig, type PhaseConfig, type TrainConfig } from './config.ts';
import { buildFrameCache, STILL_TOL, type FrameCache } from './dataset.ts';
import { ensureDemos } from './demos.ts';
import { runPpoPhase, type PpoPhaseDeps, type PpoTrainer } from './ppo_phase.ts';
import { runSarPhase, sarModelPath, sarStageScorer } from './sar_phase.ts';
import { SarScorer } from '../../rewards/sar/scorer.ts';
import type { SarGateOverride } from '../../rewards/sar/config.ts';
import type { StageScorer } from './evovla_rewards.ts';

/** Options of `trainRun` that are not part of the config. */
export interface TrainOptions {
  /** Continue the run in the run folder from its latest checkpoint. */
  resume?: boolean;
  /** Lines for the user (plain text). */
  log?: (line: string) => void;
  /** Progress display: called every step. */
  progress?: (phase: string, step: number, total: number, note: string) => void;
  /** Tests: stop as if killed after the checkpoint at this step (of the first phase). */
  haltAfterStep?: number;
  /** Runs the PPO phases' iterations in trainPpo's place (`evovla train --nats`). */
  ppoTrainer?: PpoTrainer;
}

/** What a run produced. */
export interface TrainSummary {
  runDir: string;
  policy: string | null;
  parameters: { trunk: number; head: number; total: number };
  phases: Record<string, unknown>[];
  eval: unknown;
  halted: boolean;
}

const CKPT = /^p(\d+)-step(\d+)\.safetensors$/;

/** Checkpoint files of a run folder, oldest first. */
export function listCheckpoints(dir: string): { file: string; phase: number; step: number }[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((f) => ({ f, m: CKPT.exec(f) }))
    .filter((x) => x.m)
    .map((x) => ({ file: join(dir, x.f), phase: Number(x.m![1]), step: Number(x.m![2]) }))
    .sort((a, b) => a.phase - b.phase || a.step - b.step);
}

/** Resolved config as stored in the run folder. */
export function readRunConfig(runDir: string): TrainConfig {
  const file = join(runDir, 'config.yaml');
  return parseTrainConfig(parseYaml(readFileSync(file, 'utf8')), file);
}

/** The run folder does not fit the request: a new run over an existing one, or --resume with none. */
export class RunFolderError extends Error {
  override name = 'RunFolderError';
}

/** Runs (or resumes) the training run `cfg`. */
export async function trainRun(cfg: TrainConfig, opts: TrainOptions = {}): Promise<TrainSummary> {
  const log = opts.log ?? (() => {});
  const runDir = join(cfg.runsDir, cfg.name);
  const ckptDir = join(runDir, 'checkpoints');
  const existing = listCheckpoints(ckptDir);
  if (opts.resume) {
    if (!existsSync(join(runDir, 'config.yaml'))) throw new RunFolderError(`--resume: no run in '${runDir}' (config.yaml missing)`);
    const stored = readRunConfig(runDir);
    if (JSON.stringify(stored) !== JSON.stringify(cfg)) log(`resuming with the config stored in ${runDir}/config.yaml (the given config differs and is ignored)`);
    cfg = stored;
  } else if (existing.length || existsSync(join(runDir, 'metrics.jsonl'))) {
    throw new RunFolderError(`run folder '${runDir}' already holds a run; pass --resume to continue it, or choose another name (--set name=...)`);
  }
  makeDirectory(ckptDir);
  writeFileAtomic(join(runDir, 'config.yaml'), new TextEncoder().encode(toYaml(cfg)));

  // Data: the demos (generated when missing), decoded once into the frame cache.
  const task = getTask(cfg.task);
  const demoDir = demoDirOf(cfg);
  const files = await ensureDemos(task, demoDir, cfg.data.demoSeed, cfg.data.episodes, cfg.model.cameras, cfg.model.imageSize, log, { noise: demoNoiseOf(cfg), workers: cfg.data.workers });
  const cache: FrameCache = buildFrameCache(files, join(demoDir, `.frames-${cfg.model.imageSize}-${cfg.model.cameras.join('-')}-${cfg.data.demoSeed}-${cfg.data.episodes}`), cfg.model.cameras, cfg.model.imageSize, log);
  try {
    const nVal = Math.min(cfg.data.valEpisodes, cache.episodes.length - 1);
    const trainEps = cache.episodes.map((_, k) => k).slice(0, cache.episodes.length - nVal);
    const valEps = cache.episodes.map((_, k) => k).slice(cache.episodes.length - nVal);
    // A 'command' wait ignores the observation's motion: no proprio change exceeds an infinite tolerance.
    const waitTol = cfg.data.dropWaitsBy === 'command' ? Number.POSITIVE_INFINITY : STILL_TOL;
    const framesOf = (eps: number[], dropWaits = 0) => {
      const out: number[] = [];
      for (const k of eps) for (let i = cache.episodes[k].start; i < cache.episodes[k].start + cache.episodes[k].length; i++) if (!dropWaits || !cache.stillWait(i, dropWaits, waitTol)) out.push(i);
      return Int32Array.from(out);
    };
    const trainFrames = framesOf(trainEps, cfg.data.dropWaits);
    const valFrames = framesOf(valEps);
    if (cfg.data.dropWaits > 0) log(`data: ${trainEps.reduce((n, k) => n + cache.episodes[k].length, 0) - trainFrames.length} training frames in waits left out (data.dropWaits ${cfg.data.dropWaits}, by ${cfg.data.dropWaitsBy})`);
    const stats: NormStats = cache.stats(trainEps, relativeDims(cfg.model.actionFrame), cfg.model.chunk);
    writeFileAtomic(join(runDir, 'norm_stats.json'), new TextEncoder().encode(JSON.stringify(stats, null, 2)));
    log(`data: ${trainEps.length} training episodes (${trainFrames.length} frames), ${valEps.length} held out for validation (${valFrames.length} frames)`);

    // The training-only auxiliary head, when a BC phase trains it, is part of the model from the
    // start, so every phase and a resumed run see the same parameters.
    const auxStateDim = cfg.phases.some((ph) => ph.kind === 'bc' && ph.auxState > 0) ? cache.stateDim : 0;
    const vla = createVla(cfg.model, taskTokenizer({ buckets: cfg.model.tokenizerBuckets, maxLength: cfg.model.maxTokens }), stats, cfg.seed, { auxStateDim });
    const parameters = parameterCounts(vla);
    log(`model: ${parameters.trunk + parameters.head} parameters (trunk ${parameters.trunk}, head ${parameters.head})${parameters.aux > 0 ? `, plus ${parameters.aux} in the training-only auxiliary state head` : ''}`);

    // Resume point: the latest checkpoint (phase, step).
    const latest = opts.resume ? listCheckpoints(ckptDir).at(-1) : undefined;
    const metricsFile = join(runDir, 'metrics.jsonl');
    if (opts.resume) truncateMetrics(metricsFile, latest ? { phase: latest.phase, step: latest.step } : null);
    let bestVal = opts.resume && existsSync(join(runDir, 'best.json')) ? (JSON.parse(readFileSync(join(runDir, 'best.json'), 'utf8')) as { valLoss: number }).valLoss : Number.POSITIVE_INFINITY;

    const phases: Record<string, unknown>[] = [];
    let halted = false;
    let inference: TrainConfig['inference'] = cfg.inference;
    // The frozen SAR scorer a 'sar' phase trained (or a resumed run finds in its folder).
    let sar: (StageScorer & { dispose(): Promise<void> }) | null = existsSync(sarModelPath(runDir)) && opts.resume ? sarStageScorer(await SarScorer.load(sarModelPath(runDir))) : null;
    for (let p = 0; p < cfg.phases.length; p++) {
      const phase = cfg.phases[p];
      if (latest && p < latest.phase && phase.kind !== 'sar') {
        log(`phase ${p} (${phase.kind}) finished before the interruption; skipped`);
        continue;
      }
      const ctx: PhaseContext = {
        vla,
        cache,
        trainFrames,
        valFrames,
        seed: cfg.seed,
        threads: cfg.threads,
        phaseIndex: p,
        haltAfterStep: p === 0 ? opts.haltAfterStep : undefined,
        logMetrics: (line) => {
          appendFileSync(metricsFile, `${JSON.stringify({ phase_index: p, ...line })}\n`);
          if (!opts.progress) log(formatMetrics(line));
        },
        progress: (step, total, note) => opts.progress?.(phase.kind, step, total, note),
        checkpoint: (step, trainer, rngs, valLoss) => {
          const meta = { phase: String(p), kind: phase.kind, step: String(step), task: cfg.task, run: cfg.name };
          saveCheckpoint(join(ckptDir, `p${p}-step${String(step).padStart(8, '0')}.safetensors`), { params: vla.params, trainer, rngs, metadata: meta });
          if (valLoss !== null && valLoss < bestVal) {
            bestVal = valLoss;
            saveCheckpoint(join(ckptDir, 'best.safetensors'), { params: vla.params, metadata: { ...meta, val_loss: String(valLoss) } });
            writeFileAtomic(join(runDir, 'best.json'), new TextEncoder().encode(JSON.stringify({ phase: p, step, valLoss })));
          }
          for (const old of listCheckpoints(ckptDir).slice(0, -cfg.checkpoints.keep)) rmSync(old.file, { force: true });
        },
        resume: (trainer: Trainer, rngs: Record<string, Rng>) => {
          if (!latest || latest.phase !== p) return 0;
          const { step } = loadCheckpoint(latest.file, { params: vla.params, trainer, rngs });
          log(`resumed phase ${p} (${phase.kind}) at step ${step} from ${latest.file}`);
          return step ?? 0;
        },
      };
      const checkpoints = { dir: ckptDir, keep: cfg.checkpoints.keep, resumeFrom: latest && latest.phase === p ? latest.file : null };
      const result = await runPhase(ctx, phase, { task, sar, log, runDir, setSar: (s) => (sar = s), checkpoints, trainer: opts.ppoTrainer });
      phases.push({ kind: phase.kind, ...result });
      // A phase may change how the policy must be played (PPO trains the first action of each chunk).
      if ('inference' in result) inference = result.inference;
      if (result.stoppedEarly && opts.haltAfterStep !== undefined) {
        halted = true;
        break;
      }
    }
    await sar?.dispose();
    if (halted) return { runDir, policy: null, parameters, phases, eval: null, halted };

    const policy = join(runDir, 'policy.onnx');
    writeFileAtomic(policy, exportVla(vla, robotSpecFor(task.buildScene(task.randomize(new Rng(0))).robot), policyExtraMetadata({ ...cfg, inference }, task.instruction)));
    log(`wrote ${policy}`);
    let evalResult: unknown = null;
    if (cfg.eval.episodes > 0) {
      const { evaluatePolicy, formatEval } = await import('../eval.ts');
      const r = await evaluatePolicy({
        policy,
        task: cfg.task,
        episodes: cfg.eval.episodes,
        workers: cfg.eval.workers,
        envs: cfg.eval.envs,
        seed: EVAL_SEED_BASE + cfg.eval.seed,
        threads: cfg.threads,
        record: join(runDir, 'eval_episodes'),
        // The first 10 episodes are enough to watch; all 100 would be ~300 MB of images.
        recordLimit: 10,
        // With the run's SAR model: hallucination, the SAR stage on the recorded timelines, and the
        // memory bank kept as PPO's own evaluation keeps it (SAR's stage score and stage object).
        ...(existsSync(sarModelPath(runDir)) ? { sar: sarModelPath(runDir), sarGate: ppoGateOverride(cfg) } : {}),
        log,
      });
      writeFileAtomic(join(runDir, 'eval.json'), new TextEncoder().encode(JSON.stringify(r, null, 2)));
      log(formatEval(r));
      evalResult = r;
    }
    return { runDir, policy, parameters, phases, eval: evalResult, halted };
  } finally {
    cache.close();
  }
}

/**
 * Exports the policy of a checkpoint of a run (e.g. to evaluate it for a learning curve): the
 * run's stored config and normalisation statistics, the checkpoint's weights. Returns the path
 * written (`out`, default: the checkpoint's path with .onnx).
 */
export function exportCheckpoint(runDir: string, checkpoint: string, out = checkpoint.replace(/\.safetensors$/, '') + '.onnx'): string {
  const cfg = readRunConfig(runDir);
  const stats = JSON.parse(readFileSync(join(runDir, 'norm_stats.json'), 'utf8')) as NormStats;
  const task = getTask(cfg.task);
  const auxStateDim = auxStateDimOf(decodeSafetensors(readFileSync(checkpoint), checkpoint).tensors);
  const vla = createVla(cfg.model, taskTokenizer({ buckets: cfg.model.tokenizerBuckets, maxLength: cfg.model.maxTokens }), stats, cfg.seed, { auxStateDim });
  loadCheckpoint(checkpoint, { params: vla.params });
  writeFileAtomic(out, exportVla(vla, robotSpecFor(task.buildScene(task.randomize(new Rng(0))).robot), policyExtraMetadata(cfg, task.instruction)));
  return out;
}

/** Metadata the run adds to policy.onnx beyond the model's own: task, instruction, inference mode. */
export function policyExtraMetadata(cfg: TrainConfig, instruction: string): Record<string, string> {
  return {
    'evovla.task': cfg.task,
    'evovla.instruction': instruction,
    'evovla.inference': JSON.stringify(cfg.inference),
    'evovla.run': cfg.name,
  };
}

async function runPhase(ctx: PhaseContext, phase: PhaseConfig, deps: PpoPhaseDeps & { runDir: string; setSar: (s: StageScorer & { dispose(): Promise<void> }) => void }) {
  switch (phase.kind) {
    case 'bc':
      return runBcPhase(ctx, phase);
    case 'sar': {
      // The scorer reads the policy's camera images: same size.
      if (phase.model.imageSize !== ctx.vla.config.imageSize) {
        throw new Error(`phases.${ctx.phaseIndex}.model.imageSize (SAR) is ${phase.model.imageSize}, the policy's model.imageSize is ${ctx.vla.config.imageSize}; they must match`);
      }
      const { result, scorer } = await runSarPhase(phase, { task: deps.task, runDir: deps.runDir, log: deps.log, progress: ctx.progress });
      deps.setSar(sarStageScorer(scorer));
      return result;
    }
    case 'ppo':
      return runPpoPhase(ctx, phase, deps);
  }
}

/** Drops metrics lines written after the checkpoint a run resumes from. */
function truncateMetrics(file: string, at: { phase: number; step: number } | null): void {
  if (!existsSync(file)) return;
  const keep = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .filter((l) => {
      if (!at) return false;
      const m = JSON.parse(l) as { phase_index: number; step: number };
      return m.phase_index < at.phase || (m.phase_index === at.phase && m.step <= at.step);
    });
  writeFileSync(file, keep.map((l) => `${l}\n`).join(''));
}

/** One plain line for a metrics record. */
export function formatMetrics(m: Record<string, number | string>): string {
  return Object.entries(m)
    .map(([k, v]) => `${k} ${typeof v === 'number' ? (Number.isInteger(v) ? v : v.toPrecision(4)) : v}`)
    .join('  ');
}

/** The SAR gate override of the run's PPO phase (the final evaluation judges with the same gate). */
function ppoGateOverride(cfg: TrainConfig): SarGateOverride | undefined {
  for (const p of cfg.phases) if (p.kind === 'ppo' && p.gate) return p.gate;
  return undefined;
}
