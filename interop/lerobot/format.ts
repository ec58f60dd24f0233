/**
 * The LeRobotDataset v3.0 layout (the format LeRobot 0.4+ reads), as far as this project writes
 * and reads it. Facts taken from LeRobot's `lerobot/datasets/` (utils.py, dataset_metadata.py,
 * io_utils.py, compute_stats.py):
 *
 *  meta/info.json                           codebase_version "v3.0", fps, robot_type, features
 *                                           {dtype, shape, names[, info]}, path templates, sizes
 *  meta/stats.json                          per feature: min, max, mean, std, count, q01..q99
 *  meta/tasks.parquet                       task_index int64, pandas index column `task`
 *  meta/episodes/chunk-000/file-000.parquet one row per episode: episode_index, tasks, length,
 *                                           dataset_from_index/to_index, data/ and videos/<key>/
 *                                           chunk and file indices, video from/to timestamps
 *  data/chunk-000/file-000.parquet          one row per frame: the features, plus index,
 *                                           episode_index, frame_index, timestamp, task_index
 *  videos/<key>/chunk-000/file-000.mp4      the frames of every episode, back to back
 *
 * Many episodes share one data file and one video file per camera; episode boundaries are the
 * metadata's row ranges and video timestamps, not file boundaries.
 */

export const CODEBASE_VERSION = 'v3.0';
export const DEFAULT_CHUNK_SIZE = 1000;
export const DEFAULT_DATA_FILE_SIZE_IN_MB = 100;
export const DEFAULT_VIDEO_FILE_SIZE_IN_MB = 200;
export const INFO_PATH = 'meta/info.json';
export const STATS_PATH = 'meta/stats.json';
export const TASKS_PATH = 'meta/tasks.parquet';
export const EPISODES_PATH = 'meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet';
export const DATA_PATH = 'data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet';
export const VIDEO_PATH = 'videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4';
/** Our own sidecar (LeRobot ignores files it does not know): episode headers and footers. */
export const EVOVLA_META_PATH = 'meta/evovla.json';

/** The feature keys LeRobot's policies look for. */
export const STATE_KEY = 'observation.state';
export const ACTION_KEY = 'action';
export const IMAGE_PREFIX = 'observation.images.';

/** A LeRobot dtype (numpy names, plus 'video', 'image' and 'string'). */
export type FeatureDtype = 'float32' | 'float64' | 'int64' | 'int32' | 'bool' | 'video' | 'image' | 'string';

export interface FeatureSpec {
  dtype: FeatureDtype;
  shape: number[];
  names: string[] | null;
  info?: Record<string, unknown>;
}

/** meta/info.json, key for key as LeRobot's DatasetInfo.to_dict writes it. */
export interface DatasetInfo {
  codebase_version: string;
  fps: number;
  features: Record<string, FeatureSpec>;
  total_episodes: number;
  total_frames: number;
  total_tasks: number;
  chunks_size: number;
  data_files_size_in_mb: number;
  video_files_size_in_mb: number;
  data_path: string;
  video_path: string | null;
  robot_type: string | null;
  splits: Record<string, string>;
}

/** The index features every v3 dataset carries (LeRobot's DEFAULT_FEATURES). */
export const DEFAULT_FEATURES: Record<string, FeatureSpec> = {
  timestamp: { dtype: 'float32', shape: [1], names: null },
  frame_index: { dtype: 'int64', shape: [1], names: null },
  episode_index: { dtype: 'int64', shape: [1], names: null },
  index: { dtype: 'int64', shape: [1], names: null },
  task_index: { dtype: 'int64', shape: [1], names: null },
};

/** Fill a path template such as DATA_PATH (Python format syntax, `{name:03d}` or `{name}`). */
export function formatPath(template: string, values: Record<string, string | number>): string {
  return template.replace(/\{(\w+)(?::0(\d+)d)?\}/g, (whole, key: string, width?: string) => {
    const v = values[key];
    if (v === undefined) throw new RangeError(`path template '${template}' needs '${key}'`);
    return width ? String(v).padStart(Number(width), '0') : String(v);
  });
}

