/**
 * The state POE's world model sees: the pose of the current stage's object in the end-effector
 * frame, T = T_ee^-1 T_obj, as translation (3) + axis-angle (3).
 *
 * The rotation is measured from the nominal top-down grasp: the tool's approach axis points down
 * while an upright object's Z points up, so the raw relative rotation of every object the tasks
 * handle sits at a half turn, exactly where axis-angle flips sign (a 1-degree wobble would jump
 * the vector by 2 pi and read as a huge surprise). z's rotation is therefore the axis-angle of
 * R_y(pi) R_rel: zero for an upright object under a top-down tool with fingers along the object's
 * axes, so the singularity at pi is far from the poses the tasks visit.
 *
 * It is read from the simulator's ground truth (SimState.ee and SimState.objects), so it exists at
 * training time only: curiosity shapes the reward during PPO in simulation and is never an input of
 * the deployed policy, which has no such state on a real arm.
 */
import { poseInv, poseMul, quatMul, quatToRotVec } from '../../sim/math.ts';
import type { SimState } from '../../sim/types.ts';

/** Size of z: translation (3) + axis-angle (3). */
export const POSE_DIM = 6;

/** Half turn about the tool's Y axis: the nominal top-down grasp's relative rotation, undone. */
const GRASP_FLIP: [number, number, number, number] = [0, 1, 0, 0];

/**
 * z for `object` in `state`: the object's pose in the tool frame. Translation in metres times
 * `translationScale` (so a few centimetres and a few tenths of a radian weigh alike in the
 * world-model loss), rotation as an axis-angle vector in radians (angle in [0, pi]) from the
 * nominal top-down grasp.
 */
export function relativePose(state: SimState, object: string, translationScale = 1, out: Float32Array<ArrayBufferLike> = new Float32Array(POSE_DIM)): Float32Array<ArrayBufferLike> {
  const obj = state.objects[object];
  if (!obj) throw new RangeError(`relativePose: no object '${object}' in the state (objects: ${Object.keys(state.objects).join(', ')})`);
  const rel = poseMul(poseInv(state.ee), obj);
  const r = quatToRotVec(quatMul(GRASP_FLIP, rel.q));
  out[0] = rel.p[0] * translationScale;
  out[1] = rel.p[1] * translationScale;
  out[2] = rel.p[2] * translationScale;
  out[3] = r[0];
  out[4] = r[1];
  out[5] = r[2];
  return out;
}

/**
 * The object POE watches at ground-truth stage `stage`: that stage's object, or the last stage's
 * once every stage is done.
 */
export function stageObject(stages: readonly { object: string }[], stage: number): string {
  if (stages.length === 0) throw new RangeError('stageObject: the task has no stages');
  return stages[Math.max(0, Math.min(stages.length - 1, stage))].object;
}
