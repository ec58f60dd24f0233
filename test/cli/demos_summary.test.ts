import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatSummary, summarize } from '../../cli/demos.ts';
import type { EpisodeResult } from '../../tasks/rollout.ts';
import { getTask } from '../../tasks/index.ts';

test('the demos summary never says every stage was completed beside a furthest stage short of the last', () => {
  const task = getTask('stack');
  // Two successful episodes that ended (at success) before the final retreat stage.
  const ep = (seed: number): EpisodeResult =>
    ({ seed, success: true, steps: 350, maxStage: 17, firstTrue: [], firstCommanded: [], stageDrops: [] }) as unknown as EpisodeResult;
  const text = formatSummary(summarize(task, [ep(0), ep(1)], 1));
  assert.match(text, /mean furthest stage 17\.0 of 18/);
  assert.doesNotMatch(text, /completed all 18 stages/);
  assert.match(text, /stages 0-16 completed by every episode; losses at stage 17 \(0\.0% completed it\)/);
  assert.match(text, /episodes end at success/);
});
