/**
 * The Rapier world of one scene: the robot as a multibody (arm joints revolute, fingers prismatic),
 * the scene's objects as rigid bodies, and fast readers of joint and body state.
 *
 * Frame trick: rapier.js builds a revolute/prismatic multibody joint from an axis only, and its
 * joint coordinate is zero where the two bodies' joint frames coincide; it cannot be told a joint
 * value. So every robot body is created with its *physics* frame B_i rotated such that, at the
 * scene's initial joint values, all B_i have the world orientation of the robot base's B frame.
 * The joint axis is then the same vector in both bodies, Rapier's coordinate zero is the initial
 * configuration, and nothing moves when the world is built. The description's link frame L_i is
 * recovered as B_i * linkOffset_i. Joint values are read back from relative body poses.
 */
import type RAPIER_NS from '@dimforge/rapier3d-compat';
import {
  poseMul,
  quatConj,
  quatFromAxisAngle,
  quatMul,
  quatRotate,
} from './math.ts';
import type { ColliderDesc, ObjectDesc, Pose, Quat, SceneDesc, ShapeDesc, Vec3 } from './types.ts';
import { Kinematics } from './robot/kinematics.ts';
import type { RobotDescription } from './robot/description.ts';

type Rapier = typeof RAPIER_NS;
type World = RAPIER_NS.World;
type RigidBody = RAPIER_NS.RigidBody;

/** Collision groups: robot links never collide with each other (as in the source model, where only
 * the pads and a few boxes collide at all); everything else collides with everything. */
const GROUP_ROBOT = 0x0001;
const GROUP_WORLD = 0x0002;
const ROBOT_GROUPS = (GROUP_ROBOT << 16) | (0xffff & ~GROUP_ROBOT);
const WORLD_GROUPS = (GROUP_WORLD << 16) | 0xffff;

/** Rapier's cylinders and capsules run along local Y; ours along Z. */
const Y_TO_Z: Quat = quatFromAxisAngle([1, 0, 0], Math.PI / 2);

/** Friction coefficient of a collider that gives none. */
export const DEFAULT_FRICTION = 0.8;
/** Contact prediction distance in metres (Rapier normalises it by its length unit, 1 m here). */
const CONTACT_PREDICTION_DISTANCE = 0.002;
/** Natural frequency (Hz) of Rapier's contact position correction. */
const CONTACT_NATURAL_FREQUENCY = 120;

/** One actuated joint of the robot as the physics sees it. */
export interface PhysJoint {
  name: string;
  type: 'revolute' | 'prismatic';
  parentLink: number;
  childLink: number;
  /** Axis in both bodies' physics frames (identical by construction). */
  axis: Vec3;
  /** Joint anchor in the parent's physics frame, at the initial joint value. */
  anchor: Vec3;
  /** Joint value at which the world was built (Rapier's zero). */
  initial: number;
}

/** Handles of a built world's bodies and joint stops (kept by a snapshot restore). */
export interface WorldHandles {
  links: number[];
  objects: number[];
  /** Absent in snapshots of worlds without joint stops. */
  stops?: JointStop[];
}

/** A revolute joint's stop: an impulse joint carrying the joint's range (relative to the build-time value). */
export interface JointStop {
  joint: string;
  handle: number;
  lower: number;
  upper: number;
}

interface RawStopSet {
  jointSetLimits(handle: number, axis: number, min: number, max: number): void;
}

/** Per-link data in physics frames. */
export interface PhysLink {
  name: string;
  /** Pose of the description's link frame in the body's physics frame (rotation only). */
  offset: Quat;
  mass: number;
  /** Centre of mass in the physics frame. */
  com: Vec3;
  principal: Vec3;
  /** Principal axes in the physics frame. */
  inertiaFrame: Quat;
  /** Indices of the actuated joints that move this link, in [...arm, ...fingers] order. */
  dofAncestors: number[];
  /** True when a finger joint moves this link. */
  isFinger: boolean;
}

