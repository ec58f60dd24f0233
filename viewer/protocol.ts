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

/** An RGB image as sent to the browser. */
export interface ViewImage {
  width: number;
  height: number;
  rgb: Uint8Array;
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
  /** Notes for the person watching (e.g. how the scene was reconstructed). */
  notes: string[];
}

export type ServerMessage =
  | { t: 'hello'; mode: 'replay' | 'live'; episodes: EpisodeSummary[] }
  /** A live episode began. */
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
  | { t: 'images'; episode: number; step: number };

/** The step fields the browser needs, without the heavy ones. */
export function toViewStep(s: StepRecord): ViewStep {
  const { images: _images, action: _action, proprio: _proprio, ...rest } = s;
  return rest;
}

/** RGB parts of a step's camera frames (depth and segmentation stay on the server). */
export function toViewImages(s: StepRecord): Record<string, ViewImage> | undefined {
  if (!s.images) return undefined;
  const out: Record<string, ViewImage> = {};
  for (const [name, f] of Object.entries(s.images)) out[name] = { width: f.width, height: f.height, rgb: f.rgb };
  return out;
}

/** Validates a decoded client message; returns null for anything else. */
export function parseClientMessage(msg: unknown): ClientMessage | null {
  if (!msg || typeof msg !== 'object') return null;
  const m = msg as Record<string, unknown>;
  const int = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
  if (m.t === 'load' && int(m.episode)) return { t: 'load', episode: m.episode };
  if (m.t === 'images' && int(m.episode) && int(m.step)) return { t: 'images', episode: m.episode, step: m.step };
  return null;
}
