import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { main } from '../../cli/main.ts';
import { extractSets } from '../../cli/train.ts';
import { scratchDir } from '../tmp.ts';
import { captureOutput } from './capture.ts';

const dir = scratchDir('evovla-cli-train-');

async function run(argv: string[]) {
  return captureOutput(() => main(argv));
}

test('evovla train: config errors are usage errors naming the key path', async () => {
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'name: x\ntask: stack\nphases:\n  - kind: bc\n    stepz: 3\n');
  const r = await run(['train', '--config', bad]);
  assert.equal(r.result, 2);
  assert.match(r.err, /phases\.0\.stepz: unknown key/);
  const missing = await run(['train', '--config', join(dir, 'nope.yaml')]);
  assert.equal(missing.result, 2);
  assert.match(missing.err, /cannot read config/);
  const badSet = await run(['train', '--config', bad, '--set', 'phases.0.stepz']);
  assert.equal(badSet.result, 2);
  assert.match(badSet.err, /key\.path=value/);
  assert.equal((await run(['train', '--export', join(dir, 'none.safetensors')])).result, 2);
});

test('evovla train: repeated --set flags are collected in order', () => {
  assert.deepEqual(extractSets(['--config', 'a.yaml', '--set', 'x=1', '--set=y.z=2', '--resume']), { sets: ['x=1', 'y.z=2'], rest: ['--config', 'a.yaml', '--resume'] });
});

test('evovla eval: bad task, mode and missing policy are usage errors', async () => {
  const r = await run(['eval', '--policy', 'p.onnx', '--task', 'nope']);
  assert.equal(r.result, 2);
  assert.match(r.err, /--task' must be one of/);
  const m = await run(['eval', '--policy', 'p.onnx', '--task', 'stack', '--mode', 'fast']);
  assert.equal(m.result, 2);
  assert.match(m.err, /chunk or ensemble/);
  const p = await run(['eval', '--task', 'stack']);
  assert.equal(p.result, 2);
  assert.match(p.err, /--policy/);
});

test('evovla eval: a missing or malformed policy file is a one-line usage error naming it', async () => {
  const missing = join(dir, 'missing.onnx');
  const m = await run(['eval', '--policy', missing, '--task', 'stack', '--episodes', '1', '--workers', '0']);
  assert.equal(m.result, 2);
  assert.match(m.err, new RegExp(`--policy': cannot read policy '${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}'`));
  assert.doesNotMatch(m.err, /\n\s+at /, 'no stack trace');
  const garbage = join(dir, 'garbage.onnx');
  writeFileSync(garbage, 'not an onnx model\n');
  const g = await run(['eval', '--policy', garbage, '--task', 'stack', '--episodes', '1', '--workers', '0']);
  assert.equal(g.result, 2);
  assert.match(g.err, /--policy': \S*garbage\.onnx: not a readable ONNX model/);
  assert.doesNotMatch(g.err, /\n\s+at /, 'no stack trace');
});

test('evovla train: --resume without a run, or a new run over an existing one, is a usage error', async () => {
  const runs = join(dir, 'runs');
  const base = ['train', '--config', 'configs/bc_stack.yaml', '--no-progress', '--set', `runsDir=${runs}`];
  const r = await run([...base, '--set', 'name=absent', '--resume']);
  assert.equal(r.result, 2);
  assert.match(r.err, /--resume: no run in '.*absent' \(config\.yaml missing\)/);
  assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
  mkdirSync(join(runs, 'taken'), { recursive: true });
  writeFileSync(join(runs, 'taken', 'metrics.jsonl'), '{"step":1}\n');
  const t = await run([...base, '--set', 'name=taken']);
  assert.equal(t.result, 2);
  assert.match(t.err, /run folder '.*taken' already holds a run; pass --resume/);
});

test('evovla eval --sar: a missing SAR model is a one-line usage error naming it', async () => {
  const { VlaConfigSchema } = await import('../../policy/vla/config.ts');
  const { createVla, exportVla, identityStats } = await import('../../policy/vla/model.ts');
  const { taskTokenizer } = await import('../../policy/vla/tokenizer.ts');
  const { robotSpecFor } = await import('../../robot/spec.ts');
  const { TINY_MODEL } = await import('../policy/helpers.ts');
  const cfg = VlaConfigSchema.parse(TINY_MODEL);
  const policy = join(dir, 'tiny.onnx');
  writeFileSync(policy, exportVla(createVla(cfg, taskTokenizer({ maxLength: cfg.maxTokens }), identityStats(), 0), robotSpecFor('airbot_play')));
  const sar = join(dir, 'no-sar', 'sar.onnx');
  const r = await run(['eval', '--policy', policy, '--task', 'stack', '--episodes', '1', '--workers', '0', '--sar', sar]);
  assert.equal(r.result, 2);
  assert.match(r.err, /--sar': cannot load SAR model '.*no-sar\/sar\.onnx': cannot read the SAR metadata/);
  assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
});
