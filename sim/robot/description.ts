/**
 * The robot description format: a tree of links joined by joints, in URDF's conventions (each
 * joint's origin is the child link frame in the parent link frame at q = 0; the joint axis is
 * expressed in the child link frame). Built-in robots are written in this form directly; URDF files
 * are converted into it by ./urdf.ts. Everything else (kinematics, the physics builder, the
 * renderer's link visuals, the deploy spec) reads only this.
 */
import type { ColliderDesc, Pose, Quat, Vec3 } from '../types.ts';

/** Mass properties of a link: centre of mass and principal moments in a principal frame. */
export interface Inertial {
  mass: number;
  /** Centre of mass in the link frame. */
  com: Vec3;
  /** Principal moments of inertia (kg m^2) about the axes of `frame`. */
  principal: Vec3;
  /** Orientation of the principal axes in the link frame. */
  frame: Quat;
}

export interface LinkDesc {
  name: string;
  /** Absent for a massless link (a frame such as a tool point); such a link must be fixed to its parent. */
  inertial?: Inertial;
  /** Collision primitives (and visual-only ones flagged `visualOnly`), in the link frame. */
  colliders: ColliderDesc[];
}

export interface JointLimit {
  /** Position range (rad or m). */
  lower: number;
  upper: number;
  /** Speed limit (rad/s or m/s). */
  velocity: number;
  /** Torque or force limit (N m or N). */
  effort: number;
}

export interface JointDesc {
  name: string;
  type: 'revolute' | 'prismatic' | 'fixed';
  parent: string;
  child: string;
  /** Child frame in the parent frame at q = 0. */
  origin: Pose;
  /** Unit axis in the child (joint) frame; ignored for fixed joints. */
  axis: Vec3;
  /** Required for revolute and prismatic joints. */
  limit?: JointLimit;
  /**
   * Reflected actuator inertia (MuJoCo's `armature`): the motor rotor seen through the gearbox, in
   * kg m^2 for a revolute joint, in kg (reflected mass) for a prismatic one. It is what keeps a
   * geared wrist from spinning up when the arm strikes something, and a geared finger from being
   * slammed along its travel. Simulated as an isotropic inertia (revolute) or mass (prismatic; a
   * Rapier body has one scalar mass) added to the joint's child link. Default 0.
   */
  armature?: number;
}

export interface RobotDescription {
  id: string;
  /** Where the description came from (a file path or 'built-in'), for error messages. */
  source: string;
  /** Root link, fixed to the world at the scene's robot base pose. */
  baseLink: string;
  links: LinkDesc[];
  joints: JointDesc[];
  /** The arm's actuated joints in action order (revolute or prismatic, on the path base -> tool). */
  armJoints: string[];
  /**
   * Gripper finger joints (prismatic), each moving its finger outward as the joint value grows,
   * so the value is the opening per finger. Empty for an arm without a gripper.
   */
  fingerJoints: string[];
  /** Finger opening range (m per finger) and the largest squeezing force per finger (N). */
  gripper: { min: number; max: number; force: number };
  /**
   * Tool centre point: a link and a pose in it. Convention: +Z is the approach direction (out of
   * the gripper), +Y the direction in which the first finger opens.
   */
  tcp: { link: string; pose: Pose };
  /** A comfortable joint configuration (arm joints) used as the default start and IK seed. */
  home: number[];
}

/** Joint names, limits and gripper range, readable offline (for Robot.spec() and safety limits). */
export interface RobotSpec {
  id: string;
  armJoints: Array<{ name: string } & JointLimit>;
  fingerJoints: Array<{ name: string } & JointLimit>;
  gripper: { min: number; max: number; force: number };
  home: number[];
}

export class RobotDescriptionError extends Error {
  override name = 'RobotDescriptionError';
  constructor(
    readonly source: string,
    readonly where: string,
    message: string,
  ) {
    super(`${source}: ${where}: ${message}`);
  }
}

function finite(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x);
}

/**
 * Check a description for structural problems (unknown links, cycles, bad limits, arm joints not on
 * one chain) and throw a RobotDescriptionError naming the offending item and the expected form.
 */
