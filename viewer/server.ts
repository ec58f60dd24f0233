/**
 * The viewer's HTTP + WebSocket server: serves the browser app and streams episodes to it, from
 * files (replay) or from a running process (live).
 *
 * Hardening (docs/viewer.md, "Server hardening"): binds 127.0.0.1 unless told otherwise; a random token in
 * the page URL, checked in the HTTP upgrade (401 and the socket closed otherwise); the Origin of a
 * browser must be this server's own; small maxPayload (clients send only small requests); live
 * frames are dropped for a client whose send buffer is full, never queued without bound; ping/pong
 * heartbeat ends dead connections. The page is sent with no-referrer so the token does not leak.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { EpisodeHeader, StepRecord } from '../sim/record/types.ts';
import type { MirrorDesc } from '../sim/render/scene.ts';
import { buildViewerBundle } from './bundle.ts';
import { viewerStepCount, viewerSteps, type UnreadableEpisode, type ViewerEpisode } from './episodes.ts';
import { INDEX_HTML } from './page.ts';
import type { RunWatcher } from './runs.ts';
import {
  parseClientMessage,
  toViewImages,
  toViewStep,
  viewerPackr,
  type EpisodeSummary,
  type ImageChannel,
  type ServerMessage,
} from './protocol.ts';

export interface ViewerServerOptions {
  /** Interface to bind (default 127.0.0.1). */
  host?: string;
  /** Port (default 0: any free port). */
  port?: number;
  /** Episodes to replay. */
  episodes?: ViewerEpisode[];
  /** Live mode: episodes arrive through publishEpisode/publishStep. */
  live?: boolean;
  /** Access token (default: 24 random bytes, hex). */
  token?: string;
  /** Heartbeat period in ms (default 15000): a client silent for two periods is dropped. */
  heartbeatMs?: number;
  /** A client's send buffer above this drops live frames for it (default 1 MiB). */
  maxBufferedBytes?: number;
  /** Largest message a client may send (default 16 KiB). */
  maxPayload?: number;
  /** Live mode: steps kept per episode for clients that connect late (default 20000). */
  liveHistory?: number;
  /** A training run to show (curves, config; its eval episodes are added to `episodes`). */
  run?: RunWatcher;
  /** How often a run folder is checked for new metrics and eval episodes, ms (default 1000). */
  runPollMs?: number;
  /** Where to report connections and refusals (default: nothing). */
  log?: (line: string) => void;
  /** Files that could not be opened at all, listed to the page. */
  unreadable?: UnreadableEpisode[];
  /**
   * Decoded steps with images kept for replay (bytes, default 64 MiB): scrubbing back needs no
   * re-read, and memory stays bounded however many episodes are open.
   */
  stepCacheBytes?: number;
}

export interface ViewerServer {
  /** The page URL with the token, to print for the user. */
  readonly url: string;
  readonly port: number;
  readonly token: string;
  /** Live: starts an episode; returns its id. */
  publishEpisode(header: EpisodeHeader, scene: MirrorDesc | null, name?: string): number;
  /** Live: one step of the current episode (images included are sent as RGB). */
  publishStep(episode: number, step: StepRecord): void;
  /** Counters for tests and logs. */
  stats(): { clients: number; dropped: number; refused: number; cachedSteps: number; cachedBytes: number };
  close(): Promise<void>;
}

/** Replies (steps, images) may use more buffer than live frames before a client is cut off. */
const REPLY_BUFFER_FACTOR = 16;
const STEPS_PER_MESSAGE = 500;
/** Steps in the first message for a file: enough to draw the first frame, read at once. */
const FIRST_CHUNK_STEPS = 32;
/** Bytes read from a file per message of steps (a long camera episode is read in slices). */
const FILE_CHUNK_BYTES = 4 * 1024 * 1024;
const LIVE_EPISODES_KEPT = 8;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

interface Client {
  ws: WebSocket;
  alive: boolean;
  dropped: number;
  channel: ImageChannel;
  /** Number of the client's latest 'load' (an older one still streaming stops). */
  loadSeq: number;
}

function summaryOf(id: number, ep: ViewerEpisode): EpisodeSummary {
  const s: EpisodeSummary = { id, name: ep.name, header: ep.header, scene: ep.scene, steps: viewerStepCount(ep), footer: ep.footer, damage: ep.damage, notes: ep.notes };
  if (ep.partial) s.partial = true;
  return s;
}

