/**
 * Demonstrations for behaviour cloning, streamed from disk with bounded memory.
 *
 * Episode files hold compressed camera images next to each step; decoding all of them into memory
 * (what the viewer does for one file) would need ~25 KB per frame at 2 x 64x64, ~1 GB for 100
 * Stack demos. Instead a one-time pass (`buildFrameCache`) reads the episodes one file at a time
 * and writes the decoded images, channel-first uint8, to one flat file; proprio and actions (28
 * bytes each per frame) stay in memory. Training then reads each sampled frame with one positioned
 * read, so memory holds a batch, not the data set, and the OS page cache does the rest.
 *
 * Alignment: step record j holds the action a_j applied at step j and the observation after it
 * (proprio_j, images_j), which is the observation a_{j+1} was chosen from. So frame j pairs
 * (proprio_j, images_j) with the action chunk a_{j+1} .. a_{j+K} (repeating the episode's last
 * action past its end, as ACT pads). The reset observation before a_0 is not recorded, so a_0 is
 * never a target.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { makeDirectory } from '../../sim/files.ts';
import { iterateEpisode } from '../../sim/record/reader.ts';
import type { EpisodeHeader, StepRecord } from '../../sim/record/types.ts';
import type { Rng } from '../../sim/rng.ts';
import type { NormStats } from '../vla/model.ts';

/** Cache layout version; a cache of another version is rebuilt. */
const CACHE_VERSION = 2;

/** Largest proprio change (rad, m) between two frames that `stillWait` calls still. */
export const STILL_TOL = 5e-4;

/** One episode's frames in the cache. */
export interface CachedEpisode {
  file: string;
  seed: number;
  task: string;
  instruction: string;
  /** First frame index and number of frames. */
  start: number;
  length: number;
  success: boolean;
}

/** The cache's index (index.json). */
interface CacheIndex {
  version: number;
  cameras: string[];
  size: number;
  /** Source files with byte sizes and modification times: a change rebuilds the cache. */
  sources: { file: string; bytes: number; mtimeMs: number }[];
  episodes: CachedEpisode[];
  frames: number;
  /** Dynamic objects (name order) whose positions relative to the tool make up each frame's `state`. */
  objects: string[];
}

/** Decoded demonstrations: low-dimensional data in memory, images on disk. */
export class FrameCache {
  private fd: number | null;
  /** Bytes of one frame's images (cameras x 3 x size x size). */
  readonly frameBytes: number;

  private constructor(
    readonly dir: string,
    readonly cameras: string[],
    readonly size: number,
    readonly episodes: CachedEpisode[],
    /** proprio of frame i at [7i, 7i+7). */
    readonly proprio: Float32Array,
    /** The action chosen from frame i's observation at [7i, 7i+7). */
    readonly actions: Float32Array,
    /** Episode index of each frame. */
    readonly episodeOf: Int32Array,
    /** Objects in the privileged state, in name order. */
    readonly objects: string[],
    /**
     * Privileged ground truth of frame i at [D i, D i + D), D = 3 x objects: each object's position
     * minus the tool's, in metres (world axes). Training-time only (an auxiliary target); the policy
     * never reads it.
     */
    readonly state: Float32Array,
  ) {
    this.frameBytes = cameras.length * 3 * size * size;
    this.fd = openSync(join(dir, 'images.u8'), 'r');
  }

  get frames(): number {
    return this.episodeOf.length;
  }

  /** Size D of a frame's privileged state (3 per object). */
  get stateDim(): number {
    return 3 * this.objects.length;
  }

  /** Per-dimension mean and std (floored at 1 mm) of the privileged state over `frames`. */
  stateStats(frames: Int32Array): { mean: number[]; std: number[] } {
    const D = this.stateDim;
    const { m, s } = meanStd(D, (visit) => {
      for (const i of frames) visit((d) => this.state[D * i + d]);
    });
    return { mean: m, std: s };
  }

  /** Opens the cache in `dir` (built by buildFrameCache). */
  static open(dir: string): FrameCache {
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as CacheIndex;
    const low = readFileSync(join(dir, 'lowdim.f32'));
    const f = new Float32Array(low.buffer, low.byteOffset, low.byteLength / 4);
    const n = index.frames;
    const D = 3 * index.objects.length;
    if (f.length !== n * (14 + D)) throw new Error(`frame cache ${dir}: lowdim.f32 has ${f.length} values, expected ${n * (14 + D)} for ${n} frames; delete the folder to rebuild it`);
    const episodeOf = new Int32Array(n);
    index.episodes.forEach((e, k) => episodeOf.fill(k, e.start, e.start + e.length));
    return new FrameCache(dir, index.cameras, index.size, index.episodes, f.slice(0, n * 7), f.slice(n * 7, n * 14), episodeOf, index.objects, f.slice(n * 14));
  }

