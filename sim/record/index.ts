/** Episode files: types, writer and damage-reporting reader. */
export * from './types.ts';
export { crc32 } from './crc32.ts';
export { EpisodeWriter, encodeFrame, encodePreamble, partialPath } from './writer.ts';
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
