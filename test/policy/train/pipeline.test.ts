import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseTrainConfig, type PpoPhaseConfig } from '../../../policy/train/config.ts';
import { defaultPipelineConfig, pipelineSummary } from '../../../policy/train/pipeline.ts';
import { SarPhaseSchema, type SarPhaseConfig } from '../../../policy/train/sar_phase.ts';
import type { TrainSummary } from '../../../policy/train/run.ts';

test('the built-in config is a valid run of demos -> BC -> SAR -> PPO (SAR, POE, memory) -> eval on Stack', () => {
  const cfg = parseTrainConfig(defaultPipelineConfig(), 'built-in config');
  assert.equal(cfg.task, 'stack');
  assert.deepEqual(cfg.phases.map((p) => p.kind), ['bc', 'sar', 'ppo']);
  const ppo = cfg.phases[2] as PpoPhaseConfig;
  assert.deepEqual([ppo.sar, ppo.poe, ppo.memory], [true, true, true]);
  assert.equal(ppo.gamma, 0.995);
  assert.ok(cfg.eval.episodes > 0);
});

test("the built-in config's SAR scorer is the one bench:sar measures (configs/sar.yaml's defaults), not a smaller one PPO can hack", () => {
  const sar = parseTrainConfig(defaultPipelineConfig(), 'built-in config').phases[1] as SarPhaseConfig;
  const measured = SarPhaseSchema.parse({ kind: 'sar' });
  assert.deepEqual(sar.train, measured.train);
  assert.deepEqual(sar.nearMiss, measured.nearMiss);
  assert.deepEqual(sar.model, measured.model);
});

test('the closing summary gives before/after success and hallucination with intervals, the policy and the next commands', () => {
  const e = (successes: number, claims: number, falseClaims: number) => ({
    episodes: 10,
    successes,
    success: { rate: successes / 10, low: 0.01, high: 0.5 },
    furthestStage: 3,
    hallucination: { claims, false: falseClaims, rate: falseClaims / claims, low: 0.1, high: 0.6 },
  });
  const summary: TrainSummary = {
    runDir: '/w/runs/evovla_stack',
    policy: '/w/runs/evovla_stack/policy.onnx',
    parameters: { trunk: 1, head: 1, total: 2 },
    phases: [{ kind: 'bc' }, { kind: 'ppo', envSteps: 16384, seconds: 120, before: e(1, 20, 8), after: e(3, 25, 5) }],
    eval: {
      successes: 2,
      episodes: 16,
      successRate: 0.125,
      ci95: [0.03, 0.36],
      seeds: [1000000, 1000015],
      hallucination: { episodes: 16, completions: 30, hallucinated: 3, rate: 0.1, low: 0.035, high: 0.256, meanEpisodeRate: 0.12, sar: 'sar.onnx' },
    },
    halted: false,
  };
  const text = pipelineSummary(summary, 'stack', '/w').join('\n');
  assert.match(text, /before PPO \(BC\): success 1\/10 = 10\.0% \[95% CI 1\.0%, 50\.0%\], hallucination 40\.0% \[10\.0%, 60\.0%\] of 20 claims/);
  assert.match(text, /after PPO: success 3\/10 = 30\.0%.*hallucination 20\.0%/);
  assert.match(text, /final evaluation: 2\/16 = 12\.5%/);
  assert.match(text, /stage hallucination 10\.0% .*3 of 30 SAR-gate completions/);
  assert.match(text, /policy: runs\/evovla_stack\/policy\.onnx/);
  assert.match(text, /npx evovla view runs\/evovla_stack\/eval_episodes/);
  assert.match(text, /npx evovla deploy --policy runs\/evovla_stack\/policy\.onnx --robot sim --task stack/);
});
