/**
 * The SAR scorer's cameras: sim/render's built-in `eye_side` and `eye_arm` placements rendered
 * RGB-only at the scorer's image size, as a `FrameRenderer` for rewards/sar (which imports no
 * renderer itself). Same placements as the policy's cameras, so a SAR model scores what a policy
 * sees.
 */
import type { FrameRenderer } from '../rewards/sar/data.ts';
import { getRobot } from '../sim/robot/index.ts';
import { Rng } from '../sim/rng.ts';
import type { Task } from '../sim/task.ts';
import { CameraRig } from '../sim/render/cameras.ts';
import { defaultCameraConfig, mirrorDescOf } from '../sim/render/env_cameras.ts';

/** A renderer of both SAR cameras for `task` at `size` x `size`; `dispose()` frees its GL context. */
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
