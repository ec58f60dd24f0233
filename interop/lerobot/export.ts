/**
 * Episode files -> a LeRobotDataset v3.0 folder (see format.ts for the layout).
 *
 * Frame alignment. An episode file's step record k holds the action sent at step k and what was
 * observed after it; the reset observation is not stored. A LeRobot frame t pairs an observation
 * with the action then taken on it. So frame t = (proprio_t and images_t of record t, action of
 * record t+1, reward of record t+1 as `next.reward`); the last frame holds position (its action
 * is the recorded joints, or a zero delta in ee_delta mode) and has `next.done` set. An episode of
 * M records gives M frames; the only recorded values not in the frames, record 0's action and
 * reward, go to the sidecar meta/evovla.json with the episode's header and footer, so that
 * `importLeRobot` gives our own exports back exactly.
 *
 * The whole dataset is written into a temporary folder beside `outDir` and renamed into place at
 * the end: a failed export leaves nothing that looks like a dataset.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeDirectory } from '../../sim/files.ts';
import { readEpisode, requireIntact } from '../../sim/record/reader.ts';
import type { EpisodeFooter, EpisodeHeader, StepRecord } from '../../sim/record/types.ts';
import { getRobot } from '../../sim/robot/index.ts';
import { ExportError } from '../errors.ts';
import { writeParquetFile, type ParquetColumn } from '../parquet.ts';
import { CODECS, openVideoEncoder, type VideoCodec, type VideoEncoder } from '../video.ts';
import {
  ACTION_KEY,
  CODEBASE_VERSION,
  DATA_PATH,
  DEFAULT_CHUNK_SIZE,
  DEFAULT_DATA_FILE_SIZE_IN_MB,
  DEFAULT_FEATURES,
  DEFAULT_VIDEO_FILE_SIZE_IN_MB,
  EPISODES_PATH,
  EVOVLA_META_PATH,
  IMAGE_PREFIX,
  INFO_PATH,
  ImageStats,
  STATE_KEY,
  STATS_PATH,
  TASKS_PATH,
  VIDEO_PATH,
  formatPath,
  parquetTypeOf,
  vectorStats,
  type DatasetInfo,
  type FeatureSpec,
  type FeatureStats,
} from './format.ts';

/** Extra per-frame columns we add (LeRobot policies ignore keys outside observation.* / action). */
export const STAGE_KEY = 'stage';
export const REWARD_KEY = 'next.reward';
export const DONE_KEY = 'next.done';

/** Names of the 7 action values per action mode, and of the 7 proprio values. */
export function actionNames(header: EpisodeHeader): string[] {
  return header.actionMode === 'ee_delta' ? ['dx', 'dy', 'dz', 'droll', 'dpitch', 'dyaw', 'gripper'] : stateNames(header.robot);
}

/** The robot's arm joint names plus 'gripper': what observation.state holds. */
export function stateNames(robot: string): string[] {
  return [...getRobot(robot).armJoints, 'gripper'];
}

/** One episode's entry in meta/evovla.json. */
export interface SidecarEpisode {
  episode_index: number;
  source: string;
  header: EpisodeHeader;
  footer: EpisodeFooter;
  /** Record 0's action and reward (the frames start from record 0's observation). */
  firstAction: number[];
  firstReward: number;
  last: { terminated: boolean; truncated: boolean };
}

export interface EvovlaSidecar {
  format: 'evovla.lerobot';
  version: 1;
  episodes: SidecarEpisode[];
}

export interface LeRobotExportOptions {
  /** Video codec (default h264). */
  codec?: VideoCodec;
  /** Called after each episode (for progress lines). */
  onEpisode?: (index: number, file: string, frames: number) => void;
}

export interface LeRobotExportSummary {
  dir: string;
  episodes: number;
  frames: number;
  tasks: string[];
  cameras: string[];
  fps: number;
  features: string[];
}

export { ExportError };

