/**
 * The EvoVLA ablation (long-running; not part of the tests): from ONE behaviour-cloned checkpoint,
 * PPO with the same env-step budget for each arm (policy/train/ablation.ts), each evaluated greedily
 * on the same held-out seeds (success, SAR-gate hallucination); the BC checkpoint itself is evaluated
 * once on them as the starting point.
 *
 *   arms: baseline (sparse success + shaping on the tool-object distance, no SAR/POE/memory),
 *   + SAR, + SAR + POE, full (+ memory); every arm keeps the baseline's shaping (rewards/shaping.ts)
 *
 * Every finished run is appended to the results JSONL as it ends (a killed bench keeps what it
 * measured; --resume skips what is there; <out>/settings.json records the task and budget its bc/
 * and sar/ were made with, and a start with others is refused). At the end (and with --report alone) it writes the
 * summary table and SVG plots into docs/evovla.md (between markers) and docs/evovla/.
 *
 * Usage: node --import tsx bench/evovla.ts [--task stack] [--seeds 3] [--scale 1] [--resume]
 *          [--out runs/bench-evovla] [--report] [--arms baseline,sar,sar_poe,full] [--bc RUN_DIR]
 *          [--eval-episodes 50] [--episode-steps N (0: the task's limit)]
 * --bc takes the BC checkpoint (phase 0) of an existing training run instead of training one.
 * Default budget (scale 1), sized for <= 90 min on 2 unloaded cores (measured 46 min on Stack): 20
 * demos, BC 1500 steps, the SAR scorer of configs/sar.yaml's defaults (8 expert episodes, 2,500
 * steps), 16,384 PPO env steps per arm and seed, 3 seeds, 50 evaluation episodes (episodes run to
 * the task's time limit, 720 steps on Stack). --scale k multiplies the demos, BC steps, SAR steps
 * and PPO steps by k (below 1 also the SAR episodes); the paper's protocol is about scale 120 for PPO.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { makeDirectory } from '../sim/files.ts';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadCheckpoint } from '../nn/checkpoint.ts';
import { writeFileAtomic } from '../nn/model.ts';
import { getTask } from '../tasks/index.ts';
import { ABLATION_ARMS, ABLATION_SETTINGS_FILE, START_ARM, ablationMarkdown, appendAblationRecord, checkBenchFolder, checkResumable, readAblationLog, runKey, summariseAblation, type AblationRecord } from '../policy/train/ablation.ts';
import { EVAL_SEED_BASE, parseTrainConfig, type PpoPhaseConfig, PpoPhaseSchema } from '../policy/train/config.ts';
import { runPpoPhase } from '../policy/train/ppo_phase.ts';
import { listCheckpoints, readRunConfig, trainRun } from '../policy/train/run.ts';
import { runSarPhase, sarStageScorer, SarPhaseSchema } from '../policy/train/sar_phase.ts';
import type { StageScorer } from '../policy/train/evovla_rewards.ts';
import { createVla, type NormStats } from '../policy/vla/model.ts';
import { taskTokenizer } from '../policy/vla/tokenizer.ts';
import { linePlotSvg } from './svg.ts';

/** A usage error: one line naming the bad value, exit code 2, no stack trace. */
function usageError(message: string): never {
  console.error(`bench:evovla: ${message}`);
  process.exit(2);
}

const { values: args } = parseArgs({
  options: {
    task: { type: 'string', default: 'stack' },
    seeds: { type: 'string', default: '3' },
    scale: { type: 'string', default: '1' },
    resume: { type: 'boolean', default: false },
    report: { type: 'boolean', default: false },
    out: { type: 'string', default: 'runs/bench-evovla' },
    arms: { type: 'string', default: ABLATION_ARMS.map((a) => a.id).join(',') },
    'eval-episodes': { type: 'string', default: '50' },
    bc: { type: 'string' },
    'episode-steps': { type: 'string', default: '0' },
  },
});
const scale = Number(args.scale);
const seeds = Number(args.seeds);
const evalEpisodes = Number(args['eval-episodes']);
const episodeSteps = Number(args['episode-steps']);
if (!(scale > 0)) usageError(`--scale: expected a number > 0, got ${args.scale}`);
if (!Number.isInteger(seeds) || seeds < 1) usageError(`--seeds: expected an integer >= 1, got ${args.seeds}`);
if (!Number.isInteger(evalEpisodes) || evalEpisodes < 1) usageError(`--eval-episodes: expected an integer >= 1, got ${args['eval-episodes']}`);
const arms = args.arms.split(',').map((id) => {
  const arm = ABLATION_ARMS.find((a) => a.id === id);
  if (!arm) usageError(`--arms: unknown arm '${id}' (expected some of ${ABLATION_ARMS.map((a) => a.id).join(', ')})`);
  return arm;
});
const task = getTask(args.task);
const out = args.out;
const resultsFile = join(out, 'results.jsonl');
const docsFile = 'docs/evovla.md';
const plotDir = 'docs/evovla';
const ppoSteps = Math.max(2048, Math.round((16384 * scale) / 2048) * 2048);
const evalSeeds = Array.from({ length: evalEpisodes }, (_, i) => EVAL_SEED_BASE + 700_000 + i);
// configs/sar.yaml's defaults (the scorer bench:sar measures, as the main job uses), scaled.
const sarDefaults = SarPhaseSchema.parse({ kind: 'sar' }).train;
const sarTrain = { seeds: sarDefaults.seeds.slice(0, Math.max(2, Math.round(sarDefaults.seeds.length * Math.min(1, scale)))), steps: Math.max(100, Math.round(sarDefaults.steps * scale)) };
const settings = { scale, ppoSteps, evalEpisodes, episodeSteps, sar: sarTrain, bc: args.bc ?? null, load: os.loadavg().map((x) => +x.toFixed(1)), cpus: os.cpus().length };

