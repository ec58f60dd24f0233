/**
 * `evovla view [--port N] [--host H] FILES...`: replay episode files in the browser. Serves a page
 * on 127.0.0.1 (a random token in the printed URL) with the 3D scene, the camera images, the stage
 * timeline and the reward terms; runs until interrupted.
 */
import { expandEpisodePaths, loadEpisodeFile, type ViewerEpisode } from '../viewer/episodes.ts';
import { startViewerServer, waitForInterrupt } from '../viewer/server.ts';
import { parseFlags } from './args.ts';
import { UsageError } from './main.ts';

const USAGE = `usage: evovla view [--port N] [--host H] FILES_OR_DIRS...
  FILES_OR_DIRS  episode files (.evep) or directories of them
  --port         port to listen on (default: any free port)
  --host         interface to bind (default 127.0.0.1; anything else exposes the viewer, token-protected, to the network)`;

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  const args = parseFlags(argv, { port: 'int', host: 'string' }, USAGE);
  const port = args.flags.port as number | undefined;
  if (port !== undefined && (port < 0 || port > 65535)) throw new UsageError(`flag '--port' expects an integer 0..65535, got '${port}'\n${USAGE}`);
  const host = (args.flags.host as string | undefined) ?? '127.0.0.1';
  if (args.positional.length === 0) throw new UsageError(`expected at least one episode file or directory\n${USAGE}`);
  let files: string[];
  try {
    files = expandEpisodePaths(args.positional);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const episodes: ViewerEpisode[] = [];
  for (const f of files) {
    let ep: ViewerEpisode;
    try {
      ep = loadEpisodeFile(f);
    } catch (err) {
      throw new UsageError(`cannot show ${f}: ${(err as Error).message}`);
    }
    if (ep.damage) console.error(`evovla view: ${f}: ${ep.damage} (showing its ${ep.steps.length} intact steps)`);
    episodes.push(ep);
  }
  const server = await startViewerServer({ host, port, episodes, log: (l) => console.error(l) });
  console.log(`evovla view: ${episodes.length} episode(s) at ${server.url}`);
  console.log('press Ctrl+C to stop');
  await waitForInterrupt();
  await server.close();
  return 0;
}
