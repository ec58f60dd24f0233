/**
 * `evovla worker --nats URL`: a rollout worker for distributed training (scale/worker.ts). It
 * fetches the run's current policy weights, rolls out its own VecEnv and publishes trajectory
 * segments until stopped (SIGINT/SIGTERM finish the current step and exit cleanly). On a run whose
 * learner is `evovla train --nats` it runs PPO rollouts with the run's own VLA, rewards and
 * settings (scale/ppo_worker.ts); `--task` and `--segment-steps` then come from the learner.
 */
import { TASKS } from '../tasks/index.ts';
import { runWorker } from '../scale/worker.ts';
import { intFlag, parseFlags, type FlagSpec } from './args.ts';
import { UsageError } from './main.ts';

const USAGE = `usage: evovla worker [--nats URL] [--run ID=default] [--worker-id N] [--task ID=stack] [--envs N=4]
                     [--segment-steps N=32] [--seed S=0] [--vec-workers K=0] [--segments N=0] [--max-steps N]
  A PPO run (learner: evovla train --config X.yaml --nats URL) sets the task, the model, the rewards
  and the segment length itself; --envs defaults to its PPO phase's envs there.
  --nats           NATS server, nats://host:port (default: $NATS_URL)
  --run            run id shared with the learner (default: $EVOVLA_RUN, else 'default')
  --worker-id      this worker's id (default: $JOB_COMPLETION_INDEX, as a Kubernetes Indexed Job sets it, else 0)
  --task           one of: ${Object.keys(TASKS).join(', ')}
  --envs           envs this worker steps
  --segment-steps  env steps per published segment
  --seed           base seed (each worker derives its own from it and its id)
  --vec-workers    VecEnv worker threads (0: step in this thread; default 0, a PPO run: its phase's workers)
  --segments       stop after N segments (0: run until stopped)
  --max-steps      episode length in control steps (default: the task's)
  --noise          exploration noise std on joint targets in rad (default 0.02)`;

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`environment variable ${name}: expected a non-negative integer, got '${v}'`);
  return Number(v);
}

/** The flags `evovla worker` takes (exported so manifests can be checked against them). */
export const WORKER_FLAGS = {
  nats: 'string', run: 'string', 'worker-id': 'int', task: 'string', envs: 'int', 'segment-steps': 'int', seed: 'int',
  'vec-workers': 'int', segments: 'int', 'max-steps': 'int', noise: 'string', help: 'bool',
} as const satisfies FlagSpec;

export async function run(argv: string[]): Promise<number> {
  const a = parseFlags(argv, WORKER_FLAGS, USAGE);
  if (a.flags.help) {
    console.log(USAGE);
    return 0;
  }
  if (a.positional.length) throw new UsageError(`unexpected argument '${a.positional[0]}'\n${USAGE}`);
  const url = (a.flags.nats as string | undefined) ?? process.env.NATS_URL;
  if (!url) throw new UsageError(`no NATS server: pass --nats nats://host:port or set NATS_URL\n${USAGE}`);
  if (!/^(nats|tls|ws|wss):\/\/[^\s]+$/.test(url)) throw new UsageError(`--nats: expected nats://host:port (or tls://, ws://, wss://), got '${url}'`);
  const runId = (a.flags.run as string | undefined) ?? process.env.EVOVLA_RUN ?? 'default';
  const taskId = a.flags.task as string | undefined;
  if (taskId !== undefined && !(taskId in TASKS)) throw new UsageError(`--task: unknown task '${taskId}' (expected one of: ${Object.keys(TASKS).join(', ')})`);
  const noiseText = a.flags.noise as string | undefined;
  const noise = noiseText === undefined ? 0.02 : Number(noiseText);
  if (!(noise >= 0)) throw new UsageError(`--noise: expected a number >= 0 (rad), got '${noiseText}'`);
  const maxSteps = intFlag(a, 'max-steps', 0, 1, USAGE);
  const segments = intFlag(a, 'segments', 0, 0, USAGE);
  const workerId = intFlag(a, 'worker-id', envInt('JOB_COMPLETION_INDEX') ?? 0, 0, USAGE);

  const abort = new AbortController();
  const stop = (sig: string) => {
    console.error(`[worker ${workerId}] ${sig}: stopping`);
    abort.abort(new Error(`stopped by ${sig}`));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  try {
    const stats = await runWorker({
      url,
      run: runId,
      workerId,
      taskId,
      numEnvs: a.flags.envs === undefined ? undefined : intFlag(a, 'envs', 4, 1, USAGE),
      segmentSteps: a.flags['segment-steps'] === undefined ? undefined : intFlag(a, 'segment-steps', 32, 1, USAGE),
      seed: intFlag(a, 'seed', 0, 0, USAGE),
      vecWorkers: a.flags['vec-workers'] === undefined ? undefined : intFlag(a, 'vec-workers', 0, 0, USAGE),
      envConfig: maxSteps ? { maxSteps } : undefined,
      noiseStd: noise,
      maxSegments: segments || undefined,
      signal: abort.signal,
    });
    console.log(JSON.stringify({ worker: workerId, run: runId, ...stats }));
    return 0;
  } catch (err) {
    if (abort.signal.aborted) return 0;
    throw err;
  }
}
