/**
 * Target noise for the robustness benchmark: an offset per axis held for `holdS` seconds, the
 * same for the same seed whichever times ask, with the configured spread.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { targetNoisePerturbation } from '../../tasks/rollout.ts';

test('target noise is held for holdS, reproducible from its seed, and has the configured spread', () => {
  const a = targetNoisePerturbation({ std: 0.01, holdS: 0.5, seed: 3 });
  const b = targetNoisePerturbation({ std: 0.01, holdS: 0.5, seed: 3 });
  const p0 = a([0, 0, 0], 0.1);
  assert.deepEqual(a([1, 2, 3], 0.4), [1 + p0[0], 2 + p0[1], 3 + p0[2]]);
  assert.notDeepEqual(a([0, 0, 0], 0.6), p0);
  // b skips the first periods: the offset at 2.2 s is the same as a's.
  assert.deepEqual(b([0, 0, 0], 2.2), a([0, 0, 0], 2.2));
  const c = targetNoisePerturbation({ std: 0.01, holdS: 0.5, seed: 4 });
  let sum = 0;
  let sq = 0;
  const n = 3000;
  for (let k = 0; k < n; k++) {
    const x = c([0, 0, 0], k * 0.5 + 0.1)[0];
    sum += x;
    sq += x * x;
  }
  const std = Math.sqrt(sq / n - (sum / n) ** 2);
  assert.ok(Math.abs(std - 0.01) < 0.001, `std ${std}`);
  assert.ok(Math.abs(sum / n) < 0.001, `mean ${sum / n}`);
});
