/**
 * Shared building blocks of the Discoverse-L tasks: pose arithmetic, ground-truth predicates over
 * a SimState, the stage-index rule, scene primitives, and the scripted-expert state machine.
 *
 * Pure TypeScript over sim/ types: no physics engine, renderer or ROS here, so predicates can be
 * unit-tested on hand-built states.
 */
import type { Rng } from '../sim/rng.ts';
import type { Expert, ExpertTools, Stage } from '../sim/task.ts';
import type { ColliderDesc, Color, ObjectDesc, Pose, Quat, SimState, Vec3 } from '../sim/types.ts';
import { add, quatMul, quatRotate as rotate, sub } from '../sim/math.ts';

// The tasks' pose arithmetic is the simulator's; re-exported under the names the task files use.
export { add, quatMul, rotate, sub };

// ---------------------------------------------------------------------------------------------
// Pose arithmetic (quaternions are [x, y, z, w], as everywhere in sim/).

/** Quaternion from intrinsic-free roll/pitch/yaw: R = Rz(yaw) Ry(pitch) Rx(roll) (scipy "xyz" extrinsic). */
export function quatFromEuler(roll: number, pitch: number, yaw: number): Quat {
  const cr = Math.cos(roll / 2), sr = Math.sin(roll / 2);
  const cp = Math.cos(pitch / 2), sp = Math.sin(pitch / 2);
  const cy = Math.cos(yaw / 2), sy = Math.sin(yaw / 2);
  return [
    sr * cp * cy - cr * sp * sy,
    cr * sp * cy + sr * cp * sy,
    cr * cp * sy - sr * sp * cy,
    cr * cp * cy + sr * sp * sy,
  ];
}

/** World direction of a body's local axis (0 = x, 1 = y, 2 = z). */
export function axis(q: Quat, i: 0 | 1 | 2): Vec3 {
  return rotate(q, i === 0 ? [1, 0, 0] : i === 1 ? [0, 1, 0] : [0, 0, 1]);
}

/** Z component of the body's local Z axis: R[2][2] of its rotation matrix (1 = upright). */
export function uprightness(q: Quat): number {
  const [x, y] = q;
  return 1 - 2 * (x * x + y * y);
}

/** Yaw of a body (rotation about world Z of its local X axis). */
export function yawOf(q: Quat): number {
  const ax = axis(q, 0);
  return Math.atan2(ax[1], ax[0]);
}

/** Horizontal distance between two points. */
export function distXY(a: Vec3, b: Vec3): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1]);
}

export function dist(a: Vec3, b: Vec3): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
}

/** A point given in a body's frame, in world coordinates. */
export function pointInWorld(body: Pose, local: Vec3): Vec3 {
  return add(body.p, rotate(body.q, local));
}

// ---------------------------------------------------------------------------------------------
// Ground-truth predicates over a SimState.

/** Finger links of the gripper are recognised by name (robot descriptions call them *finger*). */
export function isFingerLink(link: string): boolean {
  return /finger/i.test(link);
}

/**
 * Finger links touching `object` this step (each link once). Contacts are taken as reported (the
 * env keeps only points within 1 mm); the impulse is not required, because a resting pinch can
 * report a zero impulse on a step.
 */
export function fingerContacts(state: SimState, object: string): string[] {
  const links = new Set<string>();
  // The env marks finger links from the robot description; hand-built states fall back to the name.
  for (const c of state.contacts) if (c.object === object && (c.finger ?? isFingerLink(c.link))) links.add(c.link);
  return [...links];
}

/** True while any robot link touches `object`. */
export function touching(state: SimState, object: string): boolean {
  return state.contacts.some((c) => c.object === object);
}

/**
 * Held in a pinch: two distinct fingers press on the object and the gripper is not fully open.
 * One finger touching is the classic near miss ("touching the block but not grasping it").
 */
export function isGrasped(state: SimState, object: string, maxOpening = 0.035): boolean {
  return fingerContacts(state, object).length >= 2 && state.gripper < maxOpening;
}

/**
 * Held in the hand: pinched by both fingers AND the tool centre is within `tol` of `point` (where
 * the object is meant to be held, in the world). The second test keeps a finger brushing some
 * other object below the hand (the block under the one being released) from counting as holding it.
 */
export function pinchedAt(state: SimState, object: string, point: Vec3, tol = 0.035): boolean {
  return isGrasped(state, object) && dist(state.ee.p, point) <= tol;
}

/** Object pose by name, with an error naming the missing object and the ones present. */
export function objectPose(state: SimState, name: string): Pose {
  const pose = state.objects[name];
  if (!pose) throw new RangeError(`object '${name}' is not in the sim state (objects: ${Object.keys(state.objects).join(', ')})`);
  return pose;
}

/** Speed of an object (m/s); 0 when the state carries no velocity for it (fixed bodies). */
export function speedOf(state: SimState, name: string): number {
  const v = state.objectVel[name];
  return v ? Math.hypot(v[0], v[1], v[2]) : 0;
}

/**
 * The tool is at `offset` (world frame) from the object within `tolXY` horizontally and `tolZ`
 * vertically. Used for "above the block", "at the handle", ...
 */
export function toolNear(state: SimState, target: Vec3, tolXY: number, tolZ: number): boolean {
  return distXY(state.ee.p, target) <= tolXY && Math.abs(state.ee.p[2] - target[2]) <= tolZ;
}

/**
 * `top` rests on `bottom`: centred within `tolXY`, its centre `gap` above the bottom's centre
 * (within `tolZ`), nearly still, and not held by the gripper.
 */
export function restsOn(
  state: SimState,
  top: string,
  bottom: string,
  gap: number,
  tolXY: number,
  tolZ = 0.006,
): boolean {
  const a = objectPose(state, top).p;
  const b = objectPose(state, bottom).p;
  return distXY(a, b) <= tolXY && Math.abs(a[2] - b[2] - gap) <= tolZ && !isGrasped(state, top) && speedOf(state, top) < 0.05;
}

// ---------------------------------------------------------------------------------------------
// Stages.

/**
 * A pick-and-place round of stages. Stage predicates are instantaneous ground truth (what the
 * positive text says is true *now*); `placed` and `retreated` are the persistent milestones that
 * say the round is over, so later rounds can be scored without memory of the past.
 */
export interface StageRound {
  stages: Stage[];
  /** The round's object is where it belongs, released and at rest. */
  placed(state: SimState): boolean;
  /**
   * The round's object is where it belongs and released, whatever its speed: what keeps a round
   * that is already done complete while a later round jostles it (setting a block down on it makes
   * it shake, not leave). Defaults to `placed`.
   */
  inPlace?(state: SimState): boolean;
  /** ... and the gripper has moved clear of it (the round's last stage). */
  retreated(state: SimState): boolean;
}

/**
 * Current stage without memory of the past, so evaluate() stays a pure function of the state (and
 * snapshots/replays need no extra bookkeeping). A round is complete when its object is placed and
 * the gripper is clear of it, or when its object is in place (position only: a later round may
 * jostle it) and the next round already shows progress (the gripper may later pass close to an
 * object it placed long ago). Inside the first incomplete round the stage is the one after the
 * furthest stage whose predicate holds now, so a pick that slips back to the table moves the stage
 * back: that is the ground truth.
 */
