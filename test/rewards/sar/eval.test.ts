import assert from 'node:assert/strict';
import { test } from 'node:test';
import { firstBehind } from '../../../rewards/sar/eval.ts';

test('firstBehind: a gate that claims each stage within two stages of the ground truth kept up', () => {
  // grasp (3) claimed while settle (4) had already completed: 2 stages past, still in time.
  const claims = [0, 1, 2, 3, 4, 5].map((stage) => ({ stage, gtStage: stage === 3 ? 5 : stage + 1 }));
  assert.equal(firstBehind(claims, 6), null);
});

test('firstBehind: the first stage claimed 3+ stages late, or never, is where the gate fell behind', () => {
  // Block Bridge's pattern: release (8) scored low after the real release, claimed at gt 12.
  const late = [0, 1, 2, 3, 4, 5, 6, 7].map((stage) => ({ stage, gtStage: stage + 1 })).concat([{ stage: 8, gtStage: 12 }, { stage: 9, gtStage: 12 }]);
  assert.equal(firstBehind(late, 20), 8);
  // A stage never claimed although the demo completed it.
  assert.equal(firstBehind([{ stage: 0, gtStage: 1 }, { stage: 2, gtStage: 3 }], 3), 1);
  // Stages the demo never completed are not asked for.
  assert.equal(firstBehind([{ stage: 0, gtStage: 1 }], 1), null);
  // A stricter lag flags the quick grasp-then-settle claim.
  assert.equal(firstBehind([{ stage: 0, gtStage: 2 }], 1, 2), 0);
});
