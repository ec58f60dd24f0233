/**
 * Exponential moving average of weights (Polyak averaging), kept on the host beside the training
 * parameters: shadow <- decay * shadow + (1 - decay) * param after each update. Export or evaluate
 * with the averaged weights through `swapIn()` / `swapOut()`, or `withAveraged(fn)`.
 */
import type { Parameter } from './graph.ts';
import type { ParamSet } from './params.ts';

/** Options of an EMA. */
export interface EmaOptions {
  /** Decay per update, in [0, 1) (default 0.999). */
  decay?: number;
  /**
   * Warm the average up: decay_t = min(decay, (1 + t) / (10 + t)), so early averages are not
   * dominated by the initial weights (as timm's ModelEmaV2 / TF's num_updates). Default false.
   */
  warmup?: boolean;
  /** Average only these parameters (default: every trainable parameter). */
  filter?: (p: Parameter) => boolean;
}

export class Ema {
  readonly decay: number;
  readonly warmup: boolean;
  /** Averaged values by parameter name. */
  readonly shadow = new Map<string, Float32Array>();
  private updates = 0;
  private backup: Map<string, Float32Array> | null = null;
  private readonly params: Parameter[];

  constructor(params: ParamSet, options: EmaOptions = {}) {
    this.decay = options.decay ?? 0.999;
    if (!(this.decay >= 0 && this.decay < 1)) throw new Error(`Ema: decay must be in [0, 1), got ${this.decay}`);
    this.warmup = options.warmup ?? false;
    const filter = options.filter ?? ((p: Parameter) => p.trainable);
    this.params = params.list().filter(filter);
    if (this.params.length === 0) throw new Error('Ema: no parameter to average');
    for (const p of this.params) this.shadow.set(p.name, p.data.slice());
  }

  /** Number of `update()` calls so far. */
  get steps(): number {
    return this.updates;
  }

  /** The decay the next update uses. */
  currentDecay(): number {
    return this.warmup ? Math.min(this.decay, (1 + this.updates) / (10 + this.updates)) : this.decay;
  }

  /** Folds the parameters' current values into the average (call after each optimizer step). */
  update(): void {
    if (this.backup) throw new Error('Ema.update: the averaged weights are swapped in; call swapOut() first');
    const d = this.currentDecay();
    const keep = 1 - d;
    for (const p of this.params) {
      const s = this.shadow.get(p.name)!;
      const x = p.data;
      for (let i = 0; i < s.length; i++) s[i] += keep * (x[i] - s[i]);
    }
    this.updates++;
  }

  /** Puts the averaged weights into the parameters (keeping the trained ones aside). */
  swapIn(): void {
    if (this.backup) throw new Error('Ema.swapIn: already swapped in');
    this.backup = new Map();
    for (const p of this.params) {
      this.backup.set(p.name, p.data);
      p.data = this.shadow.get(p.name)!.slice();
    }
  }

  /** Restores the trained weights after `swapIn()`. */
  swapOut(): void {
    if (!this.backup) throw new Error('Ema.swapOut: nothing swapped in');
    for (const p of this.params) p.data = this.backup.get(p.name)!;
    this.backup = null;
  }

  /** Runs `fn` with the averaged weights in place (e.g. `saveInference`), then restores. */
  async withAveraged<T>(fn: () => T | Promise<T>): Promise<T> {
    this.swapIn();
    try {
      return await fn();
    } finally {
      this.swapOut();
    }
  }

  /** State for checkpoints. */
  state(): { steps: number; shadow: Map<string, Float32Array> } {
    return { steps: this.updates, shadow: this.shadow };
  }

  /** Restores state saved by `state()`; every averaged parameter must be present with its size. */
  setState(state: { steps: number; shadow: ReadonlyMap<string, Float32Array> }): void {
    const problems: string[] = [];
    for (const p of this.params) {
      const s = state.shadow.get(p.name);
      if (!s) problems.push(`missing ${p.name}`);
      else if (s.length !== p.data.length) problems.push(`${p.name} has ${s.length} values, expected ${p.data.length}`);
    }
    if (problems.length > 0) throw new Error(`Ema.setState: ${problems.join('; ')}`);
    for (const p of this.params) this.shadow.set(p.name, state.shadow.get(p.name)!.slice());
    this.updates = state.steps;
  }
}
