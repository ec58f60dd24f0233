/**
 * `evovla deploy --policy FILE|expert --robot sim|ros2 [--config FILE] [--dry-run] [--duration S]`:
 * runs a policy on a robot at the control rate through the safety layer, prints a status line each
 * second, and logs every command and refusal to an MCAP file (ROS 2 encoding).
 */
import { dirname, join } from 'node:path';
import { realClock } from '../robot/clock.ts';
import { makeDirectory } from '../sim/files.ts';
import { ConfigError, type DeployConfig, loadDeployConfig, parseDeployConfig } from '../robot/config.ts';
import { DeployLoop, type TickRecord } from '../robot/deploy.ts';
import { CommandLog } from '../robot/log/command_log.ts';
import { expertPolicy } from '../robot/policies/expert.ts';
import { loadOnnxPolicy, PolicyFileError } from '../robot/policies/onnx.ts';
import type { DeployPolicy } from '../robot/policies/types.ts';
import { Ros2ConnectError, Ros2Robot } from '../robot/ros2/bridge.ts';
import { Ros2UnavailableError } from '../robot/ros2/rcl.ts';
import type { DecisionSink, SafeRobot } from '../robot/safe_robot.ts';
import { StartRefusedError } from '../robot/safety/layer.ts';
import { SpecMismatchError, specMismatches } from '../robot/safety/spec_check.ts';
import { startSafeRobot } from '../robot/session.ts';
import { SimTwin } from '../robot/sim_twin.ts';
import { baseFrameFk, robotSpecFor } from '../robot/spec.ts';
import type { Robot } from '../robot/types.ts';
import { UsageError } from './main.ts';

const HELP = `usage: evovla deploy --policy FILE.onnx|expert --robot sim|ros2 [options]

  --policy FILE.onnx|expert   the policy: an ONNX file (see docs/deploy.md for its inputs and
                              outputs) or 'expert', the task's scripted expert (sim only)
  --robot sim|ros2            the simulator as the robot, or a real arm over ROS 2 (rclnodejs)
  --config FILE               deploy config (YAML): safety, ROS 2 topics, joint names
  --dry-run                   compute, check and log every command but transmit none, on every
                              robot: ros2 reads the real arm and commands nothing; the sim twin
                              is read but never stepped (its arm stays still), for one episode's
                              time unless --duration says otherwise
  --duration SECONDS          stop after this long (default: sim until the episode ends, ros2 until Ctrl-C)
  --task ID                   sim task (default: config sim.task)
  --seed N                    sim episode seed (default: config sim.seed)
  --log FILE                  MCAP command log (default: <config logDir>/deploy-<time>.mcap)
  --quiet                     no per-second status lines`;

interface DeployArgs {
  policy: string;
  robot: 'sim' | 'ros2';
  config?: string;
  dryRun: boolean;
  duration?: number;
  task?: string;
  seed?: number;
  log?: string;
  quiet: boolean;
}

const VALUE_FLAGS = new Set(['--policy', '--robot', '--config', '--duration', '--task', '--seed', '--log']);
const BOOL_FLAGS = new Set(['--dry-run', '--quiet']);

/** Parse deploy's argv; bad input is a UsageError naming the flag and the expected form. */
export function parseDeployArgs(argv: string[]): DeployArgs | 'help' {
  const values: Record<string, string> = {};
  const bools = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') return 'help';
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    if (VALUE_FLAGS.has(flag)) {
      const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined || value.startsWith('--')) throw new UsageError(`${flag} needs a value (${HELP.split('\n').find((l) => l.includes(flag))?.trim()})`);
      values[flag] = value;
    } else if (BOOL_FLAGS.has(flag) && eq < 0) {
      bools.add(flag);
    } else {
      throw new UsageError(`unknown option '${arg}' (expected one of: ${[...VALUE_FLAGS, ...BOOL_FLAGS].join(', ')}; see --help)`);
    }
  }
  const policy = values['--policy'];
  if (!policy) throw new UsageError("missing --policy (expected --policy FILE.onnx or --policy expert)");
  if (policy !== 'expert' && !policy.endsWith('.onnx')) throw new UsageError(`--policy '${policy}' is neither 'expert' nor a .onnx file`);
  const robot = values['--robot'];
  if (robot !== 'sim' && robot !== 'ros2') throw new UsageError(`--robot must be 'sim' or 'ros2', got ${robot === undefined ? 'nothing' : `'${robot}'`}`);
  if (policy === 'expert' && robot === 'ros2') {
    throw new UsageError('--policy expert reads ground-truth object poses from the simulator, so it runs only with --robot sim; give an ONNX policy for ros2');
  }
  const num = (flag: string, check: (n: number) => boolean, form: string): number | undefined => {
    const v = values[flag];
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!check(n)) throw new UsageError(`${flag} '${v}' is not ${form}`);
    return n;
  };
  return {
    policy,
    robot,
    config: values['--config'],
    dryRun: bools.has('--dry-run'),
    duration: num('--duration', (n) => Number.isFinite(n) && n > 0, 'a positive number of seconds'),
    task: values['--task'],
    seed: num('--seed', Number.isInteger, 'an integer'),
    log: values['--log'],
    quiet: bools.has('--quiet'),
  };
}

