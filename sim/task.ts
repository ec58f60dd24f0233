/**
 * The task interface: how a scene, its randomisation, its stages and its scripted expert plug into
 * the Env. Tasks live in tasks/ (one file each) and implement this; the Env only knows this shape.
 */
import type { Rng } from './rng.ts';
import type { Action, ActionMode, Pose, SceneDesc, SimState, Vec3 } from './types.ts';

/** Texts for the stage-aligned reward, written without colour words. */
export interface StageTexts {
  /** True when the stage is done, e.g. "the gripper holds the block above the table". */
  positive: string;
  /** A mutually exclusive state, e.g. "the block rests on the table, the gripper is empty". */
  negative: string;
  /** Near misses, e.g. "the gripper touches the block but does not hold it". */
  nearMisses: string[];
}

/** One stage of a long-horizon task. Stages are data. */
export interface Stage {
  name: string;
  /** Object the stage concerns (a key of SimState.objects). */
  object: string;
  /** Ground-truth predicate over the world state. */
  done(state: SimState): boolean;
  texts: StageTexts;
}

/** What evaluate() returns: named predicates plus the episode's verdict. */
export interface Evaluation {
  predicates: Record<string, boolean>;
  /** Index of the current (first not-yet-completed) stage, 0..stages.length. */
  stage: number;
  success: boolean;
  failure: boolean;
}

/** Read-only tools a scripted expert may use (robot kinematics), provided by the Env. */
export interface ExpertTools {
  /** Joint positions reaching a tool pose (world frame), starting from `seed` joints. */
  ik(target: Pose, seed: number[]): { q: number[]; ok: boolean; posErr: number; rotErr: number };
  /** Tool pose (world frame) for joint positions. */
  fk(q: number[]): Pose;
  readonly actionMode: ActionMode;
  /** Control period in seconds (1/60 by default). */
  readonly controlDt: number;
  /**
   * Optional perturbation of the expert's tool targets (robustness benchmarks): given a target
   * position and the expert's elapsed time (s), the position it should aim at instead.
   */
  perturbTarget?: (p: Vec3, time: number) => Vec3;
}

/** A scripted expert: a state machine over IK targets that reports the stage it executes. */
export interface Expert {
  act(state: SimState): { action: Action; stage: number; stageName: string };
}

/** Per-episode randomised parameters (object placements etc.), produced from a seeded Rng. */
export type Randomization = Record<string, unknown>;

export interface Task {
  /** Registry id, e.g. 'stack'. */
  id: string;
  instruction: string;
  /** Episode time limit in control steps. */
  maxSteps: number;
  stages: Stage[];
  /** Scene for the given randomisation (object poses already applied). */
  buildScene(randomization: Randomization): SceneDesc;
  /** Sample this episode's randomisation. All randomness flows from `rng`. */
  randomize(rng: Rng): Randomization;
  /** Named predicates, current stage, success and failure for the world state. */
  evaluate(state: SimState, randomization: Randomization): Evaluation;
  /** Build a scripted expert for one episode. */
  expert(randomization: Randomization, tools: ExpertTools): Expert;
}
