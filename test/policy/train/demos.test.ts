import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ensureDemos } from '../../../policy/train/demos.ts';
import { getTask } from '../../../tasks/index.ts';

const task = getTask('stack');

test('demos recorded by 2 processes are the same files as those recorded in this process', async () => {
  const root = mkdtempSync(join(tmpdir(), 'evovla-demos-'));
  try {
    const lines: string[] = [];
    const one = await ensureDemos(task, join(root, 'one'), 5, 2, ['eye_side'], 16, () => {}, 1);
    const two = await ensureDemos(task, join(root, 'two'), 5, 2, ['eye_side'], 16, (l) => lines.push(l), 2);
    assert.deepEqual(readdirSync(join(root, 'two')).sort(), ['stack-5.evep', 'stack-6.evep']);
    for (let i = 0; i < 2; i++) assert.ok(readFileSync(one[i]).equals(readFileSync(two[i])), `episode file ${two[i]} differs from the one recorded in-process`);
    assert.match(lines[0], /recording 2 expert demos .*2 processes/);
    assert.match(lines.at(-1)!, /demos: 2\/2 \(\d+ unsuccessful\)/);
    // Nothing missing: nothing is recorded again.
    const again: string[] = [];
    await ensureDemos(task, join(root, 'two'), 5, 2, ['eye_side'], 16, (l) => again.push(l), 2);
    assert.deepEqual(again, []);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a recording process that fails is reported with its seeds and the reason', async () => {
  const root = mkdtempSync(join(tmpdir(), 'evovla-demos-'));
  try {
    await assert.rejects(ensureDemos(task, join(root, 'd'), 0, 2, ['no_such_camera'], 16, () => {}, 2), /recording demos \(seeds \d+\.\.\d+\) failed: .*no_such_camera/);
    await assert.rejects(ensureDemos(task, join(root, 'd'), 0, 2, ['eye_side'], 16, () => {}, -1), /demo workers: expected an integer >= 0, got -1/);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
