/**
 * The deploy command log: every command sent and every refusal, as an MCAP file with ROS 2 message
 * encoding (schema encoding 'ros2msg', message encoding 'cdr'), so Foxglove and `ros2 bag` (with the
 * MCAP storage plugin) open it.
 *
 * Channels:
 *  - /evovla/command          trajectory_msgs/msg/JointTrajectory  the arm command actually sent (none while
 *                                                                  a halt already in force sends nothing)
 *  - /evovla/gripper_command  std_msgs/msg/Float64MultiArray       the gripper target actually sent
 *  - /evovla/policy_action    std_msgs/msg/Float64MultiArray       what the policy proposed (NaN kept)
 *  - /evovla/safety           diagnostic_msgs/msg/DiagnosticArray  every hold, halt, refusal and clamp
 *  - /joint_states            sensor_msgs/msg/JointState           each new observation used
 *
 * Crash behaviour (chosen): the file is written in place, chunk by chunk, never buffered whole.
 * Each finished chunk goes to the OS at once, so if the process dies the file holds every chunk
 * finished so far and a streaming reader (ours, Foxglove, `mcap recover`) reads up to the last
 * complete one; at most the unfinished chunk (`logChunkBytes`, ~0.5 s at 60 Hz with the defaults)
 * is lost. A clean close appends the summary and index (seekable, `ros2 bag info` works) and fsyncs.
 * Writing to a temporary name and renaming on close was rejected: after a crash the log would sit
 * under a name nobody looks for, and the rename protects nothing a reader needs.
 *
 * Writes never block the control loop: `record` encodes and queues; one async drain writes in order.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { McapStreamReader, McapWriter, type McapTypes } from '@mcap/core';
import type { RobotObservation } from '../types.ts';
import type { Decision } from '../safety/layer.ts';
import { decisionDiagnostics, gripperPositionMessage, jointStateMessage, type JointMapping, trajectoryMessage } from '../ros2/convert.ts';
import { codec, DIAG, ros2TypeName, type RosType, schemaText, toRosTime } from '../ros2/messages.ts';

const CHANNELS = {
  command: { topic: '/evovla/command', type: 'trajectory_msgs/JointTrajectory' },
  gripper: { topic: '/evovla/gripper_command', type: 'std_msgs/Float64MultiArray' },
  policy: { topic: '/evovla/policy_action', type: 'std_msgs/Float64MultiArray' },
  safety: { topic: '/evovla/safety', type: 'diagnostic_msgs/DiagnosticArray' },
  jointStates: { topic: '/joint_states', type: 'sensor_msgs/JointState' },
} as const satisfies Record<string, { topic: string; type: RosType }>;

type ChannelKey = keyof typeof CHANNELS;

export interface CommandLogOptions {
  /** Joint names as they appear in the log (the robot's ROS names). */
  mapping: JointMapping;
  /** Control period (s): the time_from_start written in logged trajectories. */
  periodS: number;
  chunkBytes?: number;
  /** Seconds to add to decision times to get Unix time (so the log shows wall-clock dates). */
  epochOffsetS?: number;
  /** Metadata stored in the file (policy, robot, config summary). */
  metadata?: Record<string, string>;
}

/** Counts of what was logged. */
export interface LogCounts {
  commands: number;
  refusals: number;
  clamps: number;
  holds: number;
  halts: number;
  messages: number;
}

/** Writer of the MCAP command log (see the file comment for channels and crash behaviour). */
export class CommandLog {
  readonly path: string;
  private readonly file: FileHandle;
  private readonly writer: McapWriter;
  private readonly opts: CommandLogOptions;
  private readonly channelIds = new Map<ChannelKey, number>();
  private queue: Array<{ key: ChannelKey; t: number; data: Uint8Array }> = [];
  private draining: Promise<void> | null = null;
  private failure: Error | null = null;
  private sequence = 0;
  private lastSeq = -1;
  private closed = false;
  readonly counts: LogCounts = { commands: 0, refusals: 0, clamps: 0, holds: 0, halts: 0, messages: 0 };

  private constructor(path: string, file: FileHandle, writer: McapWriter, opts: CommandLogOptions) {
    this.path = path;
    this.file = file;
    this.writer = writer;
    this.opts = opts;
  }

  /** Create the file (refusing to overwrite an existing one) and write the header, schemas and channels. */
  static async create(path: string, opts: CommandLogOptions): Promise<CommandLog> {
    const file = await open(path, 'wx');
    let position = 0n;
    const writable = {
      write: async (buffer: Uint8Array) => {
        await file.write(buffer);
        position += BigInt(buffer.byteLength);
      },
      position: () => position,
    };
    const writer = new McapWriter({ writable, chunkSize: opts.chunkBytes ?? 32 * 1024 });
    const log = new CommandLog(path, file, writer, opts);
    await writer.start({ profile: 'ros2', library: 'evovla deploy' });
    const schemaIds = new Map<string, number>();
    for (const [key, ch] of Object.entries(CHANNELS) as Array<[ChannelKey, (typeof CHANNELS)[ChannelKey]]>) {
      let schemaId = schemaIds.get(ch.type);
      if (schemaId === undefined) {
        schemaId = await writer.registerSchema({
          name: ros2TypeName(ch.type),
          encoding: 'ros2msg',
          data: new TextEncoder().encode(schemaText(ch.type)),
        });
        schemaIds.set(ch.type, schemaId);
      }
      log.channelIds.set(key, await writer.registerChannel({ topic: ch.topic, schemaId, messageEncoding: 'cdr', metadata: new Map() }));
    }
    if (opts.metadata) await writer.addMetadata({ name: 'evovla.deploy', metadata: new Map(Object.entries(opts.metadata)) });
    return log;
  }

