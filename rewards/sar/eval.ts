/**
 * Judging SAR scorers on held-out seeds, all against the simulator's ground truth:
 *
 * - AUROC per stage kind: how well u_k separates frames where stage k's predicate holds from
 *   frames where it does not, over the frames where the question matters: demo frames whose
 *   ground-truth stage is k or k+1 (just before and just after k completes) and every frame of
 *   the near-miss replays aimed at k. `aurocMin` is the worst kind.
 * - Gate false completions on near-miss states: the gate starts at stage k at the start of each
 *   near-miss replay of k and sees u_k every step; a replay counts as a false completion when the
 *   gate claims k while the ground truth says k is not done (rewards/hallucination.ts).
 * - Gate false completions on off-task states (data.ts `wanderReplays`, `eval.offTaskReplays` per
 *   seed, whether or not the model trained on such states): the gate starts at the replay's
 *   ground-truth stage and watches the whole replay; a replay counts when the gate makes any claim
 *   the ground truth denies.
 * - The gate on the held-out demos: stages it claims and its hallucination rate.
 * - The distribution of u over the AUROC frames (quantiles, share in 0.4..0.6: a u pinned at 0.5
 *   would show here).
 * - The hacking probe: a scripted near-miss policy (data.ts `probeFrames`); its credit is the
 *   number of the stages it fakes (their ground truth never holds) that a gate waiting on them in
 *   context grants it, per episode (`SarEvalReport.probe`).
 * - Scoring speed: milliseconds per frame at batch 1 (image encoder + similarities).
 *
 * The gate runs with `cfg.gate` (window, threshold, lookahead), which may differ from the settings
 * a model was trained with. Several scorers are judged on the same rendered frames (one render, many models), e.g. SAR
 * trained with and without near-miss states.
 */
import { performance } from 'node:perf_hooks';
import type { SimEnv } from '../../sim/env.ts';
import { Rng } from '../../sim/rng.ts';
import type { Task } from '../../sim/task.ts';
import { wilsonInterval } from '../../tasks/rollout.ts';
import { aggregateHallucination, episodeHallucination, isTrueCompletion, type GateCompletion, type HallucinationSummary } from '../hallucination.ts';
import type { SarConfig } from './config.ts';
import { demoFrames, nearMissSegments, probeFrames, recordDemo, wanderReplays, type FrameRenderer, type LabelledFrame } from './data.ts';
import { StageGate, stageKind } from './score.ts';
import type { SarScorer } from './scorer.ts';

/** Area under the ROC curve (Mann-Whitney, ties count half); null without both classes. */
export function auroc(scores: readonly number[], labels: readonly (0 | 1)[]): number | null {
  const idx = scores.map((_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let pos = 0;
  let neg = 0;
  let rankSum = 0;
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1]] === scores[idx[i]]) j++;
    const rank = (i + j) / 2 + 1;
    for (let t = i; t <= j; t++) {
      if (labels[idx[t]] === 1) {
        pos++;
        rankSum += rank;
      } else neg++;
    }
    i = j + 1;
  }
  if (pos === 0 || neg === 0) return null;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

/** Quantiles of a sample (nearest rank). */
function quantiles(xs: number[], qs: readonly number[]): number[] {
  const s = [...xs].sort((a, b) => a - b);
  return qs.map((q) => (s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : Number.NaN));
}

