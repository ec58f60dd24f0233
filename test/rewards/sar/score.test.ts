import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cosine, StageBaseline, StageGate, stageKind, stageScore } from '../../../rewards/sar/score.ts';
import { getTask } from '../../../tasks/index.ts';

test('u_k divides by tau: a 0.2 similarity gap gives ~0.98, not ~0.5 (the multiplied form)', () => {
  const u = stageScore(0.6, 0.4, 0.3, 0.05);
  assert.ok(Math.abs(u - 1 / (1 + Math.exp(-4))) < 1e-12);
  // The near miss is the competitor when it is closer than the negative.
  assert.ok(stageScore(0.6, 0.1, 0.7) < 0.2);
  const multiplied = 1 / (1 + Math.exp(-(0.6 - 0.4) * 0.05));
  assert.ok(Math.abs(multiplied - 0.5) < 0.01 && u > 0.95);
  assert.throws(() => stageScore(0, 0, 0, 0), /tau must be > 0, got 0/);
});

test('cosine similarity', () => {
  assert.ok(Math.abs(cosine([1, 0], [1, 1]) - Math.SQRT1_2) < 1e-12);
  assert.equal(cosine([0, 0], [1, 1]), 0);
  assert.ok(Math.abs(cosine([9, 1, 0, 0], [0, 0, 2, 2], 2, 2, 2) - 0) < 1e-12);
});

test('baseline: r_stage = u - ubar with ubar smoothed by alpha, starting at the first score', () => {
  const b = new StageBaseline(2, 0.5);
  assert.equal(b.reward(0, 0.2), 0);
  assert.equal(b.value(0), 0.2);
  assert.ok(Math.abs(b.reward(0, 1) - 0.8) < 1e-12);
  assert.ok(Math.abs(b.value(0)! - 0.6) < 1e-12);
  assert.equal(b.value(1), null);
  assert.throws(() => b.reward(2, 0.5), /0\.\.1, got 2/);
});

test('gate: claims a stage when the mean of the last m scores reaches theta, then waits on the next', () => {
  const g = new StageGate(3, { window: 3, threshold: 0.8 });
  assert.deepEqual(g.push(0.9), []);
  assert.deepEqual(g.push(0.9), []); // only 2 of 3 scores
  assert.deepEqual(g.push(0.5), []); // mean 0.77
  assert.deepEqual(g.push(0.95), []); // the last 3: (0.9 + 0.5 + 0.95) / 3 = 0.78
  assert.deepEqual(g.push(1), [0]); // (0.5 + 0.95 + 1) / 3 = 0.82
  assert.equal(g.stage, 1);
  for (let i = 0; i < 2; i++) assert.deepEqual(g.push(1), []);
  assert.deepEqual(g.push(1), [1]);
  assert.deepEqual(g.push(1), []);
  assert.deepEqual(g.push(1), []);
  assert.deepEqual(g.push(1), [2]);
  assert.deepEqual(g.push(1), []);
  assert.equal(g.stage, 3);
  assert.throws(() => new StageGate(3, { window: 0, threshold: 0.5 }), /window/);
  // Lookahead: stage 0's evidence was brief, stage 1's window passes: both are claimed.
  const la = new StageGate(3, { window: 2, threshold: 0.8, lookahead: 1 });
  assert.equal(la.watchesNext, true);
  assert.deepEqual(la.push(0.9, 0.1), []);
  assert.deepEqual(la.push(0.1, 0.9), []);
  assert.deepEqual(la.push(0.1, 0.9), [0, 1]);
  assert.equal(la.stage, 2);
  assert.equal(la.watchesNext, false); // no stage after the last
  assert.deepEqual(la.push(0.9), []);
  assert.deepEqual(la.push(0.9), [2]);
  assert.throws(() => new StageGate(3, { window: 2, threshold: 1 }), /threshold/);
});

test('stage kinds of the Stack task: nine kinds, two stages each', () => {
  const kinds = getTask('stack').stages.map(stageKind);
  const counts = new Map<string, number>();
  for (const k of kinds) counts.set(k, (counts.get(k) ?? 0) + 1);
  assert.equal(counts.size, 9, JSON.stringify([...counts]));
  assert.ok([...counts.values()].every((c) => c === 2));
  assert.equal(counts.get('carry'), 2);
});

test('gate windows per stage: a brief stage gets its own shorter window (capped by window)', () => {
  const g = new StageGate(3, { window: 4, threshold: 0.8, windows: [4, 2, 9] });
  assert.equal(g.windowOf(2), 4);
  for (let i = 0; i < 3; i++) assert.deepEqual(g.push(0.9), []);
  assert.deepEqual(g.push(0.9), [0]);
  // Stage 1: two steps suffice.
  assert.deepEqual(g.push(0.9), []);
  assert.deepEqual(g.push(0.9), [1]);
  assert.throws(() => new StageGate(3, { window: 4, threshold: 0.8, windows: [4, 2] }), /gate windows must be 3 integers/);
});
