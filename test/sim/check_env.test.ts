/**
 * An env checker in the spirit of Gymnasium's check_env, run over every registered task.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEnv, type SimEnv } from '../../sim/env.ts';
import { Rng } from '../../sim/rng.ts';
import { TASKS } from '../../tasks/index.ts';

const COLOUR_WORDS = /\b(red|green|blue|yellow|orange|purple|pink|black|white|brown|grey|gray)\b/i;

function randomAction(env: SimEnv, rng: Rng): number[] {
  const q = env.state().q;
  if (env.actionMode === 'joint') return [...q.map((x) => x + rng.uniform(-0.05, 0.05)), rng.uniform(0, 0.04)];
  return [...Array.from({ length: 6 }, () => rng.uniform(-0.005, 0.005)), rng.uniform(0, 0.04)];
}

for (const [id, task] of Object.entries(TASKS)) {
  test(`env checker: ${id}`, async () => {
    assert.equal(task.id, id, 'registry key matches task.id');
    assert.ok(task.stages.length > 0);
    for (const s of task.stages) {
      assert.ok(s.texts.positive && s.texts.negative && s.texts.nearMisses.length > 0, `stage ${s.name} texts`);
      for (const t of [s.texts.positive, s.texts.negative, ...s.texts.nearMisses]) assert.ok(!COLOUR_WORDS.test(t), `colour word in '${t}'`);
    }
    for (const actionMode of ['joint', 'ee_delta'] as const) {
      const env = await createEnv(task, { actionMode, maxSteps: 12 });
      // Seeded determinism of reset.
      const r1 = env.reset({ seed: 123 });
      const h1 = env.stateHash();
      const rand1 = JSON.stringify(env.randomization);
      const r2 = env.reset({ seed: 123 });
      assert.equal(env.stateHash(), h1);
      assert.equal(JSON.stringify(env.randomization), rand1);
      assert.deepEqual(Array.from(r2.obs.proprio), Array.from(r1.obs.proprio));
      env.reset({ seed: 124 });
      assert.notEqual(JSON.stringify(env.randomization), rand1, 'different seeds give different episodes');
      // Observation and info shapes.
      const { obs, info } = env.reset({ seed: 7 });
      assert.equal(obs.proprio.length, env.actionSize);
      assert.ok(obs.proprio.every(Number.isFinite));
      assert.equal(obs.instruction, task.instruction);
      assert.ok(info.stage >= 0 && info.stage <= task.stages.length);
      for (const name of task.stages.map((s) => s.object)) assert.ok(name in info.state.objects, `stage object ${name}`);
      const rng = new Rng(1);
      let steps = 0;
      let last;
      do {
        last = env.step(randomAction(env, rng));
        steps++;
        assert.ok(Number.isFinite(last.reward));
        assert.equal(typeof last.terminated, 'boolean');
        assert.equal(typeof last.truncated, 'boolean');
        assert.ok(!(last.terminated && last.truncated));
        assert.ok(Object.values(last.info.rewardTerms).every(Number.isFinite));
        assert.equal(last.info.clampedAction.length, env.actionSize);
        assert.equal(last.info.state.step, steps);
        assert.ok(Math.abs(last.info.state.time - steps / env.config.controlHz) < 1e-9);
      } while (!last.terminated && !last.truncated);
      // The time limit truncates (and only the time limit).
      if (!last.terminated) assert.equal(steps, 12);
      assert.throws(() => env.step(randomAction(env, rng)), /reset/);
      // Snapshot round trip.
      env.reset({ seed: 3 });
      env.step(randomAction(env, rng));
      const snap = env.snapshot();
      const h = env.stateHash();
      env.step(randomAction(env, rng));
      env.restore(snap);
      assert.equal(env.stateHash(), h);
      // Restoring across a reset into another episode brings the old scene back.
      const rand = JSON.stringify(env.randomization);
      env.reset({ seed: 99 });
      env.restore(snap);
      assert.equal(env.stateHash(), h);
      assert.equal(JSON.stringify(env.randomization), rand);
      env.step(randomAction(env, rng));
      env.free();
    }
  });
}