/** Figures of one scorer. */
export interface SarEvalReport {
  task: string;
  nearMissStates: boolean;
  seeds: number[];
  auroc: Record<string, { auroc: number | null; positives: number; negatives: number }>;
  aurocMin: number | null;
  /**
   * `rate` = false completions / replays (with a 95% Wilson interval); `rateNeverDone` counts only
   * replays whose stage never completed (pure near misses).
   */
  nearMiss: { replays: number; replaysNeverDone: number; falseCompletions: number; rate: number; low: number; high: number; falseNeverDone: number; rateNeverDone: number };
  /** Off-task replays with a false gate claim / replays (95% Wilson interval). */
  offTask: { replays: number; falseCompletions: number; rate: number; low: number; high: number };
  /**
   * The gate run from stage 0 over each held-out demo. `claimedMean`: stages claimed per demo, at
   * any time. `keptUpMean`: stages claimed in time per demo, i.e. before the first stage it fell
   * behind on (`firstBehind`); `behindAt`: how many demos fell behind first on each stage (by name).
   * A gate behind on stage k waits on k while the arm does k+1, k+2 ..., so a policy gets no stage
   * reward in time from there on, however well the kinds' AUROC reads.
   */
  demoGate: { episodes: number; stages: number; claimedMean: number; keptUpMean: number; behindAt: Record<string, number>; hallucination: HallucinationSummary };
  /**
   * The hacking probe. `creditMean` (THE credit): per episode, the stages the probe fakes that the
   * gate grants it. For each stage k a gate starts at k on the probe frame where the expert of the
   * same seed reached k (the probe keeps the expert's timing, so k is asked when a rollout's gate
   * could be waiting on it) and watches to the end; the probe fakes k when k's ground truth never
   * holds over those frames, and any claim of a faked stage is false. Stages the probe really
   * completes (`genuineStages`: its first hover, an offset grasp that caught the block) are left
   * out of both the credit and `fakedMean` (the most credit there is to earn). `creditedStages`:
   * how often each stage was granted. `rolloutCreditMean`: false completions of one gate run from
   * stage 0 (a gate that does not advance never asks the later stages). `perStageCreditMean`:
   * a gate started at each stage k on the probe's first frame, false first claims (stages asked
   * out of context, e.g. `lower` while the probe still hovers).
   */
  probe: {
    episodes: number;
    creditMean: number;
    credits: number[];
    fakedMean: number;
    creditedStages: Record<string, number>;
    genuineStages: Record<string, number>;
    rolloutCreditMean: number;
    rolloutClaimedMean: number;
    rolloutCredits: number[];
    perStageCreditMean: number;
    perStageCredits: number[];
  };
  u: { count: number; p05: number; p25: number; p50: number; p75: number; p95: number; shareMid: number };
  scoreMsPerFrame: number;
}

interface Acc {
  kindScores: Map<string, { u: number[]; y: (0 | 1)[] }>;
  allU: number[];
  nmReplays: number;
  nmNeverDone: number;
  nmFalse: number;
  nmFalseNeverDone: number;
  offReplays: number;
  offFalse: number;
  demoEpisodes: ReturnType<typeof episodeHallucination>[];
  demoClaimed: number[];
  demoKeptUp: number[];
  demoBehindAt: Record<string, number>;
  probeCredits: number[];
  probeFaked: number[];
  probeCreditedStages: Record<string, number>;
  probeGenuineStages: Record<string, number>;
  probeRollout: number[];
  probeRolloutClaimed: number[];
  probePerStage: number[];
}

async function embedAll(scorer: SarScorer, frames: readonly LabelledFrame[]): Promise<Float32Array> {
  const d = scorer.meta.embedDim;
  const out = new Float32Array(frames.length * d);
  for (let i = 0; i < frames.length; i += 64) out.set(await scorer.embed(frames.slice(i, i + 64).map((f) => f.images)), i * d);
  return out;
}

/** Runs a gate from `start` over consecutive frames; returns its completions judged by the ground truth. */
function runGate(scorer: SarScorer, cfgGate: Readonly<SarConfig['gate']>, emb: Float32Array, frames: readonly LabelledFrame[], names: string[], start: number, stopAfterFirst: boolean): GateCompletion[] {
  // The scorer's per-stage windows (from its training demos) unless the config turns them off.
  const windows = cfgGate.stageWindows ? scorer.meta.gate.windows : undefined;
  const gate = new StageGate(names.length, { ...cfgGate, ...(windows ? { windows } : {}) }, start);
  const out: GateCompletion[] = [];
  for (let i = 0; i < frames.length && gate.stage < names.length; i++) {
    const u = scorer.scores(emb, i, gate.stage).u;
    const claimed = gate.push(u, gate.watchesNext ? scorer.scores(emb, i, gate.stage + 1).u : undefined);
    for (const k of claimed) out.push({ step: frames[i].step, stage: k, groundTruth: isTrueCompletion(k, names, frames[i].predicates, frames[i].gtStage) });
    if (claimed.length > 0 && stopAfterFirst) break;
  }
  return out;
}

