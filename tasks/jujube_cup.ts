/**
 * Jujube-Cup (Discoverse-L "place_jujube_coffeecup"), 19 stages.
 *
 * Description: a jujube (a small box-shaped fruit), a coffee cup with a handle, and a plate are on the table. Put the jujube
 * into the cup, then carry the cup by its handle onto the plate.
 * Jujube round (9): above, reach, grasp, settle, lift 15 cm, above the cup, lower, release, raise.
 * Cup round (10): approach the handle from above, reach it, grasp, settle, lift, over the plate,
 * descend (the original's second waypoint), lower onto the plate, release, raise.
 *
 * Randomizations (the original's widest level): jujube and cup move uniformly by up to +-10 cm
 * along X and +-5 cm along Y; the plate by +-6.25 cm / +-2 cm plus a shared offset of up to +-5 cm
 * (the original's board offset; the board itself is not modelled). Layouts where objects would
 * overlap or block a grasp are resampled (minimum centre distances below).
 *
 * Success: the cup is upright (|R22| > 0.99) and within 2 cm (horizontally) of the plate centre, as
 * in the original, AND the jujube is inside the cup (the original does not check it), AND the
 * gripper has let go of the cup.
 * Failure: an object fell off the table.
 */
import type { Rng } from '../sim/rng.ts';
import type { Evaluation, Expert, ExpertTools, Randomization, Stage, Task } from '../sim/task.ts';
import type { ObjectDesc, Pose, SceneDesc, SimState, Vec3 } from '../sim/types.ts';
import {
  ScriptedExpert,
  TABLE_TOP,
  add,
  aboveStage,
  carryStage,
  currentStage,
  graspPredicates,
  distXY,
  fingerContacts,
  graspStage,
  liftStage,
  lowerStage,
  objectPose,
  isInPlace,
  isPlaced,
  pickPlaceRound,
  pickPlaceScript,
  pickPlaceStages,
  reachStage,
  releaseStage,
  retreatStage,
  retreated,
  rotate,
  samplePlacements,
  settleStage,
  speedOf,
  shellColliders,
  stagePredicates,
  tableObject,
  topDown,
  uprightness,
  validateStages,
  lifted,
  graspAligned,
  isHeld,
  sub,
  ALIGN_RETRIES,
  PLACE_ALIGN,
  PROBE_SPEED,
  type ExpertStep,
  type PickPlaceSpec,
  type StageRound,
} from './stagekit.ts';

/** Cup geometry (m). The cup's origin is the centre of its base; the handle points along local +Y. */
export const CUP = {
  radius: 0.04,
  wall: 0.005,
  height: 0.07,
  bottom: 0.005,
  /** Handle: a vertical plate from the wall outward. */
  handleInner: 0.036,
  handleOuter: 0.075,
  handleHalfThickness: 0.005,
  handleLow: 0.02,
  handleHigh: 0.06,
} as const;
/** Jujube: 18 x 18 x 30 mm, lying with its long axis along world X (collision shape: a box, see the scene). */
export const JUJUBE = { radius: 0.009, halfHeight: 0.006 } as const;
export const PLATE = { radius: 0.07, halfHeight: 0.006 } as const;

/** The cup is turned so that its handle faces the robot (local +Y -> world -X). */
const CUP_YAW = Math.PI / 2;
/** The handle is held near its outer end, away from the wall, so the fingers clear the rim. */
const HANDLE_RADIUS = CUP.handleOuter - 0.01;
/** Tool point above the cup's origin when holding the handle (pads cover the handle's upper part). */
const HANDLE_GRASP_Z = 0.055;

const NOMINAL = { jujube: [0.26, -0.15], cup: [0.3, 0.0], plate: [0.27, 0.17] } as const;

export interface JujubeCupRandomization extends Randomization {
  jujube: [number, number];
  cup: [number, number];
  plate: [number, number];
}

function placementsOf(r: Randomization): JujubeCupRandomization {
  const x = r as Partial<JujubeCupRandomization>;
  for (const k of ['jujube', 'cup', 'plate'] as const) {
    if (!Array.isArray(x[k]) || x[k]!.length !== 2) {
      throw new TypeError(`jujube_cup randomization must have ${k} as [x, y], got ${JSON.stringify(r)}`);
    }
  }
  return x as JujubeCupRandomization;
}

