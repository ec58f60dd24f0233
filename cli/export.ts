/**
 * `evovla export --format lerobot|mcap --out PATH EPISODES...`: write episode files in formats
 * other tools read. lerobot: one LeRobotDataset v3.0 folder for all the episodes (LeRobot 0.4+
 * loads it). mcap: one MCAP file per episode with ROS 2 messages (Foxglove opens it).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ExportError, exportLeRobot } from '../interop/lerobot/export.ts';
import { exportMcap } from '../interop/mcap.ts';
import { VIDEO_CODECS, VideoToolError, type VideoCodec } from '../interop/video.ts';
import { EpisodeFormatError } from '../sim/record/reader.ts';
import { makeDirectory } from '../sim/files.ts';
import { expandEpisodePaths } from '../viewer/episodes.ts';
import { parseFlags, requireString } from './args.ts';
import { UsageError } from './main.ts';

const USAGE = `usage: evovla export --format lerobot|mcap --out PATH [--codec h264|av1|h264-lossless] [--json] EPISODES...
  EPISODES   episode files (.evep) or directories of them
  --format   lerobot: a LeRobotDataset v3.0 folder at PATH holding all the episodes
             mcap: an MCAP file per episode (ROS 2 messages, opens in Foxglove); PATH is the
                   .mcap file for one episode, or a directory for several
  --out      where to write (a new or empty directory, or a new .mcap file)
  --codec    lerobot video codec: h264 (default, plays everywhere), av1 (LeRobot's default) or
             h264-lossless (bit-exact frames, larger; ffmpeg-based readers only)
  --json     print a JSON summary on stdout`;

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  const args = parseFlags(argv, { format: 'string', out: 'string', codec: 'string', json: 'bool' }, USAGE);
  const format = requireString(args, 'format', USAGE);
  const out = requireString(args, 'out', USAGE);
  if (format !== 'lerobot' && format !== 'mcap') throw new UsageError(`flag '--format' expects lerobot or mcap, got '${format}'\n${USAGE}`);
  const codec = (args.flags.codec as string | undefined) ?? 'h264';
  if (!VIDEO_CODECS.includes(codec as VideoCodec)) throw new UsageError(`flag '--codec' expects ${VIDEO_CODECS.join(', ')}, got '${codec}'\n${USAGE}`);
  if (args.positional.length === 0) throw new UsageError(`expected at least one episode file or directory\n${USAGE}`);
  let files: string[];
  try {
    files = expandEpisodePaths(args.positional);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  try {
    if (format === 'lerobot') {
      const summary = await exportLeRobot(files, out, { codec: codec as VideoCodec });
      if (args.flags.json) console.log(JSON.stringify(summary));
      else console.log(`evovla export: ${summary.episodes} episode(s), ${summary.frames} frames, cameras [${summary.cameras.join(', ')}] -> LeRobotDataset v3.0 at ${summary.dir}`);
      return 0;
    }
    const toDir = files.length > 1 || !out.endsWith('.mcap');
    if (toDir) makeDirectory(out);
    const results = [];
    for (const f of files) {
      const target = toDir ? path.join(out, `${path.basename(f).replace(/\.evep$/, '')}.mcap`) : out;
      results.push(await exportMcap(f, target));
    }
    if (args.flags.json) console.log(JSON.stringify(results));
    else for (const r of results) console.log(`evovla export: ${r.file}: ${r.messages} messages on ${r.topics.length} topics`);
    return 0;
  } catch (err) {
    if (err instanceof ExportError || err instanceof EpisodeFormatError || err instanceof VideoToolError) throw new UsageError(err.message);
    throw err;
  }
}