function log(line: string): void {
  console.error(`[bench:evovla ${new Date().toISOString().slice(11, 19)}] ${line}`);
}

/** The shared BC checkpoint (trained once; reused with --resume), or the run given by --bc. */
async function bcCheckpoint(): Promise<{ runDir: string; cfg: ReturnType<typeof parseTrainConfig> }> {
  if (args.bc) {
    log(`using the BC checkpoint of the run in ${args.bc}`);
    return { runDir: args.bc, cfg: readRunConfig(args.bc) };
  }
  const cfg = parseTrainConfig({
    name: 'bc',
    runsDir: out,
    task: task.id,
    threads: 2,
    data: { episodes: Math.round(20 * scale), valEpisodes: 2 },
    phases: [{ kind: 'bc', steps: Math.round(1500 * scale), batch: 32, lr: 0.0005, warmupSteps: 100, checkpointEvery: 500 }],
    eval: { episodes: 0 },
  });
  const runDir = join(out, 'bc');
  if (existsSync(join(runDir, 'policy.onnx'))) {
    log(`reusing the BC checkpoint in ${runDir}`);
    return { runDir, cfg };
  }
  if (existsSync(runDir)) await trainRun(cfg, { resume: true, log });
  else await trainRun(cfg, { log });
  return { runDir, cfg };
}

/** A fresh VLA with the BC checkpoint's weights. */
function loadBc(runDir: string, cfg: ReturnType<typeof parseTrainConfig>) {
  const stats = JSON.parse(readFileSync(join(runDir, 'norm_stats.json'), 'utf8')) as NormStats;
  const vla = createVla(cfg.model, taskTokenizer({ buckets: cfg.model.tokenizerBuckets, maxLength: cfg.model.maxTokens }), stats, cfg.seed);
  // The BC phase's last checkpoint (phase 0), even when the run went on to other phases.
  const last = listCheckpoints(join(runDir, 'checkpoints')).filter((c) => c.phase === 0).at(-1);
  if (!last) throw new Error(`no checkpoint in ${runDir}/checkpoints`);
  loadCheckpoint(last.file, { params: vla.params });
  return vla;
}

function phaseConfig(arm: (typeof ABLATION_ARMS)[number] | null, seed: number): PpoPhaseConfig {
  return PpoPhaseSchema.parse({
    kind: 'ppo',
    totalSteps: arm ? ppoSteps : 2048,
    rolloutSteps: 2048,
    minibatchSize: 256,
    epochs: 10,
    envs: 8,
    workers: 2,
    ...(episodeSteps > 0 ? { episodeSteps } : {}),
    sar: arm?.sar ?? false,
    poe: arm?.poe ?? false,
    memory: arm?.memory ?? false,
    // Every arm: sparse success + shaping that reads no stage predicate (rewards/shaping.ts), so
    // each row adds exactly what its name says to the baseline.
    shaping: { scale: 1 },
    evalEpisodes,
    seed,
  });
}

async function runArm(bc: { runDir: string; cfg: ReturnType<typeof parseTrainConfig> }, sar: StageScorer, arm: (typeof ABLATION_ARMS)[number] | null, seed: number): Promise<AblationRecord> {
  const vla = loadBc(bc.runDir, bc.cfg);
  const cfg = phaseConfig(arm, seed);
  const armId = arm?.id ?? START_ARM;
  const metrics = join(out, `${armId}-${seed}.metrics.jsonl`);
  const curve: AblationRecord['curve'] = [];
  const t0 = performance.now();
  const r = await runPpoPhase(
    {
      vla,
      threads: 1,
      phaseIndex: 1,
      logMetrics: (line) => {
        writeFileSync(metrics, JSON.stringify(line) + '\n', { flag: 'a' });
        if (typeof line.success === 'number') curve.push({ envSteps: Number(line.env_steps), success: line.success });
      },
      progress: (step, total, note) => log(`${armId} seed ${seed}: iteration ${step}/${total} ${note}`),
    },
    cfg,
    // The start row evaluates the BC checkpoint only.
    { task, sar, log, evalBefore: arm === null, skipTraining: arm === null, evalSeeds },
  );
  const e = arm ? r.after! : r.before!;
  return {
    arm: armId,
    task: task.id,
    seed,
    envSteps: arm ? r.envSteps : 0,
    wallSeconds: (performance.now() - t0) / 1000,
    eval: { episodes: e.episodes, successes: e.successes },
    hallucination: e.hallucination ? { claims: e.hallucination.claims, false: e.hallucination.false } : { claims: 0, false: 0 },
    curve: arm ? curve : [],
    settings: { ...settings, furthestStage: e.furthestStage },
  };
}

