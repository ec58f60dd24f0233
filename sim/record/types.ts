/**
 * Episode file contents: a versioned header, then one record per control step.
 * The on-disk framing (msgpack records with length + CRC32, atomic rename) lives beside this file.
 */
import type { CameraFrame, Pose, RewardTerms } from '../types.ts';

/**
 * Version written by this build. 2: step images are stored compressed (see `images.ts`);
 * 1: images stored raw. The version sits in the preamble, so a reader that knows only version 1
 * refuses a version-2 file instead of handing out compressed bytes as pixels.
 */
export const EPISODE_FORMAT_VERSION = 2;

/** Versions this build reads. */
export const READABLE_EPISODE_VERSIONS: readonly number[] = [1, 2];

export interface EpisodeHeader {
  format: 'evovla.episode';
  version: number;
  task: string;
  instruction: string;
  robot: string;
  seed: number;
  /** Control rate in Hz (60 by default). */
  controlHz: number;
  physicsHz: number;
  actionMode: 'joint' | 'ee_delta';
  /** Hash of the env + task config that produced the episode (replay refuses a mismatch). */
  configHash: string;
  /** Stage names in order, so readers need not load the task. */
  stages: string[];
  /** Names of the recorded cameras, empty when images are off. */
  cameras: string[];
  /** Free-form metadata (who wrote it: expert, policy checkpoint, ...). */
  meta: Record<string, unknown>;
}

export interface StepRecord {
  step: number;
  time: number;
  /**
   * The action of this step: what was applied, or, when `executedAction` is present, the label a
   * learner should imitate (the expert's clean action; see `executedAction`).
   */
  action: Float32Array;
  /**
   * Present when the env was stepped with an action other than `action`: demos recorded with
   * action noise (DART; the header's `meta.actionNoise` names the setting) execute the expert's
   * action plus noise and keep the clean one as `action`. Replay steps `executedAction ?? action`.
   */
  executedAction?: Float32Array;
  /** Joint positions (6) + gripper (1) after the step. */
  proprio: Float32Array;
  /** Arm link poses, for replay drawing without re-simulating. */
  links: Record<string, Pose>;
  ee: Pose;
  objects: Record<string, Pose>;
  predicates: Record<string, boolean>;
  /** Ground-truth stage index. */
  stage: number;
  /** Stage the expert/policy reports it is executing, when known. */
  commandedStage?: number;
  /** Stage the Stage-Aligned Reward model believed the episode was in (evaluation with SAR), when known. */
  sarStage?: number;
  /**
   * Stages the SAR gate claimed complete at this step (evaluation with SAR), each judged against
   * the ground truth: `hallucinated` when the stage's predicate was false and the ground-truth
   * stage was not past it (rewards/hallucination.ts).
   */
  sarClaims?: { stage: number; hallucinated: boolean }[];
  rewardTerms: RewardTerms;
  reward: number;
  terminated: boolean;
  truncated: boolean;
  /** Camera frames, decoded: readers always see raw typed arrays whatever the file's version. */
  images?: Record<string, CameraFrame>;
}

/** The footer written when an episode is closed cleanly. */
export interface EpisodeFooter {
  steps: number;
  success: boolean;
  /** Env.stateHash() after the last step; `evovla replay --verify` checks it. */
  finalStateHash: string;
  /** Highest ground-truth stage reached. */
  maxStage: number;
}
