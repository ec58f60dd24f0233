import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../../sim/config.ts';
import { MemoryBank, parseMemoryBankConfig } from '../../../policy/memory/bank.ts';

const feat = (v: number) => [v, v, v];

test('keeps the first frame, then frames where the stage score or the pose jumps; quiet frames are skipped', () => {
  const bank = new MemoryBank(2, 3, parseMemoryBankConfig({ minGap: 0 }));
  assert.equal(bank.observe(0, { step: 0, features: feat(0), stageScore: 0.1, pose: [0, 0, 0] }), 'first');
  assert.equal(bank.observe(0, { step: 1, features: feat(1), stageScore: 0.15, pose: [0.01, 0, 0] }), null);
  assert.equal(bank.observe(0, { step: 2, features: feat(2), stageScore: 0.9, pose: [0.01, 0, 0] }), 'stage');
  assert.equal(bank.observe(0, { step: 3, features: feat(3), stageScore: 0.9, pose: [0.05, 0, 0] }), 'pose');
  assert.equal(bank.observe(0, { step: 4, features: feat(4), stageScore: 0.9, pose: [0.05, 0, 0, 0, 0, 0] }), null);
  assert.deepEqual(bank.keptSteps(0), [0, 2, 3]);
  assert.deepEqual(bank.keptSteps(1), []);
  // The jump is measured from the last KEPT frame: slow drift adds up.
  const slow = new MemoryBank(1, 3, parseMemoryBankConfig({ minGap: 0 }));
  for (let t = 0; t < 10; t++) slow.observe(0, { step: t, features: feat(t), stageScore: 0.05 * t, pose: [0, 0, 0] });
  assert.deepEqual(slow.keptSteps(0), [0, 5]);
});

test('bounded: when full, drops the oldest frame after the pinned first one', () => {
  const bank = new MemoryBank(1, 3, parseMemoryBankConfig({ slots: 3, minGap: 0 }));
  for (let t = 0; t < 6; t++) bank.observe(0, { step: t, features: feat(t), stageScore: t % 2, pose: [0, 0, 0] });
  assert.deepEqual(bank.keptSteps(0), [0, 4, 5]);
  const { memory, mask, shape } = bank.batch();
  assert.deepEqual(shape, [1, 3, 3]);
  assert.deepEqual(Array.from(mask), [1, 1, 1]);
  assert.deepEqual(Array.from(memory), [0, 0, 0, 4, 4, 4, 5, 5, 5]);
});

test('minGap spreads key frames; reset empties one env; batch zero-fills empty slots', () => {
  const bank = new MemoryBank(2, 3, parseMemoryBankConfig({ slots: 4, minGap: 3 }));
  for (let t = 0; t < 8; t++) bank.observe(1, { step: t, features: feat(t + 1), stageScore: t % 2, pose: [0, 0, 0] });
  assert.deepEqual(bank.keptSteps(1), [0, 3, 6]);
  bank.observe(0, { step: 0, features: feat(7), stageScore: 0, pose: [0, 0, 0] });
  const b = bank.batch([1, 0]);
  assert.deepEqual(Array.from(b.mask), [1, 1, 1, 0, 1, 0, 0, 0]);
  assert.deepEqual(Array.from(b.memory.subarray(12, 15)), [7, 7, 7]);
  assert.deepEqual(Array.from(b.memory.subarray(9, 12)), [0, 0, 0]);
  bank.reset(1);
  assert.deepEqual(bank.keptSteps(1), []);
  assert.deepEqual(bank.keptSteps(0), [0]);
});

test('bad input and config are named', () => {
  const bank = new MemoryBank(1, 3);
  assert.throws(() => bank.observe(1, { step: 0, features: feat(0), stageScore: 0, pose: [0, 0, 0] }), /env must be an integer in 0\.\.0, got 1/);
  assert.throws(() => bank.observe(0, { step: 0, features: [1], stageScore: 0, pose: [0, 0, 0] }), /3 values, got 1/);
  assert.throws(() => bank.observe(0, { step: 0, features: feat(0), stageScore: Number.NaN, pose: [0, 0, 0] }), /stageScore/);
  assert.throws(() => parseMemoryBankConfig({ slots: 1 }), (e: Error) => e instanceof ConfigError && /'slots'/.test(e.message));
  assert.throws(() => parseMemoryBankConfig({ poseJump: { degrees: 3 } }), /poseJump\.degrees/);
});
