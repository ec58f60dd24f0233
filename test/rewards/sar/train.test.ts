import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../../sim/config.ts';
import { Rng } from '../../../sim/rng.ts';
import type { Task } from '../../../sim/task.ts';
import { parseSarConfig } from '../../../rewards/sar/config.ts';
import type { LabelledFrame } from '../../../rewards/sar/data.ts';
import { auroc, probeContext } from '../../../rewards/sar/eval.ts';
import { SarScorer } from '../../../rewards/sar/scorer.ts';
import { SarRewarder } from '../../../rewards/sar/online.ts';
import type { StepInfo } from '../../../sim/types.ts';
import { buildRows, saveSar, stageWindows, trainSar } from '../../../rewards/sar/train.ts';
import { scratchDir } from '../../tmp.ts';

const SIZE = 16;
const stages = [
  { name: 'grasp_block', object: 'block', texts: { positive: 'the fingers hold the block', negative: 'the gripper is open and empty', nearMisses: ['the fingers touch the block but do not hold it', 'the fingers closed on empty air'] } },
  { name: 'lift_block', object: 'block', texts: { positive: 'the block is lifted above the table', negative: 'the block rests on the table', nearMisses: ['the gripper rises but the block stays behind', 'the block is only just off the table'] } },
];
const task = { id: 'toy', stages } as unknown as Task;

/** A frame whose side image shows a bright square when stage 0 is done, and whose arm image shows one when stage 1 is. */
function frame(rng: Rng, done0: boolean, done1: boolean, source: LabelledFrame['source'] = 'demo', nearMissLook = false): LabelledFrame {
  const img = (on: boolean, shifted: boolean) => {
    const a = new Uint8Array(SIZE * SIZE * 3);
    for (let i = 0; i < a.length; i++) a[i] = 90 + rng.int(30);
    if (on || shifted) {
      const x0 = shifted ? 9 : 2;
      for (let y = 2; y < 7; y++) for (let x = x0; x < x0 + 5; x++) for (let c = 0; c < 3; c++) a[(y * SIZE + x) * 3 + c] = c === 0 ? 240 : 40;
    }
    return a;
  };
  const done = Uint8Array.from([done0 ? 1 : 0, done1 ? 1 : 0]);
  return {
    images: { eye_side: img(done0, nearMissLook && !done0), eye_arm: img(done1, false) },
    done,
    gtStage: done0 ? (done1 ? 2 : 1) : 0,
    predicates: { grasp_block: done0, lift_block: done1 },
    seed: 0,
    step: 0,
    source,
    targetStage: source === 'near_miss' ? 0 : -1,
    perturbation: source === 'near_miss' ? 'offset' : 'none',
  };
}

function dataset(rng: Rng, n: number): LabelledFrame[] {
  const out: LabelledFrame[] = [];
  for (let i = 0; i < n; i++) {
    const d0 = rng.next() < 0.5;
    out.push(frame(rng, d0, d0 && rng.next() < 0.5));
  }
  // Near misses: the square drawn in the wrong place, stage 0 not done.
  for (let i = 0; i < n / 4; i++) out.push(frame(rng, false, false, 'near_miss', true));
  return out;
}

const cfg = parseSarConfig({
  model: { imageSize: SIZE, patch: 4, patchWidth: 4, hidden: 32, textWidth: 8, embedDim: 16 },
  train: { steps: 150, batch: 32, lr: 3e-3, threads: 1 },
  // The synthetic frames carry no time (all step 0): one window for every stage.
  gate: { stageWindows: false },
});

