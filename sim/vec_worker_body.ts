/**
 * VecEnv worker body, in a worker thread or a child process: on 'init' it creates `count` envs of
 * one task (running the env setup module on each), then serves reset/step/close requests in order.
 */
import { parentPort } from 'node:worker_threads';
import type { SimEnv } from './env.ts';
import { createEnvs, loadEnvSetup, loadTask, type EnvTeardown } from './vec_env.ts';

interface Init {
  taskModule: string;
  taskId: string;
  config: object;
  count: number;
  envSetupModule: string | null;
  envSetupOptions: unknown;
}

type Request = { id: number; op: string; arg: unknown };

const send: (m: unknown) => void = parentPort ? (m) => parentPort!.postMessage(m) : (m) => process.send!(m);
const onMessage = (f: (m: Request) => void): void => {
  if (parentPort) parentPort.on('message', f);
  else process.on('message', (m) => f(m as Request));
};
// A worker process ends when its parent disconnects (close(), or the parent died); the loader
// tsx registers would otherwise keep it alive. Exit hooks still run (gl frees its contexts).
if (!parentPort) process.on('disconnect', () => process.exit(0));

const envs: SimEnv[] = [];
const teardowns: EnvTeardown[] = [];

async function init(a: Init): Promise<void> {
  const task = await loadTask(a.taskModule, a.taskId);
  const setup = a.envSetupModule === null ? null : await loadEnvSetup(a.envSetupModule);
  await createEnvs(task, a.config, a.count, setup, a.envSetupOptions, envs, teardowns);
}

function reply(id: number, run: () => unknown): void {
  try {
    send({ id, ok: true, value: run() ?? null });
  } catch (e) {
    send({ id, ok: false, error: e instanceof Error ? e.message : String(e) });
  }
}

onMessage((m) => {
  if (m.op === 'init') {
    init(m.arg as Init).then(
      () => send({ id: m.id, ok: true, value: null }),
      (e: unknown) => send({ id: m.id, ok: false, error: e instanceof Error ? e.message : String(e) }),
    );
    return;
  }
  reply(m.id, () => {
    if (m.op === 'reset') return envs.map((e, i) => e.reset({ seed: (m.arg as number[])[i] }));
    if (m.op === 'resetEnvs') {
      const seeds = m.arg as Array<number | null>;
      return envs.map((e, i) => (seeds[i] === null ? null : e.reset({ seed: seeds[i]! })));
    }
    if (m.op === 'step') {
      const actions = m.arg as number[][];
      const results = envs.map((e, i) => e.step(actions[i]));
      return { results, hashes: envs.map((e) => e.stateHash()) };
    }
    if (m.op === 'close') {
      for (const t of teardowns.splice(0)) t();
      for (const e of envs.splice(0)) e.free();
      return null;
    }
    throw new Error(`unknown op '${m.op}'`);
  });
});
