/** Image policies on the sim twin: rendered frames reach the policy; camera shapes are checked. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FakeClock } from '../../robot/clock.ts';
import { policyObservation } from '../../robot/deploy.ts';
import { loadOnnxPolicy } from '../../robot/policies/onnx.ts';
import { writeTinyPolicy } from '../../robot/policies/tiny_mlp.ts';
import { SpecMismatchError, specMismatches } from '../../robot/safety/spec_check.ts';
import { SimTwin } from '../../robot/sim_twin.ts';
import { createEnv } from '../../sim/env.ts';
import { attachEnvCameras } from '../../sim/render/env_cameras.ts';
import { getTask } from '../../tasks/index.ts';
import { scratchDir } from '../tmp.ts';

describe('sim twin cameras', () => {
  it('hands rendered frames to an image policy, whose answer depends on them', async () => {
    const cam = { name: 'eye_side', width: 32, height: 24 };
    const env = await createEnv(getTask('blocks'), { cameras: [cam] });
    const cams = await attachEnvCameras(env);
    const twin = new SimTwin({ env, clock: new FakeClock(0) });
    const path = join(scratchDir('evovla-cam-'), 'cam.onnx');
    writeTinyPolicy(path, { camera: cam });
    const policy = await loadOnnxPolicy(path);
    try {
      assert.deepEqual(twin.spec().cameras, [cam]);
      assert.deepEqual(specMismatches(twin.spec(), policy.spec, 1e-3), []);
      await twin.connect();
      const obs = twin.read();
      const frame = obs.images?.eye_side;
      assert.ok(frame && frame.width === 32 && frame.height === 24 && frame.rgb.length === 32 * 24 * 3);
      const withImage = await policy.act(policyObservation(obs, 'x'));
      const black = await policy.act(policyObservation({ ...obs, images: { eye_side: { ...frame, rgb: new Uint8Array(frame.rgb.length) } } }, 'x'));
      const mean = frame.rgb.reduce((a, b) => a + b, 0) / frame.rgb.length / 255;
      assert.ok(mean > 0.05, 'the rendered frame is not black');
      assert.ok(Math.abs(withImage[0] - black[0] - 0.01 * mean) < 1e-4, 'the image reached the policy');
      // After a step the twin reports the new frame.
      twin.send([...obs.q, obs.gripper]);
      assert.notEqual(twin.read().images?.eye_side, frame);
      // A policy trained on another image size is refused.
      const wrong = join(scratchDir('evovla-cam-'), 'wrong.onnx');
      writeTinyPolicy(wrong, { camera: { name: 'eye_side', width: 64, height: 64 } });
      const other = await loadOnnxPolicy(wrong);
      assert.throws(() => {
        const problems = specMismatches(twin.spec(), other.spec, 1e-3);
        if (problems.length) throw new SpecMismatchError(problems);
      }, /eye_side' is 32x24 on the robot but 64x64 in the policy/);
      await other.close();
    } finally {
      await policy.close();
      cams?.detach();
      await twin.disconnect();
    }
  });
});
