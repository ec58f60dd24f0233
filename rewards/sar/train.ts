/**
 * Training the SAR scorer with the triplet loss (nn/losses.ts tripletMargin, cosine distance): the
 * image embedding (anchor) must be closer to the text that is true of the frame than to a text
 * that is not, by `margin`.
 *
 * Rows (frame, stage k, label = stage k's ground-truth predicate in that frame):
 * - demo frames, for the stages around the frame's ground-truth stage (k in gt-2 .. gt+1), every
 *   earlier stage whose predicate still holds (a gate that lags the ground truth must still see
 *   them done: a reach holds for ~35 steps while the grasp and settle go by in a few), and one
 *   random stage: label 1 -> positive T+_k, negative one of {T-_k, a near-miss text of k, the
 *   positive text of a stage not done in this frame}; label 0 -> positive T-_k, negative T+_k;
 * - near-miss states (config `train.nearMissStates`), for the stage they perturb: label 0 ->
 *   positive T-_k or one of k's near-miss texts, negative T+_k (the hard negative: a frame that
 *   looks almost done must score below T+_k); label 1 (the perturbation did not prevent
 *   completion) as a demo row. Empty-handed frames (data.ts `emptyHandedFrames`) give a second
 *   row, for a random earlier stage from their `contextFrom` (a gate stuck on the lift must not
 *   fire while the empty hand carries, lowers and opens), and a third for one of their
 *   `expertOnly` stages (up to `train.expertOnlyRows` of them, distinct): done in the expert's frame of the same step, not here (the hand hovers
 *   over the next object as the expert's does, but the last object was never placed). Off-task
 *   frames (data.ts `wanderFrames`) give a row for their ground-truth stage and one for a random
 *   stage, drawn with the near-miss rows (their negatives take T-_k as the positive text: an off-task
 *   frame is not a near miss). A share
 *   `train.nearMissShare` (default 0.4) of each batch is drawn from these rows when there are any.
 * - class balance (`train.balance`): demo rows are drawn by (stage, label) bucket, each bucket
 *   equally likely, so a stage whose predicate holds in few frames (or never fails) weighs as much
 *   as the others and its done frames as much as its not-done ones. Without it a brief stage's few
 *   positives were swamped and its u_k stayed below the gate's threshold (the gate stalled there).
 *
 * Loss and settings are in configs/sar.yaml; the run is seeded (weights, batch sampling).
 */
import { tripletMargin } from '../../nn/losses.ts';
import { saveInference, writeFileAtomic } from '../../nn/model.ts';
import * as op from '../../nn/ops.ts';
import type { HostTensor } from '../../nn/runtime.ts';
import { Trainer } from '../../nn/trainer.ts';
import { Rng } from '../../sim/rng.ts';
import type { Task } from '../../sim/task.ts';
import type { SarConfig } from './config.ts';
import type { LabelledFrame } from './data.ts';
import { SarNetwork } from './model.ts';
import { sarTokenizer, textLayout, toChw, type SarMetadata, type TextLayout } from './scorer.ts';

/** One training row: a frame, a stage, and the text pair. */
interface Row {
  frame: number;
  stage: number;
  label: 0 | 1;
  nearMiss: boolean;
  /** An off-task frame: its negatives are not near misses, so it never takes a near-miss text as its positive. */
  offTask?: boolean;
}

/** Rows of the training set (see the file comment). */
export function buildRows(frames: readonly LabelledFrame[], stages: number, rng: Rng, useNearMiss: boolean, expertOnlyRows = 1, emptyHandedContext: SarConfig['train']['emptyHandedContext'] = 'round'): Row[] {
  const rows: Row[] = [];
  frames.forEach((f, i) => {
    if (f.source === 'near_miss') {
      if (!useNearMiss) return;
      // Off-task frames: the stage a gate keeping pace with the truth asks, and any stage (a gate
      // can be waiting on any of them when a learner wanders off).
      if (f.perturbation === 'wander') {
        const other = rng.int(stages);
        for (const k of new Set([f.targetStage, other])) rows.push({ frame: i, stage: k, label: f.done[k] ? 1 : 0, nearMiss: true, offTask: true });
        return;
      }
      rows.push({ frame: i, stage: f.targetStage, label: f.done[f.targetStage] ? 1 : 0, nearMiss: true });
      // Empty-handed frames: also one earlier stage a stuck gate could be waiting on here, and
      // one the expert had done at this step while the ground truth here says not (the demo rows
      // of that step teach "done" for the same arm pose).
      if (f.contextFrom !== undefined && f.contextFrom < f.targetStage) {
        const k = f.contextFrom + rng.int(f.targetStage - f.contextFrom);
        rows.push({ frame: i, stage: k, label: f.done[k] ? 1 : 0, nearMiss: true });
      }
      // 'all': one more, a stage of an earlier round (a gate stuck on an earlier object's grasp
      // watches this round's empty hand too).
      if (emptyHandedContext === 'all' && f.contextFrom !== undefined && f.contextFrom > 0) {
        const k = rng.int(f.contextFrom);
        rows.push({ frame: i, stage: k, label: f.done[k] ? 1 : 0, nearMiss: true });
      }
      if (f.expertOnly && f.expertOnly.length > 0) {
        const pool = [...f.expertOnly];
        for (let r = 0; r < expertOnlyRows && pool.length > 0; r++) {
          const k = pool.splice(rng.int(pool.length), 1)[0];
          rows.push({ frame: i, stage: k, label: 0, nearMiss: true });
        }
      }
      return;
    }
    const ks = new Set<number>();
    for (let k = f.gtStage - 2; k <= f.gtStage + 1; k++) if (k >= 0 && k < stages) ks.add(k);
    for (let k = 0; k < Math.min(f.gtStage, stages); k++) if (f.done[k]) ks.add(k);
    ks.add(rng.int(stages));
    for (const k of ks) rows.push({ frame: i, stage: k, label: f.done[k] ? 1 : 0, nearMiss: false });
  });
  return rows;
}

