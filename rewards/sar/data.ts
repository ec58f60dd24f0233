/**
 * Labelled frames for training and judging the SAR scorer, all made in the simulator:
 *
 * - demo frames: the scripted expert's episodes, every frame labelled with each stage's
 *   ground-truth predicate and the ground-truth stage;
 * - near-miss STATES: for each stage, the demo is restored `before` steps ahead of the stage's
 *   first completion and replayed with one perturbation of the expert's own actions:
 *     offset  every tool target moved 2-3 cm sideways (hover beside, lower beside the block,
 *             set the object down off its target),
 *     open    the gripper kept open (left open at the grasp, released before lowering),
 *     close   the gripper closed (closes on air above or beside the object),
 *     freeze  the arm's target held 8 steps short of completion (lift stopped short, lowered not
 *             far enough; 3 steps proved too few: the arm's lag still carried it over the line);
 *   each frame is labelled by the ground-truth predicates (a perturbation that still completes
 *   the stage yields positives, honestly labelled);
 * - off-task STATES ('wander'): the demo restored at a random step and the arm driven to random
 *   joint targets, as a failing learner drives it (far from the task, gripper closed or open),
 *   labelled by the ground truth;
 * - the hacking probe: a scripted near-miss policy that does the first stage for real and then
 *   replays the expert 3 cm to the side for the rest of the episode (reaches beside the object,
 *   closes on air, lifts nothing, lowers beside the target, opens).
 *
 * Images come from a `FrameRenderer` the caller supplies (the CLI wires sim/render's cameras), so
 * rewards/ imports no renderer. Every random choice comes from a seeded Rng.
 */
import type { SimEnv } from '../../sim/env.ts';
import type { Rng } from '../../sim/rng.ts';
import type { Randomization, Task } from '../../sim/task.ts';
import type { EnvSnapshot, Pose, SimState, StepInfo } from '../../sim/types.ts';
import type { FrameImages } from './scorer.ts';

/** Renders both SAR cameras for a state of the current episode. */
export interface FrameRenderer {
  /** Called once per episode before its frames: builds that episode's scene. */
  setScene(randomization: Randomization): void;
  render(state: SimState): FrameImages;
}

/** A perturbation of the expert's actions. */
export type Perturbation = 'offset' | 'open' | 'close' | 'freeze';
/** All perturbations, in the order they are made. */
export const PERTURBATIONS: readonly Perturbation[] = ['offset', 'open', 'close', 'freeze'];

/** Steps before a stage's completion at which 'freeze' holds the arm's target. */
const FREEZE_LEAD = 8;

/** One labelled frame. */
export interface LabelledFrame {
  images: FrameImages;
  /** Per stage: 1 when its ground-truth predicate holds in this frame. */
  done: Uint8Array;
  /** Ground-truth stage index. */
  gtStage: number;
  /** Predicates by stage name (for hallucination judgements). */
  predicates: Record<string, boolean>;
  seed: number;
  step: number;
  source: 'demo' | 'near_miss' | 'probe';
  /** The stage a near-miss replay is about (-1 for demo frames). */
  targetStage: number;
  /**
   * Empty-handed replays only: the earliest stage a gate could still be waiting on in this frame
   * (the reach before the missed grasp). A gate stuck on any stage from here to `targetStage`
   * watches this frame, so training asks about all of them (rewards/sar/train.ts).
   */
  contextFrom?: number;
  /**
   * Empty-handed replays only: the stages from `contextFrom` on that the expert had done at this
   * step (their predicate held in its frame) and that the ground truth denies here: the same arm
   * motion with the object left behind. The hardest negatives for a stuck gate (train.ts).
   */
  expertOnly?: number[];
  perturbation: Perturbation | 'wander' | 'none';
}

/** One expert episode with everything needed to replay from any step. */
export interface DemoRecord {
  seed: number;
  randomization: Randomization;
  /** infos[t]: the ground truth after t steps (t = 0 is the reset). */
  infos: StepInfo[];
  /** actions[t]: the action applied at state t. */
  actions: Float32Array[];
  /** The env at every SNAPSHOT_EVERY-th state (snapshots.get(t)); `restoreDemo` replays from there. */
  snapshots: Map<number, EnvSnapshot>;
  /** First step at which each stage's predicate held (-1: never). */
  firstTrue: number[];
  success: boolean;
}

