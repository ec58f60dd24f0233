/**
 * `evovla doctor`: what this machine can run. Prints Node and onnxruntime-node versions, and for
 * each execution provider whether a session loads and runs a small policy (and why not), whether
 * nats-server is installed, and (with --nats URL) whether a NATS server with JetStream answers.
 */
import { createRequire } from 'node:module';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { createSession, cudaStatus, type ExecutionProvider } from '../nn/runtime.ts';
import { tinyPolicyBytes } from '../robot/policies/tiny_mlp.ts';
import { natsServerVersion } from '../scale/server.ts';
import { parseFlags } from './args.ts';
import { UsageError } from './main.ts';

const USAGE = `usage: evovla doctor [--nats URL] [--json]
  --nats   also check that a NATS server with JetStream answers at this URL (default: $NATS_URL when set)
  --json   print the report as one JSON object`;

/** One line of the report. */
export interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

/** Tries to create a session on `ep` and run a tiny policy on it. */
export async function checkProvider(ep: ExecutionProvider): Promise<Check> {
  const name = `onnxruntime ${ep}`;
  if (ep === 'cuda') {
    const s = cudaStatus();
    if (!s.available) return { name, ok: false, detail: `${s.reason}; on a GPU machine run 'npm run setup:cuda' (docs/scale.md)` };
  }
  try {
    const session = await createSession(tinyPolicyBytes({ hidden: [16] }), { executionProvider: ep, threads: 1 });
    try {
      const out = await session.run({ proprio: { data: new Float32Array(7), shape: [1, 7] } }, ['action']);
      if (out.action.data.length !== 7) return { name, ok: false, detail: `a test policy ran but returned ${out.action.data.length} values, expected 7` };
    } finally {
      await session.dispose();
    }
    return { name, ok: true, detail: 'loads and runs a test policy' };
  } catch (err) {
    return { name, ok: false, detail: (err as Error).message.split('\n')[0] };
  }
}

async function checkNats(url: string): Promise<Check> {
  const name = `NATS ${url}`;
  try {
    const nc = await connect({ servers: url, timeout: 2000, reconnect: false });
    try {
      const info = await (await jetstreamManager(nc)).getAccountInfo();
      return { name, ok: true, detail: `server ${nc.info?.version ?? '?'}, JetStream on (${info.streams} streams)` };
    } catch (err) {
      return { name, ok: false, detail: `connected, but JetStream does not answer: ${(err as Error).message} (start nats-server with -js)` };
    } finally {
      await nc.close();
    }
  } catch (err) {
    return { name, ok: false, detail: `cannot connect: ${(err as Error).message}` };
  }
}

export async function run(argv: string[]): Promise<number> {
  const a = parseFlags(argv, { nats: 'string', json: 'bool', help: 'bool' }, USAGE);
  if (a.flags.help) {
    console.log(USAGE);
    return 0;
  }
  if (a.positional.length) throw new UsageError(`unexpected argument '${a.positional[0]}'\n${USAGE}`);
  const require = createRequire(import.meta.url);
  const ortVersion = (require('onnxruntime-node/package.json') as { version: string }).version;
  const checks: Check[] = [
    { name: 'node', ok: true, detail: process.version },
    { name: 'onnxruntime-node', ok: true, detail: ortVersion },
    await checkProvider('cpu'),
    await checkProvider('cuda'),
  ];
  const nats = natsServerVersion();
  checks.push({ name: 'nats-server', ok: nats !== null, detail: nats ?? 'not on PATH (needed only for local distributed runs and their tests: apt-get install nats-server)' });
  const url = (a.flags.nats as string | undefined) ?? process.env.NATS_URL;
  if (url) checks.push(await checkNats(url));
  if (a.flags.json) console.log(JSON.stringify({ checks }));
  else for (const c of checks) console.log(`${c.ok ? 'yes' : 'no '}  ${c.name.padEnd(18)} ${c.detail}`);
  // The CPU provider is what everything needs; the rest are optional.
  return checks.find((c) => c.name === 'onnxruntime cpu')?.ok ? 0 : 1;
}
