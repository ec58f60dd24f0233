/**
 * On-disk layout of an episode file, shared by the writer and the reader.
 *
 * ```
 * preamble : 8-byte magic "EVOVLAEP" + u32 LE format version
 * frame*   : u32 LE payload length + u32 LE CRC-32 of the payload + payload
 * payload  : 1 kind byte ('H' header, 'S' step, 'F' footer) + msgpack body
 * ```
 * From version 2 on, the camera images inside step bodies are compressed (see `images.ts`).
 * The header frame comes first; the footer frame is written only on a clean close. The version
 * sits in the preamble (not only in the header) so a reader can refuse a file it cannot parse
 * before trusting any frame of it.
 */
import { Packr } from 'msgpackr';

/** Eight bytes that start every episode file. */
export const EPISODE_MAGIC = new Uint8Array([0x45, 0x56, 0x4f, 0x56, 0x4c, 0x41, 0x45, 0x50]); // "EVOVLAEP"
export const PREAMBLE_BYTES = 12;
export const FRAME_HEADER_BYTES = 8;
/**
 * Largest payload a reader accepts. A corrupted length field would otherwise make the reader
 * wait for (or allocate) gigabytes; a 448x448 RGB-D frame pair is well under 4 MiB.
 */
export const MAX_FRAME_BYTES = 256 * 1024 * 1024;

export const KIND_HEADER = 0x48; // 'H'
export const KIND_STEP = 0x53; // 'S'
export const KIND_FOOTER = 0x46; // 'F'

/**
 * One msgpack codec for every frame. `useRecords: false` keeps the files readable by any msgpack
 * implementation (no msgpackr record extension); `moreTypes: true` round-trips typed arrays as
 * typed arrays instead of Buffers.
 */
export const episodePackr = new Packr({ useRecords: false, moreTypes: true });
