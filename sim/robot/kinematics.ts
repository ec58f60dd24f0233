/**
 * Arm kinematics in TypeScript: forward kinematics of every link, the geometric Jacobian of the
 * tool centre point, and damped-least-squares inverse kinematics that never leaves the joint limits.
 * Works for any description (built-in or URDF); all poses are in the world frame given the pose of
 * the robot base.
 */
import { Rng } from '../rng.ts';
import {
  cross,
  poseMul,
  quatConj,
  quatFromAxisAngle,
  quatMul,
  quatNormalize,
  quatRotate,
  quatToRotVec,
  solveLinear,
} from '../math.ts';
import type { Pose, Vec3 } from '../types.ts';
import { chainJoints, type JointDesc, type RobotDescription } from './description.ts';

/** Result of an IK solve. `ok` when both errors are within the requested tolerances. */
export interface IkResult {
  q: number[];
  ok: boolean;
  /** Position error in metres. */
  posErr: number;
  /** Orientation error in radians. */
  rotErr: number;
  iterations: number;
}

export interface IkOptions {
  /** Position tolerance (m), default 1e-4. */
  posTol?: number;
  /** Orientation tolerance (rad), default 1e-3. */
  rotTol?: number;
  /** Iterations per attempt, default 200. */
  maxIterations?: number;
  /** Extra attempts from pseudo-random starts when the seed does not converge, default 8. */
  restarts?: number;
  /** Damping factor lambda of the least-squares step, default 0.02. */
  damping?: number;
  /** Ignore orientation (position-only IK). */
  positionOnly?: boolean;
}

interface ChainStep {
  joint: JointDesc;
  /** Index into the arm joint vector, or -1 for a fixed joint. */
  index: number;
}

/**
 * Kinematics of one robot mounted at a base pose. Arm joint vectors follow `desc.armJoints`;
 * finger openings follow `desc.fingerJoints`.
 */
export class Kinematics {
  readonly desc: RobotDescription;
  readonly base: Pose;
  readonly dof: number;
  readonly lower: Float64Array;
  readonly upper: Float64Array;
  private readonly chain: ChainStep[];
  /** Joints in an order where every parent precedes its children (for all-link FK). */
  private readonly treeOrder: JointDesc[];

  constructor(desc: RobotDescription, base: Pose) {
    this.desc = desc;
    this.base = base;
    this.dof = desc.armJoints.length;
    const byName = new Map(desc.joints.map((j) => [j.name, j]));
    this.lower = Float64Array.from(desc.armJoints, (n) => byName.get(n)!.limit!.lower);
    this.upper = Float64Array.from(desc.armJoints, (n) => byName.get(n)!.limit!.upper);
    this.chain = chainJoints(desc, desc.tcp.link).map((joint) => ({ joint, index: desc.armJoints.indexOf(joint.name) }));
    const order: JointDesc[] = [];
    const placed = new Set([desc.baseLink]);
    while (order.length < desc.joints.length) {
      const before = order.length;
      for (const j of desc.joints) if (!placed.has(j.child) && placed.has(j.parent)) {
        order.push(j);
        placed.add(j.child);
      }
      if (order.length === before) break; // validated descriptions are trees; defensive stop
    }
    this.treeOrder = order;
  }

  /** The child frame of `joint` in its parent frame at joint value `value`. */
  static jointTransform(joint: JointDesc, value: number): Pose {
    if (joint.type === 'revolute') return poseMul(joint.origin, { p: [0, 0, 0], q: quatFromAxisAngle(joint.axis, value) });
    if (joint.type === 'prismatic') {
      const a = joint.axis;
      return poseMul(joint.origin, { p: [a[0] * value, a[1] * value, a[2] * value], q: [0, 0, 0, 1] });
    }
    return joint.origin;
  }

  /** World pose of every link for arm joints `q` and finger openings `fingers` (default 0). */
  linkPoses(q: ArrayLike<number>, fingers: ArrayLike<number> = []): Record<string, Pose> {
    const out: Record<string, Pose> = { [this.desc.baseLink]: this.base };
    for (const j of this.treeOrder) {
      let value = 0;
      const ai = this.desc.armJoints.indexOf(j.name);
      if (ai >= 0) value = q[ai];
      const fi = this.desc.fingerJoints.indexOf(j.name);
      if (fi >= 0) value = fingers[fi] ?? 0;
      out[j.child] = poseMul(out[j.parent], Kinematics.jointTransform(j, value));
    }
    return out;
  }

  /** World pose of the tool centre point for arm joints `q`. */
  fk(q: ArrayLike<number>): Pose {
    let T = this.base;
    for (const s of this.chain) T = poseMul(T, Kinematics.jointTransform(s.joint, s.index >= 0 ? q[s.index] : 0));
    return poseMul(T, this.desc.tcp.pose);
  }

  /**
   * Tool pose and the 6 x dof geometric Jacobian (rows: linear x, y, z, angular x, y, z in the
   * world frame; row-major) at `q`.
   */
  jacobian(q: ArrayLike<number>, out: Float64Array = new Float64Array(6 * this.dof)): { pose: Pose; J: Float64Array } {
    const n = this.dof;
    const axes: Vec3[] = new Array(n);
    const points: Vec3[] = new Array(n);
    const prismatic: boolean[] = new Array(n).fill(false);
    let T = this.base;
    for (const s of this.chain) {
      const value = s.index >= 0 ? q[s.index] : 0;
      T = poseMul(T, Kinematics.jointTransform(s.joint, value));
      if (s.index >= 0) {
        axes[s.index] = quatRotate(T.q, s.joint.axis);
        points[s.index] = T.p;
        prismatic[s.index] = s.joint.type === 'prismatic';
      }
    }
    const pose = poseMul(T, this.desc.tcp.pose);
    for (let i = 0; i < n; i++) {
      const a = axes[i];
      if (prismatic[i]) {
        out[i] = a[0];
        out[n + i] = a[1];
        out[2 * n + i] = a[2];
        out[3 * n + i] = 0;
        out[4 * n + i] = 0;
        out[5 * n + i] = 0;
      } else {
        const r: Vec3 = [pose.p[0] - points[i][0], pose.p[1] - points[i][1], pose.p[2] - points[i][2]];
        const v = cross(a, r);
        out[i] = v[0];
        out[n + i] = v[1];
        out[2 * n + i] = v[2];
        out[3 * n + i] = a[0];
        out[4 * n + i] = a[1];
        out[5 * n + i] = a[2];
      }
    }
    return { pose, J: out };
  }

