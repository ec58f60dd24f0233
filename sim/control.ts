/**
 * Joint control on the Rapier multibody (rapier.js has no multibody joint motors):
 * - arm: computed torque. Each physics step, tau = M(q) * qdd_des with M the arm's joint-space
 *   mass matrix (sum over moving links of m Jv^T Jv + Jw^T I Jw, from the links' inertias) and
 *   qdd_des = 2 wn (v_des - qd), v_des = clamp(wn/2 (q* - q), +-v_max): a critically damped
 *   second-order response (wn^2 (q* - q) - 2 wn qd) that saturates at the joint's speed limit.
 *   The torque is clamped to the joint's effort limit and applied as equal and opposite torques on
 *   the child and parent bodies about the joint axis. Arm links have gravity scale 0, so no
 *   gravity term is needed.
 * - fingers: PD on the opening with the force clamped to the gripper's squeezing force, applied as
 *   equal and opposite forces on the finger and its parent.
 */
import type RAPIER_NS from '@dimforge/rapier3d-compat';
import type { PhysicsWorld, PhysJoint } from './physics.ts';
import type { Pose, Vec3 } from './types.ts';

/** Gains, fixed per env by config. */
export interface ControlGains {
  /** Natural frequency of the arm joints' response (rad/s). */
  armWn: number;
  /** Natural frequency of the fingers' PD (rad/s). */
  fingerWn: number;
  /** Finger force limit (N); defaults to the robot description's gripper force. */
  gripperForce: number;
  /**
   * Fraction of an external force that reaches a multibody link in one step at this solver
   * iteration count (measured by multibodyProbe); torques and forces are divided by it.
   */
  forceGain: number;
  /** Rapier's implicit joint damping (measured by multibodyProbe), compensated per joint. */
  jointDamping: number;
  /** Physics timestep (s). */
  dt: number;
  /** Factor on the arm joints' effort limits (actuator strength; 1 when absent). */
  effortScale?: number;
  /** Viscous damping (N m s/rad) per arm joint that the controller does not compensate (joint friction). */
  extraDamping?: readonly number[];
  /** Largest tool point speed the arm is commanded to (m/s); absent or Infinity for none. */
  toolSpeed?: number;
}

/** Standard gravity (m/s^2), for the holding torques the actuators are spared. */
const GRAVITY = 9.81;
/** Share of a joint's own torque budget its desired acceleration may ask for (the rest covers coupling). */
const ACC_SHARE = 0.8;
/** Share of that acceleration the approach profile counts on for braking at the target. */
const BRAKE_SHARE = 0.6;
/** The same near the joint's range limits. */
const LIMIT_BRAKE_SHARE = 0.25;
/** Seconds a fully stalled finger takes to build up the whole grip force. */
const SQUEEZE_RISE_S = 0.05;
/** Largest force (N) the gripper's gear train exerts to keep the two fingers symmetric. */
const FINGER_COUPLING_FORCE = 200;

function wrapPi(a: number): number {
  return a - 2 * Math.PI * Math.round(a / (2 * Math.PI));
}

const probeCache = new Map<number, { gain: number; damping: number }>();

/**
 * Two facts about Rapier multibodies, measured on a one-link probe (once per solver iteration
 * count and timestep) so the controller can compensate whatever the Rapier version does:
 * - `gain`: the fraction of an external torque that reaches a multibody link over two steps
 *   (about 1; Rapier applies only (n-1)/n of it in the step it is given, with n solver
 *   iterations, and the rest in the next);
 * - `damping`: a viscous damping every multibody joint has, integrated implicitly (about
 *   0.1 N m s/rad here). On light links it dominates: a wrist of 7e-4 kg m^2 loses 40% of its
 *   speed per step at 240 Hz unless the controller adds c * qd and counts c * dt as inertia.
 */
export function multibodyProbe(R: typeof RAPIER_NS, iterations: number, dt: number): { gain: number; damping: number } {
  const key = iterations * 1e6 + Math.round(1 / dt);
  const cached = probeCache.get(key);
  if (cached) return cached;
  const I = 1e-3;
  const w = new R.World({ x: 0, y: 0, z: 0 });
  w.timestep = dt;
  w.numSolverIterations = iterations;
  const base = w.createRigidBody(R.RigidBodyDesc.fixed());
  const link = w.createRigidBody(
    R.RigidBodyDesc.dynamic().setAdditionalMassProperties(1, { x: 0, y: 0, z: 0 }, { x: I, y: I, z: I }, { x: 0, y: 0, z: 0, w: 1 }),
  );
  w.createMultibodyJoint(R.JointData.revolute({ x: 0, y: 0, z: 0 }, { x: 0, y: 0, z: 0 }, { x: 0, y: 0, z: 1 }), base, link, true);
  w.step();
  const tau = 1e-3;
  link.addTorque({ x: 0, y: 0, z: tau }, true);
  w.step();
  link.resetTorques(true);
  const v1 = link.angvel().z;
  w.step();
  const v2 = link.angvel().z;
  w.step();
  const v3 = link.angvel().z;
  w.free();
  if (!(v2 > 0) || !(v3 > 0)) {
    throw new Error(`Rapier multibody forces have no effect with solverIterations = ${iterations}; use 2 or more`);
  }
  // Free decay: v3 = v2 * I / (I + c dt).
  const damping = Math.max(0, (I * (v2 / v3 - 1)) / dt);
  // Part of a step's force only arrives in the next step (none in the first with 1 iteration):
  // f tau dt = v1 (I + c dt) and (1 - f) tau dt = v2 (I + c dt) - I v1. The total is what a
  // steadily applied force delivers, so that is the gain to correct for (about 1).
  const gain = (v1 * damping * dt + v2 * (I + damping * dt)) / (tau * dt);
  const out = { gain, damping };
  probeCache.set(key, out);
  return out;
}

