/**
 * Starts a private nats-server (JetStream on, storage in a given folder, loopback only) for tests,
 * benchmarks and single-machine runs. A cluster runs its own NATS (see docs/scale.md); this is
 * only the local convenience. Needs the `nats-server` binary on PATH (Debian: apt install nats-server).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, connect as netConnect } from 'node:net';

/** A running nats-server child process. */
export interface LocalNatsServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** Stops it (SIGTERM, then SIGKILL after 5 s). Safe to call twice. */
  stop(): Promise<void>;
}

/** A loopback TCP port that was free a moment ago. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** The nats-server version string, or null when the binary is not on PATH. */
export function natsServerVersion(binary = 'nats-server'): string | null {
  const r = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return null;
  return r.stdout.trim();
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Starts `nats-server -js` on 127.0.0.1:`port` (a free one when omitted) with its JetStream store
 * in `storeDir`, and waits until it accepts connections (at most `timeoutMs`).
 */
export async function startNatsServer(opts: { storeDir: string; port?: number; binary?: string; timeoutMs?: number }): Promise<LocalNatsServer> {
  const binary = opts.binary ?? 'nats-server';
  if (natsServerVersion(binary) === null) {
    throw new Error(`'${binary}' was not found on PATH; install it (Debian: apt-get install nats-server) or pass the binary's path`);
  }
  const port = opts.port ?? (await freePort());
  const child: ChildProcess = spawn(binary, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', opts.storeDir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nats-server exited (code ${child.exitCode}) before accepting connections on port ${port}: ${stderr.trim()}`);
    if (await portOpen(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`nats-server did not accept connections on 127.0.0.1:${port} within ${opts.timeoutMs ?? 10_000} ms: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  let stopped = false;
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir: opts.storeDir,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}
