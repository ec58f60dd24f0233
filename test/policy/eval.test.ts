import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { evaluatePolicy, formatEval } from '../../policy/eval.ts';
import { EVAL_SEED_BASE } from '../../policy/train/config.ts';
import { VlaConfigSchema } from '../../policy/vla/config.ts';
import { createVla, exportVla, identityStats } from '../../policy/vla/model.ts';
import { taskTokenizer } from '../../policy/vla/tokenizer.ts';
import { readEpisode, requireIntact } from '../../sim/record/reader.ts';
import { robotSpecFor } from '../../robot/spec.ts';
import { parseSarConfig } from '../../rewards/sar/config.ts';
import { SarNetwork } from '../../rewards/sar/model.ts';
import { sarTokenizer, textLayout, type SarMetadata } from '../../rewards/sar/scorer.ts';
import { saveSar } from '../../rewards/sar/train.ts';
import { vlaPpoModel } from '../../policy/train/vla_ppo.ts';
import { getTask } from '../../tasks/index.ts';
import { scratchDir } from '../tmp.ts';
import { TINY_MODEL } from './helpers.ts';

test('eval: an untrained VLA in worker processes with cameras; Wilson CI, stages, replayable episode files', async () => {
  const dir = scratchDir('evovla-eval-');
  const cfg = VlaConfigSchema.parse(TINY_MODEL);
  const vla = createVla(cfg, taskTokenizer({ maxLength: cfg.maxTokens }), identityStats(), 0);
  const policy = join(dir, 'policy.onnx');
  writeFileSync(policy, exportVla(vla, robotSpecFor('airbot_play')));
  const r = await evaluatePolicy({ policy, task: 'stack', episodes: 3, workers: 2, seed: EVAL_SEED_BASE, maxSteps: 20, record: join(dir, 'ep') });
  assert.equal(r.episodes, 3);
  assert.deepEqual(r.perEpisode.map((e) => e.seed), [EVAL_SEED_BASE, EVAL_SEED_BASE + 1, EVAL_SEED_BASE + 2]);
  assert.equal(r.successes, 0, 'an untrained policy does not stack blocks in 20 steps');
  assert.equal(r.ci95[0], 0);
  assert.ok(r.ci95[1] > 0.4 && r.ci95[1] < 0.8, `Wilson upper bound for 0/3: ${r.ci95[1]}`);
  assert.equal(r.stageCompletion.length, 18);
  for (const e of r.perEpisode) assert.equal(e.steps, 20);
  assert.match(formatEval(r), /0\/3 successful/);
  for (const e of r.perEpisode) {
    const ep = readEpisode(e.file!);
    requireIntact(ep, e.file);
    assert.equal(ep.header.seed, e.seed);
    assert.equal(ep.steps.length, 20);
    assert.deepEqual(Object.keys(ep.steps[0].images ?? {}).sort(), ['eye_arm', 'eye_side']);
    assert.equal(ep.steps[0].images!.eye_side.depth, undefined, 'eval renders RGB only');
  }
});

test('eval refuses a policy file without the contract inputs, naming them', async () => {
  const dir = scratchDir('evovla-eval-bad-');
  const file = join(dir, 'bad.onnx');
  const { tinyPolicyBytes } = await import('../../robot/policies/tiny_mlp.ts');
  writeFileSync(file, tinyPolicyBytes({ metadata: { 'evovla.cameras': JSON.stringify([{ name: 'eye_side', width: 16, height: 16 }]) } }));
  await assert.rejects(evaluatePolicy({ policy: file, task: 'stack', episodes: 1, workers: 0, seed: EVAL_SEED_BASE }), /lists 'eye_side' but there is no input image_eye_side/);
  await assert.rejects(evaluatePolicy({ policy: join(dir, 'missing.onnx'), task: 'stack', episodes: 1, workers: 0, seed: EVAL_SEED_BASE }), /cannot read policy/);
});

/** An untrained SAR scorer for Stack saved as sar.onnx + sar.json (16x16 images, like TINY_MODEL). */
function untrainedSar(dir: string): string {
  const task = getTask('stack');
  const sarCfg = parseSarConfig({ model: { imageSize: 16 } });
  const layout = textLayout(task.stages);
  const tok = sarTokenizer(layout);
  const network = new SarNetwork(sarCfg.model, tok.vocabSize, tok.maxLength);
  const meta: SarMetadata = { format: 'evovla.sar', task: task.id, imageSize: 16, embedDim: sarCfg.model.embedDim, tau: sarCfg.tau, gate: { ...sarCfg.gate }, alpha: sarCfg.alpha, tokenizer: tok.toJSON(), layout, nearMissStates: false };
  return saveSar(dir, { network, meta }).onnx;
}

