/**
 * File-system failures reach the user as one line naming the operation, the path and the cause
 * (exit 1, no stack trace): a directory that cannot be created (/proc, permissions, read-only), a
 * full disk in the middle of `demos` (with the summary of the files already written), a directory
 * given where a file is expected. Also: `demos` refuses to overwrite episode files, and Ctrl+C
 * prints what was finished and what was left partial.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import fsModule from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import * as path from 'node:path';
import { mock, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { main } from '../../cli/main.ts';
import { readEpisode } from '../../sim/record/reader.ts';
import { scratchDir } from '../tmp.ts';
import { captureOutput } from './capture.ts';

const bin = fileURLToPath(new URL('../../bin/evovla.mjs', import.meta.url));

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const { result, out, err } = await captureOutput(() => main(argv));
  return { code: result, out, err };
}

/** The CLI in a child process with a deadline (a hang fails the test instead of the runner). */
function cliChild(argv: string[], opts: { asUser?: number } = {}): { code: number | null; out: string; err: string } {
  const cmd = opts.asUser !== undefined ? 'setpriv' : process.execPath;
  const args = opts.asUser !== undefined ? [`--reuid=${opts.asUser}`, `--regid=${opts.asUser}`, '--clear-groups', process.execPath, bin, ...argv] : [bin, ...argv];
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.error, undefined, `evovla ${argv.join(' ')} did not finish: ${r.error?.message}`);
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function assertOneLine(err: string, pattern: RegExp): void {
  const lines = err.trim().split('\n');
  assert.doesNotMatch(err, /^\s+at /m, `stack trace printed:\n${err}`);
  assert.match(lines.at(-1) ?? '', pattern, err);
}

test('demos --out under /proc ends at once with one line naming the directory', { skip: !fs.existsSync('/proc/self') && 'no /proc' }, () => {
  const r = cliChild(['demos', '--out', '/proc/forbidden', '--episodes', '1', '--no-progress']);
  assert.equal(r.code, 1, r.err);
  assertOneLine(r.err, /^evovla demos: cannot create directory '\/proc\/forbidden': no such file or directory \(ENOENT\)$/);
});

test('deploy --log under /proc ends at once with one line naming the directory', { skip: !fs.existsSync('/proc/self') && 'no /proc' }, () => {
  const r = cliChild(['deploy', '--policy', 'expert', '--robot', 'sim', '--duration', '0.2', '--quiet', '--log', '/proc/forbidden/x.mcap']);
  assert.equal(r.code, 1, r.err);
  assertOneLine(r.err, /^evovla deploy: cannot create directory '\/proc\/forbidden': no such file or directory \(ENOENT\)$/);
});

test('demos into a directory the user may not write to: EACCES in one line', () => {
  const root = scratchDir('evovla-fs-');
  const locked = path.join(root, 'locked');
  fs.mkdirSync(locked, { mode: 0o555 });
  fs.chmodSync(locked, 0o555);
  fs.chmodSync(root, 0o755);
  // Root writes anywhere: run as 'nobody' then (setpriv), so the permission check is the kernel's.
  const asUser = process.getuid?.() === 0 ? 65534 : undefined;
  const r = cliChild(['demos', '--out', path.join(locked, 'out'), '--episodes', '1', '--no-progress'], { asUser });
  assert.equal(r.code, 1, r.err);
  assertOneLine(r.err, new RegExp(`^evovla demos: cannot create directory '${locked}/out': permission denied \\(EACCES\\)$`));
});

