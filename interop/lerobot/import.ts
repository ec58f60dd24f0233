/**
 * A LeRobotDataset v3.0 folder -> episode files, so our training reads it like our own demos.
 *
 * The dataset's features must map onto the robot's joints: `observation.state` and `action` are
 * float vectors of 7 whose `names` are the robot's arm joints plus 'gripper' (an `action` named
 * dx, dy, dz, droll, dpitch, dyaw, gripper imports as ee_delta actions). Each video feature
 * `observation.images.<name>` becomes camera `<name>`. Anything else that does not fit is refused
 * with an error naming the feature. Frame alignment is the inverse of export.ts: record t gets
 * frame t's observation and frame t-1's action and `next.reward`; record 0 gets the sidecar's
 * first action when the dataset is one of our exports, else a hold-position action.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeDirectory } from '../../sim/files.ts';
import { EpisodeWriter } from '../../sim/record/writer.ts';
import { EPISODE_FORMAT_VERSION, type EpisodeFooter, type EpisodeHeader, type StepRecord } from '../../sim/record/types.ts';
import type { CameraFrame } from '../../sim/types.ts';
import { robotIds } from '../../sim/robot/index.ts';
import { readParquetFile } from '../parquet.ts';
import { openVideoDecoder, type VideoDecoder } from '../video.ts';
import { REWARD_KEY, STAGE_KEY, actionNames, stateNames, type EvovlaSidecar, type SidecarEpisode } from './export.ts';
import { ACTION_KEY, EVOVLA_META_PATH, IMAGE_PREFIX, INFO_PATH, STATE_KEY, TASKS_PATH, formatPath, type DatasetInfo, type FeatureSpec } from './format.ts';

/** Thrown when a dataset does not fit; the message names the file, key or feature. */
export class ImportError extends Error {
  override name = 'ImportError';
}

export interface LeRobotImportOptions {
  /** Robot the dataset must map onto (default: the dataset's robot_type if registered, else airbot_play). */
  robot?: string;
  /**
   * Task id for datasets that are not our exports (default 'lerobot'): their episodes are written
   * as `<task>-<episode_index>.evep` with seed = episode index, the names a training config's
   * demo folder is read by (data.demoDir, demoSeed 0).
   */
  task?: string;
  onEpisode?: (index: number, file: string, frames: number) => void;
}

export interface LeRobotImportSummary {
  files: string[];
  episodes: number;
  frames: number;
  robot: string;
  actionMode: EpisodeHeader['actionMode'];
  cameras: string[];
}

