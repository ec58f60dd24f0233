/**
 * The stage-aligned reward's arithmetic, independent of the encoder that produces the similarities:
 *
 * - stage score u_k = sigmoid((s+ - max(s-, sh-)) / tau), tau = 0.05. DIVIDED by tau: EvoVLA's
 *   released code multiplies, which squeezes the argument by 400x and pins u_k at ~0.5 (a flat
 *   reward and a degenerate hallucination metric).
 * - smoothed baseline ubar_k <- (1 - alpha) ubar_k + alpha u_k (alpha = 0.05), r_stage = u_k - ubar_k;
 * - the stage gate: the SAR stage advances when the mean u_k over the last m steps reaches theta.
 */

/** Cosine similarity of two vectors (0 when either is zero). */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>, aOffset = 0, bOffset = 0, dim = a.length - aOffset): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < dim; i++) {
    const x = a[aOffset + i];
    const y = b[bOffset + i];
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  return aa === 0 || bb === 0 ? 0 : ab / Math.sqrt(aa * bb);
}

/** u_k = sigmoid((s+ - max(s-, sh-)) / tau). `nearMiss` is the largest near-miss similarity. */
export function stageScore(positive: number, negative: number, nearMiss: number, tau = 0.05): number {
  if (!(tau > 0)) throw new RangeError(`tau must be > 0, got ${tau}`);
  const x = (positive - Math.max(negative, nearMiss)) / tau;
  return 1 / (1 + Math.exp(-x));
}

/**
 * Per-stage smoothed baselines. A stage's baseline starts at its first score (so a stage's first
 * step earns 0, not a burst of u_k), then follows ubar <- (1 - alpha) ubar + alpha u.
 */
export class StageBaseline {
  private readonly ubar: (number | null)[];

  constructor(
    readonly stages: number,
    readonly alpha = 0.05,
  ) {
    if (!(alpha > 0 && alpha <= 1)) throw new RangeError(`alpha must be in (0, 1], got ${alpha}`);
    this.ubar = new Array(stages).fill(null);
  }

  /** r_stage = u - ubar_k (ubar before this step's update), then updates ubar_k. */
  reward(stage: number, u: number): number {
    if (!Number.isInteger(stage) || stage < 0 || stage >= this.stages) throw new RangeError(`stage must be in 0..${this.stages - 1}, got ${stage}`);
    const prev = this.ubar[stage] ?? u;
    this.ubar[stage] = (1 - this.alpha) * prev + this.alpha * u;
    return u - prev;
  }

  /** Current baseline of `stage` (null before its first score). */
  value(stage: number): number | null {
    return this.ubar[stage] ?? null;
  }

  reset(): void {
    this.ubar.fill(null);
  }
}

/** Gate settings. */
export interface GateOptions {
  /** Window length m (steps). */
  window: number;
  /** Threshold on the mean u_k over the window. */
  threshold: number;
  /**
   * 1: the gate also watches stage k+1 and, when k+1's window passes theta first, claims k and
   * k+1 together (a stage whose evidence is brief, e.g. the fingers around the block just before
   * they close, cannot stall the gate). 0 (default): stage k only, as EvoVLA describes it.
   */
  lookahead?: 0 | 1;
  /**
   * Per-stage windows (stage k uses min(window, windows[k])): a stage whose predicate holds only
   * briefly (a reach lasts ~7 control steps before the fingers close) needs a window shorter than
   * its evidence lasts, or the gate can never claim it. Made from the training demos
   * (rewards/sar/train.ts `stageWindows`); absent: `window` for every stage.
   */
  windows?: readonly number[];
}

/**
 * The stage gate of one episode: it holds the SAR stage c (0..stages) and the last m scores of
 * stage c; when m scores are in and their mean reaches theta, stage c is claimed complete and the
 * gate moves to c + 1 with an empty window.
 */
export class StageGate {
  private current: number;
  private readonly recent: number[] = [];
  private readonly recentNext: number[] = [];

  constructor(
    readonly stages: number,
    readonly options: GateOptions,
    start = 0,
  ) {
    if (!Number.isInteger(options.window) || options.window < 1) throw new RangeError(`gate window must be an integer >= 1, got ${options.window}`);
    if (!(options.threshold > 0 && options.threshold < 1)) throw new RangeError(`gate threshold must be in (0, 1), got ${options.threshold}`);
    if (options.windows && (options.windows.length !== stages || options.windows.some((w) => !Number.isInteger(w) || w < 1))) {
      throw new RangeError(`gate windows must be ${stages} integers >= 1 (one per stage), got [${options.windows.join(', ')}]`);
    }
    this.current = start;
  }

  /** The stage the gate is waiting on (== stages when all are claimed). */
  get stage(): number {
    return this.current;
  }

  /** The window of stage k. */
  windowOf(k: number): number {
    return Math.min(this.options.window, this.options.windows?.[k] ?? this.options.window);
  }

  /** Whether the gate looks at stage k+1 too (then feed its score as `uNext`). */
  get watchesNext(): boolean {
    return (this.options.lookahead ?? 0) === 1 && this.current + 1 < this.stages;
  }

  /**
   * Feeds the current stage's score (and, with lookahead, the next stage's); returns the stages
   * claimed complete at this step, in order (usually none).
   */
  push(u: number, uNext?: number): number[] {
    if (this.current >= this.stages) return [];
    const passes = (w: number[], x: number, m: number) => {
      w.push(x);
      while (w.length > m) w.shift();
      return w.length === m && w.reduce((a, b) => a + b, 0) / w.length >= this.options.threshold;
    };
    const watchNext = this.watchesNext && uNext !== undefined;
    const own = passes(this.recent, u, this.windowOf(this.current));
    const next = watchNext && passes(this.recentNext, uNext, this.windowOf(this.current + 1));
    if (!own && !next) return [];
    const claimed = next ? [this.current, this.current + 1] : [this.current];
    this.current += claimed.length;
    this.recent.length = 0;
    this.recentNext.length = 0;
    return claimed;
  }

  reset(start = 0): void {
    this.current = start;
    this.recent.length = 0;
    this.recentNext.length = 0;
  }
}

/**
 * The kind of a stage, for per-kind figures: the first word of its name ('above', 'reach',
 * 'grasp', ...), or 'carry' when the name starts with the stage's object (e.g.
 * 'middle_block_above_target', 'cup_above_plate').
 */
export function stageKind(stage: { name: string; object: string }): string {
  if (stage.name.startsWith(`${stage.object}_`)) return 'carry';
  return stage.name.split('_')[0];
}