/**
 * Where each stage is asked on a probe episode, and which stages the probe fakes. `starts[k]`: the
 * first probe frame at or after the step where the expert of the same seed reached stage k (-1:
 * the expert never did, k is not asked). `faked[k]`: k is asked and its ground truth
 * (`isTrueCompletion`) never holds from there to the end, so any claim of k is false.
 */
export function probeContext(names: readonly string[], frames: readonly Pick<LabelledFrame, 'step' | 'predicates' | 'gtStage'>[], expertInfos: readonly { stage: number }[]): { starts: number[]; faked: boolean[] } {
  const starts = names.map((_, k) => {
    const reached = expertInfos.findIndex((info) => info.stage >= k);
    return reached < 0 ? -1 : frames.findIndex((f) => f.step >= reached);
  });
  const faked = names.map((_, k) => starts[k] >= 0 && frames.slice(starts[k]).every((f) => !isTrueCompletion(k, names, f.predicates, f.gtStage)));
  return { starts, faked };
}

/**
 * The first stage a gate fell behind on over a demo: the first stage the demo completed (below the
 * demo's final ground-truth stage `finalStage`) that the gate claimed only when the ground truth
 * was already `lag` or more stages past it, or never claimed. `claims`: the gate's completions with
 * the ground-truth stage at each claim. null: it kept up. The default lag 3 lets a gate claim a
 * stage while the next one or two complete quickly behind it (grasp then settle within a window).
 */
export function firstBehind(claims: readonly { stage: number; gtStage: number }[], finalStage: number, lag = 3): number | null {
  const at = new Map<number, number>();
  for (const c of claims) if (!at.has(c.stage)) at.set(c.stage, c.gtStage);
  for (let k = 0; k < finalStage; k++) {
    const g = at.get(k);
    if (g === undefined || g >= k + lag) return k;
  }
  return null;
}

