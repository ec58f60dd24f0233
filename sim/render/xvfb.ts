/**
 * A private X server for headless WebGL. `gl` (headless-gl) renders through ANGLE on an X
 * display; on a machine without one (CI, servers) we start Xvfb on demand, once per process.
 *
 * Lifetime: the server lives as long as this process. It is stopped on process exit and on
 * SIGINT/SIGTERM/SIGHUP when nobody else handles them. It is started with `-terminate`, so it also
 * exits by itself when its last client (our GL context) disconnects — which covers a process
 * killed with SIGKILL. It is never stopped earlier: Xlib ends the process when its display
 * disappears under a live GL context.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { isMainThread } from 'node:worker_threads';

/** Why headless rendering cannot start, with what to install. */
export class RenderUnavailableError extends Error {
  override name = 'RenderUnavailableError';
}

export const XVFB_INSTALL_HINT = 'install Xvfb (Debian/Ubuntu: apt-get install xvfb xauth) or run with DISPLAY set to an X server';

let started: Promise<string> | null = null;
let child: ChildProcess | null = null;

/** The pid of the Xvfb this process started, or null (none started, or DISPLAY was already set). */
export function privateXvfbPid(): number | null {
  return child?.pid ?? null;
}

/**
 * Makes sure an X display is available: returns `process.env.DISPLAY` when set, otherwise starts a
 * private Xvfb on a free display number (Xvfb picks it: -displayfd) and sets DISPLAY to it.
 * Idempotent; concurrent calls share one server. Worker threads that render need the main thread
 * to call this before they start (they inherit DISPLAY, but cannot set it).
 */
export function ensureDisplay(options: { timeoutMs?: number; xvfbPath?: string } = {}): Promise<string> {
  const existing = process.env.DISPLAY;
  if (existing && !started) return Promise.resolve(existing);
  if (!isMainThread) {
    // A worker's process.env is its own copy: a DISPLAY set here never reaches the native GL code.
    return Promise.reject(
      new RenderUnavailableError(
        'DISPLAY is unset in a worker thread, and a worker cannot set it for native code: call ensureDisplay() (sim/render/xvfb.ts) in the main thread before starting workers',
      ),
    );
  }
  if (!started) {
    started = startXvfb(options.xvfbPath ?? 'Xvfb', options.timeoutMs ?? 10_000);
    // A failed start may be retried (e.g. after installing Xvfb).
    started.catch(() => {
      started = null;
    });
  }
  return started;
}

function startXvfb(path: string, timeoutMs: number): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    // fd 3 is where Xvfb writes the display number once it accepts connections.
    const proc = spawn(path, ['-displayfd', '3', '-screen', '0', '64x64x24', '-nolisten', 'tcp', '-terminate'], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let out = '';
    let settled = false;
    let ownDisplay = '';
    const timer = setTimeout(() => fail(new RenderUnavailableError(`Xvfb did not report a display within ${timeoutMs} ms (stderr: ${stderr.trim().slice(-500) || 'empty'})`)), timeoutMs);
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      proc.kill('SIGKILL');
      reject(err);
    };
    proc.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    proc.on('error', (err: NodeJS.ErrnoException) => {
      fail(
        new RenderUnavailableError(
          err.code === 'ENOENT'
            ? `headless rendering needs an X display: DISPLAY is unset and '${path}' was not found; ${XVFB_INSTALL_HINT}`
            : `could not start ${path}: ${err.message}`,
        ),
      );
    });
    proc.on('exit', (code, signal) => {
      if (child === proc) {
        // It ended after start-up (-terminate: our last GL context went away). Forget it, so the
        // next ensureDisplay() starts a fresh one instead of handing out a dead display.
        child = null;
        started = null;
        if (process.env.DISPLAY === ownDisplay) delete process.env.DISPLAY;
      }
      if (!settled) fail(new RenderUnavailableError(`Xvfb exited before it was ready (code ${code}, signal ${signal}): ${stderr.trim().slice(-500)}`));
    });
    const fd3 = proc.stdio[3] as NodeJS.ReadableStream | null;
    fd3?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl < 0 || settled) return;
      const display = out.slice(0, nl).trim();
      if (!/^\d+$/.test(display)) {
        fail(new RenderUnavailableError(`Xvfb reported an unexpected display ${JSON.stringify(display)}`));
        return;
      }
      settled = true;
      clearTimeout(timer);
      child = proc;
      // Do not keep the event loop alive for the server or its pipes.
      proc.unref();
      (proc.stderr as unknown as { unref?: () => void } | null)?.unref?.();
      (fd3 as unknown as { unref?: () => void }).unref?.();
      installCleanup();
      ownDisplay = `:${display}`;
      process.env.DISPLAY = ownDisplay;
      resolve(ownDisplay);
    });
  });
}

let cleanupInstalled = false;

function stopNow(): void {
  if (child && child.exitCode === null) child.kill('SIGTERM');
  child = null;
}

function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', stopNow);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      // Someone else handles this signal (e.g. a CLI that finishes writing a file first): leave
      // the server to the 'exit' hook so their GL calls keep working until then.
      if (process.listenerCount(signal) > 1) return;
      stopNow();
      process.removeListener(signal, onSignal);
      // Re-raise so the process ends with the usual signal status.
      process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}