/** The parquet type of a feature's values. */
export function parquetTypeOf(dtype: FeatureDtype): 'FLOAT' | 'DOUBLE' | 'INT64' | 'INT32' | 'BOOLEAN' | 'STRING' {
  switch (dtype) {
    case 'float32':
      return 'FLOAT';
    case 'float64':
      return 'DOUBLE';
    case 'int64':
      return 'INT64';
    case 'int32':
      return 'INT32';
    case 'bool':
      return 'BOOLEAN';
    case 'string':
      return 'STRING';
    default:
      throw new RangeError(`feature dtype '${dtype}' is not stored in the data parquet`);
  }
}

/** Per-feature statistics as LeRobot's compute_stats writes them. */
export interface FeatureStats {
  min: unknown;
  max: unknown;
  mean: unknown;
  std: unknown;
  count: number[];
  q01?: unknown;
  q10?: unknown;
  q50?: unknown;
  q90?: unknown;
  q99?: unknown;
}

const QUANTILES: Array<[keyof FeatureStats, number]> = [
  ['q01', 0.01],
  ['q10', 0.1],
  ['q50', 0.5],
  ['q90', 0.9],
  ['q99', 0.99],
];

/**
 * Statistics of `rows` (each a vector of length `dim`) per dimension: min, max, mean, population
 * std, count, and the 1/10/50/90/99% quantiles (linear interpolation between order statistics).
 */
export function vectorStats(rows: ArrayLike<number>[], dim: number): FeatureStats {
  const n = rows.length;
  const min: number[] = [];
  const max: number[] = [];
  const mean: number[] = [];
  const std: number[] = [];
  const qs: Record<string, number[]> = Object.fromEntries(QUANTILES.map(([k]) => [k, [] as number[]]));
  for (let d = 0; d < dim; d++) {
    const col = Float64Array.from(rows, (r) => Number(r[d]));
    col.sort();
    let sum = 0;
    for (const v of col) sum += v;
    const m = n ? sum / n : 0;
    let ss = 0;
    for (const v of col) ss += (v - m) * (v - m);
    min.push(n ? col[0] : 0);
    max.push(n ? col[n - 1] : 0);
    mean.push(m);
    std.push(n ? Math.sqrt(ss / n) : 0);
    for (const [k, q] of QUANTILES) {
      const pos = q * (n - 1);
      const lo = Math.floor(pos);
      const hi = Math.min(n - 1, lo + 1);
      qs[k as string].push(n ? col[lo] + (col[hi] - col[lo]) * (pos - lo) : 0);
    }
  }
  return { min, max, mean, std, count: [n], ...qs };
}

/**
 * Running per-channel statistics of RGB frames, in 0..1 as LeRobot normalises images; reported
 * with shape [3,1,1] as LeRobot's image stats are. Quantiles from a 256-bin histogram per channel
 * (exact: the values are the 256 levels).
 */
export class ImageStats {
  private readonly hist = [new Float64Array(256), new Float64Array(256), new Float64Array(256)];
  private frames = 0;

  add(rgb: Uint8Array): void {
    const [r, g, b] = this.hist;
    for (let i = 0; i < rgb.length; i += 3) {
      r[rgb[i]]++;
      g[rgb[i + 1]]++;
      b[rgb[i + 2]]++;
    }
    this.frames++;
  }

  result(): FeatureStats {
    const per = (f: (h: Float64Array) => number) => this.hist.map((h) => [[f(h)]]);
    const total = (h: Float64Array) => h.reduce((a, b) => a + b, 0);
    const mean = (h: Float64Array) => h.reduce((a, c, v) => a + c * v, 0) / Math.max(1, total(h)) / 255;
    const std = (h: Float64Array) => {
      const m = mean(h) * 255;
      return Math.sqrt(h.reduce((a, c, v) => a + c * (v - m) * (v - m), 0) / Math.max(1, total(h))) / 255;
    };
    const quantile = (h: Float64Array, q: number) => {
      const target = q * (total(h) - 1);
      let seen = 0;
      for (let v = 0; v < 256; v++) {
        seen += h[v];
        if (seen > target) return v / 255;
      }
      return 1;
    };
    const first = (h: Float64Array) => Math.max(0, h.findIndex((c) => c > 0)) / 255;
    const last = (h: Float64Array) => {
      for (let v = 255; v >= 0; v--) if (h[v] > 0) return v / 255;
      return 0;
    };
    return {
      min: per(first),
      max: per(last),
      mean: per(mean),
      std: per(std),
      count: [this.frames],
      ...Object.fromEntries(QUANTILES.map(([k, q]) => [k, per((h) => quantile(h, q))])),
    };
  }
}
