/** Cameras in VecEnv workers: the env setup module gives workers the same images as the serial path. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StepResult } from '../../../sim/types.ts';
import { ENV_CAMERAS_MODULE } from '../../../sim/render/vec_cameras.ts';
import { VecEnv } from '../../../sim/vec_env.ts';

const TASKS_MODULE = new URL('../../../tasks/index.ts', import.meta.url).href;

test('a VecEnv with cameras renders byte-equal images in worker processes and in this thread', async () => {
  const make = (workers: number) =>
    VecEnv.create({
      taskModule: TASKS_MODULE,
      taskId: 'blocks',
      numEnvs: 2,
      workers,
      config: { cameras: [{ name: 'eye_side', width: 32, height: 24 }, { name: 'eye_arm', width: 16, height: 16 }] },
      envSetupModule: ENV_CAMERAS_MODULE,
      envSetupOptions: { randomization: { objectColorJitter: 0.2, cameraPositionJitter: 0.01 } },
    });
  const serial = await make(0);
  const worker = await make(2);
  try {
    const seeds = [3, 4];
    const a = await serial.reset(seeds);
    const b = await worker.reset(seeds);
    const frames: Array<[Pick<StepResult, 'obs'>[], Pick<StepResult, 'obs'>[]]> = [[a, b]];
    const q0 = a.map((r) => [...r.info.state.q, 0.02]);
    for (let k = 0; k < 3; k++) {
      const actions = q0.map((q) => q.map((x, j) => (j === 0 ? x + 0.05 * (k + 1) : x)));
      frames.push([(await serial.step(actions)).results, (await worker.step(actions)).results]);
    }
    for (const [s, w] of frames) {
      for (let i = 0; i < seeds.length; i++) {
        const si = s[i].obs.images!;
        const wi = w[i].obs.images!;
        assert.deepEqual(Object.keys(wi).sort(), ['eye_arm', 'eye_side']);
        for (const name of ['eye_side', 'eye_arm']) {
          assert.ok(wi[name].rgb instanceof Uint8Array && wi[name].rgb.some((x) => x !== 0), `${name}: worker image is empty`);
          assert.deepEqual(Buffer.from(wi[name].rgb.buffer, wi[name].rgb.byteOffset, wi[name].rgb.byteLength), Buffer.from(si[name].rgb.buffer, si[name].rgb.byteOffset, si[name].rgb.byteLength));
          assert.deepEqual(wi[name].depth, si[name].depth);
          assert.deepEqual(wi[name].segmentation, si[name].segmentation);
        }
      }
    }
    // The two envs had different seeds, so the check above compared different pictures.
    assert.notDeepEqual(a[0].obs.images!.eye_side.rgb, a[1].obs.images!.eye_side.rgb);
  } finally {
    await serial.close();
    await worker.close();
  }
});

test('cameras in worker threads are refused with the reason and the way out', async () => {
  await assert.rejects(
    VecEnv.create({
      taskModule: TASKS_MODULE,
      taskId: 'blocks',
      numEnvs: 1,
      workers: 1,
      workerKind: 'thread',
      config: { cameras: [{ name: 'eye_side', width: 16, height: 16 }] },
      envSetupModule: ENV_CAMERAS_MODULE,
    }),
    /one thread per process.*workerKind 'process'/,
  );
});