/** The (positive, negative) text indices of a row. */
function textPair(row: Row, frame: LabelledFrame, layout: TextLayout, rng: Rng): [number, number] {
  const st = layout.stages[row.stage];
  const pickNear = () => st.nearMisses[rng.int(st.nearMisses.length)];
  if (row.label === 1) {
    const choice = rng.int(3);
    if (choice === 0) return [st.positive, st.negative];
    if (choice === 1) return [st.positive, pickNear()];
    const notDone = layout.stages.map((_, j) => j).filter((j) => !frame.done[j]);
    return [st.positive, notDone.length ? layout.stages[notDone[rng.int(notDone.length)]].positive : st.negative];
  }
  if (row.nearMiss && !row.offTask && rng.next() < 0.5) return [pickNear(), st.positive];
  return [st.negative, st.positive];
}

/** What `trainSar` returns. */
export interface SarTrainResult {
  network: SarNetwork;
  meta: SarMetadata;
  /** Loss every 50 steps (and the last). */
  history: { step: number; loss: number }[];
  rows: { demo: number; nearMiss: number };
  seconds: number;
}

/** Trains a SAR scorer for `task` on labelled frames. */
export async function trainSar(task: Task, frames: readonly LabelledFrame[], cfg: Readonly<SarConfig>, log: (line: string) => void = () => {}): Promise<SarTrainResult> {
  const t0 = performance.now();
  const layout = textLayout(task.stages);
  const tokenizer = sarTokenizer(layout);
  const net = new SarNetwork(cfg.model, tokenizer.vocabSize, tokenizer.maxLength);
  const rng = new Rng(cfg.train.seed);
  const rows = buildRows(frames, task.stages.length, rng.fork('rows'), cfg.train.nearMissStates, cfg.train.expertOnlyRows, cfg.train.emptyHandedContext);
  const demoRows = rows.filter((r) => !r.nearMiss);
  const nearRows = rows.filter((r) => r.nearMiss);
  if (demoRows.length === 0) throw new Error(`trainSar: no demo frames for task '${task.id}'`);
  const buckets = new Map<string, Row[]>();
  for (const r of demoRows) {
    const key = `${r.stage}:${r.label}`;
    let b = buckets.get(key);
    if (!b) buckets.set(key, (b = []));
    b.push(r);
  }
  const bucketList = [...buckets.values()];
  const drawDemo = (): Row => {
    if (!cfg.train.balance) return demoRows[rng.int(demoRows.length)];
    const b = bucketList[rng.int(bucketList.length)];
    return b[rng.int(b.length)];
  };
  const T = layout.texts.length;
  const trainer = await Trainer.create({
    model: {
      params: net.params,
      forward: (g) => {
        const { side, arm } = net.imageInputs(g);
        const { ids, mask } = net.textInputs(g, T);
        return { image: net.image(side, arm), text: net.text(ids, mask) };
      },
    },
    loss: (g, out) => {
      const pos = op.gather(out.text, g.input('positive_text', ['B'], 'int64'));
      const neg = op.gather(out.text, g.input('negative_text', ['B'], 'int64'));
      return { loss: tripletMargin(out.image, pos, neg, cfg.train.margin, 'cosine') };
    },
    optimizer: { lr: cfg.train.lr, weightDecay: cfg.train.weightDecay, warmupSteps: 50, clipNorm: 1 },
    session: { threads: cfg.train.threads },
  });
  const enc = tokenizer.encode(layout.texts);
  const textIds: HostTensor = { data: enc.ids, shape: enc.shape };
  const textMask: HostTensor = { data: enc.mask, shape: enc.shape };
  const size = cfg.model.imageSize;
  const per = 3 * size * size;
  const B = cfg.train.batch;
  const side = new Float32Array(B * per);
  const arm = new Float32Array(B * per);
  const posIdx = new BigInt64Array(B);
  const negIdx = new BigInt64Array(B);
  const history: SarTrainResult['history'] = [];
  let avg = 0;
  try {
    for (let step = 1; step <= cfg.train.steps; step++) {
      for (let b = 0; b < B; b++) {
        const row = nearRows.length > 0 && rng.next() < cfg.train.nearMissShare ? nearRows[rng.int(nearRows.length)] : drawDemo();
        const f = frames[row.frame];
        toChw(f.images.eye_side, size, side, b * per);
        toChw(f.images.eye_arm, size, arm, b * per);
        const [p, n] = textPair(row, f, layout, rng);
        posIdx[b] = BigInt(p);
        negIdx[b] = BigInt(n);
      }
      const r = await trainer.trainStep({
        image_eye_side: { data: side, shape: [B, 3, size, size] },
        image_eye_arm: { data: arm, shape: [B, 3, size, size] },
        text_ids: textIds,
        text_mask: textMask,
        positive_text: { data: posIdx, shape: [B] },
        negative_text: { data: negIdx, shape: [B] },
      });
      avg = step === 1 ? r.loss : 0.95 * avg + 0.05 * r.loss;
      if (step % 50 === 0 || step === cfg.train.steps) {
        history.push({ step, loss: avg });
        log(`step ${step}/${cfg.train.steps} triplet loss ${avg.toFixed(4)}`);
      }
    }
  } finally {
    await trainer.dispose();
  }
  const meta: SarMetadata = {
    format: 'evovla.sar',
    task: task.id,
    imageSize: size,
    embedDim: cfg.model.embedDim,
    tau: cfg.tau,
    gate: { ...cfg.gate, ...(cfg.gate.stageWindows ? { windows: stageWindows(frames, task.stages.length, cfg.train.frameStride, cfg.gate.window) } : {}) },
    alpha: cfg.alpha,
    tokenizer: tokenizer.toJSON(),
    layout,
    nearMissStates: cfg.train.nearMissStates,
  };
  return { network: net, meta, history, rows: { demo: demoRows.length, nearMiss: nearRows.length }, seconds: (performance.now() - t0) / 1000 };
}