export function currentStage(rounds: StageRound[], state: SimState): number {
  const inPlace = (round: StageRound) => (round.inPlace ?? round.placed)(state);
  let base = 0;
  for (let r = 0; r < rounds.length; r++) {
    const round = rounds[r];
    const next = rounds[r + 1];
    const complete =
      (round.placed(state) && round.retreated(state)) ||
      (next !== undefined && inPlace(round) && (inPlace(next) || next.stages.some((st) => st.done(state))));
    if (!complete) {
      let furthest = -1;
      for (let k = round.stages.length - 1; k >= 0; k--) {
        if (round.stages[k].done(state)) {
          furthest = k;
          break;
        }
      }
      return base + furthest + 1;
    }
    base += round.stages.length;
  }
  return base;
}

/** The round of a standard pick-and-place spec (plus optional extra stages before it). */
export function pickPlaceRound(stages: Stage[], spec: PickPlaceSpec): StageRound {
  return { stages, placed: (s) => isPlaced(s, spec), inPlace: (s) => isInPlace(s, spec), retreated: (s) => retreated(s, spec) };
}

/** Named predicates: one per stage (by stage name) plus the task's own extras. */
export function stagePredicates(stages: Stage[], state: SimState): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  for (const s of stages) out[s.name] = s.done(state);
  return out;
}

/** `isGrasped_<object>` for each spec: whether the hand holds that object now (ManiSkill's isGrasped). */
export function graspPredicates(state: SimState, specs: PickPlaceSpec[]): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  for (const spec of specs) out[`isGrasped_${spec.object}`] = isHeld(state, spec);
  return out;
}

/** Check a task's stage list for the mistakes that break rewards silently (dup names, colour words). */
export function validateStages(taskId: string, stages: Stage[], expectedCount: number): Stage[] {
  if (stages.length !== expectedCount) {
    throw new Error(`task '${taskId}' must have ${expectedCount} stages, has ${stages.length}`);
  }
  const names = new Set<string>();
  for (const s of stages) {
    if (names.has(s.name)) throw new Error(`task '${taskId}': duplicate stage name '${s.name}'`);
    names.add(s.name);
    for (const t of [s.texts.positive, s.texts.negative, ...s.texts.nearMisses]) {
      const colour = COLOUR_WORDS.exec(t);
      if (colour) throw new Error(`task '${taskId}', stage '${s.name}': text uses colour word '${colour[0]}': "${t}"`);
    }
    if (s.texts.nearMisses.length < 2) throw new Error(`task '${taskId}', stage '${s.name}': needs at least 2 near-miss texts`);
  }
  return stages;
}

/** Colour words the stage texts must not use (the reward must ground on geometry and contact). */
export const COLOUR_WORDS =
  /\b(red|green|blue|yellow|purple|violet|orange|pink|white|black|grey|gray|brown|cyan|magenta|teal)\b/i;

// ---------------------------------------------------------------------------------------------
// Scene primitives.

/** Table surface height in the world frame; tasks place objects relative to it. */
export const TABLE_TOP = 0;

/**
 * Friction coefficient of the wooden parts (blocks, bars, cubes, arch, table top): dry wood on wood
 * is about 0.25-0.5 (engineering handbooks' tables of static friction); 0.45, near the top of the
 * range. Rapier averages two colliders' coefficients; the finger pads take the larger of theirs
 * (rubber) and the object's (sim/robot/airbot_play.ts).
 */
export const WOOD_FRICTION = 0.45;
/** Density of the wooden parts (kg/m^3): beech, maple and oak are 650-750. */
export const WOOD_DENSITY = 700;

/** A fixed table slab whose top face is at TABLE_TOP. */
export function tableObject(center: Vec3 = [0.35, 0, 0], half: Vec3 = [0.45, 0.6, 0.02]): ObjectDesc {
  return {
    name: 'table',
    type: 'fixed',
    pose: { p: [center[0], center[1], TABLE_TOP - half[2]], q: [0, 0, 0, 1] },
    colliders: [{ shape: { kind: 'box', halfExtents: half }, friction: WOOD_FRICTION }],
    color: [0.62, 0.58, 0.52],
  };
}

/** A dynamic box-shaped object. */
export function boxObject(name: string, pose: Pose, half: Vec3, mass: number, color: Color, friction = WOOD_FRICTION): ObjectDesc {
  return { name, type: 'dynamic', pose, mass, color, colliders: [{ shape: { kind: 'box', halfExtents: half }, friction }] };
}

/** Identity-rotation pose at p rotated by yaw about Z. */
export function poseXYZYaw(x: number, y: number, z: number, yaw = 0): Pose {
  return { p: [x, y, z], q: [0, 0, Math.sin(yaw / 2), Math.cos(yaw / 2)] };
}

/** Colliders of an open cylindrical shell (cup wall) made of `n` boxes around local Z. */
export function shellColliders(
  radius: number,
  thickness: number,
  height: number,
  n: number,
  z0: number,
  friction: number,
): ColliderDesc[] {
  const out: ColliderDesc[] = [];
  // Each stave spans its arc's chord plus a little overlap so no gap opens between staves.
  const halfWidth = (radius * Math.tan(Math.PI / n)) + thickness * 0.5;
  for (let i = 0; i < n; i++) {
    const a = (2 * Math.PI * i) / n;
    out.push({
      shape: { kind: 'box', halfExtents: [thickness / 2, halfWidth, height / 2] },
      pose: { p: [(radius - thickness / 2) * Math.cos(a), (radius - thickness / 2) * Math.sin(a), z0 + height / 2], q: [0, 0, Math.sin(a / 2), Math.cos(a / 2)] },
      friction,
    });
  }
  return out;
}

/**
 * Sample `n` points uniformly in boxes around `centers` (± `half` each) with every pair at least
 * `minDist` apart, by rejection (the originals do the same). Throws after many failures rather
 * than looping forever on an impossible layout.
 */
export function samplePlacements(rng: Rng, centers: [number, number][], half: [number, number][], minDist: number): [number, number][] {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const pts = centers.map(([cx, cy], i): [number, number] => [cx + rng.uniform(-half[i][0], half[i][0]), cy + rng.uniform(-half[i][1], half[i][1])]);
    let ok = true;
    for (let i = 0; i < pts.length && ok; i++) {
      for (let j = i + 1; j < pts.length; j++) {
        if (Math.hypot(pts[i][0] - pts[j][0], pts[i][1] - pts[j][1]) < minDist) {
          ok = false;
          break;
        }
      }
    }
    if (ok) return pts;
  }
  throw new Error(`could not place ${centers.length} objects at least ${minDist} m apart after 1000 tries`);
}

// ---------------------------------------------------------------------------------------------
// Scripted experts.

