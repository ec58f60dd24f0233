/**
 * The interop commands' command lines: `evovla export` / `import` answer bad flags naming the flag
 * and the expected form, and `evovla view` serves a run folder (its metrics and eval episodes).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { main } from '../../cli/main.ts';
import { run as view } from '../../cli/view.ts';
import { UsageError } from '../../cli/main.ts';
import { writeEpisode } from '../interop/helpers.ts';
import { captureOutput } from './capture.ts';
import { scratchDir } from '../tmp.ts';

const dir = scratchDir('evovla-cli-interop-');

async function cli(...argv: string[]): Promise<{ code: number; err: string }> {
  const { result, err } = await captureOutput(() => main(argv));
  return { code: result, err };
}

test('export and import refuse bad flags and inputs, naming the flag or file', async () => {
  const ep = writeEpisode(dir, 'stack-0', 0, 3, { cameras: false });
  const cases: Array<[string[], RegExp]> = [
    [['export', '--out', path.join(dir, 'x'), ep], /missing required flag '--format/],
    [['export', '--format', 'csv', '--out', path.join(dir, 'x'), ep], /'--format' expects lerobot or mcap, got 'csv'/],
    [['export', '--format', 'lerobot', ep], /missing required flag '--out/],
    [['export', '--format', 'lerobot', '--out', path.join(dir, 'x')], /at least one episode file/],
    [['export', '--format', 'lerobot', '--out', path.join(dir, 'x'), path.join(dir, 'missing.evep')], /no such file or directory/],
    [['import', '--format', 'lerobot', '--out', path.join(dir, 'y')], /expected one dataset directory, got 0/],
    [['import', '--format', 'rlds', '--out', path.join(dir, 'y'), dir], /'--format' expects lerobot, got 'rlds'/],
    [['import', '--format', 'lerobot', '--out', path.join(dir, 'y'), dir], /cannot read dataset info .*meta\/info\.json/],
  ];
  for (const [argv, message] of cases) {
    const r = await cli(...argv);
    assert.equal(r.code, 2, argv.join(' '));
    assert.match(r.err, message, argv.join(' '));
  }
  const damaged = path.join(dir, 'damaged.evep');
  fs.writeFileSync(damaged, fs.readFileSync(ep).subarray(0, 200));
  const r = await cli('export', '--format', 'mcap', '--out', path.join(dir, 'd.mcap'), damaged);
  assert.equal(r.code, 2);
  assert.match(r.err, /damaged\.evep: /);
});

test('view serves a run folder: its metric rows and eval episodes', async () => {
  const runDir = path.join(dir, 'runs', 'bc-1');
  fs.mkdirSync(path.join(runDir, 'eval_episodes'), { recursive: true });
  fs.writeFileSync(path.join(runDir, 'config.yaml'), 'task: stack\n');
  fs.writeFileSync(path.join(runDir, 'metrics.jsonl'), '{"step": 1, "loss": 2}\n{"step": 2, "loss": 1}\n');
  writeEpisode(path.join(runDir, 'eval_episodes'), 'stack-9', 0, 3, { cameras: false });
  await assert.rejects(view([runDir, runDir + '/']), (e: Error) => e instanceof UsageError && /one run folder at a time/.test(e.message));
  const bin = new URL('../../bin/evovla.mjs', import.meta.url).pathname;
  const proc = spawn(process.execPath, [bin, 'view', runDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /(http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{48})/.exec(out);
      if (m) resolve(m[1]);
    });
    proc.on('exit', (code) => reject(new Error(`view exited (${code}): ${out}`)));
  });
  assert.match(out, /run bc-1 \(2 metric rows\), 1 episode\(s\)/);
  assert.equal((await fetch(url)).status, 200);
  proc.kill('SIGTERM');
  assert.equal(await new Promise<number | null>((r) => proc.on('exit', (c) => r(c))), 0);
});
