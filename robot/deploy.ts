/**
 * The deploy loop: at the control rate, read the robot, ask the policy, pass the action through the
 * safety layer, send. The same code drives the sim twin and the ROS 2 bridge.
 *
 * The policy runs under a time budget: if it has not answered within `policyTimeoutS` the tick
 * goes on without it (the safety layer holds), and no new inference starts until the late one
 * returns, so a slow policy never piles up requests. Its late answer is then refused as stale.
 */
import type { Observation } from '../sim/types.ts';
import type { Clock } from './clock.ts';
import type { DeployPolicy } from './policies/types.ts';
import type { Decision } from './safety/layer.ts';
import type { SafeRobot } from './safe_robot.ts';
import type { RobotObservation } from './types.ts';

/** What the loop runs and how. */
export interface DeployLoopOptions {
  robot: SafeRobot;
  policy: DeployPolicy;
  clock: Clock;
  controlHz: number;
  /** The task instruction given to the policy. */
  instruction: string;
  /** Longest wait for one inference before the tick holds (default: the watchdog deadline). */
  policyTimeoutS?: number;
  /** Stop after this many seconds (default: run until stopped). */
  durationS?: number;
  /** Extra stop condition checked after each tick (e.g. the sim twin's episode ended). */
  shouldStop?: () => string | null;
  /** Called after every tick. */
  onTick?: (t: TickRecord) => void;
}

/** What one tick did. */
export interface TickRecord {
  index: number;
  /** Clock time the tick started (s). */
  start: number;
  /** Observation read -> command sent (s). */
  latencyS: number;
  /** Whether the policy answered within its budget this tick. */
  policyAnswered: boolean;
  decision: Decision;
}

/** How a run ended and what it did. */
export interface DeploySummary {
  ticks: number;
  /** The fault latched in the safety layer that ended the run (the robot is halted), or null. */
  fault: string | null;
  /** Control periods missed: a tick that ends after its period counts once per period it overran. */
  missedDeadlines: number;
  stopReason: string;
  latencies: number[];
}

/** The policy's view of a robot reading. */
export function policyObservation(obs: RobotObservation, instruction: string): Observation {
  const proprio = new Float32Array(obs.q.length + 1);
  proprio.set(obs.q);
  proprio[obs.q.length] = obs.gripper;
  return { proprio, images: obs.images, instruction };
}

const TIMED_OUT = Symbol('timed out');

/** The control loop: `tick()` for one step (tests), `run()` at the control rate. */
export class DeployLoop {
  private readonly o: DeployLoopOptions;
  private readonly period: number;
  private pending: Promise<unknown> | null = null;
  private stopRequested: string | null = null;
  private index = 0;
  private readonly errorMessages = new Set<string>();
  /** Consecutive ticks whose policy action was refused, and the last refusal. */
  private refusedRun = 0;
  private lastRefusal = '';
  /** Inferences that threw (each tick held instead). */
  policyErrors = 0;

  constructor(opts: DeployLoopOptions) {
    if (!(opts.controlHz > 0)) throw new RangeError(`controlHz must be > 0, got ${opts.controlHz}`);
    this.o = opts;
    this.period = 1 / opts.controlHz;
  }

  /** Ask the loop to stop after the current tick. */
  stop(reason = 'stopped'): void {
    this.stopRequested = reason;
  }