/** One step of an expert's script. Targets are computed when the step starts, as in the originals. */
export type ExpertStep =
  | {
      kind: 'move';
      stage: number;
      target: (state: SimState, prev: Pose | null) => Pose;
      gripper?: number;
      speed?: number;
      /**
       * Which of the two equivalent gripper orientations (a half turn apart) to take: 'near' (the
       * default) keeps the IK solution nearest the current joints; 'centred' keeps the last (wrist
       * roll) joint nearest zero, leaving it room to turn later while carrying. Use 'centred' when
       * the hand is empty, before a grasp.
       */
      wrist?: 'near' | 'centred';
      /**
       * 'joint' (default): interpolate joint targets (fast, the path of the tool is a curve).
       * 'line': move the tool along a straight line at `lineSpeed` m/s, solving IK each control
       * step: for descents, lifts and retreats next to objects, where a curved path would sweep
       * the fingers through something.
       */
      path?: 'joint' | 'line';
      /**
       * For a line move: seconds over which the tool speed ramps up from zero (default 0, full
       * speed from the first step). A light object hanging from a pinch lags a hand that starts
       * abruptly and swings.
       */
      rampS?: number;
      /**
       * Name of an aim correction (set by `align` steps) to add to this move's target: the expert's
       * estimate of how far its moves land from where it aims them.
       */
      correct?: string;
      /** Forget every aim correction before this move (the first move of a round). */
      resetCorrections?: boolean;
      /**
       * Done as soon as the commanded path ends, without waiting for the joints to converge (default
       * false): for moves followed by an align step, which waits for the tool to come to rest itself.
       */
      noSettle?: boolean;
    }
  | { kind: 'grip'; stage: number; opening: number }
  | { kind: 'wait'; stage: number; seconds: number }
  /**
   * A check: when `ok` holds, go on at once; otherwise go back `back` steps and run them again
   * (at most `retries` times at this check; then go on, and the episode fails as it would have).
   * How an expert notices a failed grasp and retries: targets are read again when each step
   * starts, so the second approach aims at where the object is now.
   */
  | { kind: 'check'; stage: number; ok: (state: SimState) => boolean; back: number; retries: number }
  /**
   * Closed-loop aiming: wait until the tool is still, measure `error` (world frame: where the thing
   * being aimed is, minus where it should be, e.g. the tool against the grasp point of the object,
   * or the held object against its target), and when `ok` does not hold, subtract the error from
   * the aim correction named `key` and go back `back(error)` steps (moves that name the key
   * re-aim with it). At most `retries` times per round (`resetCorrections` starts a round); then
   * go on. How an expert whose moves land off their targets still closes the gripper where the
   * object is and lets go over the target: it acts on where things are measured to be, not on
   * where its commands should have put them.
   */
  | { kind: 'align'; stage: number; key: string; error: (state: SimState) => Vec3; ok: (error: Vec3, state: SimState) => boolean; back: (error: Vec3) => number; retries: number };

type MoveStep = Extract<ExpertStep, { kind: 'move' }>;

/** Tuning shared by every expert. */
export interface ExpertTuning {
  /** Joint speed of the fastest-moving joint while interpolating to an IK target (rad/s). */
  jointSpeed: number;
  /** A move is done when every joint is within this of its target (rad). */
  jointTol: number;
  /** A move gives up waiting for convergence after this long past the end of interpolation (s). */
  settleTimeout: number;
  /** A grip is done when the opening is within this of the command (m) ... */
  gripTol: number;
  /** ... or the fingers have stopped moving (blocked by the object) for this long (s). */
  gripStall: number;
  /** Minimum duration of a grip step (s). */
  gripMin: number;
  /** Tool speed of straight-line moves (m/s). */
  lineSpeed: number;
  /** An align step measures once the tool moves slower than this (m/s) ... */
  alignStill: number;
  /** ... or after this long (s). */
  alignTimeout: number;
}

export const DEFAULT_TUNING: ExpertTuning = {
  jointSpeed: 2.0,
  jointTol: 0.02,
  settleTimeout: 0.3,
  gripTol: 0.002,
  gripStall: 0.08,
  gripMin: 0.1,
  lineSpeed: 0.25,
  alignStill: 0.015,
  alignTimeout: 0.25,
};

/** Share of the placement tolerance within which an expert with placement retries lets go. */
const PLACE_AIM = 0.7;

/** Times a pick-and-place expert tries a grasp again after noticing it failed. */
export const GRASP_RETRIES = 2;

/** Largest joint change accepted between two consecutive points of a straight-line move (rad). */
const MAX_LINE_JOINT_STEP = 0.15;

function quatDot(a: Quat, b: Quat): number {
  return a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3];
}

/** Pose at fraction t from a to b: positions interpolated linearly, orientations by nlerp. */
export function lerpPose(a: Pose, b: Pose, t: number): Pose {
  const sign = quatDot(a.q, b.q) < 0 ? -1 : 1;
  const q = [0, 1, 2, 3].map((i) => a.q[i] * (1 - t) + sign * b.q[i] * t);
  const n = Math.hypot(...q);
  return {
    p: [a.p[0] + (b.p[0] - a.p[0]) * t, a.p[1] + (b.p[1] - a.p[1]) * t, a.p[2] + (b.p[2] - a.p[2]) * t],
    q: [q[0] / n, q[1] / n, q[2] / n, q[3] / n],
  };
}

/** Largest absolute joint difference (rad). */
export function jointDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** Thrown by an expert whose IK cannot reach a target: names the stage and the target. */
export class ExpertIkError extends Error {
  override name = 'ExpertIkError';
}

/**
 * Runs an expert script: each `act()` advances the current step when its completion test holds and
 * returns joint targets interpolated toward the step's IK solution at a bounded joint speed
 * (Discoverse's step_func with per-joint speed ratios, so all joints arrive together).
 * After the last step it holds the last command and reports stage = stages.length.
 */
export class ScriptedExpert implements Expert {
  private index = -1;
  private stepTime = 0;
  private target: number[] = [];
  private command: number[] = [];
  private gripperCmd = 0.04;
  private ratio: number[] = [];
  private lastGoal: Pose | null = null;
  private lastGripper = Number.NaN;
  private stall = 0;
  private interpDone = false;
  /** Straight-line move in progress: start and goal poses and progress 0..1. */
  private line: { from: Pose; to: Pose; s: number; ds: number; steps: number; rampSteps: number } | null = null;
  /** Seconds since the first act() (for target perturbations that change over time). */
  private elapsed = 0;
  /** Retries used per check step (by step index). */
  private readonly retried = new Map<number, number>();
  /** Re-aims used per align step (by step index) since the round began. */
  private readonly realigned = new Map<number, number>();
  /** Aim corrections by name (added to the targets of moves that name them). */
  private readonly corrections = new Map<string, Vec3>();
  /** Retries used in all, for reports. */
  retries = 0;

  constructor(
    private readonly steps: ExpertStep[],
    private readonly stageNames: string[],
    private readonly tools: ExpertTools,
    private readonly tuning: ExpertTuning = DEFAULT_TUNING,
  ) {
    if (tools.actionMode !== 'joint') {
      throw new RangeError(`scripted experts emit joint targets; env action mode is '${tools.actionMode}', expected 'joint'`);
    }
  }

