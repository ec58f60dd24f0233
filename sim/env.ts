/**
 * The simulation environment: Gymnasium's contract over a Rapier world built from a Task.
 *
 * reset({seed}) samples the task's randomisation from a seeded Rng, builds the scene and the robot
 * (a multibody driven by computed torque), and returns the first observation. step(action) runs
 * physicsHz / controlHz physics steps with the action's targets, then asks the task to evaluate the
 * ground-truth state: success or failure -> terminated; the time limit -> truncated (only).
 * Rewards are a dict of unscaled named terms; the reward is their scaled sum (scales from config).
 * Nothing here reads the wall clock or an unseeded random source.
 */
import RAPIER from '@dimforge/rapier3d-compat';
import { parseEnvConfig, type EnvConfig } from './config.ts';
import { Controller, multibodyProbe, type ControlGains } from './control.ts';
import { poseMul, quatFromRpy, quatMul, quatNormalize } from './math.ts';
import { DEFAULT_FRICTION, PhysicsWorld, type WorldLayout } from './physics.ts';
import { applyPhysicsSample, samplePhysics, type PhysicsSample } from './physics_randomization.ts';
import { Rng } from './rng.ts';
import { getRobot } from './robot/index.ts';
import type { RobotDescription } from './robot/description.ts';
import type { Kinematics } from './robot/kinematics.ts';
import type { Evaluation, ExpertTools, Randomization, Task } from './task.ts';
import type {
  Action,
  ActionMode,
  CameraFrame,
  ContactInfo,
  Env,
  EnvSnapshot,
  Observation,
  ResetResult,
  RewardTerms,
  SimState,
  StepInfo,
  StepResult,
  Vec3,
} from './types.ts';

export type { EnvConfig } from './config.ts';
export { ConfigError, loadEnvConfig, parseEnvConfig } from './config.ts';

let rapierInit: Promise<typeof RAPIER> | null = null;

/** Initialise Rapier's WASM module once per process (or worker). */
export function loadRapier(): Promise<typeof RAPIER> {
  rapierInit ??= RAPIER.init().then(() => RAPIER);
  return rapierInit;
}

/** A bad action: names the field, the value and what was expected. */
export class ActionError extends Error {
  override name = 'ActionError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** Produces camera images for an observation; set by a rendering adapter (sim never renders). */
export type ObservationHook = (state: SimState, env: SimEnv) => Record<string, CameraFrame> | undefined;

/** Per-field names of the action vector in each mode (used in errors and `info.clamped`). */
export function actionFieldNames(robot: RobotDescription, mode: ActionMode): string[] {
  return mode === 'joint'
    ? [...robot.armJoints, 'gripper']
    : ['dx', 'dy', 'dz', 'droll', 'dpitch', 'dyaw', 'gripper'];
}

const SNAPSHOT_VERSION = 1;

/** A joint faster than this multiple of its speed limit is a simulator fault. */
export const SIM_FAULT_SPEED_RATIO = 1.5;
/** A joint further than this past its range (rad or m) is a simulator fault. */
export const SIM_FAULT_JOINT_EXCESS = 0.05;
/** A finger further than this outside its travel (m) is a simulator fault. */
export const SIM_FAULT_FINGER_EXCESS = 0.002;

/** Smallest normal impulse (N s) of a contact point that counts as touching. */
const CONTACT_IMPULSE = 1e-7;

interface SnapshotMeta {
  version: number;
  taskId: string;
  robot: string;
  layout: WorldLayout;
  handles: { links: number[]; objects: number[] };
  controller: { q: number[]; qTarget: number[]; gripperTarget: number; squeeze?: number[] };
  step: number;
  physicsSteps: number;
  /** Furthest ground-truth stage seen this episode (the stage-progress reward pays only beyond it). */
  maxStage: number;
  done: boolean;
  rng: { s: [number, number, number, number]; spareNormal: number | null };
  randomization: Randomization;
  lastInfo: StepInfo;
  /** Absent in snapshots of envs without physics randomisation. */
  physics?: PhysicsSample | null;
  /** Actions waiting out the action latency, oldest first. */
  pendingActions?: number[][];
}

/** Gymnasium-style env over one Task. Create with createEnv(). */
export class SimEnv implements Env {
  readonly task: Task;
  readonly config: Readonly<EnvConfig>;
  readonly actionMode: ActionMode;
  readonly maxSteps: number;
  /** This episode's randomisation (null before the first reset). */
  randomization: Randomization | null = null;
  /** This episode's physics draw (null when `config.physicsRandomization` is absent). */
  physicsSample: PhysicsSample | null = null;
  /** Actions given but not yet applied (action latency), oldest first. */
  private pendingActions: number[][] = [];
  private readonly R: typeof RAPIER;
  private pw: PhysicsWorld | null = null;
  private ctrl: Controller | null = null;
  private rng = new Rng(0);
  private stepCount = 0;
  private physicsSteps = 0;
  private maxStage = 0;
  private done = false;
  private lastInfo: StepInfo | null = null;
  private obsHook: ObservationHook | null = null;
  private readonly substeps: number;
  /** Physics steps per 1 / physicsHz now (graspSubsteps while the fingers pinch an object, else 1). */
  private split = 1;
  /** Controller gains per split, built on first use. */
  private gainsBySplit = new Map<number, ControlGains>();