test('demos on a read-only file system: EROFS in one line (injected)', async () => {
  const out = path.join(scratchDir('evovla-fs-'), 'ro');
  // The CommonJS object is patchable; syncBuiltinESMExports carries the patch into `import * as fs`.
  const mkdir = mock.method(fsModule, 'mkdirSync', (p: fs.PathLike) => {
    const e = new Error(`EROFS: read-only file system, mkdir '${String(p)}'`) as NodeJS.ErrnoException;
    Object.assign(e, { code: 'EROFS', syscall: 'mkdir', path: String(p) });
    throw e;
  });
  syncBuiltinESMExports();
  try {
    const r = await cli('demos', '--out', out, '--episodes', '1', '--no-progress');
    assert.equal(r.code, 1);
    assertOneLine(r.err, new RegExp(`^evovla demos: cannot create directory '${out}': read-only file system \\(EROFS\\)$`));
  } finally {
    mkdir.mock.restore();
    syncBuiltinESMExports();
  }
});

test('demos on a full disk keeps and reports the files written before (ENOSPC), and --overwrite replaces', async () => {
  const out = scratchDir('evovla-fs-');
  // An old file for seed 0 (replaced thanks to --overwrite); seed 1 writes into /dev/full.
  fs.writeFileSync(path.join(out, 'stack-0.evep'), 'old');
  fs.symlinkSync('/dev/full', path.join(out, 'stack-1.evep.partial'));
  const r = await cli('demos', '--out', out, '--episodes', '3', '--no-progress', '--overwrite');
  assert.equal(r.code, 1, r.err);
  assertOneLine(r.err, new RegExp(`^evovla demos: cannot write '${out}/stack-1.evep.partial': no space left on device \\(ENOSPC\\)$`));
  assert.match(r.out, /^task stack: \d\/1 successful/m);
  assert.match(r.out, new RegExp(`wrote 1 episode file to ${out} before the error`));
  const ep = readEpisode(path.join(out, 'stack-0.evep'));
  assert.equal(ep.damage, null);
  assert.equal(ep.header?.seed, 0);
  assert.ok(!fs.existsSync(path.join(out, 'stack-2.evep')), 'no episode after the failure');
});

test('demos refuses to overwrite existing episode files without --overwrite (exit 2, file untouched)', async () => {
  const out = scratchDir('evovla-fs-');
  const f = path.join(out, 'stack-5.evep');
  fs.writeFileSync(f, 'keep me');
  const r = await cli('demos', '--out', out, '--seed', '4', '--episodes', '3', '--no-progress');
  assert.equal(r.code, 2);
  assert.match(r.err, /refusing to overwrite episode files already in .*: stack-5\.evep; pass --overwrite/);
  assert.equal(fs.readFileSync(f, 'utf8'), 'keep me');
  assert.ok(!fs.existsSync(path.join(out, 'stack-4.evep')), 'nothing ran');
});

test('inspect and replay of a directory: EISDIR in one line naming it', async () => {
  const dir = scratchDir('evovla-fs-');
  for (const cmd of ['inspect', 'replay']) {
    const r = await cli(cmd, dir);
    assert.equal(r.code, 1, `${cmd}: ${r.err}`);
    assertOneLine(r.err, new RegExp(`^evovla ${cmd}: cannot read '${dir}': is a directory \\(EISDIR\\)$`));
  }
});

test('Ctrl+C during demos prints the finished episodes and the partial one', async () => {
  const out = scratchDir('evovla-fs-');
  const child = spawn(process.execPath, [bin, 'demos', '--out', out, '--episodes', '5', '--no-progress'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Wait until the first episode is being recorded, let it write some steps, then interrupt.
  const partial = path.join(out, 'stack-0.evep.partial');
  const deadline = Date.now() + 120_000;
  while (!fs.existsSync(partial) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.ok(fs.existsSync(partial), `demos never started recording: ${stderr}`);
  await new Promise((r) => setTimeout(r, 1000));
  child.kill('SIGINT');
  const kill = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await exited;
  clearTimeout(kill);
  assert.equal(code, 130, stderr);
  assert.match(stdout, /interrupted \(Ctrl\+C\): wrote 0 episode files to .*, 5 of 5 not finished; episode seed 0 was left partial after \d+ steps in .*stack-0\.evep\.partial/);
  const ep = readEpisode(partial);
  assert.equal(ep.damage?.code, 'missing_footer');
  assert.ok(ep.steps.length > 0);
});