  /** Index of the step being executed (steps.length when finished). */
  get stepIndex(): number {
    return this.index;
  }

  get finished(): boolean {
    return this.index >= this.steps.length;
  }

  act(state: SimState): { action: number[]; stage: number; stageName: string } {
    const dt = this.tools.controlDt;
    if (this.index < 0) {
      this.command = state.q.slice(0, 6);
      this.target = this.command.slice();
      this.gripperCmd = state.gripper;
      this.begin(0, state);
    } else if (!this.finished && this.stepDone(state)) {
      this.begin(this.nextIndex(state), state);
    }
    this.stepTime += dt;
    this.elapsed += dt;
    let moving = false;
    const step = this.steps[this.index];
    // A line move's `speed` is in m/s; once it has fallen back to joint space, use the joint speed.
    const speed = step && step.kind === 'move' && step.speed && step.path !== 'line' ? step.speed : this.tuning.jointSpeed;
    if (this.line) {
      // Straight line: the next pose on the segment, IK seeded from the current command.
      const L = this.line;
      L.steps++;
      L.s = Math.min(1, L.s + L.ds * Math.min(1, L.steps / L.rampSteps));
      const pose = lerpPose(L.from, L.to, L.s);
      const r = this.tools.ik(pose, this.command);
      if (r.ok && jointDistance(r.q, this.command) <= MAX_LINE_JOINT_STEP) {
        this.command = r.q.slice(0, 6);
        if (L.s >= 1) {
          this.target = this.command.slice();
          this.line = null;
        } else moving = true;
      } else {
        // The line left the arm's smooth workspace (IK failed or jumped to another branch): finish
        // the move in joint space toward the goal's solution instead of snapping the arm.
        this.line = null;
        const diffs = this.target.map((t, j) => Math.abs(t - this.command[j]));
        const max = Math.max(...diffs, 1e-6);
        this.ratio = diffs.map((d) => d / max);
        moving = true;
      }
    } else for (let j = 0; j < this.command.length; j++) {
      const d = this.target[j] - this.command[j];
      const maxStep = speed * this.ratio[j] * dt;
      if (Math.abs(d) > maxStep) {
        this.command[j] += Math.sign(d) * maxStep;
        moving = true;
      } else this.command[j] = this.target[j];
    }
    if (!moving && !this.interpDone) {
      this.interpDone = true;
      this.stepTime = 0;
    }
    const stage = this.finished ? this.stageNames.length : this.steps[this.index].stage;
    return {
      action: [...this.command, this.gripperCmd],
      stage,
      stageName: this.stageNames[stage] ?? 'done',
    };
  }

  /** Step to run after the current one: the next, or for an align step that missed, the re-aim. */
  private nextIndex(state: SimState): number {
    const i = this.index;
    const step = this.steps[i];
    if (step.kind !== 'align') return i + 1;
    const e = step.error(state);
    const used = this.realigned.get(i) ?? 0;
    const back = step.back(e);
    if (step.ok(e, state) || used >= step.retries || back <= 0 || back > i) return i + 1;
    this.realigned.set(i, used + 1);
    this.retries++;
    const c = this.corrections.get(step.key) ?? [0, 0, 0];
    const clamp = (v: number) => Math.max(-MAX_CORRECTION, Math.min(MAX_CORRECTION, v));
    this.corrections.set(step.key, [clamp(c[0] - e[0]), clamp(c[1] - e[1]), clamp(c[2] - e[2])]);
    return i - back;
  }

  private begin(i: number, state: SimState): void {
    this.index = i;
    this.stepTime = 0;
    this.stall = 0;
    this.lastGripper = state.gripper;
    this.interpDone = false;
    const step = this.steps[i];
    if (!step) return;
    if (step.kind === 'check') {
      const used = this.retried.get(i) ?? 0;
      if (step.ok(state) || used >= step.retries || step.back <= 0 || step.back > i) {
        this.begin(i + 1, state);
        return;
      }
      this.retried.set(i, used + 1);
      this.retries++;
      this.begin(i - step.back, state);
      return;
    }
    if (step.kind === 'move') {
      if (step.resetCorrections) {
        this.corrections.clear();
        this.realigned.clear();
      }
      const raw = step.target(state, this.lastGoal);
      const c = step.correct ? this.corrections.get(step.correct) : undefined;
      const aimed: Pose = c ? { p: add(raw.p, c), q: raw.q } : raw;
      const asked: Pose = this.tools.perturbTarget ? { p: this.tools.perturbTarget(aimed.p, this.elapsed), q: aimed.q } : aimed;
      // A parallel gripper is symmetric under a half turn about its approach axis: of the two
      // equivalent goals, take the one whose IK solution is nearer in joint space, so the wrist
      // never swings round (and flings the object) between two consecutive targets.
      let goal = asked;
      let sol = this.tools.ik(asked, this.target);
      const flipped: Pose = { p: asked.p, q: quatMul(asked.q, [0, 0, 1, 0]) };
      const alt = this.tools.ik(flipped, this.target);
      // 'centred' compares the wrist roll first. The two goals can reach the same roll on two wrist
      // branches (roll, pitch and forearm turned together); then the nearer one wins, or the line
      // toward the far branch leaves the smooth workspace and the arm swings round in joint space.
      const near = (q: number[]) => jointDistance(q, this.target);
      const better = (a: number[], b: number[]) => {
        if (step.wrist !== 'centred') return near(a) < near(b);
        const ra = Math.abs(a[a.length - 1]);
        const rb = Math.abs(b[b.length - 1]);
        return Math.abs(ra - rb) > 1e-3 ? ra < rb : near(a) < near(b);
      };
      if (alt.ok && (!sol.ok || better(alt.q, sol.q))) {
        goal = flipped;
        sol = alt;
      }
      if (!sol.ok) {
        throw new ExpertIkError(
          `IK failed for stage '${this.stageNames[step.stage]}' target p=[${goal.p.map((v) => v.toFixed(3)).join(', ')}] (position error ${sol.posErr.toExponential(2)} m, rotation error ${sol.rotErr.toExponential(2)} rad)`,
        );
      }
      this.lastGoal = goal;
      this.target = sol.q.slice(0, 6);
      if (step.gripper !== undefined) this.gripperCmd = step.gripper;
      this.line = null;
      if (step.path === 'line') {
        const from = this.tools.fk(this.command);
        // Of the two equivalent goal orientations, the one nearer the start: no wrist turn en route.
        // ('centred' keeps its choice: with an empty hand the wrist may turn on the way, and the
        // interpolated orientations of two top-down goals stay top-down.)
        const nearer = Math.abs(quatDot(from.q, goal.q)) >= Math.abs(quatDot(from.q, flipped.q)) ? goal : flipped;
        const to: Pose = step.wrist === 'centred' ? goal : nearer;
        const len = dist(from.p, to.p);
        const lineSpeed = step.speed ?? this.tuning.lineSpeed;
        const rampSteps = Math.max(1, Math.round((step.rampS ?? 0) / this.tools.controlDt));
        this.line = { from, to, s: 0, ds: len > 1e-6 ? Math.min(1, (lineSpeed * this.tools.controlDt) / len) : 1, steps: 0, rampSteps };
        this.lastGoal = to;
      }
      const diffs = this.target.map((t, j) => Math.abs(t - this.command[j]));
      const max = Math.max(...diffs, 1e-6);
      this.ratio = diffs.map((d) => d / max);
    } else if (step.kind === 'grip') {
      this.gripperCmd = step.opening;
      this.ratio = this.target.map(() => 1);
    } else {
      this.ratio = this.target.map(() => 1);
    }
  }