test('trained with the triplet loss, u_k separates done from not done (also on near misses) and is not pinned at 0.5', async () => {
  const result = await trainSar(task, dataset(new Rng(1), 160), cfg);
  assert.ok(result.history.at(-1)!.loss < 0.5 * result.history[0].loss || result.history.at(-1)!.loss < 0.05, JSON.stringify(result.history));
  const scorer = await SarScorer.fromModel(result.network.inference(), result.meta);
  try {
    const rng = new Rng(2);
    const held = [...dataset(rng, 60)];
    const emb = await scorer.embed(held.map((f) => f.images));
    for (const k of [0, 1]) {
      const u = held.map((_, i) => scorer.scores(emb, i, k).u);
      const y = held.map((f) => f.done[k] as 0 | 1);
      const a = auroc(u, y)!;
      assert.ok(a > 0.95, `stage ${k} AUROC ${a}`);
      assert.ok(u.some((x) => x > 0.9) && u.some((x) => x < 0.1), `u not spread: ${u.slice(0, 10)}`);
    }
    // The near-miss frames in particular score low on stage 0.
    const nm = held.map((f, i) => [f, i] as const).filter(([f]) => f.source === 'near_miss');
    const nmU = nm.map(([, i]) => scorer.scores(emb, i, 0).u);
    assert.ok(nmU.filter((u) => u > 0.5).length <= nm.length * 0.1, `near-miss u: ${nmU.map((u) => u.toFixed(2))}`);

    // Online: the gate claims stage 0 once the frames show it for m steps, and a claim the ground
    // truth denies (the image shows it, the predicates say no) is flagged as hallucinated.
    const sar = new SarRewarder(scorer, stages.map((s) => s.name), 2);
    const info = (step: number, done0: boolean) => ({ state: { step }, predicates: { grasp_block: done0, lift_block: false }, stage: done0 ? 1 : 0 }) as unknown as StepInfo;
    const fr = new Rng(9);
    const claims: { env: number; step: number; hallucinated: boolean }[] = [];
    for (let t = 0; t < 12; t++) {
      const shown = t >= 3;
      const out = await sar.step([frame(fr, shown, false).images, frame(fr, shown, false).images], [info(t, shown), info(t, false)]);
      out.forEach((o, env) => {
        assert.ok(Number.isFinite(o.stage));
        if (o.claimed.includes(0)) claims.push({ env, step: t, hallucinated: o.hallucinated });
      });
    }
    assert.deepEqual(claims.map((c) => [c.env, c.hallucinated]), [[0, false], [1, true]]);
    // Not before the stage is shown, and not before the window is full.
    assert.ok(claims[0].step >= Math.max(3, cfg.gate.window - 1), `claimed at step ${claims[0].step}`);
    assert.equal(sar.endEpisode(1).hallucinated, 1);
    assert.equal(sar.endEpisode(0).rate, 0);

    // sar.onnx + sar.json round trip gives the same scores.
    const dir = scratchDir('sar-');
    const files = saveSar(dir, result);
    const loaded = await SarScorer.load(files.onnx);
    const emb2 = await loaded.embed(held.slice(0, 5).map((f) => f.images));
    for (let i = 0; i < 5; i++) assert.ok(Math.abs(loaded.scores(emb2, i, 1).u - scorer.scores(emb, i, 1).u) < 1e-4);
    await loaded.dispose();
  } finally {
    await scorer.dispose();
  }
});

test('rows: near-miss frames only when asked, for their target stage, labelled by the ground truth', () => {
  const rng = new Rng(3);
  const frames = [frame(rng, true, false), frame(rng, false, false, 'near_miss', true)];
  const without = buildRows(frames, 2, new Rng(4), false);
  const withNm = buildRows(frames, 2, new Rng(4), true);
  assert.ok(without.every((r) => !r.nearMiss));
  const nm = withNm.filter((r) => r.nearMiss);
  assert.deepEqual(nm, [{ frame: 1, stage: 0, label: 0, nearMiss: true }]);
  assert.ok(without.some((r) => r.stage === 0 && r.label === 1));
});

