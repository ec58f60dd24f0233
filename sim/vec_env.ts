/**
 * N envs stepped together, in this thread or spread over workers. Each env is an ordinary SimEnv;
 * a worker owns a contiguous slice of them and steps them in order, so with one worker the results
 * are exactly those of N separate envs. Episodes are not auto-reset: call reset() or resetEnvs() again.
 *
 * Workers are worker_threads by default, or child processes (`workerKind: 'process'`). An env
 * setup module (`envSetupModule`) runs on every env right after it is created, in whichever
 * thread or process owns it; that is how envs in workers get camera images
 * (sim/render/vec_cameras.ts, which asks for processes: the native GL module loads in one thread
 * per process only) without sim/ importing three.js.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { parseEnvConfig } from './config.ts';
import { createEnv, type EnvConfig, type SimEnv } from './env.ts';
import type { ResetResult, StepResult } from './types.ts';
import type { Task } from './task.ts';

/** Where workers run: worker_threads of this process, or child processes (node, with IPC). */
export type WorkerKind = 'thread' | 'process';

export interface VecEnvOptions {
  /**
   * Module (URL or absolute path) exporting `getTask(id)`, e.g. the tasks registry. Passed by
   * name because workers must load it themselves; sim/ never imports tasks/ directly.
   */
  taskModule: string;
  taskId: string;
  numEnvs: number;
  /** 0 (default): step in this thread. k > 0: spread the envs over k workers. */
  workers?: number;
  /**
   * 'thread' (worker_threads) or 'process' (child processes: each loads its own native modules).
   * Default: the setup module's `workerKind` export, else 'thread'.
   */
  workerKind?: WorkerKind;
  config?: Partial<EnvConfig>;
  /**
   * Module (URL or absolute path) exporting `setupEnv(env, options)` (see EnvSetupModule), called
   * for every env right after createEnv, where the env lives: this thread with 0 workers, each
   * worker otherwise, so both give the same results. Passed by name for the same reason as
   * taskModule. E.g. sim/render/vec_cameras.ts (`ENV_CAMERAS_MODULE`) attaches cameras.
   */
  envSetupModule?: string;
  /** Second argument of `setupEnv` and first of `prepareMain`; sent to workers, so plain data. */
  envSetupOptions?: unknown;
}

/** What `prepareMain` learns about the VecEnv being built. */
export interface EnvSetupContext {
  /** The validated env config every env gets. */
  config: Readonly<EnvConfig>;
  /** Workers about to start (0: the envs live in this thread). */
  workers: number;
  workerKind: WorkerKind;
}

/** Undoes what setupEnv did (e.g. frees a GL context); called by close() before the env is freed. */
export type EnvTeardown = () => void;

/** The exports an `envSetupModule` must (setupEnv) and may (prepareMain, workerKind) have. */
export interface EnvSetupModule {
  /** Prepares one env (e.g. attaches an observation hook); may return a teardown. */
  setupEnv(env: SimEnv, options: unknown): void | EnvTeardown | Promise<void | EnvTeardown>;
  /**
   * Called once in the main thread before any env or worker is created: for work a worker cannot
   * do for itself, such as starting an X display (a worker thread's process.env is a copy, so a
   * DISPLAY set there never reaches native code).
   */
  prepareMain?(options: unknown, context: EnvSetupContext): void | Promise<void>;
  /** The worker kind the module needs when the VecEnv options do not name one. */
  workerKind?: WorkerKind;
}