  private stepDone(state: SimState): boolean {
    const step = this.steps[this.index];
    const dt = this.tools.controlDt;
    if (step.kind === 'move') {
      if (!this.interpDone) return false;
      if (step.noSettle) return true;
      const converged = state.q.slice(0, 6).every((q, j) => Math.abs(q - this.target[j]) <= this.tuning.jointTol);
      return converged || this.stepTime >= this.tuning.settleTimeout;
    }
    if (step.kind === 'grip') {
      const moved = Math.abs(state.gripper - this.lastGripper);
      this.lastGripper = state.gripper;
      // Fingers blocked by the object creep by well under 0.1 mm per control step.
      this.stall = moved < 5e-5 ? this.stall + dt : 0;
      if (this.stepTime < this.tuning.gripMin) return false;
      return Math.abs(state.gripper - step.opening) <= this.tuning.gripTol || this.stall >= this.tuning.gripStall;
    }
    // A check step is decided in begin() and never current; count it done if it were.
    if (step.kind === 'check') return true;
    if (step.kind === 'align') {
      // Measure once the arm has come to rest: a tool still moving would read a stale error.
      const v = state.eeVel;
      const still = v !== undefined && Math.hypot(v[0], v[1], v[2]) < this.tuning.alignStill;
      return (still && this.stepTime >= dt) || this.stepTime >= this.tuning.alignTimeout;
    }
    return this.stepTime >= step.seconds;
  }
}

// ---------------------------------------------------------------------------------------------
// Pick-and-place stage builders. Each returns one Stage with its predicate and text triplet; tasks
// assemble them into rounds. Nouns are passed in ("the middle block", "the cup") so every text is
// specific to its object and never names a colour.

/** Geometry and wording of one pick-and-place round. */
export interface PickPlaceSpec {
  /** Object being moved (key of SimState.objects). */
  object: string;
  /** Noun phrase for it, e.g. "the middle block". */
  noun: string;
  /** Noun phrase for where it goes, e.g. "the base block", "the plate". */
  targetNoun: string;
  /** Half the object's width across the fingers (m). */
  halfWidth: number;
  /** Height of the object's origin when it rests on the table (m). */
  restZ: number;
  /** Tool point (between the pads) above the object's origin when grasping (m, world Z). */
  graspOffset: Vec3;
  /** Tool height above the object's origin for the "above" stage (m). */
  hoverHeight: number;
  /** How far the grasped object is lifted (m). */
  liftHeight: number;
  /**
   * Rise above `restZ` from which the held object counts as lifted (m); default 60% of
   * `liftHeight`. Lower it when the carry to the target goes below that (a target at table level).
   */
  liftedAt?: number;
  /** Where the object's origin must end up (world), from the current state. */
  target(state: SimState): Vec3;
  /** Horizontal tolerance of the final placement (m). */
  placeTolXY: number;
  /** Largest tilt (rad) from its resting orientation at which the held object counts as settled; default SETTLE_TILT. */
  settleTilt?: number;
  /** Vertical tolerance of the final placement (m); default 6 mm. */
  placeTolZ?: number;
  /** Override of "placed": e.g. the jujube is placed when it is inside the cup. */
  placed?(state: SimState): boolean;
  /**
   * For an object dropped into a container: how far below `target` (the drop point) its origin is
   * once inside (where `placed` takes over). It falls that far after the fingers open, and the
   * lowering stage holds all the way. Default 0 (set down on a support).
   */
  dropDepth?: number;
}

/**
 * How much wider than the object the reported opening may be while the fingers squeeze it. The
 * opening is the mean finger joint value; with the pads' compliance and an off-centre pinch it reads
 * up to ~4 mm above the object's half width in the simulator.
 */
export const GRIP_SLACK = 0.008;

function objP(state: SimState, spec: PickPlaceSpec): Vec3 {
  return objectPose(state, spec.object).p;
}

/** The spec's object is held where it is meant to be grasped (see pinchedAt). */
export function isHeld(state: SimState, spec: PickPlaceSpec): boolean {
  return pinchedAt(state, spec.object, add(objP(state, spec), spec.graspOffset));
}

/**
 * The object is at its target and released by the fingers, whatever its speed (position only): a
 * block set down on it shakes it for a few steps without moving it off its support.
 */
export function isInPlace(state: SimState, spec: PickPlaceSpec): boolean {
  // "Released" means not pinched: a finger brushing an object placed earlier (while the next one
  // is put on top of it) does not un-place it.
  if (spec.placed) return spec.placed(state) && !isHeld(state, spec);
  const p = objP(state, spec);
  const t = spec.target(state);
  return distXY(p, t) <= spec.placeTolXY && Math.abs(p[2] - t[2]) <= (spec.placeTolZ ?? 0.006) && !isHeld(state, spec);
}

/**
 * The object sits at its target, released by the fingers and at rest (< 0.1 m/s), so an object
 * falling through its target is not placed yet. A `placed` override decides by itself.
 */
export function isPlaced(state: SimState, spec: PickPlaceSpec): boolean {
  return isInPlace(state, spec) && (spec.placed !== undefined || speedOf(state, spec.object) < 0.1);
}

/**
 * `after`: what must already hold for this stage to count (the previous round's object in place), so
 * a hand merely passing over the next object on its way elsewhere is not "above it" as a stage.
 */
export function aboveStage(name: string, spec: PickPlaceSpec, after?: (s: SimState) => boolean): Stage {
  const { noun } = spec;
  return {
    name,
    object: spec.object,
    // "Above" holds all the way down until the fingers reach the grasp height, so the stage does
    // not flicker back while the tool descends.
    done: (s) => {
      if (after && !after(s)) return false;
      const p = objP(s, spec);
      const dz = s.ee.p[2] - p[2];
      return (
        distXY(s.ee.p, add(p, spec.graspOffset)) <= 0.02 &&
        dz > spec.graspOffset[2] + 0.012 &&
        dz <= spec.hoverHeight + 0.03 &&
        s.gripper >= spec.halfWidth + 0.004 &&
        fingerContacts(s, spec.object).length === 0
      );
    },
    texts: {
      positive: `the open gripper hovers directly above ${noun}, not touching it`,
      negative: `the gripper is far from ${noun}, which rests untouched on the table`,
      nearMisses: [
        `the open gripper hovers above the table beside ${noun}, not over it`,
        `the gripper is above ${noun} but its fingers are closed`,
        `the gripper is directly above ${noun} but far too high`,
      ],
    },
  };
}