/** The jujube is inside the cup: within its inner radius and between its floor and rim (cup frame). */
export function jujubeInCup(s: SimState): boolean {
  const cup = objectPose(s, 'cup');
  const j = objectPose(s, 'jujube').p;
  const rel: Vec3 = [j[0] - cup.p[0], j[1] - cup.p[1], j[2] - cup.p[2]];
  // Into the cup frame: rotate by the inverse of the cup's orientation.
  const [x, y, z, w] = cup.q;
  const local = rotate([-x, -y, -z, w], rel);
  return Math.hypot(local[0], local[1]) < CUP.radius - CUP.wall && local[2] > 0 && local[2] < CUP.height;
}

/** Where the handle is grasped, in the world, for the cup's current pose. */
function handleGraspPoint(cup: Pose): Vec3 {
  return add(cup.p, rotate(cup.q, [0, HANDLE_RADIUS, HANDLE_GRASP_Z]));
}

const JUJUBE_SPEC: PickPlaceSpec = {
  object: 'jujube',
  noun: 'the jujube',
  targetNoun: 'the cup',
  halfWidth: JUJUBE.radius,
  restZ: TABLE_TOP + JUJUBE.radius,
  graspOffset: [0, 0, 0.013],
  hoverHeight: 0.1,
  liftHeight: 0.15,
  // A jujube lies on its side and has no upright to keep: settling asks for held and still only.
  settleTilt: Math.PI,
  // The drop point: the jujube's centre 1 cm above the rim, over the cup's axis.
  target: (s) => add(objectPose(s, 'cup').p, [0, 0, CUP.height + 0.01]),
  placeTolXY: CUP.radius - CUP.wall,
  placed: jujubeInCup,
  // Let go 1 cm above the rim, it falls 1 cm before it is inside the cup: still "lowering" meanwhile.
  dropDepth: 0.01,
};

/** The cup round's geometry: the "object" is the cup, grasped at its handle (offset toward the robot). */
const CUP_SPEC: PickPlaceSpec = {
  object: 'cup',
  noun: 'the cup',
  targetNoun: 'the plate',
  halfWidth: CUP.handleHalfThickness,
  restZ: TABLE_TOP,
  graspOffset: [-HANDLE_RADIUS, 0, HANDLE_GRASP_Z],
  hoverHeight: HANDLE_GRASP_Z + 0.1,
  liftHeight: 0.12,
  target: (s) => add(objectPose(s, 'plate').p, [0, 0, PLATE.halfHeight]),
  placeTolXY: 0.02,
};

const cupTexts = (positive: string, negative: string, nearMisses: string[]) => ({ positive, negative, nearMisses });

function cupRoundStages(): Stage[] {
  const approach = aboveStage('approach_cup_handle', CUP_SPEC, jujubeInCup);
  approach.texts = cupTexts(
    'the open gripper hovers above the handle of the cup',
    'the gripper is far from the cup',
    ['the open gripper hovers above the far side of the cup, away from the handle', 'the gripper is above the handle but its fingers are closed', 'the gripper hovers over the middle of the cup'],
  );
  const reach = reachStage('reach_cup_handle', CUP_SPEC);
  reach.texts = cupTexts(
    'the open fingers are lowered around the handle of the cup',
    'the gripper is high above the table, away from the cup',
    ['a finger rests on top of the handle instead of beside it', 'the fingers are lowered beside the cup wall, missing the handle', 'the gripper is above the handle but has not come down to it'],
  );
  const grasp = graspStage('grasp_cup_handle', CUP_SPEC);
  grasp.texts = cupTexts(
    'both fingers have closed on the handle of the cup',
    'the gripper is open and the cup is free',
    ['the gripper is touching the handle but not grasping it', 'the fingers have closed on empty air beside the handle', 'only one finger presses against the handle'],
  );
  const settle = settleStage('settle_cup_handle', CUP_SPEC);
  settle.texts = cupTexts(
    'the cup is held firmly and still by its handle',
    'the cup stands loose with no finger on it',
    ['the handle is slipping out from between the fingers', 'the gripper is touching the handle but not grasping it', 'the cup is pinched at the rim and tilting'],
  );
  const lift = liftStage('lift_cup', CUP_SPEC);
  lift.texts = cupTexts(
    'the gripper holds the cup by its handle, lifted upright above the table',
    'the cup stands on the table',
    ['the gripper rises but the cup stays on the table', 'the cup is lifted but tipped over, spilling its contents', 'the cup is held only just off the table'],
  );
  return [
    approach,
    reach,
    grasp,
    settle,
    lift,
    carryStage('cup_above_plate', CUP_SPEC, 0.06),
    carryStage('cup_descending_to_plate', CUP_SPEC, 0.015, 0.06),
    lowerStage('lower_cup_onto_plate', CUP_SPEC, 0.015),
    releaseStage('release_cup', CUP_SPEC),
    retreatStage('retreat_from_cup', CUP_SPEC),
  ];
}

