/**
 * A reproducible scripted run of the blocks scene (the blocks task's moving-arm motion with
 * phases drawn from the seed), for the determinism tests. Run directly
 * (`node --import tsx test/sim/helpers/scripted_run.ts <seed> <steps>`) it prints the final state
 * hash, so a test can compare hashes across processes.
 */
import { createEnv, type EnvConfig } from '../../../sim/env.ts';
import { Rng } from '../../../sim/rng.ts';
import { blocksScriptedAction as scriptedAction, blocksTask } from '../../../tasks/blocks.ts';

/**
 * Run `steps` control steps from reset({seed}); with `snapshotAt`, take a snapshot at that step,
 * disturb the env with a few other actions, restore and continue. Returns the final state hash.
 */
export async function runScripted(opts: { seed: number; steps: number; snapshotAt?: number; config?: Partial<EnvConfig> }): Promise<{ hash: string }> {
  const env = await createEnv(blocksTask, { maxSteps: opts.steps + 10, ...opts.config });
  env.reset({ seed: opts.seed });
  const rng = new Rng(opts.seed);
  const phases = Array.from({ length: 7 }, () => rng.uniform(0, 2 * Math.PI));
  const q0 = env.state().q.slice();
  const dt = 1 / env.config.controlHz;
  for (let k = 0; k < opts.steps; k++) {
    if (k === opts.snapshotAt) {
      const snap = env.snapshot();
      for (let j = 0; j < 25; j++) env.step(scriptedAction(q0, phases.map((p) => p + 1), j, dt));
      env.restore(snap);
    }
    env.step(scriptedAction(q0, phases, k, dt));
  }
  const hash = env.stateHash();
  env.free();
  return { hash };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [seed, steps] = process.argv.slice(2).map(Number);
  console.log((await runScripted({ seed, steps })).hash);
}
