/**
 * Builds the browser app (viewer/app/main.ts, three.js, msgpackr, uPlot) into one script with esbuild,
 * from the installed npm packages: nothing is fetched at run time. Built once per process (about
 * a second) and kept in memory; a copy is written to viewer/public/bundle.js (git-ignored) for
 * people who want to look at it.
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { makeDirectory } from '../sim/files.ts';

const entry = fileURLToPath(new URL('./app/main.ts', import.meta.url));
const outFile = fileURLToPath(new URL('./public/bundle.js', import.meta.url));

let cached: Promise<string> | null = null;

/** The app's JavaScript; the first call builds it, later calls share the result. */
export function buildViewerBundle(): Promise<string> {
  cached ??= build().catch((err: unknown) => {
    cached = null;
    throw err;
  });
  return cached;
}

async function build(): Promise<string> {
  let esbuild: typeof import('esbuild');
  try {
    esbuild = await import('esbuild');
  } catch (err) {
    throw new Error(`the viewer needs the npm package 'esbuild' to build its page (npm install): ${(err as Error).message}`);
  }
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    write: false,
    legalComments: 'none',
    // Stylesheets of bundled packages (uPlot's) come in as text the page inserts.
    loader: { '.css': 'text' },
    logLevel: 'silent',
  });
  const js = result.outputFiles[0].text;
  try {
    makeDirectory(fileURLToPath(new URL('./public/', import.meta.url)));
    fs.writeFileSync(outFile, js);
  } catch {
    // A read-only install still serves the in-memory copy; the file is only a convenience.
  }
  return js;
}
