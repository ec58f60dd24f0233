import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { crc32, crc32Table } from '../../../sim/record/crc32.ts';
import { PREAMBLE_BYTES } from '../../../sim/record/format.ts';
import { decodeEpisode, readEpisode, readEpisodeHeader, requireIntact, EpisodeFormatError } from '../../../sim/record/reader.ts';
import { EPISODE_FORMAT_VERSION, type EpisodeHeader, type StepRecord } from '../../../sim/record/types.ts';
import { EpisodeWriter, partialPath } from '../../../sim/record/writer.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'evovla-episode-'));
after(() => fs.rmSync(root, { recursive: true, force: true }));
let dirCount = 0;
function tmpDir(): string {
  const dir = path.join(root, String(dirCount++));
  fs.mkdirSync(dir);
  return dir;
}

const header: EpisodeHeader = {
  format: 'evovla.episode',
  version: EPISODE_FORMAT_VERSION,
  task: 'stack',
  instruction: 'stack the blocks',
  robot: 'airbot_play',
  seed: 7,
  controlHz: 60,
  physicsHz: 240,
  actionMode: 'joint',
  configHash: 'abc123',
  stages: ['a', 'b'],
  cameras: [],
  meta: { writer: 'test' },
};

function step(i: number): StepRecord {
  return {
    step: i,
    time: i / 60,
    action: Float32Array.from([i, 0.1, 0.2, 0.3, 0.4, 0.5, 0.04]),
    proprio: Float32Array.from([0, 0, 0, 0, 0, 0, 0.04 - i * 0.001]),
    links: { link1: { p: [0, 0, i], q: [0, 0, 0, 1] } },
    ee: { p: [0.3, 0, 0.2], q: [0, 0, 0, 1] },
    objects: { block: { p: [0.3, 0.01 * i, 0.0145], q: [0, 0, 0, 1] } },
    predicates: { above: i > 2, grasped: false },
    stage: i > 2 ? 1 : 0,
    commandedStage: 0,
    rewardTerms: { stage: 0.1 * i },
    reward: 0,
    terminated: false,
    truncated: false,
    images: i === 1 ? { eye_side: { width: 2, height: 1, rgb: Uint8Array.from([1, 2, 3, 4, 5, 6]) } } : undefined,
  };
}

function writeEpisode(file: string, n: number): void {
  const w = EpisodeWriter.open(file, header);
  for (let i = 0; i < n; i++) w.append(step(i));
  w.close({ steps: n, success: true, finalStateHash: 'deadbeef', maxStage: 1 });
}

test('crc32: native and table-driven agree and match the reference check value', () => {
  const check = new TextEncoder().encode('123456789');
  assert.equal(crc32Table(check), 0xcbf43926);
  assert.equal(crc32(check), 0xcbf43926);
  const random = Uint8Array.from({ length: 1000 }, (_, i) => (i * 2654435761) >>> 24);
  assert.equal(crc32(random), crc32Table(random));
});

test('round trip: header, steps with typed arrays and images, footer; temp file renamed', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'ep.evep');
  const w = EpisodeWriter.open(file, header);
  assert.ok(fs.existsSync(partialPath(file)), 'writes to a temp file first');
  assert.ok(!fs.existsSync(file), 'final name appears only on close');
  for (let i = 0; i < 5; i++) w.append(step(i));
  w.close({ steps: 5, success: true, finalStateHash: 'deadbeef', maxStage: 1 });
  assert.ok(fs.existsSync(file));
  assert.ok(!fs.existsSync(partialPath(file)));

  const r = readEpisode(file);
  requireIntact(r, file);
  assert.deepEqual(r.header, header);
  assert.equal(r.steps.length, 5);
  assert.ok(r.steps[3].action instanceof Float32Array, 'typed arrays stay typed');
  assert.deepEqual(Array.from(r.steps[3].action), Array.from(step(3).action));
  assert.deepEqual(r.steps[3].predicates, { above: true, grasped: false });
  assert.ok(r.steps[1].images?.eye_side.rgb instanceof Uint8Array);
  assert.deepEqual(Array.from(r.steps[1].images!.eye_side.rgb), [1, 2, 3, 4, 5, 6]);
  assert.equal(r.footer.finalStateHash, 'deadbeef');
});

/** Byte offsets of each frame, found by walking the framing. */
function frameOffsets(buf: Buffer): number[] {
  const offs: number[] = [];
  let o = PREAMBLE_BYTES;
  while (o < buf.length) {
    offs.push(o);
    o += 8 + buf.readUInt32LE(o);
  }
  return offs;
}

