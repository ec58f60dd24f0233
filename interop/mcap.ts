/**
 * An episode file as MCAP with ROS 2 encoding (profile 'ros2', schemas 'ros2msg', messages 'cdr'),
 * written with the deploy log's message definitions and CDR codecs (robot/ros2/messages.ts,
 * robot/ros2/convert.ts), so Foxglove opens it with no plug-in and `ros2 bag` reads it.
 *
 * Topics (one message per step unless noted; log time = the step's sim time):
 *  /joint_states                  sensor_msgs/msg/JointState       arm joints + both finger joints
 *  /evovla/command                trajectory_msgs/msg/JointTrajectory  the arm target (joint actions)
 *  /evovla/gripper_command        std_msgs/msg/Float64MultiArray   the gripper target
 *  /evovla/policy_action          std_msgs/msg/Float64MultiArray   the raw 7-value action, labelled
 *  /camera/<name>/image_raw       sensor_msgs/msg/Image            rgb8, frame_id <name>
 *  /tf                            tf2_msgs/msg/TFMessage           world -> every arm link, the tool
 *                                                                  (ee) and every object
 *  /evovla/stage                  std_msgs/msg/Int32               ground-truth stage index
 *  /evovla/stage_name             std_msgs/msg/String              its name ('done' past the last)
 *  /evovla/commanded_stage        std_msgs/msg/Int32               stage the expert/policy reports (when recorded)
 *  /evovla/sar_stage              std_msgs/msg/Int32               SAR's stage estimate (when recorded)
 *  /evovla/reward                 std_msgs/msg/Float64             the step reward
 *  /evovla/reward/<term>          std_msgs/msg/Float64             each reward term
 * The header (task, instruction, seed, robot, ...) and footer are MCAP metadata records.
 * The file is built in memory and written atomically (temp + rename).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { McapWriter, TempBuffer } from '@mcap/core';
import { ExportError } from './errors.ts';
import { gripperPositionMessage, jointStateMessage, trajectoryMessage, type JointMapping } from '../robot/ros2/convert.ts';
import { codec, ros2TypeName, schemaText, toRosTime, type ImageMsg, type RosType, type TFMessageMsg, type TransformStampedMsg } from '../robot/ros2/messages.ts';
import { readEpisode, requireIntact } from '../sim/record/reader.ts';
import { makeDirectory } from '../sim/files.ts';
import { getRobot } from '../sim/robot/index.ts';
import type { Pose } from '../sim/types.ts';

/** What was written. */
export interface McapExportSummary {
  file: string;
  messages: number;
  topics: string[];
  steps: number;
}

/** The world frame every transform hangs from. */
export const WORLD_FRAME = 'world';

function transform(parent: string, child: string, pose: Pose, stampS: number): TransformStampedMsg {
  return {
    header: { stamp: toRosTime(stampS), frame_id: parent },
    child_frame_id: child,
    transform: {
      translation: { x: pose.p[0], y: pose.p[1], z: pose.p[2] },
      rotation: { x: pose.q[0], y: pose.q[1], z: pose.q[2], w: pose.q[3] },
    },
  };
}