export function validateRobotDescription(d: RobotDescription): RobotDescription {
  const src = d.source;
  const links = new Map(d.links.map((l) => [l.name, l]));
  if (links.size !== d.links.length) throw new RobotDescriptionError(src, 'links', 'link names must be unique');
  if (!links.has(d.baseLink)) throw new RobotDescriptionError(src, 'baseLink', `unknown link '${d.baseLink}'`);
  const childOf = new Map<string, JointDesc>();
  const jointNames = new Set<string>();
  for (const j of d.joints) {
    const at = `joint '${j.name}'`;
    if (jointNames.has(j.name)) throw new RobotDescriptionError(src, at, 'joint names must be unique');
    jointNames.add(j.name);
    if (!links.has(j.parent)) throw new RobotDescriptionError(src, `${at} parent`, `unknown link '${j.parent}'`);
    if (!links.has(j.child)) throw new RobotDescriptionError(src, `${at} child`, `unknown link '${j.child}'`);
    if (childOf.has(j.child)) {
      throw new RobotDescriptionError(src, `${at} child`, `link '${j.child}' already has a parent joint (a robot is a tree)`);
    }
    if (j.child === d.baseLink) throw new RobotDescriptionError(src, `${at} child`, 'the base link cannot be a child');
    childOf.set(j.child, j);
    if (![...j.origin.p, ...j.origin.q].every(finite)) {
      throw new RobotDescriptionError(src, `${at} origin`, 'expected finite numbers');
    }
    if (j.type !== 'fixed') {
      const n = Math.hypot(...j.axis);
      if (!j.axis.every(finite) || Math.abs(n - 1) > 1e-6) {
        throw new RobotDescriptionError(src, `${at} axis`, `expected a unit vector, got ${JSON.stringify(j.axis)}`);
      }
      const l = j.limit;
      if (!l) throw new RobotDescriptionError(src, `${at} limit`, `a ${j.type} joint needs lower, upper, velocity and effort`);
      if (!finite(l.lower) || !finite(l.upper) || !(l.lower < l.upper)) {
        throw new RobotDescriptionError(src, `${at} limit`, `expected finite lower < upper, got ${l.lower}..${l.upper}`);
      }
      if (!finite(l.velocity) || l.velocity <= 0) {
        throw new RobotDescriptionError(src, `${at} limit velocity`, `expected a positive number, got ${l.velocity}`);
      }
      if (!finite(l.effort) || l.effort <= 0) {
        throw new RobotDescriptionError(src, `${at} limit effort`, `expected a positive number, got ${l.effort}`);
      }
    }
    if (j.armature !== undefined) {
      if (!finite(j.armature) || j.armature < 0) {
        throw new RobotDescriptionError(src, `${at} armature`, `expected a number >= 0 (kg m^2, or kg for a prismatic joint), got ${j.armature}`);
      }
      if (j.armature > 0 && j.type === 'fixed') {
        throw new RobotDescriptionError(src, `${at} armature`, `only revolute and prismatic joints take an armature, this one is fixed`);
      }
    }
  }
  // Every link must reach the base (no orphans, no cycles).
  for (const l of d.links) {
    let name = l.name;
    const seen = new Set<string>();
    while (name !== d.baseLink) {
      if (seen.has(name)) throw new RobotDescriptionError(src, `link '${l.name}'`, 'is part of a cycle');
      seen.add(name);
      const j = childOf.get(name);
      if (!j) throw new RobotDescriptionError(src, `link '${l.name}'`, `is not connected to the base link '${d.baseLink}'`);
      name = j.parent;
    }
    const inertial = l.inertial;
    if (inertial) {
      if (!finite(inertial.mass) || inertial.mass <= 0) {
        throw new RobotDescriptionError(src, `link '${l.name}' mass`, `expected a positive number, got ${inertial.mass}`);
      }
      if (!inertial.principal.every((x) => finite(x) && x >= 0)) {
        throw new RobotDescriptionError(src, `link '${l.name}' inertia`, 'expected non-negative principal moments');
      }
    } else if (l.name !== d.baseLink && childOf.get(l.name)?.type !== 'fixed') {
      throw new RobotDescriptionError(src, `link '${l.name}' inertial`, 'a link on a moving joint needs a mass');
    }
  }
  const byName = new Map(d.joints.map((j) => [j.name, j]));
  if (!links.has(d.tcp.link)) throw new RobotDescriptionError(src, 'tcp.link', `unknown link '${d.tcp.link}'`);
  const chain = chainJoints(d, d.tcp.link).filter((j) => j.type !== 'fixed').map((j) => j.name);
  if (d.armJoints.length === 0) throw new RobotDescriptionError(src, 'armJoints', 'expected at least one joint');
  for (const name of d.armJoints) {
    if (!byName.has(name)) throw new RobotDescriptionError(src, 'armJoints', `unknown joint '${name}'`);
  }
  if (chain.join(',') !== d.armJoints.join(',')) {
    throw new RobotDescriptionError(
      src,
      'armJoints',
      `expected the movable joints from '${d.baseLink}' to '${d.tcp.link}' in order (${chain.join(', ')}), got ${d.armJoints.join(', ')}`,
    );
  }
  for (const name of d.fingerJoints) {
    const j = byName.get(name);
    if (!j) throw new RobotDescriptionError(src, 'fingerJoints', `unknown joint '${name}'`);
    if (j.type !== 'prismatic') throw new RobotDescriptionError(src, `fingerJoints '${name}'`, `expected a prismatic joint, got ${j.type}`);
  }
  if (d.home.length !== d.armJoints.length || !d.home.every(finite)) {
    throw new RobotDescriptionError(src, 'home', `expected ${d.armJoints.length} finite joint positions`);
  }
  const g = d.gripper;
  if (!finite(g.min) || !finite(g.max) || g.min > g.max || !finite(g.force) || g.force < 0) {
    throw new RobotDescriptionError(src, 'gripper', `expected min <= max and force >= 0, got ${JSON.stringify(g)}`);
  }
  return d;
}

/** Joints from the base link to `link`, in order from the base. */
export function chainJoints(d: RobotDescription, link: string): JointDesc[] {
  const childOf = new Map(d.joints.map((j) => [j.child, j]));
  const out: JointDesc[] = [];
  let name = link;
  while (name !== d.baseLink) {
    const j = childOf.get(name);
    if (!j) throw new RobotDescriptionError(d.source, `link '${link}'`, `is not connected to '${d.baseLink}'`);
    out.push(j);
    name = j.parent;
  }
  return out.reverse();
}

/** Joint names, limits and gripper range of a description. */
export function robotSpecOf(d: RobotDescription): RobotSpec {
  const byName = new Map(d.joints.map((j) => [j.name, j]));
  const entry = (name: string) => ({ name, ...(byName.get(name)!.limit as JointLimit) });
  return {
    id: d.id,
    armJoints: d.armJoints.map(entry),
    fingerJoints: d.fingerJoints.map(entry),
    gripper: { ...d.gripper },
    home: [...d.home],
  };
}
