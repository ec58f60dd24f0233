/**
 * One model definition, two artefacts: `exportInference` traces the forward pass into a
 * self-contained ONNX model (weights as initializers, loadable by any ONNX Runtime), and
 * nn/train-graph.ts traces the same forward pass into the training step.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { makeDirectory } from '../sim/files.ts';
import { dirname } from 'node:path';
import { Graph, type Tensor } from './graph.ts';
import type { ParamSet } from './params.ts';

/** Declares the model's inputs on `g` (with `g.input`) and returns its named outputs. */
export type ForwardFn = (g: Graph) => Record<string, Tensor>;

/** A model: its parameters and its forward pass. */
export interface ModelDefinition {
  params: ParamSet;
  forward: ForwardFn;
  /** Graph name stored in the ONNX file. */
  name?: string;
}

/** Traces the forward pass into a fresh graph and registers its outputs. */
export function traceForward(model: ModelDefinition, floatType: 'float32' | 'float64' = 'float32'): { graph: Graph; outputs: Record<string, Tensor> } {
  const graph = new Graph({ floatType, name: model.name ?? 'evovla' });
  const outputs = model.forward(graph);
  if (Object.keys(outputs).length === 0) throw new Error('forward: the model returned no outputs');
  for (const [name, t] of Object.entries(outputs)) graph.output(name, t);
  return { graph, outputs };
}

/**
 * The inference artefact: an ONNX model whose weights are initializers (the current values in the
 * ParamSet), inputs as declared by `forward`, outputs as it names them.
 */
export function exportInference(model: ModelDefinition, metadata?: Readonly<Record<string, string>>): Uint8Array {
  return traceForward(model).graph.toModel({ params: 'initializer', metadata });
}

/** Writes bytes to `path` atomically (temp file in the same folder, then rename). */
export function writeFileAtomic(path: string, bytes: Uint8Array): void {
  makeDirectory(dirname(path));
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}

/** Exports the inference model to a `.onnx` file (atomically). Returns the byte count. */
export function saveInference(model: ModelDefinition, path: string, metadata?: Readonly<Record<string, string>>): number {
  const bytes = exportInference(model, metadata);
  writeFileAtomic(path, bytes);
  return bytes.length;
}
