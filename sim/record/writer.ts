/**
 * Episode writer: appends one framed record per step to a temporary file and renames it into
 * place on a clean close, so a finished episode file is never half-written and a crash leaves a
 * `.partial` file whose intact prefix the reader still recovers.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeDirectory, withPath } from '../files.ts';
import { crc32 } from './crc32.ts';
import { encodeImages } from './images.ts';
import {
  EPISODE_MAGIC,
  FRAME_HEADER_BYTES,
  KIND_FOOTER,
  KIND_HEADER,
  KIND_STEP,
  PREAMBLE_BYTES,
  episodePackr,
} from './format.ts';
import { EPISODE_FORMAT_VERSION, type EpisodeFooter, type EpisodeHeader, type StepRecord } from './types.ts';

/** Encode one frame (length + CRC-32 + kind byte + msgpack body). */
export function encodeFrame(kind: number, body: unknown): Buffer {
  const packed = episodePackr.pack(body);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 1 + packed.length);
  frame[FRAME_HEADER_BYTES] = kind;
  packed.copy(frame, FRAME_HEADER_BYTES + 1);
  const payload = frame.subarray(FRAME_HEADER_BYTES);
  frame.writeUInt32LE(payload.length, 0);
  frame.writeUInt32LE(crc32(payload), 4);
  return frame;
}

/** The 12-byte preamble: magic + format version. */
export function encodePreamble(version = EPISODE_FORMAT_VERSION): Buffer {
  const b = Buffer.alloc(PREAMBLE_BYTES);
  b.set(EPISODE_MAGIC, 0);
  b.writeUInt32LE(version, 8);
  return b;
}

/** A step record as stored: the same fields, with images encoded. */
export function encodeStep(record: StepRecord): unknown {
  if (!record.images) return record;
  return { ...record, images: encodeImages(record.images) };
}

/** Where the writer keeps the episode until it is closed. */
export function partialPath(finalPath: string): string {
  return `${finalPath}.partial`;
}

/**
 * Writes one episode. Records go straight to the OS with one write per record (no user-space
 * buffer), so a crash of this process loses at most the record being written; `close()` fsyncs
 * the file, renames it to its final name and fsyncs the directory so the rename survives power loss.
 */
export class EpisodeWriter {
  readonly path: string;
  readonly tempPath: string;
  private fd: number | null;
  private steps = 0;
  private bytes = 0;

  private constructor(finalPath: string, fd: number, tempPath: string) {
    this.path = finalPath;
    this.tempPath = tempPath;
    this.fd = fd;
  }

  /** Create `<file>.partial`, write the preamble and the header record. */
  static open(file: string, header: EpisodeHeader): EpisodeWriter {
    if (header.format !== 'evovla.episode') {
      throw new TypeError(`episode header format must be 'evovla.episode', got '${String(header.format)}'`);
    }
    if (header.version !== EPISODE_FORMAT_VERSION) {
      throw new RangeError(`episode header version must be ${EPISODE_FORMAT_VERSION}, got ${header.version}`);
    }
    makeDirectory(path.dirname(path.resolve(file)));
    const tempPath = partialPath(file);
    const fd = fs.openSync(tempPath, 'w');
    const w = new EpisodeWriter(file, fd, tempPath);
    w.write(encodePreamble());
    w.write(encodeFrame(KIND_HEADER, header));
    return w;
  }

  /** Number of step records written so far. */
  get stepCount(): number {
    return this.steps;
  }

  /** Bytes written so far (preamble included). */
  get byteCount(): number {
    return this.bytes;
  }

  /** Append one step record; its images are stored compressed (see `images.ts`). */
  append(record: StepRecord): void {
    this.write(encodeFrame(KIND_STEP, encodeStep(record)));
    this.steps++;
  }

  /** Write the footer, fsync, and rename the temp file to the final path. Returns the final path. */
  close(footer: EpisodeFooter): string {
    this.write(encodeFrame(KIND_FOOTER, footer));
    const fd = this.requireOpen();
    withPath(this.tempPath, () => fs.fsyncSync(fd));
    fs.closeSync(fd);
    this.fd = null;
    fs.renameSync(this.tempPath, this.path);
    syncDirectory(path.dirname(path.resolve(this.path)));
    return this.path;
  }

  /**
   * Stop writing without a footer and keep the temp file (an interrupted recording): the reader
   * recovers its intact prefix, as after a crash. Returns the `.partial` path.
   */
  abandon(): string {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
    return this.tempPath;
  }

  /** Stop writing without a footer and delete the temp file (an episode the caller rejects). */
  discard(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
    fs.rmSync(this.tempPath, { force: true });
  }

  private write(buf: Buffer): void {
    const fd = this.requireOpen();
    let off = 0;
    // Errors on a descriptor carry no path; name the file so the user learns which one failed.
    withPath(this.tempPath, () => {
      while (off < buf.length) off += fs.writeSync(fd, buf, off, buf.length - off);
    });
    this.bytes += buf.length;
  }

  private requireOpen(): number {
    if (this.fd === null) throw new Error(`episode writer for ${this.path} is already closed`);
    return this.fd;
  }
}

function syncDirectory(dir: string): void {
  // Directory fsync makes the rename durable on Linux; some platforms refuse to open a directory,
  // which only weakens durability after power loss, so that one failure is tolerated explicitly.
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EISDIR' || (err as NodeJS.ErrnoException).code === 'EPERM') return;
    throw err;
  }
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
