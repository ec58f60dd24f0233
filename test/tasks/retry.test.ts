/**
 * A pick-and-place expert notices a failed grasp and tries again: its first approach is sent 6 cm
 * off the block (the fingers close on nothing), the check after the lift sees the block is not
 * held, and the second approach, aimed at the block where it is now, completes the task.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEnv } from '../../sim/env.ts';
import type { Vec3 } from '../../sim/types.ts';
import { getTask } from '../../tasks/index.ts';
import { ScriptedExpert } from '../../tasks/stagekit.ts';

test('stack: a grasp that closed on nothing is noticed after the lift and retried; the episode succeeds', async () => {
  const task = getTask('stack');
  const env = await createEnv(task);
  let r = env.reset({ seed: 1 });
  let calls = 0;
  // The first three targets (hover across, hover down, descend) of the first round miss by 6 cm.
  const perturbTarget = (p: Vec3): Vec3 => (calls++ < 3 ? [p[0], p[1] + 0.06, p[2]] : p);
  const expert = task.expert(env.randomization!, { ...env.expertTools(), perturbTarget });
  assert.ok(expert instanceof ScriptedExpert);
  let missed = false;
  let success = false;
  for (let t = 0; t < task.maxSteps; t++) {
    const res = env.step(expert.act(r.info.state).action);
    r = { obs: res.obs, info: res.info };
    // After the first close, the fingers meet (nothing between them): the grasp failed.
    if (expert.stepIndex === 4 && res.info.state.gripper < 0.003) missed = true;
    if (res.terminated || res.truncated) {
      success = res.info.success;
      break;
    }
  }
  assert.ok(missed, 'the first grasp did not miss: the test does not test the retry');
  assert.equal(expert.retries, 1);
  assert.ok(success, `episode did not succeed (stage ${r.info.stage})`);
  env.free();
});

test('stack: without a failure the expert never retries', async () => {
  const task = getTask('stack');
  const env = await createEnv(task);
  let r = env.reset({ seed: 1 });
  const expert = task.expert(env.randomization!, env.expertTools()) as ScriptedExpert;
  for (let t = 0; t < task.maxSteps; t++) {
    const res = env.step(expert.act(r.info.state).action);
    r = { obs: res.obs, info: res.info };
    if (res.terminated || res.truncated) break;
  }
  assert.equal(r.info.success, true);
  assert.equal(expert.retries, 0);
  env.free();
});
