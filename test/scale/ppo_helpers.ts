/**
 * A fast PPO rollout for the distributed-PPO tests: the state-based actor-critic
 * (policy/train/state_policy.ts) on the `blocks` task with a dense reach reward, registered as the
 * rollout builder `state`. The learner side builds the same actor-critic from the same seed.
 */
import { VecEnv } from '../../sim/vec_env.ts';
import type { ActionMap, RewardModel } from '../../policy/train/ppo.ts';
import { mlpActorCritic, stateEncoder, stateFeatureSize } from '../../policy/train/state_policy.ts';
import type { PpoRolloutBuilder } from '../../scale/ppo_worker.ts';

const TASKS_MODULE = new URL('../../tasks/index.ts', import.meta.url).href;

/** Dynamic objects of the blocks task (the state features' layout). */
export const BLOCKS_OBJECTS = 5;

/** The actor-critic both sides build. */
export function stateActorCritic() {
  return mlpActorCritic({ featureSize: stateFeatureSize(BLOCKS_OBJECTS), actionSize: 7, hidden: [16, 16], seed: 2 });
}

/** Joint targets around a fixed pose (+-0.3 rad), gripper open. */
export const STATE_ACTION_MAP: ActionMap = { center: [0, -0.3, 0.6, 0, 0.6, 0, 0.04], scale: [0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0] };

/** Minus the tool's distance to the red block, on the extrinsic stream; a constant intrinsic 0.01. */
export const reachReward: RewardModel = {
  step: (items) =>
    items.map(({ result }) => {
      const s = result.info.state;
      const b = s.objects.block_red.p;
      const d = Math.hypot(s.ee.p[0] - b[0], s.ee.p[1] - b[1], s.ee.p[2] - b[2]);
      return { ext: -d, int: 0.01, terms: { reach: -d } };
    }),
  afterRollout: () => ({ test_metric: 1 }),
};

/** The `state` builder: blocks, 24-step episodes, envs stepped in the worker's thread. */
export const stateBuilder: PpoRolloutBuilder = async (context, o) => {
  const env = await VecEnv.create({ taskModule: TASKS_MODULE, taskId: context.task, numEnvs: o.numEnvs, workers: 0, config: { maxSteps: 24 } });
  return { env, actorCritic: stateActorCritic(), encoder: stateEncoder(BLOCKS_OBJECTS), rewards: reachReward, actionMap: STATE_ACTION_MAP, close: () => env.close() };
};
