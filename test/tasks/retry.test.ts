/**
 * A pick-and-place expert notices a missed aim and corrects it: a first approach sent 6 cm off the
 * block is measured before the fingers close and corrected, and a constant aim error on every
 * target is measured and cancelled. Without the closed-loop aiming, the same miss is noticed after
 * the lift (the fingers closed on nothing) and the grasp is tried again.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEnv } from '../../sim/env.ts';
import type { Vec3 } from '../../sim/types.ts';
import { getTask } from '../../tasks/index.ts';
import { ScriptedExpert, add, graspAligned, isInPlace, pickPlaceScript, type PickPlaceSpec } from '../../tasks/stagekit.ts';

test('stack: an approach 6 cm off the block is measured before closing and corrected; the grasp holds first time', async () => {
  const task = getTask('stack');
  const env = await createEnv(task);
  let r = env.reset({ seed: 1 });
  let calls = 0;
  // The first five targets (hover across, hover down, above the block, onto it, the probe there)
  // miss by 6 cm; later ones do not, so the first correction overshoots and is corrected again.
  const perturbTarget = (p: Vec3): Vec3 => (calls++ < 5 ? [p[0], p[1] + 0.06, p[2]] : p);
  const expert = task.expert(env.randomization!, { ...env.expertTools(), perturbTarget });
  assert.ok(expert instanceof ScriptedExpert);
  let closedOnNothing = false;
  let offAtClose = Infinity;
  let success = false;
  for (let t = 0; t < task.maxSteps; t++) {
    const s = r.info.state;
    const out = expert.act(s);
    // The first control step of the first grip: where is the tool against the block?
    if (out.stageName === 'grasp_middle_block' && offAtClose === Infinity) {
      const b = s.objects.middle_block.p;
      offAtClose = Math.hypot(s.ee.p[0] - b[0], s.ee.p[1] - b[1]);
    }
    const res = env.step(out.action);
    r = { obs: res.obs, info: res.info };
    // Fingers that meet have nothing between them: a grasp on nothing.
    if (out.stageName === 'grasp_middle_block' && res.info.state.gripper < 0.003) closedOnNothing = true;
    if (res.terminated || res.truncated) {
      success = res.info.success;
      break;
    }
  }
  assert.ok(calls > 5, 'the expert set fewer than six targets');
  assert.ok(offAtClose < 0.01, `the gripper closed ${(offAtClose * 100).toFixed(1)} cm off the block`);
  assert.ok(!closedOnNothing, 'the fingers closed on nothing');
  assert.ok(expert.retries >= 1, 'the miss was never corrected');
  assert.ok(success, `episode did not succeed (stage ${r.info.stage})`);
  env.free();
});

test('stack: a constant 1.5 cm aim error on every target is measured and cancelled; the episode succeeds', async () => {
  const task = getTask('stack');
  const env = await createEnv(task);
  let r = env.reset({ seed: 2 });
  const bias: Vec3 = [0.012, -0.009, 0];
  const perturbTarget = (p: Vec3): Vec3 => [p[0] + bias[0], p[1] + bias[1], p[2] + bias[2]];
  const expert = task.expert(env.randomization!, { ...env.expertTools(), perturbTarget }) as ScriptedExpert;
  for (let t = 0; t < task.maxSteps; t++) {
    const res = env.step(expert.act(r.info.state).action);
    r = { obs: res.obs, info: res.info };
    if (res.terminated || res.truncated) break;
  }
  assert.equal(r.info.success, true, `stage ${r.info.stage}`);
  // Two grasps and two placements, each corrected once at least.
  assert.ok(expert.retries >= 4, `retries ${expert.retries}`);
  env.free();
});

/** Stack's first round as a pick-and-place spec: the middle block onto the base block. */
function middleBlockSpec(): PickPlaceSpec {
  return {
    object: 'middle_block',
    noun: 'the middle block',
    targetNoun: 'the base block',
    halfWidth: 0.0145,
    restZ: 0.0145,
    graspOffset: [0, 0, 0.01],
    hoverHeight: 0.1,
    liftHeight: 0.07,
    target: (s) => add(s.objects.base_block.p, [0, 0, 0.029]),
    placeTolXY: 0.015,
  };
}

