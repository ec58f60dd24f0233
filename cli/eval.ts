/**
 * `evovla eval --policy FILE.onnx --task T --episodes N [--workers W] [--record DIR]`: closed-loop
 * evaluation on held-out seeds (policy/eval.ts): success with a 95% Wilson interval, mean furthest
 * stage, the share of episodes completing each stage; with `--sar`, the stage hallucination rate
 * of the SAR gate (per episode and pooled with a 95% CI); episode files for `evovla view` (with the
 * SAR stage and its hallucinated completions on the timeline).
 */
import { EVAL_SEED_BASE } from '../policy/train/config.ts';
import { TASKS } from '../tasks/index.ts';
import { intFlag, parseFlags, requireString } from './args.ts';
import { UsageError } from './main.ts';

const USAGE = `usage: evovla eval --policy <file.onnx> --task <id> [--episodes N=100] [--workers W=2] [--envs E=8] [--record DIR] [--seed OFFSET=0] [--mode chunk|ensemble] [--execute K] [--threads T=1] [--sar sar.onnx] [--no-memory] [--json]
  --policy    an ONNX policy (docs/policy.md: proprio, image_<camera>, instruction, memory -> action)
  --task      one of: ${Object.keys(TASKS).join(', ')}
  --episodes  episodes, on seeds ${EVAL_SEED_BASE} + OFFSET + i (demos use seeds from 0: never the same scenes)
  --workers   env worker processes, one env slot each (each renders its cameras and starts its next
              episode when one ends); 0 = --envs slots in this process
  --envs      env slots when --workers is 0
  --record    write one episode file per episode here (evovla view DIR replays them)
  --mode      chunk (play --execute actions of each chunk) or ensemble (temporal ensembling); default: the policy's metadata, else chunk
  --sar       a SAR model (evovla sar train; sar.json beside it): run its stage gate beside the policy and
              report stage hallucination = gate completions made while the ground-truth predicate is false /
              all gate completions, per episode and pooled (95% Wilson CI); recorded steps carry the SAR stage
  --no-memory feed a policy with memory inputs an empty memory (default: keep the key-frame bank as PPO does)
  --json      print the result as JSON`;

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  const args = parseFlags(argv, { policy: 'string', task: 'string', episodes: 'int', workers: 'int', envs: 'int', record: 'string', seed: 'int', mode: 'string', execute: 'int', threads: 'int', sar: 'string', 'no-memory': 'bool', json: 'bool' }, USAGE);
  if (args.positional.length) throw new UsageError(`unexpected argument '${args.positional[0]}'\n${USAGE}`);
  const policy = requireString(args, 'policy', USAGE);
  const task = requireString(args, 'task', USAGE);
  if (!Object.hasOwn(TASKS, task)) throw new UsageError(`flag '--task' must be one of ${Object.keys(TASKS).join(', ')}, got '${task}'`);
  const mode = args.flags.mode;
  if (mode !== undefined && mode !== 'chunk' && mode !== 'ensemble') throw new UsageError(`flag '--mode' must be chunk or ensemble, got '${String(mode)}'`);
  const { evaluatePolicy, formatEval, PolicyFileError, SarFileError } = await import('../policy/eval.ts');
  const inference: Record<string, unknown> = {};
  if (mode) inference.mode = mode;
  if (args.flags.execute !== undefined) inference.execute = intFlag(args, 'execute', 8, 1, USAGE);
  let r: Awaited<ReturnType<typeof evaluatePolicy>>;
  try {
    r = await evaluatePolicy({
      policy,
      task,
      episodes: intFlag(args, 'episodes', 100, 1, USAGE),
      workers: intFlag(args, 'workers', 2, 0, USAGE),
      envs: intFlag(args, 'envs', 8, 1, USAGE),
      seed: EVAL_SEED_BASE + intFlag(args, 'seed', 0, 0, USAGE),
      threads: intFlag(args, 'threads', 1, 1, USAGE),
      ...(typeof args.flags.record === 'string' ? { record: args.flags.record } : {}),
      ...(typeof args.flags.sar === 'string' ? { sar: args.flags.sar } : {}),
      ...(args.flags['no-memory'] ? { memory: false } : {}),
      inference,
      log: (l) => console.error(l),
    });
  } catch (err) {
    // A bad --policy file is bad input: one line naming it, not a stack trace.
    if (err instanceof PolicyFileError) throw new UsageError(`flag '--policy': ${err.message}`);
    if (err instanceof SarFileError) throw new UsageError(`flag '--sar': ${err.message}`);
    throw err;
  }
  if (args.flags.json) console.log(JSON.stringify(r, null, 2));
  else console.log(formatEval(r) + (typeof args.flags.record === 'string' ? `\nepisode files in ${args.flags.record} (evovla view ${args.flags.record})` : ''));
  return 0;
}
