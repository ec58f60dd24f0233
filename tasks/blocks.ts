/**
 * Blocks: pick up a block and place it on a marked spot.
 *
 * Description: a table, the AIRBOT Play at its edge, three 4 cm blocks and a flat target marker.
 * The robot must grasp `block_red`, lift it, carry it over the marker and put it down there.
 * Randomizations: each block's x in [0.22, 0.36] m and y in [-0.16, 0.16] m from the robot base,
 * yaw in [-pi/4, pi/4]; blocks at least 9 cm apart (so open fingers fit between them); the marker
 * anywhere in the same area at least 9 cm from every block.
 * Success: block_red upright (|R22| > 0.99), within 2 cm (x-y) of the marker, resting on the
 * table and not touched by the gripper.
 * Failure: any block falls off the table.
 */
import { quatAngle, quatFromAxisAngle, quatMul, quatNormalize, quatRotate, quatToRpy } from '../sim/math.ts';
import type { Rng } from '../sim/rng.ts';
import type { Evaluation, Expert, ExpertTools, Randomization, Stage, Task } from '../sim/task.ts';
import type { Color, ObjectDesc, Pose, Quat, SceneDesc, SimState, Vec3 } from '../sim/types.ts';

/** Height of the table top (m). The robot base stands on it at the origin of x-y. */
export const TABLE_TOP = 0.75;
/** Block half size (m): 4 cm cubes. */
export const BLOCK_HALF = 0.02;
/** Block mass (kg): a 4 cm wooden cube. */
export const BLOCK_MASS = 0.05;

const BLOCKS: Array<{ name: string; color: Color }> = [
  { name: 'block_red', color: [0.7, 0.21, 0.21] },
  { name: 'block_green', color: [0.21, 0.7, 0.21] },
  { name: 'block_blue', color: [0.21, 0.21, 0.7] },
];
const TARGET_BLOCK = 'block_red';

export interface BlocksRandomization extends Randomization {
  blocks: Array<{ name: string; x: number; y: number; yaw: number }>;
  target: { x: number; y: number };
}

function sampleLayout(rng: Rng): BlocksRandomization {
  // Rejection sampling; every draw comes from rng, so a seed fixes the layout.
  for (let attempt = 0; attempt < 1000; attempt++) {
    const pts: Array<{ x: number; y: number }> = [];
    for (let i = 0; i < BLOCKS.length + 1; i++) pts.push({ x: rng.uniform(0.22, 0.36), y: rng.uniform(-0.16, 0.16) });
    let ok = true;
    for (let i = 0; i < pts.length && ok; i++) {
      for (let j = i + 1; j < pts.length; j++) if (Math.hypot(pts[i].x - pts[j].x, pts[i].y - pts[j].y) < 0.09) ok = false;
    }
    const yaws = BLOCKS.map(() => rng.uniform(-Math.PI / 4, Math.PI / 4));
    if (!ok) continue;
    return {
      blocks: BLOCKS.map((b, i) => ({ name: b.name, x: pts[i].x, y: pts[i].y, yaw: yaws[i] })),
      target: { x: pts[BLOCKS.length].x, y: pts[BLOCKS.length].y },
    };
  }
  throw new Error('blocks: could not place the blocks 9 cm apart in 1000 draws');
}

function buildScene(r: Randomization): SceneDesc {
  const rand = r as BlocksRandomization;
  const objects: ObjectDesc[] = [
    {
      name: 'table',
      type: 'fixed',
      pose: { p: [0.3, 0, TABLE_TOP - 0.025], q: [0, 0, 0, 1] },
      colliders: [{ shape: { kind: 'box', halfExtents: [0.5, 0.6, 0.025] }, friction: 0.8 }],
      color: [0.55, 0.42, 0.3],
    },
    {
      name: 'target',
      type: 'fixed',
      pose: { p: [rand.target.x, rand.target.y, TABLE_TOP + 0.0005], q: [0, 0, 0, 1] },
      colliders: [{ shape: { kind: 'cylinder', radius: 0.03, halfHeight: 0.0005 }, visualOnly: true }],
      color: [0.9, 0.9, 0.2],
    },
  ];
  for (const b of rand.blocks) {
    const color = BLOCKS.find((x) => x.name === b.name)!.color;
    objects.push({
      name: b.name,
      type: 'dynamic',
      pose: { p: [b.x, b.y, TABLE_TOP + BLOCK_HALF], q: quatFromAxisAngle([0, 0, 1], b.yaw) },
      colliders: [{ shape: { kind: 'box', halfExtents: [BLOCK_HALF, BLOCK_HALF, BLOCK_HALF] }, friction: 0.8 }],
      mass: BLOCK_MASS,
      color,
    });
  }
  return {
    robot: 'airbot_play',
    robotBase: { p: [0, 0, TABLE_TOP], q: [0, 0, 0, 1] },
    objects,
    initialQ: [-0.055, -0.547, 0.905, 1.599, -1.398, -1.599],
    initialGripper: 0.04,
  };
}