export class Controller {
  readonly pw: PhysicsWorld;
  /** Gains of the physics timestep now in use (the env swaps them when it refines the timestep). */
  gains: ControlGains;
  /** Arm joints. */
  readonly dof: number;
  /** Arm joints + finger joints: the size of the mass matrix. */
  readonly ndof: number;
  /** Arm joint targets (rad or m). */
  readonly qTarget: Float64Array;
  /** Finger opening target (m, per finger). */
  gripperTarget: number;
  /** Latest joint readings (continuous: revolute joints are unwrapped against the last reading). */
  readonly q: Float64Array;
  readonly qd: Float64Array;
  readonly finger: Float64Array;
  readonly fingerVel: Float64Array;
  private readonly joints: PhysJoint[];
  private readonly velLimit: Float64Array;
  /**
   * Per finger: the squeezing force built up while the finger is held back from the speed its
   * position loop asks for (an integral of the speed error), at most the grip force. A finger
   * stalled on an object thus presses with the grip force, as a current-limited servo does; in
   * free motion the speed error stays near zero and so does this.
   */
  readonly squeeze: Float64Array;
  private readonly lower: Float64Array;
  private readonly upper: Float64Array;
  private readonly effort: Float64Array;
  /** Finger travel (m). */
  private readonly fingerLower: Float64Array;
  private readonly fingerUpper: Float64Array;
  // Per-body caches, refreshed by read(): position, rotation, angular and linear velocity.
  private readonly pos: Float64Array;
  private readonly rot: Float64Array;
  private readonly angvel: Float64Array;
  private readonly linvel: Float64Array;
  private readonly torque: Float64Array;
  private readonly force: Float64Array;
  private readonly M: Float64Array;
  /** Velocity-product (Coriolis, centrifugal, gyroscopic) generalized forces at the cached state. */
  readonly bias: Float64Array;
  /**
   * Generalized forces that would hold the robot against gravity at the cached state. The links
   * have gravity scale 0 (perfect compensation), but a real actuator spends this much of its
   * effort on holding the arm up, so only the rest is available to move it.
   */
  readonly gravity: Float64Array;
  /** Joint torques and finger forces the actuators would deliver on a real arm in the last step (dynamics + gravity). */
  readonly actuator: Float64Array;
  private readonly acc: Float64Array;
  /** Desired joint speeds and acceleration limits of the current step. */
  private readonly vDes: Float64Array;
  private readonly aMax: Float64Array;
  /** The link whose origin is the tool point for the tool speed limit (the last arm joint's child). */
  private readonly toolLink: number;
  private readonly gen: Float64Array;
  private readonly jv: Float64Array;
  /** World axis of every actuated joint at the cached state. */
  private readonly axisW: Float64Array;
  /** Bodies whose state never changes once read (fixed) and bodies whose linear velocity is used. */
  private readonly skipRead: boolean[];
  private readonly needsLinvel: boolean[];

