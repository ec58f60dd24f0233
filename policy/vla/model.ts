/**
 * The tiny VLA: a vision-language-action policy small enough to train and run on a CPU.
 *
 *   image_<camera> [B,3,S,S] --stem (patch 4 -> 32 ch, GELU) --group (4x4 cells -> token)--+
 *   instruction [B,L] int64 --embedding, masked mean -> 1 token ---------------------------+
 *   proprio [B,7] --normalise, Linear -> 1 token -------------------------------------------+--> [CLS, ...] transformer --> LN(CLS) = features [B,F]
 *   memory [B,M,F] + memory_mask [B,M] (optional) --Linear -> M tokens (masked) ------------+
 *
 *   features --head.action MLP--> action chunk [B,K,7] (normalised; denormalised with the dataset
 *   statistics baked into the graph), head.log_std [7], head.value_ext / head.value_int [B].
 *
 * The two parts have separate parameter prefixes, `trunk.*` and `head.*`, so PPO can freeze the
 * trunk, cache features and train the heads alone (`trunkModel` / `headModel` give each part as
 * its own model). The image encoder is a two-stage strided convolution with kernel = stride
 * written as patchify + Linear (non-overlapping, so no im2col cost): 64x64 -> 16x16 cells of 32
 * channels -> 4x4 tokens per camera; 2 cameras give 32 image tokens, 35 tokens in all, which keeps
 * attention cheap on a CPU.
 */
import { Graph, type Tensor } from '../../nn/graph.ts';
import { Embedding, LayerNorm, Linear, MLP, TransformerBlock, SpatialKeypoints, gelu, keyMaskBias, patchify } from '../../nn/layers.ts';
import { exportInference, type ModelDefinition } from '../../nn/model.ts';
import * as op from '../../nn/ops.ts';
import { ParamSet, init } from '../../nn/params.ts';
import type { Tokenizer } from '../../nn/tokenizer.ts';
import type { VlaConfig } from './config.ts';

/** Proprioception and action sizes: 6 joints + gripper. */
export const PROPRIO_DIM = 7;
export const ACTION_DIM = 7;

/**
 * Per-dimension mean and standard deviation of proprio and actions over the training data. With
 * `model.actionFrame: delta` the action statistics are those of the predicted quantity: joint
 * target minus the current joint position over every offset of the chunk (gripper absolute).
 */
export interface NormStats {
  proprioMean: number[];
  proprioStd: number[];
  actionMean: number[];
  actionStd: number[];
}

/** Statistics that change nothing (mean 0, std 1): for an untrained model. */
export function identityStats(): NormStats {
  const z = () => new Array<number>(7).fill(0);
  const o = () => new Array<number>(7).fill(1);
  return { proprioMean: z(), proprioStd: o(), actionMean: z(), actionStd: o() };
}

/** Names of the model's inputs and outputs (the policy.onnx contract, docs/policy.md). */
export const VLA_IO = {
  proprio: 'proprio',
  image: (camera: string): string => `image_${camera}`,
  instruction: 'instruction',
  memory: 'memory',
  memoryMask: 'memory_mask',
  action: 'action',
  actionNorm: 'action_norm',
  logStd: 'action_log_std',
  valueExt: 'value_ext',
  valueInt: 'value_int',
  features: 'features',
} as const;

/** Which action dimensions are predicted relative to proprio in `frame` (the six joints in delta mode). */
export function relativeDims(frame: VlaConfig['actionFrame']): boolean[] {
  return Array.from({ length: ACTION_DIM }, (_, d) => frame === 'delta' && d < 6);
}

/** The graph's `proprio` input [B,7], declared once however many parts of the model read it. */
export function proprioInput(g: Graph): Tensor {
  return g.inputs.find((t) => t.name === VLA_IO.proprio) ?? g.input(VLA_IO.proprio, ['B', PROPRIO_DIM]);
}

