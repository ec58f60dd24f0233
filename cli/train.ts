/**
 * `evovla train --config FILE.yaml [--set key.path=value ...] [--resume]`: run the config's
 * training phases (policy/train/run.ts), export policy.onnx and evaluate it on held-out seeds.
 * Without --config: the built-in EvoVLA pipeline on Stack (policy/train/pipeline.ts).
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { applyOverrides, ConfigError, loadTrainConfig, parseTrainConfig, type TrainConfig } from '../policy/train/config.ts';
import type { PpoTrainer } from '../policy/train/ppo_phase.ts';
import { parseFlags, requireString } from './args.ts';
import { UsageError } from './main.ts';

const USAGE = `usage: evovla train [--config <file.yaml>] [--set key.path=value ...] [--resume] [--no-progress]
                   [--nats URL [--run ID] [--staleness N=1] [--stale drop|reweight]]
       evovla train --export <runs/NAME/checkpoints/FILE.safetensors> [--out FILE.onnx]
  (no --config)  EvoVLA's whole pipeline on Stack from the built-in config: expert demos -> BC ->
                 SAR -> PPO with EvoVLA's rewards -> held-out evaluation (policy/train/pipeline.ts, docs/evovla.md)
  --config       training config (YAML; fields documented in policy/train/config.ts and docs/policy.md)
  --set          override one config value, e.g. --set phases.0.steps=2000 --set name=try2 (repeatable)
  --resume       continue the run in runs/<name>/ from its latest checkpoint, to the same weights
  --export       write the policy.onnx of a checkpoint (default next to it), e.g. to evaluate a learning curve
  --no-progress  plain lines instead of the progress bar (the default when stderr is not a terminal)
  --nats         PPO phases roll out on 'evovla worker --nats URL --run ID' processes (docs/scale.md);
                 this process runs the other phases, the PPO updates and the evaluations;
                 --run names the run (default: the config's name),
                 segments more than --staleness policy versions old are dropped or, with
                 --stale reweight, weigh 0.5^(age - staleness) in the policy loss
outputs in <runsDir>/<name>/: config.yaml, metrics.jsonl, checkpoints/, policy.onnx, eval.json`;

/** Splits repeated `--set a=b` / `--set=a=b` out of argv. */
export function extractSets(argv: string[]): { sets: string[]; rest: string[] } {
  const sets: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--set') {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`flag '--set' needs a value (--set key.path=value)\n${USAGE}`);
      sets.push(v);
    } else if (argv[i].startsWith('--set=')) sets.push(argv[i].slice(6));
    else rest.push(argv[i]);
  }
  return { sets, rest };
}

/** A progress line redrawn in place: phase, step/total, ETA, note. */
function progressBar(stream: NodeJS.WriteStream) {
  let t0 = 0;
  let startStep = 0;
  let last = 0;
  return (phase: string, step: number, total: number, note: string) => {
    const now = performance.now();
    if (t0 === 0) {
      t0 = now;
      startStep = step - 1;
    }
    if (now - last < 250 && step < total) return;
    last = now;
    const rate = (step - startStep) / ((now - t0) / 1000);
    const eta = rate > 0 ? (total - step) / rate : 0;
    const width = 24;
    const filled = Math.round((width * step) / total);
    const etaText = eta >= 3600 ? `${(eta / 3600).toFixed(1)} h` : eta >= 60 ? `${(eta / 60).toFixed(1)} min` : `${eta.toFixed(0)} s`;
    stream.write(`\r${phase} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${step}/${total} ETA ${etaText} ${note}\x1b[K`);
    if (step === total) stream.write('\n');
  };
}

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  const { sets, rest } = extractSets(argv);
  const args = parseFlags(rest, { config: 'string', resume: 'bool', 'no-progress': 'bool', export: 'string', out: 'string', nats: 'string', run: 'string', staleness: 'int', stale: 'string' }, USAGE);
  if (args.positional.length) throw new UsageError(`unexpected argument '${args.positional[0]}'\n${USAGE}`);
  if (typeof args.flags.export === 'string') {
    const ckpt = args.flags.export;
    const runDir = dirname(dirname(ckpt));
    if (!existsSync(ckpt)) throw new UsageError(`flag '--export': no checkpoint '${ckpt}'`);
    if (!existsSync(join(runDir, 'config.yaml'))) throw new UsageError(`flag '--export': '${ckpt}' is not in a run folder (expected ${join(runDir, 'config.yaml')})`);
    const { exportCheckpoint } = await import('../policy/train/run.ts');
    console.log(`wrote ${exportCheckpoint(runDir, ckpt, typeof args.flags.out === 'string' ? args.flags.out : undefined)}`);
    return 0;
  }
  // No --config: EvoVLA's whole pipeline on Stack from the built-in config (policy/train/pipeline.ts).
  const builtIn = args.flags.config === undefined;
  const file = builtIn ? null : requireString(args, 'config', USAGE);
  let cfg;
  try {
    if (file !== null) cfg = loadTrainConfig(file, sets);
    else {
      const { defaultPipelineConfig } = await import('../policy/train/pipeline.ts');
      const raw = applyOverrides(defaultPipelineConfig(), sets);
      // A second run without flags gets the next free name instead of refusing.
      if (!args.flags.resume && !sets.some((s) => s.startsWith('name='))) raw.name = freeRunName(String(raw.runsDir ?? 'runs'), String(raw.name));
      cfg = parseTrainConfig(raw, 'built-in config');
    }
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
  const tty = !args.flags['no-progress'] && process.stderr.isTTY === true;
  const { trainRun, RunFolderError } = await import('../policy/train/run.ts');
  const log = (line: string) => {
    if (tty) process.stderr.write('\r\x1b[K');
    console.log(line);
  };
  if (builtIn) log(`evovla train: the built-in pipeline on ${cfg.task} (demos -> ${cfg.phases.map((p) => p.kind).join(' -> ')} -> eval) into ${join(cfg.runsDir, cfg.name)}`);
  const t0 = performance.now();
  const ppoTrainer = await natsTrainer(args.flags, cfg, log);
  let summary: Awaited<ReturnType<typeof trainRun>>;
  try {
    summary = await trainRun(cfg, { resume: args.flags.resume === true, log, ...(tty ? { progress: progressBar(process.stderr) } : {}), ...(ppoTrainer ? { ppoTrainer } : {}) });
  } catch (err) {
    if (err instanceof RunFolderError) throw new UsageError(err.message);
    throw err;
  }
  const { pipelineSummary } = await import('../policy/train/pipeline.ts');
  console.log(`done in ${((performance.now() - t0) / 60000).toFixed(1)} min; run folder: ${summary.runDir}`);
  for (const line of pipelineSummary(summary, cfg.task)) console.log(line);
  return 0;
}

