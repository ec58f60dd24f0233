import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeSafetensors } from '../../nn/checkpoint.ts';
import { readOnnxInfo } from '../../robot/policies/onnx_meta.ts';
import { applyOverrides, ConfigError, parseTrainConfig, type BcPhaseConfig, type TrainConfig } from '../../policy/train/config.ts';
import { bcLearningRate } from '../../policy/train/bc.ts';
import { listCheckpoints, trainRun } from '../../policy/train/run.ts';
import { scratchDir } from '../tmp.ts';
import { tinyTrainConfig, writeSyntheticDemos } from './helpers.ts';

const root = scratchDir('evovla-bc-');
const demoDir = join(root, 'demos');
writeSyntheticDemos(demoDir, { episodes: 3, steps: 12, size: 16 });

function config(name: string, overrides: Record<string, unknown> = {}): TrainConfig {
  return tinyTrainConfig(name, join(root, 'runs'), demoDir, {
    phases: [{ kind: 'bc', steps: 6, batch: 4, warmupSteps: 2, logEvery: 2, checkpointEvery: 2, valBatches: 1 }],
    ...overrides,
  });
}

function weights(runDir: string): Map<string, Float32Array> {
  const ckpts = listCheckpoints(join(runDir, 'checkpoints'));
  const { tensors } = decodeSafetensors(readFileSync(ckpts.at(-1)!.file));
  return new Map([...tensors].filter(([k]) => !k.startsWith('optim.')).map(([k, v]) => [k, v.data as Float32Array]));
}

test('config: unknown keys are refused with their path; --set overrides reach nested fields and lists', () => {
  assert.throws(() => parseTrainConfig({ name: 'x', task: 'stack', model: { widht: 3 } }), (e: Error) => e instanceof ConfigError && /model\.?.*widht: unknown key/.test(e.message));
  assert.throws(() => parseTrainConfig({ name: 'x', task: 'stack', phases: [{ kind: 'bc', stepz: 1 }] }), /phases\.0.*stepz: unknown key/);
  assert.throws(() => parseTrainConfig({ name: 'x', task: 'stak' }), /task: unknown task/);
  assert.throws(() => parseTrainConfig({ name: 'x', task: 'stack', phases: [{ kind: 'bc', steps: -1 }] }), /phases\.0\.steps/);
  const raw = applyOverrides({ name: 'x', task: 'stack', phases: [{ kind: 'bc' }] }, ['phases.0.steps=7', 'model.width=32', 'name=y']);
  const cfg = parseTrainConfig(raw);
  assert.equal((cfg.phases[0] as BcPhaseConfig).steps, 7);
  assert.equal(cfg.model.width, 32);
  assert.equal(cfg.name, 'y');
  assert.throws(() => applyOverrides({}, ['nokey']), /key\.path=value/);
});

test('learning rate: linear warmup then cosine to lr * minLrRatio', () => {
  const c = config('lr').phases[0] as BcPhaseConfig;
  const cfg = { ...c, steps: 100, warmupSteps: 10, lr: 1, minLrRatio: 0.1 };
  assert.equal(bcLearningRate(cfg, 5), 0.5);
  assert.equal(bcLearningRate(cfg, 10), 1);
  assert.ok(Math.abs(bcLearningRate(cfg, 100) - 0.1) < 1e-12);
  assert.ok(bcLearningRate(cfg, 50) < 1 && bcLearningRate(cfg, 50) > 0.1);
});