/** Approximate memory of a decoded step: its typed arrays (images dominate) plus a fixed part. */
function stepBytes(step: StepRecord): number {
  let n = 2048;
  for (const f of Object.values(step.images ?? {})) n += f.rgb.byteLength + (f.depth?.byteLength ?? 0) + (f.segmentation?.byteLength ?? 0);
  return n;
}

/** Least-recently-used decoded steps, bounded in bytes (a Map keeps insertion order). */
class StepCache {
  private readonly map = new Map<string, { step: StepRecord; bytes: number }>();
  bytes = 0;
  constructor(private readonly budget: number) {}

  get(key: string): StepRecord | undefined {
    const hit = this.map.get(key);
    if (!hit) return undefined;
    this.map.delete(key);
    this.map.set(key, hit);
    return hit.step;
  }

  put(key: string, step: StepRecord): void {
    const bytes = stepBytes(step);
    if (bytes > this.budget) return;
    this.map.set(key, { step, bytes });
    this.bytes += bytes;
    for (const [k, v] of this.map) {
      if (this.bytes <= this.budget) break;
      this.map.delete(k);
      this.bytes -= v.bytes;
    }
  }

  get size(): number {
    return this.map.size;
  }
}

function tokenMatches(given: string | null, token: string): boolean {
  if (given === null) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function refuse(socket: Duplex, status: 401 | 403 | 404, reason: string): void {
  const text = `${reason}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
  );
  socket.destroy();
}

/** Starts the server; resolves once it listens. The browser bundle is built (or reused) first. */
export async function startViewerServer(options: ViewerServerOptions = {}): Promise<ViewerServer> {
  const host = options.host ?? '127.0.0.1';
  const token = options.token ?? randomBytes(24).toString('hex');
  if (!/^[A-Za-z0-9_-]{16,}$/.test(token)) throw new RangeError('viewer token must be at least 16 characters of [A-Za-z0-9_-]');
  const maxBuffered = options.maxBufferedBytes ?? 1 << 20;
  const log = options.log ?? (() => {});
  const episodes: ViewerEpisode[] = [...(options.episodes ?? [])];
  const mode = options.live ? 'live' : 'replay';
  const liveHistory = options.liveHistory ?? 20_000;
  const bundle = await buildViewerBundle();
  const cache = new StepCache(options.stepCacheBytes ?? 64 * 1024 * 1024);
  const unreadable = (options.unreadable ?? []).map((u) => ({ name: u.file, reason: u.reason }));
  const clients = new Set<Client>();
  let dropped = 0;
  let refused = 0;
  let port = 0;

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const headers = {
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { ...headers, Allow: 'GET, HEAD' }).end();
      return;
    }
    if (url.pathname === '/' || url.pathname === '/index.html') {
      res.writeHead(200, {
        ...headers,
        'Content-Type': 'text/html; charset=utf-8',
        // Scripts only from this server; the socket only back to it.
        'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'",
      });
      res.end(req.method === 'HEAD' ? undefined : INDEX_HTML);
    } else if (url.pathname === '/bundle.js') {
      res.writeHead(200, { ...headers, 'Content-Type': 'text/javascript; charset=utf-8' });
      res.end(req.method === 'HEAD' ? undefined : bundle);
    } else {
      res.writeHead(404, { ...headers, 'Content-Type': 'text/plain' }).end('not found\n');
    }
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: options.maxPayload ?? 16 * 1024, perMessageDeflate: false });

  const allowedOrigins = (): Set<string> =>
    new Set([host, '127.0.0.1', 'localhost', '[::1]'].map((h) => `http://${h.includes(':') && !h.startsWith('[') ? `[${h}]` : h}:${port}`));

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname !== '/ws') {
      refused++;
      refuse(socket, 404, 'no such socket');
      return;
    }
    if (!tokenMatches(url.searchParams.get('token'), token)) {
      refused++;
      log(`viewer: refused a connection with a wrong or missing token from ${req.socket.remoteAddress}`);
      refuse(socket, 401, 'wrong or missing token');
      return;
    }
    // Browsers always send Origin; a page from another site must not drive this socket.
    const origin = req.headers.origin;
    const allowed = allowedOrigins();
    // Bound to a network interface, the page is reached by this machine's name: its own origin
    // (the Host it asked for) is fine. On loopback only loopback origins are (no DNS rebinding).
    if (!LOOPBACK.has(host) && req.headers.host) allowed.add(`http://${req.headers.host}`);
    if (origin !== undefined && !allowed.has(origin)) {
      refused++;
      log(`viewer: refused a connection from origin ${origin}`);
      refuse(socket, 403, 'origin not allowed');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws));
  });

  function send(client: Client, msg: ServerMessage, droppable: boolean): boolean {
    const limit = droppable ? maxBuffered : maxBuffered * REPLY_BUFFER_FACTOR;
    if (client.ws.readyState !== client.ws.OPEN) return false;
    if (client.ws.bufferedAmount > limit) {
      if (droppable) {
        client.dropped++;
        dropped++;
        return false;
      }
      // A client that requests replies and never reads them is cut off rather than buffered for.
      log('viewer: closing a client that does not read its replies');
      client.ws.terminate();
      return false;
    }
    client.ws.send(viewerPackr.pack(msg));
    return true;
  }

  function onConnection(ws: WebSocket): void {
    const client: Client = { ws, alive: true, dropped: 0, channel: 'rgb', loadSeq: 0 };
    clients.add(client);
    log(`viewer: client connected (${clients.size} now)`);
    ws.on('pong', () => {
      client.alive = true;
    });
    ws.on('close', () => clients.delete(client));
    ws.on('error', (err) => log(`viewer: socket error: ${err.message}`));
    ws.on('message', (data, isBinary) => {
      let msg;
      try {
        msg = parseClientMessage(isBinary ? viewerPackr.unpack(data as Buffer) : null);
      } catch {
        msg = null;
      }
      if (!msg) {
        send(client, { t: 'error', message: 'unrecognised request (expected msgpack {t: "load"|"images"|"channel", ...})' }, false);
        return;
      }
      if (msg.t === 'channel') {
        client.channel = msg.channel;
        return;
      }
      const ep = episodes[msg.episode];
      if (!ep) {
        send(client, { t: 'error', message: `no episode ${msg.episode} (have ${episodes.length})` }, false);
        return;
      }
      // Files are read here, per request: a file deleted or changed since it was opened is an
      // error for this request (said to the page), not for the server.
      try {
        if (msg.t === 'load') {
          void streamSteps(client, msg.episode, ep).catch((err: unknown) => readFailed(client, ep, err));
        } else {
          const step = imageStep(msg.episode, ep, msg.step);
          const images = step ? toViewImages(step, client.channel) : undefined;
          send(client, { t: 'images', episode: msg.episode, step: msg.step, images: images ?? {} }, false);
        }
      } catch (err) {
        readFailed(client, ep, err);
      }
    });
    const hello: ServerMessage = { t: 'hello', mode, episodes: episodes.map((e, i) => summaryOf(i, e)) };
    if (unreadable.length) hello.unreadable = unreadable;
    send(client, hello, false);
    if (options.run) send(client, { t: 'run', run: options.run.summary() }, false);
  }

  /** A file that cannot be read now (deleted, changed, I/O error): said to the page and logged. */
  function readFailed(client: Client, ep: ViewerEpisode, err: unknown): void {
    const e = err as NodeJS.ErrnoException;
    if (!(err instanceof Error) || (e.code === undefined && e.name !== 'EpisodeReadError')) throw err;
    log(`viewer: cannot read ${ep.name}: ${e.message}`);
    send(client, { t: 'error', message: `cannot read ${ep.name}: ${e.message}` }, false);
  }

  /**
   * Send every step of an episode (without images) in chunks. From a file: a small first chunk, so
   * the page draws the first frame at once, then chunks of at most FILE_CHUNK_BYTES read from disk,
   * giving the event loop a turn between them so image requests are answered in the meantime.
   * A newer 'load' from the same client stops an older one.
   */
  async function streamSteps(client: Client, id: number, ep: ViewerEpisode): Promise<void> {
    const seq = ++client.loadSeq;
    const total = viewerStepCount(ep);
    if (total === 0) send(client, { t: 'steps', episode: id, from: 0, steps: [], total }, false);
    for (let from = 0; from < total; ) {
      let to = Math.min(total, from + STEPS_PER_MESSAGE);
      if (ep.index) {
        const { stepOffsets, stepLengths } = ep.index;
        to = Math.min(to, from + (from === 0 ? FIRST_CHUNK_STEPS : STEPS_PER_MESSAGE));
        while (to > from + 1 && stepOffsets[to - 1] + stepLengths[to - 1] - stepOffsets[from] > FILE_CHUNK_BYTES) to--;
      }
      const steps = viewerSteps(ep, from, to, { images: false }).map(toViewStep);
      if (!send(client, { t: 'steps', episode: id, from, steps, total }, false)) return;
      from = to;
      if (ep.index && from < total) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (client.loadSeq !== seq || client.ws.readyState !== client.ws.OPEN) return;
      }
    }
  }

  /** One step with its images: live steps from memory, file steps through the bounded cache. */
  function imageStep(id: number, ep: ViewerEpisode, i: number): StepRecord | undefined {
    if (!ep.index) return ep.steps[i];
    const key = `${id}:${i}`;
    let step = cache.get(key);
    if (!step) {
      step = viewerSteps(ep, i, i + 1, { images: true })[0];
      if (step) cache.put(key, step);
    }
    return step;
  }

  // A run folder is followed while training writes it: new metric lines and new eval episodes.
  const runPoll = options.run
    ? setInterval(() => {
        const run = options.run as RunWatcher;
        let update: ReturnType<RunWatcher['poll']>;
        try {
          update = run.poll();
        } catch (err) {
          log(`viewer: cannot read run ${run.dir}: ${(err as Error).message}`);
          return;
        }
        if (update.rows.length) for (const c of clients) send(c, { t: 'metrics', rows: update.rows }, false);
        for (const ep of update.episodes) {
          episodes.push(ep);
          const summary = summaryOf(episodes.length - 1, ep);
          for (const c of clients) send(c, { t: 'episode', episode: summary }, false);
        }
      }, options.runPollMs ?? 1000)
    : null;
  runPoll?.unref();

  const heartbeat = setInterval(() => {
    for (const c of clients) {
      if (!c.alive) {
        log('viewer: dropping a client that missed a heartbeat');
        c.ws.terminate();
        clients.delete(c);
        continue;
      }
      c.alive = false;
      c.ws.ping();
    }
  }, options.heartbeatMs ?? 15_000);
  heartbeat.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const url = `http://${urlHost}:${port}/?token=${token}`;

  return {
    url,
    port,
    token,
    publishEpisode(header, scene, name) {
      const id = episodes.length;
      episodes.push({ name: name ?? `${header.task}-${header.seed}`, header, scene, steps: [], footer: null, damage: null, notes: ['live'] });
      // Keep memory bounded in long runs: episodes older than the last few lose their steps.
      const old = episodes[id - LIVE_EPISODES_KEPT];
      if (old && old.steps.length > 0) {
        old.steps = [];
        old.notes.push('steps dropped from memory (live history keeps the last episodes only)');
      }
      const summary = summaryOf(id, episodes[id]);
      for (const c of clients) send(c, { t: 'episode', episode: summary }, false);
      return id;
    },
    publishStep(episode, step) {
      const ep = episodes[episode];
      if (!ep) throw new RangeError(`publishStep: no episode ${episode} (publish one with publishEpisode first)`);
      // History without images: late clients get poses and plots, live clients get the pictures.
      if (ep.steps.length < liveHistory) ep.steps.push({ ...step, images: undefined });
      const view = toViewStep(step);
      const byChannel = new Map<ImageChannel, ReturnType<typeof toViewImages>>();
      for (const c of clients) {
        const msg: ServerMessage = { t: 'live', episode, step: view, dropped: c.dropped };
        if (!byChannel.has(c.channel)) byChannel.set(c.channel, toViewImages(step, c.channel));
        const images = byChannel.get(c.channel);
        if (images) msg.images = images;
        send(c, msg, true);
      }
    },
    stats: () => ({ clients: clients.size, dropped, refused, cachedSteps: cache.size, cachedBytes: cache.bytes }),
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(heartbeat);
        if (runPoll) clearInterval(runPoll);
        for (const c of clients) c.ws.terminate();
        clients.clear();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Resolves on the first SIGINT or SIGTERM (Ctrl+C), so a served page stays up until then. */
export function waitForInterrupt(): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}
