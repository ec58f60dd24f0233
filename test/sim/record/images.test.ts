/** Episode files store camera images compressed (format version 2) and still read version-1 files. */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { createEnv } from '../../../sim/env.ts';
import { KIND_FOOTER, KIND_HEADER, KIND_STEP } from '../../../sim/record/format.ts';
import { decodeEpisode, readEpisode, requireIntact } from '../../../sim/record/reader.ts';
import { EPISODE_FORMAT_VERSION, type EpisodeFooter, type EpisodeHeader, type StepRecord } from '../../../sim/record/types.ts';
import { EpisodeWriter, encodeFrame, encodePreamble, encodeStep } from '../../../sim/record/writer.ts';
import { attachEnvCameras } from '../../../sim/render/env_cameras.ts';
import type { CameraFrame } from '../../../sim/types.ts';
import { runExpertEpisode } from '../../../tasks/rollout.ts';
import { getTask } from '../../../tasks/index.ts';
import { scratchDir } from '../../tmp.ts';

const header: EpisodeHeader = {
  format: 'evovla.episode',
  version: EPISODE_FORMAT_VERSION,
  task: 'blocks',
  instruction: 'stack the blocks',
  robot: 'airbot_play',
  seed: 3,
  controlHz: 60,
  physicsHz: 240,
  actionMode: 'joint',
  configHash: 'abc123',
  stages: ['a'],
  cameras: ['cam'],
  meta: {},
};
const footer: EpisodeFooter = { steps: 3, success: true, finalStateHash: 'deadbeef', maxStage: 0 };

function step(i: number, images?: Record<string, CameraFrame>): StepRecord {
  const rec: StepRecord = {
    step: i,
    time: i / 60,
    action: Float32Array.from([i, 0, 0, 0, 0, 0, 0.04]),
    proprio: new Float32Array(7),
    links: {},
    ee: { p: [0.3, 0, 0.2], q: [0, 0, 0, 1] },
    objects: {},
    predicates: {},
    stage: 0,
    rewardTerms: {},
    reward: 0,
    terminated: false,
    truncated: false,
  };
  if (images) rec.images = images;
  return rec;
}

function copyFrame(f: CameraFrame): CameraFrame {
  const c: CameraFrame = { width: f.width, height: f.height, rgb: f.rgb.slice() };
  if (f.depth) c.depth = f.depth.slice();
  if (f.segmentation) c.segmentation = f.segmentation.slice();
  return c;
}

function bytes(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function assertFramesEqual(got: CameraFrame | undefined, want: CameraFrame, what: string): void {
  assert.ok(got, `${what}: missing`);
  assert.equal(got.width, want.width, what);
  assert.equal(got.height, want.height, what);
  assert.ok(got.rgb instanceof Uint8Array, `${what}: rgb is a Uint8Array`);
  assert.ok(bytes(got.rgb).equals(bytes(want.rgb)), `${what}: rgb bytes`);
  assert.equal(got.depth === undefined, want.depth === undefined, `${what}: depth presence`);
  if (want.depth) {
    assert.ok(got.depth instanceof Float32Array, `${what}: depth is a Float32Array`);
    assert.ok(bytes(got.depth).equals(bytes(want.depth)), `${what}: depth bytes`);
  }
  assert.equal(got.segmentation === undefined, want.segmentation === undefined, `${what}: segmentation presence`);
  if (want.segmentation) {
    assert.ok(got.segmentation instanceof Uint16Array, `${what}: segmentation is a Uint16Array`);
    assert.ok(bytes(got.segmentation).equals(bytes(want.segmentation)), `${what}: segmentation bytes`);
  }
}

function rawImageBytes(steps: StepRecord[]): number {
  let n = 0;
  for (const s of steps) {
    for (const f of Object.values(s.images ?? {})) n += f.rgb.byteLength + (f.depth?.byteLength ?? 0) + (f.segmentation?.byteLength ?? 0);
  }
  return n;
}

/** A small frame with edge values: NaN with a payload, -0, infinities, denormals, the largest id. */
function edgeFrame(): CameraFrame {
  const w = 3;
  const h = 5;
  const depth = new Float32Array(w * h).map((_, i) => 0.25 + i * 0.125);
  const bits = new Uint32Array(depth.buffer);
  bits[0] = 0x7fc01234; // NaN with a payload
  bits[1] = 0x80000000; // -0
  depth[2] = Infinity;
  depth[3] = -Infinity;
  bits[4] = 0x00000001; // smallest denormal
  return {
    width: w,
    height: h,
    rgb: Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 37) & 0xff),
    depth,
    segmentation: Uint16Array.from({ length: w * h }, (_, i) => (i === 0 ? 65535 : i)),
  };
}

