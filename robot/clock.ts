/**
 * Time for the deploy loop and the safety layer, injectable so that tests drive a fake clock and
 * never assert on wall-clock timing. Seconds everywhere (monotonic, arbitrary origin).
 */

/** A cancellable timer handle. */
export interface TimerHandle {
  cancel(): void;
}

/** Monotonic time and timers. */
export interface Clock {
  /** Monotonic seconds. */
  now(): number;
  /** Run `fn` once `delayS` seconds from now. */
  setTimer(delayS: number, fn: () => void): TimerHandle;
  /** Resolve once `now() >= t`. */
  sleepUntil(t: number): Promise<void>;
}

/**
 * The process's monotonic clock. `sleepUntil` sleeps with setTimeout to ~1 ms short of the
 * target, then yields with setImmediate until the target: setTimeout alone jitters by 1-2 ms,
 * which is a tenth of a 60 Hz period, and a pure spin would starve the I/O the loop depends on.
 */
export const realClock: Clock = {
  now: () => performance.now() / 1000,
  setTimer(delayS, fn) {
    const t = setTimeout(fn, Math.max(0, delayS * 1000));
    return { cancel: () => clearTimeout(t) };
  },
  async sleepUntil(t) {
    const coarse = (t - realClock.now()) * 1000 - 1.5;
    if (coarse > 0) await new Promise<void>((resolve) => setTimeout(resolve, coarse));
    while (realClock.now() < t) await new Promise<void>((resolve) => setImmediate(resolve));
  },
};

interface FakeTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A clock that moves only when told to. `advance` fires due timers in time order, setting `now()`
 * to each timer's due time while it runs, so a watchdog sees exactly the instant it was armed for.
 */
export class FakeClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: FakeTimer[] = [];

  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimer(delayS: number, fn: () => void): TimerHandle {
    if (!Number.isFinite(delayS)) throw new RangeError(`timer delay must be finite seconds, got ${delayS}`);
    const timer: FakeTimer = { at: this.t + Math.max(0, delayS), seq: this.seq++, fn, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => void (timer.cancelled = true) };
  }

  sleepUntil(t: number): Promise<void> {
    if (this.t >= t) return Promise.resolve();
    return new Promise<void>((resolve) => this.setTimer(t - this.t, resolve));
  }

  /** Number of timers still pending (for tests that check a watchdog was disarmed). */
  pendingTimers(): number {
    return this.timers.filter((x) => !x.cancelled).length;
  }

  /** Move time forward by `dtS` seconds, firing every timer that falls due on the way. */
  advance(dtS: number): void {
    if (!(dtS >= 0)) throw new RangeError(`advance needs a non-negative number of seconds, got ${dtS}`);
    const end = this.t + dtS;
    for (;;) {
      this.timers = this.timers.filter((x) => !x.cancelled);
      let next: FakeTimer | undefined;
      for (const x of this.timers) {
        if (x.at <= end && (!next || x.at < next.at || (x.at === next.at && x.seq < next.seq))) next = x;
      }
      if (!next) break;
      next.cancelled = true;
      this.t = Math.max(this.t, next.at);
      next.fn();
    }
    this.t = end;
  }

  /**
   * Advance in steps of `stepS`, letting promise continuations run between steps, so async code
   * awaiting `sleepUntil` makes progress as it would in real time.
   */
  async run(durationS: number, stepS = 0.001): Promise<void> {
    const end = this.t + durationS;
    while (this.t < end - 1e-12) {
      this.advance(Math.min(stepS, end - this.t));
      await flushMicrotasks();
    }
  }
}

/** Let pending promise continuations run (a few macrotask turns). */
export async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
