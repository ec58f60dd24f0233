/**
 * Seeded random numbers. Every random choice in evovla flows from one of these, so the same seed
 * gives the same episode in any process. Algorithm: sfc32 (small, fast, passes PractRand to 2^40+),
 * seeded through splitmix32 so that nearby seeds give unrelated streams.
 */

function splitmix32(state: number): [number, number] {
  state = (state + 0x9e3779b9) | 0;
  let z = state;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  z ^= z >>> 16;
  return [state, z >>> 0];
}

function hashString(s: string): number {
  // FNV-1a, 32 bit.
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spareNormal: number | null = null;

  /** @param seed any integer (taken modulo 2^32); a non-integer or non-finite seed is an error. */
  constructor(seed: number) {
    if (!Number.isInteger(seed)) {
      throw new TypeError(`Rng seed must be an integer, got ${String(seed)}`);
    }
    let s = seed >>> 0;
    let out: number;
    [s, out] = splitmix32(s);
    this.a = out;
    [s, out] = splitmix32(s);
    this.b = out;
    [s, out] = splitmix32(s);
    this.c = out;
    [s, out] = splitmix32(s);
    this.d = out;
    for (let i = 0; i < 12; i++) this.nextU32();
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0) throw new RangeError(`Rng.int needs a positive integer, got ${n}`);
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box-Muller, caching the spare). */
  normal(mean = 0, std = 1): number {
    if (this.spareNormal !== null) {
      const z = this.spareNormal;
      this.spareNormal = null;
      return mean + std * z;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return mean + std * r * Math.cos(2 * Math.PI * v);
  }

  /** An independent stream derived from this one's current state and a label (does not advance this one). */
  fork(label: string): Rng {
    return new Rng((this.a ^ Math.imul(hashString(label), 0x9e3779b1) ^ this.c) | 0);
  }

  /** Internal state, for checkpoints and snapshots. */
  getState(): [number, number, number, number] {
    return [this.a >>> 0, this.b >>> 0, this.c >>> 0, this.d >>> 0];
  }

  /**
   * Full state including the cached spare normal deviate, so a restored stream continues exactly
   * (getState/setState drop the spare; use these for snapshots).
   */
  exportState(): { s: [number, number, number, number]; spareNormal: number | null } {
    return { s: this.getState(), spareNormal: this.spareNormal };
  }

  importState(state: { s: readonly number[]; spareNormal: number | null }): void {
    this.setState(state.s);
    if (state.spareNormal !== null && !Number.isFinite(state.spareNormal)) {
      throw new TypeError(`Rng spareNormal must be a finite number or null, got ${String(state.spareNormal)}`);
    }
    this.spareNormal = state.spareNormal;
  }

  setState(state: readonly number[]): void {
    if (state.length !== 4 || !state.every((x) => Number.isInteger(x))) {
      throw new TypeError(`Rng state must be 4 integers, got ${JSON.stringify(state)}`);
    }
    [this.a, this.b, this.c, this.d] = state.map((x) => x | 0) as [number, number, number, number];
    this.spareNormal = null;
  }
}