test('rendered images round-trip byte-equal (rgb, depth, segmentation) through a version-2 file', async () => {
  const env = await createEnv(getTask('blocks'), {
    cameras: [
      { name: 'eye_side', width: 64, height: 48 },
      { name: 'eye_arm', width: 32, height: 32 },
    ],
  });
  const cams = await attachEnvCameras(env);
  assert.ok(cams);
  const file = path.join(scratchDir('evovla-images-'), 'ep.evep');
  const sent: Record<string, CameraFrame>[] = [];
  try {
    const { obs, info } = env.reset({ seed: 3 });
    sent.push(Object.fromEntries(Object.entries(obs.images!).map(([k, f]) => [k, copyFrame(f)])));
    const q = [...info.state.q];
    for (let i = 1; i < 6; i++) {
      q[0] += 0.05;
      const r = env.step([...q, 0.04]);
      sent.push(Object.fromEntries(Object.entries(r.obs.images!).map(([k, f]) => [k, copyFrame(f)])));
    }
  } finally {
    cams.detach();
    env.free();
  }
  sent.push({ edge: edgeFrame(), rgbOnly: { width: 2, height: 1, rgb: Uint8Array.from([1, 2, 3, 4, 5, 6]) } });

  const w = EpisodeWriter.open(file, header);
  sent.forEach((images, i) => w.append(step(i, images)));
  w.append(step(sent.length)); // a step without images stays without images
  w.close({ ...footer, steps: sent.length + 1 });

  const r = readEpisode(file);
  requireIntact(r, file);
  assert.equal(r.steps.length, sent.length + 1);
  sent.forEach((images, i) => {
    assert.deepEqual(Object.keys(r.steps[i].images ?? {}).sort(), Object.keys(images).sort());
    for (const [name, f] of Object.entries(images)) assertFramesEqual(r.steps[i].images?.[name], f, `step ${i} ${name}`);
  });
  assert.equal(r.steps[sent.length].images, undefined);
  // The rendered frames changed between steps (the arm moved), so this is not one frame repeated.
  assert.ok(!bytes(sent[0].eye_side.rgb).equals(bytes(sent[5].eye_side.rgb)));
});

test('an expert episode with rendered images is a fraction of the raw image size', async () => {
  const task = getTask('blocks');
  const env = await createEnv(task, {
    cameras: [
      { name: 'eye_side', width: 96, height: 96 },
      { name: 'eye_arm', width: 64, height: 64 },
    ],
  });
  const cams = await attachEnvCameras(env);
  assert.ok(cams);
  const file = path.join(scratchDir('evovla-images-'), 'ep.evep');
  try {
    const res = runExpertEpisode(env, task, 0, { file });
    assert.ok(res.success, 'the expert finishes the episode');
  } finally {
    cams.detach();
    env.free();
  }
  const r = readEpisode(file);
  requireIntact(r, file);
  assert.ok(r.steps.length > 50 && r.steps.every((s) => s.images?.eye_side?.depth && s.images.eye_arm?.segmentation));
  const raw = rawImageBytes(r.steps);
  assert.equal(raw, r.steps.length * (96 * 96 + 64 * 64) * (3 + 4 + 2));
  // Measured at about 1/10 of the raw image size; a raw store is larger than `raw` itself.
  assert.ok(r.bytes * 5 < raw, `file is ${r.bytes} bytes for ${raw} raw image bytes`);
});

test('a version-1 file (images stored raw) still reads, images included', () => {
  const frame = edgeFrame();
  const v1Header = { ...header, version: 1 };
  const file = Buffer.concat([
    encodePreamble(1),
    encodeFrame(KIND_HEADER, v1Header),
    encodeFrame(KIND_STEP, step(0, { cam: frame })),
    encodeFrame(KIND_STEP, step(1)),
    encodeFrame(KIND_FOOTER, { ...footer, steps: 2 }),
  ]);
  const r = decodeEpisode(file);
  requireIntact(r);
  assert.equal(r.header.version, 1);
  assert.equal(r.steps.length, 2);
  assertFramesEqual(r.steps[0].images?.cam, frame, 'v1 frame');
  assert.equal(r.steps[1].images, undefined);

  // The header must agree with the preamble about the version.
  const mixed = Buffer.concat([encodePreamble(2), encodeFrame(KIND_HEADER, v1Header)]);
  const m = decodeEpisode(mixed);
  assert.equal(m.damage?.code, 'wrong_version');
  assert.match(m.damage!.message, /header declares version 1, the preamble 2/);
});

