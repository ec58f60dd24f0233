/**
 * Deploy control-loop latency: the real deploy loop (sim twin as the robot, safety layer on with
 * its defaults, a small ONNX policy on CPU through onnxruntime-node, one thread) at 60 Hz on the
 * process clock. Prints one JSON line:
 *   obs_to_command_ms  observation read -> command handed to the robot (after inference and every
 *                      safety check): the figure the issue targets (p99 < 5 ms)
 *   tick_ms            the whole tick including the sim twin executing the command (physics step)
 *   inference_ms       policy.act alone
 *   missed_deadlines   ticks that ended after their 1/60 s period
 * Usage: npm run bench:deploy [-- --seconds 10]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { realClock } from '../robot/clock.ts';
import { parseDeployConfig } from '../robot/config.ts';
import { DeployLoop } from '../robot/deploy.ts';
import { loadOnnxPolicy } from '../robot/policies/onnx.ts';
import { writeTinyPolicy } from '../robot/policies/tiny_mlp.ts';
import { startSafeRobot } from '../robot/session.ts';
import { SimTwin } from '../robot/sim_twin.ts';
import { baseFrameFk } from '../robot/spec.ts';
import { createEnv } from '../sim/env.ts';
import { getTask } from '../tasks/index.ts';
import { positiveFlag } from './args.ts';

function stats(ms: number[]) {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { p50: +q(0.5).toFixed(3), p99: +q(0.99).toFixed(3), max: +s[s.length - 1].toFixed(3) };
}

const seconds = positiveFlag('seconds', 10);
const hz = 60;
const hidden = [64, 64];
const dir = mkdtempSync(join(tmpdir(), 'evovla-bench-deploy-'));
const policyPath = join(dir, 'tiny.onnx');
writeTinyPolicy(policyPath, { seed: 1, hidden });
const policy = await loadOnnxPolicy(policyPath, { threads: 1 });
const inferMs: number[] = [];
const act = policy.act.bind(policy);
policy.act = async (obs) => {
  const t = performance.now();
  const a = await act(obs);
  inferMs.push(performance.now() - t);
  return a;
};

const config = parseDeployConfig({ controlHz: hz });
const env = await createEnv(getTask('blocks'), { controlHz: hz, maxSteps: Math.ceil((seconds + 10) * hz) });
const twin = new SimTwin({ env, clock: realClock, seed: 0 });
// Time the moment the command reaches the robot, before the twin runs physics on it.
let readAt = 0;
const obsToCommand: number[] = [];
const read = twin.read.bind(twin);
twin.read = () => {
  readAt = performance.now();
  return read();
};
const send = twin.send.bind(twin);
twin.send = (a) => {
  obsToCommand.push(performance.now() - readAt);
  return send(a);
};
const safe = await startSafeRobot({ robot: twin, policySpec: policy.spec, config, clock: realClock, fk: baseFrameFk('airbot_play') });
// Warm-up (120 ticks), not measured: the first await after start-up waits on module loading (~1-2 s here) and
// the physics engine's first steps are slow; a deploy spends this time in its start-up hold.
const warmupTicks = 120;
let warmed = 0;
const warmup = new DeployLoop({ robot: safe, policy, clock: realClock, controlHz: hz, instruction: env.task.instruction, shouldStop: () => (++warmed >= warmupTicks ? 'warm' : null) });
await warmup.run();
await realClock.sleepUntil(realClock.now() + 0.2); // let any late warm-up inference finish
obsToCommand.length = 0;
inferMs.length = 0;
const loop = new DeployLoop({ robot: safe, policy, clock: realClock, controlHz: hz, instruction: env.task.instruction, durationS: seconds });
const summary = await loop.run();
if (process.env.BENCH_DEBUG) console.error('slow ticks', summary.latencies.map((l, i) => [i, +(l * 1000).toFixed(1)]).filter(([, l]) => l > 10));
await safe.disconnect();
await policy.close();
// The watchdog may send holds outside ticks (none expected); count only per-tick entries.
const perTick = obsToCommand.slice(0, summary.ticks);
console.log(
  JSON.stringify({
    bench: 'deploy',
    control_hz: hz,
    seconds,
    warmup_ticks: warmupTicks,
    ticks: summary.ticks,
    policy: `residual MLP 7-${hidden.join('-')}-7, onnxruntime-node CPU, 1 thread`,
    robot: 'sim twin (blocks task), safety layer defaults',
    obs_to_command_ms: stats(perTick),
    tick_ms: stats(summary.latencies.map((s) => s * 1000)),
    inference_ms: stats(inferMs),
    missed_deadlines: summary.missedDeadlines,
    target: 'obs_to_command p99 < 5 ms, none missed',
    node: process.version,
    note: 'figures vary with machine load',
  }),
);
rmSync(dir, { recursive: true, force: true });
