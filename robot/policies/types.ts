/**
 * The policy interface of the deploy loop: `act(obs) -> action` (6 joint-position targets in rad +
 * gripper opening in m), implemented by an ONNX-backed policy and by the scripted expert.
 */
import type { Observation } from '../../sim/types.ts';
import type { PolicyRobotSpec } from '../safety/spec_check.ts';

/** A policy the deploy loop can run. */
export interface DeployPolicy {
  /** For logs and status lines, e.g. 'expert(stack)' or the ONNX file name. */
  readonly name: string;
  /** What the policy was trained with (checked against the robot before starting). */
  readonly spec: PolicyRobotSpec;
  /** One action for one observation. May be slow or fail; the safety layer copes with both. */
  act(obs: Observation): Promise<ArrayLike<number>>;
  close(): Promise<void>;
}
