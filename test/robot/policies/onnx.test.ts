/** The ONNX deploy policy: the file contract is checked at load, and the policy drives the sim twin. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MLP } from '../../../nn/layers.ts';
import { exportInference } from '../../../nn/model.ts';
import { ParamSet } from '../../../nn/params.ts';
import { readOnnxInfo } from '../../../robot/policies/onnx_meta.ts';
import { loadOnnxPolicy, PolicyFileError } from '../../../robot/policies/onnx.ts';
import { tinyPolicyBytes, writeTinyPolicy } from '../../../robot/policies/tiny_mlp.ts';
import { specMismatches } from '../../../robot/safety/spec_check.ts';
import { robotSpecFor } from '../../../robot/spec.ts';
import { scratchDir } from '../../tmp.ts';

const dir = scratchDir('evovla-onnx-');
function file(name: string, bytes: Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

describe('ONNX deploy policy', () => {
  it('reads inputs, outputs and metadata from the file', () => {
    const info = readOnnxInfo(tinyPolicyBytes());
    assert.deepEqual(info.inputs.map((v) => [v.name, v.elemType, v.shape]), [['proprio', 1, ['B', 7]]]);
    assert.equal(info.outputs[0].name, 'action');
    assert.equal(info.metadata['evovla.joint_names'], 'joint1,joint2,joint3,joint4,joint5,joint6');
  });

  it('loads a contract-following file and answers near the current pose', async () => {
    const path = join(dir, 'tiny.onnx');
    writeTinyPolicy(path, { seed: 4 });
    const policy = await loadOnnxPolicy(path);
    assert.deepEqual(policy.spec.jointNames, robotSpecFor('airbot_play').jointNames);
    assert.deepEqual(specMismatches(robotSpecFor('airbot_play'), policy.spec, 1e-3), []);
    const proprio = Float32Array.from([0.1, -0.5, 0.9, 1.5, -1.3, -1.5, 0.02]);
    const a = await policy.act({ proprio, instruction: 'x' });
    assert.equal(a.length, 7);
    for (let i = 0; i < 7; i++) assert.ok(Math.abs(a[i] - proprio[i]) <= 0.05 + 1e-6, `field ${i}: ${a[i]} vs ${proprio[i]}`);
    await policy.close();
  });

  it('refuses files that break the contract, saying what it found', async () => {
    const params = new ParamSet(1);
    const net = new MLP(params, 'p', [7, 8, 7]);
    const wrongInput = file('wrong_input.onnx', exportInference({ params, forward: (g) => ({ action: net.apply(g.input('state', ['B', 7])) }) }, { 'evovla.joint_names': 'a' }));
    await assert.rejects(loadOnnxPolicy(wrongInput), (e: unknown) => e instanceof PolicyFileError && /no input named 'proprio' \(inputs: state\)/.test(e.message));
    const wrongOutput = file('wrong_output.onnx', exportInference({ params, forward: (g) => ({ y: net.apply(g.input('proprio', ['B', 7])) }) }, { 'evovla.joint_names': 'a' }));
    await assert.rejects(loadOnnxPolicy(wrongOutput), /no output named 'action' \(outputs: y\)/);
    const net6 = new MLP(params, 'q', [7, 8, 6]);
    const wrongWidth = file('wrong_width.onnx', exportInference({ params, forward: (g) => ({ action: net6.apply(g.input('proprio', ['B', 7])) }) }, { 'evovla.joint_names': 'a' }));
    await assert.rejects(loadOnnxPolicy(wrongWidth), /output action is Float32Array \[1, 6\], expected float32 \[B, 7\]/);
    const noMeta = file('no_meta.onnx', exportInference({ params, forward: (g) => ({ action: net.apply(g.input('proprio', ['B', 7])) }) }));
    await assert.rejects(loadOnnxPolicy(noMeta), /no evovla.joint_names metadata/);
    const ee = file('ee.onnx', tinyPolicyBytes({ metadata: { 'evovla.action_mode': 'ee_delta' } }));
    await assert.rejects(loadOnnxPolicy(ee), /action_mode is 'ee_delta'/);
    await assert.rejects(loadOnnxPolicy(file('junk.onnx', new Uint8Array([1, 2, 3]))), /not a readable ONNX model|not an ONNX model/);
  });

  it('records joint names that the spec check compares with the robot', async () => {
    const policy = await loadOnnxPolicy(file('ur.onnx', tinyPolicyBytes({ jointNames: ['a', 'b', 'c', 'd', 'e', 'f'] })));
    assert.match(specMismatches(robotSpecFor('airbot_play'), policy.spec, 1e-3)[0], /differ from the policy's \[a, b, c, d, e, f\]/);
    await policy.close();
  });
});
