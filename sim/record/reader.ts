/**
 * Episode reader. It never throws on a damaged file: it yields every intact record up to the
 * first damaged one and reports where and why the file breaks (byte offset, record index, reason),
 * so a crashed recording still gives its prefix and a corrupted one says exactly what is wrong.
 */
import * as fs from 'node:fs';
import { withPath } from '../files.ts';
import { crc32 } from './crc32.ts';
import { ImageDecodeError, decodeImages } from './images.ts';
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
import { READABLE_EPISODE_VERSIONS, type EpisodeFooter, type EpisodeHeader, type StepRecord } from './types.ts';

/** Why a file could not be read to its end. */
export type EpisodeDamageCode =
  | 'bad_magic'
  | 'wrong_version'
  | 'truncated'
  | 'bad_length'
  | 'crc_mismatch'
  | 'bad_record'
  | 'missing_header'
  | 'missing_footer'
  | 'trailing_data';

/** Where and why a file breaks. Records before `recordIndex` are intact. */
export interface EpisodeDamage {
  code: EpisodeDamageCode;
  /** Byte offset of the frame (or preamble field) that is damaged. */
  offset: number;
  /** Index of the damaged record, counting the header as record 0. */
  recordIndex: number;
  /** One line a user can act on. */
  message: string;
}

/** A decoded record, tagged by kind. */
export type EpisodeRecord =
  | { kind: 'header'; offset: number; value: EpisodeHeader }
  | { kind: 'step'; offset: number; value: StepRecord }
  | { kind: 'footer'; offset: number; value: EpisodeFooter };

/** Everything a reader recovered from one file. */
export interface EpisodeReadResult {
  header: EpisodeHeader | null;
  steps: StepRecord[];
  footer: EpisodeFooter | null;
  /** Null when the file is complete and intact (header, steps, footer, nothing after). */
  damage: EpisodeDamage | null;
  /** Size of the file in bytes. */
  bytes: number;
}

/** Thrown by `requireIntact` for a damaged file. */
export class EpisodeFormatError extends Error {
  override name = 'EpisodeFormatError';
  constructor(readonly damage: EpisodeDamage, readonly file?: string) {
    super(`${file ? `${file}: ` : ''}${damage.message}`);
  }
}

/**
 * Walk the records of an episode file held in memory. Yields intact records in order; returns the
 * damage found (null for a complete file) as the generator's return value.
 */
export function* iterateEpisode(buf: Uint8Array): Generator<EpisodeRecord, EpisodeDamage | null, void> {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const version = checkPreamble(buf.subarray(0, PREAMBLE_BYTES), buf.length);
  if (typeof version !== 'number') return version;
  // Version 1 stored images raw; from version 2 on they are compressed and decoded here.
  const imagesEncoded = version >= 2;

  let offset = PREAMBLE_BYTES;
  let index = 0;
  let sawFooter = false;
  while (offset < buf.length) {
    const startDamage = frameStartDamage(buf.length, offset, index, sawFooter);
    if (startDamage) return startDamage;
    const length = view.getUint32(offset, true);
    const storedCrc = view.getUint32(offset + 4, true);
    const lengthDamage = frameLengthDamage(buf.length, offset, index, length);
    if (lengthDamage) return lengthDamage;
    const start = offset + FRAME_HEADER_BYTES;
    const payload = buf.subarray(start, start + length);
    const badCrc = crcDamage(offset, index, storedCrc, crc32(payload));
    if (badCrc) return badCrc;
    const kind = payload[0];
    let value: unknown;
    try {
      value = episodePackr.unpack(payload.subarray(1));
    } catch (err) {
      return msgpackDamage(offset, index, err);
    }
    const kindDamage = recordKindDamage(offset, index, kind);
    if (kindDamage) return kindDamage;
    if (kind === KIND_HEADER) {
      const header = value as EpisodeHeader;
      const bad = headerDamage(header, offset, version);
      if (bad) return bad;
      yield { kind: 'header', offset, value: header };
    } else if (kind === KIND_STEP) {
      const step = value as StepRecord;
      if (imagesEncoded && step !== null && typeof step === 'object' && step.images !== undefined) {
        try {
          step.images = decodeImages(step.images);
        } catch (err) {
          if (!(err instanceof ImageDecodeError)) throw err;
          return damage('bad_record', offset, index, `record ${index} at byte ${offset} passes its CRC but its ${err.message}; ${index} intact records before it`);
        }
      }
      yield { kind: 'step', offset, value: step };
    } else {
      sawFooter = true;
      yield { kind: 'footer', offset, value: value as EpisodeFooter };
    }
    offset = start + length;
    index++;
  }
  return endDamage(offset, index, sawFooter);
}

