/**
 * The safety layer's state machine: every command between the policy and the robot passes through
 * `decide`, which returns the command to transmit and every refusal and clamp it made. Pure with
 * respect to time: the caller passes `now` from an injected clock, so tests drive it with a fake one.
 *
 * Modes: 'startup' holds the measured start position for `startup.holdS`; 'running' passes limited
 * policy commands; 'hold' decelerates to a stop (stale observation or policy output, refused
 * command); 'halted' has told the robot to stop (e-stop and latched faults: until restart; deadman:
 * resumes through a fresh start-up hold once the deadman is held again).
 */
import type { SafetyConfig } from '../config.ts';
import type { RobotObservation, RobotSpec, SafetyInputs } from '../types.ts';
import {
  accelerationScale,
  clampPositions,
  distance,
  type Finding,
  fieldName,
  insideBox,
  largestGood,
  nonFiniteFields,
  stepScale,
} from './limits.ts';

export type SafetyMode = 'startup' | 'running' | 'hold' | 'halted';

/** Why the policy's action was not what went out. */
export type HoldReason =
  | 'startup'
  | 'stale_observation'
  | 'stale_policy'
  | 'no_action'
  | 'refused'
  | 'estop'
  | 'deadman'
  | 'fault';

/** End-effector position (m, robot base frame) for arm joint positions. */
export type ForwardKinematics = (q: readonly number[]) => readonly [number, number, number];

/** The outcome of one pass through the safety layer. */
export interface Decision {
  /** Clock time (s). */
  t: number;
  mode: SafetyMode;
  /** 'policy': a (possibly limited) policy command; 'hold': decelerate/hold; 'halt': robot told to stop. */
  source: 'policy' | 'hold' | 'halt';
  /** Null when the policy command went out (possibly clamped). */
  reason: HoldReason | null;
  /** The policy's proposed action as received (NaN kept), or null if none. */
  proposed: number[] | null;
  /** The command transmitted: 6 joint targets (rad) + gripper (m). */
  sent: number[];
  /** Checks that rejected the whole proposed action. */
  refusals: Finding[];
  /** Limits that changed the proposed action. */
  clamps: Finding[];
  /**
   * Whether a command went to the robot for this decision (set by SafeRobot): false for a halt
   * already in force, where nothing new is transmitted. Absent before SafeRobot has acted on it.
   */
  transmitted?: boolean;
}

/** The robot's state at start does not allow a safe start. */
export class StartRefusedError extends Error {
  override name = 'StartRefusedError';
  constructor(readonly problems: string[]) {
    super(`refusing to start: ${problems.join('; ')}`);
  }
}

export interface SafetyLayerOptions {
  spec: RobotSpec;
  config: SafetyConfig;
  /** Control period (s): velocities and accelerations are per this step. */
  dt: number;
  /** Needed when the workspace box or jump guard is enabled. */
  fk?: ForwardKinematics;
}

export interface DecideInput {
  now: number;
  /** The latest observation (the watchdog ages it by its stamp). */
  obs: RobotObservation;
  inputs: SafetyInputs;
  /** The policy's action, or null when none is available (watchdog tick). */
  action: ArrayLike<number> | null;
  /** Stamp of the observation the action was computed from. */
  basisStamp: number | null;
}

const ARM = 6;

/** The safety state machine; see the file comment for its modes. */
export class SafetyLayer {
  readonly spec: RobotSpec;
  readonly config: SafetyConfig;
  readonly dt: number;
  private readonly fk: ForwardKinematics | undefined;
  private readonly vmax: number[];
  private readonly amax: number[];
  private readonly stepMax: number[];

  private modeNow: SafetyMode = 'startup';
  private prevCmd: number[] | null = null;
  private prevVel: number[] = new Array(ARM).fill(0);
  private startupUntil = 0;
  private estopLatched = false;
  private faultLatched: string | null = null;
  private deadmanHalted = false;
  private lastPolicyBasis: number | null = null;
  private lastCommitAt = -Infinity;

