/**
 * `evovla train --config FILE.yaml [--set key.path=value ...] [--resume]`: run the config's
 * training phases (policy/train/run.ts), export policy.onnx and evaluate it on held-out seeds.
 */
import { ConfigError, loadTrainConfig } from '../policy/train/config.ts';
import { parseFlags, requireString } from './args.ts';
import { UsageError } from './main.ts';

const USAGE = `usage: evovla train --config <file.yaml> [--set key.path=value ...] [--resume] [--no-progress]
  --config       training config (YAML; fields documented in policy/train/config.ts and docs/policy.md)
  --set          override one config value, e.g. --set phases.0.steps=2000 --set name=try2 (repeatable)
  --resume       continue the run in runs/<name>/ from its latest checkpoint, to the same weights
  --no-progress  plain lines instead of the progress bar (the default when stderr is not a terminal)
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
  const args = parseFlags(rest, { config: 'string', resume: 'bool', 'no-progress': 'bool' }, USAGE);
  if (args.positional.length) throw new UsageError(`unexpected argument '${args.positional[0]}'\n${USAGE}`);
  const file = requireString(args, 'config', USAGE);
  let cfg;
  try {
    cfg = loadTrainConfig(file, sets);
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
  const tty = !args.flags['no-progress'] && process.stderr.isTTY === true;
  const { trainRun } = await import('../policy/train/run.ts');
  const log = (line: string) => {
    if (tty) process.stderr.write('\r\x1b[K');
    console.log(line);
  };
  const summary = await trainRun(cfg, { resume: args.flags.resume === true, log, ...(tty ? { progress: progressBar(process.stderr) } : {}) });
  console.log(`run folder: ${summary.runDir}`);
  return 0;
}