  constructor(pw: PhysicsWorld, gains: ControlGains) {
    this.pw = pw;
    this.gains = gains;
    this.dof = pw.arm.length;
    this.joints = [...pw.arm, ...pw.fingers];
    const nd = (this.ndof = this.joints.length);
    const nb = pw.links.length;
    this.qTarget = new Float64Array(this.dof);
    this.q = new Float64Array(this.dof);
    this.qd = new Float64Array(this.dof);
    this.finger = new Float64Array(pw.fingers.length);
    this.fingerVel = new Float64Array(pw.fingers.length);
    this.squeeze = new Float64Array(pw.fingers.length);
    const limits = new Map(pw.robot.joints.map((j) => [j.name, j.limit]));
    this.velLimit = Float64Array.from(this.joints, (j) => limits.get(j.name)!.velocity);
    this.lower = Float64Array.from(pw.arm, (j) => limits.get(j.name)!.lower);
    this.upper = Float64Array.from(pw.arm, (j) => limits.get(j.name)!.upper);
    this.fingerLower = Float64Array.from(pw.fingers, (j) => limits.get(j.name)!.lower);
    this.fingerUpper = Float64Array.from(pw.fingers, (j) => limits.get(j.name)!.upper);
    this.effort = Float64Array.from(this.joints, (j, i) => (i < this.dof ? limits.get(j.name)!.effort * (gains.effortScale ?? 1) : gains.gripperForce));
    this.pos = new Float64Array(3 * nb);
    this.rot = new Float64Array(4 * nb);
    this.angvel = new Float64Array(3 * nb);
    this.linvel = new Float64Array(3 * nb);
    this.torque = new Float64Array(3 * nb);
    this.force = new Float64Array(3 * nb);
    this.M = new Float64Array(nd * nd);
    this.bias = new Float64Array(nd);
    this.gravity = new Float64Array(nd);
    this.actuator = new Float64Array(nd);
    this.acc = new Float64Array(nd);
    this.vDes = new Float64Array(nd);
    this.aMax = new Float64Array(nd);
    this.toolLink = this.dof > 0 ? pw.arm[this.dof - 1].childLink : 0;
    this.gen = new Float64Array(nd);
    this.jv = new Float64Array(3 * nd);
    this.axisW = new Float64Array(3 * nd);
    this.skipRead = pw.linkBodies.map(() => false);
    // Linear velocities feed the prismatic joint rates and the velocity-product forces of every link.
    this.needsLinvel = pw.linkBodies.map(() => true);
    pw.arm.forEach((j, i) => {
      this.q[i] = j.initial;
      this.qTarget[i] = j.initial;
    });
    pw.fingers.forEach((f, i) => (this.finger[i] = f.initial));
    this.gripperTarget = pw.fingers.length > 0 ? pw.fingers[0].initial : 0;
    this.read();
  }

  /** Controller state that is not in the physics world (for snapshots). */
  getState(): { q: number[]; qTarget: number[]; gripperTarget: number; squeeze?: number[] } {
    return { q: Array.from(this.q), qTarget: Array.from(this.qTarget), gripperTarget: this.gripperTarget, squeeze: Array.from(this.squeeze) };
  }

  setState(s: { q: number[]; qTarget: number[]; gripperTarget: number; squeeze?: number[] }): void {
    this.squeeze.fill(0);
    if (s.squeeze) this.squeeze.set(s.squeeze);
    this.q.set(s.q);
    this.qTarget.set(s.qTarget);
    this.gripperTarget = s.gripperTarget;
    this.read();
  }

  /** Refresh body caches and joint readings from the physics world. */
  read(): void {
    const bodies = this.pw.linkBodies;
    const { pos, rot, angvel, linvel } = this;
    for (let i = 0; i < bodies.length; i++) {
      // Each read crosses into WASM and allocates: skip what cannot change or is not used.
      if (this.skipRead[i]) continue;
      const b = bodies[i];
      if (b.isFixed()) this.skipRead[i] = true;
      const t = b.translation();
      const r = b.rotation();
      const w = b.angvel();
      if (this.needsLinvel[i]) {
        const v = b.linvel();
        linvel[3 * i] = v.x;
        linvel[3 * i + 1] = v.y;
        linvel[3 * i + 2] = v.z;
      }
      pos[3 * i] = t.x;
      pos[3 * i + 1] = t.y;
      pos[3 * i + 2] = t.z;
      rot[4 * i] = r.x;
      rot[4 * i + 1] = r.y;
      rot[4 * i + 2] = r.z;
      rot[4 * i + 3] = r.w;
      angvel[3 * i] = w.x;
      angvel[3 * i + 1] = w.y;
      angvel[3 * i + 2] = w.z;
    }
    const joints = this.joints;
    for (let k = 0; k < joints.length; k++) {
      const j = joints[k];
      this.rotateInto(j.childLink, j.axis, this.axisW, 3 * k);
      let value: number;
      let rate: number;
      if (j.type === 'revolute') {
        // rel = conj(R_parent) * R_child; its rotation about the axis is the joint's travel.
        const p = 4 * j.parentLink;
        const c = 4 * j.childLink;
        const px = -rot[p], py = -rot[p + 1], pz = -rot[p + 2], pw = rot[p + 3];
        const cx = rot[c], cy = rot[c + 1], cz = rot[c + 2], cw = rot[c + 3];
        const rx = pw * cx + px * cw + py * cz - pz * cy;
        const ry = pw * cy - px * cz + py * cw + pz * cx;
        const rz = pw * cz + px * cy - py * cx + pz * cw;
        const rw = pw * cw - px * cx - py * cy - pz * cz;
        const s = rx * j.axis[0] + ry * j.axis[1] + rz * j.axis[2];
        const raw = j.initial + 2 * Math.atan2(s, rw);
        const last = k < this.dof ? this.q[k] : this.finger[k - this.dof];
        value = last + wrapPi(raw - last);
        const a = 3 * k;
        rate =
          (angvel[3 * j.childLink] - angvel[3 * j.parentLink]) * this.axisW[a] +
          (angvel[3 * j.childLink + 1] - angvel[3 * j.parentLink + 1]) * this.axisW[a + 1] +
          (angvel[3 * j.childLink + 2] - angvel[3 * j.parentLink + 2]) * this.axisW[a + 2];
      } else {
        const [s, sd] = this.prismatic(j.parentLink, j.childLink, j.axis, j.anchor);
        value = j.initial + s;
        rate = sd;
      }
      if (k < this.dof) {
        this.q[k] = value;
        this.qd[k] = rate;
      } else {
        this.finger[k - this.dof] = value;
        this.fingerVel[k - this.dof] = rate;
      }
    }
  }