export function reachStage(name: string, spec: PickPlaceSpec): Stage {
  const { noun } = spec;
  return {
    name,
    object: spec.object,
    done: (s) => toolNear(s, add(objP(s, spec), spec.graspOffset), 0.012, 0.012) && objP(s, spec)[2] < spec.restZ + 0.02,
    texts: {
      positive: `the fingers are lowered around ${noun}, one on each side of it`,
      negative: `the gripper is high above the table, away from ${noun}`,
      nearMisses: [
        `the gripper is lowered beside ${noun} with one finger pressing on its top`,
        `the fingers are lowered next to ${noun} but off to one side`,
        `the gripper is above ${noun} but has not come down to it`,
      ],
    },
  };
}

export function graspStage(name: string, spec: PickPlaceSpec): Stage {
  const { noun } = spec;
  return {
    name,
    object: spec.object,
    done: (s) => isHeld(s, spec) && s.gripper <= spec.halfWidth + GRIP_SLACK,
    texts: {
      positive: `both fingers have closed on ${noun} and press it from opposite sides`,
      negative: `the gripper is open and ${noun} is free`,
      nearMisses: [
        `the gripper is touching ${noun} but not grasping it`,
        `the fingers have closed on empty air next to ${noun}`,
        `only one finger presses against ${noun}`,
      ],
    },
  };
}

/** Largest speed (m/s) of an object relative to the tool that still counts as "still in the hand". */
export const SETTLE_SPEED = 0.02;
/** Default largest tilt (rad) of a settled object from its resting orientation: 5 degrees. */
export const SETTLE_TILT = (5 * Math.PI) / 180;

/** Speed of `object` relative to the tool point (m/s); states without `eeVel` read the tool as still. */
export function speedInHand(state: SimState, object: string): number {
  const v = state.objectVel[object] ?? [0, 0, 0];
  const e = state.eeVel ?? [0, 0, 0];
  return Math.hypot(v[0] - e[0], v[1] - e[1], v[2] - e[2]);
}

export function settleStage(name: string, spec: PickPlaceSpec): Stage {
  const { noun } = spec;
  const minUpright = Math.cos(spec.settleTilt ?? SETTLE_TILT);
  return {
    name,
    object: spec.object,
    // What the text says: held, still relative to the hand (so lifting it does not undo the stage,
    // while slipping does), and upright (a block pinched by its edge tilts). A memoryless predicate
    // cannot ask for a duration: the expert's settle wait provides that.
    done: (s) =>
      isHeld(s, spec) &&
      s.gripper <= spec.halfWidth + GRIP_SLACK &&
      speedInHand(s, spec.object) < SETTLE_SPEED &&
      uprightness(objectPose(s, spec.object).q) >= minUpright,
    texts: {
      positive: `${noun} is held firmly and still between the fingers`,
      negative: `${noun} lies loose, with no finger on it`,
      nearMisses: [
        `${noun} is slipping out from between the fingers`,
        `the gripper is touching ${noun} but not grasping it`,
        `${noun} is pinched by its edge and tilting`,
      ],
    },
  };
}

export function liftStage(name: string, spec: PickPlaceSpec): Stage {
  const { noun } = spec;
  return {
    name,
    object: spec.object,
    done: (s) => isHeld(s, spec) && objP(s, spec)[2] >= spec.restZ + (spec.liftedAt ?? 0.6 * spec.liftHeight),
    texts: {
      positive: `the gripper holds ${noun} lifted clear above the table`,
      negative: `${noun} rests on the table`,
      nearMisses: [
        `the gripper rises but ${noun} stays behind on the table`,
        `${noun} is held but only just off the table`,
        `${noun} dangles from one finger and is about to drop`,
      ],
    },
  };
}

/** Carried over the target, at least `minAbove` above its final height (and at most `maxAbove`). */
export function carryStage(name: string, spec: PickPlaceSpec, minAbove: number, maxAbove = 1): Stage {
  const { noun, targetNoun } = spec;
  return {
    name,
    object: spec.object,
    done: (s) => {
      if (!isHeld(s, spec)) return false;
      const p = objP(s, spec);
      const t = spec.target(s);
      const h = p[2] - t[2];
      return distXY(p, t) <= 0.015 && h >= minAbove && h <= maxAbove;
    },
    texts: {
      positive: `the gripper holds ${noun} directly above ${targetNoun}`,
      negative: `${noun} is held far away from ${targetNoun}`,
      nearMisses: [
        `${noun} is above ${targetNoun} but not aligned with it`,
        `${noun} is held at the right height but to one side of ${targetNoun}`,
        `the gripper is above ${targetNoun} but holds nothing`,
      ],
    },
  };
}

export function lowerStage(name: string, spec: PickPlaceSpec, maxAbove = 0.015): Stage {
  const { noun, targetNoun } = spec;
  return {
    name,
    object: spec.object,
    // Held, or just let go: between the fingers opening and the object coming to rest it is
    // neither held nor placed, and without this the memoryless stage fell back to the round's
    // first stage for a step or two at every release. An object dropped into a container counts
    // all the way down to where it is inside (`dropDepth` below the drop point).
    done: (s) => {
      const p = objP(s, spec);
      const t = spec.target(s);
      const h = p[2] - t[2];
      return distXY(p, t) <= 0.012 && h >= -(spec.dropDepth ?? 0) - 0.004 && h <= maxAbove;
    },
    texts: {
      positive: `${noun} is held just above ${targetNoun}, lined up with it`,
      negative: `${noun} is held high above the table, far from ${targetNoun}`,
      nearMisses: [
        `${noun} is low but not aligned with ${targetNoun}`,
        `${noun} is above ${targetNoun} but still high`,
        `${noun} is pressed against the side of ${targetNoun}`,
      ],
    },
  };
}

export function releaseStage(name: string, spec: PickPlaceSpec): Stage {
  const { noun, targetNoun } = spec;
  return {
    name,
    object: spec.object,
    done: (s) => isPlaced(s, spec) && s.gripper >= spec.halfWidth + 0.003,
    texts: {
      positive: `the fingers have opened and ${noun} stands on ${targetNoun} by itself`,
      negative: `the gripper still grips ${noun}`,
      nearMisses: [
        `the gripper released ${noun} but it fell off ${targetNoun}`,
        `${noun} is on ${targetNoun} but still squeezed by the fingers`,
        `${noun} was dropped beside ${targetNoun}`,
      ],
    },
  };
}

export function retreatStage(name: string, spec: PickPlaceSpec): Stage {
  const { noun, targetNoun } = spec;
  return {
    name,
    object: spec.object,
    done: (s) => retreated(s, spec),
    texts: {
      positive: `the open gripper has moved up and away, leaving ${noun} on ${targetNoun}`,
      negative: `the gripper is still down at ${noun}`,
      nearMisses: [
        `the gripper moved up but knocked ${noun} off ${targetNoun}`,
        `the gripper is still touching ${noun}`,
        `the gripper moved away but ${noun} is not on ${targetNoun}`,
      ],
    },
  };
}

/**
 * Placed, released (the fingers open as far as the release stage asks), and the tool is clear of
 * the object (up by 3.5 cm or 6 cm to the side). Without the opening, a hand whose pads had just
 * left the cup's handle (6 cm from the cup's centre) counted as retreated a control step before
 * the release stage held.
 */