/** Write episode file `episodeFile` as MCAP at `outFile` (refuses to overwrite). */
export async function exportMcap(episodeFile: string, outFile: string): Promise<McapExportSummary> {
  if (fs.existsSync(outFile)) throw new ExportError(`output ${outFile} already exists; choose a new path`);
  const ep = readEpisode(episodeFile);
  requireIntact(ep, episodeFile);
  const { header, steps, footer } = ep;
  const robot = getRobot(header.robot);
  const mapping: JointMapping = { rosNames: [...robot.armJoints], gripperName: 'gripper', gripperScale: 1 };
  const period = 1 / header.controlHz;

  const buffer = new TempBuffer();
  const writer = new McapWriter({ writable: buffer, chunkSize: 1 << 20 });
  await writer.start({ profile: 'ros2', library: 'evovla export' });
  const schemaIds = new Map<RosType, number>();
  const channelIds = new Map<string, { id: number; type: RosType }>();
  const channel = async (topic: string, type: RosType): Promise<{ id: number; type: RosType }> => {
    let ch = channelIds.get(topic);
    if (ch) return ch;
    let schemaId = schemaIds.get(type);
    if (schemaId === undefined) {
      schemaId = await writer.registerSchema({ name: ros2TypeName(type), encoding: 'ros2msg', data: new TextEncoder().encode(schemaText(type)) });
      schemaIds.set(type, schemaId);
    }
    ch = { id: await writer.registerChannel({ topic, schemaId, messageEncoding: 'cdr', metadata: new Map() }), type };
    channelIds.set(topic, ch);
    return ch;
  };
  let sequence = 0;
  const publish = async (topic: string, type: RosType, t: number, message: unknown) => {
    const ch = await channel(topic, type);
    const ns = BigInt(Math.round(t * 1e9));
    await writer.addMessage({ channelId: ch.id, sequence: sequence++, logTime: ns, publishTime: ns, data: codec(ch.type).encode(message) });
  };

  await writer.addMetadata({
    name: 'evovla.episode',
    metadata: new Map([
      ['source', path.basename(episodeFile)],
      ['task', header.task],
      ['instruction', header.instruction],
      ['robot', header.robot],
      ['seed', String(header.seed)],
      ['controlHz', String(header.controlHz)],
      ['actionMode', header.actionMode],
      ['configHash', header.configHash],
      ['stages', JSON.stringify(header.stages)],
      ['steps', String(footer.steps)],
      ['success', String(footer.success)],
      ['maxStage', String(footer.maxStage)],
    ]),
  });

  const actionLabel = header.actionMode === 'ee_delta' ? 'dx,dy,dz,droll,dpitch,dyaw,gripper' : [...robot.armJoints, 'gripper'].join(',');
  for (const rec of steps) {
    const t = rec.time;
    const q = Array.from(rec.proprio.subarray(0, 6));
    const g = rec.proprio[6];
    // Both finger joints carry the per-finger opening, so a URDF display moves the fingers too.
    const js = jointStateMessage(q, new Array(6).fill(0), g, mapping, t);
    js.name = [...robot.armJoints, ...robot.fingerJoints];
    js.position = [...q, g, g];
    js.velocity = [];
    await publish('/joint_states', 'sensor_msgs/JointState', t, js);
    await publish('/evovla/policy_action', 'std_msgs/Float64MultiArray', t, {
      layout: { dim: [{ label: actionLabel, size: rec.action.length, stride: rec.action.length }], data_offset: 0 },
      data: Array.from(rec.action),
    });
    // The command the arm got: with action noise (DART demos) that is executedAction, not the label.
    const sent = rec.executedAction ?? rec.action;
    if (header.actionMode === 'joint') await publish('/evovla/command', 'trajectory_msgs/JointTrajectory', t, trajectoryMessage(Array.from(sent.subarray(0, 6)), mapping, period));
    await publish('/evovla/gripper_command', 'std_msgs/Float64MultiArray', t, gripperPositionMessage(sent[6], mapping));
    for (const [name, frame] of Object.entries(rec.images ?? {})) {
      const img: ImageMsg = {
        header: { stamp: toRosTime(t), frame_id: name },
        height: frame.height,
        width: frame.width,
        encoding: 'rgb8',
        is_bigendian: 0,
        step: frame.width * 3,
        data: frame.rgb,
      };
      await publish(`/camera/${name}/image_raw`, 'sensor_msgs/Image', t, img);
    }
    const tf: TFMessageMsg = {
      transforms: [
        ...Object.entries(rec.links).map(([name, pose]) => transform(WORLD_FRAME, name, pose, t)),
        transform(WORLD_FRAME, 'ee', rec.ee, t),
        ...Object.entries(rec.objects).map(([name, pose]) => transform(WORLD_FRAME, name, pose, t)),
      ],
    };
    await publish('/tf', 'tf2_msgs/TFMessage', t, tf);
    await publish('/evovla/stage', 'std_msgs/Int32', t, { data: rec.stage });
    await publish('/evovla/stage_name', 'std_msgs/String', t, { data: header.stages[rec.stage] ?? 'done' });
    if (rec.commandedStage !== undefined) await publish('/evovla/commanded_stage', 'std_msgs/Int32', t, { data: rec.commandedStage });
    if (rec.sarStage !== undefined) await publish('/evovla/sar_stage', 'std_msgs/Int32', t, { data: rec.sarStage });
    await publish('/evovla/reward', 'std_msgs/Float64', t, { data: rec.reward });
    for (const [term, value] of Object.entries(rec.rewardTerms)) await publish(`/evovla/reward/${term}`, 'std_msgs/Float64', t, { data: value });
  }
  await writer.end();
  makeDirectory(path.dirname(path.resolve(outFile)));
  const tmp = `${outFile}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, buffer.get());
  fs.renameSync(tmp, outFile);
  return { file: outFile, messages: sequence, topics: [...channelIds.keys()], steps: steps.length };
}
