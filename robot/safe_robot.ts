/**
 * The safety layer wrapped around a Robot: every command the deploy loop sends goes through
 * `SafetyLayer.decide`, and a watchdog timer on the injected clock holds the robot on its own when
 * no fresh observation or policy output arrives within the deadline, even if the loop is stuck
 * (a hung inference, a blocked event loop that later recovers). Every decision is handed to the
 * sinks (the MCAP command log, the status printer, the ROS diagnostics publisher).
 */
import type { Clock, TimerHandle } from './clock.ts';
import type { DeployConfig } from './config.ts';
import { type Decision, type ForwardKinematics, SafetyLayer } from './safety/layer.ts';
import type { Robot, RobotObservation, RobotSpec, SafetyInputs } from './types.ts';

/** Receives every safety decision with the observation it was made on. */
export type DecisionSink = (d: Decision, obs: RobotObservation) => void;

export interface SafeRobotOptions {
  robot: Robot;
  clock: Clock;
  safety: DeployConfig['safety'];
  controlHz: number;
  fk?: ForwardKinematics;
}

/** A Robot whose `send` returns the command actually sent after every safety check. */
export class SafeRobot implements Robot {
  readonly inner: Robot;
  readonly layer: SafetyLayer;
  private readonly clock: Clock;
  private readonly dt: number;
  private readonly sinks: DecisionSink[] = [];
  private watchdog: TimerHandle | null = null;
  private latest: RobotObservation | null = null;
  private lastFreshStamp = -Infinity;
  private lastSendAt = -Infinity;
  private lastDecisionValue: Decision | null = null;
  private halted = false;
  private started = false;

  constructor(opts: SafeRobotOptions) {
    this.inner = opts.robot;
    this.clock = opts.clock;
    this.dt = 1 / opts.controlHz;
    this.layer = new SafetyLayer({ spec: opts.robot.spec(), config: opts.safety, dt: this.dt, fk: opts.fk });
  }

  spec(): RobotSpec {
    return this.inner.spec();
  }

  /** Receive every decision (commands, holds, refusals, halts). */
  onDecision(sink: DecisionSink): void {
    this.sinks.push(sink);
  }

  /** The most recent decision, or null before the first. */
  lastDecision(): Decision | null {
    return this.lastDecisionValue;
  }

  async connect(): Promise<void> {
    await this.inner.connect();
  }

  /**
   * Start-state check and start-up hold from the measured position. Throws StartRefusedError when
   * the robot is e-stopped, moving, outside its limits or outside the workspace.
   */
  start(): void {
    const obs = this.read();
    this.layer.begin(obs, this.inner.safetyInputs(), this.clock.now());
    this.started = true;
    // The first command is the measured position (start-up hold), sent at once.
    this.apply(this.layer.decide({ now: this.clock.now(), obs, inputs: this.inner.safetyInputs(), action: null, basisStamp: null }), obs);
    this.lastSendAt = this.clock.now();
    this.armWatchdog();
  }

  read(): RobotObservation {
    const obs = this.inner.read();
    if (!this.latest || obs.seq !== this.latest.seq) this.lastFreshStamp = obs.stamp;
    this.latest = obs;
    this.armWatchdog();
    return obs;
  }

  safetyInputs(): SafetyInputs {
    return this.inner.safetyInputs();
  }

  /**
   * Pass a policy action through the safety layer and transmit the result.
   * @param basisStamp stamp of the observation the action was computed from (watchdog age).
   */
  send(action: ArrayLike<number> | null, basisStamp: number | null = this.latest?.stamp ?? null): number[] {
    if (!this.started) throw new Error('SafeRobot.send before start(): the start-state check has not run');
    const obs = this.latest ?? this.read();
    const d = this.layer.decide({ now: this.clock.now(), obs, inputs: this.inner.safetyInputs(), action, basisStamp });
    this.lastSendAt = this.clock.now();
    this.apply(d, obs);
    this.armWatchdog();
    return d.sent;
  }

  halt(): void {
    this.halted = true;
    this.inner.halt();
  }

  /**
   * Latch a fault in the safety layer and halt now: the halt decision goes to the robot and the
   * sinks (the log names the reason), and every later decision halts too.
   */
  latchFault(reason: string): void {
    this.layer.latchFault(reason);
    if (!this.started || !this.latest) return;
    this.apply(this.layer.decide({ now: this.clock.now(), obs: this.latest, inputs: this.inner.safetyInputs(), action: null, basisStamp: null }), this.latest);
  }

  async disconnect(): Promise<void> {
    this.watchdog?.cancel();
    this.watchdog = null;
    this.started = false;
    await this.inner.disconnect();
  }

  private apply(d: Decision, obs: RobotObservation): void {
    this.lastDecisionValue = d;
    if (d.source === 'halt') {
      // Tell the robot once per halt episode; repeated halt decisions transmit nothing new.
      d.transmitted = !this.halted;
      if (!this.halted) this.halt();
    } else {
      this.halted = false;
      d.sent = this.inner.send(d.sent);
      d.transmitted = true;
    }
    for (const sink of this.sinks) sink(d, obs);
  }

  /**
   * Arm the timer for the earliest moment data goes stale: the freshest observation's stamp or the
   * last policy command plus the deadline, but at least one control period ahead so that while
   * holding it keeps decelerating at the control rate.
   */
  private armWatchdog(): void {
    const cfg = this.layer.config.watchdog;
    if (!cfg.enabled || !this.started) return;
    this.watchdog?.cancel();
    const now = this.clock.now();
    const dueObs = this.lastFreshStamp + cfg.timeoutS;
    const dueCmd = this.lastSendAt + cfg.timeoutS;
    let due = Math.min(dueObs, dueCmd);
    if (due <= now) due = now + this.dt;
    this.watchdog = this.clock.setTimer(due - now, () => this.onWatchdog());
  }

  private onWatchdog(): void {
    this.watchdog = null;
    if (!this.started || !this.latest) return;
    const now = this.clock.now();
    const cfg = this.layer.config.watchdog;
    const stale = now - this.lastFreshStamp >= cfg.timeoutS - 1e-9 || now - this.lastSendAt >= cfg.timeoutS - 1e-9;
    if (stale) {
      // Hold on our own: decide with no action (the layer names the stale input) and transmit.
      const obs = this.latest;
      const d = this.layer.decide({ now, obs, inputs: this.inner.safetyInputs(), action: null, basisStamp: null });
      this.apply(d, obs);
      this.lastSendAt = now - cfg.timeoutS; // keep the timer at control rate while stale
    }
    this.armWatchdog();
  }
}
