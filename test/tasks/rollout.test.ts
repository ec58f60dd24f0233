import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getTask } from '../../tasks/index.ts';
import { configHash, stageOrderViolations, wilsonInterval, type EpisodeResult } from '../../tasks/rollout.ts';

test('wilsonInterval matches reference values', () => {
  const a = wilsonInterval(95, 100);
  assert.ok(Math.abs(a.low - 0.8883) < 5e-4 && Math.abs(a.high - 0.9785) < 5e-4, JSON.stringify(a));
  const b = wilsonInterval(0, 10);
  assert.equal(b.low, 0);
  assert.ok(Math.abs(b.high - 0.2775) < 5e-4);
  const c = wilsonInterval(10, 10);
  assert.equal(c.high, 1);
  assert.ok(Math.abs(c.low - 0.7225) < 5e-4);
});

test('stageOrderViolations flags a stage that held before an earlier one', () => {
  const base = { seed: 0, steps: 10, success: true, failure: false, truncated: false, maxStage: 3, finalStage: 3, expertStage: 3, finalStateHash: '', firstCommanded: [0, 2, 4], stageDrops: [] };
  const inOrder: EpisodeResult = { ...base, firstTrue: [1, 1, 5] };
  assert.deepEqual(stageOrderViolations(inOrder), []);
  const outOfOrder: EpisodeResult = { ...base, firstTrue: [3, 1, 5] };
  assert.equal(stageOrderViolations(outOfOrder).length, 1);
  assert.match(stageOrderViolations(outOfOrder)[0], /stage 1 first true at step 1, before stage 0 \(step 3\)/);
  const skipped: EpisodeResult = { ...base, firstTrue: [2, -1, 6] };
  assert.deepEqual(stageOrderViolations(skipped), []);
});

test('configHash changes with the env config and the task, not with key order', () => {
  const stack = getTask('stack');
  const h = configHash(stack, { physicsHz: 240, controlHz: 60 });
  assert.equal(h, configHash(stack, { controlHz: 60, physicsHz: 240 }));
  assert.notEqual(h, configHash(stack, { physicsHz: 240, controlHz: 30 }));
  assert.notEqual(h, configHash(getTask('jujube_cup'), { physicsHz: 240, controlHz: 60 }));
  assert.match(h, /^[0-9a-f]{16}$/);
});