  /** One control step: read, infer (within budget), decide, send. */
  async tick(): Promise<TickRecord> {
    const { robot, policy, clock } = this.o;
    const start = clock.now();
    const obs = robot.read();
    let action: ArrayLike<number> | null = null;
    let answered = false;
    if (!this.pending) {
      const budget = this.o.policyTimeoutS ?? robot.layer.config.watchdog.timeoutS;
      const policyObs = policyObservation(obs, this.o.instruction);
      // Through a promise, so a policy that throws synchronously is handled like one that rejects.
      const inference = Promise.resolve().then(() => policy.act(policyObs));
      this.pending = inference;
      let fire: (v: typeof TIMED_OUT) => void = () => {};
      const timeout = new Promise<typeof TIMED_OUT>((resolve) => (fire = resolve));
      const timer = clock.setTimer(budget, () => fire(TIMED_OUT));
      let result: ArrayLike<number> | typeof TIMED_OUT;
      try {
        result = await Promise.race([inference, timeout]);
      } catch (err) {
        // A policy that throws gets no command through; the hold is logged with the decision.
        result = TIMED_OUT;
        this.pending = null;
        this.policyErrors++;
        const message = (err as Error).message ?? String(err);
        if (!this.errorMessages.has(message)) {
          this.errorMessages.add(message);
          process.emitWarning(`policy ${policy.name} failed (the arm holds; further identical failures are only counted): ${message}`);
        }
      }
      timer.cancel();
      if (result !== TIMED_OUT) {
        action = result;
        answered = true;
        this.pending = null;
      } else if (this.pending) {
        // Let the late inference finish in the background; its answer is dropped (stale by now).
        inference.then(
          () => void (this.pending = null),
          () => void (this.pending = null),
        );
      }
    }
    robot.send(action, answered ? obs.stamp : null);
    let decision = robot.lastDecision() as Decision;
    // A policy whose every action is refused would hold the arm forever while the run looks alive:
    // after the configured time of consecutive refusals, halt and latch a fault that ends the run.
    const limit = robot.layer.config.refusals;
    if (decision.reason === 'refused') {
      this.refusedRun++;
      this.lastRefusal = decision.refusals.map((f) => `${f.check} ${f.field}=${f.value}`).join(', ');
    } else if (decision.source === 'policy') this.refusedRun = 0;
    const maxRun = Math.max(1, Math.ceil(limit.maxConsecutiveS * this.o.controlHz - 1e-9));
    if (limit.enabled && this.refusedRun >= maxRun && robot.layer.fault === null) {
      robot.latchFault(`policy ${policy.name} refused on ${this.refusedRun} consecutive ticks (${limit.maxConsecutiveS} s; last: ${this.lastRefusal})`);
      decision = robot.lastDecision() as Decision;
    }
    const record: TickRecord = { index: this.index++, start, latencyS: clock.now() - start, policyAnswered: answered, decision };
    this.o.onTick?.(record);
    return record;
  }

  /** Run at the control rate until the duration ends, stop() is called, or the e-stop latches. */
  async run(): Promise<DeploySummary> {
    const { clock } = this.o;
    const latencies: number[] = [];
    let missed = 0;
    const t0 = clock.now();
    let next = t0;
    let reason = '';
    for (;;) {
      if (this.stopRequested) {
        reason = this.stopRequested;
        break;
      }
      if (this.o.durationS !== undefined && clock.now() - t0 >= this.o.durationS - 1e-9) {
        reason = 'duration reached';
        break;
      }
      next += this.period;
      const rec = await this.tick();
      latencies.push(rec.latencyS);
      if (rec.decision.mode === 'halted' && rec.decision.reason === 'estop') {
        reason = 'e-stop engaged (latched: restart to continue)';
        break;
      }
      if (this.o.robot.layer.fault !== null) {
        reason = `fault: ${this.o.robot.layer.fault} (latched: the robot is halted; restart to continue)`;
        break;
      }
      const external = this.o.shouldStop?.();
      if (external) {
        reason = external;
        break;
      }
      if (clock.now() > next + 1e-9) {
        // Count every period the late tick overran, then resynchronise instead of bursting to catch up.
        missed += Math.floor((clock.now() - next) / this.period) + 1;
        next = clock.now();
      } else {
        await clock.sleepUntil(next);
      }
    }
    return { ticks: latencies.length, fault: this.o.robot.layer.fault, missedDeadlines: missed, stopReason: reason, latencies };
  }
}
