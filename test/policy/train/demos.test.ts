/**
 * Recovery demos in a training config: `data.noise` is validated with its key path, names its own
 * demo folder, and a demo folder recorded with another noise setting is refused rather than mixed;
 * demos recorded by several processes are the files one process records.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, demoDirOf, demoNoiseOf, parseTrainConfig } from '../../../policy/train/config.ts';
import { demoFile, ensureDemos } from '../../../policy/train/demos.ts';
import { readEpisodeHeader } from '../../../sim/record/reader.ts';
import { createEnv } from '../../../sim/env.ts';
import { getTask } from '../../../tasks/index.ts';
import { runExpertEpisode } from '../../../tasks/rollout.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evovla-demos-noise-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('data.noise: defaults, its own demo folder, and bad values refused with the key path', () => {
  const clean = parseTrainConfig({ name: 'x', task: 'stack' });
  assert.equal(demoNoiseOf(clean), undefined);
  assert.equal(demoDirOf(clean), 'demos/stack_eye_side-eye_arm_64');
  const noisy = parseTrainConfig({ name: 'x', task: 'stack', data: { noise: { std: 0.01 } } });
  assert.deepEqual(demoNoiseOf(noisy), { std: 0.01, holdSteps: 10, seed: 0 });
  assert.equal(demoDirOf(noisy), 'demos/stack_eye_side-eye_arm_64_dart0.01h10');
  // std 0 is the same as no noise (same folder as clean demos).
  assert.equal(demoDirOf(parseTrainConfig({ name: 'x', task: 'stack', data: { noise: { std: 0 } } })), demoDirOf(clean));
  assert.throws(() => parseTrainConfig({ name: 'x', task: 'stack', data: { noise: { std: -0.1 } } }), (e: Error) => e instanceof ConfigError && /data\.noise\.std/.test(e.message));
  assert.throws(() => parseTrainConfig({ name: 'x', task: 'stack', data: { noise: { std: 0.01, hold: 3 } } }), /data\.noise.*hold: unknown key/);
  assert.throws(() => parseTrainConfig({ name: 'x', task: 'stack', data: { noise: { std: 0.01, holdSteps: 0 } } }), /data\.noise\.holdSteps/);
});

test('a demo folder recorded with another noise setting is refused, naming both settings', async () => {
  const task = getTask('stack');
  const env = await createEnv(task, {});
  try {
    runExpertEpisode(env, task, 0, { file: demoFile(dir, task, 0) });
  } finally {
    env.free();
  }
  assert.equal(readEpisodeHeader(demoFile(dir, task, 0)).meta.actionNoise, undefined);
  const noise = { std: 0.01, holdSteps: 10, seed: 0 };
  await assert.rejects(
    ensureDemos(task, dir, 0, 1, ['eye_side'], 16, () => {}, { noise }),
    /stack-0\.evep was recorded with no action noise, but the config asks for action noise std 0\.01 rad, hold 10 steps, seed 0 \(data\.noise\)/,
  );
  // The clean setting accepts the folder as it is (nothing to record, no renderer needed).
  assert.deepEqual(await ensureDemos(task, dir, 0, 1, ['eye_side'], 16, () => {}), [demoFile(dir, task, 0)]);
  fs.writeFileSync(path.join(dir, 'junk.evep'), 'not an episode');
  assert.throws(() => readEpisodeHeader(path.join(dir, 'junk.evep')), /junk\.evep: not a readable episode file/);
});


const stack = getTask('stack');

test('demos recorded by 2 processes (with action noise) are the same files as those recorded in this process', async () => {
  const root = mkdtempSync(join(tmpdir(), 'evovla-demos-'));
  const noise = { std: 0.01, holdSteps: 10, seed: 0 };
  try {
    const lines: string[] = [];
    const one = await ensureDemos(stack, join(root, 'one'), 5, 2, ['eye_side'], 16, () => {}, { workers: 1, noise });
    const two = await ensureDemos(stack, join(root, 'two'), 5, 2, ['eye_side'], 16, (l) => lines.push(l), { workers: 2, noise });
    assert.deepEqual(readdirSync(join(root, 'two')).sort(), ['stack-5.evep', 'stack-6.evep']);
    for (let i = 0; i < 2; i++) assert.ok(readFileSync(one[i]).equals(readFileSync(two[i])), `episode file ${two[i]} differs from the one recorded in-process`);
    assert.match(lines[0], /recording 2 expert demos .*2 processes/);
    assert.match(lines.at(-1)!, /demos: 2\/2 \(\d+ unsuccessful\)/);
    // Nothing missing: nothing is recorded again.
    const again: string[] = [];
    await ensureDemos(stack, join(root, 'two'), 5, 2, ['eye_side'], 16, (l) => again.push(l), { workers: 2, noise });
    assert.deepEqual(again, []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a recording process that fails is reported with its seeds and the reason', async () => {
  const root = mkdtempSync(join(tmpdir(), 'evovla-demos-'));
  try {
    await assert.rejects(ensureDemos(stack, join(root, 'd'), 0, 2, ['no_such_camera'], 16, () => {}, { workers: 2 }), /recording demos \(seeds \d+\.\.\d+\) failed: .*no_such_camera/);
    await assert.rejects(ensureDemos(stack, join(root, 'd'), 0, 2, ['eye_side'], 16, () => {}, { workers: -1 }), /demo workers: expected an integer >= 0, got -1/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