export function retreated(s: SimState, spec: PickPlaceSpec): boolean {
  if (!isPlaced(s, spec) || touching(s, spec.object) || s.gripper < spec.halfWidth + 0.003) return false;
  const p = objP(s, spec);
  return s.ee.p[2] >= p[2] + spec.graspOffset[2] + 0.035 || distXY(s.ee.p, p) >= 0.06;
}

/** The standard nine stages (above, reach, grasp, settle, lift, carry, lower, release, retreat). */
export function pickPlaceStages(prefix: string, spec: PickPlaceSpec, carryMinAbove = 0.015, after?: (s: SimState) => boolean): Stage[] {
  return [
    aboveStage(`above_${prefix}`, spec, after),
    reachStage(`reach_${prefix}`, spec),
    graspStage(`grasp_${prefix}`, spec),
    settleStage(`settle_${prefix}`, spec),
    liftStage(`lift_${prefix}`, spec),
    carryStage(`${prefix}_above_target`, spec, carryMinAbove),
    lowerStage(`lower_${prefix}`, spec, carryMinAbove),
    releaseStage(`release_${prefix}`, spec),
    retreatStage(`retreat_from_${prefix}`, spec),
  ];
}

/** Top-down tool orientation (approach axis pointing down) with the fingers opening along world (-sin yaw, cos yaw). */
export function topDown(yaw: number): Quat {
  // Rz(yaw) * Ry(pi): the TCP's +Z (approach) maps to world -Z.
  return quatMul([0, 0, Math.sin(yaw / 2), Math.cos(yaw / 2)], [0, 1, 0, 0]);
}

/**
 * The expert script of one standard round: hover, descend, close, settle, lift, carry over the
 * target, lower, open, raise. Targets are read from the state when each step starts.
 */
export function pickPlaceScript(
  firstStage: number,
  spec: PickPlaceSpec,
  opts: {
    yaw: (s: SimState) => number;
    /** Tool height above the target origin while carrying over it. */
    carryHeight: number;
    /** Tool height above the target origin at release (object just above its final spot). */
    placeHeight: number;
    openWidth: number;
    raise: number;
    settleSeconds?: number;
    /**
     * Opening commanded to grasp (default 0, squeeze with the full gripper force). A round object
     * is better held by commanding a little less than its half width: the finger PD then presses
     * gently and a slightly tilted pad cannot squeeze it out like a pip.
     */
    closeWidth?: number;
    /** Tool speed of the move to hover above the object (m/s, default 0.4). */
    hoverSpeed?: number;
    /** Times the expert tries the grasp again when the object is not held after the lift (default GRASP_RETRIES). */
    graspRetries?: number;
    /**
     * Closed-loop aiming: measure the tool against the grasp point before closing and the held
     * object against its target before letting go, and correct the aim until they agree (see the
     * 'align' step). Default off.
     */
    align?: boolean;
    /**
     * Times the expert picks the object up and places it again when, after the retreat, it is not
     * in place (position only; default 0: a task whose object is still moving into place then,
     * such as a jujube dropped into a cup, must not ask for it).
     */
    placeRetries?: number;
    /**
     * With `align`: first aim the held object this far (m) above its release point and correct the
     * aim there, then come down the rest of the way (default 0: straight to the release point). A
     * noisy aim then meets the support with the object's bottom still above it, instead of pressing
     * the object onto the support's edge, which tipped tall, light supports (a bar with cubes on it).
     */
    placeHover?: number;
  },
): ExpertStep[] {
  let yaw = 0;
  const at = (p: Vec3, dz: number): Pose => ({ p: [p[0] + spec.graspOffset[0], p[1] + spec.graspOffset[1], p[2] + dz], q: topDown(yaw) });
  const k = firstStage;
  const hoverSpeed = opts.hoverSpeed ?? 0.4;
  const graspRetries = opts.graspRetries ?? GRASP_RETRIES;
  // Closed-loop aiming (opts.align): before closing, the tool must be measured at the grasp point;
  // before letting go, the held object must be measured over its target. A miss is corrected from
  // the measured error (see the 'align' step) instead of being found after the lift or the retreat.
  // Each aim is measured right after a short move (a probe: the same target again, one or two
  // control steps from where the hand already is), so the correction that follows comes about
  // 0.1 s after the move it corrects: an aim error that changes over time has rarely changed yet.
  const graspAt = (s: SimState, dz: number) => at(objP(s, spec), spec.graspOffset[2] + dz);
  const aimGrasp = (dz: number, noSettle: boolean): MoveStep => ({ kind: 'move', stage: k + 1, path: 'line', correct: 'grasp', noSettle, target: (s) => graspAt(s, dz) });
  const grasp: ExpertStep[] = opts.align
    ? [
        // Down to just above the object, where the open fingers clear it, then onto the grasp
        // point, then a probe; measure there before closing.
        { ...aimGrasp(PREGRASP_HEIGHT, true), speed: hoverSpeed },
        aimGrasp(0, true),
        { ...aimGrasp(0, true), speed: PROBE_SPEED },
        {
          kind: 'align',
          stage: k + 1,
          key: 'grasp',
          error: (s) => sub(s.ee.p, graspAt(s, 0).p),
          ok: (e) => graspAligned(e, yaw),
          // A small miss is corrected where the hand is (the probe again); a hand held up (a pad
          // on the object's top) or far off goes back above the object first.
          back: (e) => (e[2] > PAD_ON_TOP || Math.hypot(e[0], e[1]) > 2 * GRASP_TOL_ACROSS ? 3 : 1),
          retries: ALIGN_RETRIES,
        },
      ]
    : [{ kind: 'move', stage: k + 1, target: (s) => at(objP(s, spec), spec.graspOffset[2]), path: 'line' }];
  const placeAt = (s: SimState, dz: number) => add(spec.target(s), [0, 0, opts.placeHeight - spec.graspOffset[2] + dz]);
  const aimPlace = (dz: number, noSettle: boolean): MoveStep => ({
    kind: 'move',
    stage: k + 6,
    target: (s) => carried(s, spec, opts.placeHeight - spec.graspOffset[2] + dz, yaw),
    path: 'line',
    speed: 0.15,
    correct: 'place',
    noSettle,
  });
  // Not held any more: no aim can help; the check after the retreat picks it up again.
  const placeOk = (e: Vec3, s: SimState) => !isHeld(s, spec) || (Math.hypot(e[0], e[1]) <= PLACE_ALIGN * spec.placeTolXY && Math.abs(e[2]) <= PLACE_TOL_Z);
  const hover = opts.placeHover ?? 0;
  const place: ExpertStep[] = opts.align
    ? [
        // Optionally aim at `placeHover` above the release point first: measure and correct there,
        // where a miss cannot touch the support (the object's bottom is still above it).
        ...(hover > 0
          ? [
              aimPlace(PLACE_LIFT + hover, true),
              { ...aimPlace(PLACE_LIFT + hover, true), speed: PROBE_SPEED },
              {
                kind: 'align' as const,
                stage: k + 6,
                key: 'place',
                error: (s: SimState) => sub(objP(s, spec), placeAt(s, PLACE_LIFT + hover)),
                ok: placeOk,
                back: () => 1,
                retries: ALIGN_RETRIES,
              },
            ]
          : []),
        // Down to PLACE_LIFT above the release point, then measure the object against its target
        // and correct (short moves from where it is) until it is over the target.
        aimPlace(PLACE_LIFT, true),
        { ...aimPlace(PLACE_LIFT, true), speed: PROBE_SPEED },
        {
          kind: 'align',
          stage: k + 6,
          key: 'place',
          error: (s) => sub(objP(s, spec), placeAt(s, PLACE_LIFT)),
          // Vertically too: an object pressed onto its support (an aim too low) reads ~7 mm low and
          // is raised to its release height before the fingers open.
          ok: placeOk,
          back: () => 1,
          retries: ALIGN_RETRIES,
        },
      ]
    : [
        { kind: 'move', stage: k + 6, target: (s) => carried(s, spec, opts.placeHeight - spec.graspOffset[2], yaw), path: 'line', speed: 0.15 },
        // Lowered beside the target (the hand aimed badly): carry it over the target again before letting go.
        ...(opts.placeRetries
          ? [{ kind: 'check' as const, stage: k + 6, ok: (s: SimState) => distXY(objP(s, spec), spec.target(s)) <= PLACE_AIM * spec.placeTolXY, back: 2, retries: opts.placeRetries }]
          : []),
      ];
  const pick: ExpertStep[] = [
    // Hover in two straight legs: across at the higher of the current and the hover height, then
    // down. A single diagonal line from the top of a tower would cut its corner with a fingertip.
    {
      kind: 'move',
      stage: k,
      gripper: opts.openWidth,
      wrist: 'centred',
      path: 'line',
      speed: hoverSpeed,
      resetCorrections: true,
      target: (s) => {
        yaw = opts.yaw(s);
        const h = at(objP(s, spec), spec.hoverHeight);
        // At most 6 cm above the hover height: higher may be out of the arm's reach there.
        return { p: [h.p[0], h.p[1], Math.max(h.p[2], Math.min(s.ee.p[2], h.p[2] + 0.06))], q: h.q };
      },
    },
    {
      kind: 'move',
      stage: k,
      path: 'line',
      speed: hoverSpeed,
      target: (s) => at(objP(s, spec), spec.hoverHeight),
    },
    ...grasp,
    { kind: 'grip', stage: k + 2, opening: opts.closeWidth ?? 0 },
    { kind: 'wait', stage: k + 3, seconds: opts.settleSeconds ?? 0.2 },
    { kind: 'move', stage: k + 4, target: (_s, prev) => lifted(prev, spec.liftHeight), path: 'line' },
  ];
  // A grasp that missed or slipped out on the lift: open, go back above the object and try again.
  pick.push({ kind: 'check', stage: k + 4, ok: (s) => isHeld(s, spec), back: pick.length, retries: graspRetries });
  const steps: ExpertStep[] = [
    ...pick,
    { kind: 'move', stage: k + 5, target: (s) => carried(s, spec, opts.carryHeight - spec.graspOffset[2], yaw) },
    ...place,
    { kind: 'grip', stage: k + 7, opening: opts.openWidth },
    { kind: 'move', stage: k + 8, target: (_s, prev) => lifted(prev, opts.raise), path: 'line' },
  ];
  // A placement that still missed its target: pick the object up where it is and place it again.
  if (opts.placeRetries) steps.push({ kind: 'check', stage: k + 8, ok: (s: SimState) => isInPlace(s, spec), back: steps.length, retries: opts.placeRetries });
  return steps;
}

