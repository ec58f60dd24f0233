/**
 * Starting a deploy safely, in order: connect, check the robot against what the policy was trained
 * with (refuse on mismatch), wrap it in the safety layer, check the start state (refuse when
 * e-stopped, moving, out of limits or out of the workspace), begin the start-up hold.
 */
import type { Clock } from './clock.ts';
import type { DeployConfig } from './config.ts';
import type { DeployPolicy } from './policies/types.ts';
import { type DecisionSink, SafeRobot } from './safe_robot.ts';
import type { ForwardKinematics } from './safety/layer.ts';
import { assertSpecMatches } from './safety/spec_check.ts';
import type { Robot } from './types.ts';

export interface StartOptions {
  robot: Robot;
  /** Policy spec to check against; the policy itself may be created after connect (the expert needs the episode). */
  policySpec: DeployPolicy['spec'];
  config: DeployConfig;
  clock: Clock;
  fk?: ForwardKinematics;
  /** Decision sinks attached before the start-up hold's first command, so it is logged too. */
  sinks?: DecisionSink[];
}

/**
 * Spec check first (offline, before connecting: a mismatched robot is never commanded), then
 * connect and check again with what the robot reports, then the start-state check and start-up
 * hold. Returns the safety-wrapped robot; on any refusal the robot is disconnected.
 */
export async function startSafeRobot(o: StartOptions): Promise<SafeRobot> {
  const check = o.config.safety.specCheck;
  if (check.enabled) assertSpecMatches(o.robot.spec(), o.policySpec, check.limitTolerance);
  await o.robot.connect();
  let safe: SafeRobot | null = null;
  try {
    // Connected robots may know more (a ROS robot's own URDF limits): check again, and build the
    // safety layer from what the robot reports now.
    if (check.enabled) assertSpecMatches(o.robot.spec(), o.policySpec, check.limitTolerance);
    safe = new SafeRobot({ robot: o.robot, clock: o.clock, safety: o.config.safety, controlHz: o.config.controlHz, fk: o.fk });
    for (const sink of o.sinks ?? []) safe.onDecision(sink);
    await safe.connect();
    safe.start();
    return safe;
  } catch (err) {
    await (safe ?? o.robot).disconnect();
    throw err;
  }
}