  /** Displacement along a prismatic axis (from the build-time anchor) and its rate. */
  private prismatic(parent: number, child: number, axis: Vec3, anchor: Vec3): [number, number] {
    const { pos, rot, angvel } = this;
    const dx = pos[3 * child] - pos[3 * parent];
    const dy = pos[3 * child + 1] - pos[3 * parent + 1];
    const dz = pos[3 * child + 2] - pos[3 * parent + 2];
    // Express the offset in the parent's physics frame.
    const p = 4 * parent;
    const local = rotateVec(-rot[p], -rot[p + 1], -rot[p + 2], rot[p + 3], dx, dy, dz);
    const s = (local[0] - anchor[0]) * axis[0] + (local[1] - anchor[1]) * axis[1] + (local[2] - anchor[2]) * axis[2];
    const aw = rotateVec(rot[p], rot[p + 1], rot[p + 2], rot[p + 3], axis[0], axis[1], axis[2]);
    // Velocities of the two body origins (Rapier reports the centre-of-mass velocity).
    const vc = this.originVelocity(child);
    const vp = this.originVelocity(parent);
    const wx = angvel[3 * parent], wy = angvel[3 * parent + 1], wz = angvel[3 * parent + 2];
    const relx = vc[0] - vp[0] - (wy * dz - wz * dy);
    const rely = vc[1] - vp[1] - (wz * dx - wx * dz);
    const relz = vc[2] - vp[2] - (wx * dy - wy * dx);
    return [s, relx * aw[0] + rely * aw[1] + relz * aw[2]];
  }

  private originVelocity(i: number): Vec3 {
    const { rot, angvel, linvel } = this;
    const com = this.pw.links[i].com;
    const c = rotateVec(rot[4 * i], rot[4 * i + 1], rot[4 * i + 2], rot[4 * i + 3], com[0], com[1], com[2]);
    const wx = angvel[3 * i], wy = angvel[3 * i + 1], wz = angvel[3 * i + 2];
    // v_origin = v_com + w x (origin - com) = v_com - w x c
    return [
      linvel[3 * i] - (wy * c[2] - wz * c[1]),
      linvel[3 * i + 1] - (wz * c[0] - wx * c[2]),
      linvel[3 * i + 2] - (wx * c[1] - wy * c[0]),
    ];
  }

  private rotateInto(body: number, v: Vec3, out: Float64Array, o: number): void {
    const r = this.rot;
    const w = rotateVec(r[4 * body], r[4 * body + 1], r[4 * body + 2], r[4 * body + 3], v[0], v[1], v[2]);
    out[o] = w[0];
    out[o + 1] = w[1];
    out[o + 2] = w[2];
  }

