/** The env adapter: cameras named in the env config put images into observations. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createEnv, loadEnvConfig } from '../../../sim/env.ts';
import { lookAtPose, projectPoint } from '../../../sim/render/camera.ts';
import { attachEnvCameras, parseCameraList } from '../../../sim/render/env_cameras.ts';
import { getTask } from '../../../tasks/index.ts';

const cameras = [
  { name: 'eye_side', width: 64, height: 48 },
  { name: 'eye_arm', width: 32, height: 32 },
];

describe('attachEnvCameras', () => {
  it('is off when the env config names no cameras', async () => {
    const env = await createEnv(getTask('blocks'));
    try {
      assert.equal(await attachEnvCameras(env), null);
      assert.equal(env.reset({ seed: 1 }).obs.images, undefined);
    } finally {
      env.free();
    }
  });

  it('adds RGB, depth and segmentation of every configured camera to reset and step observations', async () => {
    const task = getTask('blocks');
    const env = await createEnv(task, { cameras });
    const cams = await attachEnvCameras(env);
    assert.ok(cams);
    try {
      const { obs, info } = env.reset({ seed: 3 });
      assert.deepEqual(Object.keys(obs.images ?? {}).sort(), ['eye_arm', 'eye_side']);
      const side = obs.images!.eye_side;
      assert.equal(side.width, 64);
      assert.equal(side.height, 48);
      assert.equal(side.rgb.length, 64 * 48 * 3);
      const seen = new Set(side.segmentation);
      const labels = cams.labels;
      // The side view shows the table, the robot, and every object of the scene that is not hidden.
      for (const name of Object.keys(info.state.objects)) {
        assert.ok(labels.includes(name), `label table lacks object '${name}'`);
      }
      assert.ok(seen.has(labels.indexOf('table')), 'side camera should see the table');
      assert.ok([...seen].some((id) => labels[id].startsWith('robot/')), 'side camera should see the robot');
      const blocks = labels.map((l, id) => [l, id] as const).filter(([l]) => /block/.test(l));
      assert.ok(blocks.some(([, id]) => seen.has(id)), `side camera should see a block (labels ${labels.join(', ')})`);
      // The wrist camera sees its own fingers.
      const arm = obs.images!.eye_arm;
      assert.ok([...new Set(arm.segmentation)].some((id) => /finger/.test(labels[id])), 'wrist camera should see a finger');
      const step = env.step(env.expertTools().actionMode === 'joint' ? [...info.state.q, 0.04] : [0, 0, 0, 0, 0, 0, 0.04]);
      assert.equal(step.obs.images!.eye_side.width, 64);
    } finally {
      cams.detach();
      env.free();
    }
  });

  it('renders the same images for the same seed in another env', async () => {
    const task = getTask('blocks');
    const a = await createEnv(task, { cameras });
    const b = await createEnv(task, { cameras });
    const ca = await attachEnvCameras(a, { randomization: { objectColorJitter: 0.2, cameraPositionJitter: 0.01 } });
    const cb = await attachEnvCameras(b, { randomization: { objectColorJitter: 0.2, cameraPositionJitter: 0.01 } });
    try {
      const ia = a.reset({ seed: 5 }).obs.images!;
      const ib = b.reset({ seed: 5 }).obs.images!;
      assert.deepEqual(ia.eye_side.rgb, ib.eye_side.rgb);
      assert.deepEqual(ia.eye_arm.depth, ib.eye_arm.depth);
      const other = b.reset({ seed: 6 }).obs.images!;
      assert.notDeepEqual(other.eye_side.rgb, ia.eye_side.rgb);
    } finally {
      ca!.detach();
      cb!.detach();
      a.free();
      b.free();
    }
  });

  it('takes a camera fovy and lookAt mount from a YAML env config', async () => {
    // 95 x 71 pixels, so the principal point (47, 35) is a pixel centre. The camera
    // looks down at 45 degrees from 0.4 m above the table top (z = 0.75) at a point of the table
    // clear of the blocks and the arm.
    const dir = mkdtempSync(join(tmpdir(), 'evovla-cameras-'));
    const file = join(dir, 'run.yaml');
    writeFileSync(
      file,
      ['cameras:', '  - name: table_view', '    width: 95', '    height: 71', '    fovy: 40', '    mount: {kind: lookAt, eye: [0.6, -0.05, 1.15], target: [0.6, 0.35, 0.75]}', ''].join('\n'),
    );
    const env = await createEnv(getTask('blocks'), loadEnvConfig(file));
    const cams = await attachEnvCameras(env);
    assert.ok(cams);
    try {
      const fy = 71 / 2 / Math.tan((20 * Math.PI) / 180);
      const [spec] = cams.rig.specs;
      assert.ok(Math.abs(spec.intrinsics.fy - fy) < 1e-9 && Math.abs(spec.intrinsics.fx - fy) < 1e-9, `fx, fy = ${spec.intrinsics.fx}, ${spec.intrinsics.fy}`);
      const pose = lookAtPose([0.6, -0.05, 1.15], [0.6, 0.35, 0.75]);
      // The target is the principal point; 5 cm to its right (+X, perpendicular to the axis at
      // depth 0.4 * sqrt 2) is fy * 0.05 / 0.5657 = 8.62 pixels to the right.
      const t = projectPoint(spec, pose, [0.6, 0.35, 0.75]);
      assert.ok(Math.abs(t.u - 47) < 1e-9 && Math.abs(t.v - 35) < 1e-9, `target at (${t.u}, ${t.v})`);
      const r = projectPoint(spec, pose, [0.65, 0.35, 0.75]);
      assert.ok(Math.abs(r.u - (47 + (fy * 0.05) / Math.hypot(0.4, 0.4))) < 1e-9 && Math.abs(r.v - 35) < 1e-9, `point at (${r.u}, ${r.v})`);
      // The rendered depth down the centre column is the table's: a ray tan(a) = (35 - v) / fy
      // above the axis meets the table top at depth 0.4 / (sin 45 * (1 - tan a)).
      const img = env.reset({ seed: 2 }).obs.images!.table_view;
      assert.equal(img.width, 95);
      assert.equal(img.height, 71);
      for (const v of [12, 35, 60]) {
        const i = v * 95 + 47;
        const expected = 0.4 / (Math.SQRT1_2 * (1 - (35 - v) / fy));
        assert.equal(cams.labels[img.segmentation![i]], 'table', `row ${v}`);
        assert.ok(Math.abs(img.depth![i] - expected) < 1e-3, `row ${v}: depth ${img.depth![i]}, expected ${expected}`);
      }
    } finally {
      cams.detach();
      env.free();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names a camera without a placement', async () => {
    const env = await createEnv(getTask('blocks'), { cameras: [{ name: 'ceiling', width: 32, height: 32 }] });
    try {
      await assert.rejects(attachEnvCameras(env), /camera 'ceiling' has no placement: give it a mount in the env config/);
    } finally {
      env.free();
    }
  });

  it('parses camera list flags and names the expected form', () => {
    assert.deepEqual(parseCameraList('eye_side,eye_arm@224x160'), [
      { name: 'eye_side', width: 224, height: 160 },
      { name: 'eye_arm', width: 224, height: 160 },
    ]);
    assert.deepEqual(parseCameraList('eye_arm'), [{ name: 'eye_arm', width: 128, height: 128 }]);
    assert.throws(() => parseCameraList('eye_side@128'), /NAME\[,NAME...\]\[@WIDTHxHEIGHT\]/);
    assert.throws(() => parseCameraList('a,a'), /repeat/);
    assert.throws(() => parseCameraList('a@4x4'), /8\.\.2048/);
  });
});