/** The image, text, proprio (and memory) encoder + transformer: inputs -> pooled features [B,F]. */
export class VlaTrunk {
  readonly stem: Linear;
  readonly group: Linear;
  readonly pos: Record<string, Tensor | null> = {};
  readonly posParams: Record<string, ReturnType<ParamSet['add']>>;
  readonly text: Embedding;
  readonly textType: ReturnType<ParamSet['add']>;
  readonly proprio: Linear;
  readonly cls: ReturnType<ParamSet['add']>;
  readonly memory: Linear | null;
  readonly blocks: TransformerBlock[] = [];
  readonly norm: LayerNorm;
  /** Keypoint path per camera (model.keypoints > 0): patch stem, logit maps, coordinates -> token. */
  readonly keypoints: Record<string, { points: SpatialKeypoints; token: Linear }> = {};
  /** Tokens per camera (patch tokens + the keypoint token when enabled). */
  readonly tokensPerCamera: number;

  constructor(
    params: ParamSet,
    readonly config: VlaConfig,
    readonly vocabSize: number,
    readonly stats: NormStats,
  ) {
    const c = config;
    const cell = c.stemPatch * c.groupPatch;
    if (c.imageSize % cell !== 0) throw new Error(`model.imageSize ${c.imageSize} must be a multiple of stemPatch * groupPatch = ${cell}`);
    if (c.width % c.heads !== 0) throw new Error(`model.width ${c.width} must be divisible by model.heads ${c.heads}`);
    const grid = c.imageSize / cell;
    if (c.keypoints > 0 && c.imageSize % c.keypointPatch !== 0) throw new Error(`model.imageSize ${c.imageSize} must be a multiple of model.keypointPatch ${c.keypointPatch}`);
    this.tokensPerCamera = grid * grid + (c.keypoints > 0 ? 1 : 0);
    this.stem = new Linear(params, 'trunk.stem', 3 * c.stemPatch * c.stemPatch, c.stemChannels);
    this.group = new Linear(params, 'trunk.group', c.groupPatch * c.groupPatch * c.stemChannels, c.width);
    this.posParams = Object.fromEntries(c.cameras.map((cam) => [cam, params.add(`trunk.pos.${cam}`, [grid * grid, c.width], init.truncatedNormal(0.02), { decay: false })]));
    if (c.keypoints > 0) {
      for (const cam of c.cameras) {
        this.keypoints[cam] = {
          points: new SpatialKeypoints(params, `trunk.kp.${cam}`, { inChannels: 3, patch: c.keypointPatch, channels: c.keypointChannels, keypoints: c.keypoints, scale: c.keypointScale }),
          token: new Linear(params, `trunk.kp.${cam}.token`, 2 * c.keypoints, c.width),
        };
      }
    }
    this.text = new Embedding(params, 'trunk.text', vocabSize, c.width);
    this.textType = params.add('trunk.text_type', [c.width], init.truncatedNormal(0.02), { decay: false });
    this.proprio = new Linear(params, 'trunk.proprio', PROPRIO_DIM, c.width);
    this.cls = params.add('trunk.cls', [c.width], init.truncatedNormal(0.02), { decay: false });
    this.memory = c.memorySlots > 0 ? new Linear(params, 'trunk.memory', c.width, c.width) : null;
    for (let i = 0; i < c.depth; i++) this.blocks.push(new TransformerBlock(params, `trunk.block${i}`, c.width, c.heads, c.mlpRatio, 'gelu'));
    this.norm = new LayerNorm(params, 'trunk.norm', c.width);
  }

  /** Image [B,3,S,S] in 0..1 -> tokens [B, tokensPerCamera, width]. */
  private encodeImage(g: Graph, image: Tensor, camera: string): Tensor {
    const c = this.config;
    const n1 = c.imageSize / c.stemPatch;
    const grid = n1 / c.groupPatch;
    // Centre the pixels around 0 (a fixed affine map; the stem learns the rest).
    const x = op.mul(op.sub(image, 0.5), 4);
    const cells = gelu(this.stem.apply(patchify(x, c.stemPatch))); // [B, n1*n1, C]
    // Regroup cells into groupPatch x groupPatch blocks: [B, gy, iy, gx, ix, C] -> [B, gy, gx, iy, ix, C].
    const split = op.reshape(cells, [0, grid, c.groupPatch, grid, c.groupPatch, c.stemChannels]);
    const grouped = op.reshape(op.transpose(split, [0, 1, 3, 2, 4, 5]), [0, grid * grid, c.groupPatch * c.groupPatch * c.stemChannels]);
    const tokens = op.add(this.group.apply(grouped), g.param(this.posParams[camera]));
    return c.keypoints > 0 ? op.concat([tokens, this.keypointToken(x, camera)], 1) : tokens;
  }

