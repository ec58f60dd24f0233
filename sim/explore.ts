/**
 * Random exploration policies, as a learner's first updates drive the arm: uniform joint targets
 * inside the limits (a new one every `hold` steps), random end-effector deltas up to the per-step
 * limits, and a joint random walk. Seeded; used by `npm run bench:explore` and the sim tests to
 * check that no action sequence breaks the simulator.
 */
import type { SimEnv } from './env.ts';
import { Rng } from './rng.ts';
import type { ActionMode, SimState } from './types.ts';

/** The random policies. */
export const RANDOM_POLICIES = ['uniform_joint', 'random_ee_delta', 'joint_random_walk'] as const;
export type RandomPolicyKind = (typeof RANDOM_POLICIES)[number];

/** The action mode each random policy needs. */
export function randomPolicyMode(kind: RandomPolicyKind): ActionMode {
  return kind === 'random_ee_delta' ? 'ee_delta' : 'joint';
}

/** A seeded random policy for one episode of `env` (call after reset). */
export function randomPolicy(kind: RandomPolicyKind, env: SimEnv, seed: number, opts: { hold?: number; walkStep?: number } = {}): (state: SimState) => number[] {
  const rng = new Rng(seed);
  const kin = env.kinematics();
  const n = kin.lower.length;
  const { min: gmin, max: gmax } = env.robot.gripper;
  const hold = opts.hold ?? 15;
  const walkStep = opts.walkStep ?? 0.05;
  let step = 0;
  let held: number[] = [];
  let walk: number[] | null = null;
  return (state) => {
    const gripper = rng.uniform(gmin, gmax);
    let action: number[];
    switch (kind) {
      case 'uniform_joint':
        if (step % hold === 0) held = [...Array.from({ length: n }, (_, i) => rng.uniform(kin.lower[i], kin.upper[i])), gripper];
        action = held;
        break;
      case 'random_ee_delta': {
        const t = env.config.eeMaxTranslation;
        const r = env.config.eeMaxRotation;
        action = [rng.uniform(-t, t), rng.uniform(-t, t), rng.uniform(-t, t), rng.uniform(-r, r), rng.uniform(-r, r), rng.uniform(-r, r), gripper];
        break;
      }
      case 'joint_random_walk':
        walk ??= state.q.slice();
        walk = walk.map((x, i) => Math.min(kin.upper[i], Math.max(kin.lower[i], x + rng.uniform(-walkStep, walkStep))));
        action = [...walk, gripper];
        break;
    }
    step++;
    return action;
  };
}
