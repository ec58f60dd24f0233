/**
 * The SAR scorer: an image encoder over both cameras and a text encoder over the stage texts,
 * projected into one embedding space where cosine similarity says how well a text describes the
 * scene.
 *
 * - Image encoder (its own small network): each camera's image [B,3,H,W] in 0..1 is cut into p x p
 *   patches, each patch projected to `patchWidth` (GELU), the patch grid flattened in order (so
 *   the encoder knows WHERE things are: a finger beside the block and a finger on it differ only
 *   in position), both cameras concatenated, then an MLP to `embedDim`.
 * - Keypoints (`keypoints` > 0), per camera: finer patches (`keypointPatch`) -> `keypointChannels`
 *   (GELU) -> one logit map per keypoint, times a learnt per-keypoint scale -> spatial softmax -> the expected (x, y) of each
 *   keypoint, in units of keypoint patches from the image centre. They join the flattened patch
 *   features at the MLP's input. The 8x8 patch grid says which patch a block is in; an expected
 *   position moves by a fraction of a patch when the block does (a block lifted 1 cm in the hand
 *   and one left on the table differ by a pixel or two in the side camera).
 * - Text encoder: token embeddings (nn/tokenizer.ts ids) masked, flattened in order, MLP to
 *   `embedDim`. Word order matters ("above the block beside the target" vs "beside the block above
 *   the target").
 * - Both outputs are L2-normalised.
 *
 * Parameters are under `sar.*`. The same definition traces into the triplet-loss training graph
 * (rewards/sar/train.ts) and into `sar.onnx` (inputs `image_eye_side`, `image_eye_arm` [B,3,H,W],
 * `text_ids` int64 [T,L], `text_mask` [T,L]; outputs `image_embedding` [B,D], `text_embedding` [T,D]).
 */
import type { Graph, Tensor } from '../../nn/graph.ts';
import { Embedding, Linear, MLP, SpatialKeypoints, gelu, patchify } from '../../nn/layers.ts';
import type { ModelDefinition } from '../../nn/model.ts';
import * as op from '../../nn/ops.ts';
import { ParamSet } from '../../nn/params.ts';
import type { SarConfig } from './config.ts';

/** Camera names the scorer reads, in input order. */
export const SAR_CAMERAS = ['eye_side', 'eye_arm'] as const;

/** The scorer's layers; `image(g, side, arm)` and `text(g, ids, mask)` emit its graph parts. */
export class SarNetwork {
  readonly params: ParamSet;
  private readonly patchProj: Record<(typeof SAR_CAMERAS)[number], Linear>;
  private readonly keypointLayers: Record<(typeof SAR_CAMERAS)[number], SpatialKeypoints> | null;
  private readonly imageMlp: MLP;
  private readonly tokens: Embedding;
  private readonly textMlp: MLP;
  readonly patches: number;

  constructor(
    readonly model: Readonly<SarConfig['model']>,
    readonly vocabSize: number,
    readonly textLength: number,
  ) {
    this.params = new ParamSet(model.seed);
    const { imageSize, patch, patchWidth, hidden, textWidth, embedDim } = model;
    this.patches = (imageSize / patch) ** 2;
    this.patchProj = {
      eye_side: new Linear(this.params, 'sar.image.eye_side.patch', 3 * patch * patch, patchWidth),
      eye_arm: new Linear(this.params, 'sar.image.eye_arm.patch', 3 * patch * patch, patchWidth),
    };
    const { keypoints, keypointPatch, keypointChannels } = model;
    if (keypoints > 0 && imageSize % keypointPatch !== 0) throw new Error(`SarNetwork: model.keypointPatch ${keypointPatch} must divide model.imageSize ${imageSize}`);
    const kp = (cam: string) => new SpatialKeypoints(this.params, `sar.image.${cam}.kp`, { inChannels: 3, patch: keypointPatch, channels: keypointChannels, keypoints, scale: model.keypointScale });
    this.keypointLayers = keypoints > 0 ? { eye_side: kp('eye_side'), eye_arm: kp('eye_arm') } : null;
    const perCamera = this.patches * patchWidth + 2 * keypoints;
    this.imageMlp = new MLP(this.params, 'sar.image.mlp', [SAR_CAMERAS.length * perCamera, hidden, embedDim], 'gelu');
    this.tokens = new Embedding(this.params, 'sar.text.tokens', vocabSize, textWidth);
    this.textMlp = new MLP(this.params, 'sar.text.mlp', [textLength * textWidth, hidden, embedDim], 'gelu');
  }

