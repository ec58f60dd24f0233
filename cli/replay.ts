/**
 * `evovla replay FILE --verify`: re-simulate an episode from its seed and recorded actions.
 * With --verify, compare the final state hash with the one recorded at close (exit 0 when equal,
 * 1 when not). Refuses a file recorded under a different env/task configuration.
 */
import * as fs from 'node:fs';
import { createEnv, type EnvConfig } from '../sim/env.ts';
import { readEpisode, requireIntact, EpisodeFormatError } from '../sim/record/reader.ts';
import { getTask, TASKS } from '../tasks/index.ts';
import { configHash, replayActions } from '../tasks/rollout.ts';
import { parseFlags } from './args.ts';
import { UsageError } from './main.ts';

const USAGE = 'usage: evovla replay <file.evep> [--verify] [--json]';

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  const args = parseFlags(argv, { verify: 'bool', json: 'bool' }, USAGE);
  if (args.positional.length !== 1) throw new UsageError(`expected exactly one episode file, got ${args.positional.length} arguments\n${USAGE}`);
  const file = args.positional[0];
  if (!fs.existsSync(file)) throw new UsageError(`episode file '${file}' does not exist`);
  const rec = readEpisode(file);
  try {
    requireIntact(rec, file);
  } catch (err) {
    if (err instanceof EpisodeFormatError) {
      console.error(`evovla replay: cannot replay a damaged file: ${err.message}`);
      return 1;
    }
    throw err;
  }
  const h = rec.header;
  if (!Object.hasOwn(TASKS, h.task)) {
    console.error(`evovla replay: ${file} was recorded for task '${h.task}', which this build does not have (tasks: ${Object.keys(TASKS).join(', ')})`);
    return 1;
  }
  const task = getTask(h.task);
  const envConfig = (h.meta.envConfig ?? {}) as Partial<EnvConfig>;
  const env = await createEnv(task, envConfig, `${file} header meta.envConfig`);
  try {
    const hash = configHash(task, env.config);
    if (hash !== h.configHash) {
      console.error(`evovla replay: config hash mismatch: file has ${h.configHash}, this build computes ${hash} for task '${task.id}' (task stages or env config changed since recording)`);
      return 1;
    }
    const t0 = performance.now();
    const res = replayActions(
      env,
      h.seed,
      // Demos with action noise sent executedAction; action is their clean label.
      rec.steps.map((s) => s.executedAction ?? s.action),
      rec.steps.map((s) => s.stage),
    );
    const wall = (performance.now() - t0) / 1000;
    const match = res.finalStateHash === rec.footer.finalStateHash;
    const report = {
      file,
      task: task.id,
      seed: h.seed,
      steps: res.steps,
      recordedHash: rec.footer.finalStateHash,
      replayedHash: res.finalStateHash,
      match,
      success: res.success,
      recordedSuccess: rec.footer.success,
      firstStageMismatch: res.firstStageMismatch,
      wallSeconds: wall,
    };
    if (args.flags.json) console.log(JSON.stringify(report, null, 2));
    else {
      console.log(`replayed ${res.steps} steps of ${task.id} seed ${h.seed} in ${wall.toFixed(2)} s: ${res.success ? 'success' : 'no success'} (recorded: ${rec.footer.success ? 'success' : 'no success'})`);
      console.log(`final state hash ${res.finalStateHash} (recorded ${rec.footer.finalStateHash}): ${match ? 'MATCH' : 'MISMATCH'}`);
      if (res.firstStageMismatch >= 0) console.log(`ground-truth stage first differs at step ${res.firstStageMismatch}`);
    }
    return args.flags.verify && !match ? 1 : 0;
  } finally {
    env.free();
  }
}
