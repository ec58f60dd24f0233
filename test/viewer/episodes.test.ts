/** Episode files as the viewer loads them: the scene comes from the header or is rebuilt and checked. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { createEnv } from '../../sim/env.ts';
import { readEpisode } from '../../sim/record/reader.ts';
import { EpisodeWriter } from '../../sim/record/writer.ts';
import { Rng } from '../../sim/rng.ts';
import { getTask, TASKS } from '../../tasks/index.ts';
import { episodeHeader, runExpertEpisode } from '../../tasks/rollout.ts';
import { expandEpisodePaths, loadEpisodeFile, sceneForEpisode, viewerStepCount, viewerSteps } from '../../viewer/episodes.ts';

describe('viewer episodes', () => {
  it('a recorded episode carries its scene in the header, and the viewer draws it without the task registry', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evovla-episodes-'));
    try {
      const task = getTask('jujube_cup');
      const env = await createEnv(task, { maxSteps: 3 });
      const file = path.join(dir, 'jujube_cup-7.evep');
      try {
        runExpertEpisode(env, task, 7, { file });
      } finally {
        env.free();
      }
      const rec = readEpisode(file);
      assert.equal(rec.damage, null);
      // The scene the reset built: the task's scene for the randomisation of seed 7.
      const expected = task.buildScene(task.randomize(new Rng(7)));
      assert.deepEqual(JSON.parse(JSON.stringify(rec.header!.meta.scene)), JSON.parse(JSON.stringify(expected)));

      // The same file under a task id this build does not have (a task renamed since recording).
      assert.ok(!Object.hasOwn(TASKS, 'retired_task'));
      const renamed = path.join(dir, 'retired.evep');
      const w = EpisodeWriter.open(renamed, { ...rec.header!, task: 'retired_task' });
      for (const s of rec.steps) w.append(s);
      w.close(rec.footer!);
      const ep = loadEpisodeFile(renamed);
      assert.match(ep.notes[0], /scene from the episode header/);
      assert.ok(ep.scene);
      assert.deepEqual(ep.scene.objects.map((o) => o.name), expected.objects.map((o) => o.name));
      const cup = ep.scene.objects.find((o) => o.name === 'cup')!;
      assert.deepEqual(cup.pose, expected.objects.find((o) => o.name === 'cup')!.pose);
      assert.equal(cup.colliders.length, expected.objects.find((o) => o.name === 'cup')!.colliders.length);
      assert.ok(ep.scene.links.some((l) => l.link === 'link6'));
      // Without the stored scene the registry has nothing for this id: markers only.
      const { scene: _scene, ...metaWithout } = ep.header.meta;
      assert.equal(sceneForEpisode({ ...ep.header, meta: metaWithout }, viewerSteps(ep, 0, 1, { images: false })[0]).scene, null);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rebuilds the scene of an episode recorded without one from its task and seed, with the recorded objects', async () => {
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
      const loaded = loadEpisodeFile(file);
      // Files from before the header stored the scene: take it out.
      const { scene: _stored, ...meta } = loaded.header.meta;
      const first = viewerSteps(loaded, 0, 1, { images: false })[0];
      const ep = { ...loaded, ...sceneForEpisode({ ...loaded.header, meta }, first) };
      assert.ok(ep.scene, ep.note);
      assert.deepEqual(ep.scene.objects.map((o) => o.name).sort(), Object.keys(first.objects).sort());
      assert.ok(ep.scene.links.some((l) => l.link === 'link6'));
      assert.match(ep.note, /rebuilt from task 'stack' and seed 4/);
      // The rebuilt objects start where the episode's first step has them (same randomisation).
      for (const o of ep.scene.objects) {
        const rec = first.objects[o.name];
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
