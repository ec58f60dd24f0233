/**
 * Shared pieces of the distributed-rollout tests: a private nats-server per test file, `evovla`
 * child processes that no test outlives, and a small but real learner update (one AdamW step of weighted behaviour cloning on the segments' actions,
 * re-exported as an ONNX policy that follows the deploy contract).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import { MLP } from '../../nn/layers.ts';
import { mse } from '../../nn/losses.ts';
import { exportInference, type ModelDefinition } from '../../nn/model.ts';
import { add, mul, tanh } from '../../nn/ops.ts';
import { ParamSet } from '../../nn/params.ts';
import { Trainer } from '../../nn/trainer.ts';
import type { UpdateFn } from '../../scale/learner.ts';
import { startNatsServer, type LocalNatsServer } from '../../scale/server.ts';
import { scratchDir } from '../tmp.ts';

const BIN = fileURLToPath(new URL('../../bin/evovla.mjs', import.meta.url));

/** An `evovla` child process: its stdout and stderr collected together in `out`, and its exit code. */
export interface EvovlaProcess {
  child: ChildProcess;
  out: string;
  exited: Promise<number | null>;
}

/**
 * What a test file starts: `evovla(args)` runs the command as a child process; `cleanups` run in
 * reverse order after the file's tests. Even after a failed or timed-out test, no process started
 * here and nothing registered in `cleanups` (a nats-server) outlives the test file.
 */
export function testProcesses(): { evovla(args: string[]): EvovlaProcess; cleanups: Array<() => Promise<void>> } {
  const procs: EvovlaProcess[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    for (const c of cleanups.reverse()) await c();
  });
  return {
    cleanups,
    evovla(args) {
      const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      const p: EvovlaProcess = { child, out: '', exited: new Promise((r) => child.once('exit', (code) => r(code))) };
      child.stdout!.on('data', (d: Buffer) => (p.out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (p.out += d.toString()));
      procs.push(p);
      return p;
    },
  };
}

/** A nats-server with JetStream in a scratch folder. */
export function startTestServer(port?: number, storeDir?: string): Promise<LocalNatsServer> {
  return startNatsServer({ storeDir: storeDir ?? scratchDir('evovla-nats-'), port });
}

/**
 * A residual MLP policy like robot/policies/tiny_mlp.ts (action = proprio + 0.05 tanh(MLP(proprio)))
 * with an update that regresses the MLP on the actions the workers took (weighted by each segment's
 * staleness weight) and exports the result. Records what each update received.
 */
export async function bcLearner(seed = 1): Promise<{ initial: Uint8Array; update: UpdateFn; seen: Array<{ version: number; segments: number; losses: number }> }> {
  const params = new ParamSet(seed);
  const net = new MLP(params, 'policy', [7, 16, 7], 'relu');
  const model: ModelDefinition = {
    params,
    forward: (g) => {
      const proprio = g.input('proprio', ['B', 7]);
      return { action: add(proprio, mul(tanh(net.apply(proprio)), 0.05)) };
    },
  };
  const trainer = await Trainer.create({
    model,
    loss: (g, o) => ({ loss: mse(mul(o.action, g.input('w', ['B', 1])), g.input('target', ['B', 7])) }),
    optimizer: { lr: 1e-3 },
  });
  const seen: Array<{ version: number; segments: number; losses: number }> = [];
  const update: UpdateFn = async (batch, ctx) => {
    const n = batch.reduce((s, b) => s + b.segment.steps * b.segment.numEnvs, 0);
    const proprio = new Float32Array(n * 7);
    const target = new Float32Array(n * 7);
    const w = new Float32Array(n);
    let i = 0;
    for (const { segment: s, weight } of batch) {
      const m = s.steps * s.numEnvs;
      proprio.set(s.proprio, i * 7);
      // Weighted regression as a plain MSE: scale prediction and target by the weight.
      for (let k = 0; k < m * 7; k++) target[i * 7 + k] = s.actions[k] * weight;
      w.fill(weight, i, i + m);
      i += m;
    }
    const r = await trainer.trainStep({ proprio: { data: proprio, shape: [n, 7] }, target: { data: target, shape: [n, 7] }, w: { data: w, shape: [n, 1] } });
    if (!Number.isFinite(r.loss)) throw new Error(`update ${ctx.update}: loss is ${r.loss}`);
    seen.push({ version: ctx.version, segments: batch.length, losses: r.loss });
    return exportInference(model, { 'evovla.action_mode': 'joint' });
  };
  return { initial: exportInference(model, { 'evovla.action_mode': 'joint' }), update, seen };
}

/** Polls `cond` every 50 ms until it holds; fails after `ms` with `what`. */
export async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, what: string, context?: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${context ? `\n${context()}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