test('pickPlaceScript without closed-loop aiming: a grasp that closed on nothing is noticed after the lift and retried', async () => {
  const task = getTask('stack');
  const env = await createEnv(task);
  let r = env.reset({ seed: 1 });
  let calls = 0;
  // The first three targets (hover across, hover down, descend) of the first round miss by 6 cm.
  const tools = { ...env.expertTools(), perturbTarget: (p: Vec3): Vec3 => (calls++ < 3 ? [p[0], p[1] + 0.06, p[2]] : p) };
  const spec = middleBlockSpec();
  const steps = pickPlaceScript(0, spec, { yaw: () => 0, carryHeight: 0.06, placeHeight: 0.013, openWidth: 0.03, raise: 0.08 });
  const expert = new ScriptedExpert(steps, task.stages.map((st) => st.name), tools);
  let missed = false;
  for (let t = 0; t < task.maxSteps && !expert.finished; t++) {
    const res = env.step(expert.act(r.info.state).action);
    r = { obs: res.obs, info: res.info };
    // After the first close (step 3), the fingers meet (nothing between them): the grasp failed.
    if (expert.stepIndex === 4 && res.info.state.gripper < 0.003) missed = true;
    if (res.terminated || res.truncated) break;
  }
  assert.ok(missed, 'the first grasp did not miss: the test does not test the retry');
  assert.equal(expert.retries, 1);
  assert.ok(isInPlace(r.info.state, spec), 'the middle block is not on the base block');
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

test('graspAligned reads the tool error across and along the fingers of the grasp yaw', () => {
  // Yaw 0: the fingers open along world Y. 1 cm along them is fine, 1 cm across is not.
  assert.equal(graspAligned([0, 0.01, 0], 0), true);
  assert.equal(graspAligned([0.01, 0, 0], 0), false);
  // Yaw 90 degrees: the fingers open along world X, so the same errors swap verdicts.
  assert.equal(graspAligned([0.01, 0, 0], Math.PI / 2), true);
  assert.equal(graspAligned([0, 0.01, 0], Math.PI / 2), false);
  // Vertical: a tool 1.2 cm high (a pad on the object's top) is not aligned.
  assert.equal(graspAligned([0, 0, 0.012], 0), false);
  assert.equal(graspAligned([0.002, -0.003, 0.004], 0), true);
});

/** Lowest the held middle block's bottom came to the base block's top (m) while held, with a constant aim error of `bias`. */
async function lowestWhileHeld(placeHover: number, bias: Vec3): Promise<{ gap: number; placed: boolean }> {
  const task = getTask('stack');
  const env = await createEnv(task);
  let r = env.reset({ seed: 1 });
  const tools = { ...env.expertTools(), perturbTarget: (p: Vec3): Vec3 => add(p, bias) };
  const spec = middleBlockSpec();
  const steps = pickPlaceScript(0, spec, { yaw: () => 0, carryHeight: 0.06, placeHeight: 0.013, openWidth: 0.03, raise: 0.08, align: true, placeHover });
  const expert = new ScriptedExpert(steps, task.stages.map((st) => st.name), tools);
  let gap = Infinity;
  let lifted = false;
  for (let t = 0; t < task.maxSteps && !expert.finished; t++) {
    const out = expert.act(r.info.state);
    const res = env.step(out.action);
    r = { obs: res.obs, info: res.info };
    const s = res.info.state;
    // Held, and not being let go yet (stage 7 opens the fingers and the block drops onto its support).
    const held = out.stage < 7 && s.contacts.filter((c) => c.object === 'middle_block' && c.finger).length === 2;
    if (held && s.objects.middle_block.p[2] - s.objects.base_block.p[2] > 0.04) lifted = true;
    const m = s.objects.middle_block.p;
    const b = s.objects.base_block.p;
    // Over the base block (footprints overlapping): how far its bottom is above the base block's top.
    if (held && lifted && Math.hypot(m[0] - b[0], m[1] - b[1]) < 0.029) gap = Math.min(gap, m[2] - 0.0145 - (b[2] + 0.0145));
    if (res.terminated || res.truncated) break;
  }
  const placed = isInPlace(r.info.state, spec);
  env.free();
  return { gap, placed };
}

test('placeHover: an aim 1.2 cm too low is corrected above the support; straight down, the held block is pressed onto it', async () => {
  const bias: Vec3 = [0.004, -0.003, -0.012];
  const hover = await lowestWhileHeld(0.015, bias);
  const straight = await lowestWhileHeld(0, bias);
  // Straight down: aimed 7 mm above its rest, 1.2 cm too low, the block meets the base block.
  assert.ok(straight.gap < 0.001, `straight down, the held block stayed ${(straight.gap * 1000).toFixed(1)} mm above its support`);
  // With the aim corrected 1.5 cm up first, it never touches the support while held.
  assert.ok(hover.gap > 0.002, `with placeHover, the held block came within ${(hover.gap * 1000).toFixed(1)} mm of its support`);
  assert.ok(hover.placed, 'with placeHover, the middle block is not on the base block');
});
