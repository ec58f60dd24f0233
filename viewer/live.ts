/**
 * Live viewing of a running process (`evovla demos --view`, later training): start a viewer,
 * print its URL, publish each episode's header and scene and then its steps. Frames reach slow
 * browsers only as fast as they read; the rest are dropped, never queued.
 */
import type { EpisodeHeader, StepRecord } from '../sim/record/types.ts';
import { mirrorDescOf } from '../sim/render/env_cameras.ts';
import type { SceneDesc } from '../sim/types.ts';
import { startViewerServer, type ViewerServerOptions } from './server.ts';

/** What a running process publishes: an episode start, then its steps. */
export type LiveFrame = { kind: 'episode'; header: EpisodeHeader; scene: SceneDesc | null; name?: string } | { kind: 'step'; step: StepRecord };

export interface LiveViewer {
  /** Page URL with the access token. */
  readonly url: string;
  publish(frame: LiveFrame): void;
  stats(): { clients: number; dropped: number; refused: number };
  close(): Promise<void>;
}

/** Starts a viewer server in live mode (127.0.0.1, random port and token unless given). */
export async function startLiveViewer(options: Omit<ViewerServerOptions, 'live' | 'episodes'> = {}): Promise<LiveViewer> {
  const server = await startViewerServer({ ...options, live: true });
  let episode = -1;
  return {
    url: server.url,
    publish(frame) {
      if (frame.kind === 'episode') {
        episode = server.publishEpisode(frame.header, frame.scene ? mirrorDescOf(frame.scene) : null, frame.name);
      } else {
        if (episode < 0) throw new Error("live viewer: publish {kind: 'episode'} before its steps");
        server.publishStep(episode, frame.step);
      }
    },
    stats: () => server.stats(),
    close: () => server.close(),
  };
}
