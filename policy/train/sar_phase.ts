/**
 * The SAR phase of a training run (`- kind: sar`): trains the stage-aligned reward's scorer
 * (rewards/sar/: triplet loss on expert frames and simulator near-miss states) for the run's task,
 * writes `<run>/sar/sar.onnx` + `sar.json`, and hands the frozen scorer to the PPO phase that
 * follows. Its settings are rewards/sar/config.ts's (`model`, `tau`, `alpha`, `gate`, `train`,
 * `nearMiss`, `eval`), with the same defaults as `evovla sar train`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { parseSarConfig, sarConfigSchema } from '../../rewards/sar/config.ts';
import { trainingFrames, type FrameRenderer } from '../../rewards/sar/data.ts';
import { SarScorer } from '../../rewards/sar/scorer.ts';
import { saveSar, trainSar } from '../../rewards/sar/train.ts';
import { createEnv } from '../../sim/env.ts';
import { CameraRig } from '../../sim/render/cameras.ts';
import { defaultCameraConfig, mirrorDescOf } from '../../sim/render/env_cameras.ts';
import { Rng } from '../../sim/rng.ts';
import { getRobot } from '../../sim/robot/index.ts';
import type { Task } from '../../sim/task.ts';
import type { StageScorer } from './evovla_rewards.ts';

/** `- kind: sar`: the SAR settings of rewards/sar/config.ts. */
export const SarPhaseSchema = z.strictObject({ kind: z.literal('sar'), ...sarConfigSchema.shape });
export type SarPhaseConfig = z.infer<typeof SarPhaseSchema>;

/** What the phase reports. */
export interface SarPhaseResult {
  model: string;
  frames: { demo: number; nearMiss: number };
  finalLoss: number | null;
  seconds: number;
  stoppedEarly: boolean;
}

/**
 * The SAR scorer's cameras: sim/render's built-in `eye_side` and `eye_arm` placements rendered
 * RGB-only at the scorer's image size, as a `FrameRenderer` for rewards/sar (which imports no
 * renderer itself). Same placements as the policy's cameras, so a SAR model scores what a policy
 * sees. `dispose()` frees its GL context.
 */
export async function createSarRenderer(task: Task, size: number): Promise<FrameRenderer & { dispose(): void }> {
  const probe = task.buildScene(task.randomize(new Rng(0)));
  const baseLink = getRobot(probe.robot).baseLink;
  const cameras = ['eye_side', 'eye_arm'].map((name) => ({ ...defaultCameraConfig(name, baseLink, size, size)!, depth: false, segmentation: false }));
  const rig = await CameraRig.create({ scene: mirrorDescOf(probe), cameras });
  return {
    setScene: (randomization) => rig.setScene(mirrorDescOf(task.buildScene(randomization))),
    render: (state) => {
      const f = rig.render(state);
      return { eye_side: f.eye_side.rgb, eye_arm: f.eye_arm.rgb };
    },
    dispose: () => rig.dispose(),
  };
}

/** The SAR model file of a run folder. */
export function sarModelPath(runDir: string): string {
  return join(runDir, 'sar', 'sar.onnx');
}

/** Trains the scorer (or reuses `<run>/sar/sar.onnx` when a resumed run already has it). */
export async function runSarPhase(cfg: SarPhaseConfig, deps: { task: Task; runDir: string; log: (line: string) => void; progress: (step: number, total: number, note: string) => void }): Promise<{ result: SarPhaseResult; scorer: SarScorer }> {
  const { kind: _kind, ...settings } = cfg;
  const sar = parseSarConfig(settings, 'phases (sar)');
  const path = sarModelPath(deps.runDir);
  const t0 = performance.now();
  if (existsSync(path)) {
    deps.log(`sar: reusing ${path}`);
    return { result: { model: path, frames: { demo: 0, nearMiss: 0 }, finalLoss: null, seconds: 0, stoppedEarly: false }, scorer: await SarScorer.load(path) };
  }
  const env = await createEnv(deps.task);
  const renderer = await createSarRenderer(deps.task, sar.model.imageSize);
  try {
    let seeds = 0;
    const frames = trainingFrames(env, deps.task, renderer, sar, new Rng(sar.train.seed).fork('near-miss'), (line) => {
      seeds++;
      deps.progress(seeds, sar.train.seeds.length, `frames: ${line}`);
    });
    deps.log(`sar: ${frames.length} labelled frames from ${sar.train.seeds.length} expert episodes, training ${sar.train.steps} steps`);
    const trained = await trainSar(deps.task, frames, sar, (line) => deps.log(`sar: ${line}`));
    saveSar(join(deps.runDir, 'sar'), trained);
    const result: SarPhaseResult = {
      model: path,
      frames: { demo: frames.filter((f) => f.source === 'demo').length, nearMiss: frames.filter((f) => f.source === 'near_miss').length },
      finalLoss: trained.history.at(-1)?.loss ?? null,
      seconds: (performance.now() - t0) / 1000,
      stoppedEarly: false,
    };
    return { result, scorer: await SarScorer.load(path) };
  } finally {
    renderer.dispose();
    env.free();
  }
}

/** The SAR scorer as PPO's StageScorer: both cameras of each observation, u_k of the asked stage. */
export function sarStageScorer(s: SarScorer): StageScorer & { dispose(): Promise<void> } {
  return {
    meta: s.meta,
    score: async (items) => {
      const frames = items.map(({ obs }) => {
        const side = obs.images?.eye_side;
        const arm = obs.images?.eye_arm;
        if (!side || !arm) throw new Error('SAR scores both cameras (eye_side, eye_arm); the observation lacks one');
        if (side.width !== s.meta.imageSize || arm.width !== s.meta.imageSize) throw new Error(`SAR model expects ${s.meta.imageSize}x${s.meta.imageSize} images, got ${side.width}x${side.height}`);
        return { eye_side: side.rgb, eye_arm: arm.rgb };
      });
      const emb = await s.embed(frames);
      return items.map((it, i) => s.scores(emb, i, it.stage).u);
    },
    dispose: () => s.dispose(),
  };
}
