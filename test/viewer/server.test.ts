/**
 * Viewer server hardening: token checked in the upgrade (401), Origin checked (403), small
 * maxPayload, live frames dropped for a client that does not read (bounded buffer), heartbeat ends
 * silent clients, 127.0.0.1 by default; and the replay protocol answers load/images requests.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import type { EpisodeHeader, StepRecord } from '../../sim/record/types.ts';
import type { ViewerEpisode } from '../../viewer/episodes.ts';
import { viewerPackr, type ServerMessage } from '../../viewer/protocol.ts';
import { startViewerServer, type ViewerServer } from '../../viewer/server.ts';

const header: EpisodeHeader = {
  format: 'evovla.episode', version: 1, task: 'synthetic', instruction: 'do nothing', robot: 'airbot_play', seed: 0,
  controlHz: 60, physicsHz: 240, actionMode: 'joint', configHash: '0', stages: ['a', 'b'], cameras: ['cam'], meta: {},
};

function step(i: number, imageBytes = 12): StepRecord {
  const side = Math.sqrt(imageBytes / 3);
  return {
    step: i + 1, time: (i + 1) / 60, action: new Float32Array(7), proprio: new Float32Array(7),
    links: {}, ee: { p: [0, 0, 0.5], q: [0, 0, 0, 1] }, objects: { block: { p: [i * 0.01, 0, 0.02], q: [0, 0, 0, 1] } },
    predicates: {}, stage: i < 5 ? 0 : 1, rewardTerms: { stageProgress: i === 5 ? 1 : 0 }, reward: i === 5 ? 0.1 : 0,
    terminated: false, truncated: false,
    images: { cam: { width: side, height: side, rgb: new Uint8Array(imageBytes).fill(i), depth: new Float32Array(side * side) } },
  };
}

const episode: ViewerEpisode = {
  name: 'synthetic.evep', header, scene: null, steps: Array.from({ length: 1200 }, (_, i) => step(i)), footer: null, damage: null, notes: [],
};

function wsUrl(s: ViewerServer, token = s.token): string {
  return `ws://127.0.0.1:${s.port}/ws?token=${token}`;
}

/** Resolves with the HTTP status of a refused upgrade, or 101 when it opened. */
function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
    });
    ws.on('open', () => {
      resolve(101);
      ws.close();
    });
    ws.on('error', (e) => {
      if (!/Unexpected server response/.test(e.message)) reject(e);
    });
  });
}

