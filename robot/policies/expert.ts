/**
 * The task's scripted expert behind the deploy policy interface. It reads ground-truth object poses
 * from the simulator, so it drives only the sim twin; on a real robot use an ONNX policy.
 */
import type { Expert } from '../../sim/task.ts';
import type { SimTwin } from '../sim_twin.ts';
import type { DeployPolicy } from './types.ts';

/** A DeployPolicy running `twin`'s task expert for the current episode (call after connect). */
export function expertPolicy(twin: SimTwin): DeployPolicy {
  const env = twin.env;
  if (!env.randomization) throw new Error('expert policy: the sim twin is not connected yet (no episode)');
  const expert: Expert = env.task.expert(env.randomization, env.expertTools());
  const spec = twin.spec();
  return {
    name: `expert(${env.task.id})`,
    // The expert is written against the description itself, so its "training" spec is the description's.
    spec: { jointNames: [...env.actionFields().slice(0, 6)], limits: spec.limits.map((l) => ({ ...l })), cameras: [] },
    act: async () => expert.act(env.state()).action,
    close: async () => {},
  };
}
