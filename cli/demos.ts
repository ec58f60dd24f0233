/**
 * `evovla demos --task <id> --episodes N --seed S --out DIR`: run a task's scripted expert for N
 * episodes (seeds S, S+1, ...), write one episode file per episode, and print a summary: success
 * rate with a 95% Wilson interval, mean length, and how far episodes got in stages.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { createEnv } from '../sim/env.ts';
import { isFileSystemError } from '../sim/files.ts';
import { partialPath } from '../sim/record/writer.ts';
import type { Task } from '../sim/task.ts';
import type { ActionNoise } from '../tasks/action_noise.ts';
import { getTask, TASKS } from '../tasks/index.ts';
import { expertEpisodeSteps, wilsonInterval, type EpisodeResult } from '../tasks/rollout.ts';
import { intFlag, parseFlags } from './args.ts';
import { UsageError } from './main.ts';

/** With no flags, `evovla demos` makes the warm-start demos for the first Discoverse-L task. */
const DEFAULT_TASK = 'stack';

const USAGE = `usage: evovla demos [--task <id>=stack] [--out <dir>=demos/<task>] [--episodes N=10] [--seed S=0] [--overwrite] [--json] [--no-progress] [--cameras LIST] [--action-noise STD]
  --task       one of: ${Object.keys(TASKS).join(', ')} (default ${DEFAULT_TASK})
  --out        directory for the episode files (<task>-<seed>.evep); default demos/<task>
  --overwrite  replace episode files of the same task and seeds already in --out (refused without it)
  --episodes   number of episodes (seeds S .. S+N-1)
  --seed       first seed
  --json       print the summary as JSON on stdout
  --no-progress  no progress bar (it is drawn on stderr only when stderr is a terminal)
  --view       watch the episodes live in the browser (the URL is printed on stderr)
  --cameras    render camera images into observations and episode files: NAME[,NAME...][@WxH],
               e.g. eye_side,eye_arm@128x128 (built-in cameras: eye_side, eye_arm)
  --action-noise STD  record recovery data (DART): execute the expert's joint targets plus a
               Gaussian offset of STD rad per joint; the file keeps the expert's clean action as
               the step's action and the sent one as executedAction (default 0: off)
  --action-noise-hold N  control steps each offset is held (default 10)
  --action-noise-seed S  seed of the noise, mixed with each episode's seed (default 0)`;

/** Summary of a batch of expert episodes. */
export interface DemoSummary {
  task: string;
  episodes: number;
  successes: number;
  successRate: number;
  ci95: [number, number];
  meanSteps: number;
  /** Mean over episodes of the highest ground-truth stage reached, and the task's stage count. */
  meanMaxStage: number;
  stages: number;
  /** For each stage, the share of episodes that completed it (highest stage reached > k, or success). */
  stageCompletion: number[];
  /** Episodes the expert gave up on, with the reason. */
  errors: { seed: number; error: string }[];
  wallSeconds: number;
  episodesPerSecond: number;
}

/** Aggregate episode results into a summary. */
export function summarize(task: Task, results: EpisodeResult[], wallSeconds: number): DemoSummary {
  const n = results.length;
  const successes = results.filter((r) => r.success).length;
  const ci = wilsonInterval(successes, n);
  const stages = task.stages.length;
  // Stages seen completed (the ground-truth stage went past them). An episode ends at success, so
  // its last stages (the retreat) may never be seen: counting success as "all stages" made the
  // summary say every stage was completed beside a mean furthest stage of 17 of 18.
  const stageCompletion = Array.from({ length: stages }, (_, k) => (n ? results.filter((r) => r.maxStage > k).length / n : 0));
  return {
    task: task.id,
    episodes: n,
    successes,
    successRate: ci.rate,
    ci95: [ci.low, ci.high],
    meanSteps: n ? results.reduce((a, r) => a + r.steps, 0) / n : 0,
    meanMaxStage: n ? results.reduce((a, r) => a + r.maxStage, 0) / n : 0,
    stages,
    stageCompletion,
    errors: results.filter((r) => r.error).map((r) => ({ seed: r.seed, error: r.error as string })),
    wallSeconds,
    episodesPerSecond: wallSeconds > 0 ? n / wallSeconds : 0,
  };
}