function writeReport(): void {
  const { records, dropped } = readAblationLog(resultsFile);
  if (dropped) log(`${resultsFile}: dropped ${dropped} cut last line`);
  if (!records.length) return;
  const rows = summariseAblation(records);
  makeDirectory(plotDir);
  for (const t of [...new Set(records.map((r) => r.task))]) {
    const ppoRuns = records.filter((r) => r.task === t && r.arm !== START_ARM);
    const series = [...new Set(ppoRuns.map((r) => r.arm))].map((arm) => ({
      name: `${arm}`,
      points: ppoRuns.filter((r) => r.arm === arm).flatMap((r) => r.curve.map((p) => ({ x: p.envSteps, y: p.success }))),
    }));
    writeFileAtomic(join(plotDir, `${t}-success.svg`), new TextEncoder().encode(linePlotSvg({ title: `${t}: training success vs env steps`, xLabel: 'env steps', yLabel: 'success (training episodes)', series, yRange: [0, 1] })));
    const trow = rows.filter((r) => r.task === t);
    const bars = trow.map((r, i) => ({ name: r.label, points: [{ x: i, y: Number.isFinite(r.hallucination.rate) ? r.hallucination.rate : 0, low: Number.isFinite(r.hallucination.low) ? r.hallucination.low : 0, high: Number.isFinite(r.hallucination.high) ? r.hallucination.high : 0 }] }));
    writeFileAtomic(join(plotDir, `${t}-hallucination.svg`), new TextEncoder().encode(linePlotSvg({ title: `${t}: stage hallucination (95% CI)`, xLabel: 'configuration', yLabel: 'hallucinated / claimed', series: bars, yRange: [0, 1] })));
  }
  const table = ablationMarkdown(rows);
  const begin = '<!-- ablation:begin -->';
  const end = '<!-- ablation:end -->';
  const doc = readFileSync(docsFile, 'utf8');
  const i = doc.indexOf(begin);
  const j = doc.indexOf(end);
  if (i < 0 || j < i) throw new Error(`${docsFile}: markers ${begin} ... ${end} not found`);
  const block = `${begin}\n${table}\nSettings of the last run: ${JSON.stringify(records.at(-1)!.settings ?? {})}\n${end}`;
  writeFileAtomic(docsFile, new TextEncoder().encode(doc.slice(0, i) + block + doc.slice(j + end.length)));
  log(`wrote the table into ${docsFile} and plots into ${plotDir}/`);
  console.log(JSON.stringify({ bench: 'evovla', rows }));
}

if (!args.report) {
  if (existsSync(resultsFile) && !args.resume) usageError(`${resultsFile} exists; pass --resume to continue it or --out to start elsewhere`);
  const logged = readAblationLog(resultsFile).records;
  try {
    checkResumable(logged, settings, resultsFile);
    if (checkBenchFolder(out, { ...settings, task: task.id })) log(`recorded this run's task and budget in ${join(out, ABLATION_SETTINGS_FILE)}`);
  } catch (e) {
    usageError((e as Error).message);
  }
  const done = new Set(logged.map(runKey));
  const bc = await bcCheckpoint();
  // One SAR scorer for every arm (frozen): reward for the SAR arms, hallucination judge for all.
  const sarPhase = SarPhaseSchema.parse({ kind: 'sar', model: { imageSize: bc.cfg.model.imageSize }, train: sarTrain });
  const { scorer } = await runSarPhase(sarPhase, { task, runDir: out, log, progress: (k, n, note) => log(`sar ${k}/${n} ${note}`) });
  const sar = sarStageScorer(scorer);
  const jobs: Array<{ arm: (typeof ABLATION_ARMS)[number] | null; seed: number }> = [{ arm: null, seed: 0 }];
  for (let s = 0; s < seeds; s++) for (const arm of arms) jobs.push({ arm, seed: s });
  for (const job of jobs) {
    const key = runKey({ task: task.id, arm: job.arm?.id ?? START_ARM, seed: job.seed });
    if (done.has(key)) {
      log(`${key}: in ${resultsFile}, skipped`);
      continue;
    }
    log(`${key}: starting`);
    const rec = await runArm(bc, sar, job.arm, job.seed);
    appendAblationRecord(resultsFile, rec);
    log(`${key}: success ${rec.eval.successes}/${rec.eval.episodes} in ${(rec.wallSeconds / 60).toFixed(1)} min`);
  }
  await sar.dispose();
}
writeReport();