  constructor(opts: SafetyLayerOptions) {
    const { spec, config, dt } = opts;
    if (spec.jointNames.length !== ARM || spec.limits.length !== ARM) {
      throw new RangeError(`safety layer expects ${ARM} arm joints, got ${spec.jointNames.length} names and ${spec.limits.length} limits`);
    }
    if (!(dt > 0)) throw new RangeError(`control period must be > 0 s, got ${dt}`);
    if ((config.workspace.enabled || config.eeJump.enabled) && !opts.fk) {
      throw new Error('workspace box / jump guard enabled but no forward kinematics given (pass fk, or disable safety.workspace and safety.eeJump)');
    }
    this.spec = spec;
    this.config = config;
    this.dt = dt;
    this.fk = opts.fk;
    this.vmax = spec.limits.map((l) => l.velocity * config.velocityLimits.scale);
    this.amax = spec.limits.map((l) => l.acceleration * config.accelerationLimits.scale);
    this.stepMax = spec.limits.map(() => config.maxStep.joint);
  }

  get mode(): SafetyMode {
    return this.modeNow;
  }

  /** The last command decided (null before `begin`). */
  lastCommand(): readonly number[] | null {
    return this.prevCmd;
  }

  /**
   * Start-state check, then start-up hold from the measured position (the first command starts
   * from where the robot is, as libfranka requires). Throws StartRefusedError listing every problem.
   */
  begin(obs: RobotObservation, inputs: SafetyInputs, now: number): void {
    const problems = this.startProblems(obs, inputs);
    if (problems.length) throw new StartRefusedError(problems);
    this.restartFrom(obs, now);
  }

  /** What prevents a safe start from this state (empty when none). */
  startProblems(obs: RobotObservation, inputs: SafetyInputs): string[] {
    const c = this.config;
    const problems: string[] = [];
    if (c.estop.enabled && inputs.estop) problems.push('the robot reports an engaged e-stop / protective stop');
    const state = [...obs.q, obs.gripper];
    const unreadable = nonFiniteFields(state, this.spec.jointNames).map((f) => `measured ${f.field} is ${f.value}`);
    if (obs.q.length !== ARM) unreadable.push(`measured ${obs.q.length} joint positions, expected ${ARM}`);
    // The remaining checks need a readable state.
    if (unreadable.length) return [...problems, ...unreadable];
    if (c.positionLimits.enabled) {
      obs.q.forEach((q, i) => {
        const l = this.spec.limits[i];
        if (q < l.lower - 1e-3 || q > l.upper + 1e-3) {
          problems.push(`measured ${this.spec.jointNames[i]} = ${q.toFixed(4)} rad is outside its limits [${l.lower}, ${l.upper}]`);
        }
      });
    }
    if (c.startup.enabled) {
      obs.qd.forEach((v, i) => {
        if (!(Math.abs(v) <= c.startup.maxVelocity)) {
          problems.push(`${this.spec.jointNames[i]} is moving at ${v.toFixed(3)} rad/s (start needs |v| <= ${c.startup.maxVelocity})`);
        }
      });
    }
    if (c.workspace.enabled && this.fk) {
      const ee = this.fk(obs.q);
      if (!insideBox(ee, c.workspace.min, c.workspace.max)) {
        problems.push(`end effector at [${ee.map((v) => v.toFixed(3)).join(', ')}] m is outside the workspace box [${c.workspace.min}]..[${c.workspace.max}]`);
      }
    }
    return problems;
  }

  private restartFrom(obs: RobotObservation, now: number): void {
    this.prevCmd = [...obs.q.slice(0, ARM), obs.gripper];
    this.prevVel = new Array(ARM).fill(0);
    this.startupUntil = now + (this.config.startup.enabled ? this.config.startup.holdS : 0);
    this.modeNow = this.config.startup.enabled && this.config.startup.holdS > 0 ? 'startup' : 'running';
    this.lastPolicyBasis = null;
  }

  /**
   * Latch a fault (e.g. the policy refused for too long): every later decision halts the robot,
   * until a restart. The first latched reason is kept.
   */
  latchFault(reason: string): void {
    this.faultLatched ??= reason;
  }

  /** The latched fault's reason, or null. */
  get fault(): string | null {
    return this.faultLatched;
  }

