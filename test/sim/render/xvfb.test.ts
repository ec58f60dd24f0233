/**
 * The private Xvfb: started when DISPLAY is unset, gone when the process ends (normally or by a
 * signal), and a clear install message when it cannot start. Each case runs in a child process,
 * because a display lives as long as its process.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const child = fileURLToPath(new URL('./fixtures/xvfb-child.ts', import.meta.url));
const parentScript = fileURLToPath(new URL('./fixtures/worker-parent.ts', import.meta.url));

function startChild(mode: string, script = child): { proc: ReturnType<typeof spawn>; firstLine: Promise<string> } {
  const env = { ...process.env };
  delete env.DISPLAY;
  const proc = spawn(process.execPath, ['--import', 'tsx', script, mode], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const firstLine = new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    proc.on('exit', (code) => reject(new Error(`child exited (${code}) before printing; stderr: ${err}`)));
  });
  return { proc, firstLine };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitGone(pid: number): Promise<boolean> {
  // A zombie still answers kill(0) until reaped, so also read its state from /proc.
  for (let i = 0; i < 100; i++) {
    if (!alive(pid)) return true;
    try {
      const { readFileSync } = await import('node:fs');
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (/^\d+ \(.*\) Z/.test(stat)) return true;
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

describe('private Xvfb', () => {
  for (const mode of ['exit', 'signal'] as const) {
    it(`starts when DISPLAY is unset and is gone after the process ends (${mode})`, async () => {
      const { proc, firstLine } = startChild(mode);
      const info = JSON.parse(await firstLine) as { pid: number; display: string; pixels: number };
      assert.equal(info.pixels, 16 * 16 * 3);
      assert.match(info.display, /^:\d+$/);
      assert.ok(Number.isInteger(info.pid) && alive(info.pid), `Xvfb pid ${info.pid} should be running`);
      if (mode === 'signal') proc.kill('SIGTERM');
      const [code, signal] = (await once(proc, 'exit')) as [number | null, string | null];
      if (mode === 'exit') assert.equal(code, 0);
      else assert.equal(signal, 'SIGTERM');
      assert.ok(await waitGone(info.pid), `Xvfb ${info.pid} still running after its process ended`);
    });
  }

  it('renders in a worker thread once the main thread has started the display', async () => {
    const { firstLine } = startChild('main-first', parentScript);
    const msg = JSON.parse(await firstLine) as { ok: boolean; id?: number; labels?: string[]; error?: string };
    assert.ok(msg.ok, msg.error);
    assert.equal(msg.labels![msg.id!], 'ground');
  });

  it('tells a worker that cannot reach a display to start it in the main thread', async () => {
    const { firstLine } = startChild('worker-only', parentScript);
    const msg = JSON.parse(await firstLine) as { ok: boolean; error?: string };
    assert.equal(msg.ok, false);
    assert.match(msg.error!, /RenderUnavailableError: .*worker thread.*ensureDisplay\(\).*main thread/);
  });

  it('says what to install when Xvfb is missing', async () => {
    const { firstLine } = startChild('missing');
    const line = await firstLine;
    assert.match(line, /^RenderUnavailableError: /);
    assert.match(line, /apt-get install xvfb/);
    assert.match(line, /DISPLAY/);
  });
});
