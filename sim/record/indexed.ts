/**
 * Episode files opened by index: one pass over the file checks every frame (length, CRC-32, kind)
 * and records where each step's frame lies, keeping only the header, the footer and the offsets in
 * memory; steps (and their images) are read and decoded on demand. This is how the viewer holds
 * many long camera episodes at once: the memory of an open episode is a few numbers per step,
 * not its decoded images.
 *
 * The damage found is the same as `readEpisode` reports (same codes, offsets and record indices)
 * for everything a frame's bytes can show; a step whose msgpack body is invalid although its CRC
 * matches (only a writer bug can do that) is reported when that step is read.
 */
import * as fs from 'node:fs';
import { withPath } from '../files.ts';
import { crc32 } from './crc32.ts';
import { decodeImages } from './images.ts';
import { FRAME_HEADER_BYTES, KIND_HEADER, KIND_STEP, PREAMBLE_BYTES, episodePackr } from './format.ts';
import { checkPreamble, crcDamage, endDamage, frameLengthDamage, frameStartDamage, headerDamage, msgpackDamage, recordKindDamage, type EpisodeDamage } from './reader.ts';
import type { EpisodeFooter, EpisodeHeader, StepRecord } from './types.ts';

/** Where an episode's records are, plus its header, footer and damage. */
export interface EpisodeIndex {
  file: string;
  /** File size when indexed. */
  bytes: number;
  version: number;
  header: EpisodeHeader | null;
  footer: EpisodeFooter | null;
  /** Null when the file is complete and intact. */
  damage: EpisodeDamage | null;
  /** Byte offset of each intact step's payload (the kind byte) and its length. */
  stepOffsets: Float64Array;
  stepLengths: Uint32Array;
  /** CRC-32 of each step's payload, so a file changed after indexing is noticed on read. */
  stepCrcs: Uint32Array;
}

/** Index an episode file (see the file comment). File-system errors throw, with the path set. */
export function indexEpisodeFile(file: string): EpisodeIndex {
  const fd = withPath(file, () => fs.openSync(file, 'r'));
  try {
    return withPath(file, () => indexOpenFile(file, fd));
  } finally {
    fs.closeSync(fd);
  }
}

function indexOpenFile(file: string, fd: number): EpisodeIndex {
  const size = fs.fstatSync(fd).size;
  const offsets: number[] = [];
  const lengths: number[] = [];
  const crcs: number[] = [];
  const result = (damage: EpisodeDamage | null, extra: Partial<EpisodeIndex> = {}): EpisodeIndex => ({
    file,
    bytes: size,
    version: 0,
    header: null,
    footer: null,
    damage,
    stepOffsets: Float64Array.from(offsets),
    stepLengths: Uint32Array.from(lengths),
    stepCrcs: Uint32Array.from(crcs),
    ...extra,
  });
  const version = checkPreamble(readAt(fd, 0, Math.min(PREAMBLE_BYTES, size)), size);
  if (typeof version !== 'number') return result(version);
  let header: EpisodeHeader | null = null;
  let footer: EpisodeFooter | null = null;
  let sawFooter = false;
  const done = (d: EpisodeDamage | null) => result(d, { version, header, footer });
  let offset = PREAMBLE_BYTES;
  let index = 0;
  const frameHead = Buffer.alloc(FRAME_HEADER_BYTES);
  let payloadBuf = Buffer.alloc(64 * 1024);
  while (offset < size) {
    const startDamage = frameStartDamage(size, offset, index, sawFooter);
    if (startDamage) return done(startDamage);
    readInto(fd, frameHead, FRAME_HEADER_BYTES, offset);
    const length = frameHead.readUInt32LE(0);
    const storedCrc = frameHead.readUInt32LE(4);
    const lengthDamage = frameLengthDamage(size, offset, index, length);
    if (lengthDamage) return done(lengthDamage);
    const start = offset + FRAME_HEADER_BYTES;
    if (payloadBuf.length < length) payloadBuf = Buffer.alloc(Math.max(length, payloadBuf.length * 2));
    const payload = payloadBuf.subarray(0, length);
    readInto(fd, payload, length, start);
    const badCrc = crcDamage(offset, index, storedCrc, crc32(payload));
    if (badCrc) return done(badCrc);
    const kind = payload[0];
    const kindDamage = recordKindDamage(offset, index, kind);
    if (kindDamage) return done(kindDamage);
    if (kind === KIND_HEADER) {
      let value: EpisodeHeader;
      try {
        value = episodePackr.unpack(payload.subarray(1)) as EpisodeHeader;
      } catch (err) {
        return done(msgpackDamage(offset, index, err));
      }
      const bad = headerDamage(value, offset, version);
      if (bad) return done(bad);
      header = value;
    } else if (kind === KIND_STEP) {
      offsets.push(start);
      lengths.push(length);
      crcs.push(storedCrc);
    } else {
      try {
        footer = episodePackr.unpack(payload.subarray(1)) as EpisodeFooter;
      } catch (err) {
        return done(msgpackDamage(offset, index, err));
      }
      sawFooter = true;
    }
    offset = start + length;
    index++;
  }
  return done(endDamage(offset, index, sawFooter));
}