  constructor(R: typeof RAPIER, task: Task, config: Readonly<EnvConfig>) {
    this.R = R;
    this.task = task;
    this.config = config;
    this.actionMode = config.actionMode;
    this.maxSteps = config.maxSteps ?? task.maxSteps;
    this.substeps = config.physicsHz / config.controlHz;
  }

  /** Attach (or clear with null) a hook that renders images into each observation. */
  setObservationHook(hook: ObservationHook | null): void {
    this.obsHook = hook;
  }

  /** The robot of the current scene. */
  get robot(): RobotDescription {
    return this.world().robot;
  }

  /** Length of the action vector (arm joints + 1 gripper). */
  get actionSize(): number {
    return this.pw ? this.pw.robot.armJoints.length + 1 : 7;
  }

  /** Names of the action fields, in order. */
  actionFields(): string[] {
    return actionFieldNames(this.world().robot, this.actionMode);
  }

  private world(): PhysicsWorld {
    if (!this.pw) throw new Error('env has no world yet: call reset() first');
    return this.pw;
  }

  private controller(): Controller {
    if (!this.ctrl) throw new Error('env has no world yet: call reset() first');
    return this.ctrl;
  }

  /** Kinematics of the current scene's robot at its base (for experts and IK-based actions). */
  kinematics(): Kinematics {
    return this.world().kin;
  }

  /** Read-only robot kinematics for scripted experts, in the world frame of the current scene. */
  expertTools(): ExpertTools {
    const kin = this.kinematics();
    return {
      ik: (target, seed) => {
        const r = kin.ik(target, seed);
        return { q: r.q, ok: r.ok, posErr: r.posErr, rotErr: r.rotErr };
      },
      fk: (q) => kin.fk(q),
      actionMode: this.actionMode,
      controlDt: 1 / this.config.controlHz,
    };
  }

  reset(opts: { seed?: number } = {}): ResetResult {
    if (opts.seed !== undefined) {
      if (!Number.isInteger(opts.seed)) throw new TypeError(`reset: seed must be an integer, got ${String(opts.seed)}`);
      this.rng = new Rng(opts.seed);
    }
    const randomization = this.task.randomize(this.rng);
    let scene = this.task.buildScene(randomization);
    const robot = getRobot(scene.robot);
    // Physics draws come from a forked stream: turning them on leaves the scene layout as it was.
    const physCfg = this.config.physicsRandomization;
    this.physicsSample = physCfg ? samplePhysics(this.rng.fork('physics'), physCfg, scene, robot.armJoints.length) : null;
    if (this.physicsSample) scene = applyPhysicsSample(scene, this.physicsSample, DEFAULT_FRICTION);
    this.pendingActions = [];
    this.pw?.free();
    this.pw = PhysicsWorld.build(this.R, robot, {
      scene,
      physicsHz: this.config.physicsHz,
      solverIterations: this.config.solverIterations,
    });
    this.gainsBySplit.clear();
    this.split = 1;
    this.ctrl = new Controller(this.pw, this.gainsFor(1));
    this.randomization = randomization;
    this.stepCount = 0;
    this.physicsSteps = 0;
    this.done = false;
    const state = this.readState();
    const ev = this.task.evaluate(state, randomization);
    this.maxStage = ev.stage;
    const info = stepInfo(state, ev, { success: 0, stageProgress: 0 }, this.currentCommand(), []);
    this.lastInfo = info;
    return { obs: this.observe(state), info };
  }