/** Human-readable summary lines. */
export function formatSummary(s: DemoSummary): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const lines = [
    `task ${s.task}: ${s.successes}/${s.episodes} successful (${pct(s.successRate)}, 95% CI ${pct(s.ci95[0])}-${pct(s.ci95[1])})`,
    `mean length ${s.meanSteps.toFixed(1)} steps; mean furthest stage ${s.meanMaxStage.toFixed(1)} of ${s.stages}`,
  ];
  // Where episodes were lost: the stages at which the completion share drops.
  const firstDrop = s.stageCompletion.findIndex((c) => c < 1 - 1e-9);
  if (firstDrop < 0) lines.push(`every episode completed all ${s.stages} stages`);
  else {
    const drops: string[] = [];
    let prev = 1;
    s.stageCompletion.forEach((c, k) => {
      if (c < prev - 1e-9) drops.push(`${k} (${pct(c)} completed it)`);
      prev = c;
    });
    lines.push(`${firstDrop === 0 ? 'no stage was completed by every episode' : `stages 0-${firstDrop - 1} completed by every episode`}; losses at stage ${drops.join(', ')}`);
    if (s.successes > 0 && s.stageCompletion[s.stages - 1] < 1 - 1e-9) {
      lines.push(`(episodes end at success, so stages a successful episode had not yet reached are counted as not completed)`);
    }
  }
  for (const e of s.errors.slice(0, 5)) lines.push(`expert gave up on seed ${e.seed}: ${e.error}`);
  if (s.errors.length > 5) lines.push(`... and ${s.errors.length - 5} more`);
  lines.push(`${s.wallSeconds.toFixed(1)} s wall, ${s.episodesPerSecond.toFixed(2)} episodes/s`);
  return lines.join('\n');
}

