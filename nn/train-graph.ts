/**
 * The training-step artefact: the model's forward pass, its loss, reverse-mode gradients and the
 * AdamW update in one ONNX graph. Inputs: the batch, every parameter, the optimizer state. Outputs:
 * the updated parameters and state, the loss, the gradient norm and any metrics.
 */
import { gradientsOrNull } from './autodiff.ts';
import type { Graph, Tensor } from './graph.ts';
import { traceForward, type ModelDefinition } from './model.ts';
import { adamw, resolveAdamW, type AdamWConfig, type ResolvedAdamW } from './optim.ts';

/** Builds the loss from the forward outputs; may declare extra inputs (targets) on `g`. */
export type LossFn = (g: Graph, outputs: Record<string, Tensor>) => { loss: Tensor; metrics?: Record<string, Tensor> };

/** Names of the optimizer inputs and outputs of a training graph. */
export const TRAIN_IO = {
  m: 'optim.m',
  v: 'optim.v',
  step: 'optim.step',
  lr: 'optim.lr',
  nextM: 'optim.m/next',
  nextV: 'optim.v/next',
  loss: 'loss',
  gradNorm: 'grad_norm',
  /** Squared gradient norm of each trainable parameter, [P] float64 in `trainable` order. */
  gradSquares: 'grad_sq',
  appliedLr: 'lr',
  /** Updated parameter `name` is output `${name}/next`. */
  next: (name: string): string => `${name}/next`,
  metric: (name: string): string => `metric/${name}`,
  forward: (name: string): string => `forward/${name}`,
} as const;

/** Where each trainable parameter sits in the flat moment vectors. */
export interface ParamSlot {
  name: string;
  shape: readonly number[];
  offset: number;
  size: number;
}

/** Everything a runner needs to feed and read a training graph. */
export interface TrainingLayout {
  /** Batch inputs (declared by forward and loss), in graph order. */
  batchInputs: { name: string; shape: readonly (number | string)[]; dtype: string }[];
  trainable: ParamSlot[];
  /** Frozen parameters: fed like the others, never updated. */
  frozen: string[];
  /**
   * Trainable parameters this loss does not reach (unused by it, or cut by `stopGradient`): fed,
   * never updated, no moments, as PyTorch skips parameters whose grad is None.
   */
  unreached: string[];
  /** Length of the flat moment vectors. */
  flatSize: number;
  metrics: string[];
  forwardOutputs: string[];
  optimizer: ResolvedAdamW;
}

/** Options of `buildTrainingGraph`. */
export interface TrainingGraphOptions {
  optimizer: AdamWConfig;
  /** Also output the forward pass's outputs (as `forward/<name>`). Default false (saves copies). */
  exposeForward?: boolean;
  /** float64 for gradient checks. */
  floatType?: 'float32' | 'float64';
  /** Trace the model in training mode (dropout active). Default true. */
  training?: boolean;
}

/** Traces `model` + `loss` + gradients + AdamW into one graph. */
export function buildTrainingGraph(model: ModelDefinition, loss: LossFn, options: TrainingGraphOptions): { graph: Graph; layout: TrainingLayout } {
  const cfg = resolveAdamW(options.optimizer);
  const { graph: g, outputs } = traceForward(model, options.floatType, { training: options.training ?? true });
  const { loss: lossTensor, metrics = {} } = loss(g, outputs);
  if (lossTensor.rank !== 0) throw new Error(`loss must be a scalar, got ${lossTensor}`);

  const used = g.params;
  const candidates = used.filter((p) => p.trainable);
  if (candidates.length === 0) throw new Error('buildTrainingGraph: the loss uses no trainable parameter');
  const maybeGrads = gradientsOrNull(lossTensor, candidates.map((p) => g.param(p)));
  const trainable = candidates.filter((_, i) => maybeGrads[i] !== null);
  const unreached = candidates.filter((_, i) => maybeGrads[i] === null).map((p) => p.name);
  if (trainable.length === 0) {
    throw new Error(`buildTrainingGraph: the loss reaches none of the ${candidates.length} trainable parameters (stopGradient or unused outputs?)`);
  }
  const grads = maybeGrads.filter((d): d is Tensor => d !== null);

  let offset = 0;
  const slots: ParamSlot[] = trainable.map((p) => {
    const slot = { name: p.name, shape: p.shape, offset, size: p.data.length };
    offset += p.data.length;
    return slot;
  });
  const state = {
    m: g.input(TRAIN_IO.m, [offset]),
    v: g.input(TRAIN_IO.v, [offset]),
    step: g.input(TRAIN_IO.step, []),
    lr: g.input(TRAIN_IO.lr, []),
  };
  const upd = adamw(g, trainable, grads, cfg, state);

  // Forward outputs are registered by traceForward under their own names; training exports only
  // the names below, re-registered under their training names.
  upd.params.forEach((t, i) => g.output(TRAIN_IO.next(trainable[i].name), t));
  g.output(TRAIN_IO.nextM, upd.m);
  g.output(TRAIN_IO.nextV, upd.v);
  g.output(TRAIN_IO.loss, lossTensor);
  g.output(TRAIN_IO.gradNorm, upd.gradNorm);
  g.output(TRAIN_IO.gradSquares, upd.gradSquares);
  g.output(TRAIN_IO.appliedLr, upd.lr);
  for (const [name, t] of Object.entries(metrics)) g.output(TRAIN_IO.metric(name), t);
  const forwardOutputs = options.exposeForward ? Object.keys(outputs) : [];
  for (const name of forwardOutputs) g.output(TRAIN_IO.forward(name), outputs[name]);

  const paramNames = new Set(used.map((p) => p.name));
  const batchInputs = g.inputs
    .filter((t) => !paramNames.has(t.name) && ![TRAIN_IO.m, TRAIN_IO.v, TRAIN_IO.step, TRAIN_IO.lr].includes(t.name as never))
    .map((t) => ({ name: t.name, shape: t.shape, dtype: t.dtype }));
  return {
    graph: g,
    layout: {
      batchInputs,
      trainable: slots,
      frozen: used.filter((p) => !p.trainable).map((p) => p.name),
      unreached,
      flatSize: offset,
      metrics: Object.keys(metrics),
      forwardOutputs,
      optimizer: cfg,
    },
  };
}

/** The ONNX output names of a training graph, in a fixed order. */
export function trainingOutputNames(layout: TrainingLayout): string[] {
  return [
    ...layout.trainable.map((s) => TRAIN_IO.next(s.name)),
    TRAIN_IO.nextM,
    TRAIN_IO.nextV,
    TRAIN_IO.loss,
    TRAIN_IO.gradNorm,
    TRAIN_IO.gradSquares,
    TRAIN_IO.appliedLr,
    ...layout.metrics.map(TRAIN_IO.metric),
    ...layout.forwardOutputs.map(TRAIN_IO.forward),
  ];
}

/** Encodes the training graph as ONNX bytes (parameters as inputs). */
export function encodeTrainingGraph(graph: Graph, layout: TrainingLayout): Uint8Array {
  return graph.toModel({ params: 'input', outputs: trainingOutputNames(layout) });
}
