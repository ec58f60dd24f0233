/**
 * Block Bridge (Discoverse-L "block_bridge_place"), 74 stages.
 *
 * Description: a small arch bridge, made of two halves standing side by side 3 cm apart (centre to
 * centre), is on the table with two upright bars and six cubes around it. Stand each bar beside
 * one end of the bridge, then build a tower of three cubes on each bar.
 * Bars (10 stages each): above the arch, above the bar, reach, grasp, settle, lift 9 cm, above the
 * spot beside the bridge, lower 3 cm, release, raise 6 cm.
 * Cubes (9 stages each): above, reach, grasp, settle, lift 9 cm, above the tower, lower, release, raise.
 * The original places cubes 1-3 on the second bar and 4-6 on the first; so do we.
 *
 * Randomizations: every bar and cube moves by up to +-1 mm along X and Y (the original's range).
 *
 * Success: both bars upright (long axis within ~5.7 degrees of vertical; the original demands
 * |R22| < 0.001 of its rotated frame, which a physics engine's resting jitter can exceed), the
 * bridge halves still 3 cm +- 2 mm apart, each bar within 1.5 cm of its spot, every cube on what
 * it should stand on (its bar or the cube below: 1.5 cm horizontally, 8 mm vertically), nothing
 * left in the gripper, everything at rest.
 * Failure: an object fell off the table, or the bridge was knocked apart (halves off by > 1 cm).
 */
import type { Rng } from '../sim/rng.ts';
import type { Evaluation, Expert, ExpertTools, Randomization, Stage, Task } from '../sim/task.ts';
import type { ObjectDesc, Pose, SceneDesc, SimState, Vec3 } from '../sim/types.ts';
import {
  DEFAULT_TUNING,
  ScriptedExpert,
  TABLE_TOP,
  add,
  boxObject,
  WOOD_DENSITY,
  WOOD_FRICTION,
  currentStage,
  graspPredicates,
  distXY,
  fingerContacts,
  pinchedAt,
  speedOf,
  objectPose,
  isInPlace,
  pickPlaceRound,
  pickPlaceScript,
  pickPlaceStages,
  poseXYZYaw,
  stagePredicates,
  tableObject,
  topDown,
  uprightness,
  validateStages,
  type ExpertStep,
  type PickPlaceSpec,
  type StageRound,
} from './stagekit.ts';

/** Arch half: two legs and a deck, spanning world Y; its origin is the centre of its footprint. */
export const ARCH = { halfDepth: 0.015, halfSpan: 0.06, legHalfWidth: 0.0075, legHeight: 0.045, deckThickness: 0.015 } as const;
export const ARCH_HEIGHT = ARCH.legHeight + ARCH.deckThickness;
/** Volume of one arch half (m^3): two legs and the deck. */
const ARCH_VOLUME = 2 * (2 * ARCH.halfDepth) * (2 * ARCH.legHalfWidth) * ARCH.legHeight + 2 * ARCH.halfDepth * 2 * ARCH.halfSpan * ARCH.deckThickness;
/** Centre-to-centre distance of the two halves along X. */
export const HALF_GAP = 0.03;
export const BAR_HALF: Vec3 = [0.015, 0.015, 0.03];
export const CUBE_HALF = 0.0125;

const BRIDGE1: [number, number] = [0.3, 0.0];
/**
 * Gap between a bar's spot and the bridge's leg. 2.5 cm rather than touching: the physics engine's
 * contact prediction reaches about 2 cm, and a bar stood closer pushes the bridge as it settles.
 */