  /**
   * Spatial softmax: centred image [B,3,S,S] -> per keypoint map, the softmax-weighted mean of the
   * patch centres' coordinates (x, y in -1..1) -> one token [B,1,width] from the 2K coordinates.
   */
  private keypointToken(x: Tensor, camera: string): Tensor {
    const c = this.config;
    const kp = this.keypoints[camera];
    const expected = kp.points.apply(x); // [B, K, 2]
    return op.unsqueeze(kp.token.apply(op.reshape(expected, [0, 2 * c.keypoints])), [1]);
  }

  /** Declares the trunk's inputs on `g` and returns the pooled features [B, F]. */
  apply(g: Graph): Tensor {
    const c = this.config;
    const s = this.stats;
    const B = 'B';
    const tokens: Tensor[] = [];
    const width = c.width;
    // CLS token, broadcast to the batch through the proprio token's shape.
    const proprioIn = proprioInput(g);
    const proprioNorm = op.div(op.sub(proprioIn, g.constant(s.proprioMean, [PROPRIO_DIM])), g.constant(s.proprioStd, [PROPRIO_DIM]));
    const proprioTok = op.unsqueeze(this.proprio.apply(proprioNorm), [1]); // [B,1,D]
    const clsTok = op.add(op.mul(proprioTok, 0), g.param(this.cls));
    tokens.push(clsTok, proprioTok);
    // Instruction: masked mean of word embeddings -> one token (ids 0 are padding).
    const ids = g.input(VLA_IO.instruction, [B, c.maxTokens], 'int64');
    const mask = op.cast(op.greater(op.cast(ids, 'float32'), 0.5), 'float32'); // [B,L]
    const emb = this.text.apply(ids); // [B,L,D]
    const summed = op.reduceSum(op.mul(emb, op.unsqueeze(mask, [2])), [1], true); // [B,1,D]
    const count = op.maximum(op.reduceSum(mask, [1], true), 1); // [B,1]
    tokens.push(op.add(op.div(summed, op.unsqueeze(count, [2])), g.param(this.textType)));
    for (const cam of c.cameras) tokens.push(this.encodeImage(g, g.input(VLA_IO.image(cam), [B, 3, c.imageSize, c.imageSize]), cam));
    let bias: Tensor | undefined;
    if (this.memory) {
      const mem = g.input(VLA_IO.memory, [B, c.memorySlots, width]);
      const memMask = g.input(VLA_IO.memoryMask, [B, c.memorySlots]);
      tokens.push(this.memory.apply(mem));
      const fixed = 3 + c.cameras.length * this.tokensPerCamera;
      // Key mask: the fixed tokens always, memory slots where filled.
      bias = keyMaskBias(op.pad(memMask, [0, fixed, 0, 0], 1));
    }
    let h = op.concat(tokens, 1);
    for (const block of this.blocks) h = block.apply(h, bias);
    const first = op.reshape(op.slice(h, [0], [1], [1]), [0, width]);
    return this.norm.apply(first);
  }
}

/** Outputs of the head. */
export interface HeadOutputs {
  /** Normalised action chunk [B,K,7]. */
  actionNorm: Tensor;
  /** log std of the action distribution in action units [7]. */
  logStd: Tensor;
  valueExt: Tensor;
  valueInt: Tensor;
}

/** Action mean, log_std and the two value heads, from features [B,F]. */
export class VlaHead {
  readonly action: MLP;
  readonly logStd: ReturnType<ParamSet['add']>;
  readonly valueExt: MLP;
  readonly valueInt: MLP;

  constructor(
    params: ParamSet,
    readonly config: VlaConfig,
    readonly stats: NormStats,
  ) {
    const c = config;
    this.action = new MLP(params, 'head.action', [c.width, c.headHidden, c.headHidden, c.chunk * ACTION_DIM], 'gelu');
    this.logStd = params.add('head.log_std', [ACTION_DIM], init.constant(c.initLogStd), { decay: false });
    this.valueExt = new MLP(params, 'head.value_ext', [c.width, c.headHidden, 1], 'gelu');
    this.valueInt = new MLP(params, 'head.value_int', [c.width, c.headHidden, 1], 'gelu');
  }