  /** Image embedding [B, D] (normalised) of both cameras' images [B,3,H,W] in 0..1. */
  image(side: Tensor, arm: Tensor): Tensor {
    const parts = ([side, arm] as const).map((img, i) => {
      const cam = SAR_CAMERAS[i];
      const centred = op.sub(img, 0.5);
      const p = patchify(centred, this.model.patch);
      const h = gelu(this.patchProj[cam].apply(p));
      const flat = op.reshape(h, [0, this.patches * this.model.patchWidth]);
      return this.keypointLayers ? op.concat([flat, this.keypointCoords(img, cam)], 1) : flat;
    });
    return l2normalize(this.imageMlp.apply(op.concat(parts, 1)));
  }

  /**
   * Spatial softmax of one camera's image [B,3,S,S] in 0..1 -> [B, 2K] (x0, y0, x1, y1, ...): per keypoint the
   * softmax-weighted mean of the patch centres (x, y), scaled from -1..1 to patch units (-n/2..n/2)
   * so that a one-pixel move is not lost against the patch features' scale at the MLP's input.
   */
  keypointCoords(img: Tensor, cam: (typeof SAR_CAMERAS)[number]): Tensor {
    const { imageSize, keypointPatch, keypoints } = this.model;
    if (!this.keypointLayers) throw new Error('SarNetwork.keypointCoords: model.keypoints is 0 (no keypoint path)');
    const n = imageSize / keypointPatch;
    const expected = this.keypointLayers[cam].apply(op.sub(img, 0.5)); // [B, K, 2]
    return op.mul(op.reshape(expected, [0, 2 * keypoints]), n / 2);
  }

  /** Text embedding [T, D] (normalised) of token ids [T, L] with mask [T, L]. */
  text(ids: Tensor, mask: Tensor): Tensor {
    const e = op.mul(this.tokens.apply(ids), op.unsqueeze(mask, [2]));
    return l2normalize(this.textMlp.apply(op.reshape(e, [0, this.textLength * this.model.textWidth])));
  }

  /** Declares the image inputs on `g`. */
  imageInputs(g: Graph, batch: number | string = 'B'): { side: Tensor; arm: Tensor } {
    const s = this.model.imageSize;
    return { side: g.input('image_eye_side', [batch, 3, s, s]), arm: g.input('image_eye_arm', [batch, 3, s, s]) };
  }

  /** Declares the text inputs on `g` ([T, L], T a number for training graphs). */
  textInputs(g: Graph, count: number | string = 'T'): { ids: Tensor; mask: Tensor } {
    return { ids: g.input('text_ids', [count, this.textLength], 'int64'), mask: g.input('text_mask', [count, this.textLength]) };
  }

  /** The inference model (what sar.onnx holds). */
  inference(): ModelDefinition {
    return {
      params: this.params,
      name: 'sar',
      forward: (g) => {
        const { side, arm } = this.imageInputs(g);
        const { ids, mask } = this.textInputs(g);
        return { image_embedding: this.image(side, arm), text_embedding: this.text(ids, mask) };
      },
    };
  }
}

/** x / sqrt(|x|^2 + 1e-12) over the last axis. */
export function l2normalize(x: Tensor): Tensor {
  return op.div(x, op.sqrt(op.add(op.reduceSum(op.mul(x, x), [-1], true), 1e-12)));
}
