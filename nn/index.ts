/**
 * The public API of nn/, the tensor engine: define a model in TypeScript, export it as a
 * self-contained ONNX model, train it with generated ONNX training graphs on onnxruntime-node.
 * See docs/nn.md.
 */
export { Graph, Tensor, OPSET, type Dim, type DType, type Shape, type Parameter } from './graph.ts';
export * as op from './ops.ts';
export { gradients } from './autodiff.ts';
export { ParamSet, init, type Initializer, type ParamOptions } from './params.ts';
export {
  Linear,
  Embedding,
  LayerNorm,
  MLP,
  MultiHeadAttention,
  TransformerBlock,
  patchify,
  gelu,
  geluTanh,
  activate,
  keyMaskBias,
  causalBias,
  type Activation,
} from './layers.ts';
export { mse, l1, crossEntropy, tripletMargin, gaussianLogProb, gaussianEntropy, ppoLoss, type PpoConfig, type PpoInputs, type PpoTerms } from './losses.ts';
export { exportInference, saveInference, traceForward, writeFileAtomic, type ForwardFn, type ModelDefinition } from './model.ts';
export { adamw, resolveAdamW, type AdamWConfig } from './optim.ts';
export { buildTrainingGraph, encodeTrainingGraph, trainingOutputNames, TRAIN_IO, type LossFn, type TrainingLayout } from './train-graph.ts';
export { Trainer, type TrainerOptions, type StepResult, type OptimizerState } from './trainer.ts';
export { ModelRunner } from './runner.ts';
export { createSession, cudaStatus, padBatch, sliceBatch, Session, type ExecutionProvider, type HostTensor, type HostData, type SessionOptions } from './runtime.ts';
export { saveCheckpoint, loadCheckpoint, encodeSafetensors, decodeSafetensors, type CheckpointContents, type StoredTensor } from './checkpoint.ts';
export { Tokenizer, words, fnv1a, DEFAULT_BUCKETS, DEFAULT_MAX_LENGTH, type TokenizerSpec, type Encoded } from './tokenizer.ts';