  apply(features: Tensor): HeadOutputs {
    const g = features.graph;
    const s = this.stats;
    const actionNorm = op.reshape(this.action.apply(features), [0, this.config.chunk, ACTION_DIM]);
    const logStd = op.add(g.param(this.logStd), g.constant(s.actionStd.map(Math.log), [ACTION_DIM]));
    return {
      actionNorm,
      logStd,
      valueExt: op.squeeze(this.valueExt.apply(features), [1]),
      valueInt: op.squeeze(this.valueInt.apply(features), [1]),
    };
  }

  /**
   * The action chunk in robot units [B,K,7] (absolute joint targets + gripper) from the normalised
   * one: denormalised with the dataset statistics and, in delta mode, plus the current joints
   * (the graph's `proprio` input, declared when the graph has none yet).
   */
  absolute(actionNorm: Tensor): Tensor {
    const g = actionNorm.graph;
    const s = this.stats;
    const action = op.add(op.mul(actionNorm, g.constant(s.actionStd, [ACTION_DIM])), g.constant(s.actionMean, [ACTION_DIM]));
    if (this.config.actionFrame !== 'delta') return action;
    // Joint targets = predicted step + current joints (gripper dimension: + 0), for every chunk step.
    const mask = g.constant(relativeDims('delta').map((r) => (r ? 1 : 0)), [ACTION_DIM]);
    return op.add(action, op.unsqueeze(op.mul(proprioInput(g), mask), [1]));
  }
}

/** A built VLA: parameters, parts and the model definitions traced from them. */
export interface Vla {
  config: VlaConfig;
  params: ParamSet;
  tokenizer: Tokenizer;
  stats: NormStats;
  trunk: VlaTrunk;
  head: VlaHead;
  /** The policy.onnx model: contract inputs -> action, action_log_std, value_ext, value_int, features. */
  inference: ModelDefinition;
  /** For behaviour cloning: the same inputs -> action_norm (the normalised chunk the loss reads). */
  training: ModelDefinition;
  /** Trunk alone: contract inputs -> features. */
  trunkModel: ModelDefinition;
  /** Heads alone: `features` [B,F] -> action, action_log_std, value_ext, value_int. */
  headModel: ModelDefinition;
  /**
   * Training-only auxiliary head (`aux.state.*`; `createVla`'s `auxStateDim` > 0, else null):
   * features [B,F] -> the objects' normalised positions relative to the tool. In the parameter set,
   * so checkpoints keep it; not in `inference` (policy.onnx).
   */
  auxState: MLP | null;
}

/**
 * The policy.onnx model: contract inputs -> action, action_log_std, value_ext, value_int, features.
 * `fuse` maps the trunk's features to what the heads read (PPO's memory fusion; the identity by
 * default); the `features` output stays the trunk's, as SAR and the memory bank expect.
 */
export function vlaInferenceModel(params: ParamSet, trunk: VlaTrunk, head: VlaHead, fuse: (g: Graph, features: Tensor) => Tensor = (_g, features) => features): ModelDefinition {
  return {
    params,
    name: 'evovla_vla',
    forward: (g) => {
      const features = trunk.apply(g);
      const h = head.apply(fuse(g, features));
      return {
        [VLA_IO.action]: head.absolute(h.actionNorm),
        [VLA_IO.logStd]: h.logStd,
        [VLA_IO.valueExt]: h.valueExt,
        [VLA_IO.valueInt]: h.valueInt,
        [VLA_IO.features]: features,
      };
    },
  };
}

/**
 * Builds the VLA's parameters (seeded) and model definitions. `auxStateDim` > 0 adds the training-only
 * auxiliary state head (built last, so the other parameters are the same with or without it).
 */
