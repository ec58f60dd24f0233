import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEnv } from '../../sim/env.ts';
import { VecEnv } from '../../sim/vec_env.ts';
import { blocksScriptedAction as scriptedAction, blocksTask } from '../../tasks/blocks.ts';

const TASKS_MODULE = new URL('../../tasks/index.ts', import.meta.url).href;
const N = 3;
const STEPS = 40;
const seeds = [4, 5, 6];

async function separateHashes(): Promise<string[]> {
  const out: string[] = [];
  for (const seed of seeds) {
    const env = await createEnv(blocksTask);
    env.reset({ seed });
    const q0 = env.state().q.slice();
    for (let k = 0; k < STEPS; k++) env.step(scriptedAction(q0, [0, 1, 2, 3, 4, 5, 6], k, 1 / 60));
    out.push(env.stateHash());
    env.free();
  }
  return out;
}

async function vecHashes(workers: number): Promise<string[]> {
  const vec = await VecEnv.create({ taskModule: TASKS_MODULE, taskId: 'blocks', numEnvs: N, workers });
  const starts = await vec.reset(seeds);
  const q0s = starts.map((r) => r.info.state.q.slice());
  let hashes: string[] = [];
  for (let k = 0; k < STEPS; k++) hashes = (await vec.step(q0s.map((q0) => scriptedAction(q0, [0, 1, 2, 3, 4, 5, 6], k, 1 / 60)))).hashes;
  await vec.close();
  return hashes;
}

test('a vector env gives exactly the results of separate envs, serially and with one or two workers', async () => {
  const expected = await separateHashes();
  assert.equal(new Set(expected).size, N);
  assert.deepEqual(await vecHashes(0), expected);
  assert.deepEqual(await vecHashes(1), expected);
  assert.deepEqual(await vecHashes(2), expected);
});

test('a worker reports a bad action with the field name', async () => {
  const vec = await VecEnv.create({ taskModule: TASKS_MODULE, taskId: 'blocks', numEnvs: 1, workers: 1 });
  await vec.reset([0]);
  await assert.rejects(vec.step([[0, 0, NaN, 0, 0, 0, 0]]), /joint3/);
  await vec.close();
});

test('a task module without getTask is refused with a clear error', async () => {
  await assert.rejects(
    VecEnv.create({ taskModule: new URL('../../sim/math.ts', import.meta.url).href, taskId: 'blocks', numEnvs: 1 }),
    /taskModule .*math\.ts.* does not export getTask\(id\)/,
  );
});

test('an env setup module without setupEnv, and a bad worker kind, are refused naming what was expected', async () => {
  const math = new URL('../../sim/math.ts', import.meta.url).href;
  await assert.rejects(
    VecEnv.create({ taskModule: TASKS_MODULE, taskId: 'blocks', numEnvs: 1, envSetupModule: math }),
    /envSetupModule .*math\.ts.* does not export setupEnv\(env, options\)/,
  );
  await assert.rejects(
    VecEnv.create({ taskModule: TASKS_MODULE, taskId: 'blocks', numEnvs: 1, workerKind: 'fiber' as never }),
    /workerKind: expected 'thread' or 'process', got "fiber"/,
  );
});

test('worker processes give exactly the results of separate envs', async () => {
  const vec = await VecEnv.create({ taskModule: TASKS_MODULE, taskId: 'blocks', numEnvs: 2, workers: 1, workerKind: 'process' });
  const starts = await vec.reset([4, 5]);
  const q0s = starts.map((r) => r.info.state.q.slice());
  let hashes: string[] = [];
  for (let k = 0; k < STEPS; k++) hashes = (await vec.step(q0s.map((q0) => scriptedAction(q0, [0, 1, 2, 3, 4, 5, 6], k, 1 / 60)))).hashes;
  await assert.rejects(vec.step([[0, 0, NaN, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]]), /joint3/);
  await vec.close();
  assert.deepEqual(hashes, (await separateHashes()).slice(0, 2));
});

test('resetEnvs resets only the envs given a seed, serially and in workers', async () => {
  for (const workers of [0, 2]) {
    const vec = await VecEnv.create({ taskModule: TASKS_MODULE, taskId: 'blocks', numEnvs: N, workers });
    const starts = await vec.reset(seeds);
    const q0s = starts.map((r) => r.info.state.q.slice());
    for (let k = 0; k < 5; k++) await vec.step(q0s.map((q0) => scriptedAction(q0, [0, 1, 2, 3, 4, 5, 6], k, 1 / 60)));
    const again = await vec.resetEnvs([null, 9, null]);
    assert.equal(again[0], null);
    assert.equal(again[2], null);
    assert.equal(again[1]!.info.state.step, 0);
    const { results } = await vec.step(q0s.map((q0) => scriptedAction(q0, [0, 1, 2, 3, 4, 5, 6], 5, 1 / 60)));
    // Env 1 started over (one step into a new episode); the others kept going.
    assert.deepEqual(results.map((r) => r.info.state.step), [6, 1, 6]);
    await assert.rejects(vec.resetEnvs([null]), /expected 3 seeds/);
    await vec.close();
  }
});