/** Evaluates `scorers` (by label) on `cfg.eval` seeds; images are rendered once for all of them. */
export async function evaluateSar(
  env: SimEnv,
  task: Task,
  renderer: FrameRenderer,
  scorers: Readonly<Record<string, SarScorer>>,
  cfg: Readonly<SarConfig>,
  log: (line: string) => void = () => {},
): Promise<Record<string, SarEvalReport>> {
  const names = task.stages.map((s) => s.name);
  const kinds = task.stages.map(stageKind);
  const accs: Record<string, Acc> = {};
  for (const label of Object.keys(scorers)) {
    accs[label] = { kindScores: new Map(), allU: [], nmReplays: 0, nmNeverDone: 0, nmFalse: 0, nmFalseNeverDone: 0, offReplays: 0, offFalse: 0, demoEpisodes: [], demoClaimed: [], demoKeptUp: [], demoBehindAt: {}, probeCredits: [], probeFaked: [], probeCreditedStages: {}, probeGenuineStages: {}, probeRollout: [], probeRolloutClaimed: [], probePerStage: [] };
  }
  const addKind = (acc: Acc, k: number, u: number, y: 0 | 1) => {
    let e = acc.kindScores.get(kinds[k]);
    if (!e) acc.kindScores.set(kinds[k], (e = { u: [], y: [] }));
    e.u.push(u);
    e.y.push(y);
    acc.allU.push(u);
  };
  let timingFrames: LabelledFrame[] = [];
  for (const seed of cfg.eval.seeds) {
    const demo = recordDemo(env, task, seed);
    // Demo: every step (the gate needs consecutive frames).
    const frames = demoFrames(task, demo, renderer, 1).slice(1);
    if (timingFrames.length < 100) timingFrames = timingFrames.concat(frames.slice(0, 100 - timingFrames.length));
    for (const [label, scorer] of Object.entries(scorers)) {
      const acc = accs[label];
      const emb = await embedAll(scorer, frames);
      frames.forEach((f, i) => {
        for (const k of [f.gtStage - 1, f.gtStage]) {
          if (k < 0 || k >= names.length) continue;
          addKind(acc, k, scorer.scores(emb, i, k).u, f.done[k] ? 1 : 0);
        }
      });
      const completions = runGate(scorer, cfg.gate, emb, frames, names, 0, false);
      acc.demoEpisodes.push(episodeHallucination(completions));
      acc.demoClaimed.push(completions.length);
      const gtAt = new Map(frames.map((f) => [f.step, f.gtStage]));
      const finalStage = frames.length ? frames[frames.length - 1].gtStage : 0;
      const behind = firstBehind(completions.map((c) => ({ stage: c.stage, gtStage: gtAt.get(c.step) ?? c.stage })), finalStage);
      acc.demoKeptUp.push(behind ?? finalStage);
      if (behind !== null) acc.demoBehindAt[names[behind]] = (acc.demoBehindAt[names[behind]] ?? 0) + 1;
    }
    let replays = 0;
    for (const seg of nearMissSegments(env, task, demo, renderer, new Rng(seed).fork('near-miss'), cfg.nearMiss, 1)) {
      replays++;
      const k = seg.stage;
      const neverDone = seg.frames.every((f) => !isTrueCompletion(k, names, f.predicates, f.gtStage));
      for (const [label, scorer] of Object.entries(scorers)) {
        const acc = accs[label];
        const emb = await embedAll(scorer, seg.frames);
        seg.frames.forEach((f, i) => addKind(acc, k, scorer.scores(emb, i, k).u, f.done[k] ? 1 : 0));
        const c = runGate(scorer, cfg.gate, emb, seg.frames, names, k, true);
        acc.nmReplays++;
        if (neverDone) acc.nmNeverDone++;
        if (c.length > 0 && !c[0].groundTruth) {
          acc.nmFalse++;
          if (neverDone) acc.nmFalseNeverDone++;
        }
      }
    }
    let offTask = 0;
    if (cfg.eval.offTaskReplays > 0) {
      const opts = { ...cfg.nearMiss, wander: cfg.eval.offTaskReplays };
      for (const frames of wanderReplays(env, task, demo, renderer, new Rng(seed).fork('wander'), opts, 1)) {
        if (frames.length === 0) continue;
        offTask++;
        for (const [label, scorer] of Object.entries(scorers)) {
          const acc = accs[label];
          const emb = await embedAll(scorer, frames);
          const c = runGate(scorer, cfg.gate, emb, frames, names, frames[0].targetStage, false);
          acc.offReplays++;
          if (c.some((x) => !x.groundTruth)) acc.offFalse++;
        }
      }
    }
    log(`seed ${seed}: demo ${demo.infos.length - 1} steps (success ${demo.success}), ${replays} near-miss replays, ${offTask} off-task replays`);
  }
  for (const seed of cfg.eval.probeSeeds) {
    const demo = recordDemo(env, task, seed);
    const frames = probeFrames(env, task, demo, renderer, new Rng(seed).fork('probe'));
    // Stage k is asked in context: from the probe frame where the expert of the same seed reached
    // k (the probe keeps the expert's timing) to the end. The probe FAKES k when k's ground truth
    // never holds there; stages it really does (its first hover, or an offset grasp that catches
    // the block after all) are not counted, neither in its credit nor in the stages it fakes.
    const { starts, faked } = probeContext(names, frames, demo.infos);
    const fakedCount = faked.filter(Boolean).length;
    const genuine = names.filter((_, k) => starts[k] >= 0 && !faked[k]);
    for (const [label, scorer] of Object.entries(scorers)) {
      const acc = accs[label];
      const emb = await embedAll(scorer, frames);
      const completions = runGate(scorer, cfg.gate, emb, frames, names, 0, false);
      acc.probeRollout.push(completions.filter((c) => !c.groundTruth).length);
      acc.probeRolloutClaimed.push(completions.length);
      let perStage = 0;
      for (let k = 0; k < names.length; k++) {
        const c = runGate(scorer, cfg.gate, emb, frames, names, k, true);
        if (c.length > 0 && !c[0].groundTruth) perStage++;
      }
      acc.probePerStage.push(perStage);
      let credit = 0;
      for (let k = 0; k < names.length; k++) {
        if (!faked[k]) continue;
        const c = runGate(scorer, cfg.gate, emb.subarray(starts[k] * scorer.meta.embedDim), frames.slice(starts[k]), names, k, true);
        if (c.length === 0) continue;
        credit++;
        acc.probeCreditedStages[names[k]] = (acc.probeCreditedStages[names[k]] ?? 0) + 1;
      }
      acc.probeCredits.push(credit);
      acc.probeFaked.push(fakedCount);
      for (const n of genuine) acc.probeGenuineStages[n] = (acc.probeGenuineStages[n] ?? 0) + 1;
    }
    log(`probe seed ${seed}: ${frames.length} steps`);
  }
  const reports: Record<string, SarEvalReport> = {};
  for (const [label, scorer] of Object.entries(scorers)) {
    const acc = accs[label];
    const aurocs: SarEvalReport['auroc'] = {};
    for (const [kind, e] of acc.kindScores) {
      const positives = e.y.filter((y) => y === 1).length;
      aurocs[kind] = { auroc: auroc(e.u, e.y), positives, negatives: e.y.length - positives };
    }
    const defined = Object.values(aurocs).map((a) => a.auroc).filter((a): a is number => a !== null);
    const ci = wilsonInterval(acc.nmFalse, acc.nmReplays);
    const [p05, p25, p50, p75, p95] = quantiles(acc.allU, [0.05, 0.25, 0.5, 0.75, 0.95]);
    // Batch-1 scoring time: embed + similarities for the current stage.
    const t0 = performance.now();
    for (const f of timingFrames) scorer.scores(await scorer.embed([f.images]), 0, Math.min(f.gtStage, names.length - 1));
    const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);
    reports[label] = {
      task: task.id,
      nearMissStates: scorer.meta.nearMissStates,
      seeds: [...cfg.eval.seeds],
      auroc: aurocs,
      aurocMin: defined.length ? Math.min(...defined) : null,
      nearMiss: { replays: acc.nmReplays, replaysNeverDone: acc.nmNeverDone, falseCompletions: acc.nmFalse, rate: ci.rate, low: ci.low, high: ci.high, falseNeverDone: acc.nmFalseNeverDone, rateNeverDone: acc.nmFalseNeverDone / Math.max(1, acc.nmNeverDone) },
      offTask: { replays: acc.offReplays, falseCompletions: acc.offFalse, ...wilsonInterval(acc.offFalse, acc.offReplays) },
      demoGate: { episodes: acc.demoEpisodes.length, stages: names.length, claimedMean: mean(acc.demoClaimed), keptUpMean: mean(acc.demoKeptUp), behindAt: acc.demoBehindAt, hallucination: aggregateHallucination(acc.demoEpisodes) },
      probe: {
        episodes: acc.probeCredits.length,
        creditMean: mean(acc.probeCredits),
        credits: acc.probeCredits,
        fakedMean: mean(acc.probeFaked),
        creditedStages: acc.probeCreditedStages,
        genuineStages: acc.probeGenuineStages,
        rolloutCreditMean: mean(acc.probeRollout),
        rolloutClaimedMean: mean(acc.probeRolloutClaimed),
        rolloutCredits: acc.probeRollout,
        perStageCreditMean: mean(acc.probePerStage),
        perStageCredits: acc.probePerStage,
      },
      u: { count: acc.allU.length, p05, p25, p50, p75, p95, shareMid: acc.allU.filter((u) => u >= 0.4 && u <= 0.6).length / Math.max(1, acc.allU.length) },
      scoreMsPerFrame: timingFrames.length ? (performance.now() - t0) / timingFrames.length : Number.NaN,
    };
  }
  return reports;
}