/** What a world was built from, enough to rebuild its bookkeeping after a snapshot restore. */
export interface WorldLayout {
  scene: SceneDesc;
  physicsHz: number;
  solverIterations: number;
}

function shapeVolume(s: ShapeDesc): number {
  switch (s.kind) {
    case 'box':
      return 8 * s.halfExtents[0] * s.halfExtents[1] * s.halfExtents[2];
    case 'sphere':
      return (4 / 3) * Math.PI * s.radius ** 3;
    case 'cylinder':
      return Math.PI * s.radius ** 2 * 2 * s.halfHeight;
    case 'capsule':
      return Math.PI * s.radius ** 2 * 2 * s.halfHeight + (4 / 3) * Math.PI * s.radius ** 3;
  }
}

function colliderDesc(R: Rapier, c: ColliderDesc, extraRotation: Quat | null): RAPIER_NS.ColliderDesc {
  const s = c.shape;
  let d: RAPIER_NS.ColliderDesc;
  let axisFix: Quat | null = null;
  switch (s.kind) {
    case 'box':
      d = R.ColliderDesc.cuboid(s.halfExtents[0], s.halfExtents[1], s.halfExtents[2]);
      break;
    case 'sphere':
      d = R.ColliderDesc.ball(s.radius);
      break;
    case 'cylinder':
      d = R.ColliderDesc.cylinder(s.halfHeight, s.radius);
      axisFix = Y_TO_Z;
      break;
    case 'capsule':
      d = R.ColliderDesc.capsule(s.halfHeight, s.radius);
      axisFix = Y_TO_Z;
      break;
  }
  let pose: Pose = c.pose ?? { p: [0, 0, 0], q: [0, 0, 0, 1] };
  if (extraRotation) pose = { p: quatRotate(extraRotation, pose.p), q: quatMul(extraRotation, pose.q) };
  const q = axisFix ? quatMul(pose.q, axisFix) : pose.q;
  d.setTranslation(pose.p[0], pose.p[1], pose.p[2]);
  d.setRotation({ x: q[0], y: q[1], z: q[2], w: q[3] });
  d.setFriction(c.friction ?? DEFAULT_FRICTION);
  d.setRestitution(c.restitution ?? 0);
  return d;
}

/**
 * A built world. Owns the Rapier world; call free() when done. Body handles are recorded in build
 * order, and a world restored from a snapshot keeps them, so `fromSnapshot` re-attaches by handle.
 */
export class PhysicsWorld {
  readonly R: Rapier;
  world: World;
  readonly robot: RobotDescription;
  readonly layout: WorldLayout;
  readonly kin: Kinematics;
  readonly links: PhysLink[];
  readonly arm: PhysJoint[];
  readonly fingers: PhysJoint[];
  linkBodies: RigidBody[] = [];
  objectBodies: RigidBody[] = [];
  readonly objectNames: string[];
  /** Collider handle -> robot link name or object name, for contact reports. */
  readonly colliderOwner = new Map<number, { kind: 'link' | 'object'; name: string }>();
  /** Collider handles of the finger links (and link6 etc.), checked for contacts. */
  readonly robotColliderHandles: number[] = [];
  private linkHandles: number[] = [];
  private objectHandles: number[] = [];
  /** The revolute joint stops by joint name: impulse-joint handle, range relative to the build-time value. */
  private stops = new Map<string, JointStop>();

