/**
 * Conversions between the deploy loop's values and ROS 2 messages: JointState in (mapped by joint
 * name, never by position), Image / CompressedImage in, JointTrajectory and gripper commands out,
 * safety decisions as DiagnosticArray.
 */
import type { CameraFrame } from '../../sim/types.ts';
import type { Decision } from '../safety/layer.ts';
import {
  type CompressedImageMsg,
  DIAG,
  type DiagnosticArrayMsg,
  type Float64MultiArrayMsg,
  type GripperCommandMsg,
  type ImageMsg,
  type JointStateMsg,
  type JointTrajectoryMsg,
  toRosTime,
} from './messages.ts';
import { decodePng } from './png.ts';

/** How the policy's joints appear on the ROS side. */
export interface JointMapping {
  /** ROS joint name for each policy arm joint, in policy order. */
  rosNames: string[];
  /** ROS joint name of the gripper in /joint_states. */
  gripperName: string;
  /** ROS gripper unit = our per-finger opening (m) x scale. */
  gripperScale: number;
}

/** A JointState that lacks a joint we need; names what is missing and what arrived. */
export class JointNameError extends Error {
  override name = 'JointNameError';
}

/** Pick our joints out of a JointState by name. Velocity is null when the message carries none. */
export function readJointState(msg: JointStateMsg, map: JointMapping): { q: number[]; qd: number[] | null; gripper: number } {
  const index = new Map(msg.name.map((n, i) => [n, i]));
  const missing = [...map.rosNames, map.gripperName].filter((n) => !index.has(n));
  if (missing.length) {
    throw new JointNameError(`joint_states lacks joint${missing.length > 1 ? 's' : ''} ${missing.map((n) => `'${n}'`).join(', ')} (it has: ${msg.name.join(', ')}); set ros2.jointNames / ros2.gripper.jointName in the config`);
  }
  if (msg.position.length !== msg.name.length) {
    throw new JointNameError(`joint_states has ${msg.name.length} names but ${msg.position.length} positions`);
  }
  const q = map.rosNames.map((n) => msg.position[index.get(n) as number]);
  const hasVel = msg.velocity.length === msg.name.length;
  const qd = hasVel ? map.rosNames.map((n) => msg.velocity[index.get(n) as number]) : null;
  const gripper = msg.position[index.get(map.gripperName) as number] / map.gripperScale;
  return { q, qd, gripper };
}

/** A JointState message for our joints (used by the fake robot in tests and by the log). */
export function jointStateMessage(q: readonly number[], qd: readonly number[], gripper: number, map: JointMapping, stampS: number): JointStateMsg {
  return {
    header: { stamp: toRosTime(stampS), frame_id: '' },
    name: [...map.rosNames, map.gripperName],
    position: [...q, gripper * map.gripperScale],
    velocity: [...qd, 0],
    effort: [],
  };
}

/**
 * The arm command for joint_trajectory_controller: one point reached `timeFromStartS` from now.
 * A zero header stamp means "start now" to the controller, so our clock never has to match ROS time.
 */
export function trajectoryMessage(positions: readonly number[], map: JointMapping, timeFromStartS: number): JointTrajectoryMsg {
  return {
    header: { stamp: { sec: 0, nanosec: 0 }, frame_id: '' },
    joint_names: [...map.rosNames],
    points: [
      { positions: [...positions], velocities: [], accelerations: [], effort: [], time_from_start: toRosTime(timeFromStartS) },
    ],
  };
}

/** Gripper target for a position controller (forward_command_controller): one value. */
export function gripperPositionMessage(opening: number, map: JointMapping): Float64MultiArrayMsg {
  return { layout: { dim: [], data_offset: 0 }, data: [opening * map.gripperScale] };
}

/** Gripper target for control_msgs/action/GripperCommand (its goal's `command`). */
export function gripperCommandMessage(opening: number, map: JointMapping, maxEffort: number): GripperCommandMsg {
  return { position: opening * map.gripperScale, max_effort: maxEffort };
}

/** sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8, mono8) to an RGB frame. */
export function imageToFrame(msg: ImageMsg): CameraFrame {
  const { width, height, step, encoding } = msg;
  const channels = ({ rgb8: 3, bgr8: 3, rgba8: 4, bgra8: 4, mono8: 1 } as Record<string, number>)[encoding];
  if (!channels) throw new Error(`image encoding '${encoding}' is not supported (expected rgb8, bgr8, rgba8, bgra8 or mono8)`);
  if (step < width * channels || msg.data.length < step * height) {
    throw new Error(`image ${width}x${height} ${encoding}: step ${step} and ${msg.data.length} bytes do not fit (need step >= ${width * channels})`);
  }
  const bgr = encoding.startsWith('bgr');
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const s = y * step + x * channels;
      const d = (y * width + x) * 3;
      if (channels === 1) rgb[d] = rgb[d + 1] = rgb[d + 2] = msg.data[s];
      else {
        rgb[d] = msg.data[s + (bgr ? 2 : 0)];
        rgb[d + 1] = msg.data[s + 1];
        rgb[d + 2] = msg.data[s + (bgr ? 0 : 2)];
      }
    }
  }
  return { width, height, rgb };
}

/** sensor_msgs/CompressedImage to an RGB frame; PNG only (JPEG: republish raw, see docs/deploy.md). */
export function compressedToFrame(msg: CompressedImageMsg): CameraFrame {
  const format = msg.format.toLowerCase();
  if (!format.includes('png')) {
    throw new Error(`compressed image format '${msg.format}' cannot be decoded here (PNG only); republish it raw with \`ros2 run image_transport republish compressed raw\` and set compressed: false`);
  }
  return decodePng(msg.data);
}

/** A safety decision as a DiagnosticArray (one status named `name`). */
export function decisionDiagnostics(d: Decision, name: string, hardwareId: string, stampS: number): DiagnosticArrayMsg {
  const level = d.source === 'halt' || d.refusals.length || d.reason === 'stale_observation' || d.reason === 'stale_policy'
    ? DIAG.ERROR
    : d.source === 'hold' || d.clamps.length
      ? DIAG.WARN
      : DIAG.OK;
  const message = d.reason
    ? `${d.mode}: ${d.reason}${d.refusals.length ? ` (${d.refusals.map((f) => `${f.check} ${f.field}=${f.value}`).join(', ')})` : ''}`
    : d.clamps.length
      ? `running: clamped ${d.clamps.map((f) => `${f.check} ${f.field}`).join(', ')}`
      : 'running';
  const values = [
    { key: 'mode', value: d.mode },
    { key: 'source', value: d.source },
    { key: 'reason', value: d.reason ?? '' },
    { key: 'sent', value: d.sent.map((v) => v.toFixed(5)).join(' ') },
    { key: 'proposed', value: d.proposed ? d.proposed.map((v) => (Number.isFinite(v) ? v.toFixed(5) : String(v))).join(' ') : '' },
    ...d.refusals.map((f, i) => ({ key: `refusal${i}`, value: `${f.check} ${f.field} value=${f.value} limit=${f.limit}` })),
    ...d.clamps.map((f, i) => ({ key: `clamp${i}`, value: `${f.check} ${f.field} value=${f.value} limit=${f.limit}` })),
  ];
  return { header: { stamp: toRosTime(stampS), frame_id: '' }, status: [{ level, name, message, hardware_id: hardwareId, values }] };
}

/** Joint limits by joint name from a URDF document (revolute and prismatic joints with a <limit>). */
export function urdfJointLimits(urdf: string): Map<string, { lower: number; upper: number; velocity: number }> {
  const out = new Map<string, { lower: number; upper: number; velocity: number }>();
  // URDF joints are flat elements; a regex over <joint ...>...</joint> is enough to read limits.
  for (const m of urdf.matchAll(/<joint\b([^>]*)>([\s\S]*?)<\/joint>/g)) {
    const name = /\bname\s*=\s*"([^"]+)"/.exec(m[1])?.[1];
    const type = /\btype\s*=\s*"([^"]+)"/.exec(m[1])?.[1];
    const limit = /<limit\b([^>]*)\/?>/.exec(m[2])?.[1];
    if (!name || !limit || (type !== 'revolute' && type !== 'prismatic')) continue;
    const attr = (key: string) => Number(new RegExp(`\\b${key}\\s*=\\s*"([^"]+)"`).exec(limit)?.[1] ?? Number.NaN);
    out.set(name, { lower: attr('lower'), upper: attr('upper'), velocity: attr('velocity') });
  }
  return out;
}
