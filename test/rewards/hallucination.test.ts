import assert from 'node:assert/strict';
import { test } from 'node:test';
import { aggregateHallucination, episodeHallucination, isTrueCompletion } from '../../rewards/hallucination.ts';

const names = ['above', 'reach', 'grasp'];

test('a completion is true when its predicate holds or the ground truth is past the stage', () => {
  assert.equal(isTrueCompletion(1, names, { above: false, reach: true, grasp: false }, 1), true);
  assert.equal(isTrueCompletion(0, names, { above: false, reach: true, grasp: false }, 2), true);
  assert.equal(isTrueCompletion(2, names, { above: true, reach: true, grasp: false }, 2), false);
  assert.throws(() => isTrueCompletion(3, names, {}, 0), /0\.\.2, got 3/);
  assert.throws(() => isTrueCompletion(0, names, { reach: true }, 0), /lack stage 'above'/);
});

test('per-episode rate, marks of hallucinated completions, null without completions', () => {
  const e = episodeHallucination([
    { step: 3, stage: 0, groundTruth: true },
    { step: 9, stage: 1, groundTruth: false },
    { step: 20, stage: 2, groundTruth: true },
    { step: 25, stage: 2, groundTruth: false },
  ]);
  assert.equal(e.completions, 4);
  assert.equal(e.hallucinated, 2);
  assert.equal(e.rate, 0.5);
  assert.deepEqual(e.marks, [{ step: 9, stage: 1 }, { step: 25, stage: 2 }]);
  assert.equal(episodeHallucination([]).rate, null);
});

test('aggregate pools completions with a Wilson interval around the pooled rate', () => {
  const eps = [
    episodeHallucination([{ step: 1, stage: 0, groundTruth: false }]),
    episodeHallucination(Array.from({ length: 9 }, (_, i) => ({ step: i, stage: 0, groundTruth: true }))),
    episodeHallucination([]),
  ];
  const s = aggregateHallucination(eps);
  assert.equal(s.episodes, 3);
  assert.equal(s.completions, 10);
  assert.equal(s.hallucinated, 1);
  assert.equal(s.rate, 0.1);
  assert.ok(s.low > 0 && s.low < 0.1 && s.high > 0.1 && s.high < 0.5, JSON.stringify(s));
  // Mean of per-episode rates: (1 + 0) / 2, the empty episode excluded.
  assert.equal(s.meanEpisodeRate, 0.5);
});