  private constructor(R: Rapier, robot: RobotDescription, layout: WorldLayout, world: World) {
    this.R = R;
    this.robot = robot;
    this.layout = layout;
    this.world = world;
    const scene = layout.scene;
    this.kin = new Kinematics(robot, scene.robotBase);
    const q0 = scene.initialQ ?? robot.home;
    const g0 = scene.initialGripper ?? robot.gripper.max;
    const fingers0 = robot.fingerJoints.map(() => g0);
    const poses0 = this.kin.linkPoses(q0, fingers0);
    const baseQ = poses0[robot.baseLink].q;
    const linkIndex = new Map(robot.links.map((l, i) => [l.name, i]));
    const jointByChild = new Map(robot.joints.map((j) => [j.child, j]));
    // Physics frame of link i: world orientation of the base link at build time, so
    // offset_i (L_i in B_i) = baseQ^-1 * R_i0.
    this.links = robot.links.map((l) => {
      const offset = quatMul(quatConj(baseQ), poses0[l.name].q);
      const inertial = l.inertial;
      const dofAncestors: number[] = [];
      let isFinger = false;
      let name = l.name;
      while (name !== robot.baseLink) {
        const j = jointByChild.get(name)!;
        const ai = robot.armJoints.indexOf(j.name);
        if (ai >= 0) dofAncestors.push(ai);
        const fi = robot.fingerJoints.indexOf(j.name);
        if (fi >= 0) {
          dofAncestors.push(robot.armJoints.length + fi);
          isFinger = true;
        }
        name = j.parent;
      }
      // A joint's armature (reflected rotor inertia) rides on its child link as an isotropic
      // inertia: isotropic, so the principal frame stays valid.
      // A prismatic joint's armature is a reflected mass: a Rapier body has one scalar mass, so it
      // is added to the child link in every direction, at the link's centre of mass.
      const parentJoint = jointByChild.get(l.name);
      const armature = parentJoint?.armature ?? 0;
      const rotArmature = parentJoint?.type === 'revolute' ? armature : 0;
      const linArmature = parentJoint?.type === 'prismatic' ? armature : 0;
      return {
        name: l.name,
        offset,
        mass: (inertial?.mass ?? 0) + linArmature,
        com: inertial ? quatRotate(offset, inertial.com) : [0, 0, 0],
        principal: inertial ? (inertial.principal.map((x) => x + rotArmature) as Vec3) : [0, 0, 0],
        inertiaFrame: inertial ? quatMul(offset, inertial.frame) : [0, 0, 0, 1],
        dofAncestors,
        isFinger,
      };
    });
    // Links joined by fixed joints (massless frames such as a tool point) become part of their
    // parent body: find each link's body (the nearest ancestor reached through a moving joint).
    const physJoint = (name: string, initial: number): PhysJoint => {
      const j = robot.joints.find((x) => x.name === name)!;
      const parentPose = poses0[j.parent];
      const childPose = poses0[j.child];
      // Axis in world at build time, which is also its coordinates in every physics frame
      // rotated by baseQ^-1.
      const axisWorld = quatRotate(childPose.q, j.axis);
      const axis = quatRotate(quatConj(baseQ), axisWorld);
      const rel = quatRotate(quatConj(baseQ), [
        childPose.p[0] - parentPose.p[0],
        childPose.p[1] - parentPose.p[1],
        childPose.p[2] - parentPose.p[2],
      ]);
      return {
        name,
        type: j.type as 'revolute' | 'prismatic',
        parentLink: linkIndex.get(j.parent)!,
        childLink: linkIndex.get(j.child)!,
        axis,
        anchor: rel,
        initial,
      };
    };
    this.arm = robot.armJoints.map((n, i) => physJoint(n, q0[i]));
    this.fingers = robot.fingerJoints.map((n, i) => physJoint(n, fingers0[i]));
    this.objectNames = scene.objects.map((o) => o.name);
  }

  /** Build a fresh world for `layout.scene`. */
  static build(R: Rapier, robot: RobotDescription, layout: WorldLayout): PhysicsWorld {
    const world = new R.World({ x: 0, y: 0, z: -9.81 });
    world.timestep = 1 / layout.physicsHz;
    world.numSolverIterations = layout.solverIterations;
    // Rapier's default contact prediction distance (2 cm at the default length unit) lets the
    // solver push on pairs that are still up to ~2 cm apart: a finger pad 1.7 cm from a 30 mm bar
    // shoved it 6 mm, and finger contacts carried impulse at 1.9 cm. At 2 mm, contacts act when
    // surfaces touch, which is what stage predicates built on contacts must be able to trust.
    world.integrationParameters.normalizedPredictionDistance = CONTACT_PREDICTION_DISTANCE;
    // Stiffer contacts than Rapier's default 30 Hz: with the fingers squeezing at the gripper's real
    // force (7.5 N), 30 Hz let the pads sink ~4 mm into a held block over a second and push it
    // sideways (the settle stage flickered); at 120 Hz they stay within ~0.5 mm.
    (world.integrationParameters as unknown as { contact_natural_frequency: number }).contact_natural_frequency = CONTACT_NATURAL_FREQUENCY;
    const pw = new PhysicsWorld(R, robot, layout, world);
    pw.populate();
    return pw;
  }