/** Steps between kept snapshots: a long task's every-step snapshots would take gigabytes. */
const SNAPSHOT_EVERY = 8;

/** Puts `env` in the demo's state after `t` steps: the nearest earlier snapshot, then the recorded actions. */
export function restoreDemo(env: SimEnv, demo: DemoRecord, t: number): void {
  const from = Math.floor(t / SNAPSHOT_EVERY) * SNAPSHOT_EVERY;
  const snap = demo.snapshots.get(from);
  if (!snap) throw new RangeError(`demo of seed ${demo.seed} has no state ${t} (it has ${demo.infos.length} states)`);
  env.restore(snap);
  for (let i = from; i < t; i++) env.step(demo.actions[i]);
}

/** Runs the task's expert from `seed`, keeping a snapshot every SNAPSHOT_EVERY steps. */
export function recordDemo(env: SimEnv, task: Task, seed: number): DemoRecord {
  const reset = env.reset({ seed });
  const randomization = structuredClone(env.randomization!);
  const expert = task.expert(env.randomization!, env.expertTools());
  const infos: StepInfo[] = [reset.info];
  const actions: Float32Array[] = [];
  const snapshots = new Map<number, EnvSnapshot>([[0, env.snapshot()]]);
  const firstTrue: number[] = task.stages.map((s) => (reset.info.predicates[s.name] ? 0 : -1));
  let info = reset.info;
  let success = false;
  for (;;) {
    let action: Float32Array;
    try {
      action = Float32Array.from(expert.act(info.state).action as ArrayLike<number>);
    } catch (err) {
      // The expert gave up (unreachable target): the demo ends there, still usable up to that step.
      if ((err as Error).name === 'ExpertIkError') break;
      throw err;
    }
    const res = env.step(action);
    actions.push(action);
    info = res.info;
    infos.push(info);
    if ((infos.length - 1) % SNAPSHOT_EVERY === 0) snapshots.set(infos.length - 1, env.snapshot());
    task.stages.forEach((s, k) => {
      if (firstTrue[k] < 0 && info.predicates[s.name]) firstTrue[k] = infos.length - 1;
    });
    success = info.success;
    if (res.terminated || res.truncated) break;
  }
  return { seed, randomization, infos, actions, snapshots, firstTrue, success };
}

function labels(task: Task, info: StepInfo): { done: Uint8Array; predicates: Record<string, boolean> } {
  const done = new Uint8Array(task.stages.length);
  const predicates: Record<string, boolean> = {};
  task.stages.forEach((s, k) => {
    predicates[s.name] = info.predicates[s.name] === true;
    done[k] = predicates[s.name] ? 1 : 0;
  });
  return { done, predicates };
}

/** Frames of a recorded demo, every `stride`-th step (the demo's scene must be set on the renderer). */
export function demoFrames(task: Task, demo: DemoRecord, renderer: FrameRenderer, stride: number): LabelledFrame[] {
  renderer.setScene(demo.randomization);
  const out: LabelledFrame[] = [];
  for (let t = 0; t < demo.infos.length; t += stride) {
    const info = demo.infos[t];
    out.push({ images: renderer.render(info.state), ...labels(task, info), gtStage: info.stage, seed: demo.seed, step: t, source: 'demo', targetStage: -1, perturbation: 'none' });
  }
  return out;
}

/** Settings of the perturbed replays. */
export interface NearMissOptions {
  before: number;
  after: number;
  offsetMin: number;
  offsetMax: number;
}

/** A replay step kept for a frame: the ground truth after it and its step number. */
interface ReplayStep {
  info: StepInfo;
  step: number;
}

/**
 * A perturbed replay of the demo's actions from step `t0`, simulated only: the steps where
 * `keep(i)` says so. After each step `judge` may answer 'reject' (null: nothing is rendered yet, so
 * a rejected replay costs physics alone) or 'stop' (the replay ends before that step).
 */