const SPOT_GAP = 0.025;
/** Spots beside the bridge ends (offset from the bridge centre along Y), one per bar. */
const SPOT_OFFSET_Y = ARCH.halfSpan + SPOT_GAP + BAR_HALF[1];
const BARS = ['bar_a', 'bar_b'] as const;
const BAR_START: Record<(typeof BARS)[number], [number, number]> = { bar_a: [0.42, 0.1], bar_b: [0.42, -0.1] };
const BAR_SPOT_SIGN: Record<(typeof BARS)[number], number> = { bar_a: 1, bar_b: -1 };
const CUBES = ['cube_1', 'cube_2', 'cube_3', 'cube_4', 'cube_5', 'cube_6'] as const;
const CUBE_START: [number, number][] = [
  [0.14, -0.08],
  [0.14, 0.0],
  [0.14, 0.08],
  [0.21, -0.08],
  [0.21, 0.0],
  [0.21, 0.08],
];
/** Which bar each cube goes on, and at which level (1 = on the bar). */
const CUBE_PLAN: { bar: (typeof BARS)[number]; level: number }[] = [
  { bar: 'bar_b', level: 1 },
  { bar: 'bar_b', level: 2 },
  { bar: 'bar_b', level: 3 },
  { bar: 'bar_a', level: 1 },
  { bar: 'bar_a', level: 2 },
  { bar: 'bar_a', level: 3 },
];
const ORDINAL = ['first', 'second', 'third', 'fourth', 'fifth', 'sixth'];
const CUBE_GAP = 2 * CUBE_HALF;
const BAR_TO_CUBE = BAR_HALF[2] + CUBE_HALF;

export interface BlockBridgeRandomization extends Randomization {
  /** Start positions [x, y] of bars and cubes by name. */
  starts: Record<string, [number, number]>;
}

function startsOf(r: Randomization): Record<string, [number, number]> {
  const starts = (r as Partial<BlockBridgeRandomization>).starts;
  const names = [...BARS, ...CUBES];
  if (!starts || names.some((n) => !Array.isArray(starts[n]) || starts[n].length !== 2)) {
    throw new TypeError(`block_bridge randomization must have starts.{${names.join(',')}} as [x, y], got ${JSON.stringify(r)}`);
  }
  return starts;
}

/** Centre of the bridge (between the halves), on the table. */
function bridgeCentre(s: SimState): Vec3 {
  const a = objectPose(s, 'bridge1').p;
  const b = objectPose(s, 'bridge2').p;
  return [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2, TABLE_TOP];
}

/** Where a bar's centre belongs: beside one end of the bridge, standing on the table. */
export function barSpot(s: SimState, bar: (typeof BARS)[number]): Vec3 {
  const c = bridgeCentre(s);
  return [c[0], c[1] + BAR_SPOT_SIGN[bar] * SPOT_OFFSET_Y, TABLE_TOP + BAR_HALF[2]];
}

/** What a cube stands on: its bar (level 1) or the cube below it. */
function supportOf(i: number): { name: string; gap: number } {
  const plan = CUBE_PLAN[i];
  if (plan.level === 1) return { name: plan.bar, gap: BAR_TO_CUBE };
  const below = CUBE_PLAN.findIndex((p) => p.bar === plan.bar && p.level === plan.level - 1);
  return { name: CUBES[below], gap: CUBE_GAP };
}

const BAR_NOUN = { bar_a: 'the first bar', bar_b: 'the second bar' } as const;
const END_NOUN = { bar_a: 'the spot beside the left end of the bridge', bar_b: 'the spot beside the right end of the bridge' } as const;

function barSpec(bar: (typeof BARS)[number]): PickPlaceSpec {
  return {
    object: bar,
    noun: BAR_NOUN[bar],
    targetNoun: END_NOUN[bar],
    halfWidth: BAR_HALF[0],
    restZ: TABLE_TOP + BAR_HALF[2],
    graspOffset: [0, 0, 0.015],
    hoverHeight: 0.1,
    liftHeight: 0.09,
    // Lifted once 2.5 cm clear: the carry brings the bar down to 3.3 cm above its spot (at table
    // level) before it is over the spot, below the default 60% of the 9 cm lift.
    liftedAt: 0.025,
    target: (s) => barSpot(s, bar),
    placeTolXY: 0.015,
  };
}

