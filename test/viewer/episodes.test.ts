/** Episode files as the viewer loads them: the scene comes from the header or is rebuilt and checked. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { createEnv } from '../../sim/env.ts';
import { getTask } from '../../tasks/index.ts';
import { episodeHeader, runExpertEpisode } from '../../tasks/rollout.ts';
import { expandEpisodePaths, loadEpisodeFile, sceneForEpisode } from '../../viewer/episodes.ts';

describe('viewer episodes', () => {
  it('rebuilds the scene of a recorded episode from its task and seed, with the recorded objects', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evovla-episodes-'));
    try {
      const task = getTask('stack');
      const env = await createEnv(task);
      const file = path.join(dir, 'stack-4.evep');
      try {
        runExpertEpisode(env, task, 4, { file });
      } finally {
        env.free();
      }
      fs.writeFileSync(path.join(dir, 'notes.txt'), 'not an episode');
      assert.deepEqual(expandEpisodePaths([dir]), [file]);
      const ep = loadEpisodeFile(file);
      assert.ok(ep.scene, ep.notes.join('; '));
      assert.deepEqual(ep.scene.objects.map((o) => o.name).sort(), Object.keys(ep.steps[0].objects).sort());
      assert.ok(ep.scene.links.some((l) => l.link === 'link6'));
      assert.match(ep.notes[0], /rebuilt from task 'stack' and seed 4/);
      // The rebuilt objects start where the episode's first step has them (same randomisation).
      for (const o of ep.scene.objects) {
        const rec = ep.steps[0].objects[o.name];
        assert.ok(Math.hypot(o.pose.p[0] - rec.p[0], o.pose.p[1] - rec.p[1]) < 0.01, `${o.name} rebuilt at ${o.pose.p}, recorded at ${rec.p}`);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('prefers a scene stored in the header and falls back to markers for an unknown task', async () => {
    const task = getTask('blocks');
    const env = await createEnv(task);
    try {
      env.reset({ seed: 1 });
      const scene = task.buildScene(env.randomization!);
      const header = episodeHeader(env, task, 1, { scene: { ...scene, objects: scene.objects.slice(0, 1) } });
      const stored = sceneForEpisode(header);
      assert.equal(stored.scene?.objects.length, 1);
      assert.match(stored.note, /from the episode header/);
      const unknown = sceneForEpisode({ ...header, task: 'no_such_task', meta: {} });
      assert.equal(unknown.scene, null);
      assert.match(unknown.note, /no_such_task.*markers/);
    } finally {
      env.free();
    }
  });
});