/** Two finger links touch the object (finger links as the robot description names them). */
export function isGrasped(state: SimState, object: string): boolean {
  const fingers = new Set<string>();
  for (const c of state.contacts) if (c.object === object && (c.finger ?? /finger/i.test(c.link))) fingers.add(c.link);
  return fingers.size >= 2;
}

function touched(state: SimState, object: string): boolean {
  return state.contacts.some((c) => c.object === object);
}

function upright(q: Quat): boolean {
  return Math.abs(quatRotate(q, [0, 0, 1])[2]) > 0.99;
}

/** Targets are read from the randomisation; stages read the state only, so they close over it. */
function predicates(state: SimState, rand: BlocksRandomization): Record<string, boolean> {
  const block = state.objects[TARGET_BLOCK];
  const ee = state.ee;
  const d = [ee.p[0] - block.p[0], ee.p[1] - block.p[1], ee.p[2] - block.p[2]];
  const grasped = isGrasped(state, TARGET_BLOCK);
  const lifted = grasped && block.p[2] > TABLE_TOP + BLOCK_HALF + 0.05;
  const overTarget = Math.hypot(block.p[0] - rand.target.x, block.p[1] - rand.target.y) < 0.02;
  const onTable = block.p[2] < TABLE_TOP + BLOCK_HALF + 0.005;
  const released = !touched(state, TARGET_BLOCK);
  const placed = overTarget && onTable && released && upright(block.q);
  const fell = Object.entries(state.objects).some(([n, p]) => n.startsWith('block_') && p.p[2] < TABLE_TOP - 0.05);
  return {
    isReached: Math.hypot(d[0], d[1]) < 0.02 && Math.abs(d[2]) < 0.03,
    isGrasped: grasped,
    isLifted: lifted,
    isOverTarget: grasped && overTarget,
    isPlaced: placed,
    fell,
    success: placed,
  };
}

const TEXTS = {
  reach: {
    positive: 'the open gripper surrounds the block on the table',
    negative: 'the gripper is far away from the block',
    nearMisses: ['the gripper is above the block but not low enough to hold it', 'the gripper is beside the block, off to one side'],
  },
  grasp: {
    positive: 'both fingers of the gripper squeeze the block',
    negative: 'the gripper is open and empty',
    nearMisses: ['one finger touches the block but the other does not', 'the gripper is closed next to the block without holding it'],
  },
  lift: {
    positive: 'the gripper holds the block high above the table',
    negative: 'the block rests on the table',
    nearMisses: ['the gripper holds the block a little above the table', 'the gripper rises while the block stays on the table'],
  },
  carry: {
    positive: 'the gripper holds the block in the air directly above the target mark',
    negative: 'the block is held far from the target mark',
    nearMisses: ['the block is held above the table next to the target mark, not over it'],
  },
  place: {
    positive: 'the block stands on the target mark and the gripper has let go',
    negative: 'the block is still in the gripper',
    nearMisses: ['the block rests on the table beside the target mark', 'the block is on the target mark but the gripper still holds it'],
  },
};

/** Stages as data. Their predicates read the target from the state's objects (the marker). */
function makeStages(): Stage[] {
  const rand = (state: SimState): BlocksRandomization => {
    const t = state.objects.target;
    return { blocks: [], target: { x: t.p[0], y: t.p[1] } };
  };
  const stage = (name: keyof typeof TEXTS, key: string): Stage => ({
    name,
    object: TARGET_BLOCK,
    done: (state) => predicates(state, rand(state))[key],
    texts: TEXTS[name],
  });
  return [
    stage('reach', 'isReached'),
    stage('grasp', 'isGrasped'),
    stage('lift', 'isLifted'),
    stage('carry', 'isOverTarget'),
    stage('place', 'isPlaced'),
  ];
}

const STAGES = makeStages();

/**
 * Current stage = one past the furthest stage whose predicate holds now (later stages imply the
 * earlier ones: a lifted block was reached and grasped), so it does not fall back when the gripper
 * lets go at the end.
 */