/** Decode a whole episode held in memory, recovering the intact prefix of a damaged one. */
export function decodeEpisode(buf: Uint8Array): EpisodeReadResult {
  const result: EpisodeReadResult = { header: null, steps: [], footer: null, damage: null, bytes: buf.length };
  const it = iterateEpisode(buf);
  for (;;) {
    const next = it.next();
    if (next.done) {
      result.damage = next.value;
      return result;
    }
    const rec = next.value;
    if (rec.kind === 'header') result.header = rec.value;
    else if (rec.kind === 'step') result.steps.push(rec.value);
    else result.footer = rec.value;
  }
}

/** Read an episode file (see `decodeEpisode`). I/O errors such as a missing file still throw. */
export function readEpisode(file: string): EpisodeReadResult {
  // readFileSync on a directory throws EISDIR without the path: name it.
  return decodeEpisode(withPath(file, () => fs.readFileSync(file)));
}

/**
 * The header record of an episode file, read alone: the preamble and the first record go through
 * `iterateEpisode`'s own checks (framing, CRC, kind, header), so checking a folder of episodes does
 * not read every step. A file whose start is damaged throws, naming the file and the damage.
 */
export function readEpisodeHeader(file: string): EpisodeHeader {
  return withPath(file, () => {
    const fd = fs.openSync(file, 'r');
    try {
      const head = Buffer.alloc(PREAMBLE_BYTES + FRAME_HEADER_BYTES);
      const got = fs.readSync(fd, head, 0, head.length, 0);
      let buf: Uint8Array = head.subarray(0, got);
      if (got === head.length) {
        // The first record's payload (an impossible declared length is reported by the checks).
        const payload = Buffer.alloc(Math.min(head.readUInt32LE(PREAMBLE_BYTES), MAX_FRAME_BYTES));
        buf = Buffer.concat([head, payload.subarray(0, fs.readSync(fd, payload, 0, payload.length, head.length))]);
      }
      const first = iterateEpisode(buf).next();
      if (first.done || first.value.kind !== 'header') {
        throw new Error(`${file}: not a readable episode file: ${first.done && first.value ? first.value.message : 'its first record is not a header'}`);
      }
      return first.value.value;
    } finally {
      fs.closeSync(fd);
    }
  });
}

/** Throw an `EpisodeFormatError` unless the file read cleanly; narrows header and footer. */
export function requireIntact(
  result: EpisodeReadResult,
  file?: string,
): asserts result is EpisodeReadResult & { header: EpisodeHeader; footer: EpisodeFooter; damage: null } {
  if (result.damage) throw new EpisodeFormatError(result.damage, file);
}

/** A damage report (shared by the whole-file reader and the indexed reader in indexed.ts). */
export function damage(code: EpisodeDamageCode, offset: number, recordIndex: number, message: string): EpisodeDamage {
  return { code, offset, recordIndex, message };
}

/** `x` as 0x-prefixed 8-digit hex, for CRC values in damage messages. */
export function hex32(x: number): string {
  return `0x${x.toString(16).padStart(8, '0')}`;
}

/** The first `n` bytes of `buf` in hex, for damage messages about a bad magic. */
export function hexPrefix(buf: Uint8Array, n: number): string {
  return Array.from(buf.subarray(0, n), (b) => b.toString(16).padStart(2, '0')).join(' ') || '(empty)';
}

/*
 * The framing checks shared by the whole-file walker (iterateEpisode) and the indexed reader
 * (indexed.ts): one wording of each damage, whichever way the bytes were read.
 */

/**
 * The preamble (`pre`: the file's first PREAMBLE_BYTES bytes, or all of a shorter file of `size`
 * bytes): the format version, or the damage that stops reading before any record.
 */
export function checkPreamble(pre: Uint8Array, size: number): number | EpisodeDamage {
  if (size < PREAMBLE_BYTES) {
    const magicOk = pre.every((b, i) => i >= EPISODE_MAGIC.length || b === EPISODE_MAGIC[i]);
    return magicOk
      ? damage('truncated', 0, 0, `file is ${size} bytes, shorter than the ${PREAMBLE_BYTES}-byte preamble (empty or truncated recording)`)
      : damage('bad_magic', 0, 0, `not an evovla episode file: expected magic "EVOVLAEP", got ${hexPrefix(pre, 8)}`);
  }
  for (let i = 0; i < EPISODE_MAGIC.length; i++) {
    if (pre[i] !== EPISODE_MAGIC[i]) return damage('bad_magic', 0, 0, `not an evovla episode file: expected magic "EVOVLAEP", got ${hexPrefix(pre, 8)}`);
  }
  const version = new DataView(pre.buffer, pre.byteOffset, pre.byteLength).getUint32(8, true);
  if (!READABLE_EPISODE_VERSIONS.includes(version)) {
    return damage('wrong_version', 8, 0, `episode format version ${version} is not supported (this build reads versions ${READABLE_EPISODE_VERSIONS.join(', ')}); no records were read`);
  }
  return version;
}