  /** Rebuild a world from a snapshot of a world built from the same layout. */
  static fromSnapshot(R: Rapier, robot: RobotDescription, layout: WorldLayout, data: Uint8Array, handles: WorldHandles): PhysicsWorld {
    const world = R.World.restoreSnapshot(data);
    const pw = new PhysicsWorld(R, robot, layout, world);
    pw.linkHandles = handles.links.slice();
    pw.objectHandles = handles.objects.slice();
    for (const st of handles.stops ?? []) pw.stops.set(st.joint, { ...st });
    pw.linkBodies = handles.links.map((h) => world.getRigidBody(h));
    pw.objectBodies = handles.objects.map((h) => world.getRigidBody(h));
    pw.registerColliders();
    return pw;
  }

  private rawGravity: ReturnType<Rapier['VectorOps']['intoRaw']> | null = null;

  /**
   * One physics step. Same as `world.step()` minus rapier.js's per-step JS bookkeeping (it walks
   * every body and collider to map ones created or removed during the step, which never happens
   * here): that walk was ~10% of a step. The results are bit-identical (tested).
   */
  step(): void {
    const w = this.world;
    this.rawGravity ??= this.R.VectorOps.intoRaw(w.gravity);
    w.physicsPipeline.raw.step(
      this.rawGravity,
      w.integrationParameters.raw,
      w.islands.raw,
      w.broadPhase.raw,
      w.narrowPhase.raw,
      w.bodies.raw,
      w.colliders.raw,
      w.softBodies.raw,
      w.impulseJoints.raw,
      w.multibodyJoints.raw,
      w.ccdSolver.raw,
    );
  }

  /** Set the length (s) of the next physics steps. */
  setTimestep(dt: number): void {
    this.world.timestep = dt;
  }

  handles(): WorldHandles {
    return { links: this.linkHandles.slice(), objects: this.objectHandles.slice(), stops: [...this.stops.values()].map((x) => ({ ...x })) };
  }

  /**
   * Set the revolute joint stops for the next step from the arm's joint values `q` (rad, in
   * `arm` order). Rapier measures a joint limit's angle from the build-time pose, wrapped to
   * -pi..pi (it compares sin(angle / 2)), and the wrist ranges reach up to 3 rad beyond pi from
   * there (joint4's lower end is 4.6 rad below the home pose). So each step the stop's limits are
   * placed in that wrapped measure at the joint's current distance from each end; an end beyond
   * the wrap point is left open (-pi or pi) until the joint is within a wrap of it.
   */
  updateStops(q: ArrayLike<number>): void {
    const raw = this.world.impulseJoints.raw as unknown as RawStopSet;
    const axis = this.R.JointAxis.AngX as number;
    for (let i = 0; i < this.arm.length; i++) {
      const j = this.arm[i];
      const st = this.stops.get(j.name);
      if (!st) continue;
      const rel = q[i] - j.initial;
      const w = rel - 2 * Math.PI * Math.round(rel / (2 * Math.PI));
      raw.jointSetLimits(st.handle, axis, Math.max(-Math.PI, w - (rel - st.lower)), Math.min(Math.PI, w + (st.upper - rel)));
    }
  }