  /**
   * Joint-space mass matrix over arm and finger joints at the cached state (row-major
   * ndof x ndof). The fingers are in it because their centres of mass sit off the wrist axis:
   * leaving them out lets wrist motion drive the fingers and slows the wrist's response.
   * Also fills `bias` (velocity-product forces) and `gravity` (holding forces) for the same state.
   */
  massMatrix(): Float64Array {
    const n = this.ndof;
    const M = this.M;
    const bias = this.bias;
    const grav = this.gravity;
    M.fill(0);
    bias.fill(0);
    grav.fill(0);
    const { pos, rot, jv, angvel, linvel, axisW } = this;
    const joints = this.joints;
    const links = this.pw.links;
    for (let l = 0; l < links.length; l++) {
      const L = links[l];
      if (L.mass <= 0 || L.dofAncestors.length === 0) continue;
      const qx = rot[4 * l], qy = rot[4 * l + 1], qz = rot[4 * l + 2], qw = rot[4 * l + 3];
      const c = rotateVec(qx, qy, qz, qw, L.com[0], L.com[1], L.com[2]);
      const cx = pos[3 * l] + c[0], cy = pos[3 * l + 1] + c[1], cz = pos[3 * l + 2] + c[2];
      // World rotation of the principal frame: R_body * inertiaFrame.
      const f = L.inertiaFrame;
      const fx = qw * f[0] + qx * f[3] + qy * f[2] - qz * f[1];
      const fy = qw * f[1] - qx * f[2] + qy * f[3] + qz * f[0];
      const fz = qw * f[2] + qx * f[1] - qy * f[0] + qz * f[3];
      const fw = qw * f[3] - qx * f[0] - qy * f[1] - qz * f[2];
      // Velocity-product accelerations of this link (what it would accelerate by with all joint
      // accelerations zero): d/dt of its Jacobian columns times the joint rates.
      const vcx = linvel[3 * l], vcy = linvel[3 * l + 1], vcz = linvel[3 * l + 2];
      let abx = 0, aby = 0, abz = 0;
      let alx = 0, aly = 0, alz = 0;
      const anc = L.dofAncestors;
      for (const j of anc) {
        const a = 3 * j;
        const ax = axisW[a], ay = axisW[a + 1], az = axisW[a + 2];
        const J = joints[j];
        const jb = J.childLink;
        const rate = j < this.dof ? this.qd[j] : this.fingerVel[j - this.dof];
        if (J.type === 'revolute') {
          const rx = cx - pos[3 * jb], ry = cy - pos[3 * jb + 1], rz = cz - pos[3 * jb + 2];
          jv[a] = ay * rz - az * ry;
          jv[a + 1] = az * rx - ax * rz;
          jv[a + 2] = ax * ry - ay * rx;
          // The axis turns with the joint's child body: da = w_child x a.
          const wx = angvel[3 * jb], wy = angvel[3 * jb + 1], wz = angvel[3 * jb + 2];
          const dax = wy * az - wz * ay, day = wz * ax - wx * az, daz = wx * ay - wy * ax;
          // d/dt (a x r) = da x r + a x (v_com - v_pivot); the pivot is the child body's origin.
          const vp = this.originVelocity(jb);
          const ux = vcx - vp[0], uy = vcy - vp[1], uz = vcz - vp[2];
          abx += rate * (day * rz - daz * ry + (ay * uz - az * uy));
          aby += rate * (daz * rx - dax * rz + (az * ux - ax * uz));
          abz += rate * (dax * ry - day * rx + (ax * uy - ay * ux));
          alx += rate * dax;
          aly += rate * day;
          alz += rate * daz;
        } else {
          jv[a] = ax;
          jv[a + 1] = ay;
          jv[a + 2] = az;
          // A prismatic axis turns with the parent body.
          const pb = J.parentLink;
          const wx = angvel[3 * pb], wy = angvel[3 * pb + 1], wz = angvel[3 * pb + 2];
          abx += rate * (wy * az - wz * ay);
          aby += rate * (wz * ax - wx * az);
          abz += rate * (wx * ay - wy * ax);
        }
      }
      // Rotational bias: I alpha_bias + w x (I w), with I in world coordinates through the principal frame.
      const wlx = angvel[3 * l], wly = angvel[3 * l + 1], wlz = angvel[3 * l + 2];
      const Iw = this.inertiaTimes(fx, fy, fz, fw, L.principal, wlx, wly, wlz);
      const Ia = this.inertiaTimes(fx, fy, fz, fw, L.principal, alx, aly, alz);
      const tbx = Ia[0] + (wly * Iw[2] - wlz * Iw[1]);
      const tby = Ia[1] + (wlz * Iw[0] - wlx * Iw[2]);
      const tbz = Ia[2] + (wlx * Iw[1] - wly * Iw[0]);
      const m = L.mass;
      for (const j of anc) {
        const a = 3 * j;
        const revJ = joints[j].type === 'revolute';
        bias[j] += m * (jv[a] * abx + jv[a + 1] * aby + jv[a + 2] * abz);
        if (revJ) bias[j] += axisW[a] * tbx + axisW[a + 1] * tby + axisW[a + 2] * tbz;
        grav[j] += m * GRAVITY * jv[a + 2];
        // I_world * a_j through the principal frame.
        let ia0 = 0, ia1 = 0, ia2 = 0;
        if (revJ) {
          const ia = this.inertiaTimes(fx, fy, fz, fw, L.principal, axisW[a], axisW[a + 1], axisW[a + 2]);
          ia0 = ia[0];
          ia1 = ia[1];
          ia2 = ia[2];
        }
        for (const k of anc) {
          const b = 3 * k;
          let mm = m * (jv[a] * jv[b] + jv[a + 1] * jv[b + 1] + jv[a + 2] * jv[b + 2]);
          if (revJ && joints[k].type === 'revolute') mm += ia0 * axisW[b] + ia1 * axisW[b + 1] + ia2 * axisW[b + 2];
          M[j * n + k] += mm;
        }
      }
    }
    return M;
  }

