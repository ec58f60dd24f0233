/**
 * The `evovla` command: a table of subcommands, each in its own module, loaded on demand so that
 * `evovla view` does not pay for onnxruntime and `evovla deploy` does not pay for three.js.
 */

import { describeFileSystemError, isFileSystemError } from '../sim/files.ts';

/** A subcommand: parses its own argv, returns the process exit code. */
export type Command = (argv: string[]) => Promise<number>;

interface CommandEntry {
  summary: string;
  load: () => Promise<Command>;
}

const commands: Record<string, CommandEntry> = {
  sim: {
    summary: 'run the simulator with a moving arm and print what it does (smoke test)',
    load: async () => (await import('./sim.ts')).run,
  },
  deploy: {
    summary: 'run a policy on the sim twin or a ROS 2 arm through the safety layer, logging to MCAP',
    load: async () => (await import('./deploy.ts')).run,
  },
  demos: {
    summary: 'run a task\'s scripted expert for N episodes, write episode files, print success with a 95% CI',
    load: async () => (await import('./demos.ts')).run,
  },
  inspect: {
    summary: 'summarise an episode file and report where a damaged one breaks',
    load: async () => (await import('./inspect.ts')).run,
  },
  replay: {
    summary: 're-simulate an episode file from its seed and actions; --verify checks the final state hash',
    load: async () => (await import('./replay.ts')).run,
  },
  train: {
    summary: 'train a policy from a YAML config (demos -> behaviour cloning ...), export policy.onnx, evaluate it',
    load: async () => (await import('./train.ts')).run,
  },
  eval: {
    summary: 'evaluate an ONNX policy on held-out seeds: success with a 95% CI, stages reached, episode files',
    load: async () => (await import('./eval.ts')).run,
  },
  sar: {
    summary: 'train (sar train --task T) or judge (sar eval --model F) the stage-aligned reward scorer',
    load: async () => (await import('./sar.ts')).run,
  },
  view: {
    summary: 'replay episode files in the browser: 3D scene, camera images, stage timeline, reward terms',
    load: async () => (await import('./view.ts')).run,
  },
  worker: {
    summary: 'rollout worker for distributed training: fetch policy weights over NATS JetStream, publish trajectory segments',
    load: async () => (await import('./worker.ts')).run,
  },
  doctor: {
    summary: 'check this machine: Node, ONNX Runtime execution providers (CPU, CUDA), nats-server, NATS reachability',
    load: async () => (await import('./doctor.ts')).run,
  },
  export: {
    summary: 'write episode files as a LeRobotDataset v3.0 folder or as MCAP files for Foxglove',
    load: async () => (await import('./export.ts')).run,
  },
  import: {
    summary: 'turn a LeRobotDataset v3.0 whose features match the robot into episode files',
    load: async () => (await import('./import.ts')).run,
  },
};

/** Thrown by subcommands for bad user input: printed without a stack trace, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((k) => k.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: evovla <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun 'evovla <command> --help' for a command's options.`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const entry = commands[name];
  if (!entry) {
    console.error(`evovla: unknown command '${name}' (expected one of: ${Object.keys(commands).join(', ')})`);
    return 2;
  }
  try {
    const command = await entry.load();
    return await command(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`evovla ${name}: ${err.message}`);
      return 2;
    }
    // A full disk, a read-only folder, a directory given as a file: the user's environment, not a
    // bug, so one line naming the operation, the path and the cause instead of a stack trace.
    if (isFileSystemError(err)) {
      console.error(`evovla ${name}: ${describeFileSystemError(err)}`);
      return 1;
    }
    throw err;
  }
}
