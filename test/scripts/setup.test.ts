/**
 * The one set-up command: package.json's `setup` runs scripts/setup.sh, CI runs the same script,
 * and the script installs missing system packages when it can or says plainly what to run when it
 * cannot. System state is faked with a `dpkg` on PATH that reports one package missing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { scratchDir } from '../tmp.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const script = path.join(root, 'scripts/setup.sh');

/** A PATH whose dpkg says `xvfb` is not installed (everything else is). */
function fakeSystem(): string {
  const bin = scratchDir('evovla-setup-');
  fs.chmodSync(bin, 0o755);
  fs.writeFileSync(path.join(bin, 'dpkg'), '#!/bin/sh\n[ "$2" = xvfb ] && exit 1\nexit 0\n', { mode: 0o755 });
  return `${bin}:${process.env.PATH}`;
}

function runSetup(args: string[], opts: { asUser?: number; PATH: string }) {
  const cmd = opts.asUser !== undefined ? 'setpriv' : 'bash';
  const argv = opts.asUser !== undefined ? [`--reuid=${opts.asUser}`, `--regid=${opts.asUser}`, '--clear-groups', 'bash', script, ...args] : [script, ...args];
  const r = spawnSync(cmd, argv, { encoding: 'utf8', env: { ...process.env, PATH: opts.PATH }, timeout: 60_000 });
  assert.equal(r.error, undefined);
  return r;
}

test('npm run setup and CI run the same script', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  assert.equal(pkg.scripts.setup, 'bash scripts/setup.sh');
  const ci = fs.readFileSync(path.join(root, '.ci/run'), 'utf8');
  assert.match(ci, /^scripts\/setup\.sh$/m);
  assert.doesNotMatch(ci, /apt-get|npm ci/, 'CI must not set up differently from users');
  const setup = fs.readFileSync(script, 'utf8');
  assert.equal(setup.match(/^apt_packages=\(/gm)?.length, 1, 'one apt package list');
  assert.match(setup, /ONNXRUNTIME_NODE_INSTALL=skip/);
});

test('a user who can install (root) gets the missing packages installed, then npm ci', { skip: process.getuid?.() !== 0 && 'needs root' }, () => {
  const r = runSetup(['--dry-run'], { PATH: fakeSystem() });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^setup: would install xvfb$/m);
  assert.match(r.stdout, /would run: ONNXRUNTIME_NODE_INSTALL=skip npm ci/);
});

test('a user who cannot install is told the exact command, and the set-up exits non-zero', () => {
  const asUser = process.getuid?.() === 0 ? 65534 : undefined;
  const r = runSetup(['--dry-run'], { PATH: fakeSystem(), asUser });
  // A non-root user with password-less sudo would be allowed to install: then there is nothing to refuse.
  if (asUser === undefined && /would install/.test(r.stdout)) return;
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /missing system packages: xvfb; this user cannot install them .* Run: sudo apt-get install -y xvfb/);
  assert.match(r.stdout, /would run: ONNXRUNTIME_NODE_INSTALL=skip npm ci/, 'npm dependencies are still installed');
});

test('setup refuses an unknown option with exit 2', () => {
  const r = runSetup(['--fast'], { PATH: process.env.PATH ?? '' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown option '--fast'/);
});
