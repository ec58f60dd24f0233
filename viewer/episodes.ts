/**
 * Episodes as the viewer shows them: the record file's header and steps plus the scene to draw.
 * Steps carry poses, not shapes, so the scene comes from the header's `meta.scene` (episodeHeader in
 * tasks/rollout.ts stores it), or, for files written without one, is rebuilt from the task
 * registry and the episode's seed (the env samples a reset's randomisation from `new Rng(seed)`)
 * and checked against the recorded object names.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readEpisode } from '../sim/record/reader.ts';
import type { EpisodeFooter, EpisodeHeader, StepRecord } from '../sim/record/types.ts';
import { mirrorDescOf } from '../sim/render/env_cameras.ts';
import type { MirrorDesc } from '../sim/render/scene.ts';
import { Rng } from '../sim/rng.ts';
import type { SceneDesc } from '../sim/types.ts';
import { TASKS } from '../tasks/index.ts';

/** An episode held by the viewer server. */
export interface ViewerEpisode {
  name: string;
  header: EpisodeHeader;
  scene: MirrorDesc | null;
  steps: StepRecord[];
  footer: EpisodeFooter | null;
  damage: string | null;
  notes: string[];
}

/** File name ending of episode files. */
export const EPISODE_EXTENSION = '.evep';

function isSceneDesc(x: unknown): x is SceneDesc {
  return !!x && typeof x === 'object' && typeof (x as SceneDesc).robot === 'string' && Array.isArray((x as SceneDesc).objects);
}

/**
 * The scene of an episode: `meta.scene` when present, else rebuilt from its task and seed.
 * Returns the scene and a note saying where it came from (or why it is missing).
 */
export function sceneForEpisode(header: EpisodeHeader, firstStep?: StepRecord): { scene: MirrorDesc | null; note: string } {
  if (isSceneDesc(header.meta?.scene)) {
    try {
      return { scene: mirrorDescOf(header.meta.scene), note: 'scene from the episode header' };
    } catch (err) {
      // E.g. a robot this build does not know: its link shapes come from the robot registry.
      return { scene: null, note: `could not draw the scene stored in the episode header (${(err as Error).message}): objects drawn as markers` };
    }
  }
  const task = Object.hasOwn(TASKS, header.task) ? TASKS[header.task] : undefined;
  if (!task) return { scene: null, note: `task '${header.task}' is not in this build's registry: objects drawn as markers` };
  let scene: SceneDesc;
  try {
    scene = task.buildScene(task.randomize(new Rng(header.seed)));
  } catch (err) {
    return { scene: null, note: `could not rebuild the scene of task '${header.task}' (${(err as Error).message}): objects drawn as markers` };
  }
  if (firstStep) {
    const recorded = Object.keys(firstStep.objects).sort().join(',');
    const rebuilt = scene.objects.map((o) => o.name).sort().join(',');
    if (recorded !== rebuilt) {
      return { scene: null, note: `rebuilt scene of '${header.task}' has objects [${rebuilt}], the file [${recorded}]: objects drawn as markers` };
    }
  }
  return { scene: mirrorDescOf(scene), note: `scene rebuilt from task '${header.task}' and seed ${header.seed}` };
}

/** Reads one episode file; a damaged file gives its intact prefix and a `damage` line. */
export function loadEpisodeFile(file: string): ViewerEpisode {
  const r = readEpisode(file);
  if (!r.header) throw new Error(`${file}: ${r.damage?.message ?? 'no header record'}`);
  const { scene, note } = sceneForEpisode(r.header, r.steps[0]);
  return {
    name: path.basename(file),
    header: r.header,
    scene,
    steps: r.steps,
    footer: r.footer,
    damage: r.damage ? r.damage.message : null,
    notes: [note],
  };
}

/** Expands directories to the episode files inside them (sorted); files are kept as given. */
export function expandEpisodePaths(paths: string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    const st = fs.statSync(p, { throwIfNoEntry: false });
    if (!st) throw new Error(`no such file or directory: ${p}`);
    if (st.isDirectory()) {
      const files = fs.readdirSync(p).filter((f) => f.endsWith(EPISODE_EXTENSION)).sort();
      if (files.length === 0) throw new Error(`directory ${p} has no ${EPISODE_EXTENSION} episode files`);
      out.push(...files.map((f) => path.join(p, f)));
    } else out.push(p);
  }
  return out;
}