  /** Pass one proposed action (or none) through every check. */
  decide(input: DecideInput): Decision {
    const { now, obs, inputs } = input;
    const c = this.config;
    if (!this.prevCmd) throw new Error('SafetyLayer.decide called before begin()');
    const proposed = input.action ? Array.from(input.action, Number) : null;

    if (this.faultLatched !== null) return this.halt(now, obs, 'fault', proposed);

    // E-stop: latched; only a restart clears it.
    if (this.estopLatched || (c.estop.enabled && inputs.estop)) {
      this.estopLatched = true;
      return this.halt(now, obs, 'estop', proposed);
    }
    // Deadman: a confirmation older than the timeout counts as released (twist_mux lock semantics).
    if (c.deadman.enabled) {
      const fresh = inputs.deadmanStamp !== null && now - inputs.deadmanStamp <= c.deadman.timeoutS;
      if (!fresh) {
        this.deadmanHalted = true;
        return this.halt(now, obs, 'deadman', proposed);
      }
      if (this.deadmanHalted) {
        this.deadmanHalted = false;
        this.restartFrom(obs, now);
      }
    }
    if (c.watchdog.enabled && expired(now - obs.stamp, c.watchdog.timeoutS)) {
      return this.hold(now, 'stale_observation', proposed, []);
    }
    if (this.modeNow === 'startup' && now < this.startupUntil) {
      return this.hold(now, 'startup', proposed, []);
    }
    if (c.watchdog.enabled) {
      if (proposed && input.basisStamp !== null && expired(now - input.basisStamp, c.watchdog.timeoutS)) {
        return this.hold(now, 'stale_policy', proposed, []);
      }
      if (!proposed) {
        const basis = this.lastPolicyBasis;
        const stale = this.modeNow !== 'startup' && (basis === null || expired(now - basis, c.watchdog.timeoutS));
        return this.hold(now, stale ? 'stale_policy' : 'no_action', null, []);
      }
    }
    if (!proposed) return this.hold(now, 'no_action', null, []);
    if (proposed.length !== ARM + 1) {
      return this.hold(now, 'refused', proposed, [
        { check: 'shape', field: 'action', value: proposed.length, limit: ARM + 1 },
      ]);
    }
    if (c.finiteCheck.enabled) {
      const bad = nonFiniteFields(proposed, this.spec.jointNames);
      if (bad.length) return this.hold(now, 'refused', proposed, bad);
    } else if (proposed.some((v) => !Number.isFinite(v))) {
      // With the check off a NaN would still poison the limiter state; refuse anyway, said plainly.
      return this.hold(now, 'refused', proposed, nonFiniteFields(proposed, this.spec.jointNames));
    }
    if (input.basisStamp !== null) this.lastPolicyBasis = input.basisStamp;
    this.modeNow = 'running';
    const clamps: Finding[] = [];
    const sent = this.limit(proposed, clamps);
    this.commit(sent, now);
    return { t: now, mode: this.modeNow, source: 'policy', reason: null, proposed, sent: [...sent], refusals: [], clamps };
  }

