/**
 * Viewer memory and first-frame latency with many camera episodes open. Writes one synthetic
 * camera episode (two 128x128 cameras, RGB + depth, flat-shaded images with sparse dithering so
 * they compress about as rendered ones do) and copies it to N files, then:
 *   rss_mb.*             resident memory before opening, after opening 5 and N episodes, and
 *                        after first frames of several episodes (the step cache is bounded)
 *   open_s               time to index the N files (one pass over every byte: CRC checks)
 *   first_frame_ms       request -> reply for the first chunk of steps plus step 0's images of an
 *                        episode, over the WebSocket, for several episodes (first, median, max);
 *                        first_frame_cpu_ms is the CPU time spent on it (wall minus waiting for a
 *                        CPU on a shared machine)
 *   anchor_decoded_mb_per_episode  what one episode takes fully decoded in memory (the old way,
 *                        measured here on the same file): the figure the index avoids paying N times
 * Usage: npm run bench:viewer [-- --episodes 50 --steps 600]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import WebSocket from 'ws';
import { readEpisode } from '../sim/record/reader.ts';
import { EPISODE_FORMAT_VERSION, type EpisodeHeader, type StepRecord } from '../sim/record/types.ts';
import { EpisodeWriter } from '../sim/record/writer.ts';
import { Rng } from '../sim/rng.ts';
import { expandEpisodePaths, openEpisodeFiles } from '../viewer/episodes.ts';
import { viewerPackr, type ServerMessage } from '../viewer/protocol.ts';
import { startViewerServer } from '../viewer/server.ts';
import { intFlag } from './args.ts';

const EPISODES = intFlag('episodes', 50);
const STEPS = intFlag('steps', 600);
const SIDE = 128;
const CAMERAS = ['eye_side', 'eye_arm'];

const header: EpisodeHeader = {
  format: 'evovla.episode', version: EPISODE_FORMAT_VERSION, task: 'synthetic', instruction: 'bench', robot: 'airbot_play', seed: 0,
  controlHz: 60, physicsHz: 240, actionMode: 'joint', configHash: '0', stages: ['a', 'b', 'c'], cameras: CAMERAS, meta: {},
};

function frame(rng: Rng, t: number) {
  const rgb = new Uint8Array(SIDE * SIDE * 3);
  const depth = new Float32Array(SIDE * SIDE);
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      const p = y * SIDE + x;
      // Flat-shaded surfaces with a little dithering, as the Lambert renderer draws them.
      const shade = 40 * Math.floor((3 * (1 + Math.sin((x + t) / 17) * Math.cos(y / 23))) ) + 60;
      const dither = rng.next() < 0.05 ? 1 : 0;
      for (let c = 0; c < 3; c++) rgb[p * 3 + c] = Math.min(255, shade + c * 20 + dither);
      depth[p] = 0.6 + 0.2 * (y / SIDE) + 0.01 * Math.sin((x + t) / 9);
    }
  }
  return { width: SIDE, height: SIDE, rgb, depth };
}

function step(rng: Rng, i: number): StepRecord {
  const links: StepRecord['links'] = {};
  for (let k = 0; k < 8; k++) links[`link${k}`] = { p: [k * 0.05, 0, 0.1 * k], q: [0, 0, 0, 1] };
  return {
    step: i + 1, time: (i + 1) / 60, action: new Float32Array(7), proprio: new Float32Array(7), links,
    ee: { p: [0.3, 0, 0.3], q: [0, 0, 0, 1] }, objects: { a: { p: [0.3, 0.1, 0.02], q: [0, 0, 0, 1] }, b: { p: [0.3, -0.1, 0.02], q: [0, 0, 0, 1] } },
    predicates: { a: i > 100, b: i > 200, c: false }, stage: i > 200 ? 2 : i > 100 ? 1 : 0, rewardTerms: { ext: 0, stage: 0 }, reward: 0,
    terminated: false, truncated: false,
    images: Object.fromEntries(CAMERAS.map((c, k) => [c, frame(rng, i + k * 50)])),
  };
}

const rssMb = () => Number((process.memoryUsage().rss / 2 ** 20).toFixed(1));
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evovla-bench-viewer-'));
try {
  const first = path.join(dir, 'ep-000.evep');
  const rng = new Rng(1);
  const w = EpisodeWriter.open(first, header);
  for (let i = 0; i < STEPS; i++) w.append(step(rng, i));
  w.close({ steps: STEPS, success: false, finalStateHash: '0', maxStage: 2 });
  for (let k = 1; k < EPISODES; k++) fs.copyFileSync(first, path.join(dir, `ep-${String(k).padStart(3, '0')}.evep`));
  const fileMb = fs.statSync(first).size / 2 ** 20;

  const files = expandEpisodePaths([dir]);
  const rssBefore = rssMb();
  const five = openEpisodeFiles(files.slice(0, 5));
  gc();
  const rss5 = rssMb();
  const t0 = performance.now();
  const all = openEpisodeFiles(files);
  const openS = (performance.now() - t0) / 1000;
  gc();
  const rssN = rssMb();
  void five;

  const server = await startViewerServer({ episodes: all.episodes });
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws?token=${server.token}`);
  const waiters: Array<(m: ServerMessage) => boolean> = [];
  ws.on('message', (d) => {
    const m = viewerPackr.unpack(d as Buffer) as ServerMessage;
    for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i](m)) waiters.splice(i, 1);
  });
  const next = (pred: (m: ServerMessage) => boolean) => new Promise<void>((resolve) => waiters.push((m) => (pred(m) ? (resolve(), true) : false)));
  await next((m) => m.t === 'hello');
  const latencies: number[] = [];
  const cpuMs: number[] = [];
  const probe = [EPISODES - 1, 0, Math.floor(EPISODES / 2), 7 % EPISODES, 31 % EPISODES, 13 % EPISODES, 44 % EPISODES];
  for (const ep of probe) {
    const t = performance.now();
    const cpu0 = process.cpuUsage();
    const steps = next((m) => m.t === 'steps' && m.episode === ep && m.from === 0);
    const images = next((m) => m.t === 'images' && m.episode === ep && m.step === 0);
    ws.send(viewerPackr.pack({ t: 'load', episode: ep }));
    ws.send(viewerPackr.pack({ t: 'images', episode: ep, step: 0 }));
    await Promise.all([steps, images]);
    latencies.push(performance.now() - t);
    const cpu = process.cpuUsage(cpu0);
    cpuMs.push((cpu.user + cpu.system) / 1000);
  }
  gc();
  const rssPlayed = rssMb();
  ws.close();
  await server.close();
  // Anchor, last so it does not inflate the figures above: one episode fully decoded, as the
  // viewer held every episode before it indexed them.
  gc();
  const rssAnchor0 = process.memoryUsage().rss;
  const decoded = readEpisode(first);
  const anchorMb = (process.memoryUsage().rss - rssAnchor0) / 2 ** 20;
  if (decoded.steps.length !== STEPS) throw new Error(`anchor read ${decoded.steps.length} steps, expected ${STEPS}`);
  const sorted = [...latencies].sort((a, b) => a - b);
  console.log(
    JSON.stringify({
      bench: 'viewer',
      episodes: EPISODES,
      stepsPerEpisode: STEPS,
      cameras: `${CAMERAS.length}x${SIDE}x${SIDE} rgb+depth`,
      fileMbPerEpisode: Number(fileMb.toFixed(2)),
      open_s: Number(openS.toFixed(2)),
      rss_mb: { before: rssBefore, open5: rss5, [`open${EPISODES}`]: rssN, afterFirstFrames: rssPlayed },
      first_frame_ms: { first: Number(latencies[0].toFixed(1)), median: Number(sorted[Math.floor(sorted.length / 2)].toFixed(1)), max: Number(sorted.at(-1)!.toFixed(1)) },
      // CPU time this process (server and client) spent on each first frame: the work itself;
      // the wall figure above it adds waiting for a CPU on a shared machine.
      first_frame_cpu_ms: { median: Number([...cpuMs].sort((a, b) => a - b)[Math.floor(cpuMs.length / 2)].toFixed(1)), max: Number(Math.max(...cpuMs).toFixed(1)) },
      anchor_decoded_mb_per_episode: Number(anchorMb.toFixed(1)),
      gcExposed: typeof (globalThis as { gc?: unknown }).gc === 'function',
      cores: os.availableParallelism(),
      loadAverage1m: Number(os.loadavg()[0].toFixed(2)),
    }),
  );
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
