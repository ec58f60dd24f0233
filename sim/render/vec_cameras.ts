/**
 * Env setup module for VecEnv (its `envSetupModule` option): attaches the env config's cameras to
 * every env, in this thread (0 workers) or in worker processes, so observations carry images.
 *
 * ```ts
 * const vec = await VecEnv.create({ taskModule, taskId: 'stack', numEnvs: 8, workers: 2,
 *   config: { cameras: [{ name: 'eye_side', width: 128, height: 128 }] },
 *   envSetupModule: ENV_CAMERAS_MODULE, envSetupOptions: { randomization: { objectColorJitter: 0.1 } } });
 * ```
 * `envSetupOptions` are the EnvCameraOptions of attachEnvCameras (plain data).
 *
 * Workers are child processes (`workerKind` below): `gl` 9 is not a context-aware native module,
 * so it loads in one thread per process only, and a second thread (main or worker) that renders
 * fails with "Module did not self-register".
 */
import type { SimEnv } from '../env.ts';
import type { EnvSetupContext, EnvTeardown, WorkerKind } from '../vec_env.ts';
import { attachEnvCameras, type EnvCameraOptions } from './env_cameras.ts';
import { prepareHeadless } from './headless.ts';

/** This module's URL, for VecEnv's `envSetupModule`. */
export const ENV_CAMERAS_MODULE = import.meta.url;

/** The worker kind VecEnv uses with this module unless its options name one. */
export const workerKind: WorkerKind = 'process';

/**
 * Main thread, before any worker starts, when cameras are configured: load `gl` and make sure an
 * X display exists, so workers inherit DISPLAY (a worker thread cannot set it for native code: its
 * process.env is a copy) and a missing piece fails here, naming what to install. With worker
 * processes, this process also stays connected to the display (see prepareHeadless).
 */
export async function prepareMain(_options: unknown, context: EnvSetupContext): Promise<void> {
  if (context.config.cameras.length === 0) return;
  if (context.workers > 0 && context.workerKind === 'thread') {
    throw new RangeError(
      "cameras in VecEnv worker threads: the native 'gl' module loads in one thread per process only; use workerKind 'process' (the default with this setup module) or workers: 0",
    );
  }
  await prepareHeadless({ holdDisplay: context.workers > 0 });
}

/** Attaches the env config's cameras to `env`; the teardown frees the GL context. */
export async function setupEnv(env: SimEnv, options: EnvCameraOptions | undefined): Promise<EnvTeardown | undefined> {
  const cams = await attachEnvCameras(env, options ?? {});
  return cams ? () => cams.detach() : undefined;
}
