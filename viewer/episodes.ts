/**
 * Episodes as the viewer shows them: the record file's header and steps plus the scene to draw.
 * Steps carry poses, not shapes, so the scene comes from the header's `meta.scene` (episodeHeader in
 * tasks/rollout.ts stores it), or, for files written without one, is rebuilt from the task
 * registry and the episode's seed (the env samples a reset's randomisation from `new Rng(seed)`)
 * and checked against the recorded object names.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeFileSystemError, isFileSystemError } from '../sim/files.ts';
import { EpisodeReadError, indexEpisodeFile, readIndexedSteps, type EpisodeIndex } from '../sim/record/indexed.ts';
import { partialPath } from '../sim/record/writer.ts';
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
  /** Live episodes: the steps in memory. Empty for files, which are read through `index`. */
  steps: StepRecord[];
  /** A replayed file: where its steps are; they are decoded on demand (see `viewerSteps`). */
  index?: EpisodeIndex;
  footer: EpisodeFooter | null;
  damage: string | null;
  /** True for a `.partial` file (a recording that was not closed). */
  partial?: boolean;
  notes: string[];
}

/** File name ending of episode files. */
export const EPISODE_EXTENSION = '.evep';
/** File name ending of an episode still being written, or left by a crash or interruption. */
export const PARTIAL_EXTENSION = partialPath(EPISODE_EXTENSION);

/** Number of steps of an episode (in memory or on disk). */
export function viewerStepCount(ep: ViewerEpisode): number {
  return ep.index ? ep.index.stepOffsets.length : ep.steps.length;
}

/** Steps `from` .. `to - 1` of an episode; from a file they are read now (images only when asked). */
export function viewerSteps(ep: ViewerEpisode, from: number, to: number, opts: { images: boolean }): StepRecord[] {
  if (ep.index) return readIndexedSteps(ep.index, from, to, opts);
  return ep.steps.slice(Math.max(0, from), Math.max(0, to));
}

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

/**
 * Opens one episode file by index (its steps stay on disk); a damaged file gives its intact
 * prefix and a `damage` line. Throws when the file has no readable header.
 */
export function loadEpisodeFile(file: string): ViewerEpisode {
  const index = indexEpisodeFile(file);
  if (!index.header) throw new EpisodeUnreadableError(file, index.damage?.message ?? 'no header record');
  const partial = file.endsWith(PARTIAL_EXTENSION);
  const first = readIndexedSteps(index, 0, 1, { images: false })[0];
  const { scene, note } = sceneForEpisode(index.header, first);
  const notes = [note];
  if (partial) notes.unshift('partial recording (not closed: still running, interrupted or crashed)');
  return {
    name: path.basename(file),
    header: index.header,
    scene,
    steps: [],
    index,
    footer: index.footer,
    damage: index.damage ? index.damage.message : null,
    partial,
    notes,
  };
}

/** A file with no readable header: nothing of it can be shown. */
export class EpisodeUnreadableError extends Error {
  override name = 'EpisodeUnreadableError';
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}

/** A file the viewer could not show, and why. */
export interface UnreadableEpisode {
  file: string;
  reason: string;
}

/**
 * Opens every file: the readable ones (damaged files with a header included) and a list of the
 * ones that cannot be shown at all, with the reason (no header, not an episode, I/O error).
 */
export function openEpisodeFiles(files: string[]): { episodes: ViewerEpisode[]; unreadable: UnreadableEpisode[] } {
  const episodes: ViewerEpisode[] = [];
  const unreadable: UnreadableEpisode[] = [];
  for (const file of files) {
    try {
      episodes.push(loadEpisodeFile(file));
    } catch (err) {
      if (isFileSystemError(err)) unreadable.push({ file, reason: describeFileSystemError(err) });
      else if (err instanceof EpisodeUnreadableError) unreadable.push({ file, reason: err.reason });
      else if (err instanceof EpisodeReadError) unreadable.push({ file, reason: err.message });
      else throw err;
    }
  }
  return { episodes, unreadable };
}

/**
 * Expands directories to the episode files inside them, sorted, `.partial` recordings included
 * (shown as partial); files are kept as given.
 */
export function expandEpisodePaths(paths: string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    const st = fs.statSync(p, { throwIfNoEntry: false });
    if (!st) throw new Error(`no such file or directory: ${p}`);
    if (st.isDirectory()) {
      const files = fs.readdirSync(p).filter((f) => f.endsWith(EPISODE_EXTENSION) || f.endsWith(PARTIAL_EXTENSION)).sort();
      if (files.length === 0) throw new Error(`directory ${p} has no ${EPISODE_EXTENSION} episode files`);
      out.push(...files.map((f) => path.join(p, f)));
    } else out.push(p);
  }
  return out;
}