function cubeSpec(i: number): PickPlaceSpec {
  const support = supportOf(i);
  const plan = CUBE_PLAN[i];
  const targetNoun = plan.level === 1 ? `the top of ${BAR_NOUN[plan.bar]}` : `the ${ORDINAL[CUBES.indexOf(support.name as (typeof CUBES)[number])]} cube`;
  return {
    object: CUBES[i],
    noun: `the ${ORDINAL[i]} cube`,
    targetNoun,
    halfWidth: CUBE_HALF,
    restZ: TABLE_TOP + CUBE_HALF,
    graspOffset: [0, 0, 0.011],
    hoverHeight: 0.1,
    liftHeight: 0.09,
    target: (s) => add(objectPose(s, support.name).p, [0, 0, support.gap]),
    placeTolXY: 0.012,
  };
}

/**
 * The expert first aims a bar or cube this far (m) above its release point and corrects its aim
 * there. With 1 cm of aim noise, an object lowered straight to 7 mm above its support was often
 * pressed onto it: a cube onto the edge of the one below, tipping the tower; a bar into the
 * table, where it tilted, pried the fingers open and was shoved out of its spot.
 */
const PLACE_HOVER = 0.015;
const ABOVE_ARCH_HEIGHT = ARCH_HEIGHT + 0.08;
/** Tool speeds of straight-line moves and hover moves (m/s); slower than the defaults near the towers. */
const LINE_SPEED = 0.2;
const HOVER_SPEED = 0.35;
/**
 * Fingers open wide (the full 4 cm) around bars and cubes: the physics engine acts on contacts up
 * to ~2 cm before they touch, and a pad passing closer knocks a light upright bar or cube.
 */
const OPEN_WIDTH = 0.04;

/** Horizontal distance from p to the segment a-b. */
function distToSegmentXY(p: Vec3, a: Vec3, b: Vec3): number {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const len2 = dx * dx + dy * dy;
  const t = len2 > 0 ? Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2)) : 0;
  return Math.hypot(p[0] - (a[0] + t * dx), p[1] - (a[1] + t * dy));
}

/**
 * The bar round's waypoint: the open hand went up over the middle of the bridge. A memoryless
 * predicate cannot remember that the hand was there, so it also holds on the way on from there to
 * the bar (the open hand at the same height, within 2 cm of the line from over the bridge's middle
 * to over the bar) until the hand is above the bar, where the next stage takes over. Otherwise the
 * stage fell back to 0 as soon as the hand left the bridge. A hand over one end of the bridge
 * (4 cm or more off that line), low over it, or closed, is still not done.
 */
function aboveArchStage(bar: (typeof BARS)[number], after?: (s: SimState) => boolean): Stage {
  return {
    name: `above_bridge_before_${bar}`,
    object: 'bridge1',
    done: (s) => {
      if ((after && !after(s)) || s.gripper < BAR_HALF[0] + 0.004 || fingerContacts(s, bar).length > 0) return false;
      const over = add(bridgeCentre(s), [0, 0, ABOVE_ARCH_HEIGHT]);
      return Math.abs(s.ee.p[2] - over[2]) <= 0.03 && distToSegmentXY(s.ee.p, over, objectPose(s, bar).p) <= 0.02;
    },
    texts: {
      positive: `the open gripper hovers above the middle of the bridge, touching nothing, or moves on from there toward ${BAR_NOUN[bar]}`,
      negative: 'the gripper is down at the table, far from the bridge',
      nearMisses: [
        'the open gripper hovers above one end of the bridge instead of its middle',
        'the gripper is low over the bridge, almost touching its deck',
        'the gripper is above the bridge but its fingers are closed',
      ],
    },
  };
}

const BAR_SPECS = { bar_a: barSpec('bar_a'), bar_b: barSpec('bar_b') };
const CUBE_SPECS = CUBES.map((_, i) => cubeSpec(i));

const ROUNDS: StageRound[] = [
  // Each round's first stage counts only once the previous round's object is in place.
  ...BARS.map((bar, i) => {
    const after = i === 0 ? undefined : (s: SimState) => isInPlace(s, BAR_SPECS[BARS[i - 1]]);
    return pickPlaceRound([aboveArchStage(bar, after), ...pickPlaceStages(bar, BAR_SPECS[bar], undefined, after)], BAR_SPECS[bar]);
  }),
  ...CUBES.map((cube, i) => {
    const prev = i === 0 ? BAR_SPECS.bar_b : CUBE_SPECS[i - 1];
    return pickPlaceRound(pickPlaceStages(cube, CUBE_SPECS[i], undefined, (s) => isInPlace(s, prev)), CUBE_SPECS[i]);
  }),
];
const STAGES = validateStages('block_bridge', ROUNDS.flatMap((r) => r.stages), 74);

