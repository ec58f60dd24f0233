/**
 * Run folders as the viewer reads them (viewer/runs.ts): metrics lines parsed with bad lines
 * reported by number, a growing metrics.jsonl followed line by line, eval episodes found also one
 * folder deep and opened by index (steps read on demand), an unreadable one named in the notes.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { groupOf, xValues } from '../../viewer/app/run_data.ts';
import { viewerStepCount, viewerSteps } from '../../viewer/episodes.ts';
import { RunWatcher, evalEpisodeFiles, isRunDir, parseMetricLines } from '../../viewer/runs.ts';
import { writeEpisode } from '../interop/helpers.ts';
import { scratchDir } from '../tmp.ts';

test('metrics lines: numbers and booleans kept, other values dropped, bad lines noted by number', () => {
  const { rows, notes } = parseMetricLines('{"step": 1, "loss/bc": 0.5, "tag": "x", "success": true}\n\nnot json\n[1,2]\n{"step": 2, "loss/bc": NaN}\n{"step": 3, "loss/bc": 0.25}\n');
  assert.deepEqual(rows, [
    { _line: 1, step: 1, 'loss/bc': 0.5, success: 1 },
    { _line: 6, step: 3, 'loss/bc': 0.25 },
  ]);
  assert.equal(notes.length, 3);
  assert.match(notes[0], /line 3: not JSON/);
  assert.match(notes[1], /line 4: expected a JSON object/);
  assert.match(notes[2], /line 5: not JSON/);
});

test('a run folder is followed: appended complete lines and new eval episodes, nothing twice', () => {
  const dir = scratchDir('evovla-run-');
  assert.equal(isRunDir(dir), false);
  fs.writeFileSync(path.join(dir, 'config.yaml'), 'task: stack\nlr: 0.001\n');
  assert.equal(isRunDir(dir), true);
  const metrics = path.join(dir, 'metrics.jsonl');
  fs.writeFileSync(metrics, '{"step": 0, "loss/bc": 1}\n{"step": 1, "loss/bc": 0.8}\n{"step": 2, "lo');
  fs.mkdirSync(path.join(dir, 'eval', 'iter-000010'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'eval_episodes'));
  writeEpisode(path.join(dir, 'eval'), 'stack-0', 0, 4, { cameras: false });
  const run = new RunWatcher(dir);
  const eps = run.load();
  assert.deepEqual(eps.map((e) => e.name), [path.join('eval', 'stack-0.evep')]);
  // Opened by index, as any replayed file: no decoded steps held, read on demand.
  assert.ok(eps[0].index, 'eval episodes are indexed');
  assert.equal(eps[0].steps.length, 0, 'no steps held in memory');
  assert.equal(viewerStepCount(eps[0]), 4);
  assert.deepEqual(viewerSteps(eps[0], 2, 4, { images: false }).map((s) => s.step), [3, 4]);
  assert.equal(run.summary().evalSummary, '');
  assert.equal(run.summary().config, 'task: stack\nlr: 0.001\n');
  assert.deepEqual(run.summary().metrics.map((r) => r.step), [0, 1], 'the unfinished third line waits');
  fs.appendFileSync(metrics, 'ss/bc": 0.6}\n{"step": 3, "loss/bc": 0.5}\n');
  writeEpisode(path.join(dir, 'eval', 'iter-000010'), 'stack-1', 1, 3, { cameras: false });
  writeEpisode(path.join(dir, 'eval_episodes'), 'stack-2', 2, 3, { cameras: false });
  fs.writeFileSync(path.join(dir, 'eval.json'), '{"successRate": 0.5}');
  // A zero-length file (a crash on a full disk) is named in the run's notes, not shown, not fatal.
  fs.writeFileSync(path.join(dir, 'eval_episodes', 'stack-3.evep'), '');
  const next = run.poll();
  assert.deepEqual(next.rows.map((r) => [r._line, r.step, r['loss/bc']]), [[3, 2, 0.6], [4, 3, 0.5]]);
  assert.deepEqual(next.episodes.map((e) => e.name), [path.join('eval', 'iter-000010', 'stack-1.evep'), path.join('eval_episodes', 'stack-2.evep')]);
  assert.deepEqual(run.poll(), { rows: [], episodes: [] });
  assert.ok(
    run.summary().notes.some((n) => n === `cannot show ${path.join('eval_episodes', 'stack-3.evep')}: file is 0 bytes, shorter than the 12-byte preamble (empty or truncated recording)`),
    run.summary().notes.join('\n'),
  );
  assert.equal(run.summary().evalSummary, '{"successRate": 0.5}');
  assert.deepEqual(evalEpisodeFiles(dir).map((f) => path.relative(dir, f)), [
    path.join('eval', 'iter-000010', 'stack-1.evep'),
    path.join('eval', 'stack-0.evep'),
    path.join('eval_episodes', 'stack-2.evep'),
    path.join('eval_episodes', 'stack-3.evep'),
  ]);
  assert.throws(() => new RunWatcher(path.join(dir, 'eval')), /is not a run folder \(expected config\.yaml or metrics\.jsonl/);
});

test('charts: metrics grouped by prefix (loss-like names join "loss"); x never goes back across phases', () => {
  assert.equal(groupOf('loss/bc'), 'loss');
  assert.equal(groupOf('reward.stage'), 'reward');
  assert.equal(groupOf('val_loss'), 'loss');
  assert.equal(groupOf('loss'), 'loss');
  assert.equal(groupOf('success'), 'success');
  assert.equal(groupOf('lr'), 'lr');
  // Phase 0 logs steps 10, 20, 20 (loss and val_loss lines), phase 1 counts again from 10.
  assert.deepEqual(xValues([{ step: 10 }, { step: 20 }, { step: 20 }, { step: 10 }, { step: 20 }, { loss: 1 }]), [10, 20, 20, 30, 40, 45]);
  assert.deepEqual(xValues([{ iter: 3 }, { epoch: 4 }, {}]), [3, 4, 6]);
});
