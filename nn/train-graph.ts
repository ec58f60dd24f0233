/**
 * The training-step artefact: the model's forward pass, its loss, reverse-mode gradients and the
 * AdamW update in one ONNX graph. Inputs: the batch, every parameter, the optimizer state. Outputs:
 * the updated parameters and state, the loss, the gradient norm and any metrics.
 */
import { gradientsOrNull } from './autodiff.ts';
import { Graph, type Parameter, type Tensor } from './graph.ts';
import { traceForward, type ModelDefinition } from './model.ts';
import * as op from './ops.ts';
import { adamw, gradientSquares, resolveAdamW, type AdamWConfig, type ResolvedAdamW } from './optim.ts';

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
  /** Flat gradient [N] (gradient graphs) or the accumulated one fed to an update graph. */
  grad: 'grad',
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
  return buildGraph(model, loss, options, 'step');
}

/**
 * The gradient half of a training step, for gradient accumulation: the same inputs as the training
 * graph minus the optimizer state; outputs `grad` (the flat gradient [N], in the layout's
 * `trainable` order), `loss`, `grad_sq` and the metrics. The layout is the training graph's.
 */
export function buildGradientGraph(model: ModelDefinition, loss: LossFn, options: TrainingGraphOptions): { graph: Graph; layout: TrainingLayout } {
  return buildGraph(model, loss, options, 'gradient');
}

/**
 * The update half: inputs the trainable parameters, `grad` [N] and the optimizer state; outputs
 * the training graph's `<param>/next`, moments, `grad_norm`, `grad_sq` and `lr`.
 */
export function buildUpdateGraph(params: readonly Parameter[], layout: TrainingLayout, floatType: 'float32' | 'float64' = 'float32'): Graph {
  const byName = new Map(params.map((p) => [p.name, p]));
  const g = new Graph({ floatType, name: 'evovla_update' });
  const trainable = layout.trainable.map((s) => {
    const p = byName.get(s.name);
    if (!p) throw new Error(`buildUpdateGraph: no parameter ${s.name} in the given list`);
    return p;
  });
  const flat = g.input(TRAIN_IO.grad, [layout.flatSize]);
  const pieces = trainable.length === 1 ? [flat] : op.split(flat, layout.trainable.map((s) => s.size), 0);
  const grads = pieces.map((piece, i) => (trainable[i].shape.length === 1 ? piece : op.reshape(piece, trainable[i].shape)));
  for (const p of trainable) g.param(p);
  addOptimizerStep(g, trainable, grads, layout.optimizer, layout.flatSize);
  return g;
}

/**
 * The AdamW step of a training graph: the optimizer state as inputs (moments over the `flatSize`
 * trainable values, step, lr), and the updated parameters, moments, `grad_norm`, `grad_sq` and the
 * applied `lr` as outputs under their training names. Shared by the one-step graph and the update
 * half of gradient accumulation, so both keep the same interface.
 */
function addOptimizerStep(g: Graph, trainable: readonly Parameter[], grads: Tensor[], cfg: ResolvedAdamW, flatSize: number): void {
  const state = {
    m: g.input(TRAIN_IO.m, [flatSize]),
    v: g.input(TRAIN_IO.v, [flatSize]),
    step: g.input(TRAIN_IO.step, []),
    lr: g.input(TRAIN_IO.lr, []),
  };
  const upd = adamw(g, trainable, grads, cfg, state);
  upd.params.forEach((t, i) => g.output(TRAIN_IO.next(trainable[i].name), t));
  g.output(TRAIN_IO.nextM, upd.m);
  g.output(TRAIN_IO.nextV, upd.v);
  g.output(TRAIN_IO.gradNorm, upd.gradNorm);
  g.output(TRAIN_IO.gradSquares, upd.gradSquares);
  g.output(TRAIN_IO.appliedLr, upd.lr);
}

function buildGraph(model: ModelDefinition, loss: LossFn, options: TrainingGraphOptions, kind: 'step' | 'gradient'): { graph: Graph; layout: TrainingLayout } {
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
  if (kind === 'step') {
    // Forward outputs are registered by traceForward under their own names; training exports only
    // the optimizer's names, registered under their training names.
    addOptimizerStep(g, trainable, grads, cfg, offset);
  } else {
    const flatten = (t: Tensor): Tensor => (t.rank === 1 ? t : op.reshape(t, [-1]));
    g.output(TRAIN_IO.grad, grads.length === 1 ? flatten(grads[0]) : op.concat(grads.map(flatten), 0));
    g.output(TRAIN_IO.gradSquares, gradientSquares(grads));
  }
  g.output(TRAIN_IO.loss, lossTensor);
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

/** Output names of a gradient graph (`buildGradientGraph`). */
export function gradientOutputNames(layout: TrainingLayout): string[] {
  return [TRAIN_IO.grad, TRAIN_IO.gradSquares, TRAIN_IO.loss, ...layout.metrics.map(TRAIN_IO.metric), ...layout.forwardOutputs.map(TRAIN_IO.forward)];
}

/** Output names of an update graph (`buildUpdateGraph`). */
export function updateOutputNames(layout: TrainingLayout): string[] {
  return [...layout.trainable.map((s) => TRAIN_IO.next(s.name)), TRAIN_IO.nextM, TRAIN_IO.nextV, TRAIN_IO.gradNorm, TRAIN_IO.gradSquares, TRAIN_IO.appliedLr];
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