interface Schema {
  robot: string;
  fps: number;
  actionMode: EpisodeHeader['actionMode'];
  cameras: Array<{ name: string; width: number; height: number }>;
}

function schemaOf(file: string, header: EpisodeHeader, steps: StepRecord[], codec: VideoCodec): Schema {
  const fps = header.controlHz;
  if (!Number.isInteger(fps) || fps <= 0) throw new ExportError(`${file}: controlHz ${fps} is not a positive integer; LeRobot needs an integer fps`);
  const cameras = header.cameras.map((name) => {
    const frame = steps[0]?.images?.[name];
    if (!frame) throw new ExportError(`${file}: header lists camera '${name}' but step 0 has no image for it`);
    if (CODECS[codec].pixFmt === 'yuv420p' && (frame.width % 2 || frame.height % 2)) {
      throw new ExportError(`${file}: camera '${name}' is ${frame.width}x${frame.height}; codec ${codec} needs even sizes (yuv420p); use --codec h264-lossless`);
    }
    if (codec === 'av1' && (frame.width < 64 || frame.height < 64)) {
      throw new ExportError(`${file}: camera '${name}' is ${frame.width}x${frame.height}; the AV1 encoder (SVT-AV1) needs at least 64x64; use --codec h264`);
    }
    return { name, width: frame.width, height: frame.height };
  });
  return { robot: header.robot, fps, actionMode: header.actionMode, cameras };
}

function sameSchema(file: string, a: Schema, b: Schema): void {
  const mismatch = (what: string, x: unknown, y: unknown) =>
    new ExportError(`${file}: ${what} is ${JSON.stringify(y)}, the first episode's ${JSON.stringify(x)}; one dataset holds episodes of one robot, rate, action mode and camera set`);
  if (a.robot !== b.robot) throw mismatch('robot', a.robot, b.robot);
  if (a.fps !== b.fps) throw mismatch('controlHz', a.fps, b.fps);
  if (a.actionMode !== b.actionMode) throw mismatch('actionMode', a.actionMode, b.actionMode);
  const cams = (s: Schema) => s.cameras.map((c) => `${c.name}@${c.width}x${c.height}`);
  if (cams(a).join(',') !== cams(b).join(',')) throw mismatch('cameras', cams(a), cams(b));
}

/** The info.json features for a schema (order: state, action, videos, extras, index columns). */
export function featuresFor(schema: Schema, header: EpisodeHeader, codec: VideoCodec): Record<string, FeatureSpec> {
  const features: Record<string, FeatureSpec> = {
    [STATE_KEY]: { dtype: 'float32', shape: [7], names: stateNames(schema.robot) },
    [ACTION_KEY]: { dtype: 'float32', shape: [7], names: actionNames(header) },
  };
  for (const cam of schema.cameras) {
    features[IMAGE_PREFIX + cam.name] = {
      dtype: 'video',
      shape: [cam.height, cam.width, 3],
      names: ['height', 'width', 'channels'],
      info: {
        'video.height': cam.height,
        'video.width': cam.width,
        'video.codec': CODECS[codec].codecName,
        'video.pix_fmt': CODECS[codec].pixFmt,
        'video.is_depth_map': false,
        'video.fps': schema.fps,
        'video.channels': 3,
        'video.g': 2,
        has_audio: false,
        is_depth_map: false,
      },
    };
  }
  features[STAGE_KEY] = { dtype: 'int64', shape: [1], names: null };
  features[REWARD_KEY] = { dtype: 'float32', shape: [1], names: null };
  features[DONE_KEY] = { dtype: 'bool', shape: [1], names: null };
  return { ...features, ...structuredClone(DEFAULT_FEATURES) };
}