  /** Log one safety decision and the observation it was made on. Cheap: encodes and queues. */
  record(d: Decision, obs: RobotObservation): void {
    if (this.closed) return;
    const m = this.opts.mapping;
    if (obs.seq !== this.lastSeq) {
      this.lastSeq = obs.seq;
      this.push('jointStates', obs.stamp, jointStateMessage(obs.q, obs.qd, obs.gripper, m, this.unix(obs.stamp)));
    }
    if (d.proposed) {
      this.push('policy', d.t, { layout: { dim: [{ label: [...m.rosNames, 'gripper'].join(','), size: d.proposed.length, stride: d.proposed.length }], data_offset: 0 }, data: d.proposed });
    }
    if (d.transmitted !== false) {
      this.push('command', d.t, trajectoryMessage(d.sent.slice(0, 6), m, this.opts.periodS));
      this.push('gripper', d.t, gripperPositionMessage(d.sent[6], m));
      this.counts.commands++;
    }
    if (d.refusals.length) this.counts.refusals++;
    if (d.clamps.length) this.counts.clamps++;
    if (d.source === 'hold') this.counts.holds++;
    if (d.source === 'halt') this.counts.halts++;
    if (d.source !== 'policy' || d.clamps.length || d.refusals.length) {
      this.push('safety', d.t, decisionDiagnostics(d, 'evovla: safety', 'evovla', this.unix(d.t)));
    }
  }

  /** Log an event that is not a command (e.g. a refusal to start) as a DiagnosticStatus. */
  note(t: number, level: 'OK' | 'WARN' | 'ERROR', message: string): void {
    if (this.closed) return;
    const stamp = toRosTime(this.unix(t));
    this.push('safety', t, {
      header: { stamp, frame_id: '' },
      status: [{ level: DIAG[level], name: 'evovla: deploy', message, hardware_id: 'evovla', values: [] }],
    });
  }

  private unix(t: number): number {
    return Math.max(0, t + (this.opts.epochOffsetS ?? 0));
  }

  private push(key: ChannelKey, t: number, msg: unknown): void {
    const data = codec(CHANNELS[key].type).encode(msg);
    this.queue.push({ key, t, data });
    this.counts.messages++;
    if (!this.draining) this.draining = this.drain();
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length) {
        const batch = this.queue;
        this.queue = [];
        for (const item of batch) {
          const ns = BigInt(Math.round(this.unix(item.t) * 1e9));
          await this.writer.addMessage({ channelId: this.channelIds.get(item.key) as number, sequence: this.sequence++, logTime: ns, publishTime: ns, data: item.data });
        }
      }
    } catch (err) {
      this.failure = err as Error;
    } finally {
      this.draining = null;
    }
  }

  /** Wait until everything queued so far has been handed to the writer. */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
    if (this.failure) throw new Error(`command log ${this.path}: write failed: ${this.failure.message}`);
  }

  /** Finish the file: last chunk, summary, index, fsync. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    try {
      await this.writer.end();
      await this.file.sync();
    } finally {
      await this.file.close();
    }
  }
}

/** One message read back from a command log. */
export interface LoggedMessage {
  topic: string;
  schema: string;
  logTimeNs: bigint;
  message: any;
}

/**
 * Read a command log (complete, or cut short by a crash). `complete` is false when the file ends
 * before the footer; `messages` then holds everything up to the last whole chunk.
 */
export function readCommandLog(bytes: Uint8Array): { messages: LoggedMessage[]; complete: boolean; unreadBytes: number; metadata: Record<string, string> } {
  const reader = new McapStreamReader();
  reader.append(bytes);
  const schemas = new Map<number, McapTypes.Schema>();
  const channels = new Map<number, McapTypes.Channel>();
  const messages: LoggedMessage[] = [];
  const metadata: Record<string, string> = {};
  for (let rec; (rec = reader.nextRecord()); ) {
    if (rec.type === 'Schema') schemas.set(rec.id, rec);
    else if (rec.type === 'Channel') channels.set(rec.id, rec);
    else if (rec.type === 'Metadata') for (const [k, v] of rec.metadata) metadata[k] = v;
    else if (rec.type === 'Message') {
      const ch = channels.get(rec.channelId);
      const schema = ch ? schemas.get(ch.schemaId) : undefined;
      if (!ch || !schema) throw new Error(`message on unknown channel ${rec.channelId}`);
      const type = schema.name.replace('/msg/', '/') as RosType;
      messages.push({ topic: ch.topic, schema: schema.name, logTimeNs: rec.logTime, message: codec(type).decode(rec.data) });
    }
  }
  return { messages, complete: reader.done(), unreadBytes: reader.bytesRemaining(), metadata };
}
