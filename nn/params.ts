/**
 * Parameters and their seeded initialisers. A `ParamSet` owns every parameter of a model, in
 * creation order (the order checkpoints and the optimizer's flat vectors use).
 */
import { Rng } from '../sim/rng.ts';
import type { Parameter } from './graph.ts';

export type { Parameter } from './graph.ts';

/** Fills a new parameter. `fanIn`/`fanOut` follow the usual convention for a [in, out] weight. */
export type Initializer = (size: number, rng: Rng, fan: { fanIn: number; fanOut: number }) => Float32Array;

/** Standard initialisers. */
export const init = {
  zeros: (): Initializer => (n) => new Float32Array(n),
  ones: (): Initializer => (n) => new Float32Array(n).fill(1),
  constant:
    (value: number): Initializer =>
    (n) =>
      new Float32Array(n).fill(value),
  /** N(0, std^2). */
  normal:
    (std: number): Initializer =>
    (n, rng) =>
      Float32Array.from({ length: n }, () => rng.normal(0, std)),
  /** N(0, std^2) redrawn beyond 2 std (as transformer embeddings commonly use). */
  truncatedNormal:
    (std: number): Initializer =>
    (n, rng) =>
      Float32Array.from({ length: n }, () => {
        for (;;) {
          const z = rng.normal();
          if (Math.abs(z) <= 2) return z * std;
        }
      }),
  /** U(-limit, limit). */
  uniform:
    (limit: number): Initializer =>
    (n, rng) =>
      Float32Array.from({ length: n }, () => rng.uniform(-limit, limit)),
  /** U(±1/sqrt(fanIn)): PyTorch's default for nn.Linear weights and biases. */
  fanInUniform: (): Initializer => (n, rng, { fanIn }) => init.uniform(1 / Math.sqrt(fanIn))(n, rng, { fanIn, fanOut: 0 }),
  /** Glorot/Xavier uniform: U(±sqrt(6 / (fanIn + fanOut))). */
  xavierUniform: (): Initializer => (n, rng, fan) => init.uniform(Math.sqrt(6 / (fan.fanIn + fan.fanOut)))(n, rng, fan),
} as const;

/** Options of one parameter. */
export interface ParamOptions {
  /** Decoupled weight decay applies (default: true for rank >= 2, false for vectors). */
  decay?: boolean;
  /** Trained by the optimizer (default true). */
  trainable?: boolean;
  /** Fan-in / fan-out for the initialiser (default: from a [in, out] shape). */
  fan?: { fanIn: number; fanOut: number };
}

/** The parameters of one model, created in a fixed order from one seeded generator. */
export class ParamSet {
  private readonly map = new Map<string, Parameter>();
  /** The generator initialisers draw from; its state is saved in checkpoints. */
  readonly rng: Rng;

  constructor(seed: number) {
    this.rng = new Rng(seed);
  }

  /** Creates a parameter. Names are unique, e.g. "encoder.block0.attn.q.weight". */
  add(name: string, shape: readonly number[], initializer: Initializer, options: ParamOptions = {}): Parameter {
    if (this.map.has(name)) throw new Error(`parameter "${name}" already exists`);
    if (shape.some((d) => !Number.isInteger(d) || d <= 0)) throw new Error(`parameter "${name}": shape [${shape.join(',')}] must be positive integers`);
    const size = shape.reduce((a, b) => a * b, 1);
    const fan = options.fan ?? { fanIn: shape.length >= 2 ? shape[shape.length - 2] : shape[0], fanOut: shape[shape.length - 1] };
    const data = initializer(size, this.rng, fan);
    if (data.length !== size) throw new Error(`parameter "${name}": initialiser gave ${data.length} values for ${size}`);
    const p: Parameter = { name, shape: [...shape], data, decay: options.decay ?? shape.length >= 2, trainable: options.trainable ?? true };
    this.map.set(name, p);
    return p;
  }

  get(name: string): Parameter {
    const p = this.map.get(name);
    if (!p) throw new Error(`no parameter "${name}" (have ${this.map.size}: ${[...this.map.keys()].slice(0, 8).join(', ')}…)`);
    return p;
  }

  has(name: string): boolean {
    return this.map.has(name);
  }

  /** All parameters in creation order. */
  list(): Parameter[] {
    return [...this.map.values()];
  }

  /** Total number of scalars. */
  get count(): number {
    let n = 0;
    for (const p of this.map.values()) n += p.data.length;
    return n;
  }
}