const JUJUBE_STAGES = pickPlaceStages('jujube', JUJUBE_SPEC);
// The jujube is dropped into the cup, so its release and retreat texts speak of "in", not "on".
JUJUBE_STAGES[7].texts = {
  positive: 'the fingers have opened and the jujube lies inside the cup',
  negative: 'the gripper still grips the jujube',
  nearMisses: ['the jujube was released but bounced out of the cup', 'the jujube lies on the table beside the cup', 'the jujube rests on the rim of the cup'],
};
JUJUBE_STAGES[8].texts = {
  positive: 'the open gripper has moved up away from the cup with the jujube inside it',
  negative: 'the gripper still holds the jujube above the cup',
  nearMisses: ['the gripper moved up but knocked the cup over', 'the gripper moved away but the jujube is on the table', 'the gripper is still touching the cup'],
};

const ROUNDS: StageRound[] = [
  pickPlaceRound(JUJUBE_STAGES, JUJUBE_SPEC),
  // The cup only counts as placed with the jujube still inside it.
  {
    stages: cupRoundStages(),
    placed: (s) => isPlaced(s, CUP_SPEC) && jujubeInCup(s),
    inPlace: (s) => isInPlace(s, CUP_SPEC) && jujubeInCup(s),
    retreated: (s) => retreated(s, CUP_SPEC),
  },
];
const STAGES = validateStages('jujube_cup', ROUNDS.flatMap((r) => r.stages), 19);

/** Success predicates, exported for tests. */
export function jujubeCupChecks(s: SimState): Record<string, boolean> {
  const cup = objectPose(s, 'cup');
  const plate = objectPose(s, 'plate');
  return {
    cupUpright: Math.abs(uprightness(cup.q)) > 0.99,
    cupOnPlate: distXY(cup.p, plate.p) < 0.02 && Math.abs(cup.p[2] - plate.p[2] - PLATE.halfHeight) < 0.01,
    jujubeInCup: jujubeInCup(s),
    cupReleased: fingerContacts(s, 'cup').length === 0,
    settled: speedOf(s, 'cup') < 0.05 && speedOf(s, 'jujube') < 0.05,
  };
}

function cupObject(x: number, y: number): ObjectDesc {
  const handleMid = (CUP.handleInner + CUP.handleOuter) / 2;
  return {
    name: 'cup',
    type: 'dynamic',
    pose: { p: [x, y, TABLE_TOP], q: [0, 0, Math.sin(CUP_YAW / 2), Math.cos(CUP_YAW / 2)] },
    // A light cup: a pinch on the handle must carry the cup's weight as a torque about the pinch axis.
    mass: 0.02,
    color: [0.92, 0.92, 0.9],
    colliders: [
      { shape: { kind: 'cylinder', radius: CUP.radius, halfHeight: CUP.bottom / 2 }, pose: { p: [0, 0, CUP.bottom / 2], q: [0, 0, 0, 1] }, friction: 0.8 },
      ...shellColliders(CUP.radius, CUP.wall, CUP.height - CUP.bottom, 16, CUP.bottom, 0.8),
      {
        shape: { kind: 'box', halfExtents: [CUP.handleHalfThickness, (CUP.handleOuter - CUP.handleInner) / 2, (CUP.handleHigh - CUP.handleLow) / 2] },
        pose: { p: [0, handleMid, (CUP.handleHigh + CUP.handleLow) / 2], q: [0, 0, 0, 1] },
        friction: 2.0,
      },
    ],
  };
}

