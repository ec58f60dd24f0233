/** The ablation's shaping: potential-based on the tool's distance to the nearest task object, no stage predicate read. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evovlaRewards } from '../../policy/train/evovla_rewards.ts';
import type { RewardItem } from '../../policy/train/ppo.ts';
import { reachPotential, reachShaping, shapingObjects } from '../../rewards/shaping.ts';
import type { StepInfo } from '../../sim/types.ts';
import { getTask } from '../../tasks/index.ts';

const pose = (x: number, y = 0, z = 0) => ({ p: [x, y, z] as [number, number, number], q: [0, 0, 0, 1] as [number, number, number, number] });
const state = (ee: number) => ({ ee: pose(ee), objects: { a: pose(0.5), b: pose(1.0) } });

test('the potential is minus the distance to the nearest object; approaching earns, leaving costs; shaping telescopes', () => {
  assert.ok(Math.abs(reachPotential(state(0.2), ['a', 'b']) + 0.3) < 1e-12);
  assert.ok(Math.abs(reachPotential(state(0.9), ['a', 'b']) + 0.1) < 1e-12);
  assert.ok(reachShaping(state(0.2), state(0.3), ['a', 'b'], 1, false) > 0);
  assert.ok(reachShaping(state(0.3), state(0.2), ['a', 'b'], 1, false) < 0);
  // gamma = 1: the sum over an episode is Phi(last) - Phi(first), whatever the path; a terminated last step has Phi = 0.
  const path = [0.0, 0.2, 0.1, 0.4, 0.45];
  let sum = 0;
  for (let t = 1; t < path.length; t++) sum += reachShaping(state(path[t - 1]), state(path[t]), ['a', 'b'], 1, t === path.length - 1);
  assert.ok(Math.abs(sum - (0 - reachPotential(state(0), ['a', 'b']))) < 1e-12);
  assert.throws(() => reachPotential(state(0), ['c']), /no object 'c'/);
  assert.throws(() => reachShaping(state(0), state(0), ['a'], 0, false), /gamma must be in \(0, 1\], got 0/);
  assert.deepEqual(shapingObjects(getTask('stack').stages), ['middle_block', 'top_block']);
});

test('PPO reward model: shaping joins the extrinsic stream as reward/shape, without SAR, POE or any predicate', async () => {
  const task = getTask('stack');
  const objects = { middle_block: pose(0.5), top_block: pose(0.8), base_block: pose(0.3) };
  // Predicates are absent on purpose: the shaping must not read them.
  const info = (ee: number) => ({ state: { step: 0, ee: pose(ee), objects }, rewardTerms: {}, stage: 0 }) as unknown as StepInfo;
  const item = (from: number, to: number): RewardItem => ({ env: 0, prevInfo: info(from), action: [0, 0, 0, 0, 0, 0, 0], result: { obs: { proprio: new Float32Array(7) }, info: info(to), reward: 0, terminated: false, truncated: false } as unknown as RewardItem['result'] });
  const r = evovlaRewards({ task, numEnvs: 1, sar: null, poe: null, shaping: { scale: 2, gamma: 0.99 } });
  const [out] = await r.step([item(0.1, 0.2)]);
  const expected = 2 * (0.99 * -0.3 - -0.4);
  assert.ok(Math.abs(out.terms.shape - expected) < 1e-12);
  assert.ok(Math.abs(out.ext - expected) < 1e-12);
  assert.equal(out.int, 0);
  const none = evovlaRewards({ task, numEnvs: 1, sar: null, poe: null });
  const [plain] = await none.step([item(0.1, 0.2)]);
  assert.equal(plain.terms.shape, undefined);
  assert.equal(plain.ext, 0);
});
