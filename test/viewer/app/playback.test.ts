/** Playback follows the wall clock: 4x plays at 4x under a slow renderer by skipping steps. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { advancePlayback, MAX_FRAME_GAP_S } from '../../../viewer/app/playback.ts';

/** Play `wallS` seconds at `fps` frames per second; returns the steps shown. */
function play(fps: number, wallS: number, speed: number, last = 100_000): number[] {
  let state = { clock: 0, playing: true };
  const shown: number[] = [];
  for (let f = 0; f < Math.round(wallS * fps); f++) {
    const next = advancePlayback(state, 1 / fps, 60, speed, last);
    state = next;
    shown.push(next.cursor);
  }
  return shown;
}

test('4x plays 4x real time at any frame rate, skipping steps on slow frames', () => {
  for (const fps of [60, 10, 4, 2]) {
    const shown = play(fps, 3, 4);
    // 3 s of wall time at 4x a 60 Hz episode: 720 steps, to float rounding.
    assert.ok(Math.abs(shown.at(-1)! - 720) <= 1, `${fps} frames/s reached step ${shown.at(-1)}`);
    if (fps < 240) assert.ok(shown[1] - shown[0] > 1, `${fps} frames/s should skip steps`);
  }
});

test('a long stall advances at most MAX_FRAME_GAP_S, and playback stops at the last step', () => {
  const next = advancePlayback({ clock: 0, playing: true }, 30, 60, 1, 10_000);
  assert.equal(next.cursor, 60 * MAX_FRAME_GAP_S);
  const end = advancePlayback({ clock: 95, playing: true }, 1, 60, 8, 99);
  assert.deepEqual(end, { clock: 99, playing: false, cursor: 99 });
  const paused = advancePlayback({ clock: 5.5, playing: false }, 1, 60, 4, 99);
  assert.equal(paused.cursor, 5);
});