function readJson<T>(file: string, what: string): T {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ImportError(`cannot read ${what} ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new ImportError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
}

/** Feature names as a flat list (LeRobot also writes {"motors": [...]} style dicts). */
function flatNames(names: FeatureSpec['names'] | Record<string, string[]>): string[] | null {
  if (names === null || names === undefined) return null;
  if (Array.isArray(names)) return names.map(String);
  const lists = Object.values(names);
  return lists.length === 1 && Array.isArray(lists[0]) ? lists[0].map(String) : null;
}

/** Check that `info.features` maps onto `robot`; returns the action mode and the camera list. */
export function checkFeatures(info: DatasetInfo, robot: string): { actionMode: EpisodeHeader['actionMode']; cameras: Array<{ key: string; name: string; width: number; height: number }> } {
  const features = info.features ?? {};
  const joints = stateNames(robot);
  const vector = (key: string, expected: string[][]): number => {
    const f = features[key];
    if (!f) throw new ImportError(`dataset has no feature '${key}' (expected a float vector named [${expected[0].join(', ')}])`);
    if (f.dtype !== 'float32' && f.dtype !== 'float64') throw new ImportError(`feature '${key}' has dtype '${f.dtype}', expected float32 or float64`);
    if (f.shape.length !== 1 || f.shape[0] !== 7) throw new ImportError(`feature '${key}' has shape [${f.shape.join(', ')}], expected [7] (${expected[0].join(', ')})`);
    const names = flatNames(f.names as FeatureSpec['names']);
    if (!names) throw new ImportError(`feature '${key}' has no names; expected [${expected[0].join(', ')}] to map it onto robot '${robot}'`);
    const match = expected.findIndex((e) => e.length === names.length && e.every((n, i) => n === names[i]));
    if (match < 0) {
      throw new ImportError(`feature '${key}' names [${names.join(', ')}] do not map onto robot '${robot}': expected [${expected.map((e) => e.join(', ')).join('] or [')}]`);
    }
    return match;
  };
  vector(STATE_KEY, [joints]);
  const eeNames = actionNames({ actionMode: 'ee_delta', robot } as EpisodeHeader);
  const actionMode = vector(ACTION_KEY, [joints, eeNames]) === 0 ? 'joint' : 'ee_delta';
  const cameras: Array<{ key: string; name: string; width: number; height: number }> = [];
  for (const [key, f] of Object.entries(features)) {
    if (f.dtype === 'image') throw new ImportError(`feature '${key}' stores images in parquet (dtype 'image'); only video features are imported`);
    if (f.dtype !== 'video') continue;
    if (!key.startsWith(IMAGE_PREFIX)) throw new ImportError(`video feature '${key}' is not under '${IMAGE_PREFIX}'; cannot name its camera`);
    const names = flatNames(f.names as FeatureSpec['names']) ?? ['height', 'width', 'channels'];
    const hwc = names[2] === 'channels' || names[2] === 'channel';
    const [h, w, c] = hwc ? f.shape : [f.shape[1], f.shape[2], f.shape[0]];
    if (f.shape.length !== 3 || c !== 3) throw new ImportError(`video feature '${key}' has shape [${f.shape.join(', ')}], expected [height, width, 3]`);
    cameras.push({ key, name: key.slice(IMAGE_PREFIX.length), width: w, height: h });
  }
  return { actionMode, cameras };
}

/** A parquet value as a number (INT64 columns read back as bigint). */
function num(v: unknown): number {
  return Number(v);
}

/** Import the dataset at `dir` into episode files under `outDir` (created if needed). */
export async function importLeRobot(dir: string, outDir: string, opts: LeRobotImportOptions = {}): Promise<LeRobotImportSummary> {
  const info = readJson<DatasetInfo>(path.join(dir, INFO_PATH), 'dataset info');
  if (info.codebase_version !== 'v3.0') {
    throw new ImportError(`${path.join(dir, INFO_PATH)}: codebase_version is '${String(info.codebase_version)}', expected 'v3.0' (convert older datasets with LeRobot's convert_dataset_v21_to_v30)`);
  }
  const fps = info.fps;
  if (!Number.isInteger(fps) || fps <= 0) throw new ImportError(`${path.join(dir, INFO_PATH)}: fps must be a positive integer, got ${String(fps)}`);
  const robot = opts.robot ?? (info.robot_type && robotIds().includes(info.robot_type) ? info.robot_type : 'airbot_play');
  if (!robotIds().includes(robot)) throw new ImportError(`unknown robot '${robot}' (expected one of: ${robotIds().join(', ')})`);
  const { actionMode, cameras } = checkFeatures(info, robot);
  const foreignTask = opts.task ?? 'lerobot';
  if (!/^[A-Za-z0-9_.-]+$/.test(foreignTask)) throw new ImportError(`task id must be letters, digits, _ . -, got '${foreignTask}'`);

  const sidecarFile = path.join(dir, EVOVLA_META_PATH);
  const sidecar = fs.existsSync(sidecarFile) ? readJson<EvovlaSidecar>(sidecarFile, 'sidecar') : null;
  const sidecarByIndex = new Map<number, SidecarEpisode>((sidecar?.episodes ?? []).map((e) => [e.episode_index, e]));

  const tasks = (await readParquetFile(path.join(dir, TASKS_PATH))).rows;
  const taskText = new Map<number, string>(tasks.map((r) => [num(r.task_index), String(r.task ?? r.__index_level_0__ ?? '')]));

  const episodesDir = path.join(dir, 'meta', 'episodes');
  const episodeFiles = listParquet(episodesDir);
  if (episodeFiles.length === 0) throw new ImportError(`${episodesDir} holds no episode parquet files`);
  const episodes: Record<string, unknown>[] = [];
  for (const f of episodeFiles) episodes.push(...(await readParquetFile(f)).rows);
  episodes.sort((a, b) => num(a.episode_index) - num(b.episode_index));

  makeDirectory(outDir);
  const dataCache = new Map<string, Map<number, Record<string, unknown>>>();
  const decoders = new Map<string, VideoDecoder>();
  const written: string[] = [];
  let frames = 0;
  try {
    for (const ep of episodes) {
      const e = num(ep.episode_index);
      const from = num(ep.dataset_from_index);
      const to = num(ep.dataset_to_index);
      const length = num(ep.length);
      if (to - from !== length) throw new ImportError(`episode ${e}: dataset_to_index - dataset_from_index = ${to - from}, length ${length}`);
      const dataFile = path.join(dir, formatPath(info.data_path, { chunk_index: num(ep['data/chunk_index']), file_index: num(ep['data/file_index']) }));
      let rowsByIndex = dataCache.get(dataFile);
      if (!rowsByIndex) {
        const table = await readParquetFile(dataFile);
        rowsByIndex = new Map(table.rows.map((r) => [num(r.index), r]));
        dataCache.clear(); // keep one data file in memory at a time
        dataCache.set(dataFile, rowsByIndex);
      }
      const rows: Record<string, unknown>[] = [];
      for (let i = from; i < to; i++) {
        const r = rowsByIndex.get(i);
        if (!r) throw new ImportError(`${dataFile}: no row with index ${i} (episode ${e} spans ${from}..${to - 1})`);
        if (num(r.episode_index) !== e || num(r.frame_index) !== i - from) {
          throw new ImportError(`${dataFile}: row ${i} has episode_index ${num(r.episode_index)} frame_index ${num(r.frame_index)}, expected episode ${e} frame ${i - from}`);
        }
        rows.push(r);
      }
      const images = await readEpisodeFrames(dir, info, ep, cameras, length, decoders);
      const side = sidecarByIndex.get(e);
      const epTasks = Array.isArray(ep.tasks) ? (ep.tasks as unknown[]).map(String) : [];
      const instruction = side?.header.instruction ?? epTasks[0] ?? taskText.get(num(rows[0]?.task_index)) ?? '';
      const header: EpisodeHeader = side
        ? { ...side.header, version: EPISODE_FORMAT_VERSION }
        : {
            format: 'evovla.episode',
            version: EPISODE_FORMAT_VERSION,
            task: foreignTask,
            instruction,
            robot,
            seed: e,
            controlHz: fps,
            physicsHz: fps * 4,
            actionMode,
            configHash: '',
            stages: [],
            cameras: cameras.map((c) => c.name),
            meta: { writer: 'lerobot-import', dataset: path.resolve(dir), episodeIndex: e, robotType: info.robot_type },
          };
      const name = side ? side.source.replace(/\.evep$/, '') : `${foreignTask}-${e}`;
      const file = path.join(outDir, `${name}.evep`);
      if (fs.existsSync(file)) throw new ImportError(`${file} already exists; import into a new or empty folder`);
      const writer = EpisodeWriter.open(file, header);
      let maxStage = 0;
      try {
        for (let t = 0; t < length; t++) {
          const r = rows[t];
          const prev = t > 0 ? rows[t - 1] : null;
          const proprio = Float32Array.from(r[STATE_KEY] as number[]);
          const hold = actionMode === 'ee_delta' ? [0, 0, 0, 0, 0, 0, proprio[6]] : Array.from(proprio);
          const stage = r[STAGE_KEY] !== undefined ? num(r[STAGE_KEY]) : 0;
          maxStage = Math.max(maxStage, stage);
          const last = t === length - 1;
          const rec: StepRecord = {
            step: t + 1,
            time: (t + 1) / fps,
            action: Float32Array.from(prev ? (prev[ACTION_KEY] as number[]) : (side?.firstAction ?? hold)),
            proprio,
            links: {},
            ee: { p: [0, 0, 0], q: [0, 0, 0, 1] },
            objects: {},
            predicates: {},
            stage,
            rewardTerms: {},
            reward: prev ? num(prev[REWARD_KEY] ?? 0) : (side?.firstReward ?? 0),
            terminated: last ? (side?.last.terminated ?? false) : false,
            truncated: last ? (side?.last.truncated ?? true) : false,
          };
          if (cameras.length) rec.images = Object.fromEntries(cameras.map((c) => [c.name, images[c.name][t]]));
          writer.append(rec);
        }
      } catch (err) {
        writer.discard();
        throw err;
      }
      const footer: EpisodeFooter = side?.footer ?? { steps: length, success: false, finalStateHash: '', maxStage };
      written.push(writer.close(footer));
      frames += length;
      opts.onEpisode?.(e, file, length);
    }
  } finally {
    for (const d of decoders.values()) d.close();
  }
  return { files: written, episodes: episodes.length, frames, robot, actionMode, cameras: cameras.map((c) => c.name) };
}

/** The episode's frames of every camera, read from the shared video files in order. */
async function readEpisodeFrames(
  dir: string,
  info: DatasetInfo,
  ep: Record<string, unknown>,
  cameras: Array<{ key: string; name: string; width: number; height: number }>,
  length: number,
  decoders: Map<string, VideoDecoder>,
): Promise<Record<string, CameraFrame[]>> {
  const out: Record<string, CameraFrame[]> = {};
  for (const cam of cameras) {
    if (!info.video_path) throw new ImportError(`${path.join(dir, INFO_PATH)}: video feature '${cam.key}' but no video_path`);
    const file = path.join(
      dir,
      formatPath(info.video_path, { video_key: cam.key, chunk_index: num(ep[`videos/${cam.key}/chunk_index`]), file_index: num(ep[`videos/${cam.key}/file_index`]) }),
    );
    const first = Math.round(num(ep[`videos/${cam.key}/from_timestamp`]) * info.fps);
    let dec = decoders.get(cam.key);
    if (!dec || dec.file !== file || dec.position > first) {
      // Episodes are read in order, so one decoder per camera walks each file once; a jump
      // backwards (episodes stored out of order) reopens it.
      dec?.close();
      dec = openVideoDecoder(file);
      decoders.set(cam.key, dec);
    }
    if (dec.width !== cam.width || dec.height !== cam.height) {
      throw new ImportError(`${file} is ${dec.width}x${dec.height}, feature '${cam.key}' says ${cam.width}x${cam.height}`);
    }
    while (dec.position < first) {
      if (!(await dec.next())) throw new ImportError(`${file} ends at frame ${dec.position}, before episode ${num(ep.episode_index)} starts at ${first}`);
    }
    const frames: CameraFrame[] = [];
    for (let t = 0; t < length; t++) {
      const rgb = await dec.next();
      if (!rgb) throw new ImportError(`${file} has ${dec.position} frames; episode ${num(ep.episode_index)} needs frames ${first}..${first + length - 1}`);
      frames.push({ width: cam.width, height: cam.height, rgb });
    }
    out[cam.name] = frames;
  }
  return out;
}

function listParquet(root: string): string[] {
  if (!fs.existsSync(root)) return [];
  const out: string[] = [];
  for (const chunk of fs.readdirSync(root).sort()) {
    const sub = path.join(root, chunk);
    if (!fs.statSync(sub).isDirectory()) continue;
    for (const f of fs.readdirSync(sub).sort()) if (f.endsWith('.parquet')) out.push(path.join(sub, f));
  }
  return out;
}