function collect(ws: WebSocket): ServerMessage[] {
  const got: ServerMessage[] = [];
  ws.on('message', (d) => got.push(viewerPackr.unpack(d as Buffer) as ServerMessage));
  return got;
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('viewer server (replay)', () => {
  let server: ViewerServer;
  before(async () => {
    server = await startViewerServer({ episodes: [episode] });
  });
  after(() => server.close());

  it('binds 127.0.0.1 and prints a URL with a long random token', () => {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{48}$/);
  });

  it('serves the page and the bundled app without fetching anything elsewhere', async () => {
    const page = await fetch(`http://127.0.0.1:${server.port}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.equal(page.headers.get('referrer-policy'), 'no-referrer');
    const html = await page.text();
    assert.doesNotMatch(html, /https?:\/\//, 'page must not load from other hosts');
    const js = await (await fetch(`http://127.0.0.1:${server.port}/bundle.js`)).text();
    assert.ok(js.length > 100_000, 'bundle should contain three.js');
    assert.doesNotMatch(js, /import\s*["']https?:/);
    assert.equal((await fetch(`http://127.0.0.1:${server.port}/etc/passwd`)).status, 404);
    assert.equal((await fetch(`http://127.0.0.1:${server.port}/`, { method: 'POST' })).status, 405);
  });

  it('answers a wrong or missing token with 401 in the upgrade', async () => {
    assert.equal(await upgradeStatus(wsUrl(server, 'f'.repeat(48))), 401);
    assert.equal(await upgradeStatus(`ws://127.0.0.1:${server.port}/ws`), 401);
    assert.equal(await upgradeStatus(wsUrl(server, server.token.slice(0, -1))), 401);
    assert.equal(await upgradeStatus(wsUrl(server)), 101);
  });

  it('refuses a browser page from another origin with 403', async () => {
    assert.equal(await upgradeStatus(wsUrl(server), { Origin: 'http://evil.example' }), 403);
    assert.equal(await upgradeStatus(wsUrl(server), { Origin: `http://127.0.0.1:${server.port + 1}` }), 403);
    assert.equal(await upgradeStatus(wsUrl(server), { Origin: `http://localhost:${server.port}` }), 101);
  });

  it('sends hello, all steps in chunks on load, and one step\'s RGB on request', async () => {
    const ws = new WebSocket(wsUrl(server));
    const got = collect(ws);
    await once(ws, 'open');
    await until(() => got.length > 0, 'hello');
    const hello = got[0];
    assert.equal(hello.t, 'hello');
    if (hello.t !== 'hello') return;
    assert.equal(hello.mode, 'replay');
    assert.equal(hello.episodes[0].steps, 1200);
    ws.send(viewerPackr.pack({ t: 'load', episode: 0 }));
    await until(() => got.filter((m) => m.t === 'steps').length === 3, 'three chunks of steps');
    const steps = got.flatMap((m) => (m.t === 'steps' ? m.steps : []));
    assert.equal(steps.length, 1200);
    assert.equal(steps[7].step, 8);
    assert.ok(!('images' in steps[7]) && !('action' in steps[7]), 'steps travel without images and actions');
    ws.send(viewerPackr.pack({ t: 'images', episode: 0, step: 42 }));
    await until(() => got.some((m) => m.t === 'images'), 'images');
    const img = got.find((m) => m.t === 'images');
    assert.ok(img && img.t === 'images');
    assert.ok(img.images.cam.rgb instanceof Uint8Array);
    assert.deepEqual([...img.images.cam.rgb], new Array(12).fill(42));
    // Another channel on request: depth, as float32.
    ws.send(viewerPackr.pack({ t: 'channel', channel: 'depth' }));
    ws.send(viewerPackr.pack({ t: 'images', episode: 0, step: 43 }));
    await until(() => got.filter((m) => m.t === 'images').length === 2, 'depth images');
    const dimg = got.filter((m) => m.t === 'images')[1];
    assert.ok(dimg.t === 'images' && dimg.images.cam.depth instanceof Float32Array && dimg.images.cam.rgb === undefined);
    ws.send(viewerPackr.pack({ t: 'load', episode: 9 }));
    await until(() => got.some((m) => m.t === 'error'), 'error for a missing episode');
    ws.close();
  });

  it('closes a connection that sends more than maxPayload', async () => {
    const ws = new WebSocket(wsUrl(server));
    await once(ws, 'open');
    ws.send(Buffer.alloc(64 * 1024));
    const [code] = (await once(ws, 'close')) as [number];
    assert.equal(code, 1009);
  });
});

describe('viewer server (live)', () => {
  it('drops frames for a client that does not read instead of queueing them', async () => {
    const server = await startViewerServer({ live: true, maxBufferedBytes: 256 * 1024 });
    try {
      const ws = new WebSocket(wsUrl(server));
      await once(ws, 'open');
      await until(() => server.stats().clients === 1, 'client registered');
      // Stop reading: the kernel buffers fill, then the server's send buffer.
      (ws as unknown as { _socket: { pause(): void } })._socket.pause();
      const id = server.publishEpisode(header, null);
      const frameBytes = 64 * 64 * 3 * 16;
      for (let i = 0; i < 400; i++) server.publishStep(id, step(i, frameBytes));
      const { dropped } = server.stats();
      assert.ok(dropped > 0, 'a client that reads nothing must lose frames');
      // What was queued is bounded by the limit plus the frames that fit in the socket buffers.
      assert.ok(400 - dropped < 200, `queued ${400 - dropped} of 400 frames of ${frameBytes} bytes`);
      ws.terminate();
    } finally {
      await server.close();
    }
  });

  it('streams live steps to a reading client and tells late clients the episode', async () => {
    const server = await startViewerServer({ live: true });
    try {
      const id = server.publishEpisode(header, null, 'run-1');
      server.publishStep(id, step(0));
      const ws = new WebSocket(wsUrl(server));
      const got = collect(ws);
      await once(ws, 'open');
      await until(() => got.length > 0, 'hello');
      assert.ok(got[0].t === 'hello' && got[0].mode === 'live' && got[0].episodes[0].name === 'run-1');
      server.publishStep(id, step(1));
      await until(() => got.some((m) => m.t === 'live'), 'a live step');
      const live = got.find((m) => m.t === 'live');
      assert.ok(live && live.t === 'live' && live.step.step === 2 && live.images?.cam.rgb?.length === 12 && live.dropped === 0);
      // The history (without images) is there for a late load.
      ws.send(viewerPackr.pack({ t: 'load', episode: id }));
      await until(() => got.some((m) => m.t === 'steps'), 'history');
      const hist = got.find((m) => m.t === 'steps');
      assert.ok(hist && hist.t === 'steps' && hist.steps.length === 2);
      ws.close();
    } finally {
      await server.close();
    }
  });

  it('ends a connection that stops answering pings', async () => {
    const server = await startViewerServer({ live: true, heartbeatMs: 50 });
    try {
      const ws = new WebSocket(wsUrl(server), { autoPong: false });
      await once(ws, 'open');
      await once(ws, 'close');
      await until(() => server.stats().clients === 0, 'client removed');
    } finally {
      await server.close();
    }
  });
});