  private populate(): void {
    const R = this.R;
    const { world, robot } = this;
    const scene = this.layout.scene;
    const q0 = scene.initialQ ?? robot.home;
    const g0 = scene.initialGripper ?? robot.gripper.max;
    const poses0 = this.kin.linkPoses(q0, robot.fingerJoints.map(() => g0));
    const baseQ = poses0[robot.baseLink].q;
    const jointByChild = new Map(robot.joints.map((j) => [j.child, j]));
    // Create link bodies in description order; fixed-jointed massless links get no body of their own
    // (they are merged into the parent through a fixed multibody joint only if they have colliders).
    robot.links.forEach((l, i) => {
      const info = this.links[i];
      const p = poses0[l.name].p;
      const isBase = l.name === robot.baseLink;
      const desc = (isBase ? R.RigidBodyDesc.fixed() : R.RigidBodyDesc.dynamic())
        .setTranslation(p[0], p[1], p[2])
        .setRotation({ x: baseQ[0], y: baseQ[1], z: baseQ[2], w: baseQ[3] })
        .setGravityScale(0)
        .setCanSleep(false);
      if (!isBase) {
        // Massless frames still need a tiny mass for the multibody solver.
        const mass = info.mass > 0 ? info.mass : 1e-4;
        const principal = info.mass > 0 ? info.principal : ([1e-8, 1e-8, 1e-8] as Vec3);
        const f = info.inertiaFrame;
        desc.setAdditionalMassProperties(
          mass,
          { x: info.com[0], y: info.com[1], z: info.com[2] },
          { x: principal[0], y: principal[1], z: principal[2] },
          { x: f[0], y: f[1], z: f[2], w: f[3] },
        );
      }
      const body = world.createRigidBody(desc);
      this.linkBodies.push(body);
      this.linkHandles.push(body.handle);
      for (const c of l.colliders) {
        if (c.visualOnly) continue;
        const cd = colliderDesc(R, c, info.offset).setDensity(0).setCollisionGroups(ROBOT_GROUPS);
        if (info.isFinger) cd.setFrictionCombineRule(R.CoefficientCombineRule.Max);
        world.createCollider(cd, body);
      }
    });
    // Multibody joints, parents before children (description order is not guaranteed to be).
    const created = new Set([robot.baseLink]);
    const pending = robot.joints.slice();
    while (pending.length > 0) {
      const idx = pending.findIndex((j) => created.has(j.parent));
      const j = pending.splice(idx, 1)[0];
      created.add(j.child);
      const parent = this.linkBodies[robot.links.findIndex((l) => l.name === j.parent)];
      const child = this.linkBodies[robot.links.findIndex((l) => l.name === j.child)];
      const pj = [...this.arm, ...this.fingers].find((x) => x.name === j.name);
      const anchor = pj
        ? pj.anchor
        : quatRotate(quatConj(baseQ), [
            poses0[j.child].p[0] - poses0[j.parent].p[0],
            poses0[j.child].p[1] - poses0[j.parent].p[1],
            poses0[j.child].p[2] - poses0[j.parent].p[2],
          ]);
      const a1 = { x: anchor[0], y: anchor[1], z: anchor[2] };
      const a2 = { x: 0, y: 0, z: 0 };
      let data: RAPIER_NS.JointData;
      const ax = pj ? { x: pj.axis[0], y: pj.axis[1], z: pj.axis[2] } : { x: 1, y: 0, z: 0 };
      if (j.type === 'fixed' || !pj) {
        data = R.JointData.fixed(a1, { x: 0, y: 0, z: 0, w: 1 }, a2, { x: 0, y: 0, z: 0, w: 1 });
      } else {
        if (j.type === 'revolute') {
          // rapier.js 0.21 passes no limits for revolute joints (JointData.intoRaw drops them, and
          // multibody joints have no setLimits): the range is an impulse-joint stop (below).
          data = R.JointData.revolute(a1, a2, ax);
        } else {
          // Prismatic joints (the fingers) get the solver's limits, in Rapier's coordinate (zero at
          // the build-time value): nothing can push a finger out of its travel.
          data = R.JointData.prismatic(a1, a2, ax);
          data.limitsEnabled = true;
          const lim = j.limit!;
          data.limits = [lim.lower - pj.initial, lim.upper - pj.initial];
        }
      }
      world.createMultibodyJoint(data, parent, child, true);
      if (pj && j.limit && j.type === 'revolute') {
        // The joint's mechanical stop in the solver: a free generic impulse joint whose only
        // constraint is the joint's range about its axis, in Rapier's coordinate. rapier.js 0.21
        // cannot put limits on a revolute multibody joint, but an impulse joint between two links
        // of a multibody can carry them. Without it, a contact (the hand struck or dragged along
        // the table) drove a wrist 0.06 rad past its range: the 8 N m wrist actuator decelerates
        // its link and armature at ~20 rad/s^2, so a wrist kicked to 1.8 rad/s 0.02 rad from its
        // end cannot stop in time by its own torque.
        // Its limits are set every step by updateStops.
        const stop = world.createImpulseJoint(R.JointData.generic(a1, a2, ax, 0 as RAPIER_NS.JointAxesMask), parent, child, true);
        stop.setContactsEnabled(false);
        this.stops.set(j.name, { joint: j.name, handle: stop.handle, lower: j.limit.lower - pj.initial, upper: j.limit.upper - pj.initial });
      }
      void jointByChild;
    }
    for (const o of scene.objects) this.addObject(o);
    this.registerColliders();
  }