  /** Controller gains for physics steps of 1 / (physicsHz * split) s. */
  private gains(robot: RobotDescription, split: number): ControlGains {
    const dt = 1 / (this.config.physicsHz * split);
    const probe = multibodyProbe(this.R, this.config.solverIterations, dt);
    return {
      armWn: this.config.armWn,
      fingerWn: this.config.fingerWn,
      gripperForce: (this.config.gripperForce ?? robot.gripper.force) * (this.physicsSample?.actuatorStrengthScale ?? 1),
      effortScale: this.physicsSample?.actuatorStrengthScale ?? 1,
      extraDamping: this.physicsSample?.jointDamping,
      forceGain: probe.gain,
      jointDamping: probe.damping,
      dt,
      toolSpeed: this.config.toolSpeedLimit,
    };
  }

  private gainsFor(split: number): ControlGains {
    let g = this.gainsBySplit.get(split);
    if (!g) {
      g = this.gains(this.world().robot, split);
      this.gainsBySplit.set(split, g);
    }
    return g;
  }

  /** Keep the controller's targets (an ee_delta hold is a zero delta, which the IK would not reproduce exactly); returns them in action units. */
  private holdCommand(): number[] {
    return this.currentCommand();
  }

  /** The command currently held by the controller, in action units. */
  private currentCommand(): number[] {
    const c = this.controller();
    return this.actionMode === 'joint' ? [...c.qTarget, c.gripperTarget] : [0, 0, 0, 0, 0, 0, c.gripperTarget];
  }

  step(action: Action): StepResult {
    const pw = this.world();
    const ctrl = this.controller();
    if (this.done) throw new Error('step() after the episode ended (terminated or truncated): call reset() first');
    const fields = actionFieldNames(pw.robot, this.actionMode);
    this.validateAction(action, fields);
    const clamped: string[] = [];
    let clampedAction: number[];
    const latency = this.physicsSample?.actionLatencySteps ?? 0;
    if (latency > 0) {
      // The action reaches the controller `latency` steps late; until then the last command holds.
      this.pendingActions.push(Array.from(action));
      const due = this.pendingActions.length > latency ? this.pendingActions.shift()! : null;
      clampedAction = due ? this.applyAction(due, fields, clamped) : this.holdCommand();
    } else {
      clampedAction = this.applyAction(action, fields, clamped);
    }
    // While the fingers pinch an object, each physics step runs as graspSubsteps shorter ones (the
    // decision reads the last control step's contacts, which are part of the state).
    const split = this.config.graspSubsteps > 1 && this.lastInfo && pinchedObject(this.lastInfo.state.contacts) !== null ? this.config.graspSubsteps : 1;
    if (split !== this.split) {
      this.split = split;
      ctrl.gains = this.gainsFor(split);
      pw.setTimestep(1 / (this.config.physicsHz * split));
    }
    for (let s = 0; s < this.substeps * split; s++) {
      ctrl.apply();
      pw.step();
      ctrl.read();
    }
    this.stepCount++;
    this.physicsSteps += this.substeps;
    const state = this.readState();
    const rand = this.randomization as Randomization;
    const ev = this.task.evaluate(state, rand);
    // Progress pays only for stages beyond the furthest one reached so far. The ground-truth stage
    // is memoryless and can dip for a step (an object bounced while another is set on it); paying
    // the difference to the previous step would turn every such dip into a -k/+k reward pair.
    const rewardTerms = { success: ev.success ? 1 : 0, stageProgress: Math.max(0, ev.stage - this.maxStage) };
    this.maxStage = Math.max(this.maxStage, ev.stage);
    let reward = 0;
    for (const [k, v] of Object.entries(rewardTerms)) reward += (this.config.rewardScales[k] ?? 0) * v;
    const simFault = this.healthCheck(state);
    const terminated = !simFault && (ev.success || ev.failure);
    const truncated = simFault !== null || (!terminated && this.stepCount >= this.maxSteps);
    this.done = terminated || truncated;
    const info = stepInfo(state, ev, rewardTerms, clampedAction, clamped);
    if (simFault) info.simFault = simFault;
    this.lastInfo = info;
    return { obs: this.observe(state), reward, terminated, truncated, info };
  }

