/**
 * The stage-aligned reward's figures per task: renders the training frames once, trains the SAR
 * scorer with and without near-miss states on them, judges both on the same held-out seeds
 * (rewards/sar/eval.ts) and prints one JSON line per task:
 *   task, auroc_min (worst stage kind, model with near-miss states), near_miss_false_completion
 *   (share of near-miss replays where the gate claimed the stage falsely), the hacking probe's
 *   credit without and with near-miss states (per episode, the stages the probe fakes that a gate
 *   waiting on them in context grants; eval.ts `SarEvalReport.probe`) and their ratio (target
 *   <= 0.2), score_ms_per_frame (batch 1), the probe's rollout and out-of-context credits,
 *   off_task_false_completion (share of off-task replays with a false gate claim),
 *   demo_gate_kept_up (stages the gate claimed in time on a held-out demo, eval.ts `firstBehind`)
 *   with demo_gate_behind_at (the stage it first fell behind on, by name), load1,
 *   and the same figures of the ablation under `without`.
 * `--lookahead 1`: judge with the gate's one-stage lookahead (rewards/sar/score.ts).
 * `--eval-only`: load DIR/<task>/{with,without}/sar.onnx instead of training (re-judge saved models).
 * `--train-variants with`: train only the variants named, load the others from DIR/<task>/ (the model
 *   without near-miss states does not depend on the near-miss settings: its rows skip those frames).
 * Usage: npm run bench:sar -- [--tasks stack,jujube_cup,block_bridge] [--config FILE] [--steps N]
 *        [--train-seeds 0,1,2] [--eval-seeds 100,101] [--probe-seeds 200] [--out DIR]
 * Models are written to DIR/<task>/{with,without}/ (default runs/bench_sar).
 * This is a learning run: minutes per task on a 2-core machine (Block Bridge's 74 stages most).
 */
import { loadavg } from 'node:os';
import { writeFileAtomic } from '../nn/model.ts';
import { loadSarConfig, parseSarConfig, type SarConfig } from '../rewards/sar/config.ts';
import { trainingFrames } from '../rewards/sar/data.ts';
import { evaluateSar } from '../rewards/sar/eval.ts';
import { SarScorer } from '../rewards/sar/scorer.ts';
import { saveSar, trainSar } from '../rewards/sar/train.ts';
import { createEnv } from '../sim/env.ts';
import { Rng } from '../sim/rng.ts';
import { getTask } from '../tasks/index.ts';
import { createSarRenderer } from '../policy/train/sar_phase.ts';

const args = new Map<string, string>();
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i].replace(/^--/, '');
  if (a.includes('=')) args.set(a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1));
  else if (argv[i + 1] === undefined || argv[i + 1].startsWith('--')) args.set(a, 'true');
  else args.set(a, argv[++i]);
}
const list = (k: string): number[] | undefined => (args.has(k) ? args.get(k)!.split(',').map(Number) : undefined);
const tasks = (args.get('tasks') ?? 'stack,jujube_cup,block_bridge').split(',');
const outRoot = args.get('out') ?? 'runs/bench_sar';
const base = structuredClone(args.has('config') ? loadSarConfig(args.get('config')!) : parseSarConfig({})) as SarConfig;
if (args.has('steps')) base.train.steps = Number(args.get('steps'));
if (args.has('lookahead')) base.gate.lookahead = Number(args.get('lookahead')) as 0 | 1;
base.train.seeds = list('train-seeds') ?? base.train.seeds;
base.eval.seeds = list('eval-seeds') ?? base.eval.seeds;
base.eval.probeSeeds = list('probe-seeds') ?? base.eval.probeSeeds;
const cfg = parseSarConfig(base, 'bench:sar');

