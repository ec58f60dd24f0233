import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { runScripted } from './helpers/scripted_run.ts';

const STEPS = 1000;

test('same seed and actions give a bit-identical state hash after 1,000 steps', async () => {
  const a = await runScripted({ seed: 5, steps: STEPS });
  const b = await runScripted({ seed: 5, steps: STEPS });
  assert.equal(a.hash, b.hash);
  const c = await runScripted({ seed: 6, steps: STEPS });
  assert.notEqual(a.hash, c.hash);
});

test('the hash is the same in another process', async () => {
  const here = await runScripted({ seed: 5, steps: STEPS });
  const script = fileURLToPath(new URL('./helpers/scripted_run.ts', import.meta.url));
  const out = execFileSync(process.execPath, ['--import', 'tsx', script, '5', String(STEPS)], { encoding: 'utf8' });
  assert.equal(out.trim(), here.hash);
});

test('snapshot/restore continues bit-identically', async () => {
  const straight = await runScripted({ seed: 9, steps: STEPS });
  const restored = await runScripted({ seed: 9, steps: STEPS, snapshotAt: 400 });
  assert.equal(restored.hash, straight.hash);
});