/** Thrown when a step cannot be read back (the file changed or went away since it was indexed). */
export class EpisodeReadError extends Error {
  override name = 'EpisodeReadError';
}

/**
 * Read steps `from` .. `to - 1` of an indexed file (clamped to the intact steps). With
 * `images: false` the images are left out undecoded (cheap: what a timeline or plot needs).
 */
export function readIndexedSteps(index: EpisodeIndex, from: number, to: number, opts: { images: boolean }): StepRecord[] {
  const lo = Math.max(0, from);
  const hi = Math.min(index.stepOffsets.length, to);
  if (hi <= lo) return [];
  const out: StepRecord[] = [];
  const fd = withPath(index.file, () => fs.openSync(index.file, 'r'));
  try {
    // One read for the whole range: the frames of consecutive steps are contiguous.
    const start = index.stepOffsets[lo];
    const end = index.stepOffsets[hi - 1] + index.stepLengths[hi - 1];
    const buf = Buffer.allocUnsafe(end - start);
    withPath(index.file, () => readInto(fd, buf, buf.length, start));
    for (let i = lo; i < hi; i++) {
      const at = index.stepOffsets[i] - start;
      const payload = buf.subarray(at, at + index.stepLengths[i]);
      if (crc32(payload) !== index.stepCrcs[i]) throw new EpisodeReadError(`${index.file}: step ${i} changed on disk since the file was opened (CRC mismatch)`);
      let step: StepRecord;
      try {
        step = episodePackr.unpack(payload.subarray(1)) as StepRecord;
      } catch (err) {
        throw new EpisodeReadError(`${index.file}: step ${i} passes its CRC but is not valid msgpack (${(err as Error).message})`);
      }
      if (step === null || typeof step !== 'object') throw new EpisodeReadError(`${index.file}: step ${i} is not a step record`);
      if (!opts.images) delete step.images;
      else if (index.version >= 2 && step.images !== undefined) {
        try {
          step.images = decodeImages(step.images);
        } catch (err) {
          throw new EpisodeReadError(`${index.file}: step ${i}: ${(err as Error).message}`);
        }
      }
      out.push(step);
    }
  } finally {
    fs.closeSync(fd);
  }
  return out;
}

function readAt(fd: number, position: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  readInto(fd, b, length, position);
  return b;
}

function readInto(fd: number, buf: Uint8Array, length: number, position: number): void {
  let got = 0;
  while (got < length) {
    const n = fs.readSync(fd, buf, got, length - got, position + got);
    if (n === 0) throw new EpisodeReadError(`file ended at byte ${position + got} while reading ${length} bytes at ${position} (it shrank after it was opened)`);
    got += n;
  }
}
