/**
 * The scripted experts against the simulator, on a few seeds per task (the 100-seed measurement is
 * `npm run bench:tasks -- --seeds 100`): each episode succeeds, the ground-truth stage
 * predicates first become true in the order the expert executes the stages, and the ground-truth
 * stage never moves backwards.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createEnv, type SimEnv } from '../../sim/env.ts';
import type { Task } from '../../sim/task.ts';
import { getTask } from '../../tasks/index.ts';
import { runExpertEpisode, stageOrderViolations, type EpisodeResult } from '../../tasks/rollout.ts';

const envs = new Map<string, SimEnv>();
before(async () => {
  for (const id of ['stack', 'jujube_cup', 'block_bridge']) envs.set(id, await createEnv(getTask(id)));
});
after(() => {
  for (const env of envs.values()) env.free();
});

function checkEpisode(task: Task, r: EpisodeResult): void {
  const label = `${task.id} seed ${r.seed}`;
  assert.equal(r.error, undefined, `${label}: expert gave up: ${r.error}`);
  assert.equal(r.success, true, `${label}: no success (furthest stage ${r.maxStage} '${task.stages[r.maxStage]?.name}')`);
  assert.deepEqual(stageOrderViolations(r), [], `${label}: stage predicates out of order`);
  // The expert never goes back, so neither may the ground-truth stage (a dip is predicate noise).
  assert.deepEqual(r.stageDrops, [], `${label}: ground-truth stage moved backwards`);
  // The episode ends at success, possibly before the final retreat: every earlier stage held.
  for (let k = 0; k < task.stages.length - 1; k++) {
    assert.ok(r.firstTrue[k] >= 0, `${label}: stage ${k} '${task.stages[k].name}' never held`);
  }
  // No stage held before the expert had started on the stage before it (nothing true by accident).
  for (let k = 1; k < task.stages.length; k++) {
    if (r.firstTrue[k] < 0) continue;
    assert.ok(r.firstCommanded[k - 1] >= 0 && r.firstTrue[k] >= r.firstCommanded[k - 1], `${label}: stage ${k} '${task.stages[k].name}' held at step ${r.firstTrue[k]}, before the expert began stage ${k - 1} (step ${r.firstCommanded[k - 1]})`);
  }
  assert.equal(r.maxStage >= task.stages.length - 1, true, `${label}: reached stage ${r.maxStage}`);
}

for (const [id, seeds] of [
  ['stack', [0, 1]],
  ['jujube_cup', [0, 1]],
  ['block_bridge', [0]],
] as const) {
  test(`${id}: expert succeeds and stage predicates follow the expert's order (seeds ${seeds.join(', ')})`, () => {
    const task = getTask(id);
    for (const seed of seeds) checkEpisode(task, runExpertEpisode(envs.get(id)!, task, seed));
  });
}