test('rows: an empty-handed frame also asks one earlier stage a stuck gate could wait on, labelled by the ground truth', () => {
  const rng = new Rng(5);
  // Five stages; the frame's expert stage is 4, a gate stuck anywhere from stage 1 could see it;
  // stage 2 happens to be done (an offset grasp that caught the object).
  const f: LabelledFrame = { ...frame(rng, false, false, 'near_miss'), done: Uint8Array.from([1, 0, 1, 0, 0]), targetStage: 4, contextFrom: 1 };
  const asked = new Map<number, number>();
  for (let seed = 0; seed < 200; seed++) {
    const rows = buildRows([f], 5, new Rng(seed), true);
    assert.equal(rows.length, 2);
    assert.deepEqual(rows[0], { frame: 0, stage: 4, label: 0, nearMiss: true });
    const extra = rows[1];
    assert.ok(extra.nearMiss && extra.stage >= 1 && extra.stage < 4, `stage ${extra.stage}`);
    assert.equal(extra.label, f.done[extra.stage]);
    asked.set(extra.stage, (asked.get(extra.stage) ?? 0) + 1);
  }
  assert.deepEqual([...asked.keys()].sort(), [1, 2, 3], 'every stage of the context range is asked');
  // Without near-miss states the frame gives no row; without a context range only its target.
  assert.equal(buildRows([f], 5, new Rng(1), false).length, 0);
  assert.equal(buildRows([{ ...f, contextFrom: undefined }], 5, new Rng(1), true).length, 1);
  // A stage the expert had done at this step and the ground truth denies: one more row, label 0.
  const hard = buildRows([{ ...f, expertOnly: [1, 3] }], 5, new Rng(7), true);
  assert.equal(hard.length, 3);
  assert.ok([1, 3].includes(hard[2].stage) && hard[2].label === 0 && hard[2].nearMiss, JSON.stringify(hard[2]));
  // Up to train.expertOnlyRows of them, distinct: two asked -> both stages once; more asked than there are -> each once.
  for (const n of [2, 5]) {
    const rows = buildRows([{ ...f, expertOnly: [1, 3] }], 5, new Rng(7), true, n).slice(2);
    assert.deepEqual(rows.map((r) => r.stage).sort(), [1, 3], `expertOnlyRows ${n}`);
    assert.ok(rows.every((r) => r.label === 0 && r.nearMiss));
  }
  assert.equal(buildRows([{ ...f, expertOnly: [1, 3] }], 5, new Rng(7), true, 0).length, 2);
  // emptyHandedContext 'all': one more row, for a stage of an earlier round (before contextFrom).
  const earlier = new Set<number>();
  for (let seed = 0; seed < 50; seed++) {
    const rows = buildRows([{ ...f, contextFrom: 3 }], 5, new Rng(seed), true, 0, 'all');
    assert.equal(rows.length, 3);
    assert.ok(rows[2].nearMiss && rows[2].stage < 3 && rows[2].label === f.done[rows[2].stage], JSON.stringify(rows[2]));
    earlier.add(rows[2].stage);
  }
  assert.deepEqual([...earlier].sort(), [0, 1, 2]);
  assert.equal(buildRows([{ ...f, contextFrom: 0 }], 5, new Rng(1), true, 0, 'all').length, 2, 'no earlier round: no extra row');
});

test('rows: an off-task frame asks its ground-truth stage and a random one, never with a near-miss text as its positive', () => {
  const rng = new Rng(6);
  const f: LabelledFrame = { ...frame(rng, false, false, 'near_miss'), done: Uint8Array.from([1, 1, 0, 0, 0]), gtStage: 2, targetStage: 2, perturbation: 'wander' };
  const asked = new Set<number>();
  for (let seed = 0; seed < 100; seed++) {
    const rows = buildRows([f], 5, new Rng(seed), true);
    assert.ok(rows.length === 1 || rows.length === 2, `${rows.length} rows`);
    assert.deepEqual(rows[0], { frame: 0, stage: 2, label: 0, nearMiss: true, offTask: true });
    for (const r of rows) {
      assert.equal(r.label, f.done[r.stage], 'labelled by the ground truth');
      assert.ok(r.offTask && r.nearMiss);
      asked.add(r.stage);
    }
  }
  assert.deepEqual([...asked].sort(), [0, 1, 2, 3, 4], 'any stage can be asked (a gate may wait on any when a learner wanders off)');
  assert.equal(buildRows([f], 5, new Rng(1), false).length, 0, 'no off-task rows without near-miss states');
});

