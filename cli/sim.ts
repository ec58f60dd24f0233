/**
 * `evovla sim`: run the blocks scene with the scripted pick-and-place expert and print a short
 * summary (steps, simulated time, wall time, whether the block was lifted and placed).
 */
import { UsageError } from './main.ts';

const HELP = `usage: evovla sim [--steps N] [--seed S] [--mode joint|ee_delta]

Runs the blocks task with its scripted expert and prints a one-line JSON summary.
  --steps N   control steps at most (default 600, i.e. 10 s at 60 Hz)
  --seed S    episode seed (default 0)
  --mode M    action mode: joint (default) or ee_delta`;

function parseIntFlag(flag: string, value: string | undefined, min: number): number {
  if (value === undefined) throw new UsageError(`${flag} needs a value (an integer >= ${min})`);
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${flag}: expected an integer >= ${min}, got '${value}'`);
  return n;
}

export async function run(argv: string[]): Promise<number> {
  let steps = 600;
  let seed = 0;
  let mode: 'joint' | 'ee_delta' = 'joint';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') {
      console.log(HELP);
      return 0;
    } else if (a === '--steps') steps = parseIntFlag(a, argv[++i], 1);
    else if (a === '--seed') seed = parseIntFlag(a, argv[++i], 0);
    else if (a === '--mode') {
      const v = argv[++i];
      if (v !== 'joint' && v !== 'ee_delta') throw new UsageError(`--mode: expected 'joint' or 'ee_delta', got '${v ?? ''}'`);
      mode = v;
    } else throw new UsageError(`unknown flag '${a}' (expected --steps, --seed, --mode or --help)`);
  }
  const { createEnv } = await import('../sim/env.ts');
  const { blocksTask, TABLE_TOP, BLOCK_HALF } = await import('../tasks/blocks.ts');
  const env = await createEnv(blocksTask, { actionMode: mode, maxSteps: steps });
  const t0 = performance.now();
  env.reset({ seed });
  const expert = blocksTask.expert(env.randomization!, env.expertTools());
  let maxLift = 0;
  let n = 0;
  let success = false;
  for (; n < steps; ) {
    const r = env.step(expert.act(env.state()).action);
    n++;
    maxLift = Math.max(maxLift, r.info.state.objects.block_red.p[2] - (TABLE_TOP + BLOCK_HALF));
    if (r.terminated || r.truncated) {
      success = r.info.success;
      break;
    }
  }
  const wall = (performance.now() - t0) / 1000;
  const state = env.state();
  console.log(
    JSON.stringify({
      task: 'blocks',
      seed,
      mode,
      steps: n,
      simTime: Number(state.time.toFixed(4)),
      wallTime: Number(wall.toFixed(3)),
      blockLifted: maxLift > 0.05,
      maxLiftM: Number(maxLift.toFixed(4)),
      placed: success,
      stateHash: env.stateHash(),
    }),
  );
  env.free();
  return 0;
}
