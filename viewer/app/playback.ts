/**
 * Playback timing: how far the cursor moves for the wall time a frame took. Pure, so it is tested
 * without a browser.
 *
 * Playback follows the wall clock, not the frame count: a slow renderer (a software GL, a busy
 * machine) draws fewer frames and the cursor skips steps between them, so 4x plays a 60 Hz
 * episode at 240 steps per second of wall time whatever the frame rate. Only a long stall (the
 * tab hidden, the process stopped) is cut short, so playback does not leap ahead when it comes back.
 */

/** Longest wall time (s) one frame may advance playback by. */
export const MAX_FRAME_GAP_S = 1;

export interface PlaybackState {
  /** Fractional step index. */
  clock: number;
  playing: boolean;
}

/**
 * Advance playback by `elapsedS` of wall time at `speed` x real time of a `controlHz` episode whose
 * last step index is `last`. Returns the new state and the step to show (frames skipped as needed);
 * playback stops at the last step.
 */
export function advancePlayback(state: PlaybackState, elapsedS: number, controlHz: number, speed: number, last: number): PlaybackState & { cursor: number } {
  let { clock, playing } = state;
  if (playing) {
    const dt = Math.min(MAX_FRAME_GAP_S, Math.max(0, elapsedS));
    clock += dt * controlHz * speed;
    if (clock >= last) {
      clock = last;
      playing = false;
    }
  }
  return { clock, playing, cursor: Math.max(0, Math.min(last, Math.floor(clock))) };
}
