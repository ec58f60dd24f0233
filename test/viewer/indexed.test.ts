/**
 * The viewer opens episode files by index: nothing decoded is held per episode, steps and images
 * are read on demand (the same content the full reader gives), decoded images live in a cache of
 * bounded size, a folder with broken files shows the good ones and lists the rest with their
 * damage, and `.partial` recordings are shown as partial.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import WebSocket from 'ws';
import { indexEpisodeFile } from '../../sim/record/indexed.ts';
import { readEpisode } from '../../sim/record/reader.ts';
import { EPISODE_FORMAT_VERSION, type EpisodeHeader, type StepRecord } from '../../sim/record/types.ts';
import { EpisodeWriter } from '../../sim/record/writer.ts';
import { expandEpisodePaths, loadEpisodeFile, openEpisodeFiles, viewerStepCount, viewerSteps } from '../../viewer/episodes.ts';
import { viewerPackr, type ServerMessage } from '../../viewer/protocol.ts';
import { startViewerServer } from '../../viewer/server.ts';
import { scratchDir } from '../tmp.ts';

const SIDE = 32;
const header: EpisodeHeader = {
  format: 'evovla.episode', version: EPISODE_FORMAT_VERSION, task: 'synthetic', instruction: 'do nothing', robot: 'airbot_play', seed: 0,
  controlHz: 60, physicsHz: 240, actionMode: 'joint', configHash: '0', stages: ['a', 'b'], cameras: ['cam'], meta: {},
};

function step(i: number): StepRecord {
  const rgb = new Uint8Array(SIDE * SIDE * 3);
  for (let k = 0; k < rgb.length; k++) rgb[k] = (k * 7 + i * 13) & 0xff;
  return {
    step: i + 1, time: (i + 1) / 60, action: new Float32Array(7).fill(i), proprio: new Float32Array(7),
    links: {}, ee: { p: [0, 0, 0.5], q: [0, 0, 0, 1] }, objects: { block: { p: [i * 0.01, 0, 0.02], q: [0, 0, 0, 1] } },
    predicates: { a: i > 3 }, stage: i < 5 ? 0 : 1, rewardTerms: { stage: i === 5 ? 1 : 0 }, reward: i === 5 ? 0.1 : 0,
    terminated: false, truncated: false,
    images: { cam: { width: SIDE, height: SIDE, rgb, depth: new Float32Array(SIDE * SIDE).fill(0.5 + i / 100) } },
  };
}

/** Write a synthetic camera episode; `close: false` leaves it as a .partial recording. */
function writeEpisode(file: string, steps: number, close = true): string {
  const w = EpisodeWriter.open(file, header);
  for (let i = 0; i < steps; i++) w.append(step(i));
  return close ? w.close({ steps, success: false, finalStateHash: 'x', maxStage: 1 }) : w.abandon();
}

describe('episode files opened by index', () => {
  it('hold no decoded steps, and read back exactly what the full reader reads', () => {
    const file = writeEpisode(path.join(scratchDir('evovla-idx-'), 'a.evep'), 40);
    const ep = loadEpisodeFile(file);
    assert.equal(ep.steps.length, 0, 'no steps held in memory');
    assert.equal(viewerStepCount(ep), 40);
    const full = readEpisode(file);
    assert.deepEqual(viewerSteps(ep, 0, 40, { images: true }), full.steps);
    const light = viewerSteps(ep, 10, 12, { images: false });
    assert.equal(light.length, 2);
    assert.equal(light[0].images, undefined);
    assert.deepEqual(light[0].objects, full.steps[10].objects);
    assert.deepEqual(viewerSteps(ep, 38, 100, { images: false }).map((s) => s.step), [39, 40]);
  });

  it('report the same damage as the full reader for truncated and corrupted files', () => {
    const dir = scratchDir('evovla-idx-');
    const good = fs.readFileSync(writeEpisode(path.join(dir, 'g.evep'), 12));
    const variants: Record<string, Buffer> = {
      empty: Buffer.alloc(0),
      preamble: good.subarray(0, 12),
      half: good.subarray(0, Math.floor(good.length / 2)),
      'no footer': good.subarray(0, good.length - 20),
      flipped: Buffer.from(good.map((b, i) => (i === Math.floor(good.length / 3) ? b ^ 0xff : b))),
      trailing: Buffer.concat([good, Buffer.from('xyz')]),
      junk: Buffer.from('not an episode at all'),
    };
    for (const [name, bytes] of Object.entries(variants)) {
      const f = path.join(dir, `${name}.evep`);
      fs.writeFileSync(f, bytes);
      const full = readEpisode(f);
      const idx = indexEpisodeFile(f);
      assert.deepEqual(idx.damage, full.damage, name);
      assert.equal(idx.stepOffsets.length, full.steps.length, name);
      assert.deepEqual(idx.header, full.header, name);
    }
  });

  it('a folder with an empty, a foreign and a partial file: good ones shown, bad ones listed with their damage', () => {
    const dir = scratchDir('evovla-idx-');
    writeEpisode(path.join(dir, 'a.evep'), 5);
    writeEpisode(path.join(dir, 'b.evep'), 8, false);
    fs.writeFileSync(path.join(dir, 'c.evep'), '');
    fs.writeFileSync(path.join(dir, 'd.evep'), 'hello');
    const files = expandEpisodePaths([dir]);
    assert.deepEqual(files.map((f) => path.basename(f)), ['a.evep', 'b.evep.partial', 'c.evep', 'd.evep']);
    const { episodes, unreadable } = openEpisodeFiles(files);
    assert.deepEqual(episodes.map((e) => e.name), ['a.evep', 'b.evep.partial']);
    const partial = episodes[1];
    assert.equal(partial.partial, true);
    assert.equal(viewerStepCount(partial), 8);
    assert.match(partial.damage ?? '', /no footer after 9 intact records/);
    assert.match(partial.notes[0], /partial recording/);
    assert.deepEqual(unreadable.map((u) => path.basename(u.file)), ['c.evep', 'd.evep']);
    assert.match(unreadable[0].reason, /file is 0 bytes, shorter than the 12-byte preamble/);
    assert.match(unreadable[1].reason, /not an evovla episode file/);
  });
});