  /** Reads frame `i`'s images (channel-first per camera, cameras in order) into `out` at `offset`. */
  readImages(i: number, out: Uint8Array, offset = 0): void {
    if (this.fd === null) throw new Error('frame cache is closed');
    const got = readSync(this.fd, out, offset, this.frameBytes, i * this.frameBytes);
    if (got !== this.frameBytes) throw new Error(`frame cache ${this.dir}: short read of frame ${i} (${got} of ${this.frameBytes} bytes); delete the folder to rebuild it`);
  }

  /** Action k steps after frame i's (k = 0: the next action), clamped to the episode's last. */
  chunkAction(i: number, k: number): Float32Array {
    const ep = this.episodes[this.episodeOf[i]];
    const j = Math.min(i + k, ep.start + ep.length - 1);
    return this.actions.subarray(7 * j, 7 * j + 7);
  }

  /**
   * Whether frame i sits in a still wait: its observation has not moved since the previous frame
   * (every proprio value within `tol`; rad and m) and the expert's command stays one and the same
   * for the next `window` actions. The grasp's settle wait is such a stretch: the fingers have
   * stalled on the block, the images and proprio repeat, and the labels say "hold n more steps"
   * for every n, so a policy that re-plans from that state learns to hold for ever. With `tol`
   * infinite only the command decides (data.dropWaitsBy 'command').
   */
  stillWait(i: number, window: number, tol = STILL_TOL): boolean {
    const ep = this.episodes[this.episodeOf[i]];
    // The window must lie inside the episode: a chunk clamped at its end repeats the last action without waiting.
    if (i <= ep.start || window < 1 || i + window > ep.start + ep.length) return false;
    for (let d = 0; d < 7; d++) if (Math.abs(this.proprio[7 * i + d] - this.proprio[7 * (i - 1) + d]) > tol) return false;
    const a = this.chunkAction(i, 0);
    for (let k = 1; k < window; k++) {
      const b = this.chunkAction(i, k);
      for (let d = 0; d < 7; d++) if (b[d] !== a[d]) return false;
    }
    return true;
  }

  /**
   * Mean and standard deviation of proprio and of the predicted action quantity over the frames of
   * `episodes` (std floored at 1e-3). With `relative` dimensions (the joints in delta mode) the
   * action statistics are those of the target minus the frame's proprio, over every offset of a
   * `chunk`-step chunk, since the model predicts the whole chunk from one frame.
   */
  stats(episodes: readonly number[] = this.episodes.map((_, k) => k), relative: readonly boolean[] = [], chunk = 1): NormStats {
    const acc = (value: (i: number, k: number, d: number) => number, offsets: number) =>
      meanStd(7, (visit) => {
        for (const e of episodes) {
          const ep = this.episodes[e];
          for (let i = ep.start; i < ep.start + ep.length; i++) for (let k = 0; k < offsets; k++) visit((d) => value(i, k, d));
        }
      });
    const p = acc((i, _k, d) => this.proprio[7 * i + d], 1);
    const rel = relative.some(Boolean);
    // Absolute targets: the frames' own actions (each action is some frame's chunk step).
    const a = rel ? acc((i, k, d) => this.chunkTarget(i, k, d, relative), chunk) : acc((i, _k, d) => this.actions[7 * i + d], 1);
    return { proprioMean: p.m, proprioStd: p.s, actionMean: a.m, actionStd: a.s };
  }