  private addObject(o: ObjectDesc): void {
    const R = this.R;
    const desc =
      o.type === 'fixed' ? R.RigidBodyDesc.fixed() : o.type === 'kinematic' ? R.RigidBodyDesc.kinematicPositionBased() : R.RigidBodyDesc.dynamic();
    desc.setTranslation(o.pose.p[0], o.pose.p[1], o.pose.p[2]);
    desc.setRotation({ x: o.pose.q[0], y: o.pose.q[1], z: o.pose.q[2], w: o.pose.q[3] });
    const body = this.world.createRigidBody(desc);
    this.objectBodies.push(body);
    this.objectHandles.push(body.handle);
    const solid = o.colliders.filter((c) => !c.visualOnly);
    // An explicit mass is spread over the colliders as a uniform density.
    let density: number | null = null;
    if (o.type === 'dynamic' && o.mass !== undefined) {
      const volume = solid.reduce((s, c) => s + shapeVolume(c.shape), 0);
      density = volume > 0 ? o.mass / volume : 0;
    }
    for (const c of solid) {
      const cd = colliderDesc(R, c, null).setCollisionGroups(WORLD_GROUPS);
      cd.setDensity(density ?? c.density ?? 1000);
      this.world.createCollider(cd, body);
    }
  }

  private registerColliders(): void {
    this.colliderOwner.clear();
    this.robotColliderHandles.length = 0;
    this.linkBodies.forEach((b, i) => {
      const n = b.numColliders();
      for (let k = 0; k < n; k++) {
        const h = b.collider(k).handle;
        this.colliderOwner.set(h, { kind: 'link', name: this.robot.links[i].name });
        this.robotColliderHandles.push(h);
      }
    });
    this.objectBodies.forEach((b, i) => {
      const n = b.numColliders();
      for (let k = 0; k < n; k++) this.colliderOwner.set(b.collider(k).handle, { kind: 'object', name: this.objectNames[i] });
    });
  }

  /** World pose of link i's description frame. */
  linkPose(i: number): Pose {
    const b = this.linkBodies[i];
    const t = b.translation();
    const r = b.rotation();
    return { p: [t.x, t.y, t.z], q: quatMul([r.x, r.y, r.z, r.w], this.links[i].offset) };
  }

  objectPose(i: number): Pose {
    const b = this.objectBodies[i];
    const t = b.translation();
    const r = b.rotation();
    return { p: [t.x, t.y, t.z], q: [r.x, r.y, r.z, r.w] };
  }

  free(): void {
    this.rawGravity?.free();
    this.rawGravity = null;
    this.world.free();
  }
}

export { poseMul };
