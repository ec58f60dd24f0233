/** `evovla view`: flags, and a served page for real episode files. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { run } from '../../cli/view.ts';
import { UsageError } from '../../cli/main.ts';
import { createEnv } from '../../sim/env.ts';
import { getTask } from '../../tasks/index.ts';
import { runExpertEpisode } from '../../tasks/rollout.ts';
import { captureOutput } from './capture.ts';

describe('evovla view', () => {
  it('rejects bad flags and inputs naming the flag and the expected form', async () => {
    await assert.rejects(run([]), (e: Error) => e instanceof UsageError && /at least one episode file/.test(e.message));
    await assert.rejects(run(['--port', 'x', 'a']), (e: Error) => e instanceof UsageError && /'--port' expects an integer/.test(e.message));
    await assert.rejects(run(['--port', '70000', 'a']), (e: Error) => e instanceof UsageError && /0\.\.65535/.test(e.message));
    await assert.rejects(run(['--bogus', 'a']), (e: Error) => e instanceof UsageError && /unknown flag '--bogus'/.test(e.message));
    await assert.rejects(run(['/nonexistent/ep.evep']), (e: Error) => e instanceof UsageError && /no such file/.test(e.message));
    const junk = path.join(os.tmpdir(), `evovla-junk-${process.pid}.evep`);
    fs.writeFileSync(junk, 'not an episode');
    try {
      const { result, err } = await captureOutput(() => run([junk]));
      assert.equal(result, 1);
      assert.match(err, /cannot show .*evovla-junk-\d+\.evep: not an evovla episode file/);
      assert.match(err, /none of the 1 file\(s\) can be shown/);
    } finally {
      fs.rmSync(junk);
    }
  });

  it('serves a directory of episodes on 127.0.0.1 with a token and stops on SIGTERM', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evovla-view-'));
    try {
      const task = getTask('blocks');
      const env = await createEnv(task);
      try {
        runExpertEpisode(env, task, 0, { file: path.join(dir, 'blocks-0.evep') });
      } finally {
        env.free();
      }
      // A zero-length file (what a crash on a full disk leaves) does not hide the good one.
      fs.writeFileSync(path.join(dir, 'blocks-1.evep'), '');
      const bin = new URL('../../bin/evovla.mjs', import.meta.url).pathname;
      const proc = spawn(process.execPath, [bin, 'view', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const url = await new Promise<string>((resolve, reject) => {
        proc.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /(http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{48})/.exec(out);
          if (m) resolve(m[1]);
        });
        proc.on('exit', (code) => reject(new Error(`view exited (${code}): ${out}`)));
      });
      const exited = new Promise<number | null>((r) => proc.on('exit', (c) => r(c)));
      try {
        assert.match(out, /1 episode\(s\) \(1 file\(s\) could not be shown\)/);
        const res = await fetch(url);
        assert.equal(res.status, 200);
        assert.match(await res.text(), /evovla viewer/);
      } finally {
        proc.kill('SIGTERM');
      }
      assert.equal(await exited, 0);
      // Read after exit: stderr and stdout are separate pipes, so their order is not guaranteed.
      assert.match(err, /cannot show .*blocks-1\.evep: file is 0 bytes, shorter than the 12-byte preamble/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