export const jujubeCupTask: Task = {
  id: 'jujube_cup',
  instruction: 'put the jujube into the cup, then place the cup on the plate',
  // 20 s at 60 Hz, the original's limit.
  maxSteps: 1200,
  stages: STAGES,

  randomize(rng: Rng): JujubeCupRandomization {
    for (let attempt = 0; attempt < 1000; attempt++) {
      const board: [number, number] = [rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05)];
      const [jujube, cup, plateRaw] = samplePlacements(
        rng,
        [[...NOMINAL.jujube], [...NOMINAL.cup], [NOMINAL.plate[0] + board[0], NOMINAL.plate[1] + board[1]]],
        [[0.1, 0.05], [0.1, 0.05], [0.0625, 0.02]],
        0.0,
      );
      const plate = plateRaw;
      const d = (a: [number, number], b: [number, number]) => Math.hypot(a[0] - b[0], a[1] - b[1]);
      // Keep the handle's approach free of the jujube, and the plate clear of both.
      if (d(jujube, cup) >= 0.11 && d(cup, plate) >= 0.16 && d(jujube, plate) >= 0.1) return { jujube, cup, plate };
    }
    throw new Error('jujube_cup: could not sample a layout with the required clearances after 1000 tries');
  },

  buildScene(r: Randomization): SceneDesc {
    const { jujube, cup, plate } = placementsOf(r);
    return {
      robot: 'airbot_play',
      robotBase: { p: [0, 0, TABLE_TOP], q: [0, 0, 0, 1] },
      objects: [
        tableObject(),
        {
          name: 'plate',
          type: 'dynamic',
          pose: { p: [plate[0], plate[1], TABLE_TOP + PLATE.halfHeight], q: [0, 0, 0, 1] },
          mass: 0.3,
          color: [0.95, 0.95, 0.95],
          colliders: [{ shape: { kind: 'cylinder', radius: PLATE.radius, halfHeight: PLATE.halfHeight }, friction: 0.8 }],
        },
        cupObject(cup[0], cup[1]),
        {
          name: 'jujube',
          type: 'dynamic',
          // Long axis (local Z) turned to lie along world X.
          pose: { p: [jujube[0], jujube[1], TABLE_TOP + JUJUBE.radius], q: [0, Math.SQRT1_2, 0, Math.SQRT1_2] },
          mass: 0.008,
          color: [0.55, 0.12, 0.08],
          // A box the size of the jujube, long axis along local Z. A capsule would look rounder, but
          // pinched between flat pads in this engine it rolls out of the grasp as the hand lifts
          // (11 of 15 hard seeds lost with a capsule, none with a box).
          colliders: [{ shape: { kind: 'box', halfExtents: [JUJUBE.radius, JUJUBE.radius, JUJUBE.radius + JUJUBE.halfHeight] }, friction: 1.0 }],
        },
      ],
    };
  },

  evaluate(s: SimState): Evaluation {
    const checks = jujubeCupChecks(s);
    const success = Object.values(checks).every(Boolean);
    const failure = ['jujube', 'cup', 'plate'].some((o) => objectPose(s, o).p[2] < TABLE_TOP - 0.05);
    return { predicates: { ...stagePredicates(STAGES, s), ...graspPredicates(s, [JUJUBE_SPEC, CUP_SPEC]), ...checks, success }, stage: currentStage(ROUNDS, s), success, failure };
  },

  expert(_r: Randomization, tools: ExpertTools): Expert {
    const jujubeSteps = pickPlaceScript(0, JUJUBE_SPEC, {
      yaw: () => 0,
      carryHeight: JUJUBE_SPEC.graspOffset[2] + 0.04,
      placeHeight: JUJUBE_SPEC.graspOffset[2],
      openWidth: 0.025,
      raise: 0.05,
      align: true,
    });
    // The cup round: the handle point comes from the cup's actual pose (it may have turned a little).
    const atHandle = (s: SimState, dz: number): Pose => {
      const h = handleGraspPoint(objectPose(s, 'cup'));
      return { p: [h[0], h[1], h[2] - HANDLE_GRASP_Z + dz], q: topDown(0) };
    };
    const overPlate = (s: SimState, dz: number): Pose => {
      const t = CUP_SPEC.target(s);
      return { p: [t[0] + CUP_SPEC.graspOffset[0], t[1] + CUP_SPEC.graspOffset[1], t[2] + dz], q: topDown(0) };
    };
    // Closed-loop aiming as in pickPlaceScript (see the 'align' step): a probe, then the tool is
    // measured against the handle before closing, and the cup against the plate before letting go.
    const handleError = (s: SimState) => sub(s.ee.p, atHandle(s, HANDLE_GRASP_Z).p);
    const cupError = (s: SimState) => {
      const e = sub(objectPose(s, 'cup').p, CUP_SPEC.target(s));
      return [e[0], e[1], 0] as Vec3;
    };
    const cupSteps: ExpertStep[] = [
      { kind: 'move', stage: 9, gripper: 0.025, target: (s) => atHandle(s, HANDLE_GRASP_Z + 0.1), resetCorrections: true },
      { kind: 'move', stage: 10, target: (s) => atHandle(s, HANDLE_GRASP_Z), speed: 0.6, correct: 'handle' },
      { kind: 'move', stage: 10, target: (s) => atHandle(s, HANDLE_GRASP_Z), path: 'line', speed: PROBE_SPEED, correct: 'handle', noSettle: true },
      { kind: 'align', stage: 10, key: 'handle', error: handleError, ok: (e) => graspAligned(e, 0), back: () => 1, retries: ALIGN_RETRIES },
      { kind: 'grip', stage: 11, opening: 0 },
      { kind: 'wait', stage: 12, seconds: 0.5 },
      // A gentle lift: the cup hangs from a pinch on its handle, and an abrupt start left it behind
      // the hand (2.4 cm/s relative to the tool for a step), so the settle predicate dropped (seeds
      // 0-9: 6 episodes, 16 drops with a 0.35 rad/s joint move). A straight line whose speed ramps
      // up over 0.4 s.
      { kind: 'move', stage: 13, target: (_s, prev) => lifted(prev, CUP_SPEC.liftHeight), path: 'line', speed: 0.2, rampS: 0.4 },
      // Not held after the lift: open, go back above the handle and try again.
      { kind: 'check', stage: 13, ok: (s) => isHeld(s, CUP_SPEC), back: 7, retries: 2 },
      { kind: 'move', stage: 14, target: (s) => overPlate(s, HANDLE_GRASP_Z + 0.09), speed: 0.6 },
      { kind: 'move', stage: 15, target: (s) => overPlate(s, HANDLE_GRASP_Z + 0.035), speed: 0.5, correct: 'plate' },
      { kind: 'move', stage: 16, target: (s) => overPlate(s, HANDLE_GRASP_Z + 0.004), speed: 0.3, correct: 'plate' },
      { kind: 'move', stage: 16, target: (s) => overPlate(s, HANDLE_GRASP_Z + 0.004), path: 'line', speed: PROBE_SPEED, correct: 'plate', noSettle: true },
      {
        kind: 'align',
        stage: 16,
        key: 'plate',
        error: cupError,
        ok: (e, s) => !isHeld(s, CUP_SPEC) || Math.hypot(e[0], e[1]) <= PLACE_ALIGN * CUP_SPEC.placeTolXY,
        back: () => 1,
        retries: ALIGN_RETRIES,
      },
      { kind: 'grip', stage: 17, opening: 0.025 },
      { kind: 'move', stage: 18, target: (_s, prev) => lifted(prev, 0.05), speed: 0.6 },
    ];
    return new ScriptedExpert([...jujubeSteps, ...cupSteps], STAGES.map((st) => st.name), tools);
  },
};
