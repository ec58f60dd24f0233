import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ModelRunner } from '../../../nn/runner.ts';
import { Trainer } from '../../../nn/trainer.ts';
import { ParamSet, init } from '../../../nn/params.ts';
import * as op from '../../../nn/ops.ts';
import { Rng } from '../../../sim/rng.ts';
import type { ResetResult, StepInfo, StepResult } from '../../../sim/types.ts';
import {
  AC_OUTPUTS,
  collectRollout,
  computeGae,
  envRewardModel,
  evaluateGreedy,
  explainedVariance,
  gaussianLogDensity,
  parsePpoConfig,
  ppoLoss,
  ppoUpdate,
  rolloutContext,
  startEpisodes,
  trainPpo,
  type ActorCritic,
  type ObservationEncoder,
  type RolloutEnv,
} from '../../../policy/train/ppo.ts';
import { mlpActorCritic } from '../../../policy/train/state_policy.ts';
import { scratchDir } from '../../tmp.ts';

const close = (a: number, b: number, tol = 1e-5): void => assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${a} != ${b}`);

test('GAE matches a hand-computed example with a truncation, a termination and two envs', () => {
  // Env 0 (gamma = lambda = 0.5): step 1 is truncated (its next value is the final observation's,
  // 4, not the reset observation's 0.5), step 3 terminates (its next value, 99, must be ignored).
  // Env 1 runs on; its last step bootstraps from 2.
  const r = computeGae({
    numSteps: 4,
    numEnvs: 2,
    rewards: Float32Array.of(1, 0, 0, 0, 2, 0, 1, 1),
    values: Float32Array.of(0.5, 0, 1, 0, 0.5, 0, 1, 0),
    nextValues: Float32Array.of(1, 0, 4, 0, 1, 0, 99, 2),
    terminated: Uint8Array.of(0, 0, 0, 0, 0, 0, 1, 0),
    ended: Uint8Array.of(0, 0, 1, 0, 0, 0, 1, 0),
    gamma: 0.5,
    lambda: 0.5,
  });
  const env0 = [0, 2, 4, 6].map((k) => r.advantages[k]);
  const env1 = [1, 3, 5, 7].map((k) => r.advantages[k]);
  // By hand: t3: 1 - 1 = 0; t2: 2 + 0.5 - 0.5 = 2 (+ 0.25 * 0); t1: 0 + 2 - 1 = 1 (cut: ended);
  // t0: 1 + 0.5 - 0.5 + 0.25 * 1 = 1.25.
  assert.deepEqual(env0, [1.25, 1, 2, 0]);
  assert.deepEqual([0, 2, 4, 6].map((k) => r.returns[k]), [1.75, 2, 2.5, 1]);
  // Env 1: t3: 1 + 0.5 * 2 = 2; then 0.25 times the step after, back to t0.
  assert.deepEqual(env1, [0.03125, 0.125, 0.5, 2]);
  assert.throws(() => computeGae({ numSteps: 2, numEnvs: 1, rewards: new Float32Array(2), values: new Float32Array(1), nextValues: new Float32Array(2), terminated: new Uint8Array(2), ended: new Uint8Array(2), gamma: 1, lambda: 1 }), /values has 1 entries, expected numSteps \* numEnvs = 2/);
});

test('explained variance: 1 for a perfect critic, 0 for the mean, NaN for constant returns', () => {
  assert.equal(explainedVariance([1, 2, 3], [1, 2, 3]), 1);
  close(explainedVariance([2, 2, 2], [1, 2, 3]), 0);
  assert.ok(Number.isNaN(explainedVariance([1, 2, 3], [1, 1, 1])));
});

test('config: defaults are EvoVLA\'s; errors name the key path and the value', () => {
  const c = parsePpoConfig({});
  assert.equal(c.gamma, 0.995);
  assert.equal(c.gaeLambda, 0.95);
  assert.equal(c.clip, 0.2);
  assert.equal(c.rho, 0.6);
  assert.equal(c.rolloutSteps, 2048);
  assert.throws(() => parsePpoConfig({ clip: -1 }), /ppo\.clip: .*got -1/);
  assert.throws(() => parsePpoConfig({ gamma: 'x' }, 'train.ppo'), /train\.ppo\.gamma: .*got "x"/);
  assert.throws(() => parsePpoConfig({ clipp: 0.1 }), /ppo\.clipp: unknown key \(expected one of: .*clip/);
  assert.throws(() => parsePpoConfig({ rolloutSteps: 32, minibatchSize: 64 }), /ppo\.minibatchSize: 64 is larger than ppo\.rolloutSteps \(32\)/);
});

test('the loss graph computes the clipped surrogate, both value losses, entropy, KL and clip fraction', async () => {
  for (const clipValueLoss of [false, true]) {
    const cfg = parsePpoConfig({ clipValueLoss, lr: 1e-9, warmupSteps: 0 });
    const ac = mlpActorCritic({ featureSize: 3, actionSize: 2, hidden: [8], seed: 3 });
    const rng = new Rng(1);
    const n = 4;
    const features = Float32Array.from({ length: n * 3 }, () => rng.normal());
    const actions = Float32Array.from({ length: n * 2 }, () => rng.normal() * 0.5);
    const runner = await ModelRunner.create(ac.model, { threads: 1 });
    const out = await runner.run({ features: { data: features, shape: [n, 3] } });
    await runner.dispose();
    const mean = out[AC_OUTPUTS.mean].data as Float32Array;
    const logStd = out[AC_OUTPUTS.logStd].data as Float32Array;
    const vExt = out[AC_OUTPUTS.valueExt].data as Float32Array;
    const vInt = out[AC_OUTPUTS.valueInt].data as Float32Array;
    // Old log-probs chosen so the ratios are 0.5, 0.9, 1.1, 1.5: two of four outside [0.8, 1.2].
    const ratios = [0.5, 0.9, 1.1, 1.5];
    const logp = ratios.map((_, i) => gaussianLogDensity(actions.subarray(2 * i, 2 * i + 2), mean.subarray(2 * i, 2 * i + 2), logStd));
    const oldLogProb = Float32Array.from(logp, (l, i) => l - Math.log(ratios[i]));
    const adv = [1, -1, 2, -0.5];
    const retExt = [1, 0, -1, 2];
    const retInt = [0.5, 0.5, 0, -2];
    // Old values far from the new ones, so clipping the value loss changes it.
    const oldExt = Array.from(vExt, (v) => v + 1);
    const oldInt = Array.from(vInt, (v) => v - 1);
    const trainer = await Trainer.create({ model: ac.model, loss: ppoLoss(cfg, 2), optimizer: { lr: cfg.lr }, session: { threads: 1 } });
    const r = await trainer.trainStep({
      features: { data: features, shape: [n, 3] },
      actions: { data: actions, shape: [n, 2] },
      old_log_prob: { data: oldLogProb, shape: [n] },
      advantages: { data: Float32Array.from(adv), shape: [n] },
      returns_ext: { data: Float32Array.from(retExt), shape: [n] },
      returns_int: { data: Float32Array.from(retInt), shape: [n] },
      old_value_ext: { data: Float32Array.from(oldExt), shape: [n] },
      old_value_int: { data: Float32Array.from(oldInt), shape: [n] },
    });
    await trainer.dispose();
    const surrogate = ratios.map((q, i) => Math.min(q * adv[i], Math.min(1.2, Math.max(0.8, q)) * adv[i]));
    const policyLoss = -surrogate.reduce((a, b) => a + b) / n;
    close(policyLoss, -(0.5 - 0.9 + 2.2 - 0.75) / 4);
    close(r.metrics.policy_loss, policyLoss, 1e-4);
    assert.equal(r.metrics.clip_fraction, 0.5);
    close(r.metrics.approx_kl, ratios.reduce((s, q) => s + (q - 1 - Math.log(q)), 0) / n, 1e-4);
    const vloss = (v: Float32Array, ret: number[], old: number[]): number =>
      (0.5 / n) *
      ret.reduce((s, R, i) => {
        const e = (v[i] - R) ** 2;
        if (!clipValueLoss) return s + e;
        const vc = old[i] + Math.max(-0.2, Math.min(0.2, v[i] - old[i]));
        return s + Math.max(e, (vc - R) ** 2);
      }, 0);
    close(r.metrics.value_loss_ext, vloss(vExt, retExt, oldExt), 1e-4);
    close(r.metrics.value_loss_int, vloss(vInt, retInt, oldInt), 1e-4);
    const entropy = Array.from(logStd).reduce((s, l) => s + l + 0.5 * (1 + Math.log(2 * Math.PI)), 0);
    close(r.metrics.entropy, entropy, 1e-5);
    close(r.loss, policyLoss + 0.5 * (r.metrics.value_loss_ext + r.metrics.value_loss_int) - 0.01 * entropy, 1e-4);
  }
});

// ---- Toy environments (plain JS, fast) ----------------------------------------------------------

function fakeInfo(x: number, terms: Record<string, number>, success = false, stage = 0): StepInfo {
  return { state: { x } as never, predicates: {}, stage, success, failure: false, rewardTerms: terms, clampedAction: [], clamped: [] };
}

function fakeStep(x: number, terms: Record<string, number>, terminated: boolean, truncated: boolean, success = false, stage = 0): StepResult {
  return { obs: { proprio: Float32Array.of(x), instruction: '' }, reward: 0, terminated, truncated, info: fakeInfo(x, terms, success, stage) };
}

/** Encoder reading the single proprio value as the feature. */
const scalarEncoder: ObservationEncoder = {
  encode: async (items) => ({ features: Float32Array.from(items, (it) => it.obs.proprio[0]) }),
};

/**
 * Counter env: the observation counts the steps of the episode. Env 0 is cut by a time limit after
 * 3 steps (truncated); env 1 succeeds after 2 (terminated), with extrinsic reward 1.
 */
class CounterEnv implements RolloutEnv {
  readonly numEnvs = 2;
  private t = [0, 0];
  async reset(seeds: number[]): Promise<ResetResult[]> {
    this.t = [0, 0];
    return seeds.map(() => ({ obs: fakeStep(0, {}, false, false).obs, info: fakeInfo(0, {}) }));
  }
  async resetEnvs(seeds: ReadonlyArray<number | null>): Promise<Array<ResetResult | null>> {
    return seeds.map((s, i) => {
      if (s === null) return null;
      this.t[i] = 0;
      return { obs: fakeStep(0, {}, false, false).obs, info: fakeInfo(0, {}) };
    });
  }
  async step(): Promise<{ results: StepResult[] }> {
    this.t = this.t.map((t) => t + 1);
    return {
      results: [fakeStep(this.t[0], { success: 0 }, false, this.t[0] === 3, false, this.t[0]), fakeStep(this.t[1], { success: this.t[1] === 2 ? 1 : 0 }, this.t[1] === 2, false, this.t[1] === 2, 5)],
    };
  }
}

/** value_ext = feature, value_int = 2 * feature, mean = 0: values a test can predict. */
function linearValueActorCritic(): ActorCritic {
  const params = new ParamSet(0);
  const wMean = params.add('head.mean', [1, 1], init.zeros());
  const logStd = params.add('head.log_std', [1], init.constant(-1));
  const wValue = params.add('head.value', [1, 1], init.ones());
  return {
    actionSize: 1,
    inputShapes: { features: [1] },
    model: {
      params,
      forward: (g) => {
        const x = op.reshape(g.input('features', ['B', 1]), [-1, 1]);
        const v = op.reshape(op.matmul(x, g.param(wValue)), [-1]);
        return { action_mean: op.matmul(x, g.param(wMean)), action_log_std: g.param(logStd), value_ext: v, value_int: op.mul(v, 2) };
      },
    },
  };
}

test('rollout: a truncated episode bootstraps from its final observation, a terminated one not at all; auto-reset continues', async () => {
  const ac = linearValueActorCritic();
  const runner = await ModelRunner.create(ac.model, { threads: 1 });
  const cfg = parsePpoConfig({ rolloutSteps: 14, minibatchSize: 2 });
  const ctx = rolloutContext({ config: cfg, env: new CounterEnv(), actorCritic: ac, encoder: scalarEncoder, rewards: envRewardModel(), actionMap: { center: [0], scale: [1] } }, runner);
  const cur = await startEpisodes(ctx);
  const ro = await collectRollout(ctx, cur);
  await runner.dispose();
  const col = (a: ArrayLike<number>, env: number): number[] => Array.from({ length: 7 }, (_, t) => a[t * 2 + env]);
  // Env 0 sees 0,1,2 then (after its truncation at step 3) restarts at 0.
  assert.deepEqual(col(ro.inputs.features, 0), [0, 1, 2, 0, 1, 2, 0]);
  assert.deepEqual(col(ro.ended, 0), [0, 0, 1, 0, 0, 1, 0]);
  assert.deepEqual(col(ro.terminated, 0), [0, 0, 0, 0, 0, 0, 0]);
  // Next values: the following observation's value, and at the cut the final observation's (3),
  // not the reset observation's (0). The last step bootstraps from the current observation (1).
  assert.deepEqual(col(ro.nextValuesExt, 0), [1, 2, 3, 1, 2, 3, 1]);
  assert.deepEqual(col(ro.nextValuesInt, 0), [2, 4, 6, 2, 4, 6, 2]);
  // Env 1 terminates every second step with reward 1; no bootstrap is stored for its end.
  assert.deepEqual(col(ro.terminated, 1), [0, 1, 0, 1, 0, 1, 0]);
  assert.deepEqual(col(ro.rewardsExt, 1), [0, 1, 0, 1, 0, 1, 0]);
  assert.deepEqual(col(ro.nextValuesExt, 1), [1, 0, 1, 0, 1, 0, 1]);
  assert.deepEqual(
    ro.episodes.map((e) => [e.env, e.length, e.success, e.truncated, e.furthestStage]),
    [[1, 2, true, false, 5], [0, 3, false, true, 3], [1, 2, true, false, 5], [0, 3, false, true, 3], [1, 2, true, false, 5]],
  );
  assert.equal(ro.termSums.success, 3);
  assert.equal(new Set(ro.episodes.map((e) => e.seed)).size, ro.episodes.length, 'every episode gets its own seed');
});

test('greedy evaluation runs one episode per seed in waves and counts successes', async () => {
  const seen: number[] = [];
  const rewards = envRewardModel();
  const r = await evaluateGreedy(
    { env: new CounterEnv(), actorCritic: linearValueActorCritic(), encoder: scalarEncoder, rewards: { ...rewards, reset: (env) => void seen.push(env) }, actionMap: { center: [0], scale: [1] } },
    [11, 12, 13],
  );
  // Wave 1: env 0 is cut after 3 steps, env 1 succeeds after 2; wave 2: seed 13 on env 0 alone.
  assert.deepEqual(r.episodes.map((e) => [e.seed, e.length, e.success, e.truncated]), [[11, 3, false, true], [12, 2, true, false], [13, 3, false, true]]);
  assert.equal(r.successes, 1);
  assert.deepEqual(seen, [0, 1, 0, 1]);
});

/**
 * A contextual bandit: each episode shows a target g in [-0.8, 0.8] and ends after one action a,
 * paying -|a - g| on the stream named by `stream`.
 */
class BanditEnv implements RolloutEnv {
  private goals: number[];
  constructor(readonly numEnvs: number, private readonly stream: string) {
    this.goals = new Array(numEnvs).fill(0);
  }
  private start(i: number, seed: number): ResetResult {
    this.goals[i] = new Rng(seed).uniform(-0.8, 0.8);
    return { obs: fakeStep(this.goals[i], {}, false, false).obs, info: fakeInfo(this.goals[i], {}) };
  }
  async reset(seeds: number[]): Promise<ResetResult[]> {
    return seeds.map((s, i) => this.start(i, s));
  }
  async resetEnvs(seeds: ReadonlyArray<number | null>): Promise<Array<ResetResult | null>> {
    return seeds.map((s, i) => (s === null ? null : this.start(i, s)));
  }
  async step(actions: number[][]): Promise<{ results: StepResult[] }> {
    return { results: actions.map((a, i) => fakeStep(0, { [this.stream]: -Math.abs(a[0] - this.goals[i]) }, true, false, Math.abs(a[0] - this.goals[i]) < 0.1)) };
  }
}

/** Mean |mu(g) - g| of the deterministic policy over a grid of targets. */
async function policyError(ac: ActorCritic): Promise<number> {
  const goals = Float32Array.from({ length: 17 }, (_, i) => -0.8 + i * 0.1);
  const runner = await ModelRunner.create(ac.model, { threads: 1 });
  const out = await runner.run({ features: { data: goals, shape: [goals.length, 1] } });
  await runner.dispose();
  const mean = out[AC_OUTPUTS.mean].data as Float32Array;
  return goals.reduce((s, g, i) => s + Math.abs(mean[i] - g), 0) / goals.length;
}

for (const stream of ['ext', 'int'] as const) {
  test(`PPO learns a contextual bandit from the ${stream === 'ext' ? 'extrinsic' : 'intrinsic'} reward stream and logs metrics.jsonl`, async () => {
    const dir = scratchDir('evovla-ppo-');
    const ac = mlpActorCritic({ featureSize: 1, actionSize: 1, hidden: [32, 32], seed: 1 });
    const before = await policyError(ac);
    const config = parsePpoConfig({ totalSteps: 256 * 24, rolloutSteps: 256, minibatchSize: 64, epochs: 8, lr: 3e-3, warmupSteps: 5, rho: stream === 'ext' ? 0 : 1, seed: 7 });
    const rewards = stream === 'ext' ? envRewardModel({ dist: 1 }) : envRewardModel({}, { dist: 1 });
    const metricsPath = join(dir, 'run', 'metrics.jsonl');
    const { iterations } = await trainPpo({ config, env: new BanditEnv(8, 'dist'), actorCritic: ac, encoder: scalarEncoder, rewards, actionMap: { center: [0], scale: [1] }, metricsPath });
    const after = await policyError(ac);
    assert.ok(before > 0.3, `the untrained policy should be far off (${before})`);
    assert.ok(after < 0.12, `PPO should bring the mean action to the target: error ${before.toFixed(3)} -> ${after.toFixed(3)}`);
    const first = iterations[0]['reward/dist'] as number;
    const last = iterations[iterations.length - 1]['reward/dist'] as number;
    assert.ok(last > first + 0.15, `reward should rise: ${first} -> ${last}`);
    const lines = readFileSync(metricsPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(lines.length, 24);
    for (const key of ['iteration', 'env_steps', 'policy_loss', 'value_loss_ext', 'value_loss_int', 'approx_kl', 'clip_fraction', 'entropy', 'explained_variance_ext', 'explained_variance_int', 'success', 'furthest_stage', 'reward/ext', 'reward/int', 'reward/dist', 'grad_norm', 'lr']) {
      assert.ok(key in lines[0], `metrics line lacks ${key}`);
    }
    assert.equal(lines[23].env_steps, 256 * 24);
    assert.equal(lines[0].episodes, 256);
    // The stream that carried the reward is the one whose critic learned (its loss fell); the other
    // saw constant zero returns, where explained variance is undefined (logged as null).
    const other = stream === 'ext' ? 'int' : 'ext';
    assert.equal(lines[23][`explained_variance_${other}`], null);
    assert.ok(lines[23][`value_loss_${stream}`] < lines[0][`value_loss_${stream}`] / 3, `the ${stream} critic's loss should fall`);
    assert.ok(Number.isFinite(lines[23][`explained_variance_${stream}`]));
    // Learning-rate annealing: the last update runs at a small fraction of the peak.
    assert.ok(lines[23].lr < 3e-3 / 10);
  });
}