function loadConfig(path: string | undefined): DeployConfig {
  try {
    return path ? loadDeployConfig(path) : parseDeployConfig({});
  } catch (err) {
    if (err instanceof ConfigError) throw new UsageError(err.message);
    throw err;
  }
}

/** A robot that reads for real and transmits nothing (dry run on real hardware). */
function listenOnly(robot: Robot): Robot {
  return {
    spec: () => robot.spec(),
    connect: () => robot.connect(),
    read: () => robot.read(),
    safetyInputs: () => robot.safetyInputs(),
    send: (action) => Array.from(action, Number),
    halt: () => {},
    disconnect: () => robot.disconnect(),
  };
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const fmt = (v: number[]) => `[${v.map((x) => x.toFixed(3)).join(' ')}]`;

/** Entry point of `evovla deploy`; returns the exit code. */
export async function run(argv: string[]): Promise<number> {
  const parsed = parseDeployArgs(argv);
  if (parsed === 'help') {
    console.log(HELP);
    return 0;
  }
  const args = parsed;
  const config = loadConfig(args.config);
  const clock = realClock;
  const fk = baseFrameFk(config.robot);

  let policy: DeployPolicy | null = null;
  let robot: Robot;
  let twin: SimTwin | null = null;
  let ros: Ros2Robot | null = null;
  let cameras: { detach(): void } | null = null;
  let duration = args.duration;
  try {
    // An ONNX policy loads first: its cameras decide what the sim twin must render.
    if (args.policy !== 'expert') policy = await loadOnnxPolicy(args.policy, { requireJointNames: config.safety.specCheck.enabled });
    if (args.robot === 'sim') {
      const [{ createEnv }, { getTask }] = await Promise.all([import('../sim/env.ts'), import('../tasks/index.ts')]);
      let task;
      try {
        task = getTask(args.task ?? config.sim.task);
      } catch (err) {
        throw new UsageError(`--task: ${(err as Error).message}`);
      }
      const wanted = policy?.spec.cameras ?? [];
      const env = await createEnv(task, { controlHz: config.controlHz, cameras: wanted.map((c) => ({ name: c.name, width: c.width, height: c.height })) });
      if (wanted.length) {
        // Rendering (three.js, headless GL) is loaded only for image policies.
        const { attachEnvCameras } = await import('../sim/render/env_cameras.ts');
        cameras = await attachEnvCameras(env);
      }
      twin = new SimTwin({ env, clock, seed: args.seed ?? config.sim.seed, robot: config.robot });
      await twin.connect();
      // A dry run means the same on every robot: compute, check and log, send nothing. The twin
      // then never steps (the arm stays where it started), so the run lasts one episode's time.
      robot = args.dryRun ? listenOnly(twin) : twin;
      if (args.dryRun) duration ??= task.maxSteps / config.controlHz;
    } else {
      const spec = robotSpecFor(config.robot, Object.entries(config.ros2.cameras).map(([name, c]) => ({ name, width: c.width, height: c.height })));
      ros = new Ros2Robot({ spec, ros2: config.ros2, clock, controlHz: config.controlHz });
      robot = args.dryRun ? listenOnly(ros) : ros;
      if (args.dryRun) {
        // Sim-to-real check (ManiSkill Sim2RealEnv): the sim robot the policy was trained on must match.
        const problems = specMismatches(spec, { ...robotSpecFor(config.robot), cameras: spec.cameras }, config.safety.specCheck.limitTolerance);
        if (problems.length) throw new SpecMismatchError(problems);
      }
    }
    policy ??= expertPolicy(twin as SimTwin);
  } catch (err) {
    cameras?.detach();
    await twin?.disconnect();
    await policy?.close();
    return report(err);
  }

  // The log exists before the robot is touched, so the start checks and start-up hold are in it.
  const logPath = args.log ?? join(config.logDir, `deploy-${new Date().toISOString().replace(/[:.]/g, '-')}.mcap`);
  makeDirectory(dirname(logPath));
  const spec = robot.spec();
  const log = await CommandLog.create(logPath, {
    mapping: { rosNames: spec.jointNames.map((n) => config.ros2.jointNames[n] ?? n), gripperName: config.ros2.gripper.jointName, gripperScale: config.ros2.gripper.scale },
    periodS: 1 / config.controlHz,
    chunkBytes: config.logChunkBytes,
    epochOffsetS: Date.now() / 1000 - clock.now(),
    metadata: { policy: policy.name, robot: args.robot, dryRun: String(args.dryRun), config: JSON.stringify(config) },
  });
  const sinks: DecisionSink[] = [(d, obs) => log.record(d, obs)];
  if (ros) {
    const bridge = ros;
    sinks.push((d) => bridge.publishDecision(d));
  }
  let safe: SafeRobot;
  try {
    safe = await startSafeRobot({ robot, policySpec: policy.spec, config, clock, fk, sinks });
  } catch (err) {
    log.note(clock.now(), 'ERROR', `refused to start: ${(err as Error).message}`);
    await log.close();
    await policy.close();
    cameras?.detach();
    return report(err);
  }

  const instruction = twin ? twin.env.task.instruction : '';
  console.log(`evovla deploy: ${policy.name} on ${args.robot}${args.dryRun ? ' (dry run: nothing transmitted)' : ''} at ${config.controlHz} Hz; log ${logPath}`);
  const runStart = clock.now();
  let windowStart = runStart;
  let window: TickRecord[] = [];
  const loop = new DeployLoop({
    robot: safe,
    policy,
    clock,
    controlHz: config.controlHz,
    instruction,
    durationS: duration,
    shouldStop: () => (twin?.episodeEnded ? `episode ended (${twin.success ? 'success' : 'no success'} after ${twin.steps} steps)` : null),
    onTick: (t) => {
      window.push(t);
      if (!args.quiet && clock.now() - windowStart >= 1) {
        const lat = window.map((x) => x.latencyS * 1000).sort((a, b) => a - b);
        const d = t.decision;
        console.log(`t=${(clock.now() - runStart).toFixed(1)}s ${d.mode.padEnd(7)} ${d.reason ?? 'ok'} sent=${fmt(d.sent)} clamped=${window.filter((x) => x.decision.clamps.length).length} refused=${window.filter((x) => x.decision.refusals.length).length} held=${window.filter((x) => x.decision.source !== 'policy').length}/${window.length} latency p50=${percentile(lat, 50).toFixed(2)}ms p99=${percentile(lat, 99).toFixed(2)}ms`);
        window = [];
        windowStart = clock.now();
      }
    },
  });
  const onSignal = () => loop.stop('interrupted (Ctrl-C)');
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let summary;
  try {
    summary = await loop.run();
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    safe.halt();
    await log.close();
    await policy.close();
    await safe.disconnect();
    cameras?.detach();
  }
  const lat = summary.latencies.map((s) => s * 1000).sort((a, b) => a - b);
  console.log(`evovla deploy: stopped: ${summary.stopReason}`);
  console.log(`  ${summary.ticks} ticks, ${summary.missedDeadlines} missed deadlines, latency p50 ${percentile(lat, 50).toFixed(2)} ms p99 ${percentile(lat, 99).toFixed(2)} ms`);
  console.log(`  logged ${log.counts.commands} commands (${log.counts.clamps} clamped, ${log.counts.refusals} refused, ${log.counts.holds} holds, ${log.counts.halts} halts) to ${logPath}`);
  if (summary.fault !== null) {
    console.error(`evovla deploy: stopped on a fault: ${summary.fault}`);
    return 4;
  }
  return /e-stop/.test(summary.stopReason) ? 3 : 0;
}

/** Expected failures: one line, no stack trace, exit code 1. */
function report(err: unknown): number {
  if (err instanceof UsageError) throw err;
  const known = [StartRefusedError, SpecMismatchError, PolicyFileError, Ros2UnavailableError, Ros2ConnectError];
  if (known.some((k) => err instanceof k)) {
    console.error(`evovla deploy: ${(err as Error).message}`);
    return 1;
  }
  throw err;
}