  /** World inertia (principal moments in the frame rotated by (fx, fy, fz, fw)) times a vector. */
  private inertiaTimes(fx: number, fy: number, fz: number, fw: number, principal: Vec3, vx: number, vy: number, vz: number): Vec3 {
    const loc = rotateVec(-fx, -fy, -fz, fw, vx, vy, vz);
    return rotateVec(fx, fy, fz, fw, loc[0] * principal[0], loc[1] * principal[1], loc[2] * principal[2]);
  }

  /**
   * Scale the arm joints' desired speeds by one factor so the tool point (the hand link's origin,
   * between the finger pads) moves no faster than `toolSpeed`.
   */
  private limitToolSpeed(): void {
    const vmax = this.gains.toolSpeed;
    if (vmax === undefined || !(vmax > 0) || !Number.isFinite(vmax)) return;
    const { pos, axisW, vDes } = this;
    const tool = this.toolLink;
    const tx = pos[3 * tool], ty = pos[3 * tool + 1], tz = pos[3 * tool + 2];
    let ux = 0, uy = 0, uz = 0;
    for (let j = 0; j < this.dof; j++) {
      const J = this.joints[j];
      const a = 3 * j;
      const b = J.childLink;
      const rx = tx - pos[3 * b], ry = ty - pos[3 * b + 1], rz = tz - pos[3 * b + 2];
      ux += vDes[j] * (axisW[a + 1] * rz - axisW[a + 2] * ry);
      uy += vDes[j] * (axisW[a + 2] * rx - axisW[a] * rz);
      uz += vDes[j] * (axisW[a] * ry - axisW[a + 1] * rx);
    }
    const u = Math.sqrt(ux * ux + uy * uy + uz * uz);
    if (u > vmax) for (let j = 0; j < this.dof; j++) vDes[j] *= vmax / u;
  }