/** A version-2 file of steps 0..4 with images; `tamper` rewrites the stored form of step 2. */
function v2File(tamper?: (stored: { images: Record<string, Record<string, unknown>> }) => void): { buf: Buffer; offsets: number[] } {
  const parts: Buffer[] = [encodePreamble(), encodeFrame(KIND_HEADER, header)];
  for (let i = 0; i < 5; i++) {
    const stored = encodeStep(step(i, { cam: edgeFrame() })) as { images: Record<string, Record<string, unknown>> };
    if (i === 2 && tamper) tamper(stored);
    parts.push(encodeFrame(KIND_STEP, stored));
  }
  parts.push(encodeFrame(KIND_FOOTER, { ...footer, steps: 5 }));
  // offsets[k]: byte offset of record k (the header is record 0, step i is record i + 1).
  const offsets: number[] = [];
  let o = parts[0].length;
  for (const p of parts.slice(1)) {
    offsets.push(o);
    o += p.length;
  }
  return { buf: Buffer.concat(parts), offsets };
}

test('a corrupted compressed image is damage with its record index and the intact prefix', () => {
  const clean = v2File();
  requireIntact(decodeEpisode(clean.buf));

  // A flipped bit inside the compressed depth of step 2 (record 3) fails the record's CRC.
  const flipped = Buffer.from(clean.buf);
  const stored = encodeStep(step(2, { cam: edgeFrame() })) as { images: { cam: { depth: Uint8Array } } };
  const at = flipped.indexOf(bytes(stored.images.cam.depth), clean.offsets[3]);
  assert.ok(at > clean.offsets[3] && at < clean.offsets[4], 'the compressed depth lies inside record 3');
  flipped[at + 2] ^= 0x10;
  const f = decodeEpisode(flipped);
  assert.equal(f.damage?.code, 'crc_mismatch');
  assert.equal(f.damage?.recordIndex, 3);
  assert.equal(f.damage?.offset, clean.offsets[3]);
  assert.equal(f.steps.length, 2);

  // A frame whose CRC matches but whose deflate stream is garbage (a writer bug, or a file edited
  // and re-framed) is reported, not thrown as a zlib error.
  const garbage = v2File((s) => {
    s.images.cam.rgb = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x00, 0x13]);
  });
  const g = decodeEpisode(garbage.buf);
  assert.equal(g.damage?.code, 'bad_record');
  assert.equal(g.damage?.recordIndex, 3);
  assert.equal(g.damage?.offset, garbage.offsets[3]);
  assert.match(g.damage!.message, /record 3 at byte \d+ passes its CRC but its image 'cam' rgb does not inflate/);
  assert.deepEqual(g.steps.map((s) => s.step), [0, 1]);
  assertFramesEqual(g.steps[1].images?.cam, edgeFrame(), 'intact prefix');
  assert.deepEqual(g.header, header);

  // A truncated stream and a stream of the wrong size are damage too.
  const cut = decodeEpisode(v2File((s) => {
    const d = s.images.cam.depth as Uint8Array;
    s.images.cam.depth = d.subarray(0, d.length >> 1);
  }).buf);
  assert.equal(cut.damage?.code, 'bad_record');
  assert.match(cut.damage!.message, /image 'cam' depth does not inflate/);
  const wrongSize = decodeEpisode(v2File((s) => {
    s.images.cam.width = 2;
  }).buf);
  assert.equal(wrongSize.damage?.code, 'bad_record');
  assert.equal(wrongSize.damage?.recordIndex, 3);
  assert.match(wrongSize.damage!.message, /image 'cam' rgb inflates to more than 30 bytes/);
  const notAFrame = decodeEpisode(v2File((s) => {
    s.images.cam = 'x' as unknown as Record<string, unknown>;
  }).buf);
  assert.equal(notAFrame.damage?.code, 'bad_record');
  assert.match(notAFrame.damage!.message, /image 'cam' is not a frame/);
});
