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
import {
  EPISODE_MAGIC,
  FRAME_HEADER_BYTES,
  KIND_FOOTER,
  KIND_HEADER,
  KIND_STEP,
  MAX_FRAME_BYTES,
  PREAMBLE_BYTES,
  episodePackr,
} from './format.ts';
import { damage, hex32, hexPrefix, type EpisodeDamage } from './reader.ts';
import { READABLE_EPISODE_VERSIONS, type EpisodeFooter, type EpisodeHeader, type StepRecord } from './types.ts';

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
  const pre = readAt(fd, 0, Math.min(PREAMBLE_BYTES, size));
  if (size < PREAMBLE_BYTES) {
    const magicOk = pre.every((b, i) => i >= EPISODE_MAGIC.length || b === EPISODE_MAGIC[i]);
    return result(
      magicOk
        ? damage('truncated', 0, 0, `file is ${size} bytes, shorter than the ${PREAMBLE_BYTES}-byte preamble (empty or truncated recording)`)
        : damage('bad_magic', 0, 0, `not an evovla episode file: expected magic "EVOVLAEP", got ${hexPrefix(pre, 8)}`),
    );
  }
  for (let i = 0; i < EPISODE_MAGIC.length; i++) {
    if (pre[i] !== EPISODE_MAGIC[i]) return result(damage('bad_magic', 0, 0, `not an evovla episode file: expected magic "EVOVLAEP", got ${hexPrefix(pre, 8)}`));
  }
  const version = pre.readUInt32LE(8);
  if (!READABLE_EPISODE_VERSIONS.includes(version)) {
    return result(
      damage('wrong_version', 8, 0, `episode format version ${version} is not supported (this build reads versions ${READABLE_EPISODE_VERSIONS.join(', ')}); no records were read`),
    );
  }
  let header: EpisodeHeader | null = null;
  let footer: EpisodeFooter | null = null;
  const done = (d: EpisodeDamage | null) => result(d, { version, header, footer });
  let offset = PREAMBLE_BYTES;
  let index = 0;
  const frameHead = Buffer.alloc(FRAME_HEADER_BYTES);
  let payloadBuf = Buffer.alloc(64 * 1024);
  while (offset < size) {
    if (footer) return done(damage('trailing_data', offset, index, `${size - offset} bytes after the footer at byte ${offset} (record ${index}); the episode before them is intact`));
    if (size - offset < FRAME_HEADER_BYTES) {
      return done(damage('truncated', offset, index, `file ends inside the frame header of record ${index} at byte ${offset} (${size - offset} of ${FRAME_HEADER_BYTES} bytes); ${index} intact records before it`));
    }
    readInto(fd, frameHead, FRAME_HEADER_BYTES, offset);
    const length = frameHead.readUInt32LE(0);
    const storedCrc = frameHead.readUInt32LE(4);
    if (length < 2 || length > MAX_FRAME_BYTES) {
      return done(damage('bad_length', offset, index, `record ${index} at byte ${offset} declares ${length} payload bytes (expected 2..${MAX_FRAME_BYTES}); ${index} intact records before it`));
    }
    const start = offset + FRAME_HEADER_BYTES;
    if (start + length > size) {
      return done(damage('truncated', offset, index, `file ends inside record ${index} at byte ${offset}: needs ${length} payload bytes, has ${size - start}; ${index} intact records before it`));
    }
    if (payloadBuf.length < length) payloadBuf = Buffer.alloc(Math.max(length, payloadBuf.length * 2));
    const payload = payloadBuf.subarray(0, length);
    readInto(fd, payload, length, start);
    const actualCrc = crc32(payload);
    if (actualCrc !== storedCrc) {
      return done(damage('crc_mismatch', offset, index, `record ${index} at byte ${offset} fails its CRC-32 check (stored ${hex32(storedCrc)}, computed ${hex32(actualCrc)}); ${index} intact records before it`));
    }
    const kind = payload[0];
    if (index === 0 && kind !== KIND_HEADER) return done(damage('missing_header', offset, 0, `the first record at byte ${offset} is not a header (kind byte ${kind})`));
    if (kind === KIND_HEADER) {
      if (index !== 0) return done(damage('bad_record', offset, index, `record ${index} at byte ${offset} is a second header`));
      let value: EpisodeHeader;
      try {
        value = episodePackr.unpack(payload.subarray(1)) as EpisodeHeader;
      } catch (err) {
        return done(damage('bad_record', offset, index, `record ${index} at byte ${offset} passes its CRC but is not valid msgpack (${(err as Error).message})`));
      }
      if (value === null || typeof value !== 'object' || value.format !== 'evovla.episode') {
        return done(damage('bad_record', offset, 0, `header record at byte ${offset} lacks format 'evovla.episode'`));
      }
      if (value.version !== version) return done(damage('wrong_version', offset, 0, `header declares version ${String(value.version)}, the preamble ${version}`));
      header = value;
    } else if (kind === KIND_STEP) {
      offsets.push(start);
      lengths.push(length);
      crcs.push(storedCrc);
    } else if (kind === KIND_FOOTER) {
      try {
        footer = episodePackr.unpack(payload.subarray(1)) as EpisodeFooter;
      } catch (err) {
        return done(damage('bad_record', offset, index, `record ${index} at byte ${offset} passes its CRC but is not valid msgpack (${(err as Error).message})`));
      }
    } else {
      return done(damage('bad_record', offset, index, `record ${index} at byte ${offset} has unknown kind byte ${kind} (expected 'H', 'S' or 'F')`));
    }
    offset = start + length;
    index++;
  }
  if (index === 0) return done(damage('missing_header', offset, 0, 'file has a preamble but no header record (recording stopped before it began)'));
  if (!footer) return done(damage('missing_footer', offset, index, `no footer after ${index} intact records (the recording was not closed: crashed or still running)`));
  return done(null);
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
