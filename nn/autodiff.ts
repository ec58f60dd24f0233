/**
 * Reverse-mode differentiation over a traced `Graph`. Gradients are emitted into the same graph as
 * ordinary ONNX nodes, using the per-op VJP builders in ops.ts. Only nodes on a path from a `wrt`
 * tensor to the loss are differentiated, so inputs such as images never get a gradient computed.
 */
import { Tensor, shapeString, type Node } from './graph.ts';
import { VJP, sum } from './ops.ts';

function isFloat(t: Tensor): boolean {
  return t.dtype === 'float32' || t.dtype === 'float64';
}

/**
 * d loss / d t for each t in `wrt`. `loss` must be a float scalar. A tensor the loss does not depend
 * on gets a zero gradient of its shape (zeros of a static shape).
 */
export function gradients(loss: Tensor, wrt: readonly Tensor[]): Tensor[] {
  return gradientsOrNull(loss, wrt).map((d, i) => d ?? zerosLike(wrt[i]));
}

/**
 * Like `gradients`, but null for a tensor the loss does not reach through a differentiable path
 * (unused, or cut by `stopGradient`): the counterpart of PyTorch's `grad is None`, which optimizers
 * use to leave such parameters alone (no weight decay, no stale momentum).
 */
export function gradientsOrNull(loss: Tensor, wrt: readonly Tensor[]): (Tensor | null)[] {
  const g = loss.graph;
  if (loss.rank !== 0 || !isFloat(loss)) throw new Error(`gradients: the loss must be a float scalar, got ${loss}`);
  for (const t of wrt) if (t.graph !== g) throw new Error(`gradients: ${t.name} belongs to another graph`);
  // Snapshot: the VJPs append nodes while we walk.
  const forward: Node[] = [...g.nodes];
  const forwardNodes = new Set(forward);

  // Forward sweep: which tensors depend on a wrt tensor.
  const dependsOnWrt = new Set<Tensor>(wrt);
  for (const node of forward) {
    if (g.stopGradientNodes.has(node)) continue;
    if (node.inputs.some((t) => t && dependsOnWrt.has(t))) {
      for (const o of node.outputs) if (isFloat(o)) dependsOnWrt.add(o);
    }
  }
  if (!dependsOnWrt.has(loss)) return wrt.map(() => null);

  const contributions = new Map<Tensor, Tensor[]>();
  contributions.set(loss, [g.constant(1)]);
  // How often each gradient tensor was handed out as a contribution (see `flattenSums`).
  const handedOut = new Map<Tensor, number>();
  const gradOf = (t: Tensor): Tensor | null => {
    const parts = contributions.get(t);
    if (!parts || parts.length === 0) return null;
    // Graph-level accumulation: one Sum node per tensor used more than once.
    const total = parts.length === 1 ? parts[0] : sum(flattenSums(parts));
    contributions.set(t, [total]);
    return total;
  };

  /**
   * A contribution that is itself a Sum made by a gradient rule (e.g. LayerNorm's three-term dx),
   * handed out once and read by no node, is replaced by its terms: the accumulation then adds
   * everything in one Sum node, one pass over the activations instead of two. The inner Sum is
   * left unused and dropped at export.
   */
  const flattenSums = (parts: readonly Tensor[]): Tensor[] => {
    const out: Tensor[] = [];
    for (const p of parts) {
      const node = g.producer.get(p);
      const inner = node && node.op === 'Sum' && !forwardNodes.has(node) && handedOut.get(p) === 1 && !g.nodes.some((n) => n.inputs.includes(p));
      if (inner) out.push(...(node.inputs as Tensor[]));
      else out.push(p);
    }
    return out;
  };

  for (let i = forward.length - 1; i >= 0; i--) {
    const node = forward[i];
    if (!node.outputs.some((o) => dependsOnWrt.has(o) && contributions.has(o))) continue;
    const gradOutputs = node.outputs.map((o) => gradOf(o));
    if (gradOutputs.every((d) => d === null)) continue;
    const custom = node.outputs.length === 1 ? g.customGradients.get(node.outputs[0]) : undefined;
    const inputs = custom ? custom.inputs : node.inputs;
    const needs = inputs.map((t) => t !== null && dependsOnWrt.has(t));
    if (!needs.some(Boolean)) continue;
    let gradInputs: (Tensor | null)[];
    if (custom) gradInputs = custom.vjp(gradOutputs[0]!);
    else {
      const vjp = VJP[node.op];
      if (!vjp) throw new Error(`gradients: op ${node.op} (output ${node.outputs[0].name}) has no gradient rule`);
      gradInputs = vjp(node, gradOutputs, needs);
    }
    inputs.forEach((t, k) => {
      const d = gradInputs[k];
      if (!t || !needs[k] || !d) return;
      if (d.rank !== t.rank) {
        throw new Error(`gradients: ${custom ? 'a custom gradient' : node.op} gave a gradient ${shapeString(d.shape)} for input ${t} (rank differs)`);
      }
      handedOut.set(d, (handedOut.get(d) ?? 0) + 1);
      const list = contributions.get(t);
      if (list) list.push(d);
      else contributions.set(t, [d]);
    });
  }
  return wrt.map((t) => gradOf(t));
}

function zerosLike(t: Tensor): Tensor {
  if (!t.shape.every((d) => typeof d === 'number')) throw new Error(`gradients: the loss does not depend on ${t} and its shape is not static`);
  const size = (t.shape as number[]).reduce((a, b) => a * b, 1);
  return t.graph.constantData(new Float32Array(size), t.shape as number[]);
}