function replaySteps(
  env: SimEnv,
  demo: DemoRecord,
  t0: number,
  steps: number,
  transform: (action: Float32Array, t: number) => Float32Array,
  keep: (i: number) => boolean,
  judge: (info: StepInfo, i: number) => 'reject' | 'stop' | false = () => false,
): ReplayStep[] | null {
  restoreDemo(env, demo, t0);
  const out: ReplayStep[] = [];
  for (let i = 0; i < steps; i++) {
    const t = t0 + i;
    const recorded = demo.actions[Math.min(t, demo.actions.length - 1)];
    const res = env.step(transform(recorded, t));
    const verdict = judge(res.info, i);
    if (verdict === 'reject') return null;
    if (verdict === 'stop') break;
    if (keep(i)) out.push({ info: res.info, step: t + 1 });
    if (res.terminated) break;
  }
  return out;
}

/** Renders and labels the kept steps of a replay. */
function replayFrames(task: Task, demo: DemoRecord, renderer: FrameRenderer, kept: readonly ReplayStep[], meta: Pick<LabelledFrame, 'source' | 'targetStage' | 'perturbation'>): LabelledFrame[] {
  return kept.map(({ info, step }) => ({ images: renderer.render(info.state), ...labels(task, info), gtStage: info.stage, seed: demo.seed, step, ...meta }));
}

/** A perturbed replay of the demo's actions from step `t0`, rendering frames where `keep(i)` says so. */
function perturbedReplay(
  env: SimEnv,
  task: Task,
  demo: DemoRecord,
  renderer: FrameRenderer,
  t0: number,
  steps: number,
  transform: (action: Float32Array, t: number) => Float32Array,
  keep: (i: number) => boolean,
  meta: Pick<LabelledFrame, 'source' | 'targetStage' | 'perturbation'>,
): LabelledFrame[] {
  return replayFrames(task, demo, renderer, replaySteps(env, demo, t0, steps, transform, keep)!, meta);
}

/** Moves an action's tool target sideways by (dx, dy) through FK and IK (the gripper is kept). */
function offsetAction(env: SimEnv, action: Float32Array, dx: number, dy: number): Float32Array {
  const tools = env.expertTools();
  const q = Array.from(action.subarray(0, 6));
  const pose: Pose = tools.fk(q);
  const moved: Pose = { p: [pose.p[0] + dx, pose.p[1] + dy, pose.p[2]], q: pose.q };
  const r = tools.ik(moved, q);
  const out = Float32Array.from(action);
  out.set(r.q.slice(0, 6), 0);
  return out;
}

/** A perturbation as an action transform for a replay aimed at a stage completing at step `tk`. */
function transformFor(env: SimEnv, demo: DemoRecord, p: Perturbation, tk: number, rng: Rng, opts: NearMissOptions): (a: Float32Array, t: number) => Float32Array {
  switch (p) {
    case 'offset': {
      const angle = rng.uniform(0, 2 * Math.PI);
      const d = rng.uniform(opts.offsetMin, opts.offsetMax);
      const dx = d * Math.cos(angle);
      const dy = d * Math.sin(angle);
      return (a) => offsetAction(env, a, dx, dy);
    }
    case 'open':
      return (a) => {
        const out = Float32Array.from(a);
        out[6] = Math.max(out[6], 0.035);
        return out;
      };
    case 'close':
      return (a) => {
        const out = Float32Array.from(a);
        out[6] = 0;
        return out;
      };
    case 'freeze': {
      const hold = demo.actions[Math.max(0, Math.min(demo.actions.length - 1, tk - FREEZE_LEAD))];
      return (a, t) => (t >= tk - FREEZE_LEAD ? Float32Array.from(hold) : a);
    }
  }
}

/** One perturbed replay around one stage's completion. */
export interface NearMissSegment {
  stage: number;
  perturbation: Perturbation;
  frames: LabelledFrame[];
}

/**
 * Near-miss replays of `demo` for each stage that completed in it and each perturbation, keeping
 * every `stride`-th frame. Returns segments one at a time (a generator) so an evaluator can score
 * and drop each segment's images before the next is rendered.
 */
