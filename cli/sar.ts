/**
 * `evovla sar train|eval`: the stage-aligned reward's scorer.
 *   train  render the task's expert demos and near-miss states, train the scorer with the triplet
 *          loss, write DIR/sar.onnx, DIR/sar.json and DIR/train_report.json
 *   eval   judge a trained scorer on held-out seeds (AUROC per stage kind, gate false completions
 *          on near-miss states, u distribution, hacking probe), print and write eval_report.json
 */
import { writeFileAtomic } from '../nn/model.ts';
import { loadSarConfig, parseSarConfig, type SarConfig } from '../rewards/sar/config.ts';
import { trainingFrames } from '../rewards/sar/data.ts';
import { evaluateSar } from '../rewards/sar/eval.ts';
import { SarScorer } from '../rewards/sar/scorer.ts';
import { saveSar, trainSar } from '../rewards/sar/train.ts';
import { ConfigError } from '../sim/config.ts';
import { createEnv } from '../sim/env.ts';
import { Rng } from '../sim/rng.ts';
import { getTask } from '../tasks/index.ts';
import { parseFlags, requireString, type ParsedArgs } from './args.ts';
import { UsageError } from './main.ts';
import { createSarRenderer } from '../policy/train/sar_phase.ts';

const USAGE = `usage: evovla sar train --task stack|jujube_cup|block_bridge [--config FILE] [--out DIR] [--steps N] [--no-near-miss-states]
       evovla sar eval --model DIR/sar.onnx [--config FILE] [--seeds A,B,...] [--probe-seeds A,B,...]
  --config   SAR settings (YAML; default configs/sar.yaml's values, see rewards/sar/config.ts)
  --out      where train writes sar.onnx, sar.json, train_report.json (default runs/sar/TASK)
  --steps    training steps (overrides train.steps)
  --no-near-miss-states   train without near-miss states (the ablation)
  --seeds, --probe-seeds  held-out demo seeds and hacking-probe seeds (override eval.*)`;

function config(args: ParsedArgs, overrides: (c: SarConfig) => void): Readonly<SarConfig> {
  let base: SarConfig;
  try {
    base = structuredClone(typeof args.flags.config === 'string' ? loadSarConfig(args.flags.config) : parseSarConfig({})) as SarConfig;
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
  overrides(base);
  try {
    return parseSarConfig(base, typeof args.flags.config === 'string' ? args.flags.config : 'sar config');
  } catch (err) {
    // A flag that overrode a key (e.g. --steps 0) is reported with that key.
    if (err instanceof ConfigError) throw new UsageError(`${err.message}\n${USAGE}`);
    throw err;
  }
}

function seedList(v: unknown, flag: string): number[] | undefined {
  if (v === undefined) return undefined;
  const s = String(v);
  if (!/^\d+(,\d+)*$/.test(s)) throw new UsageError(`flag '--${flag}' expects comma-separated integers >= 0, got '${s}'\n${USAGE}`);
  return s.split(',').map(Number);
}

function taskOf(id: string) {
  try {
    return getTask(id);
  } catch (err) {
    throw new UsageError(`flag '--task': ${(err as Error).message}`);
  }
}

async function train(argv: string[]): Promise<number> {
  const args = parseFlags(argv, { task: 'string', config: 'string', out: 'string', steps: 'int', 'no-near-miss-states': 'bool' }, USAGE);
  const task = taskOf(requireString(args, 'task', USAGE));
  const cfg = config(args, (c) => {
    if (typeof args.flags.steps === 'number') c.train.steps = args.flags.steps;
    if (args.flags['no-near-miss-states']) c.train.nearMissStates = false;
  });
  const out = typeof args.flags.out === 'string' ? args.flags.out : `runs/sar/${task.id}`;
  const log = (line: string) => console.error(`[sar train ${task.id}] ${line}`);
  const env = await createEnv(task);
  const renderer = await createSarRenderer(task, cfg.model.imageSize);
  try {
    const t0 = performance.now();
    const frames = trainingFrames(env, task, renderer, cfg, new Rng(cfg.train.seed).fork('near-miss'), log);
    const dataSeconds = (performance.now() - t0) / 1000;
    const result = await trainSar(task, frames, cfg, log);
    const files = saveSar(out, result);
    const report = {
      task: task.id,
      nearMissStates: cfg.train.nearMissStates,
      frames: { demo: frames.filter((f) => f.source === 'demo').length, nearMiss: frames.filter((f) => f.source === 'near_miss').length },
      rows: result.rows,
      dataSeconds,
      trainSeconds: result.seconds,
      history: result.history,
      config: cfg,
    };
    writeFileAtomic(`${out}/train_report.json`, new TextEncoder().encode(`${JSON.stringify(report, null, 1)}\n`));
    console.log(JSON.stringify({ task: task.id, model: files.onnx, finalLoss: result.history.at(-1)?.loss ?? null, frames: report.frames, trainSeconds: Math.round(result.seconds) }));
  } finally {
    renderer.dispose();
    env.free();
  }
  return 0;
}

async function evaluate(argv: string[]): Promise<number> {
  const args = parseFlags(argv, { model: 'string', config: 'string', seeds: 'string', 'probe-seeds': 'string' }, USAGE);
  const modelPath = requireString(args, 'model', USAGE);
  const scorer = await SarScorer.load(modelPath).catch((err: Error) => {
    throw new UsageError(`flag '--model': ${err.message}`);
  });
  const task = taskOf(scorer.meta.task);
  const cfg = config(args, (c) => {
    c.eval.seeds = seedList(args.flags.seeds, 'seeds') ?? c.eval.seeds;
    c.eval.probeSeeds = seedList(args.flags['probe-seeds'], 'probe-seeds') ?? c.eval.probeSeeds;
    // Without a config file, the gate the model was trained with.
    if (typeof args.flags.config !== 'string') {
      const g = scorer.meta.gate;
      c.gate = { window: g.window, threshold: g.threshold, lookahead: g.lookahead ?? 0, stageWindows: g.windows !== undefined };
    }
  });
  if (cfg.model.imageSize !== scorer.meta.imageSize) throw new UsageError(`config model.imageSize ${cfg.model.imageSize} differs from the model's ${scorer.meta.imageSize}`);
  const env = await createEnv(task);
  const renderer = await createSarRenderer(task, scorer.meta.imageSize);
  try {
    const reports = await evaluateSar(env, task, renderer, { model: scorer }, cfg, (l) => console.error(`[sar eval ${task.id}] ${l}`));
    const report = reports.model;
    const dir = modelPath.replace(/[^/]*$/, '') || './';
    writeFileAtomic(`${dir}eval_report.json`, new TextEncoder().encode(`${JSON.stringify(report, null, 1)}\n`));
    console.log(JSON.stringify(report));
  } finally {
    renderer.dispose();
    env.free();
    await scorer.dispose();
  }
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'train') return train(rest);
  if (sub === 'eval') return evaluate(rest);
  if (sub === '--help' || sub === '-h') {
    console.log(USAGE);
    return 0;
  }
  throw new UsageError(`expected 'train' or 'eval', got ${sub === undefined ? 'nothing' : `'${sub}'`}\n${USAGE}`);
}