test('probe context: each stage asked from where the expert reached it; stages the probe really does are not faked', () => {
  const names = ['above', 'reach', 'grasp', 'lift'];
  // The expert reaches stage 1 at step 2, stage 2 at step 4, stage 3 at step 6, never finishes lift.
  const expert = [0, 0, 1, 1, 2, 2, 3, 3].map((stage) => ({ stage }));
  // The probe: hovers for real (above holds at steps 1-2), then works beside the object; at step
  // 7 an offset grasp catches it after all (grasp holds), lift never holds.
  const frames = [1, 2, 3, 4, 5, 6, 7].map((step) => ({
    step,
    gtStage: step <= 2 ? 1 : step === 7 ? 3 : 1,
    predicates: { above: step <= 2, reach: false, grasp: step === 7, lift: false },
  }));
  const { starts, faked } = probeContext(names, frames, expert);
  assert.deepEqual(starts, [0, 1, 3, 5]);
  // above: done for real; reach: the ground-truth stage passes it at step 7 (a late claim is true);
  // grasp: done at step 7; lift: never true from step 6 on -> the only faked stage.
  assert.deepEqual(faked, [false, false, false, true]);
  // A stage the expert never reached is not asked.
  assert.deepEqual(probeContext(names, frames, expert.slice(0, 5)).starts, [0, 1, 3, -1]);
  assert.deepEqual(probeContext(names, frames, expert.slice(0, 5)).faked, [false, false, false, false]);
});

test('auroc: perfect, reversed, ties and one class', () => {
  assert.equal(auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]), 1);
  assert.equal(auroc([0.9, 0.8, 0.2], [0, 0, 1]), 0);
  assert.equal(auroc([0.5, 0.5], [0, 1]), 0.5);
  assert.equal(auroc([0.1, 0.2], [1, 1]), null);
});

test('SAR config: defaults (tau 0.05, alpha 0.05) and errors that name the key path', () => {
  const c = parseSarConfig({});
  assert.equal(c.tau, 0.05);
  assert.equal(c.alpha, 0.05);
  assert.equal(c.nearMiss.emptyHanded, true);
  assert.equal(c.train.nearMissShare, 0.4);
  assert.throws(() => parseSarConfig({ train: { nearMissShare: 1 } }), /train\.nearMissShare/);
  assert.throws(() => parseSarConfig({ gate: { threshold: 1.5 } }), (e: Error) => e instanceof ConfigError && /gate\.threshold/.test(e.message) && /1\.5/.test(e.message));
  assert.throws(() => parseSarConfig({ model: { imageSize: 64, patch: 7 } }), /model\.patch.*must divide/);
  assert.throws(() => parseSarConfig({ train: { seeds: [] } }), /train\.seeds/);
  assert.throws(() => parseSarConfig({ tua: 0.05 }), /'tua'/);
});

test('stage windows: half the median time a stage first holds in the demos, clamped to 2..window', () => {
  const mk = (seed: number, step: number, d0: boolean, d1: boolean): LabelledFrame => ({ ...frame(new Rng(0), d0, d1), seed, step });
  const frames: LabelledFrame[] = [];
  // Stage 0 holds for 30 steps in every demo; stage 1 for 6 (seeds 0, 1) and 9 (seed 2); stride 3.
  for (const [seed, len1] of [[0, 6], [1, 6], [2, 9]] as const) {
    for (let t = 3; t <= 60; t += 3) frames.push(mk(seed, t, t >= 12 && t < 42, t >= 21 && t < 21 + len1));
  }
  // Near-miss frames are not demos: ignored.
  frames.push({ ...frame(new Rng(0), true, true, 'near_miss'), seed: 9, step: 3 });
  assert.deepEqual(stageWindows(frames, 2, 3, 6), [6, 3]);
  assert.deepEqual(stageWindows(frames, 2, 3, 4), [4, 3]);
  // A stage never done gets the cap.
  assert.deepEqual(stageWindows(frames.map((f) => ({ ...f, done: Uint8Array.from([f.done[0], 0]) })), 2, 3, 6), [6, 6]);
});
