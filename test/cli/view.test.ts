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
      await assert.rejects(run([junk]), (e: Error) => e instanceof UsageError && /cannot show/.test(e.message));
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
      const bin = new URL('../../bin/evovla.mjs', import.meta.url).pathname;
      const proc = spawn(process.execPath, [bin, 'view', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      const url = await new Promise<string>((resolve, reject) => {
        proc.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /(http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{48})/.exec(out);
          if (m) resolve(m[1]);
        });
        proc.on('exit', (code) => reject(new Error(`view exited (${code}): ${out}`)));
      });
      assert.match(out, /1 episode\(s\)/);
      const res = await fetch(url);
      assert.equal(res.status, 200);
      assert.match(await res.text(), /evovla viewer/);
      proc.kill('SIGTERM');
      const code = await new Promise<number | null>((r) => proc.on('exit', (c) => r(c)));
      assert.equal(code, 0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