  /** Compute and apply joint torques and finger forces for the next physics step. */
  apply(): void {
    const n = this.ndof;
    const dof = this.dof;
    const M = this.massMatrix();
    const acc = this.acc;
    // Desired accelerations: critically damped toward the target, speed-limited.
    for (let i = 0; i < n; i++) {
      const arm = i < dof;
      const wn = arm ? this.gains.armWn : this.gains.fingerWn;
      const err = arm ? this.qTarget[i] - this.q[i] : this.gripperTarget - this.finger[i - dof];
      const rate = arm ? this.qd[i] : this.fingerVel[i - dof];
      // Approach speed: the joint's speed limit, the critically damped profile, and for arm joints
      // the speed from which half the actuator's spare torque stops the joint at the target (the
      // target lies inside the joint's range, so this also keeps the joint inside it).
      let vmax = this.velLimit[i];
      let amax = Infinity;
      if (arm) {
        // What this joint's actuator can do alone, less the gravity it holds.
        amax = (ACC_SHARE * Math.max(0.1 * this.effort[i], this.effort[i] - Math.abs(this.gravity[i]))) / M[i * n + i];
        vmax = Math.min(vmax, Math.sqrt(BRAKE_SHARE * 2 * amax * Math.abs(err)));
        // Near the end of the range, count on less: other joints' demands can starve the brake.
        const room = err > 0 ? this.upper[i] - this.q[i] : this.q[i] - this.lower[i];
        vmax = Math.min(vmax, Math.sqrt(LIMIT_BRAKE_SHARE * 2 * amax * Math.max(0, room)));
      }
      const v = Math.max(-vmax, Math.min(vmax, 0.5 * wn * err));
      this.vDes[i] = v;
      this.aMax[i] = amax;
      if (!arm) {
        // Build the squeeze up (or let it go) at the grip force per SQUEEZE_RISE_S of full speed error.
        const f = i - dof;
        const F = this.effort[i];
        const e = Math.max(-1, Math.min(1, (v - rate) / this.velLimit[i]));
        this.squeeze[f] = Math.max(-F, Math.min(F, this.squeeze[f] + (F / SQUEEZE_RISE_S) * e * this.gains.dt));
      }
    }
    this.limitToolSpeed();
    for (let i = 0; i < n; i++) {
      const wn = i < dof ? this.gains.armWn : this.gains.fingerWn;
      const rate = i < dof ? this.qd[i] : this.fingerVel[i - dof];
      acc[i] = Math.max(-this.aMax[i], Math.min(this.aMax[i], 2 * wn * (this.vDes[i] - rate)));
    }
    if (n - dof === 2) {
      // Two fingers act as one parallel gripper (the real one is geared; MuJoCo models use an
      // equality constraint): their common mode follows the opening target, and their difference
      // is held at zero by a stiffer loop, so a held object cannot drift toward one finger.
      const wd = 2.5 * this.gains.fingerWn;
      const ed = 0.5 * (this.finger[0] - this.finger[1]);
      const vd = 0.5 * (this.fingerVel[0] - this.fingerVel[1]);
      const common = 0.5 * (acc[dof] + acc[dof + 1]);
      // Damping at most 1/dt: a larger gain removes more than the whole speed in one explicit
      // step, and the difference rang (one finger closed, the other 6 mm open, swapping each
      // step) after the hand struck the table, driving a finger past its end.
      const diff = -wd * wd * ed - Math.min(2 * wd, 1 / this.gains.dt) * vd;
      acc[dof] = common + diff;
      acc[dof + 1] = common - diff;
    }
    const gen = this.gen;
    const c = this.gains.jointDamping;
    const cdt = c * this.gains.dt;
    // Rapier damps every joint implicitly: v' = (I v + tau dt) / (I + c dt). Asking for
    // v' = v + acc dt needs tau = (M + c dt) acc + c v, plus the velocity-product forces.
    // Torque limits. Split each arm torque into the part the arm's accelerations ask for (a) and
    // the rest (b); when some actuator cannot deliver its torque, the arm's accelerations shrink
    // by one factor, so the coupling terms every torque was computed with stay true. Clamping each
    // torque alone broke them and the arm left its speed limits (30-80 rad/s).
    let scale = 1;
    for (let i = 0; i < dof; i++) {
      let a = cdt * acc[i];
      let b = c * this.qd[i] + this.bias[i];
      for (let k = 0; k < n; k++) {
        if (k < dof) a += M[i * n + k] * acc[k];
        else b += M[i * n + k] * acc[k];
      }
      // A real actuator also holds the arm against gravity (spared here by gravity scale 0).
      const hi = this.effort[i] - this.gravity[i];
      const lo = -this.effort[i] - this.gravity[i];
      if (a > 0 && b + a > hi) scale = Math.min(scale, Math.max(0, (hi - b) / a));
      else if (a < 0 && b + a < lo) scale = Math.min(scale, Math.max(0, (lo - b) / a));
    }
    if (scale < 1) for (let i = 0; i < dof; i++) acc[i] *= scale;
    for (let i = 0; i < n; i++) {
      const rate = i < dof ? this.qd[i] : this.fingerVel[i - dof];
      let tau = cdt * acc[i] + c * rate + this.bias[i];
      for (let k = 0; k < n; k++) tau += M[i * n + k] * acc[k];
      // Arm joints: the actuator's effort limit less the gravity it holds. Fingers: the squeezing
      // force limit (a finger closing on an object pushes with at most it).
      const g = i < dof ? this.gravity[i] : 0;
      if (i >= dof) tau += this.squeeze[i - dof];
      gen[i] = Math.max(-this.effort[i] - g, Math.min(this.effort[i] - g, tau));
      if (i >= dof && n - dof === 2) gen[i] = tau;
      this.actuator[i] = gen[i] + g;
    }
    if (n - dof === 2) {
      // The motor drives the fingers' common mode, so only that is limited to the grip force; their
      // difference is the gear train's business (it holds them symmetric with far more force), or
      // a held block would shift along the finger axis whenever the squeeze used the whole budget.
      const F = this.effort[dof];
      let common = Math.max(-F, Math.min(F, 0.5 * (gen[dof] + gen[dof + 1])));
      // The drive is geared: something that pushes the fingers along their travel faster than
      // the drive moves them (the hand pressed onto the table, a finger-first landing) meets the
      // gear train, not only the motor's grip force. So the common mode brakes any speed beyond
      // the fingers' speed limit with up to FINGER_COUPLING_FORCE. Without it a finger pushed
      // closed by the table dragged the other along at ~1 m/s, and Rapier's joint limit, which
      // acts only once a joint is past it, let that finger end 2-3 mm past its closed end.
      const vc = 0.5 * (this.fingerVel[0] + this.fingerVel[1]);
      const over = Math.abs(vc) - this.velLimit[dof];
      if (over > 0) {
        const mass = M[dof * n + dof] + M[dof * n + dof + 1];
        common -= Math.sign(vc) * Math.min(FINGER_COUPLING_FORCE, (mass * over) / this.gains.dt);
      }
      let diff = Math.max(-FINGER_COUPLING_FORCE, Math.min(FINGER_COUPLING_FORCE, 0.5 * (gen[dof] - gen[dof + 1])));
      // The gear train cannot drive a finger that sits at an end of its travel further into it:
      // the gear is at its end too. Without this, a hand struck on the table pushed one finger open,
      // and the coupling drove the other (already closed) 2-3 mm past its closed end.
      const [f0, f1] = [this.finger[0], this.finger[1]];
      if (diff > 0 && (f0 >= this.fingerUpper[0] || f1 <= this.fingerLower[1])) diff = 0;
      if (diff < 0 && (f0 <= this.fingerLower[0] || f1 >= this.fingerUpper[1])) diff = 0;
      gen[dof] = common + diff;
      gen[dof + 1] = common - diff;
      this.actuator[dof] = gen[dof];
      this.actuator[dof + 1] = gen[dof + 1];
    }
    // Joint friction the controller does not know of (physics randomisation): it acts on the
    // joint whatever the actuator does, so it is outside the actuator's limits.
    const extra = this.gains.extraDamping;
    if (extra) for (let i = 0; i < dof; i++) gen[i] -= (extra[i] ?? 0) * this.qd[i];
    this.applyGeneralized(gen);
    this.pw.updateStops(this.q);
  }

