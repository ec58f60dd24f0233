/**
 * `evovla export --format mcap`: the file reads back with @mcap/core, every message decodes with
 * its ROS 2 schema, and the values are the episode's (joint states, commands, images, TF, stage,
 * reward terms).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, test } from 'node:test';
import { McapIndexedReader, McapStreamReader, TempBuffer } from '@mcap/core';
import { main } from '../../cli/main.ts';
import { readCommandLog, type LoggedMessage } from '../../robot/log/command_log.ts';
import { readEpisode } from '../../sim/record/reader.ts';
import type { StepRecord } from '../../sim/record/types.ts';
import { captureOutput } from '../cli/capture.ts';
import { scratchDir } from '../tmp.ts';
import { CAMERAS, writeEpisode } from './helpers.ts';

const dir = scratchDir('evovla-mcap-');
let episode = '';
let mcapFile = '';
let steps: StepRecord[] = [];
let messages: LoggedMessage[] = [];
let bytes: Uint8Array;

before(async () => {
  episode = writeEpisode(dir, 'stack-7', 1, 8);
  steps = readEpisode(episode).steps;
  mcapFile = path.join(dir, 'stack-7.mcap');
  const { result, err } = await captureOutput(() => main(['export', '--format', 'mcap', '--out', mcapFile, episode]));
  assert.equal(result, 0, err);
  bytes = fs.readFileSync(mcapFile);
  const read = readCommandLog(bytes);
  assert.equal(read.complete, true);
  assert.equal(read.unreadBytes, 0);
  messages = read.messages;
});

const on = (topic: string) => messages.filter((m) => m.topic === topic);

test('the file is a complete, indexed ROS 2 MCAP: profile ros2, ros2msg schemas, cdr messages', async () => {
  const reader = await McapIndexedReader.Initialize({ readable: new TempBuffer(bytes) });
  assert.equal(reader.header.profile, 'ros2');
  const schemas = [...reader.schemasById.values()];
  assert.ok(schemas.every((s) => s.encoding === 'ros2msg' && /^\w+\/msg\/\w+$/.test(s.name)), 'ROS 2 type names');
  assert.ok([...reader.channelsById.values()].every((c) => c.messageEncoding === 'cdr'));
  assert.ok(schemas.some((s) => s.name === 'tf2_msgs/msg/TFMessage'));
  assert.ok(schemas.some((s) => s.name === 'sensor_msgs/msg/Image'));
  let count = 0;
  for await (const _ of reader.readMessages()) count++;
  assert.equal(count, messages.length, 'indexed and streamed reads see the same messages');
  const stream = new McapStreamReader();
  stream.append(bytes);
  const meta: Record<string, string> = {};
  for (let rec; (rec = stream.nextRecord()); ) if (rec.type === 'Metadata' && rec.name === 'evovla.episode') for (const [k, v] of rec.metadata) meta[k] = v;
  assert.equal(meta.task, 'stack');
  assert.equal(meta.instruction, 'stack the blocks');
  assert.equal(meta.seed, '101');
});

test('every step has joint states, commands, images, TF, stage and reward terms, in time order', () => {
  const topics = [
    '/joint_states', '/evovla/policy_action', '/evovla/command', '/evovla/gripper_command', '/tf',
    '/evovla/stage', '/evovla/stage_name', '/evovla/commanded_stage', '/evovla/reward', '/evovla/reward/ext', '/evovla/reward/stage',
    ...CAMERAS.map((c) => `/camera/${c}/image_raw`),
  ];
  assert.deepEqual([...new Set(messages.map((m) => m.topic))].sort(), [...topics].sort());
  for (const t of topics) assert.equal(on(t).length, steps.length, t);
  const times = messages.map((m) => m.logTimeNs);
  assert.ok(times.every((t, i) => i === 0 || t >= times[i - 1]), 'log times never go back');
  assert.equal(on('/joint_states')[3].logTimeNs, BigInt(Math.round(steps[3].time * 1e9)));
});

test('message values are the episode\'s', () => {
  const k = 5;
  const s = steps[k];
  const js = on('/joint_states')[k].message;
  assert.deepEqual(js.name, ['joint1', 'joint2', 'joint3', 'joint4', 'joint5', 'joint6', 'finger_left', 'finger_right']);
  assert.deepEqual(Array.from(js.position as Float64Array), [...Array.from(s.proprio.subarray(0, 6)), s.proprio[6], s.proprio[6]]);
  const cmd = on('/evovla/command')[k].message;
  assert.deepEqual(Array.from(cmd.points[0].positions as Float64Array), Array.from(s.action.subarray(0, 6)));
  assert.equal(on('/evovla/gripper_command')[k].message.data[0], s.action[6]);
  const img = on('/camera/eye_arm/image_raw')[k].message;
  assert.equal(img.encoding, 'rgb8');
  assert.equal(img.step, img.width * 3);
  assert.deepEqual(new Uint8Array(img.data), s.images!.eye_arm.rgb);
  const tf = on('/tf')[k].message.transforms as Array<{ header: { frame_id: string }; child_frame_id: string; transform: { translation: { z: number }; rotation: { w: number } } }>;
  assert.deepEqual(tf.map((t) => t.child_frame_id).sort(), ['base_block', 'ee', 'link1', 'link6', 'top_block']);
  assert.ok(tf.every((t) => t.header.frame_id === 'world'));
  const top = tf.find((t) => t.child_frame_id === 'top_block')!;
  assert.equal(top.transform.translation.z, s.objects.top_block.p[2]);
  assert.equal(top.transform.rotation.w, 1);
  assert.equal(on('/evovla/stage')[k].message.data, s.stage);
  assert.equal(on('/evovla/stage_name')[k].message.data, ['reach', 'grasp', 'lift'][s.stage]);
  assert.equal(on('/evovla/commanded_stage')[k].message.data, s.commandedStage);
  assert.equal(on('/evovla/reward')[k].message.data, s.reward);
  assert.equal(on('/evovla/reward/stage')[k].message.data, s.rewardTerms.stage);
});

test('several episodes go to a directory, one file each; an existing file is not overwritten', async () => {
  const second = writeEpisode(dir, 'stack-8', 2, 4, { cameras: false });
  const out = path.join(dir, 'mcaps');
  const r = await captureOutput(() => main(['export', '--format', 'mcap', '--out', out, '--json', episode, second]));
  assert.equal(r.result, 0, r.err);
  assert.deepEqual(fs.readdirSync(out).sort(), ['stack-7.mcap', 'stack-8.mcap']);
  const summary = JSON.parse(r.out);
  assert.equal(summary[1].steps, 4);
  assert.ok(!summary[1].topics.some((t: string) => t.startsWith('/camera/')), 'no image topics without cameras');
  const again = await captureOutput(() => main(['export', '--format', 'mcap', '--out', mcapFile, episode]));
  assert.notEqual(again.result, 0);
});