/** Write `files` (episode files, in order) as a LeRobotDataset v3.0 at `outDir`. */
export async function exportLeRobot(files: string[], outDir: string, opts: LeRobotExportOptions = {}): Promise<LeRobotExportSummary> {
  if (files.length === 0) throw new ExportError('no episode files to export');
  const codec = opts.codec ?? 'h264';
  const existing = fs.statSync(outDir, { throwIfNoEntry: false });
  if (existing && (!existing.isDirectory() || fs.readdirSync(outDir).length > 0)) {
    throw new ExportError(`output ${outDir} already exists and is not an empty directory; choose a new path`);
  }
  const tmp = path.join(path.dirname(path.resolve(outDir)), `.${path.basename(outDir)}.partial-${process.pid}`);
  fs.rmSync(tmp, { recursive: true, force: true });
  makeDirectory(tmp);
  const encoders = new Map<string, VideoEncoder>();
  try {
    const summary = await writeDataset(files, tmp, codec, encoders, opts);
    if (existing) fs.rmdirSync(outDir);
    fs.renameSync(tmp, outDir);
    return { ...summary, dir: outDir };
  } catch (err) {
    for (const enc of encoders.values()) await enc.close().catch(() => undefined); // the export's own error is the one to report
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

async function writeDataset(
  files: string[],
  dir: string,
  codec: VideoCodec,
  encoders: Map<string, VideoEncoder>,
  opts: LeRobotExportOptions,
): Promise<Omit<LeRobotExportSummary, 'dir'>> {
  let schema: Schema | null = null;
  let firstHeader: EpisodeHeader | null = null;
  const tasks: string[] = [];
  const cols = {
    state: [] as number[][],
    action: [] as number[][],
    stage: [] as bigint[],
    reward: [] as number[],
    done: [] as boolean[],
    timestamp: [] as number[],
    frameIndex: [] as bigint[],
    episodeIndex: [] as bigint[],
    index: [] as bigint[],
    taskIndex: [] as bigint[],
  };
  const imageStats = new Map<string, ImageStats>();
  const episodes: Array<{ index: number; task: string; from: number; to: number }> = [];
  const sidecar: EvovlaSidecar = { format: 'evovla.lerobot', version: 1, episodes: [] };

  for (const [e, file] of files.entries()) {
    const ep = readEpisode(file);
    requireIntact(ep, file);
    const { header, steps, footer } = ep;
    if (steps.length === 0) throw new ExportError(`${file}: episode has no steps`);
    const s = schemaOf(file, header, steps, codec);
    if (!schema) {
      schema = s;
      firstHeader = header;
      for (const cam of s.cameras) {
        const rel = formatPath(VIDEO_PATH, { video_key: IMAGE_PREFIX + cam.name, chunk_index: 0, file_index: 0 });
        makeDirectory(path.dirname(path.join(dir, rel)));
        encoders.set(cam.name, openVideoEncoder(path.join(dir, rel), cam.width, cam.height, s.fps, codec));
        imageStats.set(cam.name, new ImageStats());
      }
    } else sameSchema(file, schema, s);

    let taskIndex = tasks.indexOf(header.instruction);
    if (taskIndex < 0) taskIndex = tasks.push(header.instruction) - 1;
    const from = cols.index.length;
    const m = steps.length;
    for (let t = 0; t < m; t++) {
      const rec = steps[t];
      const next = t + 1 < m ? steps[t + 1] : null;
      if (rec.proprio.length !== 7) throw new ExportError(`${file}: step ${t} proprio has ${rec.proprio.length} values, expected 7`);
      const hold = header.actionMode === 'ee_delta' ? [0, 0, 0, 0, 0, 0, rec.proprio[6]] : Array.from(rec.proprio);
      cols.state.push(Array.from(rec.proprio));
      cols.action.push(next ? Array.from(next.action) : hold);
      cols.stage.push(BigInt(rec.stage));
      cols.reward.push(next ? next.reward : 0);
      cols.done.push(next === null);
      cols.timestamp.push(Math.fround(t / s.fps));
      cols.frameIndex.push(BigInt(t));
      cols.episodeIndex.push(BigInt(e));
      cols.index.push(BigInt(from + t));
      cols.taskIndex.push(BigInt(taskIndex));
      for (const cam of s.cameras) {
        const frame = rec.images?.[cam.name];
        if (!frame) throw new ExportError(`${file}: step ${t} has no image for camera '${cam.name}' (every step needs one: video frames must equal data rows)`);
        if (frame.width !== cam.width || frame.height !== cam.height) {
          throw new ExportError(`${file}: step ${t} camera '${cam.name}' is ${frame.width}x${frame.height}, step 0 was ${cam.width}x${cam.height}`);
        }
        imageStats.get(cam.name)?.add(frame.rgb);
        await encoders.get(cam.name)?.write(frame.rgb);
      }
    }
    episodes.push({ index: e, task: header.instruction, from, to: from + m });
    sidecar.episodes.push({
      episode_index: e,
      source: path.basename(file),
      header,
      footer,
      firstAction: Array.from(steps[0].action),
      firstReward: steps[0].reward,
      last: { terminated: steps[m - 1].terminated, truncated: steps[m - 1].truncated },
    });
    opts.onEpisode?.(e, file, m);
  }
  if (!schema || !firstHeader) throw new ExportError('no episodes read');
  for (const enc of encoders.values()) await enc.close();
  encoders.clear();

  const features = featuresFor(schema, firstHeader, codec);
  const total = cols.index.length;

  // data/chunk-000/file-000.parquet: the non-video features in info.json order.
  const dataColumns: ParquetColumn[] = [
    { name: STATE_KEY, type: parquetTypeOf('float32'), list: true, data: cols.state },
    { name: ACTION_KEY, type: parquetTypeOf('float32'), list: true, data: cols.action },
    { name: STAGE_KEY, type: 'INT64', data: cols.stage },
    { name: REWARD_KEY, type: 'FLOAT', data: cols.reward },
    { name: DONE_KEY, type: 'BOOLEAN', data: cols.done },
    { name: 'timestamp', type: 'FLOAT', data: cols.timestamp },
    { name: 'frame_index', type: 'INT64', data: cols.frameIndex },
    { name: 'episode_index', type: 'INT64', data: cols.episodeIndex },
    { name: 'index', type: 'INT64', data: cols.index },
    { name: 'task_index', type: 'INT64', data: cols.taskIndex },
  ];
  writeParquetFile(path.join(dir, formatPath(DATA_PATH, { chunk_index: 0, file_index: 0 })), dataColumns);

  // meta/tasks.parquet: task_index with the task text as pandas index (LeRobot reads it with
  // pandas.read_parquet and looks tasks up by `tasks.loc[text]` / `tasks.iloc[i].name`).
  writeParquetFile(
    path.join(dir, TASKS_PATH),
    [
      { name: 'task_index', type: 'INT64', data: tasks.map((_, i) => BigInt(i)) },
      { name: 'task', type: 'STRING', data: tasks },
    ],
    { pandas: JSON.stringify(pandasIndexMetadata('task', 'task_index')) },
  );

  // meta/episodes/chunk-000/file-000.parquet
  const fps = schema.fps;
  const epColumns: ParquetColumn[] = [
    { name: 'episode_index', type: 'INT64', data: episodes.map((x) => BigInt(x.index)) },
    { name: 'tasks', type: 'STRING', list: true, data: episodes.map((x) => [x.task]) },
    { name: 'length', type: 'INT64', data: episodes.map((x) => BigInt(x.to - x.from)) },
    { name: 'data/chunk_index', type: 'INT64', data: episodes.map(() => 0n) },
    { name: 'data/file_index', type: 'INT64', data: episodes.map(() => 0n) },
    { name: 'dataset_from_index', type: 'INT64', data: episodes.map((x) => BigInt(x.from)) },
    { name: 'dataset_to_index', type: 'INT64', data: episodes.map((x) => BigInt(x.to)) },
  ];
  for (const cam of schema.cameras) {
    const key = IMAGE_PREFIX + cam.name;
    epColumns.push(
      { name: `videos/${key}/chunk_index`, type: 'INT64', data: episodes.map(() => 0n) },
      { name: `videos/${key}/file_index`, type: 'INT64', data: episodes.map(() => 0n) },
      { name: `videos/${key}/from_timestamp`, type: 'DOUBLE', data: episodes.map((x) => x.from / fps) },
      { name: `videos/${key}/to_timestamp`, type: 'DOUBLE', data: episodes.map((x) => x.to / fps) },
    );
  }
  epColumns.push(
    { name: 'meta/episodes/chunk_index', type: 'INT64', data: episodes.map(() => 0n) },
    { name: 'meta/episodes/file_index', type: 'INT64', data: episodes.map(() => 0n) },
  );
  writeParquetFile(path.join(dir, formatPath(EPISODES_PATH, { chunk_index: 0, file_index: 0 })), epColumns);

  // meta/stats.json
  const stats: Record<string, FeatureStats> = {
    [STATE_KEY]: vectorStats(cols.state, 7),
    [ACTION_KEY]: vectorStats(cols.action, 7),
  };
  for (const cam of schema.cameras) stats[IMAGE_PREFIX + cam.name] = (imageStats.get(cam.name) as ImageStats).result();
  const scalar = (xs: ArrayLike<number | bigint | boolean>) => vectorStats(Array.from(xs, (v) => [Number(v)]), 1);
  stats[STAGE_KEY] = scalar(cols.stage);
  stats[REWARD_KEY] = scalar(cols.reward);
  stats[DONE_KEY] = scalar(cols.done);
  stats.timestamp = scalar(cols.timestamp);
  stats.frame_index = scalar(cols.frameIndex);
  stats.episode_index = scalar(cols.episodeIndex);
  stats.index = scalar(cols.index);
  stats.task_index = scalar(cols.taskIndex);
  writeJson(path.join(dir, STATS_PATH), stats);

  const info: DatasetInfo = {
    codebase_version: CODEBASE_VERSION,
    fps,
    features,
    total_episodes: episodes.length,
    total_frames: total,
    total_tasks: tasks.length,
    chunks_size: DEFAULT_CHUNK_SIZE,
    data_files_size_in_mb: DEFAULT_DATA_FILE_SIZE_IN_MB,
    video_files_size_in_mb: DEFAULT_VIDEO_FILE_SIZE_IN_MB,
    data_path: DATA_PATH,
    video_path: schema.cameras.length ? VIDEO_PATH : null,
    robot_type: schema.robot,
    splits: { train: `0:${episodes.length}` },
  };
  writeJson(path.join(dir, INFO_PATH), info);
  writeJson(path.join(dir, EVOVLA_META_PATH), sidecar);
  return { episodes: episodes.length, frames: total, tasks, cameras: schema.cameras.map((c) => c.name), fps, features: Object.keys(features) };
}

/** The `pandas` key-value metadata pyarrow writes for a frame with one named string index. */
function pandasIndexMetadata(indexColumn: string, valueColumn: string): unknown {
  return {
    index_columns: [indexColumn],
    column_indexes: [{ name: null, field_name: null, pandas_type: 'unicode', numpy_type: 'object', metadata: { encoding: 'UTF-8' } }],
    columns: [
      { name: valueColumn, field_name: valueColumn, pandas_type: 'int64', numpy_type: 'int64', metadata: null },
      { name: indexColumn, field_name: indexColumn, pandas_type: 'unicode', numpy_type: 'object', metadata: null },
    ],
    creator: { library: 'evovla', version: '0.1.0' },
    pandas_version: '2.2.3',
  };
}

function writeJson(file: string, value: unknown): void {
  makeDirectory(path.dirname(file));
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  fs.renameSync(tmp, file);
}
