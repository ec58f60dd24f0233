/**
 * The simulator as a robot ("sim twin"): the same Robot contract as the ROS 2 bridge, so
 * `evovla deploy --robot sim` runs the exact deploy loop and safety layer a real arm gets. Each
 * `send` advances the simulation by one control period; the loop's clock paces it (real time with
 * the process clock, as fast as the test drives it with a fake clock).
 *
 * Fault injection (for tests and dry runs): freeze observations, engage the e-stop, release the
 * deadman, report wrong joint names. The simulated operator holds the deadman unless told not to.
 */
import type { SimEnv } from '../sim/env.ts';
import type { Clock } from './clock.ts';
import { robotSpecFor } from './spec.ts';
import type { Robot, RobotObservation, RobotSpec, SafetyInputs } from './types.ts';

/** Faults to inject into the twin. */
export interface SimFaults {
  /** read() keeps returning the last observation (a dead sensor stream). */
  freezeObservations?: boolean;
  /** The e-stop input reads engaged. */
  estop?: boolean;
  /** The operator lets go of the deadman (no more confirmations). */
  deadmanReleased?: boolean;
  /** spec() reports these joint names instead of the description's (a mis-configured robot). */
  jointNames?: string[];
}

export interface SimTwinOptions {
  env: SimEnv;
  clock: Clock;
  seed?: number;
  /** Robot description id the task uses (default 'airbot_play'); checked on connect. */
  robot?: string;
}

/** The simulator behind the Robot interface, with fault injection. */
export class SimTwin implements Robot {
  readonly env: SimEnv;
  private readonly clock: Clock;
  private readonly seed: number;
  private readonly baseSpec: RobotSpec;
  private faults: SimFaults = {};
  private latest: RobotObservation | null = null;
  /** Camera images of the last reset/step (when the env renders; see sim/render/env_cameras.ts). */
  private images: RobotObservation['images'];
  private seq = 0;
  private deadmanStamp: number | null = null;
  /** True once the task's episode has ended (success, failure or time limit). */
  episodeEnded = false;
  /** Result of the episode so far. */
  success = false;
  steps = 0;

  constructor(opts: SimTwinOptions) {
    this.env = opts.env;
    this.clock = opts.clock;
    this.seed = opts.seed ?? 0;
    // The description is known before reset; the env's scene robot must be the same one.
    this.baseSpec = robotSpecFor(opts.robot ?? 'airbot_play', opts.env.config.cameras.map((c) => ({ ...c })));
  }

  spec(): RobotSpec {
    const s = this.baseSpec;
    return this.faults.jointNames ? { ...s, jointNames: [...this.faults.jointNames] } : s;
  }

  /** Change the injected faults (merged with the current ones). */
  inject(faults: SimFaults): void {
    this.faults = { ...this.faults, ...faults };
  }

  /** Start the episode. Idempotent: a second call keeps the running episode (the expert policy is built on it). */
  async connect(): Promise<void> {
    if (this.latest) return;
    this.images = this.env.reset({ seed: this.seed }).obs.images;
    if (this.env.robot.id !== this.baseSpec.model) {
      throw new Error(`sim twin: the task's robot is '${this.env.robot.id}', expected '${this.baseSpec.model}'`);
    }
    this.capture();
  }

  /** Take a fresh reading of the simulated robot (stamped now). */
  private capture(): void {
    const s = this.env.state();
    this.latest = { stamp: this.clock.now(), seq: ++this.seq, q: [...s.q], qd: [...s.qd], gripper: s.gripper, images: this.images };
  }

  read(): RobotObservation {
    if (!this.latest) throw new Error('sim twin: read() before connect()');
    // A live sensor stream: every read is a new measurement, stamped now (the sim state only
    // changes on send, as a still arm's joint states only repeat their values).
    if (!this.faults.freezeObservations) this.capture();
    return this.latest;
  }

  safetyInputs(): SafetyInputs {
    if (!this.faults.deadmanReleased) this.deadmanStamp = this.clock.now();
    return { estop: Boolean(this.faults.estop), deadmanStamp: this.deadmanStamp };
  }

  /** Step the simulation one control period toward the command; returns what the controller took. */
  send(action: ArrayLike<number>): number[] {
    if (this.episodeEnded) return Array.from(action, Number);
    const r = this.env.step(action);
    this.images = r.obs.images;
    this.steps++;
    this.success = r.info.success;
    if (r.terminated || r.truncated) this.episodeEnded = true;
    return [...r.info.clampedAction];
  }

  /** Hold the measured position for one control period. */
  halt(): void {
    if (!this.latest || this.episodeEnded) return;
    const s = this.env.state();
    this.send([...s.q, s.gripper]);
  }

  async disconnect(): Promise<void> {
    this.env.free();
  }
}