for (const id of tasks) {
  const task = getTask(id);
  const log = (l: string) => console.error(`[bench:sar ${id}] ${l}`);
  const env = await createEnv(task);
  const renderer = await createSarRenderer(task, cfg.model.imageSize);
  try {
    const evalOnly = args.has('eval-only');
    const trainVariants = (args.get('train-variants') ?? 'with,without').split(',');
    for (const v of trainVariants) if (v !== 'with' && v !== 'without') throw new Error(`--train-variants: expected 'with' and/or 'without', got '${v}'`);
    const frames = evalOnly ? [] : trainingFrames(env, task, renderer, cfg, new Rng(cfg.train.seed).fork('near-miss'), log);
    const scorers: Record<string, SarScorer> = {};
    const trainSeconds: Record<string, number> = {};
    for (const variant of ['with', 'without'] as const) {
      if (evalOnly || !trainVariants.includes(variant)) {
        scorers[variant] = await SarScorer.load(`${outRoot}/${id}/${variant}/sar.onnx`);
        continue;
      }
      const vcfg = parseSarConfig({ ...structuredClone(cfg), train: { ...cfg.train, nearMissStates: variant === 'with' } }, 'bench:sar');
      const result = await trainSar(task, frames, vcfg, (l) => log(`${variant}: ${l}`));
      trainSeconds[variant] = Math.round(result.seconds);
      const files = saveSar(`${outRoot}/${id}/${variant}`, result);
      scorers[variant] = await SarScorer.load(files.onnx);
    }
    const reports = await evaluateSar(env, task, renderer, scorers, cfg, log);
    for (const [variant, r] of Object.entries(reports)) {
      writeFileAtomic(`${outRoot}/${id}/${variant}/eval_report.json`, new TextEncoder().encode(`${JSON.stringify(r, null, 1)}\n`));
    }
    const w = reports.with;
    const wo = reports.without;
    console.log(
      JSON.stringify({
        task: id,
        auroc_min: w.aurocMin,
        near_miss_false_completion: w.nearMiss.rate,
        hack_credit_without_near_miss_states: wo.probe.creditMean,
        hack_credit_with_near_miss_states: w.probe.creditMean,
        score_ms_per_frame: Number(w.scoreMsPerFrame.toFixed(3)),
        hack_credit_ratio: wo.probe.creditMean > 0 ? Number((w.probe.creditMean / wo.probe.creditMean).toFixed(3)) : null,
        hack_faked_stages: w.probe.fakedMean,
        hack_credited_stages_with: w.probe.creditedStages,
        hack_credited_stages_without: wo.probe.creditedStages,
        hack_rollout_credit_without: wo.probe.rolloutCreditMean,
        hack_rollout_credit_with: w.probe.rolloutCreditMean,
        hack_per_stage_credit_without: wo.probe.perStageCreditMean,
        hack_per_stage_credit_with: w.probe.perStageCreditMean,
        near_miss_false_completion_never_done: w.nearMiss.rateNeverDone,
        off_task_false_completion: w.offTask.rate,
        off_task_replays: w.offTask.replays,
        demo_gate_stages_claimed: w.demoGate.claimedMean,
        demo_gate_kept_up: w.demoGate.keptUpMean,
        demo_gate_behind_at: w.demoGate.behindAt,
        demo_gate_hallucination: w.demoGate.hallucination.rate,
        u_share_0_4_to_0_6: Number(w.u.shareMid.toFixed(3)),
        without: { auroc_min: wo.aurocMin, near_miss_false_completion: wo.nearMiss.rate, off_task_false_completion: wo.offTask.rate, demo_gate_stages_claimed: wo.demoGate.claimedMean, demo_gate_kept_up: wo.demoGate.keptUpMean },
        gate: cfg.gate,
        stages: task.stages.length,
        train_seeds: cfg.train.seeds,
        eval_seeds: cfg.eval.seeds,
        probe_seeds: cfg.eval.probeSeeds,
        steps: cfg.train.steps,
        frames: frames.length,
        train_seconds: trainSeconds,
        load1: Number(loadavg()[0].toFixed(2)),
      }),
    );
    for (const s of Object.values(scorers)) await s.dispose();
  } finally {
    renderer.dispose();
    env.free();
  }
}
