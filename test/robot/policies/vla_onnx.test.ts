/** The deploy loader runs the VLA's policy.onnx: instruction tokens, memory inputs, action chunks. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { exportInference } from '../../../nn/model.ts';
import { createSession } from '../../../nn/runtime.ts';
import { VlaConfigSchema } from '../../../policy/vla/config.ts';
import { createVla, exportVla, identityStats, vlaMetadata } from '../../../policy/vla/model.ts';
import { taskTokenizer } from '../../../policy/vla/tokenizer.ts';
import { loadOnnxPolicy, PolicyFileError } from '../../../robot/policies/onnx.ts';
import { robotSpecFor } from '../../../robot/spec.ts';
import { scratchDir } from '../../tmp.ts';

const dir = scratchDir('evovla-vla-deploy-');
const cfg = VlaConfigSchema.parse({ imageSize: 16, stemPatch: 4, stemChannels: 4, groupPatch: 2, width: 16, depth: 1, heads: 2, chunk: 4, headHidden: 16, memorySlots: 2 });
const tok = taskTokenizer({ maxLength: cfg.maxTokens });
const vla = createVla(cfg, tok, identityStats(), 7);
const frame = (v: number) => ({ width: 16, height: 16, rgb: new Uint8Array(16 * 16 * 3).fill(v) });

test('deploy runs a VLA policy.onnx: the action is the chunk\'s first step for the tokenised instruction', async () => {
  const bytes = exportVla(vla, robotSpecFor('airbot_play'));
  const path = join(dir, 'vla.onnx');
  writeFileSync(path, bytes);
  const policy = await loadOnnxPolicy(path);
  assert.deepEqual(policy.spec.cameras.map((c) => c.name), ['eye_side', 'eye_arm']);
  const proprio = Float32Array.from([0.1, -0.2, 0.3, 0.1, 0, 0.2, 0.01]);
  const instruction = 'stack the middle block on the base block';
  const obs = { proprio, instruction, images: { eye_side: frame(100), eye_arm: frame(30) } };
  const a = await policy.act(obs);
  // The same model run directly with the same inputs.
  const s = await createSession(bytes);
  const toChw = (v: number) => new Float32Array(3 * 16 * 16).fill(v / 255);
  const out = await s.run({
    proprio: { data: proprio, shape: [1, 7] },
    image_eye_side: { data: toChw(100), shape: [1, 3, 16, 16] },
    image_eye_arm: { data: toChw(30), shape: [1, 3, 16, 16] },
    instruction: { data: tok.encode([instruction]).ids, shape: [1, cfg.maxTokens] },
    memory: { data: new Float32Array(2 * cfg.width), shape: [1, 2, cfg.width] },
    memory_mask: { data: new Float32Array(2), shape: [1, 2] },
  });
  const expected = (out.action.data as Float32Array).slice(0, 7);
  for (let i = 0; i < 7; i++) assert.ok(Math.abs(a[i] - expected[i]) < 1e-6, `field ${i}: ${a[i]} vs ${expected[i]}`);
  const other = await policy.act({ ...obs, instruction: 'put the jujube into the cup' });
  assert.ok(Array.from(other).some((x, i) => Math.abs(x - a[i]) > 1e-7), 'the instruction must reach the model');
  await policy.close();
});

test('an instruction input without evovla.tokenizer metadata is refused at load', async () => {
  const meta = vlaMetadata(vla, robotSpecFor('airbot_play'));
  delete meta['evovla.tokenizer'];
  const path = join(dir, 'no-tok.onnx');
  writeFileSync(path, exportInference(vla.inference, meta));
  await assert.rejects(loadOnnxPolicy(path), (e: unknown) => e instanceof PolicyFileError && /instruction needs metadata evovla.tokenizer/.test(e.message));
});