  /** Dimension `d` of the action k steps after frame i's, minus frame i's proprio where `relative[d]`. */
  chunkTarget(i: number, k: number, d: number, relative: readonly boolean[]): number {
    const a = this.chunkAction(i, k)[d];
    return relative[d] ? a - this.proprio[7 * i + d] : a;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/**
 * Per-dimension mean and standard deviation (floored at 1e-3) of the samples `each` visits; each
 * sample is given as a function of its dimension. Throws when there are none.
 */
function meanStd(dims: number, each: (visit: (value: (d: number) => number) => void) => void): { m: number[]; s: number[] } {
  const mean = new Float64Array(dims);
  const sq = new Float64Array(dims);
  let n = 0;
  each((value) => {
    for (let d = 0; d < dims; d++) {
      const v = value(d);
      mean[d] += v;
      sq[d] += v * v;
    }
    n++;
  });
  if (n === 0) throw new Error('stats over no frames');
  const m = [...mean].map((x) => x / n);
  return { m, s: [...sq].map((x, d) => Math.max(1e-3, Math.sqrt(Math.max(0, x / n - m[d] ** 2)))) };
}

/** Episode files (`*.evep`) in `demoDir`, sorted by name. */
export function listEpisodeFiles(demoDir: string): string[] {
  if (!existsSync(demoDir)) return [];
  return readdirSync(demoDir)
    .filter((f) => f.endsWith('.evep'))
    .sort()
    .map((f) => join(demoDir, f));
}

function framesOf(file: string, cameras: string[], size: number, onStep: (rec: StepRecord) => void): { header: EpisodeHeader; success: boolean } {
  let header: EpisodeHeader | null = null;
  let success = false;
  const it = iterateEpisode(readFileSync(file));
  for (;;) {
    const next = it.next();
    if (next.done) {
      if (next.value) throw new Error(`${file}: damaged episode file (${next.value.message}); regenerate it or remove it from the demo folder`);
      break;
    }
    const rec = next.value;
    if (rec.kind === 'header') {
      header = rec.value;
      const missing = cameras.filter((c) => !header!.cameras.includes(c));
      if (missing.length) throw new Error(`${file}: has cameras [${header.cameras.join(', ')}], the model needs ${missing.join(', ')}; record demos with --cameras ${cameras.join(',')}@${size}x${size}`);
    } else if (rec.kind === 'step') onStep(rec.value);
    else success = rec.value.success;
  }
  if (!header) throw new Error(`${file}: no episode header`);
  return { header, success };
}

/**
 * Builds (or reuses) the frame cache of the episode `files` for `cameras` at
 * `size` x `size`, in `cacheDir`. Reused when its sources (names, sizes, times) are unchanged.
 * Written to a temporary folder and renamed, so an interrupted build leaves no half cache.
 */
export function buildFrameCache(files: readonly string[], cacheDir: string, cameras: string[], size: number, log: (line: string) => void = () => {}): FrameCache {
  if (files.length === 0) throw new Error(`no episode files to cache into '${cacheDir}'`);
  const sources = files.map((file) => {
    const st = statSync(file);
    return { file, bytes: st.size, mtimeMs: st.mtimeMs };
  });
  const indexFile = join(cacheDir, 'index.json');
  if (existsSync(indexFile)) {
    const old = JSON.parse(readFileSync(indexFile, 'utf8')) as CacheIndex;
    if (old.version === CACHE_VERSION && old.size === size && JSON.stringify(old.cameras) === JSON.stringify(cameras) && JSON.stringify(old.sources) === JSON.stringify(sources)) {
      return FrameCache.open(cacheDir);
    }
    log(`frame cache ${cacheDir} is stale; rebuilding`);
  }
  const tmp = `${cacheDir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  makeDirectory(tmp);
  const fd = openSync(join(tmp, 'images.u8'), 'w');
  const plane = size * size;
  const frameBytes = cameras.length * 3 * plane;
  const frame = new Uint8Array(frameBytes);
  const proprio: number[] = [];
  const actions: number[] = [];
  const state: number[] = [];
  const episodes: CachedEpisode[] = [];
  let objects: string[] | null = null;
  let frames = 0;
  try {
    for (const file of files) {
      const steps: { proprio: Float32Array; action: Float32Array; images: Uint8Array; state: number[] }[] = [];
      let prev: { proprio: Float32Array; images: Uint8Array; state: number[] } | null = null;
      const { header, success } = framesOf(file, cameras, size, (rec) => {
        // Frame j = observation after step j, paired with the action of step j + 1.
        if (prev) steps.push({ proprio: prev.proprio, action: Float32Array.from(rec.action), images: prev.images, state: prev.state });
        const names = Object.keys(rec.objects).sort();
        if (objects === null) objects = names;
        else if (names.join(',') !== objects.join(',')) throw new Error(`${file}: step ${rec.step} has objects [${names.join(', ')}], earlier frames [${objects.join(', ')}]; one cache holds one task's demos`);
        const tool = rec.ee.p;
        const rel = names.flatMap((n) => [0, 1, 2].map((a) => rec.objects[n].p[a] - tool[a]));
        const img = new Uint8Array(frameBytes);
        cameras.forEach((cam, c) => {
          const f = rec.images?.[cam];
          if (!f) throw new Error(`${file}: step ${rec.step} has no image from camera '${cam}'`);
          if (f.width !== size || f.height !== size) throw new Error(`${file}: camera '${cam}' is ${f.width}x${f.height}, the model expects ${size}x${size} (model.imageSize)`);
          const base = c * 3 * plane;
          for (let p = 0; p < plane; p++) {
            img[base + p] = f.rgb[3 * p];
            img[base + plane + p] = f.rgb[3 * p + 1];
            img[base + 2 * plane + p] = f.rgb[3 * p + 2];
          }
        });
        prev = { proprio: Float32Array.from(rec.proprio.subarray(0, 7)), images: img, state: rel };
      });
      for (const s of steps) {
        frame.set(s.images);
        writeSync(fd, frame);
        proprio.push(...s.proprio);
        actions.push(...s.action);
        for (const v of s.state) state.push(v);
      }
      episodes.push({ file, seed: header.seed, task: header.task, instruction: header.instruction, start: frames, length: steps.length, success });
      frames += steps.length;
    }
  } finally {
    closeSync(fd);
  }
  const low = new Float32Array(proprio.length + actions.length + state.length);
  low.set(proprio, 0);
  low.set(actions, proprio.length);
  low.set(state, proprio.length + actions.length);
  writeFileSync(join(tmp, 'lowdim.f32'), new Uint8Array(low.buffer));
  const index: CacheIndex = { version: CACHE_VERSION, cameras, size, sources, episodes, frames, objects: objects ?? [] };
  writeFileSync(join(tmp, 'index.json'), JSON.stringify(index));
  rmSync(cacheDir, { recursive: true, force: true });
  makeDirectory(join(cacheDir, '..'));
  renameSync(tmp, cacheDir);
  log(`frame cache: ${episodes.length} episodes, ${frames} frames (${((frames * frameBytes) / 2 ** 20).toFixed(0)} MiB of images) in ${cacheDir}`);
  return FrameCache.open(cacheDir);
}