  /**
   * What is broken in `state`, or null: a non-finite value, a joint over SIM_FAULT_SPEED_RATIO x
   * its speed limit or more than SIM_FAULT_JOINT_EXCESS past its range, a finger more than
   * SIM_FAULT_FINGER_EXCESS outside its travel.
   */
  private healthCheck(state: SimState): string | null {
    const pw = this.world();
    const ctrl = this.controller();
    const robot = pw.robot;
    const limits = new Map(robot.joints.map((j) => [j.name, j.limit!]));
    for (let i = 0; i < robot.armJoints.length; i++) {
      const name = robot.armJoints[i];
      const lim = limits.get(name)!;
      const q = state.q[i];
      const qd = state.qd[i];
      if (!Number.isFinite(q) || !Number.isFinite(qd)) return `${name} is not finite (q ${q}, speed ${qd})`;
      if (Math.abs(qd) > SIM_FAULT_SPEED_RATIO * lim.velocity) {
        return `${name} speed ${Math.abs(qd).toFixed(2)} rad/s > ${SIM_FAULT_SPEED_RATIO} x ${lim.velocity}`;
      }
      const past = Math.max(lim.lower - q, q - lim.upper);
      if (past > SIM_FAULT_JOINT_EXCESS) {
        return `${name} at ${q.toFixed(3)} rad is ${past.toFixed(3)} rad outside ${lim.lower}..${lim.upper}`;
      }
    }
    for (let i = 0; i < robot.fingerJoints.length; i++) {
      const name = robot.fingerJoints[i];
      const lim = limits.get(name)!;
      const x = ctrl.finger[i];
      if (!Number.isFinite(x) || !Number.isFinite(ctrl.fingerVel[i])) return `${name} is not finite (${x})`;
      const past = Math.max(lim.lower - x, x - lim.upper);
      if (past > SIM_FAULT_FINGER_EXCESS) {
        return `${name} at ${(x * 1000).toFixed(1)} mm is ${(past * 1000).toFixed(1)} mm outside its travel ${lim.lower * 1000}..${lim.upper * 1000} mm`;
      }
    }
    for (const [name, pose] of Object.entries(state.objects)) {
      const v = state.objectVel[name];
      if (![...pose.p, ...pose.q, ...v].every(Number.isFinite)) return `object '${name}' pose or velocity is not finite`;
    }
    return null;
  }

  private validateAction(action: Action, fields: string[]): void {
    if (action === null || typeof action !== 'object' || typeof (action as ArrayLike<number>).length !== 'number') {
      throw new ActionError('action', `action: expected an array of ${fields.length} numbers (${fields.join(', ')}), got ${String(action)}`);
    }
    if (action.length !== fields.length) {
      throw new ActionError(
        'action',
        `action: expected ${fields.length} numbers (${fields.join(', ')}) for actionMode '${this.actionMode}', got ${action.length}`,
      );
    }
    for (let i = 0; i < fields.length; i++) {
      const v = action[i];
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new ActionError(fields[i], `action[${i}] (${fields[i]}): expected a finite number, got ${String(v)}`);
      }
    }
  }