  /** Apply position, step, velocity, acceleration, workspace, jump and gripper limits. */
  private limit(proposed: readonly number[], clamps: Finding[]): number[] {
    const c = this.config;
    const names = this.spec.jointNames;
    const prev = this.prevCmd as number[];
    const target = proposed.slice(0, ARM);
    if (c.positionLimits.enabled) clampPositions(target, this.spec.limits, c.positionLimits.margin, names, clamps);

    const delta = target.map((v, i) => v - prev[i]);
    let scale = 1;
    const cap = (check: string, maxAbs: number[], perStep: (i: number) => number) => {
      const r = stepScale(delta.map((d) => d * scale), maxAbs);
      if (r.scale < 1) {
        clamps.push({ check, field: names[r.joint], value: perStep(r.joint), limit: maxAbs[r.joint] / (check === 'max_step' ? 1 : this.dt) });
        scale *= r.scale;
      }
    };
    if (c.maxStep.enabled) cap('max_step', this.stepMax, (i) => delta[i] * scale);
    if (c.velocityLimits.enabled) cap('velocity', this.vmax.map((v) => v * this.dt), (i) => (delta[i] * scale) / this.dt);
    if (c.positionLimits.enabled && c.accelerationLimits.enabled) {
      // Braking distance: never move toward a position limit faster than the arm can still stop
      // before it at its acceleration limit (v dt + v^2 / 2a <= distance left), as ros2_control's
      // joint_limits does; otherwise the position clamp would stop the joint in one step.
      const brake = delta.map((d, i) => {
        const l = this.spec.limits[i];
        const room = d > 0 ? l.upper - c.positionLimits.margin - prev[i] : prev[i] - (l.lower + c.positionLimits.margin);
        const a = this.amax[i];
        const v = a * (-this.dt + Math.sqrt(this.dt * this.dt + (2 * Math.max(0, room)) / a));
        return v * this.dt;
      });
      cap('brake', brake, (i) => (delta[i] * scale) / this.dt);
    }

    let next = delta.map((d, i) => prev[i] + d * scale);
    if (c.accelerationLimits.enabled) {
      const s = accelerationScale(delta, this.prevVel, this.amax, this.dt, scale);
      if (s === null) {
        // No common factor: clamp each joint's velocity change. Direction is not kept here, but the
        // acceleration bound is physical and outranks it.
        next = next.map((p, i) => {
          const v = (p - prev[i]) / this.dt;
          const dv = this.amax[i] * this.dt;
          const vc = Math.min(this.prevVel[i] + dv, Math.max(this.prevVel[i] - dv, v));
          if (vc !== v) clamps.push({ check: 'acceleration', field: names[i], value: (v - this.prevVel[i]) / this.dt, limit: this.amax[i] });
          return prev[i] + vc * this.dt;
        });
        if (c.positionLimits.enabled) clampPositions(next, this.spec.limits, c.positionLimits.margin, names, clamps);
      } else if (s < scale - 1e-12) {
        const worst = delta.reduce((w, d, i) => {
          const acc = Math.abs((d * scale) / this.dt - this.prevVel[i]) / this.dt / this.amax[i];
          return acc > w.acc ? { acc, i } : w;
        }, { acc: -1, i: 0 });
        clamps.push({ check: 'acceleration', field: names[worst.i], value: worst.acc * this.amax[worst.i], limit: this.amax[worst.i] });
        scale = s;
        next = delta.map((d, i) => prev[i] + d * scale);
      }
    }

    if ((c.workspace.enabled || c.eeJump.enabled) && this.fk) {
      const fk = this.fk;
      const eePrev = fk(prev.slice(0, ARM));
      const boxOk = (ee: readonly number[]) => !c.workspace.enabled || insideBox(ee, c.workspace.min, c.workspace.max);
      const jumpOk = (ee: readonly number[]) => !c.eeJump.enabled || distance(ee, eePrev) <= c.eeJump.maxStep;
      // Braking distance for the box, as for the joint limits: a command is good only if the arm,
      // braking from it at its acceleration limits (what a hold does), stops inside the box. The
      // fallback is the hold's own braking step from the previous command: it meets every joint
      // limit, and its braking path is the rest of the previous one, which stayed inside. Every
      // blend of the fallback and the limited command meets the joint limits too (each is a box on
      // the step), so shortening along that line never trades the box for an acceleration spike.
      const good = (q: readonly number[]) => {
        const ee = fk(q);
        return boxOk(ee) && jumpOk(ee) && (!c.workspace.enabled || this.brakingPathInside(q, prev));
      };
      if (!good(next)) {
        const eeNext = fk(next);
        const fallback = this.brakeStep(prev, this.prevVel);
        const at = (t: number) => next.map((p, i) => fallback[i] + (p - fallback[i]) * t);
        const t = good(fallback) ? largestGood((x) => good(at(x))) : 0;
        if (!boxOk(eeNext)) clamps.push({ check: 'workspace', field: 'ee', value: outsideBy(eeNext, c.workspace.min, c.workspace.max), limit: 0 });
        else if (!jumpOk(eeNext)) clamps.push({ check: 'ee_jump', field: 'ee', value: distance(eeNext, eePrev), limit: c.eeJump.maxStep });
        else clamps.push({ check: 'workspace_brake', field: 'ee', value: this.brakingOvershoot(next, prev), limit: 0 });
        next = at(t);
      }
    }

    // Gripper: its own range, step cap and speed.
    let g = proposed[ARM];
    const gl = this.spec.gripper;
    if (c.positionLimits.enabled && (g < gl.lower || g > gl.upper)) {
      clamps.push({ check: 'position', field: 'gripper', value: g, limit: g < gl.lower ? gl.lower : gl.upper });
      g = Math.min(gl.upper, Math.max(gl.lower, g));
    }
    const gStep = Math.min(c.maxStep.enabled ? c.maxStep.gripper : Infinity, c.velocityLimits.enabled ? gl.velocity * this.dt : Infinity);
    const gPrev = prev[ARM];
    if (Math.abs(g - gPrev) > gStep) {
      clamps.push({ check: c.maxStep.enabled && c.maxStep.gripper <= gl.velocity * this.dt ? 'max_step' : 'velocity', field: fieldName(ARM, names), value: g - gPrev, limit: gStep });
      g = gPrev + Math.sign(g - gPrev) * gStep;
    }
    return [...next, g];
  }

