/**
 * makeDirectory creates what `mkdir -p` does and, unlike Node 20's recursive mkdirSync, returns
 * (with an error) for a path under /proc; describeFileSystemError says path, operation and cause.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { describeFileSystemError, isFileSystemError, makeDirectory } from '../../sim/files.ts';
import { scratchDir } from '../tmp.ts';

const filesModule = fileURLToPath(new URL('../../sim/files.ts', import.meta.url));

test('makeDirectory creates missing parents and accepts an existing directory', () => {
  const root = scratchDir('evovla-files-');
  const deep = path.join(root, 'a', 'b', 'c');
  assert.equal(makeDirectory(deep), deep);
  assert.ok(fs.statSync(deep).isDirectory());
  assert.equal(makeDirectory(deep), deep);
  assert.equal(makeDirectory(root), root);
});

test('makeDirectory refuses a path through a regular file with ENOTDIR naming it', () => {
  const root = scratchDir('evovla-files-');
  const file = path.join(root, 'plain');
  fs.writeFileSync(file, 'x');
  assert.throws(
    () => makeDirectory(path.join(file, 'sub')),
    (err: NodeJS.ErrnoException) => err.code === 'ENOTDIR' && String(err.path).startsWith(file),
  );
});

test('makeDirectory on a /proc path ends with an error instead of spinning', { skip: !fs.existsSync('/proc/self') && 'no /proc on this system' }, () => {
  // In a child process with a deadline: a loop here would otherwise hang the test runner.
  const script = `
    const { makeDirectory, describeFileSystemError } = await import(${JSON.stringify(filesModule)});
    try { makeDirectory('/proc/forbidden/x'); console.log('created?'); }
    catch (err) { console.log(describeFileSystemError(err)); }`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.error, undefined, `child did not finish: ${r.error?.message}`);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^cannot create directory '\/proc\/forbidden': no such file or directory \(ENOENT\)$/m);
});

test('describeFileSystemError names the operation, the path and the cause', () => {
  const root = scratchDir('evovla-files-');
  let caught: unknown;
  try {
    fs.readFileSync(path.join(root, 'missing.evep'));
  } catch (err) {
    caught = err;
  }
  assert.ok(isFileSystemError(caught));
  assert.equal(describeFileSystemError(caught), `cannot open '${path.join(root, 'missing.evep')}': no such file or directory (ENOENT)`);
  assert.equal(isFileSystemError(new TypeError('x')), false);
});

test('no project source creates directories with the recursive mkdirSync that can loop', () => {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const offenders: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      if (['node_modules', '.git', 'test', 'runs', 'demos', 'public'].includes(e.name)) continue;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(ts|mjs|js)$/.test(e.name) && p !== filesModule) {
        const text = fs.readFileSync(p, 'utf8');
        for (const m of text.matchAll(/mkdirSync\([^;]*recursive\s*:\s*true/g)) offenders.push(`${path.relative(root, p)}: ${m[0]}`);
      }
    }
  };
  walk(root);
  assert.deepEqual(offenders, [], 'use makeDirectory (sim/files.ts) instead');
});