export function createVla(config: VlaConfig, tokenizer: Tokenizer, stats: NormStats, seed: number, options: { auxStateDim?: number } = {}): Vla {
  const auxStateDim = options.auxStateDim ?? 0;
  if (!Number.isInteger(auxStateDim) || auxStateDim < 0) throw new Error(`createVla: auxStateDim must be an integer >= 0, got ${auxStateDim}`);
  for (const [k, v] of Object.entries(stats) as [keyof NormStats, number[]][]) {
    if (v.length !== 7 || !v.every(Number.isFinite)) throw new Error(`norm stats ${k} must be 7 finite numbers, got [${v.join(', ')}]`);
    if (k.endsWith('Std') && !v.every((x) => x > 0)) throw new Error(`norm stats ${k} must be > 0, got [${v.join(', ')}]`);
  }
  if (tokenizer.maxLength !== config.maxTokens) throw new Error(`tokenizer length ${tokenizer.maxLength} differs from model.maxTokens ${config.maxTokens}`);
  const params = new ParamSet(seed);
  const trunk = new VlaTrunk(params, config, tokenizer.vocabSize, stats);
  const head = new VlaHead(params, config, stats);
  const inference = vlaInferenceModel(params, trunk, head);
  const training: ModelDefinition = { params, name: 'evovla_vla_bc', forward: (g) => ({ [VLA_IO.actionNorm]: head.apply(trunk.apply(g)).actionNorm }) };
  const trunkModel: ModelDefinition = { params, name: 'evovla_vla_trunk', forward: (g) => ({ [VLA_IO.features]: trunk.apply(g) }) };
  const headModel: ModelDefinition = {
    params,
    name: 'evovla_vla_head',
    forward: (g) => {
      const h = head.apply(g.input(VLA_IO.features, ['B', config.width]));
      return { [VLA_IO.action]: head.absolute(h.actionNorm), [VLA_IO.logStd]: h.logStd, [VLA_IO.valueExt]: h.valueExt, [VLA_IO.valueInt]: h.valueInt };
    },
  };
  const auxState = auxStateDim > 0 ? new MLP(params, 'aux.state', [config.width, config.headHidden, auxStateDim], 'gelu') : null;
  return { config, params, tokenizer, stats, trunk, head, inference, training, trunkModel, headModel, auxState };
}

/** Output size of the auxiliary state head stored in checkpoint tensors (0 when it has none). */
export function auxStateDimOf(tensorShapes: ReadonlyMap<string, { shape: readonly number[] }>): number {
  return tensorShapes.get('aux.state.1.bias')?.shape[0] ?? 0;
}

/** Parameter counts of the two parts and of the training-only auxiliary head (total = all three). */
export function parameterCounts(vla: Vla): { trunk: number; head: number; aux: number; total: number } {
  let trunk = 0;
  let head = 0;
  let aux = 0;
  for (const p of vla.params.list()) {
    if (p.name.startsWith('trunk.')) trunk += p.data.length;
    else if (p.name.startsWith('head.')) head += p.data.length;
    else if (p.name.startsWith('aux.')) aux += p.data.length;
  }
  return { trunk, head, aux, total: vla.params.count };
}

/** Metadata keys written into policy.onnx (docs/policy.md). */
export const VLA_META = {
  cameras: 'evovla.cameras',
  tokenizer: 'evovla.tokenizer',
  chunk: 'evovla.chunk',
  stats: 'evovla.norm_stats',
  config: 'evovla.model_config',
  task: 'evovla.task',
  instruction: 'evovla.instruction',
  memorySlots: 'evovla.memory_slots',
  featureSize: 'evovla.feature_size',
} as const;

/**
 * The metadata of an exported VLA: the deploy contract's keys (joint names and limits, cameras,
 * action mode) plus the tokenizer, chunk length, normalisation statistics and model config.
 */
export function vlaMetadata(vla: Vla, robot: { jointNames: string[]; limits: { lower: number; upper: number; velocity: number }[] }, extra: Record<string, string> = {}): Record<string, string> {
  const c = vla.config;
  return {
    'evovla.joint_names': robot.jointNames.join(','),
    'evovla.joint_limits': JSON.stringify(robot.limits.map((l) => [l.lower, l.upper, l.velocity])),
    'evovla.action_mode': 'joint',
    [VLA_META.cameras]: JSON.stringify(c.cameras.map((name) => ({ name, width: c.imageSize, height: c.imageSize }))),
    [VLA_META.tokenizer]: JSON.stringify(vla.tokenizer.toJSON()),
    [VLA_META.chunk]: String(c.chunk),
    [VLA_META.stats]: JSON.stringify(vla.stats),
    [VLA_META.config]: JSON.stringify(c),
    [VLA_META.memorySlots]: String(c.memorySlots),
    [VLA_META.featureSize]: String(c.width),
    ...extra,
  };
}

/** Exports the inference model with its metadata (bytes of a self-contained policy.onnx). */
export function exportVla(vla: Vla, robot: Parameters<typeof vlaMetadata>[1], extra: Record<string, string> = {}): Uint8Array {
  return exportInference(vla.inference, vlaMetadata(vla, robot, extra));
}