  /**
   * Apply generalized forces (joint torques / finger forces, in [...arm, ...fingers] order) as
   * equal and opposite body wrenches, for the next physics step.
   */
  applyGeneralized(gen: ArrayLike<number>): void {
    const n = this.ndof;
    const torque = this.torque;
    const force = this.force;
    torque.fill(0);
    force.fill(0);
    const joints = this.joints;
    for (let i = 0; i < n; i++) {
      const tau = gen[i];
      const j = joints[i];
      const a = 3 * i;
      if (j.type === 'revolute') {
        for (let d = 0; d < 3; d++) {
          torque[3 * j.childLink + d] += tau * this.axisW[a + d];
          torque[3 * j.parentLink + d] -= tau * this.axisW[a + d];
        }
      } else {
        for (let d = 0; d < 3; d++) {
          force[3 * j.childLink + d] += tau * this.axisW[a + d];
          force[3 * j.parentLink + d] -= tau * this.axisW[a + d];
        }
        // The reaction acts on the parent along the child's line of action, not at the parent's
        // centre of mass: add the moment of the offset so the pair exerts no net torque.
        const r = sub3(this.comWorld(j.childLink), this.comWorld(j.parentLink));
        const f0 = -tau * this.axisW[a], f1 = -tau * this.axisW[a + 1], f2 = -tau * this.axisW[a + 2];
        torque[3 * j.parentLink] += r[1] * f2 - r[2] * f1;
        torque[3 * j.parentLink + 1] += r[2] * f0 - r[0] * f2;
        torque[3 * j.parentLink + 2] += r[0] * f1 - r[1] * f0;
      }
    }
    const bodies = this.pw.linkBodies;
    const k = 1 / this.gains.forceGain;
    for (let i = 0; i < bodies.length; i++) {
      const b = bodies[i];
      if (b.isFixed()) continue;
      b.resetForces(false);
      b.resetTorques(false);
      const tx = k * torque[3 * i], ty = k * torque[3 * i + 1], tz = k * torque[3 * i + 2];
      if (tx !== 0 || ty !== 0 || tz !== 0) b.addTorque({ x: tx, y: ty, z: tz }, false);
      const fx = k * force[3 * i], fy = k * force[3 * i + 1], fz = k * force[3 * i + 2];
      if (fx !== 0 || fy !== 0 || fz !== 0) b.addForce({ x: fx, y: fy, z: fz }, false);
    }
  }

  /** World pose of link i's description frame at the cached state (no physics calls). */
  linkPose(i: number): Pose {
    const r = this.rot;
    const o = this.pw.links[i].offset;
    const x = r[4 * i], y = r[4 * i + 1], z = r[4 * i + 2], w = r[4 * i + 3];
    return {
      p: [this.pos[3 * i], this.pos[3 * i + 1], this.pos[3 * i + 2]],
      q: [
        w * o[0] + x * o[3] + y * o[2] - z * o[1],
        w * o[1] - x * o[2] + y * o[3] + z * o[0],
        w * o[2] + x * o[1] - y * o[0] + z * o[3],
        w * o[3] - x * o[0] - y * o[1] - z * o[2],
      ],
    };
  }

  /** World position of link i's centre of mass at the cached state. */
  private comWorld(i: number): Vec3 {
    const r = this.rot;
    const com = this.pw.links[i].com;
    const c = rotateVec(r[4 * i], r[4 * i + 1], r[4 * i + 2], r[4 * i + 3], com[0], com[1], com[2]);
    return [this.pos[3 * i] + c[0], this.pos[3 * i + 1] + c[1], this.pos[3 * i + 2] + c[2]];
  }
}

function sub3(a: Vec3, b: Vec3): Vec3 {
  return [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
}

/** Rotate (vx, vy, vz) by the unit quaternion (x, y, z, w). */
function rotateVec(x: number, y: number, z: number, w: number, vx: number, vy: number, vz: number): Vec3 {
  const tx = 2 * (y * vz - z * vy);
  const ty = 2 * (z * vx - x * vz);
  const tz = 2 * (x * vy - y * vx);
  return [vx + w * tx + (y * tz - z * ty), vy + w * ty + (z * tx - x * tz), vz + w * tz + (x * ty - y * tx)];
}