test('eval with a SAR model: gate claims judged against the ground truth per episode and pooled, SAR stage and marks in the episode files', async () => {
  const dir = scratchDir('evovla-eval-sar-');
  const cfg = VlaConfigSchema.parse(TINY_MODEL);
  const vla = createVla(cfg, taskTokenizer({ maxLength: cfg.maxTokens }), identityStats(), 0);
  const policy = join(dir, 'policy.onnx');
  writeFileSync(policy, exportVla(vla, robotSpecFor('airbot_play')));
  const sar = untrainedSar(join(dir, 'sar'));
  // Window 1 and a tiny threshold: the untrained gate claims a stage on (almost) every step, so
  // there are claims to judge; most are false (the arm has not done the stages).
  const r = await evaluatePolicy({ policy, task: 'stack', episodes: 2, workers: 0, envs: 2, seed: EVAL_SEED_BASE, maxSteps: 12, record: join(dir, 'ep'), sar, sarGate: { window: 1, threshold: 1e-9 } });
  assert.ok(r.hallucination, 'a SAR model gives a hallucination summary');
  const h = r.hallucination!;
  const names = getTask('stack').stages.map((s) => s.name);
  let claims = 0;
  let denied = 0;
  for (const e of r.perEpisode) {
    const ep = readEpisode(e.file!);
    requireIntact(ep, e.file);
    let perEpisodeClaims = 0;
    let perEpisodeDenied = 0;
    let prevSar = 0;
    for (const s of ep.steps) {
      assert.equal(typeof s.sarStage, 'number', 'every recorded step carries the SAR stage');
      assert.ok(s.sarStage! >= prevSar, 'the gate never goes back');
      assert.equal(s.sarStage! - prevSar, s.sarClaims?.length ?? 0, 'the SAR stage advances by the claims of the step');
      prevSar = s.sarStage!;
      for (const c of s.sarClaims ?? []) {
        // The mark is exactly the ground truth's verdict at that step.
        const truth = s.predicates[names[c.stage]] === true || s.stage > c.stage;
        assert.equal(c.hallucinated, !truth, `step ${s.step} claim of stage ${c.stage}`);
        perEpisodeClaims++;
        if (c.hallucinated) perEpisodeDenied++;
      }
    }
    assert.equal(e.hallucination!.completions, perEpisodeClaims);
    assert.equal(e.hallucination!.hallucinated, perEpisodeDenied);
    assert.deepEqual(e.hallucination!.marks.map((m) => m.stage), ep.steps.flatMap((s) => (s.sarClaims ?? []).filter((c) => c.hallucinated).map((c) => c.stage)));
    claims += perEpisodeClaims;
    denied += perEpisodeDenied;
  }
  assert.ok(claims > 0, 'the gate claimed stages');
  assert.equal(h.completions, claims);
  assert.equal(h.hallucinated, denied);
  assert.equal(h.rate, denied / claims);
  assert.ok(h.low <= h.rate && h.rate <= h.high && h.high <= 1);
  assert.match(formatEval(r), /stage hallucination \d+\.\d% \(95% Wilson CI/);
  // A SAR model for another task is refused by name.
  const other = untrainedSar(join(dir, 'sar2'));
  await assert.rejects(evaluatePolicy({ policy, task: 'jujube_cup', episodes: 1, workers: 0, seed: EVAL_SEED_BASE, maxSteps: 2, sar: other }), /trained for task 'stack'/);
});

test('eval keeps the key-frame bank for a policy with memory (as PPO does): actions differ from memoryless play', async () => {
  const dir = scratchDir('evovla-eval-mem-');
  const cfg = VlaConfigSchema.parse(TINY_MODEL);
  const vla = createVla(cfg, taskTokenizer({ maxLength: cfg.maxTokens }), identityStats(), 0);
  const model = vlaPpoModel(vla, 4);
  // A gate bias well above the default makes the memory's effect on the action large enough to see.
  vla.params.get('memory.gate.bias').data.fill(2);
  vla.inference = model.inference;
  const policy = join(dir, 'policy.onnx');
  writeFileSync(policy, exportVla(vla, robotSpecFor('airbot_play'), { 'evovla.inference': JSON.stringify({ mode: 'chunk', execute: 1, ensembleDecay: 0.1 }) }));
  const run = (memory: boolean, out: string) => evaluatePolicy({ policy, task: 'stack', episodes: 1, workers: 0, envs: 1, seed: EVAL_SEED_BASE, maxSteps: 6, record: join(dir, out), memory });
  const withBank = await run(true, 'on');
  const without = await run(false, 'off');
  assert.equal(withBank.memory, true);
  assert.equal(without.memory, false);
  const a = readEpisode(withBank.perEpisode[0].file!).steps.map((st) => st.action);
  const b = readEpisode(without.perEpisode[0].file!).steps.map((st) => st.action);
  // Step 0: the bank holds only the current frame, so the read equals x and h = x: same action.
  assert.ok(a[0].every((v, i) => Math.abs(v - b[0][i]) < 1e-4), 'the first frame fused with itself is the identity');
  // Later the bank holds earlier key frames (at least the pinned first one), so the fused features, hence the actions, change.
  assert.ok(a.slice(1).some((x, t) => x.some((v, i) => Math.abs(v - b[t + 1][i]) > 1e-5)), 'memory changed no action');
});