/** Damage when record `index` at `offset` cannot start: data after the footer, or a cut frame header. */
export function frameStartDamage(size: number, offset: number, index: number, sawFooter: boolean): EpisodeDamage | null {
  if (sawFooter) return damage('trailing_data', offset, index, `${size - offset} bytes after the footer at byte ${offset} (record ${index}); the episode before them is intact`);
  if (size - offset < FRAME_HEADER_BYTES) {
    return damage('truncated', offset, index, `file ends inside the frame header of record ${index} at byte ${offset} (${size - offset} of ${FRAME_HEADER_BYTES} bytes); ${index} intact records before it`);
  }
  return null;
}

/** Damage when the frame header's declared payload `length` is impossible or runs past the file's end. */
export function frameLengthDamage(size: number, offset: number, index: number, length: number): EpisodeDamage | null {
  if (length < 2 || length > MAX_FRAME_BYTES) {
    return damage('bad_length', offset, index, `record ${index} at byte ${offset} declares ${length} payload bytes (expected 2..${MAX_FRAME_BYTES}); ${index} intact records before it`);
  }
  const start = offset + FRAME_HEADER_BYTES;
  if (start + length > size) {
    return damage('truncated', offset, index, `file ends inside record ${index} at byte ${offset}: needs ${length} payload bytes, has ${size - start}; ${index} intact records before it`);
  }
  return null;
}

/** Damage when the payload's CRC-32 differs from the stored one. */
export function crcDamage(offset: number, index: number, storedCrc: number, actualCrc: number): EpisodeDamage | null {
  if (actualCrc === storedCrc) return null;
  return damage('crc_mismatch', offset, index, `record ${index} at byte ${offset} fails its CRC-32 check (stored ${hex32(storedCrc)}, computed ${hex32(actualCrc)}); ${index} intact records before it`);
}

/** Damage of a payload that passed its CRC but is not msgpack. */
export function msgpackDamage(offset: number, index: number, err: unknown): EpisodeDamage {
  return damage('bad_record', offset, index, `record ${index} at byte ${offset} passes its CRC but is not valid msgpack (${(err as Error).message})`);
}

/** Damage of record `index` by its kind byte alone: the first record must be the only header; kinds are H, S, F. */
export function recordKindDamage(offset: number, index: number, kind: number): EpisodeDamage | null {
  if (index === 0 && kind !== KIND_HEADER) return damage('missing_header', offset, 0, `the first record at byte ${offset} is not a header (kind byte ${kind})`);
  if (kind === KIND_HEADER && index !== 0) return damage('bad_record', offset, index, `record ${index} at byte ${offset} is a second header`);
  if (kind !== KIND_HEADER && kind !== KIND_STEP && kind !== KIND_FOOTER) {
    return damage('bad_record', offset, index, `record ${index} at byte ${offset} has unknown kind byte ${kind} (expected 'H', 'S' or 'F')`);
  }
  return null;
}

/** Damage of a decoded header record: it must name the format and agree with the preamble's version. */
export function headerDamage(header: EpisodeHeader, offset: number, version: number): EpisodeDamage | null {
  if (header === null || typeof header !== 'object' || header.format !== 'evovla.episode') {
    return damage('bad_record', offset, 0, `header record at byte ${offset} lacks format 'evovla.episode'`);
  }
  if (header.version !== version) return damage('wrong_version', offset, 0, `header declares version ${String(header.version)}, the preamble ${version}`);
  return null;
}

/** Damage at the end of the file (`index` records read): no header, or no footer. */
export function endDamage(offset: number, index: number, sawFooter: boolean): EpisodeDamage | null {
  if (index === 0) return damage('missing_header', offset, 0, 'file has a preamble but no header record (recording stopped before it began)');
  if (!sawFooter) return damage('missing_footer', offset, index, `no footer after ${index} intact records (the recording was not closed: crashed or still running)`);
  return null;
}