/** A one-line progress bar on a TTY stream, redrawn in place. */
export class ProgressBar {
  private readonly width = 30;
  constructor(
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  update(done: number, note: string): void {
    const filled = this.total ? Math.round((this.width * done) / this.total) : this.width;
    this.stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(this.width - filled)}] ${done}/${this.total} ${note}\x1b[K`);
  }

  finish(): void {
    this.stream.write('\n');
  }
}

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  const args = parseFlags(argv, { task: 'string', out: 'string', episodes: 'int', seed: 'int', overwrite: 'bool', json: 'bool', 'no-progress': 'bool', view: 'bool', cameras: 'string', 'action-noise': 'string', 'action-noise-hold': 'int', 'action-noise-seed': 'int' }, USAGE);
  if (args.positional.length) throw new UsageError(`unexpected argument '${args.positional[0]}'\n${USAGE}`);
  const taskId = typeof args.flags.task === 'string' ? args.flags.task : DEFAULT_TASK;
  if (!Object.hasOwn(TASKS, taskId)) throw new UsageError(`flag '--task' must be one of ${Object.keys(TASKS).join(', ')}, got '${taskId}'`);
  const task = getTask(taskId);
  const out = typeof args.flags.out === 'string' ? args.flags.out : path.join('demos', task.id);
  if (out === '') throw new UsageError(`flag '--out' needs a directory, got ''\n${USAGE}`);
  const episodes = intFlag(args, 'episodes', 10, 1, USAGE);
  const seed0 = intFlag(args, 'seed', 0, 0, USAGE);
  const noiseRaw = typeof args.flags['action-noise'] === 'string' ? args.flags['action-noise'] : '0';
  const noiseStd = Number(noiseRaw);
  if (noiseRaw.trim() === '' || !Number.isFinite(noiseStd) || noiseStd < 0) throw new UsageError(`flag '--action-noise' must be a number >= 0 (rad), got '${noiseRaw}'\n${USAGE}`);
  const actionNoise: ActionNoise | undefined =
    noiseStd > 0 ? { std: noiseStd, holdSteps: intFlag(args, 'action-noise-hold', 10, 1, USAGE), seed: intFlag(args, 'action-noise-seed', 0, 0, USAGE) } : undefined;
  if (!args.flags.overwrite) {
    const existing = existingEpisodeFiles(out, task.id, seed0, episodes);
    if (existing.length) {
      const names = existing.slice(0, 3).map((f) => path.basename(f)).join(', ') + (existing.length > 3 ? `, ... (${existing.length} in all)` : '');
      throw new UsageError(`refusing to overwrite episode files already in ${out}: ${names}; pass --overwrite to replace them, or choose another --out or --seed`);
    }
  }
  const bar = !args.flags['no-progress'] && process.stderr.isTTY ? new ProgressBar(episodes) : null;

  const render = typeof args.flags.cameras === 'string' ? await import('../sim/render/env_cameras.ts') : null;
  let cameras: Array<{ name: string; width: number; height: number }> = [];
  try {
    if (render) cameras = render.parseCameraList(args.flags.cameras as string);
  } catch (err) {
    throw new UsageError(`flag '--cameras' ${(err as Error).message}\n${USAGE}`);
  }
  const env = await createEnv(task, { cameras });
  const envCameras = render
    ? await render.attachEnvCameras(env).catch((err: Error) => {
        env.free();
        // A camera without a placement, or no way to render: one line saying what to do.
        throw ['RangeError', 'RenderUnavailableError'].includes(err.name) ? new UsageError(`flag '--cameras': ${err.message}`) : err;
      })
    : null;
  const live = args.flags.view ? await (await import('../viewer/live_env.ts')).startEnvLiveView(env) : null;
  const results: EpisodeResult[] = [];
  const t0 = performance.now();
  // Ctrl+C (or SIGTERM) stops between two control steps: the episode in progress is kept as a
  // .partial file and the summary of the finished ones is printed.
  let interrupted: string | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupted = sig === 'SIGINT' ? 'interrupted (Ctrl+C)' : `stopped by ${sig}`;
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let partial: { seed: number; file: string; steps: number } | null = null;
  let failure: unknown = null;
  try {
    bar?.update(0, 'starting');
    for (let i = 0; i < episodes && !interrupted; i++) {
      const seed = seed0 + i;
      const file = path.join(out, `${task.id}-${seed}.evep`);
      const steps = expertEpisodeSteps(env, task, seed, { file, ...(actionNoise ? { actionNoise } : {}) });
      let turn = performance.now();
      let stepsDone = 0;
      for (;;) {
        const next = steps.next();
        if (next.done) {
          results.push(next.value);
          break;
        }
        stepsDone = next.value;
        // Give the event loop a turn now and then so a signal (and the live view) gets through.
        if (performance.now() - turn > YIELD_EVERY_MS) {
          await nextTurn();
          turn = performance.now();
          if (interrupted) {
            steps.return(undefined as never);
            partial = { seed, file: partialPath(file), steps: stepsDone };
            break;
          }
        }
      }
      const ok = results.filter((r) => r.success).length;
      bar?.update(results.length, `${ok} ok, ${(results.length / ((performance.now() - t0) / 1000)).toFixed(2)} ep/s`);
    }
  } catch (err) {
    failure = err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    bar?.finish();
    envCameras?.detach();
    env.free();
  }
  const summary = summarize(task, results, (performance.now() - t0) / 1000);
  const written = `wrote ${results.length} episode file${results.length === 1 ? '' : 's'} to ${out}`;
  if (failure !== null) {
    await live?.finish(false);
    // What was written before a file-system failure is intact; say so before the error line.
    if (isFileSystemError(failure) && results.length > 0) {
      console.log(args.flags.json ? JSON.stringify({ ...summary, stopped: 'file-system error' }, null, 2) : `${formatSummary(summary)}\n${written} before the error (seeds ${seed0}-${seed0 + results.length - 1} are complete)`);
    } else if (isFileSystemError(failure)) {
      console.error(`evovla demos: no episode file was written`);
    }
    throw failure;
  }
  if (interrupted) {
    const left = partial as { seed: number; file: string; steps: number } | null;
    const partialLine = left ? `episode seed ${left.seed} was left partial after ${left.steps} steps in ${left.file}` : 'no episode was in progress';
    if (args.flags.json) console.log(JSON.stringify({ ...summary, stopped: interrupted, partial: left }, null, 2));
    else console.log(`${formatSummary(summary)}\n${interrupted}: ${written}, ${episodes - results.length} of ${episodes} not finished; ${partialLine}`);
    await live?.finish(false);
    return 130;
  }
  if (args.flags.json) console.log(JSON.stringify(summary, null, 2));
  else console.log(`${formatSummary(summary)}\n${written}`);
  // Keep the page up for a person at a terminal; scripts get their exit right away.
  await live?.finish(process.stdin.isTTY === true);
  return 0;
}

/** How long a control loop runs between turns of the event loop (bounds Ctrl+C latency). */
const YIELD_EVERY_MS = 50;

/** Episode files of these seeds already in `out` (final files; a `.partial` is always replaced). */
export function existingEpisodeFiles(out: string, taskId: string, seed0: number, episodes: number): string[] {
  const found: string[] = [];
  for (let i = 0; i < episodes; i++) {
    const f = path.join(out, `${taskId}-${seed0 + i}.evep`);
    if (fs.existsSync(f)) found.push(f);
  }
  return found;
}