function evaluate(state: SimState, r: Randomization): Evaluation {
  const rand = r as BlocksRandomization;
  const p = predicates(state, rand);
  const keys = ['isReached', 'isGrasped', 'isLifted', 'isOverTarget', 'isPlaced'];
  let stage = 0;
  keys.forEach((k, i) => {
    if (p[k]) stage = i + 1;
  });
  return { predicates: p, stage, success: p.success, failure: p.fell };
}

/** A top-down tool orientation with the fingers closing along the block's local y axis. */
export function topDownGrip(yaw: number, fold = true): Quat {
  // Rx(pi) points the tool's +Z down; then turn about the world vertical to the block's yaw
  // (folded into [-pi/4, pi/4] unless asked not to: a cube looks the same every quarter turn).
  const folded = fold ? yaw - (Math.PI / 2) * Math.round(yaw / (Math.PI / 2)) : yaw;
  return quatNormalize(quatMul(quatFromAxisAngle([0, 0, 1], folded), [1, 0, 0, 0]));
}

function yawOf(q: Quat): number {
  return quatToRpy(q)[2];
}

interface Phase {
  name: string;
  stage: number;
  /** Tool goal for this phase, computed when the phase starts. */
  goal: (state: SimState) => Pose;
  gripper: number;
  /** Minimum time to hold the phase after the goal is reached (s). */
  hold: number;
}

/**
 * Scripted pick-and-place: a state machine over tool poses. Each control step it moves a commanded
 * tool pose toward the phase goal at a bounded speed (straight lines), solves IK from the previous
 * command, and outputs joint targets (or, in ee_delta mode, the pose change).
 */
export class BlocksExpert implements Expert {
  private readonly tools: ExpertTools;
  private readonly rand: BlocksRandomization;
  private phase = 0;
  private phaseTime = 0;
  private goal: Pose | null = null;
  private cmdPose: Pose | null = null;
  private cmdQ: number[] | null = null;
  private grip = 0.04;
  private readonly phases: Phase[];
  /** Tool speed (m/s) and turn rate (rad/s) of the commanded pose. */
  private readonly speed = 0.25;
  private readonly turnRate = 1.5;

  constructor(rand: BlocksRandomization, tools: ExpertTools) {
    this.tools = tools;
    this.rand = rand;
    const above = 0.1;
    const graspZ = TABLE_TOP + BLOCK_HALF + 0.004;
    const blockGoal = (dz: number) => (state: SimState): Pose => {
      const b = state.objects[TARGET_BLOCK];
      const p: Vec3 = [b.p[0], b.p[1], graspZ + dz];
      return { p, q: this.gripFor(p, yawOf(b.q)) };
    };
    const keep = (dz: number) => (): Pose => {
      const c = this.cmdPose!;
      return { p: [c.p[0], c.p[1], c.p[2] + dz], q: c.q };
    };
    const overTarget = (z: number) => (): Pose => ({ p: [this.rand.target.x, this.rand.target.y, z], q: this.cmdPose!.q });
    this.phases = [
      { name: 'above block', stage: 0, goal: blockGoal(above), gripper: 0.04, hold: 0 },
      { name: 'descend', stage: 0, goal: blockGoal(0), gripper: 0.04, hold: 0.1 },
      { name: 'close', stage: 1, goal: keep(0), gripper: 0, hold: 0.35 },
      { name: 'lift', stage: 2, goal: keep(above), gripper: 0, hold: 0.1 },
      { name: 'carry', stage: 3, goal: overTarget(graspZ + above), gripper: 0, hold: 0.2 },
      { name: 'lower', stage: 4, goal: overTarget(graspZ + 0.002), gripper: 0, hold: 0.1 },
      { name: 'open', stage: 4, goal: keep(0), gripper: 0.04, hold: 0.3 },
      { name: 'raise', stage: 4, goal: keep(0.08), gripper: 0.04, hold: 0.2 },
    ];
  }

  /**
   * A cube can be gripped every quarter turn; pick the turn whose IK solution is nearest the
   * current command (so the wrist does not wind into a joint limit and flip).
   */
  private gripFor(p: Vec3, yaw: number): Quat {
    let best: Quat = topDownGrip(yaw);
    let bestCost = Infinity;
    for (let k = 0; k < 4; k++) {
      const q = topDownGrip(yaw + (k * Math.PI) / 2, false);
      const r = this.tools.ik({ p, q }, this.cmdQ!);
      if (!r.ok) continue;
      const cost = r.q.reduce((m, x, i) => Math.max(m, Math.abs(x - this.cmdQ![i])), 0);
      if (cost < bestCost) {
        bestCost = cost;
        best = q;
      }
    }
    return best;
  }