export function* nearMissSegments(
  env: SimEnv,
  task: Task,
  demo: DemoRecord,
  renderer: FrameRenderer,
  rng: Rng,
  opts: NearMissOptions,
  stride: number,
): Generator<NearMissSegment> {
  renderer.setScene(demo.randomization);
  for (let k = 0; k < task.stages.length; k++) {
    const tk = demo.firstTrue[k];
    if (tk <= 0) continue;
    const t0 = Math.max(0, tk - opts.before);
    for (const p of PERTURBATIONS) {
      const transform = transformFor(env, demo, p, tk, rng, opts);
      const frames = perturbedReplay(env, task, demo, renderer, t0, tk - t0 + opts.after, transform, (i) => i % stride === stride - 1, {
        source: 'near_miss',
        targetStage: k,
        perturbation: p,
      });
      yield { stage: k, perturbation: p, frames };
    }
  }
}

/**
 * The hacking probe's episode: the demo as recorded until the first stage completes (+3 steps),
 * then the expert's actions moved `offset` metres sideways (a seeded direction) to the end of the
 * demo. Every step is rendered (the gate runs on consecutive frames).
 */
export function probeFrames(env: SimEnv, task: Task, demo: DemoRecord, renderer: FrameRenderer, rng: Rng, offset = 0.03): LabelledFrame[] {
  renderer.setScene(demo.randomization);
  const start = Math.max(0, demo.firstTrue[0]) + 3;
  const angle = rng.uniform(0, 2 * Math.PI);
  const dx = offset * Math.cos(angle);
  const dy = offset * Math.sin(angle);
  const prefix: LabelledFrame[] = [];
  for (let t = 1; t <= Math.min(start, demo.infos.length - 1); t++) {
    const info = demo.infos[t];
    prefix.push({ images: renderer.render(info.state), ...labels(task, info), gtStage: info.stage, seed: demo.seed, step: t, source: 'probe', targetStage: -1, perturbation: 'none' });
  }
  const rest = perturbedReplay(env, task, demo, renderer, Math.min(start, demo.infos.length - 1), Math.max(0, demo.actions.length - start), (a) => offsetAction(env, a, dx, dy), () => true, {
    source: 'probe',
    targetStage: -1,
    perturbation: 'offset',
  });
  return [...prefix, ...rest];
}

/** Draws of the sideways offset an empty-handed replay tries before giving up on that grasp. */
const EMPTY_HANDED_DRAWS = 8;

/** Whether any stage named grasp_* or any isGrasped* predicate holds in `info`. */
function holdsAnything(task: Task, info: StepInfo): boolean {
  if (task.stages.some((s) => s.name.startsWith('grasp_') && info.predicates[s.name])) return true;
  return Object.entries(info.predicates).some(([name, v]) => v === true && name.startsWith('isGrasped'));
}

/** What an empty-handed replay does when the offset hand catches something (config `nearMiss.emptyHandedCatch`). */
export type EmptyHandedCatch = 'reject' | 'cut';

/**
 * Empty-handed replays: for each grasp stage, the demo restored `before` steps ahead of the reach
 * before the grasp and the expert's actions replayed 2-3 cm sideways to the end of the demo (at
 * most `emptyHandedSteps` steps): the fingers close on air beside the object and the arm goes
 * through the lift, carry, lower and release with nothing in hand (the hacking probe's kind of
 * near miss, here on training seeds).
 *
 * A replay must really be empty-handed: started at the grasp itself, a 2-3 cm offset often still
 * caught the object (11 of 16 Stack replays, 7 of 8 Jujube-Cup ones), and those frames taught the
 * scorer that the lower, release and retreat stages look done beside the target. So each offset is
 * simulated before anything is rendered; a draw under which any grasp stage or any `isGrasped*` predicate
 * holds within `after` steps of the expert's grasp (the offset hand caught the object after all) is
 * redrawn (up to 8 draws), and a grasp whose every draw holds something there gets no replay. A
 * later catch (the offset hand closing on another object rounds later) ends the replay at that step
 * (`emptyHandedCatch: 'cut'`, the default). Redrawing on any catch to the demo's end
 * (`'reject'`, the old rule) left Block Bridge's two bar grasps without a replay on every training
 * seed, and Jujube-Cup's jujube grasp on 3 of 6 seeds: exactly the near miss the hacking probe
 * performs there.
 *
 * Each frame's target stage is the one the unperturbed expert was working on at that step (what a
 * gate keeping the expert's pace would be asking), labelled by the ground truth; `contextFrom` is
 * the reach before the grasp: a gate stuck on any stage from there on (the probe's reach, grasp,
 * lift ...) sees these frames too.
 */