  /** One braking step from `prev` at velocity `vel`: each joint slows by its acceleration limit. */
  private brakeStep(prev: readonly number[], vel: readonly number[]): number[] {
    const next = prev.slice(0, ARM).map((p, i) => {
      const v = vel[i];
      const dv = (this.amax[i] > 0 && Number.isFinite(this.amax[i]) ? this.amax[i] : Infinity) * this.dt;
      return p + Math.sign(v) * Math.max(0, Math.abs(v) - dv) * this.dt;
    });
    if (this.config.positionLimits.enabled) clampPositions(next, this.spec.limits, this.config.positionLimits.margin, this.spec.jointNames, []);
    return next;
  }

  /** The positions a hold would command after `q` (reached from `prev`), until every joint stops. */
  private brakingPath(q: readonly number[], prev: readonly number[]): number[][] {
    const path: number[][] = [];
    let p = q.slice(0, ARM);
    let v = p.map((x, i) => (x - prev[i]) / this.dt);
    // A joint at full speed stops in vmax/amax seconds; the cap only guards a zero acceleration limit.
    for (let k = 0; k < 10_000 && v.some((x) => x !== 0); k++) {
      const n = this.brakeStep(p, v);
      v = n.map((x, i) => (x - p[i]) / this.dt);
      p = n;
      path.push(p);
    }
    return path;
  }

  private brakingPathInside(q: readonly number[], prev: readonly number[]): boolean {
    const w = this.config.workspace;
    const fk = this.fk as ForwardKinematics;
    return this.brakingPath(q, prev).every((p) => insideBox(fk(p), w.min, w.max));
  }

  /** How far (m) the braking path from `q` leaves the box at worst. */
  private brakingOvershoot(q: readonly number[], prev: readonly number[]): number {
    const w = this.config.workspace;
    const fk = this.fk as ForwardKinematics;
    return this.brakingPath(q, prev).reduce((m, p) => Math.max(m, outsideBy(fk(p), w.min, w.max)), 0);
  }

  private commit(sent: number[], now: number): void {
    this.lastCommitAt = now;
    const prev = this.prevCmd as number[];
    this.prevVel = sent.slice(0, ARM).map((p, i) => (p - prev[i]) / this.dt);
    this.prevCmd = sent;
  }

  /**
   * Decelerate each joint at its acceleration limit until stopped, then hold (ros2_control's
   * `cmd_timeout` behaviour, but decelerating instead of freezing at full speed).
   */
  private hold(now: number, reason: HoldReason, proposed: number[] | null, refusals: Finding[]): Decision {
    const prev = this.prevCmd as number[];
    this.modeNow = reason === 'startup' ? 'startup' : 'hold';
    if (now - this.lastCommitAt < this.dt / 2) {
      // A second hold within half a period (the watchdog timer and the loop's tick both acting):
      // repeat the last command rather than take another braking step, which would brake harder
      // than the acceleration limit.
      return { t: now, mode: this.modeNow, source: 'hold', reason, proposed, sent: [...prev], refusals, clamps: [] };
    }
    const next = this.brakeStep(prev, this.prevVel);
    const sent = [...next, prev[ARM]];
    this.commit(sent, now);
    return { t: now, mode: this.modeNow, source: 'hold', reason, proposed, sent: [...sent], refusals, clamps: [] };
  }

  /** The robot is told to stop at its measured position; the next motion starts from there. */
  private halt(now: number, obs: RobotObservation, reason: 'estop' | 'deadman' | 'fault', proposed: number[] | null): Decision {
    this.modeNow = 'halted';
    const measured = [...obs.q.slice(0, ARM), obs.gripper];
    const sent = measured.every(Number.isFinite) ? measured : (this.prevCmd as number[]).slice();
    this.prevCmd = sent;
    this.prevVel = new Array(ARM).fill(0);
    this.lastCommitAt = now;
    return { t: now, mode: 'halted', source: 'halt', reason, proposed, sent: [...sent], refusals: [], clamps: [] };
  }
}

/** Age at or past the deadline (a hair of tolerance so a timer firing exactly on time counts). */
function expired(age: number, timeoutS: number): boolean {
  return age >= timeoutS - 1e-9;
}

function outsideBy(p: readonly number[], min: readonly number[], max: readonly number[]): number {
  let d = 0;
  for (let i = 0; i < 3; i++) d = Math.max(d, min[i] - p[i], p[i] - max[i]);
  return d;
}