interface Reply {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

/** One worker, thread or process, behind the same small interface. */
interface Remote {
  /** True once the worker ended or failed: calls to it are refused at once. */
  readonly gone: boolean;
  post(message: unknown): void;
  /** Ends the worker (after its envs were closed, or when it is already gone). */
  stop(): Promise<void>;
}

function startWorker(kind: WorkerKind, onReply: (m: Reply) => void, onFailure: (e: Error) => void): Remote {
  const entry = new URL('./vec_worker.mjs', import.meta.url);
  let gone = false;
  const onGone = (e: Error): void => {
    if (gone) return;
    gone = true;
    onFailure(e);
  };
  if (kind === 'thread') {
    const worker = new Worker(entry);
    worker.on('message', onReply);
    worker.on('error', onGone);
    worker.on('exit', (code) => onGone(new Error(`VecEnv worker thread exited (code ${code})`)));
    return {
      get gone() {
        return gone;
      },
      post: (m) => worker.postMessage(m),
      stop: async () => void (await worker.terminate()),
    };
  }
  // execArgv []: the entry registers its own TypeScript loader; the parent's flags (a test
  // runner's, say) are not for it. 'advanced' serialization keeps typed arrays typed.
  const child: ChildProcess = fork(entry, [], { execArgv: [], serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.on('message', (m) => onReply(m as Reply));
  child.on('error', onGone);
  child.on('exit', (code, signal) => onGone(new Error(`VecEnv worker process exited (code ${code}, signal ${signal})`)));
  return {
    get gone() {
      return gone;
    },
    post: (m) => child.send(m as object),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        // It exits by itself once the channel is gone; SIGKILL if it does not within 5 s.
        if (child.connected) child.disconnect();
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** Step results of all envs plus their state hashes. */
export interface VecStep {
  results: StepResult[];
  hashes: string[];
}

export class VecEnv {
  readonly numEnvs: number;
  private envs: SimEnv[] = [];
  private teardowns: EnvTeardown[] = [];
  private pool: Array<{ worker: Remote; from: number; to: number }> = [];
  private nextId = 0;
  private closing = false;
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(numEnvs: number) {
    this.numEnvs = numEnvs;
  }

  static async create(opts: VecEnvOptions): Promise<VecEnv> {
    if (!Number.isInteger(opts.numEnvs) || opts.numEnvs < 1) throw new RangeError(`numEnvs: expected a positive integer, got ${opts.numEnvs}`);
    const workers = opts.workers ?? 0;
    if (!Number.isInteger(workers) || workers < 0) throw new RangeError(`workers: expected a non-negative integer, got ${workers}`);
    if (opts.workerKind !== undefined && opts.workerKind !== 'thread' && opts.workerKind !== 'process') {
      throw new RangeError(`workerKind: expected 'thread' or 'process', got ${JSON.stringify(opts.workerKind)}`);
    }
    const v = new VecEnv(opts.numEnvs);
    const task = await loadTask(opts.taskModule, opts.taskId);
    const config = opts.config ?? {};
    const k = Math.min(workers, opts.numEnvs);
    const setup = opts.envSetupModule === undefined ? null : await loadEnvSetup(opts.envSetupModule);
    const workerKind = opts.workerKind ?? setup?.workerKind ?? 'thread';
    if (setup?.prepareMain) await setup.prepareMain(opts.envSetupOptions, { config: parseEnvConfig(config), workers: k, workerKind });
    try {
      if (k === 0) {
        await createEnvs(task, config, opts.numEnvs, setup, opts.envSetupOptions, v.envs, v.teardowns);
        return v;
      }
      for (let w = 0; w < k; w++) {
        const from = Math.floor((w * opts.numEnvs) / k);
        const to = Math.floor(((w + 1) * opts.numEnvs) / k);
        const worker = startWorker(
          workerKind,
          (m) => {
            const p = v.pending.get(m.id);
            if (!p) return;
            v.pending.delete(m.id);
            if (m.ok) p.resolve(m.value);
            else p.reject(new Error(m.error));
          },
          (e) => {
            if (v.closing) return;
            for (const p of v.pending.values()) p.reject(e);
            v.pending.clear();
          },
        );
        v.pool.push({ worker, from, to });
      }
      const init = (p: { from: number; to: number }) => ({
        taskModule: opts.taskModule,
        taskId: task.id,
        config,
        count: p.to - p.from,
        envSetupModule: opts.envSetupModule ?? null,
        envSetupOptions: opts.envSetupOptions,
      });
      await Promise.all(v.pool.map((p) => v.call(p.worker, 'init', init(p))));
      return v;
    } catch (e) {
      await v.close();
      throw e;
    }
  }

  private call(worker: Remote, op: string, arg: unknown): Promise<unknown> {
    if (worker.gone) return Promise.reject(new Error(`VecEnv worker is gone (${op} refused)`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.post({ id, op, arg });
    });
  }

  /** Reset every env; env i gets seeds[i]. */
  async reset(seeds: number[]): Promise<ResetResult[]> {
    if (seeds.length !== this.numEnvs) throw new RangeError(`reset: expected ${this.numEnvs} seeds, got ${seeds.length}`);
    if (this.pool.length === 0) return this.envs.map((e, i) => e.reset({ seed: seeds[i] }));
    const parts = await Promise.all(this.pool.map((p) => this.call(p.worker, 'reset', seeds.slice(p.from, p.to)) as Promise<ResetResult[]>));
    return parts.flat();
  }

  /**
   * Resets only some envs: env i is reset with seeds[i] when that is a number and left as it is
   * when null; returns its reset result, or null for the envs left alone. This is what rollout code
   * needs to start a new episode in the envs that just finished (VecEnv never resets by itself).
   */
  async resetEnvs(seeds: ReadonlyArray<number | null>): Promise<Array<ResetResult | null>> {
    if (seeds.length !== this.numEnvs) throw new RangeError(`resetEnvs: expected ${this.numEnvs} seeds (number or null), got ${seeds.length}`);
    if (this.pool.length === 0) return this.envs.map((e, i) => (seeds[i] === null ? null : e.reset({ seed: seeds[i]! })));
    const parts = await Promise.all(
      this.pool.map((p) => {
        const mine = seeds.slice(p.from, p.to);
        // Workers with nothing to reset are not asked.
        if (mine.every((s) => s === null)) return Promise.resolve(mine.map(() => null));
        return this.call(p.worker, 'resetEnvs', mine) as Promise<Array<ResetResult | null>>;
      }),
    );
    return parts.flat();
  }

  /** Step every env with its action; returns the results and each env's state hash. */
  async step(actions: number[][]): Promise<VecStep> {
    if (actions.length !== this.numEnvs) throw new RangeError(`step: expected ${this.numEnvs} actions, got ${actions.length}`);
    if (this.pool.length === 0) {
      const results = this.envs.map((e, i) => e.step(actions[i]));
      return { results, hashes: this.envs.map((e) => e.stateHash()) };
    }
    const parts = await Promise.all(this.pool.map((p) => this.call(p.worker, 'step', actions.slice(p.from, p.to)) as Promise<VecStep>));
    return { results: parts.flatMap((x) => x.results), hashes: parts.flatMap((x) => x.hashes) };
  }

  /** Runs the setup teardowns, frees every env and stops the workers. */
  async close(): Promise<void> {
    const teardowns = this.teardowns;
    const envs = this.envs;
    this.teardowns = [];
    this.envs = [];
    for (const t of teardowns) t();
    for (const e of envs) e.free();
    const pool = this.pool;
    this.pool = [];
    // Let each worker tear its envs down (e.g. free GL contexts) before it is stopped. A worker
    // that died answers nothing (its pending calls were rejected when it went).
    await Promise.all(pool.map((p) => this.call(p.worker, 'close', null).catch(() => undefined)));
    this.closing = true;
    await Promise.all(pool.map((p) => p.worker.stop()));
    this.closing = false;
  }
}

/**
 * Creates `count` envs of `task`, running `setup.setupEnv` on each right after it is created.
 * Shared by the serial path and the workers so both build envs the same way. Envs and teardowns
 * are pushed as they are made, so a caller can clean up after a failure part way.
 */
export async function createEnvs(
  task: Task,
  config: Partial<EnvConfig>,
  count: number,
  setup: EnvSetupModule | null,
  setupOptions: unknown,
  envs: SimEnv[],
  teardowns: EnvTeardown[],
): Promise<void> {
  for (let i = 0; i < count; i++) {
    const env = await createEnv(task, config);
    envs.push(env);
    const teardown = await setup?.setupEnv(env, setupOptions);
    if (teardown !== undefined && typeof teardown !== 'function') {
      throw new TypeError(`setupEnv must return nothing or a teardown function, got ${typeof teardown}`);
    }
    if (teardown) teardowns.push(teardown);
  }
}

/** Import an env setup module and check its exports. */
export async function loadEnvSetup(module: string): Promise<EnvSetupModule> {
  const m = (await import(module)) as Partial<EnvSetupModule>;
  if (typeof m.setupEnv !== 'function') throw new Error(`envSetupModule '${module}' does not export setupEnv(env, options)`);
  if (m.prepareMain !== undefined && typeof m.prepareMain !== 'function') {
    throw new Error(`envSetupModule '${module}': prepareMain must be a function (options, context), got ${typeof m.prepareMain}`);
  }
  return m as EnvSetupModule;
}

/** Import `module` and look up task `id` through its `getTask` export. */
export async function loadTask(module: string, id: string): Promise<Task> {
  const m = (await import(module)) as { getTask?: (id: string) => Task };
  if (typeof m.getTask !== 'function') throw new Error(`taskModule '${module}' does not export getTask(id)`);
  return m.getTask(id);
}