export function emptyHandedFrames(env: SimEnv, task: Task, demo: DemoRecord, renderer: FrameRenderer, rng: Rng, opts: NearMissOptions & { emptyHandedSteps?: number; emptyHandedCatch?: EmptyHandedCatch }, stride: number): LabelledFrame[] {
  renderer.setScene(demo.randomization);
  const out: LabelledFrame[] = [];
  task.stages.forEach((stage, k) => {
    if (!stage.name.startsWith('grasp_')) return;
    const tk = demo.firstTrue[k];
    if (tk <= 0) return;
    const reach = k > 0 && demo.firstTrue[k - 1] >= 0 ? Math.min(demo.firstTrue[k - 1], tk) : tk;
    const t0 = Math.max(0, reach - opts.before);
    const steps = Math.min(demo.actions.length - t0, opts.emptyHandedSteps ?? Number.POSITIVE_INFINITY);
    // 'cut': a catch within `after` steps of the expert's grasp is the grasp itself (redraw);
    // a later one ends the replay there.
    const graspEnd = tk - t0 + opts.after;
    let kept: ReplayStep[] | null = null;
    for (let draw = 0; draw < EMPTY_HANDED_DRAWS && !kept; draw++) {
      const transform = transformFor(env, demo, 'offset', tk, rng, opts);
      kept = replaySteps(env, demo, t0, steps, transform, (i) => i % stride === stride - 1, (info, i) =>
        !holdsAnything(task, info) ? false : opts.emptyHandedCatch !== 'reject' && i > graspEnd ? 'stop' : 'reject',
      );
    }
    if (!kept) return;
    const frames = replayFrames(task, demo, renderer, kept, { source: 'near_miss', targetStage: k, perturbation: 'offset' });
    for (const f of frames) {
      const expert = demo.infos[Math.min(f.step, demo.infos.length - 1)].stage;
      f.targetStage = Math.max(k, Math.min(task.stages.length - 1, expert));
      f.contextFrom = Math.max(0, k - 1);
      const shown = demo.infos[Math.min(f.step, demo.infos.length - 1)].predicates;
      f.expertOnly = [];
      for (let j = f.contextFrom; j <= f.targetStage; j++) if (shown[task.stages[j].name] && !f.done[j]) f.expertOnly.push(j);
      out.push(f);
    }
  });
  return out;
}

/** Settings of the off-task replays. */
export interface WanderOptions {
  /** Replays per demo (0: none). */
  wander: number;
  /** Random joint targets per replay. */
  wanderLegs: number;
  /** Control steps each target is held. */
  wanderLegSteps: number;
}

/**
 * Off-task replays (one frame list each), as a failing learner visits them: the main job's policy (BC, then PPO) parked
 * its closed gripper beside the robot's base, 20-40 cm from any block, and a scorer that had seen
 * only the expert and its near misses granted `above_middle_block` there in every episode (16 of
 * 16 gate claims false). For each of `wander` replays the demo is restored at a random step and the
 * arm is sent through `wanderLegs` random joint targets, each held `wanderLegSteps` steps: a random
 * blend (weight 0.2-1) of the current joints and a uniform draw inside the joint limits, the
 * gripper cycling closed, open, half way from a random start. Every frame is labelled by the ground truth (an off-task frame
 * still holds what the demo had done by its start, unless the arm knocks it over). A replay ends
 * early when the episode terminates (an object knocked off the table). The frames' target stage is
 * their ground-truth stage (the stage a gate keeping pace with the truth would be asking).
 */
