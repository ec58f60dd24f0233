/**
 * Sim-to-real consistency check at start (ManiSkill's Sim2RealEnv does the same): the robot must
 * have the joints, limits and cameras the policy was trained with, or the deploy refuses to start.
 */
import type { CameraSpec, JointLimits, RobotSpec } from '../types.ts';

/** What a policy was trained against. */
export interface PolicyRobotSpec {
  jointNames: string[];
  /** Absent when the policy file does not record them (then only names and cameras are checked). */
  limits?: JointLimits[];
  cameras: CameraSpec[];
}

/** The robot and the policy disagree; `problems` lists each difference. */
export class SpecMismatchError extends Error {
  override name = 'SpecMismatchError';
  constructor(readonly problems: string[]) {
    super(`robot does not match what the policy was trained with: ${problems.join('; ')}`);
  }
}

/** Every difference between the robot and the policy's training setup (empty when they match). */
export function specMismatches(robot: RobotSpec, policy: PolicyRobotSpec, limitTolerance: number): string[] {
  const problems: string[] = [];
  const same = robot.jointNames.length === policy.jointNames.length && robot.jointNames.every((n, i) => n === policy.jointNames[i]);
  if (!same) {
    problems.push(`joint names [${robot.jointNames.join(', ')}] differ from the policy's [${policy.jointNames.join(', ')}]`);
  }
  if (same && policy.limits) {
    policy.limits.forEach((want, i) => {
      const have = robot.limits[i];
      for (const key of ['lower', 'upper', 'velocity', 'acceleration'] as const) {
        if (want[key] === undefined || !Number.isFinite(want[key])) continue;
        if (!(Math.abs(have[key] - want[key]) <= limitTolerance)) {
          problems.push(`${robot.jointNames[i]} ${key} limit is ${have[key]} on the robot but ${want[key]} in the policy (tolerance ${limitTolerance})`);
        }
      }
    });
  }
  for (const cam of policy.cameras) {
    const have = robot.cameras.find((c) => c.name === cam.name);
    if (!have) {
      problems.push(`camera '${cam.name}' (${cam.width}x${cam.height}) is missing on the robot (it has: ${robot.cameras.map((c) => c.name).join(', ') || 'none'})`);
    } else if (have.width !== cam.width || have.height !== cam.height) {
      problems.push(`camera '${cam.name}' is ${have.width}x${have.height} on the robot but ${cam.width}x${cam.height} in the policy`);
    }
  }
  return problems;
}

/** Throw SpecMismatchError when the robot does not match the policy. */
export function assertSpecMatches(robot: RobotSpec, policy: PolicyRobotSpec, limitTolerance: number): void {
  const problems = specMismatches(robot, policy, limitTolerance);
  if (problems.length) throw new SpecMismatchError(problems);
}
