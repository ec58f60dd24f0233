import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ModelRunner } from '../../../nn/runner.ts';
import { parseSarConfig } from '../../../rewards/sar/config.ts';
import { SarNetwork } from '../../../rewards/sar/model.ts';

const SIZE = 16;

/** A grey image [1,3,16,16] with a red 4x4 dot whose left column is x0, rows 4-7. */
function dotImage(x0: number): Float32Array {
  const a = new Float32Array(3 * SIZE * SIZE).fill(0.5);
  for (let y = 4; y < 8; y++) {
    for (let x = x0; x < x0 + 4; x++) {
      a[0 * SIZE * SIZE + y * SIZE + x] = 1;
      a[1 * SIZE * SIZE + y * SIZE + x] = 0;
      a[2 * SIZE * SIZE + y * SIZE + x] = 0;
    }
  }
  return a;
}

test('keypoints: a dot moved half a patch onto a patch border moves the keypoint onto the border', async () => {
  const model = parseSarConfig({ model: { imageSize: SIZE, patch: 4, patchWidth: 2, hidden: 8, textWidth: 4, embedDim: 4, keypoints: 1, keypointPatch: 4, keypointChannels: 1 } }).model;
  const net = new SarNetwork(model, 4, 3);
  // One feature = the patch's red minus green summed over its pixels (a red-pixel count on grey),
  // and a steep logit on it, so the softmax weighs the patches holding the dot.
  const stem = net.params.get('sar.image.eye_side.kp.stem.weight');
  stem.data.fill(0);
  for (let i = 0; i < 16; i++) {
    stem.data[i] = 1; // red channel (patch flattened channel-first)
    stem.data[16 + i] = -1; // green
  }
  net.params.get('sar.image.eye_side.kp.stem.bias').data.fill(0);
  net.params.get('sar.image.eye_side.kp.logits.weight').data.fill(20);
  net.params.get('sar.image.eye_side.kp.logits.bias').data.fill(0);
  const runner = await ModelRunner.create({
    params: net.params,
    name: 'kp',
    forward: (g) => ({ xy: net.keypointCoords(g.input('image', ['B', 3, SIZE, SIZE]), 'eye_side') }),
  });
  try {
    const xy = async (x0: number) => (await runner.run({ image: { data: dotImage(x0), shape: [1, 3, SIZE, SIZE] } })).xy.data as Float32Array;
    // 4x4 grid of 4x4 patches; coordinates in patch units from the image centre (-2..2).
    const inPatch = await xy(8); // columns 8-11: patch column 2, centre +0.5; rows 4-7: patch row 1, centre -0.5
    assert.ok(Math.abs(inPatch[0] - 0.5) < 1e-3 && Math.abs(inPatch[1] + 0.5) < 1e-3, `dot in one patch: ${[...inPatch]}`);
    const across = await xy(10); // columns 10-13: half in patch column 2, half in 3
    assert.ok(Math.abs(across[0] - 1.0) < 1e-3 && Math.abs(across[1] + 0.5) < 1e-3, `dot across a border: ${[...across]}`);
  } finally {
    await runner.dispose();
  }
});

test('keypoints join the image MLP input; keypoints 0 builds the patch-only encoder; a keypoint patch that does not divide the image is refused', () => {
  const base = { imageSize: 16, patch: 8, patchWidth: 4, hidden: 8, textWidth: 4, embedDim: 4 };
  const withKp = new SarNetwork(parseSarConfig({ model: { ...base, keypoints: 3, keypointPatch: 4 } }).model, 4, 3);
  // 2 cameras x (4 patches x 4 + 2 x 3 coordinates)
  assert.deepEqual(withKp.params.get('sar.image.mlp.0.weight').shape, [2 * (4 * 4 + 6), 8]);
  assert.ok(withKp.params.has('sar.image.eye_arm.kp.logits.weight'));
  const plain = new SarNetwork(parseSarConfig({ model: { ...base, keypoints: 0 } }).model, 4, 3);
  assert.deepEqual(plain.params.get('sar.image.mlp.0.weight').shape, [2 * 4 * 4, 8]);
  assert.ok(!plain.params.list().some((p) => p.name.includes('.kp.')));
  assert.throws(() => parseSarConfig({ model: { ...base, keypointPatch: 3 } }), /model\.keypointPatch.*must divide/);
});
