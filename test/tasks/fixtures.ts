/** Hand-built SimStates for predicate tests: only what predicates read, everything else neutral. */
import type { ContactInfo, Pose, Quat, SimState, Vec3 } from '../../sim/types.ts';

export const IDENTITY: Quat = [0, 0, 0, 1];

export function pose(p: Vec3, q: Quat = IDENTITY): Pose {
  return { p, q };
}

/** Both fingers pressing on `object`. */
export function pinch(object: string): ContactInfo[] {
  return [
    { link: 'left_finger', object, impulse: 0.01 },
    { link: 'right_finger', object, impulse: 0.01 },
  ];
}

export function makeState(opts: {
  objects: Record<string, Pose>;
  ee?: Pose;
  gripper?: number;
  contacts?: ContactInfo[];
  objectVel?: Record<string, Vec3>;
}): SimState {
  return {
    time: 0,
    step: 0,
    q: [0, 0, 0, 0, 0, 0],
    qd: [0, 0, 0, 0, 0, 0],
    gripper: opts.gripper ?? 0.04,
    links: {},
    ee: opts.ee ?? pose([0.2, 0, 0.3], [0, 1, 0, 0]),
    objects: opts.objects,
    objectVel: opts.objectVel ?? {},
    contacts: opts.contacts ?? [],
  };
}
