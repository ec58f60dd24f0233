/**
 * The MCAP command log: ROS 2 profile, ros2msg schemas, CDR messages that decode back, and a file
 * cut short (as by a crash) still readable up to its last complete chunk.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { McapIndexedReader } from '@mcap/core';
import { CommandLog, readCommandLog } from '../../../robot/log/command_log.ts';
import type { Decision } from '../../../robot/safety/layer.ts';
import { scratchDir } from '../../tmp.ts';

const mapping = { rosNames: ['j1', 'j2', 'j3', 'j4', 'j5', 'j6'], gripperName: 'gripper', gripperScale: 1 };

function decision(i: number, refused = false): Decision {
  const sent = [i * 0.001, 0, 0, 0, 0, 0, 0.02];
  return {
    t: 10 + i / 60,
    mode: refused ? 'hold' : 'running',
    source: refused ? 'hold' : 'policy',
    reason: refused ? 'refused' : null,
    proposed: refused ? [Number.NaN, 0, 0, 0, 0, 0, 0.02] : sent,
    sent,
    refusals: refused ? [{ check: 'nonfinite', field: 'joint1', value: Number.NaN, limit: Number.NaN }] : [],
    clamps: [],
  };
}

const obs = (i: number) => ({ stamp: 10 + i / 60, seq: i, q: [i * 0.001, 0, 0, 0, 0, 0], qd: [0, 0, 0, 0, 0, 0], gripper: 0.02 });

function tempPath(): string {
  return join(scratchDir('evovla-log-'), 'commands.mcap');
}

describe('CommandLog', () => {
  it('writes an indexed ROS 2 MCAP that decodes back to what was sent', async () => {
    const path = tempPath();
    const log = await CommandLog.create(path, { mapping, periodS: 1 / 60, epochOffsetS: 1_700_000_000, metadata: { policy: 'p.onnx' } });
    for (let i = 0; i < 100; i++) log.record(decision(i, i % 10 === 5), obs(i));
    await log.close();
    assert.equal(log.counts.commands, 100);
    assert.equal(log.counts.refusals, 10);
    const bytes = readFileSync(path);
    const read = readCommandLog(bytes);
    assert.ok(read.complete);
    assert.equal(read.metadata.policy, 'p.onnx');
    const commands = read.messages.filter((m) => m.topic === '/evovla/command');
    assert.equal(commands.length, 100);
    assert.equal(commands[0].schema, 'trajectory_msgs/msg/JointTrajectory');
    assert.deepEqual(commands[0].message.joint_names, mapping.rosNames);
    assert.equal(commands[42].message.points[0].positions[0], 0.042);
    const refusals = read.messages.filter((m) => m.topic === '/evovla/safety');
    assert.equal(refusals.length, 10, 'one diagnostic per refusal, none for clean commands');
    assert.equal(read.messages.filter((m) => m.topic === '/joint_states').length, 100);
    // Unix-epoch log times (Foxglove shows dates).
    assert.equal(commands[0].logTimeNs, BigInt(Math.round((1_700_000_000 + 10) * 1e9)));

    // The summary is there too: an indexed reader (what Foxglove and ros2 bag use for seeking) opens it.
    const reader = await McapIndexedReader.Initialize({
      readable: { size: async () => BigInt(bytes.length), read: async (off, len) => bytes.subarray(Number(off), Number(off + len)) },
    });
    assert.equal(reader.header.profile, 'ros2');
    const schemas = [...reader.schemasById.values()];
    assert.ok(schemas.every((s) => s.encoding === 'ros2msg'));
    assert.ok([...reader.channelsById.values()].every((c) => c.messageEncoding === 'cdr'));
    assert.equal(reader.statistics?.messageCount, BigInt(read.messages.length));
  });

  it('refuses to overwrite an existing log', async () => {
    const path = tempPath();
    writeFileSync(path, 'x');
    await assert.rejects(CommandLog.create(path, { mapping, periodS: 1 / 60 }), /EEXIST/);
  });

  it('keeps every finished chunk readable when the process dies mid-file', async () => {
    const path = tempPath();
    const log = await CommandLog.create(path, { mapping, periodS: 1 / 60, chunkBytes: 2048 });
    for (let i = 0; i < 300; i++) log.record(decision(i, i === 7), obs(i));
    await log.flush(); // data handed to the OS, as it is continuously during a run; no close()
    const onDisk = readFileSync(path);
    const read = readCommandLog(onDisk);
    assert.equal(read.complete, false, 'no footer: the file was not closed');
    const commands = read.messages.filter((m) => m.topic === '/evovla/command');
    assert.ok(commands.length > 200, `only ${commands.length} of 300 commands readable`);
    assert.ok(commands.length < 300, 'the unfinished chunk is the loss');
    // What is there is the beginning, in order, with the refusal included.
    commands.forEach((m, i) => assert.equal(m.message.points[0].positions[0], i * 0.001));
    assert.ok(read.messages.some((m) => m.topic === '/evovla/safety'));
    // A file torn in the middle of a chunk reads the same way, up to the tear.
    const torn = readCommandLog(onDisk.subarray(0, Math.floor(onDisk.length * 0.6)));
    assert.ok(torn.messages.length > 0 && torn.messages.length < read.messages.length);
    assert.ok(torn.unreadBytes > 0);
    await log.close();
  });
});

describe('CommandLog and halts', () => {
  it('logs a halt in force as a diagnostic only, not as a command sent', async () => {
    const path = tempPath();
    const log = await CommandLog.create(path, { mapping, periodS: 1 / 60 });
    const halt = (i: number, transmitted: boolean): Decision => ({ ...decision(i), mode: 'halted', source: 'halt', reason: 'estop', proposed: null, transmitted });
    log.record(decision(0), obs(0));
    log.record(halt(1, true), obs(1));
    log.record(halt(2, false), obs(2));
    log.record(halt(3, false), obs(3));
    await log.close();
    const read = readCommandLog(readFileSync(path));
    assert.equal(read.messages.filter((m) => m.topic === '/evovla/command').length, 2);
    assert.equal(read.messages.filter((m) => m.topic === '/evovla/safety').length, 3);
    assert.equal(log.counts.commands, 2);
    assert.equal(log.counts.halts, 3);
  });
});