  /** Clamp arm joints to their limits (a copy). */
  clamp(q: ArrayLike<number>): number[] {
    return Array.from({ length: this.dof }, (_, i) => Math.min(this.upper[i], Math.max(this.lower[i], q[i])));
  }

  /**
   * Damped-least-squares IK for a tool pose, starting from `seed`. Joints stay inside their limits:
   * each iterate is clamped, and a joint pinned at a limit that the step would push further out is
   * frozen for that step so the others take up the motion. If the seed does not converge, a few
   * restarts from pseudo-random configurations (a fixed-seed stream, so the result is a pure
   * function of the inputs) are tried, and the best attempt is returned.
   */
  ik(target: Pose, seed: ArrayLike<number>, options: IkOptions = {}): IkResult {
    const posTol = options.posTol ?? 1e-4;
    const rotTol = options.rotTol ?? 1e-3;
    const restarts = options.restarts ?? 20;
    let best = this.ikAttempt(target, this.clamp(seed), options);
    const ok = (r: IkResult) => r.posErr <= posTol && (options.positionOnly || r.rotErr <= rotTol);
    if (ok(best)) return { ...best, ok: true };
    const rng = new Rng(0x1c0ffee);
    for (let k = 0; k < restarts; k++) {
      const start = Array.from({ length: this.dof }, (_, i) => rng.uniform(this.lower[i], this.upper[i]));
      const r = this.ikAttempt(target, start, options);
      if (ok(r)) return { ...r, ok: true };
      if (r.posErr + 0.1 * r.rotErr < best.posErr + 0.1 * best.rotErr) best = r;
    }
    return { ...best, ok: false };
  }

  private ikAttempt(target: Pose, start: number[], options: IkOptions): IkResult {
    const n = this.dof;
    const posTol = options.posTol ?? 1e-4;
    const rotTol = options.rotTol ?? 1e-3;
    const maxIterations = options.maxIterations ?? 200;
    const lambda = options.damping ?? 0.02;
    const positionOnly = options.positionOnly ?? false;
    const rows = positionOnly ? 3 : 6;
    const q = start.slice();
    const J = new Float64Array(6 * n);
    const A = new Float64Array(rows * rows);
    const b = new Float64Array(rows);
    const e = new Float64Array(6);
    const free = new Array<boolean>(n);
    let posErr = Infinity;
    let rotErr = Infinity;
    let it = 0;
    for (; it < maxIterations; it++) {
      const { pose } = this.jacobian(q, J);
      e[0] = target.p[0] - pose.p[0];
      e[1] = target.p[1] - pose.p[1];
      e[2] = target.p[2] - pose.p[2];
      const r = quatToRotVec(quatNormalize(quatMul(target.q, quatConj(pose.q))));
      e[3] = r[0];
      e[4] = r[1];
      e[5] = r[2];
      posErr = Math.hypot(e[0], e[1], e[2]);
      rotErr = Math.hypot(e[3], e[4], e[5]);
      if (posErr <= posTol && (positionOnly || rotErr <= rotTol)) break;
      // Two passes: solve, then freeze joints at a limit that the step pushes outward, and re-solve.
      free.fill(true);
      let dq = this.dlsStep(J, e, free, rows, lambda, A, b);
      let again = false;
      for (let i = 0; i < n; i++) {
        if ((q[i] <= this.lower[i] + 1e-9 && dq[i] < 0) || (q[i] >= this.upper[i] - 1e-9 && dq[i] > 0)) {
          free[i] = false;
          again = true;
        }
      }
      if (again) dq = this.dlsStep(J, e, free, rows, lambda, A, b);
      // Limit the step so the linearisation stays valid far from the target.
      let maxStep = 0;
      for (let i = 0; i < n; i++) maxStep = Math.max(maxStep, Math.abs(dq[i]));
      const s = maxStep > 0.4 ? 0.4 / maxStep : 1;
      for (let i = 0; i < n; i++) q[i] = Math.min(this.upper[i], Math.max(this.lower[i], q[i] + s * dq[i]));
    }
    return { q, ok: false, posErr, rotErr, iterations: it };
  }

  /** dq = J^T (J J^T + lambda^2 I)^-1 e over the free columns. */
  private dlsStep(
    J: Float64Array,
    e: Float64Array,
    free: boolean[],
    rows: number,
    lambda: number,
    A: Float64Array,
    b: Float64Array,
  ): number[] {
    const n = this.dof;
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < rows; c++) {
        let s = 0;
        for (let k = 0; k < n; k++) if (free[k]) s += J[r * n + k] * J[c * n + k];
        A[r * rows + c] = s + (r === c ? lambda * lambda : 0);
      }
      b[r] = e[r];
    }
    solveLinear(A, b, rows);
    const dq = new Array<number>(n).fill(0);
    for (let k = 0; k < n; k++) {
      if (!free[k]) continue;
      let s = 0;
      for (let r = 0; r < rows; r++) s += J[r * n + k] * b[r];
      dq[k] = s;
    }
    return dq;
  }
}