  /** Turn an action into controller targets; record clamped fields. Returns the action as applied. */
  private applyAction(action: Action, fields: string[], clamped: string[]): number[] {
    const pw = this.world();
    const ctrl = this.controller();
    const n = pw.robot.armJoints.length;
    const { min: gmin, max: gmax } = pw.robot.gripper;
    const out = new Array<number>(n + 1);
    let g = action[n];
    if (g < gmin || g > gmax) {
      g = Math.min(gmax, Math.max(gmin, g));
      clamped.push('gripper');
    }
    out[n] = g;
    ctrl.gripperTarget = g;
    if (this.actionMode === 'joint') {
      for (let i = 0; i < n; i++) {
        let v = action[i];
        const lo = pw.kin.lower[i];
        const hi = pw.kin.upper[i];
        if (v < lo || v > hi) {
          v = Math.min(hi, Math.max(lo, v));
          clamped.push(fields[i]);
        }
        out[i] = v;
        ctrl.qTarget[i] = v;
      }
      return out;
    }
    // ee_delta: deltas apply to the pose the controller is currently commanded to (not the measured
    // pose), so a zero action holds still without drift.
    const d = new Array<number>(6);
    for (let i = 0; i < 6; i++) {
      const lim = i < 3 ? this.config.eeMaxTranslation : this.config.eeMaxRotation;
      let v = action[i];
      if (Math.abs(v) > lim) {
        v = Math.sign(v) * lim;
        clamped.push(fields[i]);
      }
      d[i] = v;
      out[i] = v;
    }
    const current = pw.kin.fk(ctrl.qTarget);
    const target = {
      p: [current.p[0] + d[0], current.p[1] + d[1], current.p[2] + d[2]] as Vec3,
      q: quatNormalize(quatMul(quatFromRpy(d[3], d[4], d[5]), current.q)),
    };
    // No random restarts: a nearby solution, never a jump to another arm configuration.
    const r = pw.kin.ik(target, ctrl.qTarget, { restarts: 0, maxIterations: 60 });
    if (!r.ok) clamped.push('ee_pose');
    for (let i = 0; i < n; i++) ctrl.qTarget[i] = r.q[i];
    return out;
  }

  private observe(state: SimState): Observation {
    const proprio = new Float32Array(state.q.length + 1);
    proprio.set(state.q);
    proprio[state.q.length] = state.gripper;
    const obs: Observation = { proprio, instruction: this.task.instruction };
    if (this.obsHook) {
      const images = this.obsHook(state, this);
      if (images) obs.images = images;
    }
    return obs;
  }

  /** The ground-truth state after the last reset or step. */
  state(): SimState {
    if (!this.lastInfo) throw new Error('env has no state yet: call reset() first');
    return this.lastInfo.state;
  }

  private readState(): SimState {
    const pw = this.world();
    const ctrl = this.controller();
    const robot = pw.robot;
    const links: SimState['links'] = {};
    robot.links.forEach((l, i) => (links[l.name] = ctrl.linkPose(i)));
    const objects: SimState['objects'] = {};
    const objectVel: SimState['objectVel'] = {};
    pw.objectNames.forEach((name, i) => {
      objects[name] = pw.objectPose(i);
      const v = pw.objectBodies[i].linvel();
      objectVel[name] = [v.x, v.y, v.z];
    });
    const ee = poseMul(links[robot.tcp.link], robot.tcp.pose);
    const fingers = Array.from(ctrl.finger);
    const gripper = fingers.length > 0 ? fingers.reduce((a, b) => a + b, 0) / fingers.length : 0;
    return {
      time: this.physicsSteps / this.config.physicsHz,
      step: this.stepCount,
      q: Array.from(ctrl.q),
      qd: Array.from(ctrl.qd),
      gripper,
      links,
      ee,
      eeVel: this.toolVelocity(ee.p),
      objects,
      objectVel,
      contacts: this.contacts(),
    };
  }