test('bc: same config and seed give the same weights; the loss falls; a different seed differs', async () => {
  const a = await trainRun(config('det-a', { phases: [{ kind: 'bc', steps: 30, batch: 8, lr: 0.003, warmupSteps: 2, logEvery: 5, checkpointEvery: 30, valBatches: 1 }] }));
  const b = await trainRun(config('det-b', { phases: [{ kind: 'bc', steps: 30, batch: 8, lr: 0.003, warmupSteps: 2, logEvery: 5, checkpointEvery: 30, valBatches: 1 }] }));
  const c = await trainRun(config('det-c', { seed: 1, phases: [{ kind: 'bc', steps: 30, batch: 8, lr: 0.003, warmupSteps: 2, logEvery: 5, checkpointEvery: 30, valBatches: 1 }] }));
  const wa = weights(a.runDir);
  const wb = weights(b.runDir);
  for (const [k, v] of wa) assert.deepEqual(wb.get(k), v, `parameter ${k} differs between identical runs`);
  assert.ok([...weights(c.runDir)].some(([k, v]) => v.some((x, i) => x !== wa.get(k)![i])), 'another seed should give other weights');
  const lines = readFileSync(join(a.runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const losses = lines.filter((l) => 'loss' in l).map((l) => l.loss as number);
  assert.ok(losses.at(-1)! < losses[0], `loss should fall: ${losses.join(', ')}`);
  for (const key of ['step', 'loss', 'samples_per_s', 'lr', 'grad_norm']) assert.ok(key in lines[0], `metrics line lacks ${key}`);
  // The exported policy follows the contract.
  const info = readOnnxInfo(readFileSync(a.policy!));
  assert.deepEqual(info.inputs.map((i) => i.name).sort(), ['image_eye_arm', 'image_eye_side', 'instruction', 'proprio']);
  assert.deepEqual(info.outputs.map((o) => o.name).sort(), ['action', 'action_log_std', 'features', 'value_ext', 'value_int']);
  assert.equal(info.metadata['evovla.task'], 'stack');
});

test('--resume continues a killed run to the same weights as an uninterrupted one', async () => {
  const full = await trainRun(config('full'));
  const halted = await trainRun(config('killed'), { haltAfterStep: 2 });
  assert.equal(halted.halted, true);
  assert.equal(listCheckpoints(join(halted.runDir, 'checkpoints')).at(-1)!.step, 2);
  await assert.rejects(() => trainRun(config('killed')), /already holds a run; pass --resume/);
  const resumed = await trainRun(config('killed'), { resume: true });
  const wf = weights(full.runDir);
  const wr = weights(resumed.runDir);
  for (const [k, v] of wf) assert.deepEqual(wr.get(k), v, `parameter ${k} differs after resume`);
  // Metrics match line for line except timing fields.
  const strip = (dir: string) =>
    readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => {
        const m = JSON.parse(l);
        delete m.samples_per_s;
        delete m.elapsed_s;
        return m;
      });
  assert.deepEqual(strip(resumed.runDir), strip(full.runDir));
  // keep-last-N: 3 periodic checkpoints at most, plus best.
  assert.ok(listCheckpoints(join(full.runDir, 'checkpoints')).length <= 3);
});

test('auxiliary privileged-state loss: it falls, validation reports the position error in cm, policy.onnx stays images-only, checkpoints export and resume', async () => {
  const phase = { kind: 'bc', steps: 40, batch: 8, lr: 0.003, warmupSteps: 2, logEvery: 10, checkpointEvery: 20, valBatches: 1, auxState: 1 };
  const run = await trainRun(config('aux', { phases: [phase] }));
  const lines = readFileSync(join(run.runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  const aux = lines.filter((l) => 'l1_aux' in l).map((l) => l.l1_aux as number);
  assert.ok(aux.length >= 3 && aux.at(-1)! < aux[0], `aux loss should fall: ${aux.join(', ')}`);
  const cm = lines.filter((l) => 'val_aux_cm' in l).map((l) => l.val_aux_cm as number);
  assert.equal(cm.length, 2);
  assert.ok(cm.every((v) => Number.isFinite(v) && v > 0), `val_aux_cm ${cm.join(', ')}`);
  // The head is trained and checkpointed, but the deployed policy reads images, text and proprio only.
  assert.ok([...weights(run.runDir).keys()].some((k) => k.startsWith('aux.state.')));
  const info = readOnnxInfo(readFileSync(run.policy!));
  assert.deepEqual(info.outputs.map((o) => o.name).sort(), ['action', 'action_log_std', 'features', 'value_ext', 'value_int']);
  assert.ok(!readFileSync(run.policy!).includes('aux.state'), 'policy.onnx must not carry the auxiliary head');
  const { exportCheckpoint } = await import('../../policy/train/run.ts');
  const out = exportCheckpoint(run.runDir, listCheckpoints(join(run.runDir, 'checkpoints')).at(-1)!.file, join(root, 'aux-ckpt.onnx'));
  assert.deepEqual(readOnnxInfo(readFileSync(out)).inputs.map((i) => i.name).sort(), ['image_eye_arm', 'image_eye_side', 'instruction', 'proprio']);
  // Killed after the first checkpoint and resumed: the same weights, auxiliary head included.
  const halted = await trainRun(config('aux-killed', { phases: [phase] }), { haltAfterStep: 20 });
  assert.equal(halted.halted, true);
  const resumed = await trainRun(config('aux-killed', { phases: [phase] }), { resume: true });
  const wf = weights(run.runDir);
  for (const [k, v] of weights(resumed.runDir)) assert.deepEqual(v, wf.get(k), `parameter ${k} differs after resume`);
});
