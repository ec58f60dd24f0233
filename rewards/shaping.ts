/**
 * Shaping for the ablation's PPO arms that reads no stage predicate, stage index or success
 * signal: potential-based shaping (Ng, Harada & Russell 1999) on the tool's distance to the
 * nearest object the task manipulates,
 *
 *   Phi(s) = -min_o ||p_tool(s) - p_o(s)||   (metres; o over the objects the task's stages name)
 *   F(s, s') = gamma Phi(s') - Phi(s),        Phi(s') = 0 when s' ends the episode by termination
 *
 * A potential-based term leaves the optimal policy unchanged (so the sparse success reward still
 * defines the task), while rewarding approach to the objects from the first step. It reads the
 * tool and object positions from the simulator's state: training-time only, like POE's z; the
 * policy never sees them. It knows nothing of which object is next, whether a grasp held or a
 * stage is done, which is what SAR adds.
 */
import type { SimState } from '../sim/types.ts';

/** The objects a task's stages name, once each, in stage order. */
export function shapingObjects(stages: readonly { object: string }[]): string[] {
  return [...new Set(stages.map((s) => s.object))];
}

/** Phi(s) = -(distance from the tool to the nearest of `objects`), metres. */
export function reachPotential(state: Pick<SimState, 'ee' | 'objects'>, objects: readonly string[]): number {
  if (objects.length === 0) throw new RangeError('reachPotential: no objects');
  let best = Number.POSITIVE_INFINITY;
  for (const name of objects) {
    const o = state.objects[name];
    if (!o) throw new RangeError(`reachPotential: no object '${name}' in the state (objects: ${Object.keys(state.objects).join(', ')})`);
    best = Math.min(best, Math.hypot(o.p[0] - state.ee.p[0], o.p[1] - state.ee.p[1], o.p[2] - state.ee.p[2]));
  }
  return -best;
}

/** F = gamma Phi(s') - Phi(s), with Phi(s') = 0 when the step terminated the episode. */
export function reachShaping(prev: Pick<SimState, 'ee' | 'objects'>, next: Pick<SimState, 'ee' | 'objects'>, objects: readonly string[], gamma: number, terminated: boolean): number {
  if (!(gamma > 0 && gamma <= 1)) throw new RangeError(`gamma must be in (0, 1], got ${gamma}`);
  const after = terminated ? 0 : reachPotential(next, objects);
  return gamma * after - reachPotential(prev, objects);
}