  /** Velocity of the world point `p` carried by the tool link's body (v_com + w x (p - com)). */
  private toolVelocity(p: Vec3): Vec3 {
    const pw = this.world();
    const body = pw.linkBodies[pw.robot.links.findIndex((l) => l.name === pw.robot.tcp.link)];
    const v = body.linvel();
    const w = body.angvel();
    const c = body.worldCom();
    const rx = p[0] - c.x, ry = p[1] - c.y, rz = p[2] - c.z;
    return [v.x + (w.y * rz - w.z * ry), v.y + (w.z * rx - w.x * rz), v.z + (w.x * ry - w.y * rx)];
  }

  /** Robot-link/object contacts of the last physics step, with the largest normal impulse. */
  private contacts(): ContactInfo[] {
    const pw = this.world();
    const world = pw.world;
    const found = new Map<string, ContactInfo>();
    const fingerLinks = new Set(pw.links.filter((l) => l.isFinger).map((l) => l.name));
    for (const h of pw.robotColliderHandles) {
      const c = world.getCollider(h);
      const link = pw.colliderOwner.get(h)!.name;
      world.contactPairsWith(c, (other) => {
        const owner = pw.colliderOwner.get(other.handle);
        if (!owner || owner.kind !== 'object') return;
        let touching = false;
        let impulse = 0;
        world.contactPair(c, other, (manifold) => {
          // Manifolds also keep speculative points near, but not at, contact (and their reported
          // distance is not the current gap): a point counts as touching when the solver pushed
          // through it this step.
          const n = manifold.numContacts();
          for (let i = 0; i < n; i++) {
            const imp = manifold.contactImpulse(i);
            if (imp > CONTACT_IMPULSE) {
              touching = true;
              impulse = Math.max(impulse, imp);
            }
          }
        });
        if (!touching) return;
        const key = `${link}\u0000${owner.name}`;
        const prev = found.get(key);
        if (prev) prev.impulse = Math.max(prev.impulse, impulse);
        else found.set(key, { link, object: owner.name, impulse, finger: fingerLinks.has(link) });
      });
    }
    return [...found.values()];
  }

  snapshot(): EnvSnapshot {
    const pw = this.world();
    const meta: SnapshotMeta = {
      version: SNAPSHOT_VERSION,
      taskId: this.task.id,
      robot: pw.robot.id,
      layout: structuredClone(pw.layout),
      handles: pw.handles(),
      controller: this.controller().getState(),
      step: this.stepCount,
      physicsSteps: this.physicsSteps,
      maxStage: this.maxStage,
      done: this.done,
      rng: this.rng.exportState(),
      randomization: structuredClone(this.randomization as Randomization),
      lastInfo: structuredClone(this.lastInfo as StepInfo),
      physics: structuredClone(this.physicsSample),
      pendingActions: structuredClone(this.pendingActions),
    };
    return { kind: 'evovla.env-snapshot', data: pw.world.takeSnapshot(), meta };
  }

  restore(snapshot: EnvSnapshot): void {
    if (!snapshot || snapshot.kind !== 'evovla.env-snapshot') {
      throw new TypeError(`restore: expected an 'evovla.env-snapshot', got ${JSON.stringify((snapshot as { kind?: unknown })?.kind)}`);
    }
    const meta = snapshot.meta as SnapshotMeta;
    if (meta.version !== SNAPSHOT_VERSION) throw new Error(`restore: snapshot version ${meta.version}, expected ${SNAPSHOT_VERSION}`);
    if (meta.taskId !== this.task.id) throw new Error(`restore: snapshot is of task '${meta.taskId}', this env runs '${this.task.id}'`);
    const robot = getRobot(meta.robot);
    const layout = structuredClone(meta.layout);
    const pw = PhysicsWorld.fromSnapshot(this.R, robot, layout, snapshot.data, meta.handles);
    this.pw?.free();
    this.pw = pw;
    this.physicsSample = structuredClone(meta.physics ?? null);
    this.pendingActions = structuredClone(meta.pendingActions ?? []);
    // The snapshot's world may carry a refined timestep: start from the plain one, and let the next
    // step choose again from the restored contacts, as the original run did.
    this.gainsBySplit.clear();
    this.split = 1;
    pw.setTimestep(1 / this.config.physicsHz);
    this.ctrl = new Controller(pw, this.gainsFor(1));
    this.ctrl.setState(meta.controller);
    this.stepCount = meta.step;
    this.physicsSteps = meta.physicsSteps;
    this.maxStage = meta.maxStage;
    this.done = meta.done;
    this.rng.importState(meta.rng);
    this.randomization = structuredClone(meta.randomization);
    this.lastInfo = structuredClone(meta.lastInfo);
  }