test('truncated file: reports where it ends and yields the intact records before it', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'ep.evep');
  writeEpisode(file, 6);
  const full = fs.readFileSync(file);
  const offs = frameOffsets(full);
  // Cut in the middle of record 4 (header is record 0, so steps 0..2 are intact).
  const cut = offs[4] + 13;
  const r = decodeEpisode(full.subarray(0, cut));
  assert.ok(r.damage);
  assert.equal(r.damage.code, 'truncated');
  assert.equal(r.damage.offset, offs[4]);
  assert.equal(r.damage.recordIndex, 4);
  assert.match(r.damage.message, /ends inside record 4 at byte \d+/);
  assert.deepEqual(r.header, header);
  assert.equal(r.steps.length, 3);
  assert.deepEqual(r.steps.map((s) => s.step), [0, 1, 2]);
  assert.equal(r.footer, null);

  // A cut exactly between records is a recording that was never closed.
  const clean = decodeEpisode(full.subarray(0, offs[4]));
  assert.equal(clean.damage?.code, 'missing_footer');
  assert.equal(clean.steps.length, 3);
  assert.throws(() => requireIntact(clean, 'x.evep'), (e: unknown) => e instanceof EpisodeFormatError && /x\.evep: no footer after 4 intact records/.test(e.message));
});

test('flipped byte: CRC mismatch names the record and offset, prefix intact', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'ep.evep');
  writeEpisode(file, 6);
  const buf = Buffer.from(fs.readFileSync(file));
  const offs = frameOffsets(buf);
  buf[offs[3] + 20] ^= 0x40;
  const r = decodeEpisode(buf);
  assert.equal(r.damage?.code, 'crc_mismatch');
  assert.equal(r.damage?.recordIndex, 3);
  assert.equal(r.damage?.offset, offs[3]);
  assert.match(r.damage!.message, /record 3 at byte \d+ fails its CRC-32 check \(stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}\)/);
  assert.equal(r.steps.length, 2);
  assert.deepEqual(r.header, header);
});

test('flipped length byte: a huge declared length is reported, not allocated', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'ep.evep');
  writeEpisode(file, 3);
  const buf = Buffer.from(fs.readFileSync(file));
  const offs = frameOffsets(buf);
  buf[offs[2] + 3] ^= 0x80;
  const r = decodeEpisode(buf);
  assert.equal(r.damage?.code, 'bad_length');
  assert.equal(r.damage?.recordIndex, 2);
  assert.equal(r.steps.length, 1);
});

test('wrong version and bad magic: clear messages, nothing trusted', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'ep.evep');
  writeEpisode(file, 2);
  const buf = Buffer.from(fs.readFileSync(file));
  const v2 = Buffer.from(buf);
  v2.writeUInt32LE(EPISODE_FORMAT_VERSION + 1, 8);
  const r = decodeEpisode(v2);
  assert.equal(r.damage?.code, 'wrong_version');
  assert.equal(r.damage?.offset, 8);
  assert.match(r.damage!.message, new RegExp(`version ${EPISODE_FORMAT_VERSION + 1} is not supported \\(this build reads versions 1, ${EPISODE_FORMAT_VERSION}\\)`));
  assert.equal(r.header, null);
  assert.equal(r.steps.length, 0);

  const notOurs = Buffer.from(buf);
  notOurs.write('PK', 0);
  const m = decodeEpisode(notOurs);
  assert.equal(m.damage?.code, 'bad_magic');
  assert.match(m.damage!.message, /expected magic "EVOVLAEP", got 50 4b/);

  assert.equal(decodeEpisode(new Uint8Array(0)).damage?.code, 'truncated');
});

test('writer refuses a header of another version; discard removes the temp file', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'ep.evep');
  assert.throws(() => EpisodeWriter.open(file, { ...header, version: 99 }), new RegExp(`version must be ${EPISODE_FORMAT_VERSION}, got 99`));
  const w = EpisodeWriter.open(file, header);
  w.append(step(0));
  w.discard();
  assert.ok(!fs.existsSync(partialPath(file)));
  assert.ok(!fs.existsSync(file));
});

test('a crashed recording (no close) leaves a readable .partial file', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'ep.evep');
  const w = EpisodeWriter.open(file, header);
  for (let i = 0; i < 4; i++) w.append(step(i));
  // No close(): as if the process died here. Records already went to the OS.
  const r = readEpisode(partialPath(file));
  assert.equal(r.damage?.code, 'missing_footer');
  assert.equal(r.steps.length, 4);
  w.discard();
});

test('readEpisodeHeader: the header alone, with the full readers\' checks on the first record', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'ep.evep');
  writeEpisode(file, 5);
  assert.deepEqual(readEpisodeHeader(file), header);
  // Steps damaged after the header do not matter; a damaged header record does.
  const buf = Buffer.from(fs.readFileSync(file));
  const offs = frameOffsets(buf);
  const later = Buffer.from(buf);
  later[offs[3] + 20] ^= 0x40;
  fs.writeFileSync(file, later);
  assert.deepEqual(readEpisodeHeader(file), header);
  const first = Buffer.from(buf);
  first[offs[0] + 20] ^= 0x40;
  fs.writeFileSync(file, first);
  assert.throws(() => readEpisodeHeader(file), /ep\.evep: not a readable episode file: record 0 at byte \d+ fails its CRC-32 check/);
  fs.writeFileSync(file, buf.subarray(0, offs[0] + 10));
  assert.throws(() => readEpisodeHeader(file), /ep\.evep: not a readable episode file: file ends inside record 0/);
  assert.throws(() => readEpisodeHeader(path.join(dir, 'missing.evep')), (e: NodeJS.ErrnoException) => e.code === 'ENOENT' && /missing\.evep/.test(e.message));
});