/**
 * Per-stage gate windows from the demo frames: for stage k, the median over the demos of how long
 * (in control steps) its predicate first holds without a break, halved, clamped to 2..`cap`. The
 * gate averages u_k over the window, so a window longer than the evidence lasts can never pass
 * (the reach of a block holds ~7 steps before the fingers close); half leaves room for the
 * scorer's first frames of a stage, which score lower. A stage never seen done gets `cap`.
 */
export function stageWindows(frames: readonly LabelledFrame[], stages: number, stride: number, cap: number): number[] {
  const bySeed = new Map<number, LabelledFrame[]>();
  for (const f of frames) {
    if (f.source !== 'demo') continue;
    let list = bySeed.get(f.seed);
    if (!list) bySeed.set(f.seed, (list = []));
    list.push(f);
  }
  const out: number[] = [];
  for (let k = 0; k < stages; k++) {
    const runs: number[] = [];
    for (const list of bySeed.values()) {
      const sorted = [...list].sort((a, b) => a.step - b.step);
      const first = sorted.findIndex((f) => f.done[k] === 1);
      if (first < 0) continue;
      let last = first;
      while (last + 1 < sorted.length && sorted[last + 1].done[k] === 1) last++;
      runs.push(sorted[last].step - sorted[first].step + stride);
    }
    if (runs.length === 0) {
      out.push(cap);
      continue;
    }
    runs.sort((a, b) => a - b);
    const median = runs[Math.floor(runs.length / 2)];
    out.push(Math.max(2, Math.min(cap, Math.floor(median / 2))));
  }
  return out;
}

/** Writes `dir/sar.onnx` (self-contained) and `dir/sar.json` (tokenizer, texts, settings), atomically. */
export function saveSar(dir: string, result: Pick<SarTrainResult, 'network' | 'meta'>): { onnx: string; json: string } {
  const onnx = `${dir}/sar.onnx`;
  const json = `${dir}/sar.json`;
  saveInference(result.network.inference(), onnx, { task: result.meta.task, tau: String(result.meta.tau), format: 'evovla.sar' });
  writeFileAtomic(json, new TextEncoder().encode(`${JSON.stringify(result.meta, null, 1)}\n`));
  return { onnx, json };
}