/** A training batch in the model's input layout. */
export interface Batch {
  proprio: Float32Array;
  images: Float32Array[];
  /** Normalised action chunks [B, K, 7]. */
  target: Float32Array;
  /** The frames' privileged state [B, D], normalised with `stateNorm`, when one was given. */
  state?: Float32Array;
}

/**
 * Samples `batch` frames uniformly (with replacement) from `frames` and assembles model inputs:
 * images as floats in 0..1 (with a random shift of up to `shift` pixels per image: edge-padded,
 * then cropped back, as DrQ does), proprio, and the normalised target chunk. Every random choice
 * comes from `rng`, so a seeded sampler gives the same batches. `relative` marks the dimensions
 * whose targets are taken relative to the frame's proprio (the joints with `model.actionFrame: delta`).
 */
export function sampleBatch(
  cache: FrameCache,
  frames: Int32Array,
  batch: number,
  chunk: number,
  stats: NormStats,
  rng: Rng,
  shift: number,
  scratch: Uint8Array = new Uint8Array(cache.frameBytes),
  relative: readonly boolean[] = [],
  stateNorm?: { mean: number[]; std: number[] },
): Batch {
  const S = cache.size;
  const plane = S * S;
  const cams = cache.cameras.length;
  const proprio = new Float32Array(batch * 7);
  const images = cache.cameras.map(() => new Float32Array(batch * 3 * plane));
  const target = new Float32Array(batch * chunk * 7);
  const D = cache.stateDim;
  const state = stateNorm ? new Float32Array(batch * D) : undefined;
  for (let b = 0; b < batch; b++) {
    const i = frames[rng.int(frames.length)];
    cache.readImages(i, scratch);
    for (let c = 0; c < cams; c++) {
      const dy = shift > 0 ? rng.int(2 * shift + 1) - shift : 0;
      const dx = shift > 0 ? rng.int(2 * shift + 1) - shift : 0;
      const out = images[c];
      for (let ch = 0; ch < 3; ch++) {
        const src = (c * 3 + ch) * plane;
        const dst = (b * 3 + ch) * plane;
        for (let y = 0; y < S; y++) {
          const sy = Math.min(S - 1, Math.max(0, y + dy));
          for (let x = 0; x < S; x++) {
            const sx = Math.min(S - 1, Math.max(0, x + dx));
            out[dst + y * S + x] = scratch[src + sy * S + sx] / 255;
          }
        }
      }
    }
    proprio.set(cache.proprio.subarray(7 * i, 7 * i + 7), 7 * b);
    for (let k = 0; k < chunk; k++) {
      for (let d = 0; d < 7; d++) target[(b * chunk + k) * 7 + d] = (cache.chunkTarget(i, k, d, relative) - stats.actionMean[d]) / stats.actionStd[d];
    }
    if (state && stateNorm) for (let d = 0; d < D; d++) state[b * D + d] = (cache.state[D * i + d] - stateNorm.mean[d]) / stateNorm.std[d];
  }
  return { proprio, images, target, state };
}
