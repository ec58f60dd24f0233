/**
 * `npm run setup:cuda` plans (dry run): the provider version it installs matches the installed
 * onnxruntime-node exactly, and bad arguments are refused with the expected form.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../../bin/setup-cuda.mjs', import.meta.url));
const ortVersion = JSON.parse(readFileSync(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'), 'utf8')).version as string;

function setup(...args: string[]) {
  return spawnSync(process.execPath, [SCRIPT, ...args], { encoding: 'utf8' });
}

test('the default plan fetches the provider of exactly the installed onnxruntime-node version', () => {
  const r = setup('--dry-run');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`onnxruntime-node ${ortVersion.replace(/\./g, '\\.')}: its installer fetches Microsoft\\.ML\\.OnnxRuntime\\.Gpu\\.Linux ${ortVersion.replace(/\./g, '\\.')} `));
});

test('the npm-only plan pins onnxruntime-node to the runtime version the provider package carries', () => {
  const r = setup('--from', 'npm', '--dry-run');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /pin onnxruntime-node 1\.29\.0/);
  assert.match(r.stdout, /com\.github\.asus4\.onnxruntime\.linux-x64-gpu@0\.4\.9 \(ONNX Runtime 1\.29\.0, CUDA 13\), SHA-256 checked/);
});

test('bad arguments are refused with the expected form', () => {
  const r = setup('--from', 'pip');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--from: expected 'nuget' or 'npm', got 'pip'/);
  assert.match(setup('--gpu').stderr, /unknown argument '--gpu'/);
});