  /** True once the last phase has finished. */
  get finished(): boolean {
    return this.phase >= this.phases.length;
  }

  act(state: SimState): { action: number[]; stage: number; stageName: string } {
    const dt = this.tools.controlDt;
    if (!this.cmdPose || !this.cmdQ) {
      this.cmdQ = state.q.slice();
      this.cmdPose = this.tools.fk(this.cmdQ);
      this.grip = state.gripper;
    }
    const prevQ = this.cmdQ.slice();
    const prevPose = this.cmdPose;
    const idx = Math.min(this.phase, this.phases.length - 1);
    const ph = this.phases[idx];
    if (!this.finished) {
      if (!this.goal) {
        this.goal = ph.goal(state);
        this.phaseTime = 0;
      }
      // Move the commanded pose toward the goal.
      const g = this.goal;
      const dp: Vec3 = [g.p[0] - prevPose.p[0], g.p[1] - prevPose.p[1], g.p[2] - prevPose.p[2]];
      const dist = Math.hypot(...dp);
      const step = Math.min(1, (this.speed * dt) / Math.max(dist, 1e-12));
      const ang = quatAngle(prevPose.q, g.q);
      const turn = ang > 1e-9 ? Math.min(1, (this.turnRate * dt) / ang) : 1;
      const q = slerp(prevPose.q, g.q, turn);
      const next: Pose = { p: [prevPose.p[0] + dp[0] * step, prevPose.p[1] + dp[1] * step, prevPose.p[2] + dp[2] * step], q };
      const ik = this.tools.ik(next, prevQ);
      this.cmdQ = ik.q;
      this.cmdPose = this.tools.fk(ik.q);
      this.grip = ph.gripper;
      const arrived = dist < 1e-4 && ang < 1e-3;
      if (arrived) this.phaseTime += dt;
      if (arrived && this.phaseTime >= ph.hold - 1e-9) {
        this.phase++;
        this.goal = null;
      }
    }
    let action: number[];
    if (this.tools.actionMode === 'joint') {
      action = [...this.cmdQ, this.grip];
    } else {
      const a = prevPose;
      const b = this.cmdPose;
      const dq = quatNormalize(quatMul(b.q, [-a.q[0], -a.q[1], -a.q[2], a.q[3]]));
      const rpy = quatToRpy(dq);
      action = [b.p[0] - a.p[0], b.p[1] - a.p[1], b.p[2] - a.p[2], rpy[0], rpy[1], rpy[2], this.grip];
    }
    return { action, stage: ph.stage, stageName: STAGES[ph.stage].name };
  }
}

function slerp(a: Quat, b: Quat, t: number): Quat {
  let d = a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3];
  let bb = b;
  if (d < 0) {
    d = -d;
    bb = [-b[0], -b[1], -b[2], -b[3]];
  }
  if (d > 0.9995) {
    return quatNormalize([a[0] + t * (bb[0] - a[0]), a[1] + t * (bb[1] - a[1]), a[2] + t * (bb[2] - a[2]), a[3] + t * (bb[3] - a[3])]);
  }
  const th = Math.acos(d);
  const s = Math.sin(th);
  const wa = Math.sin((1 - t) * th) / s;
  const wb = Math.sin(t * th) / s;
  return [wa * a[0] + wb * bb[0], wa * a[1] + wb * bb[1], wa * a[2] + wb * bb[2], wa * a[3] + wb * bb[3]];
}

export const blocksTask: Task = {
  id: 'blocks',
  instruction: 'pick up the red block and put it on the yellow mark',
  maxSteps: 600,
  stages: STAGES,
  buildScene,
  randomize: (rng) => sampleLayout(rng),
  evaluate,
  expert: (rand, tools) => new BlocksExpert(rand as BlocksRandomization, tools),
};

/**
 * A reproducible moving-arm motion for the blocks scene (benchmarks, determinism checks): joint
 * targets swing sinusoidally around the start pose `q0` with per-joint phases, and the gripper
 * opens and closes. Action of control step `k` at control period `dt`.
 */
export function blocksScriptedAction(q0: number[], phases: number[], k: number, dt: number): number[] {
  const t = k * dt;
  const q = q0.map((x, i) => x + 0.35 * Math.sin(1.3 * t + phases[i]));
  return [...q, 0.02 + 0.02 * Math.sin(0.7 * t + phases[6])];
}
