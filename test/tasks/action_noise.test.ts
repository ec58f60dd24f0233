/**
 * Action noise for recovery demos (DART): held, seeded offsets on the six joint targets only, and
 * an episode file that keeps the expert's clean action (computed from the perturbed state) as the
 * label beside the action actually sent, so replay and learners each read the right one.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { createEnv, type SimEnv } from '../../sim/env.ts';
import { readEpisode } from '../../sim/record/reader.ts';
import { ActionNoiseInjector, actionNoiseTag, validateActionNoise } from '../../tasks/action_noise.ts';
import { getTask } from '../../tasks/index.ts';
import { replayActions, runExpertEpisode } from '../../tasks/rollout.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evovla-action-noise-'));
const task = getTask('stack');
let env: SimEnv;
before(async () => {
  env = await createEnv(task, {});
});
after(() => {
  env?.free();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('the injector holds each offset for holdSteps, leaves the gripper alone and is reproducible per episode', () => {
  const noise = { std: 0.02, holdSteps: 3, seed: 5 };
  const label = [0.1, -0.2, 0.3, 0, 0.5, -0.6, 0.03];
  const run = (episodeSeed: number, n: number) => {
    const inj = new ActionNoiseInjector(noise, episodeSeed);
    return Array.from({ length: n }, () => Array.from(inj.apply(label), (v, j) => v - Math.fround(label[j])));
  };
  const a = run(7, 3000);
  assert.deepEqual(run(7, 3000), a, 'same noise seed and episode seed give the same offsets');
  assert.notDeepEqual(run(8, 3000), a, 'another episode draws other offsets');
  for (let k = 0; k < a.length; k++) {
    assert.equal(a[k][6], 0, 'gripper not perturbed');
    if (k % 3 !== 0) assert.deepEqual(a[k], a[k - 1], `offset held at step ${k}`);
  }
  assert.ok(a.slice(1).some((o, k) => o[0] !== a[k][0]), 'offsets change between hold periods');
  // Spread over the 1,000 draws of joint 0 matches std.
  const draws = a.filter((_, k) => k % 3 === 0).map((o) => o[0]);
  const mean = draws.reduce((s, x) => s + x, 0) / draws.length;
  const std = Math.sqrt(draws.reduce((s, x) => s + (x - mean) ** 2, 0) / draws.length);
  assert.ok(Math.abs(std - 0.02) < 0.002, `std ${std}`);
  assert.ok(Math.abs(mean) < 0.002, `mean ${mean}`);
  assert.equal(actionNoiseTag(noise), 'dart0.02h3s5');
  assert.equal(actionNoiseTag({ std: 0.01, holdSteps: 10, seed: 0 }), 'dart0.01h10');
});

test('bad noise settings are refused naming the field and the expected form', () => {
  assert.throws(() => validateActionNoise({ std: -1, holdSteps: 1, seed: 0 }, 'data.noise'), /data\.noise\.std must be a finite number >= 0 \(rad\), got -1/);
  assert.throws(() => validateActionNoise({ std: 0.1, holdSteps: 0, seed: 0 }, 'data.noise'), /data\.noise\.holdSteps must be an integer >= 1, got 0/);
  assert.throws(() => new ActionNoiseInjector({ std: 0.1, holdSteps: 2, seed: 1.5 }, 0), /seed must be an integer >= 0, got 1.5/);
  assert.throws(() => new ActionNoiseInjector({ std: 0.1, holdSteps: 2, seed: 0 }, 0).apply([0, 0, 0]), /at least 6 entries, got 3/);
});

test('a noisy demo records the clean expert label as action and the sent action as executedAction', () => {
  const noise = { std: 0.01, holdSteps: 10, seed: 0 };
  const file = path.join(dir, 'stack-2.evep');
  const r = runExpertEpisode(env, task, 2, { file, actionNoise: noise });
  const ep = readEpisode(file);
  assert.equal(ep.damage, null);
  assert.deepEqual(ep.header?.meta.actionNoise, noise);
  assert.equal(ep.steps.length, r.steps);
  let moved = 0;
  for (const s of ep.steps) {
    assert.ok(s.executedAction instanceof Float32Array && s.executedAction.length === 7, `step ${s.step} has executedAction`);
    assert.equal(s.executedAction[6], s.action[6], 'gripper sent as labelled');
    if (Math.abs(s.executedAction[0] - s.action[0]) > 1e-4) moved++;
  }
  assert.ok(moved > 0.9 * ep.steps.length, `joint 0 perturbed at ${moved} of ${ep.steps.length} steps`);

  // Replaying what was sent reproduces the episode; replaying the labels does not (they were never executed).
  assert.equal(replayActions(env, 2, ep.steps.map((s) => s.executedAction!)).finalStateHash, r.finalStateHash);
  const labelsReplayed = (() => {
    try {
      return replayActions(env, 2, ep.steps.map((s) => s.action)).finalStateHash;
    } catch (err) {
      return (err as Error).message; // the clean labels end the episode at another step
    }
  })();
  assert.notEqual(labelsReplayed, r.finalStateHash);

  // DART's contract: each label is what a fresh expert asks for in the state the noisy episode was in.
  let { info } = env.reset({ seed: 2 });
  const expert = task.expert(env.randomization!, env.expertTools());
  for (const s of ep.steps) {
    assert.deepEqual(Float32Array.from(expert.act(info.state).action), s.action, `label at step ${s.step}`);
    info = env.step(s.executedAction!).info;
  }

  // Same seeds, same file contents; a clean demo has no executedAction and no noise in its header.
  const again = runExpertEpisode(env, task, 2, { actionNoise: noise });
  assert.equal(again.finalStateHash, r.finalStateHash);
  const cleanFile = path.join(dir, 'stack-clean-2.evep');
  runExpertEpisode(env, task, 2, { file: cleanFile, actionNoise: { ...noise, std: 0 } });
  const clean = readEpisode(cleanFile);
  assert.equal(clean.header?.meta.actionNoise, undefined);
  assert.ok(clean.steps.every((s) => s.executedAction === undefined));
  assert.notEqual(clean.footer?.finalStateHash, r.finalStateHash);
});
