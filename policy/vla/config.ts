/**
 * The VLA's architecture settings (the `model:` section of a training config), validated with zod.
 * Every field has a documented default; unknown keys are refused.
 */
import { z } from 'zod';

const posInt = (max: number) => z.number().int().min(1).max(max);

/** Schema of the `model:` section. */
export const VlaConfigSchema = z.strictObject({
  /** Cameras the policy sees, in input order; each becomes input `image_<name>`. */
  cameras: z.array(z.string().regex(/^[A-Za-z0-9_-]+$/)).min(1).default(['eye_side', 'eye_arm']),
  /** Square image side in pixels (images are [B, 3, size, size]). Must be a multiple of stemPatch * groupPatch. */
  imageSize: posInt(512).default(64),
  /**
   * Image encoder, stage 1: non-overlapping stemPatch x stemPatch patches, each projected to
   * stemChannels (a strided convolution with kernel = stride, written as patchify + Linear) + GELU.
   */
  stemPatch: posInt(32).default(4),
  stemChannels: posInt(512).default(32),
  /** Stage 2: groups of groupPatch x groupPatch stage-1 cells become one token (kernel = stride again). */
  groupPatch: posInt(16).default(4),
  /**
   * Spatial-softmax keypoints per camera (0: none). A second, fine image path: keypointPatch x
   * keypointPatch patches -> keypointChannels (GELU) -> one logit map per keypoint -> softmax over
   * the image positions -> the expected (x, y) of each map, in -1..1 (Levine et al. 2016, as
   * robomimic's visual policies use). The 2 x keypoints coordinates become one extra token per
   * camera. It gives the transformer sub-patch object positions that coarse patch tokens blur.
   */
  keypoints: z.number().int().min(0).max(256).default(0),
  keypointPatch: posInt(16).default(2),
  keypointChannels: posInt(256).default(16),
  /**
   * Initial sharpness of the keypoint maps: the logits are multiplied by a learnable per-keypoint
   * scale that starts here. At 1 the softmax over ~1,000 positions starts nearly uniform, every
   * keypoint sits at the image centre and the gradient that would move it is tiny (measured: the
   * maps stayed flat through a 4,000-step run); 10 starts them peaked enough to learn.
   */
  keypointScale: z.number().gt(0).max(1000).default(10),
  /** Transformer width (token size) and the pooled feature size F. */
  width: posInt(1024).default(128),
  /** Transformer blocks and attention heads. */
  depth: posInt(24).default(4),
  heads: posInt(32).default(4),
  /** Hidden size of each block's MLP, as a multiple of the width. */
  mlpRatio: posInt(8).default(2),
  /**
   * What the action head predicts for the six arm joints: `delta`, each joint target minus the
   * joint's current position (proprio), or `absolute` joint targets. Either way the `action`
   * output of policy.onnx is absolute joint targets (the offset is added in the graph); the gripper
   * opening is always absolute. `delta` is the default: with an eye-in-hand camera the step to the
   * object is what the image shows, and behaviour cloning with the privileged state reached further
   * with it (docs/policy.md).
   */
  actionFrame: z.enum(['absolute', 'delta']).default('delta'),
  /** Action chunk length K: the model predicts the next K actions. */
  chunk: posInt(100).default(16),
  /** Hidden size of the action and value head MLPs. */
  headHidden: posInt(2048).default(256),
  /** Memory tokens M (0: the model has no memory inputs). Each slot is a feature vector of size F. */
  memorySlots: z.number().int().min(0).max(256).default(0),
  /** Initial value of the learnable log standard deviation (normalised action units). */
  initLogStd: z.number().min(-10).max(2).default(-1),
  /** Tokenizer: hash buckets for unknown words and the instruction length L. */
  tokenizerBuckets: posInt(4096).default(64),
  maxTokens: posInt(256).default(24),
});

/** Resolved model settings. */
export type VlaConfig = z.infer<typeof VlaConfigSchema>;

/** Defaults for every field. */
export function defaultVlaConfig(): VlaConfig {
  return VlaConfigSchema.parse({});
}
