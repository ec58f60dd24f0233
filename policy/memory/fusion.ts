/**
 * Gated memory fusion, the nn layer between the VLA trunk's features and its heads:
 *
 *   read:  q = x Wq, k_j = m_j Wk, a = softmax_j(q . k_j / sqrt(F) + mask bias), m = sum_j a_j m_j
 *   gate:  g = sigmoid([x; m] Wg + bg)           (per feature)
 *   fuse:  h = g * m + (1 - g) * x
 *
 * Parameters live under `memory.*` (memory.query, memory.key, memory.gate), so PPO can train the
 * gate with the heads on a frozen trunk. With no slot filled the read is empty and the gate is
 * forced to 0 (h = x exactly), so the first step of an episode behaves like the memoryless policy.
 * The gate's bias starts at `gateBias` (default -2, g ~ 0.12): fusion starts close to the identity
 * and the policy learns how much to lean on memory.
 *
 * `enabled: false` is the ablation: `apply` returns x unchanged and no parameters are created.
 */
import type { Tensor } from '../../nn/graph.ts';
import { Linear, keyMaskBias } from '../../nn/layers.ts';
import * as op from '../../nn/ops.ts';
import { init, type ParamSet } from '../../nn/params.ts';

/** Options of `MemoryFusion`. */
export interface MemoryFusionOptions {
  /** false: the ablation (identity, no parameters). Default true. */
  enabled?: boolean;
  /** Initial gate bias (default -2). */
  gateBias?: number;
  /** Parameter prefix (default 'memory'). */
  prefix?: string;
}

/** The gated attention read of a key-frame bank. */
export class MemoryFusion {
  readonly enabled: boolean;
  readonly query: Linear | null = null;
  readonly key: Linear | null = null;
  readonly gate: Linear | null = null;

  constructor(params: ParamSet, readonly featureDim: number, options: MemoryFusionOptions = {}) {
    this.enabled = options.enabled ?? true;
    if (!this.enabled) return;
    const prefix = options.prefix ?? 'memory';
    this.query = new Linear(params, `${prefix}.query`, featureDim, featureDim, { weightInit: init.xavierUniform(), biasInit: init.zeros() });
    this.key = new Linear(params, `${prefix}.key`, featureDim, featureDim, { weightInit: init.xavierUniform(), biasInit: init.zeros() });
    const b = options.gateBias ?? -2;
    this.gate = new Linear(params, `${prefix}.gate`, 2 * featureDim, featureDim, { weightInit: init.xavierUniform(), biasInit: () => new Float32Array(featureDim).fill(b) });
  }

  /**
   * Fuses `x` [B, F] with the bank `memory` [B, M, F] (`mask` [B, M], 1 = filled). Returns h [B, F]
   * and, for logging, the gate g [B, F] and the attention weights [B, M].
   */
  read(x: Tensor, memory?: Tensor, mask?: Tensor): { h: Tensor; gate?: Tensor; attention?: Tensor } {
    if (!this.enabled) return { h: x };
    if (!memory || !mask) throw new Error('MemoryFusion: memory and memory_mask are required when memory is enabled');
    const f = this.featureDim;
    if (x.rank !== 2 || x.shape[1] !== f) throw new Error(`MemoryFusion: x must be [B, ${f}], got ${x}`);
    if (memory.rank !== 3 || memory.shape[2] !== f) throw new Error(`MemoryFusion: memory must be [B, M, ${f}], got ${memory}`);
    if (mask.rank !== 2 || mask.shape[1] !== memory.shape[1]) throw new Error(`MemoryFusion: memory_mask must be [B, ${memory.shape[1]}], got ${mask}`);
    const q = op.unsqueeze(op.mul(this.query!.apply(x), 1 / Math.sqrt(f)), [1]); // [B,1,F]
    const k = this.key!.apply(memory); // [B,M,F]
    const scores = op.reduceSum(op.mul(q, k), [2]); // [B,M]
    // Empty slots get -1e9: with at least one filled slot they receive no weight.
    const attention = op.softmax(op.add(scores, op.squeeze(keyMaskBias(mask), [1, 2])), -1);
    const read = op.reduceSum(op.mul(op.unsqueeze(attention, [2]), memory), [1]); // [B,F]
    // 1 when any slot is filled, else 0 (then g = 0 and h = x).
    const any = op.clip(op.reduceSum(mask, [1], true), 0, 1); // [B,1]
    const g = op.mul(op.sigmoid(this.gate!.apply(op.concat([x, read], 1))), any);
    const h = op.add(op.mul(g, read), op.mul(op.sub(1, g), x));
    return { h, gate: g, attention };
  }

  /** h only (see `read`). */
  apply(x: Tensor, memory?: Tensor, mask?: Tensor): Tensor {
    return this.read(x, memory, mask).h;
  }
}
