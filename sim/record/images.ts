/**
 * How camera images are stored in episode files of format version 2 and later.
 *
 * Each channel of a `CameraFrame` is stored as one raw-deflate stream (RFC 1951, no zlib or gzip
 * wrapper) of its little-endian bytes:
 * - `rgb` (uint8, w*h*3): deflated as is.
 * - `depth` (float32, w*h): byte-shuffled (all first bytes of the floats, then all second bytes,
 *   ...), then byte-delta coded (each byte minus the one before it, mod 256), then deflated. The
 *   exponent and high mantissa bytes of neighbouring depths are nearly equal, so the shuffled,
 *   delta-coded stream is mostly zeros: this halves the depth size compared with deflate alone.
 * - `segmentation` (uint16, w*h): deflated as is (shuffling saved under 0.3 KiB a step).
 * `width` and `height` are stored as numbers; the decoder checks every inflated channel against
 * them, so a damaged or foreign image is an error here, never a wrongly sized frame downstream.
 *
 * Version 1 files store the typed arrays raw; their frames need no decoding.
 */
import * as zlib from 'node:zlib';
import type { CameraFrame } from '../types.ts';
import { MAX_FRAME_BYTES } from './format.ts';

/**
 * Deflate level: 3 compresses the 128x128 side + wrist frames of a `blocks` episode to ~7% of
 * their raw size in about 1.2 ms a step; level 1 gives ~8% for about the same time, level 6 ~6%
 * at twice the time (measured on the recorded frames of `evovla demos --task blocks`).
 */
export const IMAGE_DEFLATE_LEVEL = 3;

/** A camera frame as stored in a step record of a version-2 file. */
export interface EncodedCameraFrame {
  width: number;
  height: number;
  /** Raw deflate of the RGB bytes. */
  rgb: Uint8Array;
  /** Raw deflate of the byte-shuffled, byte-delta coded float32 depths. */
  depth?: Uint8Array;
  /** Raw deflate of the uint16 segmentation ids. */
  segmentation?: Uint8Array;
}

/** Thrown by `decodeCameraFrame` for an image that does not decode; the reader reports it as damage. */
export class ImageDecodeError extends Error {
  override name = 'ImageDecodeError';
}

/** Whether this machine stores typed arrays little-endian (the file's byte order). */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Element bytes in file (little-endian) order. */
function toLittleEndian(bytes: Uint8Array, width: number): Uint8Array {
  if (LITTLE_ENDIAN || width === 1) return bytes;
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += width) for (let k = 0; k < width; k++) out[i + k] = bytes[i + width - 1 - k];
  return out;
}

/** Shuffle 4-byte elements into byte planes and delta-code the result, in one pass. */
function shuffleDelta4(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(src.length);
  let prev = 0;
  let o = 0;
  for (let k = 0; k < 4; k++) {
    for (let i = k; i < src.length; i += 4) {
      const b = src[i];
      out[o++] = (b - prev) & 0xff;
      prev = b;
    }
  }
  return out;
}

/** Inverse of `shuffleDelta4`. */
function unshuffleDelta4(src: Uint8Array): Uint8Array {
  const out = new Uint8Array(src.length);
  let prev = 0;
  let o = 0;
  for (let k = 0; k < 4; k++) {
    for (let i = k; i < src.length; i += 4) {
      prev = (prev + src[o++]) & 0xff;
      out[i] = prev;
    }
  }
  return out;
}

function deflate(bytes: Uint8Array): Uint8Array {
  const z = zlib.deflateRawSync(bytes, { level: IMAGE_DEFLATE_LEVEL });
  return new Uint8Array(z.buffer, z.byteOffset, z.byteLength);
}

/** Encode one frame for storage. The input is not modified. */
export function encodeCameraFrame(frame: CameraFrame): EncodedCameraFrame {
  const out: EncodedCameraFrame = {
    width: frame.width,
    height: frame.height,
    rgb: deflate(bytesOf(frame.rgb)),
  };
  if (frame.depth) out.depth = deflate(shuffleDelta4(toLittleEndian(bytesOf(frame.depth), 4)));
  if (frame.segmentation) out.segmentation = deflate(toLittleEndian(bytesOf(frame.segmentation), 2));
  return out;
}

/** Encode every frame of a step's images. */
export function encodeImages(images: Record<string, CameraFrame>): Record<string, EncodedCameraFrame> {
  const out: Record<string, EncodedCameraFrame> = {};
  for (const [name, frame] of Object.entries(images)) out[name] = encodeCameraFrame(frame);
  return out;
}

/** Inflate one channel, refusing anything but exactly `expected` bytes. */
function inflate(z: unknown, expected: number, what: string): Uint8Array {
  if (!(z instanceof Uint8Array)) throw new ImageDecodeError(`${what} is not a byte string`);
  let raw: Buffer;
  try {
    // maxOutputLength bounds the memory a damaged or hostile stream can make us allocate.
    raw = zlib.inflateRawSync(z, { maxOutputLength: Math.max(expected, 1) });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ERR_BUFFER_TOO_LARGE' ? `inflates to more than ${expected} bytes` : `does not inflate (${e.code ?? e.message})`;
    throw new ImageDecodeError(`${what} ${why}`);
  }
  if (raw.length !== expected) throw new ImageDecodeError(`${what} inflates to ${raw.length} bytes, expected ${expected}`);
  // A fresh, aligned copy: typed arrays over it need 2- or 4-byte alignment.
  return new Uint8Array(raw);
}

function fromLittleEndian(bytes: Uint8Array, width: number): ArrayBuffer {
  return toLittleEndian(bytes, width).buffer as ArrayBuffer;
}

/** Decode one stored frame; throws `ImageDecodeError` naming the camera and channel on failure. */
export function decodeCameraFrame(name: string, stored: unknown): CameraFrame {
  if (stored === null || typeof stored !== 'object') throw new ImageDecodeError(`image '${name}' is not a frame`);
  const f = stored as Partial<EncodedCameraFrame>;
  const { width, height } = f;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width! <= 0 || height! <= 0 || width! * height! * 4 > MAX_FRAME_BYTES) {
    throw new ImageDecodeError(`image '${name}' has an invalid size ${String(width)}x${String(height)}`);
  }
  const px = width! * height!;
  const frame: CameraFrame = { width: width!, height: height!, rgb: inflate(f.rgb, px * 3, `image '${name}' rgb`) };
  if (f.depth !== undefined) {
    frame.depth = new Float32Array(fromLittleEndian(unshuffleDelta4(inflate(f.depth, px * 4, `image '${name}' depth`)), 4));
  }
  if (f.segmentation !== undefined) {
    frame.segmentation = new Uint16Array(fromLittleEndian(inflate(f.segmentation, px * 2, `image '${name}' segmentation`), 2));
  }
  return frame;
}

/** Decode every frame of a step's stored images. */
export function decodeImages(stored: unknown): Record<string, CameraFrame> {
  if (stored === null || typeof stored !== 'object') throw new ImageDecodeError('images field is not a map of frames');
  const out: Record<string, CameraFrame> = {};
  for (const [name, f] of Object.entries(stored)) out[name] = decodeCameraFrame(name, f);
  return out;
}
