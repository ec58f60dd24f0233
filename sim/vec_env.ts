/**
 * N envs stepped together, in this thread or spread over worker_threads. Each env is an ordinary
 * SimEnv; a worker owns a contiguous slice of them and steps them in order, so with one worker the
 * results are exactly those of N separate envs. Episodes are not auto-reset: call reset() again.
 */
import { Worker } from 'node:worker_threads';
import { createEnv, type EnvConfig, type SimEnv } from './env.ts';
import type { ResetResult, StepResult } from './types.ts';
import type { Task } from './task.ts';

export interface VecEnvOptions {
  /**
   * Module (URL or absolute path) exporting `getTask(id)`, e.g. the tasks registry. Passed by
   * name because worker threads must load it themselves; sim/ never imports tasks/ directly.
   */
  taskModule: string;
  taskId: string;
  numEnvs: number;
  /** 0 (default): step in this thread. k > 0: spread the envs over k worker threads. */
  workers?: number;
  config?: Partial<EnvConfig>;
}

/** Step results of all envs plus their state hashes. */
export interface VecStep {
  results: StepResult[];
  hashes: string[];
}

export class VecEnv {
  readonly numEnvs: number;
  private envs: SimEnv[] = [];
  private pool: Array<{ worker: Worker; from: number; to: number }> = [];
  private nextId = 0;
  private pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(numEnvs: number) {
    this.numEnvs = numEnvs;
  }

  static async create(opts: VecEnvOptions): Promise<VecEnv> {
    if (!Number.isInteger(opts.numEnvs) || opts.numEnvs < 1) throw new RangeError(`numEnvs: expected a positive integer, got ${opts.numEnvs}`);
    const workers = opts.workers ?? 0;
    if (!Number.isInteger(workers) || workers < 0) throw new RangeError(`workers: expected a non-negative integer, got ${workers}`);
    const v = new VecEnv(opts.numEnvs);
    const task = await loadTask(opts.taskModule, opts.taskId);
    if (workers === 0) {
      for (let i = 0; i < opts.numEnvs; i++) v.envs.push(await createEnv(task, opts.config));
      return v;
    }
    const k = Math.min(workers, opts.numEnvs);
    for (let w = 0; w < k; w++) {
      const from = Math.floor((w * opts.numEnvs) / k);
      const to = Math.floor(((w + 1) * opts.numEnvs) / k);
      const worker = new Worker(new URL('./vec_worker.mjs', import.meta.url), {
        workerData: { taskModule: opts.taskModule, taskId: task.id, config: opts.config ?? {}, count: to - from },
      });
      worker.on('message', (m: { id: number; ok: boolean; value?: unknown; error?: string }) => {
        const p = v.pending.get(m.id);
        if (!p) return;
        v.pending.delete(m.id);
        if (m.ok) p.resolve(m.value);
        else p.reject(new Error(m.error));
      });
      worker.on('error', (e) => {
        for (const p of v.pending.values()) p.reject(e);
        v.pending.clear();
      });
      v.pool.push({ worker, from, to });
    }
    await Promise.all(v.pool.map((p) => v.call(p.worker, 'ready', null)));
    return v;
  }

  private call(worker: Worker, op: string, arg: unknown): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, op, arg });
    });
  }

  /** Reset every env; env i gets seeds[i]. */
  async reset(seeds: number[]): Promise<ResetResult[]> {
    if (seeds.length !== this.numEnvs) throw new RangeError(`reset: expected ${this.numEnvs} seeds, got ${seeds.length}`);
    if (this.pool.length === 0) return this.envs.map((e, i) => e.reset({ seed: seeds[i] }));
    const parts = await Promise.all(this.pool.map((p) => this.call(p.worker, 'reset', seeds.slice(p.from, p.to)) as Promise<ResetResult[]>));
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

  async close(): Promise<void> {
    for (const e of this.envs) e.free();
    this.envs = [];
    await Promise.all(this.pool.map((p) => p.worker.terminate()));
    this.pool = [];
  }
}

/** Import `module` and look up task `id` through its `getTask` export. */
export async function loadTask(module: string, id: string): Promise<Task> {
  const m = (await import(module)) as { getTask?: (id: string) => Task };
  if (typeof m.getTask !== 'function') throw new Error(`taskModule '${module}' does not export getTask(id)`);
  return m.getTask(id);
}