  /**
   * FNV-1a (64-bit, as two 32-bit lanes) over every body's position, rotation and velocities as
   * float64 bytes, the controller's targets and the step counter: equal hashes mean bit-identical
   * physics state.
   */
  stateHash(): string {
    const pw = this.world();
    const ctrl = this.controller();
    const bodies = [...pw.linkBodies, ...pw.objectBodies];
    const buf = new Float64Array(bodies.length * 13 + ctrl.qTarget.length + 2);
    let o = 0;
    for (const b of bodies) {
      const t = b.translation();
      const r = b.rotation();
      const v = b.linvel();
      const w = b.angvel();
      buf[o++] = t.x; buf[o++] = t.y; buf[o++] = t.z;
      buf[o++] = r.x; buf[o++] = r.y; buf[o++] = r.z; buf[o++] = r.w;
      buf[o++] = v.x; buf[o++] = v.y; buf[o++] = v.z;
      buf[o++] = w.x; buf[o++] = w.y; buf[o++] = w.z;
    }
    for (const x of ctrl.qTarget) buf[o++] = x;
    buf[o++] = ctrl.gripperTarget;
    buf[o++] = this.stepCount;
    return fnv1a64(new Uint8Array(buf.buffer));
  }

  free(): void {
    this.pw?.free();
    this.pw = null;
    this.ctrl = null;
  }
}

/** FNV-1a 64-bit of a byte array, as 16 hex digits. */
export function fnv1a64(bytes: Uint8Array): string {
  // 64-bit arithmetic on two 32-bit halves (prime 0x100000001b3).
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  for (let i = 0; i < bytes.length; i++) {
    lo ^= bytes[i];
    // (hi, lo) *= 0x100000001b3 = (1 << 40) + 0x1b3
    const loMul = lo * 0x1b3;
    const carry = Math.floor(loMul / 0x100000000);
    const newLo = loMul >>> 0;
    const newHi = (Math.imul(hi, 0x1b3) + carry + ((lo << 8) >>> 0)) >>> 0;
    hi = newHi;
    lo = newLo;
  }
  return (hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 0).toString(16).padStart(8, '0');
}

/**
 * Create an env for `task`. `config` is validated (unknown keys and bad values are errors naming
 * the key); `source` names where it came from for those errors.
 */
export async function createEnv(task: Task, config: Partial<EnvConfig> = {}, source = 'env config'): Promise<SimEnv> {
  const cfg = parseEnvConfig(config, source);
  const R = await loadRapier();
  return new SimEnv(R, task, cfg);
}

/** The object two finger links both touched in `contacts` (a pinch), or null. */
export function pinchedObject(contacts: readonly ContactInfo[]): string | null {
  for (let i = 0; i < contacts.length; i++) {
    const a = contacts[i];
    if (!a.finger) continue;
    for (let k = i + 1; k < contacts.length; k++) {
      const b = contacts[k];
      if (b.finger && b.object === a.object && b.link !== a.link) return a.object;
    }
  }
  return null;
}

/** The info of a reset or step: ground truth, the task's verdict, reward terms and clamping. */
function stepInfo(state: SimState, ev: Evaluation, rewardTerms: RewardTerms, clampedAction: number[], clamped: string[]): StepInfo {
  return { state, predicates: ev.predicates, stage: ev.stage, success: ev.success, failure: ev.failure, rewardTerms, clampedAction, clamped };
}
