/**
 * Messages between the viewer server and the browser app, msgpack-encoded over one WebSocket.
 * Shared by both sides (browser-safe: no Node modules). Typed arrays travel as typed arrays
 * (msgpackr `moreTypes`), so images are not copied into JS arrays.
 */
import { Packr } from 'msgpackr';
import type { MirrorDesc } from '../sim/render/scene.ts';
import type { EpisodeFooter, EpisodeHeader, StepRecord } from '../sim/record/types.ts';

/** The codec both sides use. */
export const viewerPackr = new Packr({ useRecords: false, moreTypes: true });

/** A step without its images and action (what the scene, the timeline and the plots need). */
export type ViewStep = Omit<StepRecord, 'images' | 'action' | 'proprio'>;

/** Which image of a camera the page shows. */
export type ImageChannel = 'rgb' | 'depth' | 'segmentation';
export const IMAGE_CHANNELS: readonly ImageChannel[] = ['rgb', 'depth', 'segmentation'];

/** One camera image as sent to the browser: exactly one of the arrays, per the channel asked for. */
export interface ViewImage {
  width: number;
  height: number;
  rgb?: Uint8Array;
  depth?: Float32Array;
  segmentation?: Uint16Array;
}

/** What the browser learns about an episode before loading its steps. */
export interface EpisodeSummary {
  id: number;
  name: string;
  header: EpisodeHeader;
  /** What to draw; null when the scene could not be reconstructed (poses are still drawn as markers). */
  scene: MirrorDesc | null;
  steps: number;
  footer: EpisodeFooter | null;
  /** One line when the file is damaged (the intact prefix is shown). */
  damage: string | null;
  /** A `.partial` file: a recording that was not closed (its damage says where it stops). */
  partial?: boolean;
  /** Notes for the person watching (e.g. how the scene was reconstructed). */
  notes: string[];
}

/** One line of a run's metrics.jsonl: its numeric fields, and `_line` (1-based line number). */
export type MetricRow = Record<string, number>;

/** A training run: its resolved config (YAML text), metrics so far, eval summary, notes for the reader. */
export interface RunSummary {
  name: string;
  config: string;
  metrics: MetricRow[];
  notes: string[];
  /** eval.json's text, '' when the run has none (yet). */
  evalSummary: string;
}

export type ServerMessage =
  /** `unreadable`: files given that cannot be shown at all (no readable header), with the reason. */
  | { t: 'hello'; mode: 'replay' | 'live'; episodes: EpisodeSummary[]; unreadable?: Array<{ name: string; reason: string }> }
  /** The run being shown (sent after 'hello' when the viewer shows a run folder). */
  | { t: 'run'; run: RunSummary }
  /** Metric rows appended to the run's metrics.jsonl since the last message. */
  | { t: 'metrics'; rows: MetricRow[] }
  /** A live episode began, or a new eval episode appeared in the run being shown. */
  | { t: 'episode'; episode: EpisodeSummary }
  /** Steps `from`.. of an episode (replies to 'load', in chunks). */
  | { t: 'steps'; episode: number; from: number; steps: ViewStep[]; total: number }
  /** Camera images of one step (reply to 'images', or pushed with live steps). */
  | { t: 'images'; episode: number; step: number; images: Record<string, ViewImage> }
  /** A live step; `dropped` counts frames this client missed because it was slow. */
  | { t: 'live'; episode: number; step: ViewStep; images?: Record<string, ViewImage>; dropped: number }
  | { t: 'error'; message: string };

export type ClientMessage =
  | { t: 'load'; episode: number }
  | { t: 'images'; episode: number; step: number }
  /** Which image the page shows (replies and live frames carry that one; default rgb). */
  | { t: 'channel'; channel: ImageChannel };

/** The step fields the browser needs, without the heavy ones. */
export function toViewStep(s: StepRecord): ViewStep {
  const { images: _images, action: _action, proprio: _proprio, ...rest } = s;
  return rest;
}

/**
 * One channel of a step's camera frames (the others stay on the server); RGB for a camera that
 * did not record the channel asked for.
 */
export function toViewImages(s: StepRecord, channel: ImageChannel = 'rgb'): Record<string, ViewImage> | undefined {
  if (!s.images) return undefined;
  const out: Record<string, ViewImage> = {};
  for (const [name, f] of Object.entries(s.images)) {
    const img: ViewImage = { width: f.width, height: f.height };
    if (channel === 'depth' && f.depth) img.depth = f.depth;
    else if (channel === 'segmentation' && f.segmentation) img.segmentation = f.segmentation;
    else img.rgb = f.rgb;
    out[name] = img;
  }
  return out;
}

/** Validates a decoded client message; returns null for anything else. */
export function parseClientMessage(msg: unknown): ClientMessage | null {
  if (!msg || typeof msg !== 'object') return null;
  const m = msg as Record<string, unknown>;
  const int = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
  if (m.t === 'load' && int(m.episode)) return { t: 'load', episode: m.episode };
  if (m.t === 'images' && int(m.episode) && int(m.step)) return { t: 'images', episode: m.episode, step: m.step };
  if (m.t === 'channel' && IMAGE_CHANNELS.includes(m.channel as ImageChannel)) return { t: 'channel', channel: m.channel as ImageChannel };
  return null;
}
