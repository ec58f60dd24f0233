import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { VecEnv } from '../../../sim/vec_env.ts';
import { parsePpoConfig, trainPpo, type RewardModel } from '../../../policy/train/ppo.ts';
import { mlpActorCritic, stateEncoder, stateFeatureSize } from '../../../policy/train/state_policy.ts';
import { scratchDir } from '../../tmp.ts';

const TASKS_MODULE = new URL('../../../tasks/index.ts', import.meta.url).href;

/** Dense reach reward: minus the tool's distance to the red block (m), on the extrinsic stream. */
const reachReward: RewardModel = {
  step: (items) =>
    items.map(({ result }) => {
      const s = result.info.state;
      const b = s.objects.block_red.p;
      const d = Math.hypot(s.ee.p[0] - b[0], s.ee.p[1] - b[1], s.ee.p[2] - b[2]);
      return { ext: -d, int: 0, terms: { reach: -d } };
    }),
};

test('PPO in the simulator: the tool learns to reach a block (state features, vector env, truncation by time limit)', async () => {
  const dir = scratchDir('evovla-ppo-env-');
  const vec = await VecEnv.create({ taskModule: TASKS_MODULE, taskId: 'blocks', numEnvs: 4, config: { maxSteps: 32 } });
  try {
    const first = await vec.reset([0, 1, 2, 3]);
    const q0 = first[0].info.state.q;
    const objects = Object.keys(first[0].info.state.objectVel).length;
    const ac = mlpActorCritic({ featureSize: stateFeatureSize(objects), actionSize: 7, hidden: [64, 64], seed: 2 });
    const config = parsePpoConfig({ totalSteps: 256 * 12, rolloutSteps: 256, minibatchSize: 64, epochs: 8, lr: 1e-3, warmupSteps: 4, rho: 0, gamma: 0.95, seed: 3 });
    const metricsPath = join(dir, 'metrics.jsonl');
    const { iterations } = await trainPpo({
      config,
      env: vec,
      actorCritic: ac,
      encoder: stateEncoder(objects),
      rewards: reachReward,
      // Absolute joint targets around the start pose (+-0.6 rad), gripper open.
      actionMap: { center: [...q0, 0.04], scale: [0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0] },
      metricsPath,
    });
    const reach = iterations.map((m) => m['reward/reach'] as number);
    const early = (reach[0] + reach[1]) / 2;
    const late = (reach[reach.length - 1] + reach[reach.length - 2]) / 2;
    assert.ok(late > early + 0.02, `the mean distance to the block should shrink by 2 cm: ${reach.map((r) => r.toFixed(3)).join(' ')}`);
    const lines = readFileSync(metricsPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 12);
    // 256 steps over 4 envs with a 32-step limit: every episode is cut by the limit (8 per rollout).
    assert.equal(lines[0].episodes, 8);
    assert.equal(lines[0].success, 0);
    assert.ok(lines.every((l) => typeof l.furthest_stage === 'number'));
  } finally {
    await vec.close();
  }
});
