/** The timeline's hallucination marks come from the recorded SAR-gate claims, hallucinated ones only. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hallucinationMarks } from '../../../viewer/app/charts.ts';
import type { ViewStep } from '../../../viewer/protocol.ts';

function step(i: number, sarStage: number | undefined, sarClaims?: { stage: number; hallucinated: boolean }[]): ViewStep {
  return {
    step: i + 1,
    time: i / 60,
    links: {},
    ee: { p: [0, 0, 0], q: [0, 0, 0, 1] },
    objects: {},
    predicates: {},
    stage: 0,
    rewardTerms: {},
    reward: 0,
    terminated: false,
    truncated: false,
    ...(sarStage !== undefined ? { sarStage } : {}),
    ...(sarClaims ? { sarClaims } : {}),
  };
}

test('hallucinationMarks: one mark per hallucinated claim, at its step index, with its stage', () => {
  const steps = [
    step(0, 0),
    step(1, 1, [{ stage: 0, hallucinated: false }]),
    step(2, 1),
    step(3, 3, [{ stage: 1, hallucinated: true }, { stage: 2, hallucinated: false }]),
    step(4, 4, [{ stage: 3, hallucinated: true }]),
  ];
  assert.deepEqual(hallucinationMarks(steps), [{ index: 3, stage: 1 }, { index: 4, stage: 3 }]);
});

test('hallucinationMarks: none without SAR claims (an episode recorded without SAR)', () => {
  assert.deepEqual(hallucinationMarks([step(0, undefined), step(1, undefined)]), []);
  assert.deepEqual(hallucinationMarks([]), []);
});
