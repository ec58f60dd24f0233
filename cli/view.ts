/**
 * `evovla view [--port N] [--host H] FILES...`: replay episode files in the browser. Serves a page
 * on 127.0.0.1 (a random token in the printed URL) with the 3D scene, the camera images, the stage
 * timeline and the reward terms; runs until interrupted. Given a run folder (runs/NAME), it shows
 * the run's learning curves and config and replays its eval episodes, following the run while
 * training writes it (layout in viewer/runs.ts).
 */
import { expandEpisodePaths, openEpisodeFiles, viewerStepCount, type ViewerEpisode } from '../viewer/episodes.ts';
import { RunWatcher, isRunDir } from '../viewer/runs.ts';
import { startViewerServer, waitForInterrupt } from '../viewer/server.ts';
import { parseFlags } from './args.ts';
import { UsageError } from './main.ts';

const USAGE = `usage: evovla view [--port N] [--host H] FILES_OR_DIRS...
  FILES_OR_DIRS  episode files (.evep), directories of them, or one run folder (runs/NAME: config.yaml,
                 metrics.jsonl, eval/) whose curves, config and eval episodes are shown
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
  const runDirs = args.positional.filter(isRunDir);
  if (runDirs.length > 1) throw new UsageError(`one run folder at a time, got ${runDirs.join(', ')}\n${USAGE}`);
  const run = runDirs.length ? new RunWatcher(runDirs[0]) : undefined;
  const episodes: ViewerEpisode[] = run ? run.load() : [];
  let files: string[];
  try {
    files = expandEpisodePaths(args.positional.filter((p) => !runDirs.includes(p)));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  // Every readable file is shown (a damaged one with its intact prefix); the others are listed
  // with what is wrong with them, so one bad file does not hide a folder of good ones.
  const opened = openEpisodeFiles(files);
  const { unreadable } = opened;
  episodes.push(...opened.episodes);
  for (const note of run?.summary().notes ?? []) console.error(`evovla view: run ${run!.name}: ${note}`);
  for (const ep of episodes) {
    if (ep.partial) console.error(`evovla view: ${ep.name}: partial recording, showing its ${viewerStepCount(ep)} intact steps`);
    else if (ep.damage) console.error(`evovla view: ${ep.name}: ${ep.damage} (showing its ${viewerStepCount(ep)} intact steps)`);
  }
  for (const u of unreadable) console.error(`evovla view: cannot show ${u.file}: ${u.reason}`);
  // A run is worth showing without episodes (its curves and config); files alone are not.
  if (!run && episodes.length === 0) {
    console.error(`evovla view: none of the ${files.length} file(s) can be shown`);
    return 1;
  }
  const server = await startViewerServer({ host, port, episodes, unreadable, run, log: (l) => console.error(l) });
  const runPart = run ? `run ${run.name} (${run.summary().metrics.length} metric rows), ` : '';
  console.log(`evovla view: ${runPart}${episodes.length} episode(s)${unreadable.length ? ` (${unreadable.length} file(s) could not be shown)` : ''} at ${server.url}`);
  console.log('press Ctrl+C to stop');
  await waitForInterrupt();
  await server.close();
  return 0;
}
