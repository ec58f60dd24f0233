import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ablationMarkdown, appendAblationRecord, checkBenchFolder, checkResumable, readAblationLog, runKey, stepsToReach, summariseAblation, type AblationRecord } from '../../../policy/train/ablation.ts';
import { scratchDir } from '../../tmp.ts';

function rec(arm: string, seed: number, successes: number, curve: number[], claims = 10, falseClaims = 2): AblationRecord {
  return {
    arm,
    task: 'stack',
    seed,
    envSteps: curve.length * 100,
    wallSeconds: 60,
    eval: { episodes: 20, successes },
    hallucination: { claims, false: falseClaims },
    curve: curve.map((success, i) => ({ envSteps: (i + 1) * 100, success })),
  };
}

test('the log keeps what was written; a cut last line is dropped and counted, a damaged middle line is an error', () => {
  const path = join(scratchDir('evovla-ablation-'), 'sub', 'log.jsonl');
  assert.deepEqual(readAblationLog(path), { records: [], dropped: 0 });
  appendAblationRecord(path, rec('baseline', 0, 5, [0, 0.2]));
  appendAblationRecord(path, rec('full', 0, 9, [0.1, 0.3]));
  appendFileSync(path, '{"arm":"sar","ta');
  const { records, dropped } = readAblationLog(path);
  assert.equal(dropped, 1);
  assert.deepEqual(records.map(runKey), ['stack/baseline/0', 'stack/full/0']);
  writeFileSync(path, '{"arm":\n' + JSON.stringify(rec('full', 0, 9, [0.1])) + '\n');
  assert.throws(() => readAblationLog(path), /log\.jsonl:1: not a JSON record/);
});

test('steps to reach a success rate: the first point at or above it, null if never', () => {
  const curve = [0.0, 0.1, 0.3, 0.2, 0.5].map((success, i) => ({ envSteps: (i + 1) * 10, success }));
  assert.equal(stepsToReach(curve, 0.3), 30);
  assert.equal(stepsToReach(curve, 0.5), 50);
  assert.equal(stepsToReach(curve, 0.6), null);
});

test('summary pools seeds into Wilson intervals and measures sample efficiency against the baseline', () => {
  const rows = summariseAblation([
    rec('baseline', 0, 4, [0, 0.1, 0.2, 0.3]),
    rec('baseline', 1, 6, [0, 0.2, 0.3, 0.3]),
    rec('full', 0, 10, [0.1, 0.3, 0.4, 0.5], 10, 1),
    rec('full', 1, 12, [0.3, 0.3, 0.5, 0.6], 10, 0),
  ]);
  assert.deepEqual(rows.map((r) => r.arm), ['baseline', 'full']);
  const [base, full] = rows;
  assert.equal(base.success.episodes, 40);
  assert.equal(base.success.rate, 10 / 40);
  assert.ok(base.success.low < 0.25 && base.success.high > 0.25);
  assert.equal(full.hallucination.rate, 1 / 20);
  // Baseline's final training success is 0.3; it takes the baseline (400 + 300) / 2 = 350 steps,
  // the full arm (200 + 100) / 2 = 150.
  assert.equal(base.sampleEfficiency, 1);
  assert.ok(Math.abs(full.sampleEfficiency! - 350 / 150) < 1e-12);
  const md = ablationMarkdown(rows);
  assert.match(md, /\| stack \| full EvoVLA \(\+ memory\) \| 2 \| 400 \| 55\.0 \[[0-9.]+, [0-9.]+\] \(40\) \| n\/a \|/);
  assert.match(md, /2\.33x/);
});

test('a resumed bench refuses a log made with another budget or SAR scorer, or by a bench that did not record one, and names the key', () => {
  const budget = { scale: 1, ppoSteps: 16384, evalEpisodes: 50, episodeSteps: 0, sar: { seeds: [0, 1, 2, 3, 4, 5, 6, 7], steps: 2500 }, bc: null };
  const logged = [{ ...rec('baseline', 0, 0, [0]), settings: { ...budget, load: [1, 1, 1], furthestStage: 0.2 } }];
  // Same budget (load and measurements may differ): fine.
  checkResumable(logged, { ...budget, load: [3, 2, 2] }, 'log.jsonl');
  checkResumable([], { ...budget }, 'log.jsonl');
  assert.throws(() => checkResumable(logged, { ...budget, scale: 0.5 }, 'log.jsonl'), /cannot resume log\.jsonl: its run stack\/baseline\/0 has scale = 1, this run has scale = 0\.5; pass the same flags, or --out DIR/);
  assert.throws(() => checkResumable(logged, { ...budget, sar: { seeds: [0, 1], steps: 600 } }, 'log.jsonl'), /has sar = \{"seeds":\[0,1,2,3,4,5,6,7\],"steps":2500\}, this run has sar = \{"seeds":\[0,1\],"steps":600\}/);
  assert.throws(() => checkResumable(logged, { ...budget, bc: 'runs/bc_stack' }, 'log.jsonl'), /has bc = null, this run has bc = "runs\/bc_stack"/);
  const { sar: _sar, ...older } = budget;
  assert.throws(() => checkResumable([{ ...rec('full', 1, 0, [0]), settings: older }], budget, 'log.jsonl'), /its run stack\/full\/1 has no sar recorded \(an older bench\), this run has sar = /);
});

test("a bench folder's bc/ and sar/ are reused only with the task and budget recorded at its first start", () => {
  const out = join(scratchDir('evovla-ablation-folder-'), 'bench');
  const budget = { task: 'stack', scale: 1, ppoSteps: 16384, evalEpisodes: 50, episodeSteps: 0, sar: { seeds: [0, 1], steps: 2500 }, bc: null, load: [1, 1, 1] };
  assert.equal(checkBenchFolder(out, budget), true);
  const saved = JSON.parse(readFileSync(join(out, 'settings.json'), 'utf8'));
  assert.deepEqual(saved, { task: 'stack', scale: 1, ppoSteps: 16384, evalEpisodes: 50, episodeSteps: 0, sar: { seeds: [0, 1], steps: 2500 }, bc: null });
  mkdirSync(join(out, 'bc'));
  // The same budget (another load) reuses the folder; another task, scale or start does not.
  assert.equal(checkBenchFolder(out, { ...budget, load: [5, 5, 5] }), false);
  assert.throws(() => checkBenchFolder(out, { ...budget, task: 'jujube_cup' }), /cannot reuse .*bench: its bc\/ and sar\/ were made with task = "stack" .*this run has task = "jujube_cup"; pass the same flags, or --out DIR/);
  assert.throws(() => checkBenchFolder(out, { ...budget, scale: 0.25 }), /made with scale = 1 .*this run has scale = 0\.25/);
  assert.throws(() => checkBenchFolder(out, { ...budget, bc: 'runs/bc_stack' }), /made with bc = null .*this run has bc = "runs\/bc_stack"/);
  // A folder with artifacts but no settings file (killed before it wrote one, or an older bench).
  const old = join(scratchDir('evovla-ablation-folder-'), 'old');
  mkdirSync(join(old, 'sar'), { recursive: true });
  assert.throws(() => checkBenchFolder(old, budget), /old holds sar\/ but no settings\.json, so what they were made with is unknown; remove them, or use --out DIR/);
  assert.equal(existsSync(join(old, 'settings.json')), false);
  writeFileSync(join(out, 'settings.json'), '{"task":');
  assert.throws(() => checkBenchFolder(out, budget), /settings\.json: not a JSON object/);
});
