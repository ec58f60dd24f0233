/** Episode files: types, writer and damage-reporting reader. */
export * from './types.ts';
export { crc32 } from './crc32.ts';
export { EpisodeWriter, encodeFrame, encodePreamble, encodeStep, partialPath } from './writer.ts';
export { IMAGE_DEFLATE_LEVEL, ImageDecodeError, decodeImages, encodeImages, type EncodedCameraFrame } from './images.ts';
export {
  EpisodeFormatError,
  decodeEpisode,
  iterateEpisode,
  readEpisode,
  requireIntact,
  type EpisodeDamage,
  type EpisodeDamageCode,
  type EpisodeReadResult,
  type EpisodeRecord,
} from './reader.ts';