describe('viewer server over indexed files', () => {
  it('lists unreadable files and partial ones, and keeps decoded steps within the cache budget', async () => {
    const dir = scratchDir('evovla-idx-');
    writeEpisode(path.join(dir, 'a.evep'), 60);
    writeEpisode(path.join(dir, 'b.evep'), 10, false);
    fs.writeFileSync(path.join(dir, 'c.evep'), '');
    const { episodes, unreadable } = openEpisodeFiles(expandEpisodePaths([dir]));
    // Room for about 10 decoded steps (each ~16 KiB of images here).
    const budget = 10 * (SIDE * SIDE * 3 + SIDE * SIDE * 4 + 2048);
    const server = await startViewerServer({ episodes, unreadable, stepCacheBytes: budget });
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws?token=${server.token}`);
    const got: ServerMessage[] = [];
    ws.on('message', (d) => got.push(viewerPackr.unpack(d as Buffer) as ServerMessage));
    try {
      await waitFor(() => got.some((m) => m.t === 'hello'));
      const hello = got.find((m) => m.t === 'hello');
      assert.ok(hello && hello.t === 'hello');
      assert.deepEqual(hello.episodes.map((e) => [e.name, e.steps, e.partial ?? false]), [['a.evep', 60, false], ['b.evep.partial', 10, true]]);
      assert.equal(hello.unreadable?.length, 1);
      assert.match(hello.unreadable?.[0].reason ?? '', /shorter than the 12-byte preamble/);
      ws.send(viewerPackr.pack({ t: 'load', episode: 0 }));
      for (let i = 0; i < 60; i++) ws.send(viewerPackr.pack({ t: 'images', episode: 0, step: i }));
      await waitFor(() => got.filter((m) => m.t === 'images').length === 60);
      await waitFor(() => got.flatMap((m) => (m.t === 'steps' ? m.steps : [])).length === 60);
      const steps = got.flatMap((m) => (m.t === 'steps' ? m.steps : []));
      assert.equal(steps.length, 60);
      // A small first chunk draws the first frame at once; image requests are answered while
      // the rest of the episode is still being read.
      const chunks = got.filter((m) => m.t === 'steps');
      assert.deepEqual(chunks.map((m) => (m.t === 'steps' ? [m.from, m.steps.length] : [])), [[0, 32], [32, 28]]);
      assert.ok(got.findIndex((m) => m.t === 'images') < got.lastIndexOf(chunks[1]), 'images waited for the whole episode');
      const img = got.find((m) => m.t === 'images' && m.step === 42);
      assert.ok(img && img.t === 'images');
      assert.deepEqual(img.images.cam.rgb, step(42).images?.cam.rgb);
      const stats = server.stats();
      assert.ok(stats.cachedBytes <= budget, `cache ${stats.cachedBytes} bytes over its ${budget} budget`);
      assert.ok(stats.cachedSteps > 0 && stats.cachedSteps <= 10, `${stats.cachedSteps} steps cached`);
    } finally {
      ws.close();
      await server.close();
    }
  });
});

async function waitFor(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(cond(), 'timed out');
}