/** Success predicates, exported for tests. */
export function blockBridgeChecks(s: SimState): Record<string, boolean> {
  const b1 = objectPose(s, 'bridge1').p;
  const b2 = objectPose(s, 'bridge2').p;
  const out: Record<string, boolean> = {
    barsUpright: BARS.every((b) => uprightness(objectPose(s, b).q) > 0.995),
    bridgeIntact: Math.abs(distXY(b1, b2) - HALF_GAP) <= 0.002,
    barsAtSpots: BARS.every((b) => distXY(objectPose(s, b).p, barSpot(s, b)) <= 0.015),
  };
  // Each cube sits on what it should (its bar, or the cube below), centred within 1.5 cm and at
  // the right height (8 mm): the same test, level by level, as the stages' placement predicate.
  out.cubesStacked = CUBES.every((c, i) => {
    const support = supportOf(i);
    const below = objectPose(s, support.name).p;
    const p = objectPose(s, c).p;
    return distXY(p, below) <= 0.015 && Math.abs(p[2] - below[2] - support.gap) <= 0.008;
  });
  out.released = [...BARS, ...CUBES].every((o) => !pinchedAt(s, o, objectPose(s, o).p, 0.03));
  out.settled = [...BARS, ...CUBES].every((o) => speedOf(s, o) < 0.05);
  return out;
}

function archHalf(name: string, x: number, y: number): ObjectDesc {
  const leg = (sign: number) => ({
    shape: { kind: 'box' as const, halfExtents: [ARCH.halfDepth, ARCH.legHalfWidth, ARCH.legHeight / 2] as Vec3 },
    pose: { p: [0, sign * (ARCH.halfSpan - ARCH.legHalfWidth), ARCH.legHeight / 2] as Vec3, q: [0, 0, 0, 1] as [number, number, number, number] },
    friction: WOOD_FRICTION,
  });
  return {
    name,
    type: 'dynamic',
    pose: poseXYZYaw(x, y, TABLE_TOP),
    // Wooden: 94.5 cm^3 at WOOD_DENSITY, 66 g (it was 250 g, 2.65 g/cm^3, stone rather than wood).
    mass: ARCH_VOLUME * WOOD_DENSITY,
    color: [0.15, 0.65, 0.63],
    colliders: [
      leg(1),
      leg(-1),
      {
        shape: { kind: 'box', halfExtents: [ARCH.halfDepth, ARCH.halfSpan, ARCH.deckThickness / 2] },
        pose: { p: [0, 0, ARCH.legHeight + ARCH.deckThickness / 2], q: [0, 0, 0, 1] },
        friction: WOOD_FRICTION,
      },
    ],
  };
}

