/**
 * The deploy-side view of a robot description: joint names and limits in action order, the
 * gripper range, and forward kinematics of the tool point in the robot base frame (for the
 * workspace box and jump guard). Read offline from sim/robot, so `Robot.spec()` needs no connection.
 */
import { getRobot, Kinematics } from '../sim/robot/index.ts';
import type { ForwardKinematics } from './safety/layer.ts';
import type { CameraSpec, RobotSpec } from './types.ts';

/**
 * Robot descriptions carry no acceleration limits (URDF has none), so the deploy layer derives
 * them: each joint may reach its full speed in 1/ACCEL_PER_VELOCITY seconds (0.2 s).
 */
export const ACCEL_PER_VELOCITY = 5;

/** Joint names, limits and gripper range of robot description `id`. */
export function robotSpecFor(id: string, cameras: CameraSpec[] = []): RobotSpec {
  const desc = getRobot(id);
  const byName = new Map(desc.joints.map((j) => [j.name, j]));
  const limits = desc.armJoints.map((name) => {
    const l = byName.get(name)?.limit;
    if (!l) throw new Error(`robot '${id}': arm joint '${name}' has no limits`);
    return { lower: l.lower, upper: l.upper, velocity: l.velocity, acceleration: l.velocity * ACCEL_PER_VELOCITY };
  });
  const finger = desc.fingerJoints.length ? byName.get(desc.fingerJoints[0])?.limit : undefined;
  return {
    model: id,
    jointNames: [...desc.armJoints],
    limits,
    gripper: { lower: desc.gripper.min, upper: desc.gripper.max, velocity: finger?.velocity ?? 0.1 },
    cameras,
  };
}

/** Tool-point position in the robot base frame for arm joints q. */
export function baseFrameFk(id: string): ForwardKinematics {
  const kin = new Kinematics(getRobot(id), { p: [0, 0, 0], q: [0, 0, 0, 1] });
  return (q) => kin.fk(q).p;
}
