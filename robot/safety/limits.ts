/**
 * Pure limit functions of the safety layer. Each takes the previous command (what the robot is
 * already heading to) and a proposed target, and returns a safe target plus what it changed.
 *
 * Why a single scale factor for velocity, acceleration and step caps: scaling every joint's step by
 * the same factor keeps the direction of motion in joint space (ros2_control's joint_limits soft
 * limiter and MoveIt Servo's velocity scaling do the same), so a limited command is a slower
 * version of the intended one instead of a different motion. Position limits are clamped per
 * joint instead, because a box clamp lets the other joints keep moving while one rests on its
 * stop, where a common factor would freeze the whole arm.
 */
import type { JointLimits } from '../types.ts';

/** One change the safety layer made (or refused to make), named for the log. */
export interface Finding {
  /** Which check: 'nonfinite', 'shape', 'position', 'velocity', 'brake' (stopping distance to a position limit), 'acceleration', 'max_step', 'workspace', 'ee_jump'. */
  check: string;
  /** The action field concerned, e.g. 'joint3' or 'gripper', or 'ee' for end-effector checks. */
  field: string;
  /** The offending value (a NaN stays NaN in the log on purpose). */
  value: number;
  /** The bound that applied. */
  limit: number;
}

/** Name of action field `i` (arm joints by name, then 'gripper'). */
export function fieldName(i: number, jointNames: readonly string[]): string {
  return i < jointNames.length ? jointNames[i] : i === jointNames.length ? 'gripper' : `index${i}`;
}

/** Fields of `action` that are NaN or +/-Inf, as findings. */
export function nonFiniteFields(action: ArrayLike<number>, jointNames: readonly string[]): Finding[] {
  const out: Finding[] = [];
  for (let i = 0; i < action.length; i++) {
    const v = Number(action[i]);
    if (!Number.isFinite(v)) out.push({ check: 'nonfinite', field: fieldName(i, jointNames), value: v, limit: NaN });
  }
  return out;
}

/** Clamp each arm joint into [lower + margin, upper - margin]. Mutates `target`. */
export function clampPositions(
  target: number[],
  limits: readonly JointLimits[],
  margin: number,
  jointNames: readonly string[],
  findings: Finding[],
): void {
  for (let i = 0; i < limits.length; i++) {
    const lo = limits[i].lower + margin;
    const hi = limits[i].upper - margin;
    if (target[i] < lo) {
      findings.push({ check: 'position', field: jointNames[i], value: target[i], limit: lo });
      target[i] = lo;
    } else if (target[i] > hi) {
      findings.push({ check: 'position', field: jointNames[i], value: target[i], limit: hi });
      target[i] = hi;
    }
  }
}

/**
 * Largest s in [0, 1] with |s * delta_i| <= maxAbs_i for every joint. Reports the joint that
 * binds (the one with the smallest ratio).
 */
export function stepScale(
  delta: readonly number[],
  maxAbs: readonly number[],
): { scale: number; joint: number } {
  let scale = 1;
  let joint = -1;
  for (let i = 0; i < delta.length; i++) {
    const d = Math.abs(delta[i]);
    if (d > maxAbs[i] && d > 0) {
      const s = maxAbs[i] / d;
      if (s < scale) {
        scale = s;
        joint = i;
      }
    }
  }
  return { scale, joint };
}

/**
 * Largest s in [0, sMax] such that the velocity change |s * delta_i / dt - prevVel_i| stays within
 * accel_i * dt for every joint, or null when no common factor exists (e.g. one joint must brake
 * harder than any scaled version of the proposed step allows).
 */
export function accelerationScale(
  delta: readonly number[],
  prevVel: readonly number[],
  accel: readonly number[],
  dt: number,
  sMax: number,
): number | null {
  let lo = 0;
  let hi = sMax;
  for (let i = 0; i < delta.length; i++) {
    const dv = accel[i] * dt;
    if (delta[i] === 0) {
      if (Math.abs(prevVel[i]) > dv + 1e-12) return null;
      continue;
    }
    // s * delta/dt must lie in [prevVel - dv, prevVel + dv].
    const a = ((prevVel[i] - dv) * dt) / delta[i];
    const b = ((prevVel[i] + dv) * dt) / delta[i];
    lo = Math.max(lo, Math.min(a, b));
    hi = Math.min(hi, Math.max(a, b));
  }
  return lo <= hi + 1e-12 ? hi : null;
}

/** Euclidean distance between two points. */
export function distance(a: readonly number[], b: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

/** True when `p` lies inside the axis-aligned box [min, max]. */
export function insideBox(p: readonly number[], min: readonly number[], max: readonly number[]): boolean {
  for (let i = 0; i < 3; i++) if (!(p[i] >= min[i] && p[i] <= max[i])) return false;
  return true;
}

/**
 * Largest t in [0, 1] (to ~1e-3) such that `ok(t)` holds, assuming ok(0) holds and the set of good
 * t is an interval starting at 0 (true for a box and a distance cap along a short joint step).
 */
export function largestGood(ok: (t: number) => boolean, iterations = 10): number {
  if (ok(1)) return 1;
  let lo = 0;
  let hi = 1;
  for (let k = 0; k < iterations; k++) {
    const mid = (lo + hi) / 2;
    if (ok(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}