export const blockBridgeTask: Task = {
  id: 'block_bridge',
  instruction: 'stand the two bars beside the ends of the bridge, then stack three cubes on each bar',
  // 70 s at 60 Hz, the original's limit.
  maxSteps: 4200,
  stages: STAGES,

  randomize(rng: Rng): BlockBridgeRandomization {
    const starts: Record<string, [number, number]> = {};
    BARS.forEach((b) => (starts[b] = [BAR_START[b][0] + rng.uniform(-0.001, 0.001), BAR_START[b][1] + rng.uniform(-0.001, 0.001)]));
    CUBES.forEach((c, i) => (starts[c] = [CUBE_START[i][0] + rng.uniform(-0.001, 0.001), CUBE_START[i][1] + rng.uniform(-0.001, 0.001)]));
    return { starts };
  },

  buildScene(r: Randomization): SceneDesc {
    const starts = startsOf(r);
    return {
      robot: 'airbot_play',
      robotBase: { p: [0, 0, TABLE_TOP], q: [0, 0, 0, 1] },
      objects: [
        tableObject(),
        archHalf('bridge1', BRIDGE1[0], BRIDGE1[1]),
        archHalf('bridge2', BRIDGE1[0] + HALF_GAP, BRIDGE1[1]),
        // Wooden bars (54 cm^3, 38 g) and cubes (15.6 cm^3, 11 g) at WOOD_DENSITY.
        ...BARS.map((b) => boxObject(b, poseXYZYaw(starts[b][0], starts[b][1], TABLE_TOP + BAR_HALF[2]), BAR_HALF, 8 * BAR_HALF[0] * BAR_HALF[1] * BAR_HALF[2] * WOOD_DENSITY, [0.3, 0.6, 0.075])),
        ...CUBES.map((c) => boxObject(c, poseXYZYaw(starts[c][0], starts[c][1], TABLE_TOP + CUBE_HALF), [CUBE_HALF, CUBE_HALF, CUBE_HALF], 8 * CUBE_HALF ** 3 * WOOD_DENSITY, [0.65, 0.27, 0.64])),
      ],
    };
  },

  evaluate(s: SimState): Evaluation {
    const checks = blockBridgeChecks(s);
    const success = Object.values(checks).every(Boolean);
    const b1 = objectPose(s, 'bridge1').p;
    const b2 = objectPose(s, 'bridge2').p;
    const fell = [...BARS, ...CUBES, 'bridge1', 'bridge2'].some((o) => objectPose(s, o).p[2] < TABLE_TOP - 0.05);
    const failure = fell || Math.abs(distXY(b1, b2) - HALF_GAP) > 0.01;
    return { predicates: { ...stagePredicates(STAGES, s), ...graspPredicates(s, [...Object.values(BAR_SPECS), ...CUBE_SPECS]), ...checks, success }, stage: currentStage(ROUNDS, s), success, failure };
  },

  expert(_r: Randomization, tools: ExpertTools): Expert {
    // Fingers open along world X (yaw 90 degrees): at the spots beside the bridge, fingers opened
    // along Y would land on the bridge's legs.
    const yaw = Math.PI / 2;
    const steps: ExpertStep[] = [];
    let k = 0;
    for (const bar of BARS) {
      const spec = BAR_SPECS[bar];
      steps.push({
        kind: 'move',
        stage: k,
        gripper: OPEN_WIDTH,
        target: (s): Pose => ({ p: add(bridgeCentre(s), [0, 0, ABOVE_ARCH_HEIGHT]), q: topDown(yaw) }),
      });
      steps.push(
        ...pickPlaceScript(k + 1, spec, {
          yaw: () => yaw,
          carryHeight: spec.graspOffset[2] + 0.03 + 0.003,
          placeHeight: spec.graspOffset[2] + 0.003,
          openWidth: OPEN_WIDTH,
          raise: 0.06,
          hoverSpeed: HOVER_SPEED,
          align: true,
          placeHover: PLACE_HOVER,
        }),
      );
      k += 10;
    }
    CUBE_SPECS.forEach((spec) => {
      steps.push(
        ...pickPlaceScript(k, spec, {
          // Cubes are handled with the fingers along world Y: the hand's body reaches 8 cm either
          // way along the finger axis, 7 cm above the pads, and picking the near row of cubes
          // (10 cm from the towers along X) with the fingers along X swept it into the cubes
          // already stacked on the towers whenever the aim was 1 cm off. (Bars need the fingers
          // along X, or they land on the bridge's legs; a held cube's pads stay above its bottom,
          // so at the first level they pass over the bridge's deck.)
          yaw: () => 0,
          placeHover: PLACE_HOVER,
          // A cube that ended off its support (on the table beside the tower) is picked up where
          // it is and placed again.
          placeRetries: 1,
          carryHeight: spec.graspOffset[2] + 0.03,
          placeHeight: spec.graspOffset[2] + 0.003,
          openWidth: OPEN_WIDTH,
          raise: 0.06,
          hoverSpeed: HOVER_SPEED,
          align: true,
        }),
      );
      k += 9;
    });
    // Slower straight-line moves: the towers are tall and light, and the hand works right next to them.
    return new ScriptedExpert(steps, STAGES.map((st) => st.name), tools, { ...DEFAULT_TUNING, lineSpeed: LINE_SPEED });
  },
};
