/**
 * The one per-env SAR bookkeeping (rewards/sar/online.ts): settings resolved from the scorer's
 * stored gate (configs/sar.yaml's defaults) with key-by-key overrides, the gate, baselines and
 * judged claims per env; PPO's reward model (policy/train/evovla_rewards.ts) uses the same.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evovlaRewards } from '../../../policy/train/evovla_rewards.ts';
import type { RewardItem } from '../../../policy/train/ppo.ts';
import { parseSarConfig, sarGateOverrideSchema } from '../../../rewards/sar/config.ts';
import { SarGateTracker, sarGateSettings } from '../../../rewards/sar/online.ts';
import { textLayout } from '../../../rewards/sar/scorer.ts';
import type { StepInfo } from '../../../sim/types.ts';
import { getTask } from '../../../tasks/index.ts';

const names = ['a', 'b', 'c'];
const info = (step: number, done: Record<string, boolean>, stage: number) => ({ state: { step }, predicates: { a: false, b: false, c: false, ...done }, stage });

test('settings: the scorer stored gate, overridden key by key; the defaults are configs/sar.yaml\'s', () => {
  const defaults = parseSarConfig({});
  const meta = { gate: { ...defaults.gate }, alpha: defaults.alpha };
  assert.deepEqual(sarGateSettings(meta), { gate: { window: 6, threshold: 0.8, lookahead: 0 }, alpha: 0.05 });
  assert.deepEqual(sarGateSettings(meta, { threshold: 0.5 }), { gate: { window: 6, threshold: 0.5, lookahead: 0 }, alpha: 0.05 });
  assert.deepEqual(sarGateSettings({ gate: { window: 3, threshold: 0.7 }, alpha: 0.1 }, { alpha: 0.2, lookahead: 1 }), { gate: { window: 3, threshold: 0.7, lookahead: 1 }, alpha: 0.2 });
  assert.throws(() => sarGateOverrideSchema.parse({ windw: 3 }));
});

test('tracker: per-env gate and baseline, claims judged by the ground truth, counts drained, episodes reset', () => {
  const t = new SarGateTracker(names, 2, { gate: { window: 2, threshold: 0.8 }, alpha: 0.5 });
  // env 0: stage a shown and true; env 1: shown but false (hallucinated).
  const r0 = [t.push(0, 0.9, info(1, { a: true }, 1)), t.push(0, 0.9, info(2, { a: true }, 1))];
  const r1 = [t.push(1, 0.9, info(1, {}, 0)), t.push(1, 0.9, info(2, {}, 0))];
  assert.deepEqual(r0.map((r) => r.claimed), [[], [0]]);
  assert.deepEqual(r1[1].hallucinatedStages, [0]);
  assert.equal(r0[1].hallucinated, false);
  assert.equal(t.gateStage(0), 1);
  assert.equal(t.scoredStage(1), 1);
  assert.equal(t.lastScore(1), 0.9);
  // Baseline: the first step earns 0, then u - ubar.
  assert.equal(r0[0].stage, 0);
  assert.deepEqual(t.drainCounts(), { claims: 2, falseClaims: 1 });
  assert.deepEqual(t.drainCounts(), { claims: 0, falseClaims: 0 });
  const h = t.endEpisode(1);
  assert.deepEqual([h.completions, h.hallucinated, h.marks], [1, 1, [{ step: 2, stage: 0 }]]);
  assert.equal(t.gateStage(1), 0);
  assert.equal(t.lastScore(1), 0);
  // A late claim of a stage the ground truth has passed is true.
  t.push(0, 0.95, info(3, {}, 3));
  assert.deepEqual(t.push(0, 0.95, info(4, {}, 3)).claimed, [1]);
  assert.equal(t.endEpisode(0).hallucinated, 0);
  assert.throws(() => t.push(2, 0.5, info(1, {}, 0)), /env must be in 0..1, got 2/);
});

test('PPO reward model: the gate runs on the scorer stored settings (same class), unless the phase overrides a key', async () => {
  const task = getTask('stack');
  const layout = textLayout(task.stages);
  const stored = { task: 'stack', layout, gate: { window: 3, threshold: 0.5 }, alpha: 0.05 };
  const scorer = { meta: stored, score: async (items: ReadonlyArray<unknown>) => items.map(() => 0.6) };
  const obs = { proprio: new Float32Array(7) };
  const base = { state: { step: 0 }, predicates: Object.fromEntries(task.stages.map((s) => [s.name, false])), stage: 0, success: false, rewardTerms: {} } as unknown as StepInfo;
  const items = (step: number): RewardItem[] => [{ env: 0, prevInfo: base, action: [0, 0, 0, 0, 0, 0, 0], result: { obs, info: { ...base, state: { step } }, reward: 0, terminated: false, truncated: false } as unknown as RewardItem['result'] }];
  const claimsAfter = async (gate: { window?: number; threshold?: number } | null, steps: number) => {
    const r = evovlaRewards({ task, numEnvs: 1, sar: scorer, poe: null, gate });
    for (let s = 1; s <= steps; s++) await r.step(items(s));
    return (await r.afterRollout!()).sar_claims;
  };
  // Stored window 3: u = 0.6 >= 0.5 claims one stage every 3 steps.
  assert.equal(await claimsAfter(null, 9), 3);
  // Override only the window: 1 claim per step, the stored threshold kept.
  assert.equal(await claimsAfter({ window: 1 }, 4), 4);
  // Override only the threshold above u: no claim.
  assert.equal(await claimsAfter({ threshold: 0.7 }, 9), 0);
  // A scorer of another task is refused by name.
  assert.throws(() => evovlaRewards({ task: getTask('jujube_cup'), numEnvs: 1, sar: scorer, poe: null }), /trained for task 'stack'/);
});