/** Height above the grasp point (m) through which an aligning expert comes down: the open pads (2 cm below the tool point) clear the object's top there. */
const PREGRASP_HEIGHT = 0.04;
/** A tool this far (m) above the grasp point after the descent is held up by the object (a pad on its top). */
const PAD_ON_TOP = 0.01;
/** Aim tolerances at the grasp point (m): across the fingers, along them, vertical. */
const GRASP_TOL_ACROSS = 0.008;
const GRASP_TOL_ALONG = 0.014;
const GRASP_TOL_Z = 0.009;
/**
 * Tool speed (m/s) of the probe before an align step and of the corrections that follow: they are
 * short, and the sooner a correction follows the move it corrects, the likelier the aim error is
 * still the one measured.
 */
export const PROBE_SPEED = 0.4;
/** How much higher (m) than its release point an aligning expert lets the object go: a noisy aim then presses it onto its support less often. */
const PLACE_LIFT = 0.004;
/** Largest aim correction per axis (m): an object that does not follow the hand (stuck on something) must not wind the aim up. */
const MAX_CORRECTION = 0.03;
/** Share of the placement tolerance within which an aligning expert lets go. */
export const PLACE_ALIGN = 0.6;
/** Largest height (m) above its release point at which an aligning expert lets the object go. */
const PLACE_TOL_Z = 0.005;
/** Re-aims per align step and round. */
export const ALIGN_RETRIES = 6;

/**
 * Is a tool error `e` (world, tool minus grasp point) small enough to close on the object? Across
 * the fingers within GRASP_TOL_ACROSS (the pads, 10.5 mm wide, then squeeze the face near enough
 * its middle that the object does not swing about the pinch); along them within GRASP_TOL_ALONG
 * (the closing fingers centre the object); vertically within GRASP_TOL_Z.
 */
export function graspAligned(e: Vec3, yaw: number): boolean {
  const along = -Math.sin(yaw) * e[0] + Math.cos(yaw) * e[1];
  const across = Math.cos(yaw) * e[0] + Math.sin(yaw) * e[1];
  return Math.abs(across) <= GRASP_TOL_ACROSS && Math.abs(along) <= GRASP_TOL_ALONG && Math.abs(e[2]) <= GRASP_TOL_Z;
}

/**
 * Tool goal that brings the held object's origin to `dz` above its target. Uses where the object
 * actually sits in the hand now (it may have slid between the fingers), not where it was grasped.
 */
export function carried(s: SimState, spec: PickPlaceSpec, dz: number, yaw: number): Pose {
  const t = spec.target(s);
  const o = objP(s, spec);
  const e = s.ee.p;
  if (!isHeld(s, spec)) {
    // Lost it: aim the empty hand as if holding it where it was grasped (the stage will fail honestly).
    return { p: [t[0] + spec.graspOffset[0], t[1] + spec.graspOffset[1], t[2] + dz + spec.graspOffset[2]], q: topDown(yaw) };
  }
  return { p: [t[0] + e[0] - o[0], t[1] + e[1] - o[1], t[2] + dz + e[2] - o[2]], q: topDown(yaw) };
}

/** The previous goal raised by `dz` (the originals' "tmat_tgt_local[2,3] += dz"). */
export function lifted(prev: Pose | null, dz: number): Pose {
  if (!prev) throw new Error('a relative move needs a previous target (script starts with a relative move)');
  return { p: [prev.p[0], prev.p[1], prev.p[2] + dz], q: prev.q };
}