/** The distributed PPO trainer of `--nats URL` (null without it). */
async function natsTrainer(flags: Record<string, string | number | boolean | undefined>, cfg: TrainConfig, log: (line: string) => void): Promise<PpoTrainer | null> {
  for (const k of ['run', 'staleness', 'stale']) if (flags[k] !== undefined && flags.nats === undefined) throw new UsageError(`flag '--${k}' needs --nats URL\n${USAGE}`);
  if (flags.nats === undefined) return null;
  const url = String(flags.nats);
  if (!/^(nats|tls|ws|wss):\/\/[^\s]+$/.test(url)) throw new UsageError(`--nats: expected nats://host:port (or tls://, ws://, wss://), got '${url}'`);
  if (!cfg.phases.some((p) => p.kind === 'ppo')) throw new UsageError(`--nats: the config has no 'ppo' phase to distribute (phases: ${cfg.phases.map((p) => p.kind).join(', ')})`);
  const run = flags.run === undefined ? cfg.name : String(flags.run);
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(run)) throw new UsageError(`--run: expected 1-64 letters, digits, '_' or '-', got '${run}'${flags.run === undefined ? ' (the config name; pass --run ID)' : ''}`);
  const maxVersions = flags.staleness === undefined ? 1 : Number(flags.staleness);
  if (!Number.isInteger(maxVersions) || maxVersions < 0) throw new UsageError(`--staleness: expected an integer >= 0 (policy versions), got '${String(flags.staleness)}'`);
  const mode = flags.stale === undefined ? 'drop' : String(flags.stale);
  if (mode !== 'drop' && mode !== 'reweight') throw new UsageError(`--stale: expected 'drop' or 'reweight', got '${mode}'`);
  const { natsPpoTrainer } = await import('../scale/ppo_learner.ts');
  // --resume trains with the config stored in the run folder: workers must build from that one.
  if (flags.resume === true && existsSync(join(cfg.runsDir, cfg.name, 'config.yaml'))) cfg = (await import('../policy/train/run.ts')).readRunConfig(join(cfg.runsDir, cfg.name));
  log(`PPO rollouts over NATS at ${url}, run '${run}': start workers with 'evovla worker --nats ${url} --run ${run}'`);
  return natsPpoTrainer(cfg, { url, run, staleness: { maxVersions, mode }, log: (line) => log(`[learner] ${line}`) });
}

/** `name`, or `name-2`, `name-3`, ... : the first that has no run folder under `runsDir`. */
function freeRunName(runsDir: string, name: string): string {
  for (let k = 1; ; k++) {
    const candidate = k === 1 ? name : `${name}-${k}`;
    if (!existsSync(join(runsDir, candidate))) return candidate;
  }
}
