/**
 * `evovla demos`, `inspect` and `replay --verify` end to end on one short Stack episode, plus the
 * commands' answers to bad flags and damaged files.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { main } from '../../cli/main.ts';
import { readEpisode } from '../../sim/record/reader.ts';
import { captureOutput } from './capture.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evovla-cli-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Run the CLI, capturing console output. */
async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const { result, out, err } = await captureOutput(() => main(argv));
  return { code: result, out, err };
}

let file = '';
before(async () => {
  const r = await cli('demos', '--task', 'stack', '--episodes', '1', '--seed', '3', '--out', dir, '--json', '--no-progress');
  assert.equal(r.code, 0, r.err);
  const summary = JSON.parse(r.out);
  assert.equal(summary.episodes, 1);
  assert.equal(summary.stages, 18);
  assert.ok(summary.ci95[0] <= summary.successRate && summary.successRate <= summary.ci95[1]);
  file = path.join(dir, 'stack-3.evep');
});

test('demos writes a complete episode file with header, steps and footer', () => {
  assert.ok(fs.existsSync(file));
  assert.ok(!fs.existsSync(`${file}.partial`), 'temp file renamed');
  const ep = readEpisode(file);
  assert.equal(ep.damage, null);
  assert.equal(ep.header?.task, 'stack');
  assert.equal(ep.header?.seed, 3);
  assert.equal(ep.header?.controlHz, 60);
  assert.equal(ep.steps.length, ep.footer?.steps);
  const s = ep.steps[10];
  assert.ok(s.action instanceof Float32Array && s.action.length === 7);
  assert.ok(s.proprio instanceof Float32Array && s.proprio.length === 7);
  assert.ok('middle_block' in s.objects && 'above_middle_block' in s.predicates);
  assert.equal(typeof s.commandedStage, 'number');
});

test('replay --verify reproduces the recorded final state hash', async () => {
  const r = await cli('replay', file, '--verify', '--json');
  assert.equal(r.code, 0, r.err);
  const rep = JSON.parse(r.out);
  assert.equal(rep.match, true);
  assert.equal(rep.replayedHash, readEpisode(file).footer?.finalStateHash);
  assert.equal(rep.firstStageMismatch, -1);
});

test('replay --verify fails on a file whose actions were altered', async () => {
  // Re-record the same episode with one action changed, through the public writer.
  const { EpisodeWriter } = await import('../../sim/record/writer.ts');
  const ep = readEpisode(file);
  const altered = path.join(dir, 'altered.evep');
  const w = EpisodeWriter.open(altered, ep.header!);
  ep.steps.forEach((s, i) => {
    if (i === 5) s.action[0] += 0.2;
    w.append(s);
  });
  w.close(ep.footer!);
  const r = await cli('replay', altered, '--verify');
  assert.equal(r.code, 1);
  assert.match(r.out, /MISMATCH/);
});

test('inspect summarises an intact file and pinpoints damage in a truncated one', async () => {
  const ok = await cli('inspect', file);
  assert.equal(ok.code, 0);
  assert.match(ok.out, /intact/);
  assert.match(ok.out, /task stack, robot airbot_play, seed 3/);
  const bytes = fs.readFileSync(file);
  const cut = path.join(dir, 'cut.evep');
  fs.writeFileSync(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
  const bad = await cli('inspect', cut, '--json');
  assert.equal(bad.code, 1);
  const info = JSON.parse(bad.out);
  assert.equal(info.intact, false);
  assert.equal(info.damage.code, 'truncated');
  assert.ok(info.steps > 0 && info.steps < readEpisode(file).steps.length, 'the intact prefix is reported');
  const rep = await cli('replay', cut, '--verify');
  assert.equal(rep.code, 1);
  assert.match(rep.err, /cannot replay a damaged file: .*truncated|file ends inside record/);
});

test('with no task or output flags, demos runs the default task into demos/<task> under the working directory', async () => {
  const cwd = process.cwd();
  const work = fs.mkdtempSync(path.join(dir, 'defaults-'));
  process.chdir(work);
  try {
    const r = await cli('demos', '--episodes', '1', '--json', '--no-progress');
    assert.equal(r.code, 0, r.err);
    assert.equal(JSON.parse(r.out).task, 'stack');
    const written = readEpisode(path.join(work, 'demos', 'stack', 'stack-0.evep'));
    assert.equal(written.damage, null);
    assert.equal(written.header?.task, 'stack');
    assert.equal(written.header?.seed, 0);
  } finally {
    process.chdir(cwd);
  }
});

test('bad flags are usage errors naming the flag and the expected form', async () => {
  let r = await cli('demos', '--task', 'stack', '--episodes', 'many', '--out', dir);
  assert.equal(r.code, 2);
  assert.match(r.err, /flag '--episodes' expects an integer, got 'many'/);
  r = await cli('demos', '--task', 'nope', '--out', dir);
  assert.equal(r.code, 2);
  assert.match(r.err, /flag '--task' must be one of .*stack.*, got 'nope'/);
  r = await cli('demos', '--task', 'stack', '--out', '');
  assert.equal(r.code, 2);
  assert.match(r.err, /flag '--out' needs a directory, got ''/);
  r = await cli('demos', '--task', 'stack', '--out', dir, '--episodes', '0');
  assert.equal(r.code, 2);
  assert.match(r.err, /'--episodes' must be an integer >= 1, got '0'/);
  r = await cli('inspect');
  assert.equal(r.code, 2);
  assert.match(r.err, /expected exactly one episode file/);
  r = await cli('replay', path.join(dir, 'missing.evep'));
  assert.equal(r.code, 2);
  assert.match(r.err, /does not exist/);
  r = await cli('replay', file, '--fast');
  assert.equal(r.code, 2);
  assert.match(r.err, /unknown flag '--fast'/);
});

test('demos --action-noise records recovery data that replay --verify reproduces from executedAction', async () => {
  const noisyDir = path.join(dir, 'noisy');
  let r = await cli('demos', '--task', 'stack', '--episodes', '1', '--seed', '3', '--out', noisyDir, '--action-noise', '0.01', '--action-noise-hold', '5', '--json', '--no-progress');
  assert.equal(r.code, 0, r.err);
  const noisy = path.join(noisyDir, 'stack-3.evep');
  const ep = readEpisode(noisy);
  assert.deepEqual(ep.header?.meta.actionNoise, { std: 0.01, holdSteps: 5, seed: 0 });
  assert.ok(ep.steps.every((s) => s.executedAction instanceof Float32Array));
  assert.notEqual(ep.footer?.finalStateHash, readEpisode(file).footer?.finalStateHash, 'the noise changed the episode');
  r = await cli('replay', noisy, '--verify', '--json');
  assert.equal(r.code, 0, r.err);
  assert.equal(JSON.parse(r.out).match, true);
  r = await cli('demos', '--task', 'stack', '--out', noisyDir, '--overwrite', '--action-noise', 'lots');
  assert.equal(r.code, 2);
  assert.match(r.err, /flag '--action-noise' must be a number >= 0 \(rad\), got 'lots'/);
});