export function* wanderReplays(env: SimEnv, task: Task, demo: DemoRecord, renderer: FrameRenderer, rng: Rng, opts: WanderOptions, stride: number): Generator<LabelledFrame[]> {
  renderer.setScene(demo.randomization);
  const kin = env.kinematics();
  const { min: gmin, max: gmax } = env.robot.gripper;
  const last = task.stages.length - 1;
  const grips = [gmin, gmax, 0.5 * (gmin + gmax)];
  for (let r = 0; r < opts.wander; r++) {
    const out: LabelledFrame[] = [];
    const t0 = rng.int(Math.max(1, demo.actions.length));
    restoreDemo(env, demo, t0);
    let q = demo.infos[t0].state.q.slice(0, kin.lower.length);
    // The gripper cycles closed, open, half way from a random start: every replay of 3 or more legs has each.
    const first = rng.int(grips.length);
    let i = 0;
    legs: for (let leg = 0; leg < opts.wanderLegs; leg++) {
      const w = rng.uniform(0.2, 1);
      q = q.map((x, j) => x + w * (rng.uniform(kin.lower[j], kin.upper[j]) - x));
      const g = grips[(first + leg) % grips.length];
      const action = Float32Array.from([...q, g]);
      for (let s = 0; s < opts.wanderLegSteps; s++, i++) {
        const res = env.step(action);
        if (i % stride === stride - 1) {
          const info = res.info;
          out.push({ images: renderer.render(info.state), ...labels(task, info), gtStage: info.stage, seed: demo.seed, step: t0 + i + 1, source: 'near_miss', targetStage: Math.min(info.stage, last), perturbation: 'wander' });
        }
        if (res.terminated) break legs;
      }
    }
    yield out;
  }
}

/** All frames of `wanderReplays`, one after another. */
export function wanderFrames(env: SimEnv, task: Task, demo: DemoRecord, renderer: FrameRenderer, rng: Rng, opts: WanderOptions, stride: number): LabelledFrame[] {
  return [...wanderReplays(env, task, demo, renderer, rng, opts, stride)].flat();
}

/**
 * The training frames of a SAR config: for each `train.seeds` seed, the expert demo every
 * `train.frameStride` steps and, when `train.nearMissStates`, its near-miss replays every
 * `nearMiss.frameStride` steps (and, with `nearMiss.emptyHanded`, its empty-handed replays; with
 * `nearMiss.wander` > 0, its off-task replays).
 */
export function trainingFrames(
  env: SimEnv,
  task: Task,
  renderer: FrameRenderer,
  cfg: {
    train: { seeds: readonly number[]; frameStride: number; nearMissStates: boolean };
    nearMiss: NearMissOptions & WanderOptions & { frameStride: number; emptyHanded?: boolean; emptyHandedSteps?: number; emptyHandedCatch?: EmptyHandedCatch };
  },
  rng: Rng,
  log: (line: string) => void = () => {},
): LabelledFrame[] {
  const out: LabelledFrame[] = [];
  for (const seed of cfg.train.seeds) {
    const demo = recordDemo(env, task, seed);
    const demoPart = demoFrames(task, demo, renderer, cfg.train.frameStride);
    let near = 0;
    out.push(...demoPart);
    if (cfg.train.nearMissStates) {
      for (const seg of nearMissSegments(env, task, demo, renderer, rng.fork(`seed-${seed}`), cfg.nearMiss, cfg.nearMiss.frameStride)) {
        out.push(...seg.frames);
        near += seg.frames.length;
      }
      if (cfg.nearMiss.emptyHanded) {
        const empty = emptyHandedFrames(env, task, demo, renderer, rng.fork(`empty-${seed}`), cfg.nearMiss, cfg.nearMiss.frameStride);
        out.push(...empty);
        near += empty.length;
      }
      if (cfg.nearMiss.wander > 0) {
        const off = wanderFrames(env, task, demo, renderer, rng.fork(`wander-${seed}`), cfg.nearMiss, cfg.nearMiss.frameStride);
        out.push(...off);
        near += off.length;
      }
    }
    log(`seed ${seed}: ${demoPart.length} demo frames (success ${demo.success}), ${near} near-miss frames`);
  }
  return out;
}