test('targetKl stops the update after the first epoch whose mean approx KL passes it', async () => {
  for (const targetKl of [null, 1e-12]) {
    const ac = mlpActorCritic({ featureSize: 1, actionSize: 1, hidden: [8], seed: 4 });
    const config = parsePpoConfig({ rolloutSteps: 64, minibatchSize: 16, epochs: 4, lr: 1e-2, warmupSteps: 0, targetKl, seed: 2 });
    const runner = await ModelRunner.create(ac.model, { threads: 1 });
    const ctx = rolloutContext({ config, env: new BanditEnv(4, 'dist'), actorCritic: ac, encoder: scalarEncoder, rewards: envRewardModel({ dist: 1 }), actionMap: { center: [0], scale: [1] } }, runner);
    const ro = await collectRollout(ctx, await startEpisodes(ctx));
    await runner.dispose();
    const trainer = await Trainer.create({ model: ac.model, loss: ppoLoss(config, 1), optimizer: { lr: config.lr }, session: { threads: 1 } });
    const stats = await ppoUpdate(config, trainer, ac, ro, new Rng(0));
    await trainer.dispose();
    // 64 transitions in minibatches of 16: 4 gradient steps per epoch.
    assert.equal(stats.gradient_steps, targetKl === null ? 16 : 4);
    assert.equal(stats.early_stop, targetKl !== null);
  }
});
