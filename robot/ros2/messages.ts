/**
 * ROS 2 message definitions for every type the bridge uses, CDR encode/decode
 * (@foxglove/rosmsg2-serialization), and the MCAP schema text rosbag2 writes ("ros2msg": the root
 * definition, then each dependency after a line of 80 '=' and "MSG: pkg/Name").
 *
 * The .msg texts are the standard interface definitions (rcl_interfaces / common_interfaces /
 * control_msgs) written out here because control_msgs has no JavaScript definition package and
 * because the schema text in a log must be the ROS 2 text, not a ROS 1 rendering of it.
 */
import { parse as parseMsg } from '@foxglove/rosmsg';
import { MessageReader, MessageWriter } from '@foxglove/rosmsg2-serialization';

type MessageDefinition = ReturnType<typeof parseMsg>[number];

/** .msg text by type name (pkg/Name). */
export const MSG_TEXT: Record<string, string> = {
  'builtin_interfaces/Time': 'int32 sec\nuint32 nanosec',
  'builtin_interfaces/Duration': 'int32 sec\nuint32 nanosec',
  'std_msgs/Header': 'builtin_interfaces/Time stamp\nstring frame_id',
  'std_msgs/Bool': 'bool data',
  'std_msgs/String': 'string data',
  'std_msgs/Float64': 'float64 data',
  'std_msgs/Int32': 'int32 data',
  'geometry_msgs/Vector3': 'float64 x\nfloat64 y\nfloat64 z',
  'geometry_msgs/Quaternion': 'float64 x 0\nfloat64 y 0\nfloat64 z 0\nfloat64 w 1',
  'geometry_msgs/Transform': 'geometry_msgs/Vector3 translation\ngeometry_msgs/Quaternion rotation',
  'geometry_msgs/TransformStamped': 'std_msgs/Header header\nstring child_frame_id\ngeometry_msgs/Transform transform',
  'tf2_msgs/TFMessage': 'geometry_msgs/TransformStamped[] transforms',
  'std_msgs/MultiArrayDimension': 'string label\nuint32 size\nuint32 stride',
  'std_msgs/MultiArrayLayout': 'std_msgs/MultiArrayDimension[] dim\nuint32 data_offset',
  'std_msgs/Float64MultiArray': 'std_msgs/MultiArrayLayout layout\nfloat64[] data',
  'sensor_msgs/JointState': 'std_msgs/Header header\nstring[] name\nfloat64[] position\nfloat64[] velocity\nfloat64[] effort',
  'sensor_msgs/Image':
    'std_msgs/Header header\nuint32 height\nuint32 width\nstring encoding\nuint8 is_bigendian\nuint32 step\nuint8[] data',
  'sensor_msgs/CompressedImage': 'std_msgs/Header header\nstring format\nuint8[] data',
  'trajectory_msgs/JointTrajectoryPoint':
    'float64[] positions\nfloat64[] velocities\nfloat64[] accelerations\nfloat64[] effort\nbuiltin_interfaces/Duration time_from_start',
  'trajectory_msgs/JointTrajectory':
    'std_msgs/Header header\nstring[] joint_names\ntrajectory_msgs/JointTrajectoryPoint[] points',
  'diagnostic_msgs/KeyValue': 'string key\nstring value',
  'diagnostic_msgs/DiagnosticStatus':
    'byte OK=0\nbyte WARN=1\nbyte ERROR=2\nbyte STALE=3\nbyte level\nstring name\nstring message\nstring hardware_id\ndiagnostic_msgs/KeyValue[] values',
  'diagnostic_msgs/DiagnosticArray': 'std_msgs/Header header\ndiagnostic_msgs/DiagnosticStatus[] status',
  'control_msgs/GripperCommand': 'float64 position\nfloat64 max_effort',
};

/** The message types the bridge and the command log use. */
export type RosType =
  | 'std_msgs/Bool'
  | 'std_msgs/String'
  | 'std_msgs/Float64'
  | 'std_msgs/Int32'
  | 'tf2_msgs/TFMessage'
  | 'std_msgs/Float64MultiArray'
  | 'sensor_msgs/JointState'
  | 'sensor_msgs/Image'
  | 'sensor_msgs/CompressedImage'
  | 'trajectory_msgs/JointTrajectory'
  | 'diagnostic_msgs/DiagnosticArray'
  | 'control_msgs/GripperCommand';

/** 'sensor_msgs/JointState' -> 'sensor_msgs/msg/JointState' (rclnodejs and rosbag2 spelling). */
export function ros2TypeName(type: string): string {
  const [pkg, name] = type.split('/');
  return `${pkg}/msg/${name}`;
}

/** Dependencies of `type` in first-use order (depth first), excluding `type` itself. */
export function dependencies(type: string): string[] {
  const out: string[] = [];
  const visit = (t: string) => {
    const text = MSG_TEXT[t];
    if (text === undefined) throw new Error(`no message definition for '${t}' (known: ${Object.keys(MSG_TEXT).join(', ')})`);
    for (const line of text.split('\n')) {
      const fieldType = line.trim().split(/\s+/)[0].replace(/\[\d*\]$/, '');
      if (fieldType.includes('/') && !out.includes(fieldType) && fieldType !== type) {
        out.push(fieldType);
        visit(fieldType);
      }
    }
  };
  visit(type);
  return out;
}

const SEPARATOR = '='.repeat(80);

/** The MCAP 'ros2msg' schema text for `type`, as rosbag2 writes it. */
export function schemaText(type: string): string {
  const parts = [MSG_TEXT[type]];
  for (const dep of dependencies(type)) parts.push(`${SEPARATOR}\nMSG: ${dep}\n${MSG_TEXT[dep]}`);
  return parts.join('\n');
}

const definitionCache = new Map<string, MessageDefinition[]>();

/** Parsed definitions for `type` (root first), as the CDR reader and writer want them. */
export function definitions(type: string): MessageDefinition[] {
  let defs = definitionCache.get(type);
  if (!defs) {
    defs = parseMsg(schemaText(type), { ros2: true });
    definitionCache.set(type, defs);
  }
  return defs;
}

/** CDR encoder/decoder for one message type. */
export interface Codec<T> {
  type: RosType;
  encode(message: T): Uint8Array;
  decode(data: ArrayBufferView): T;
}

const codecCache = new Map<string, Codec<any>>();

/** The CDR codec for `type` (cached). */
export function codec<T = unknown>(type: RosType): Codec<T> {
  let c = codecCache.get(type);
  if (!c) {
    const defs = definitions(type);
    const writer = new MessageWriter(defs);
    const reader = new MessageReader(defs);
    c = { type, encode: (m: T) => writer.writeMessage(m), decode: (d: ArrayBufferView) => reader.readMessage<T>(d) };
    codecCache.set(type, c);
  }
  return c as Codec<T>;
}

// ---- Message shapes (the fields as rclnodejs and the CDR codec see them) ----

export interface Time {
  sec: number;
  nanosec: number;
}
export interface Header {
  stamp: Time;
  frame_id: string;
}
export interface BoolMsg {
  data: boolean;
}
export interface JointStateMsg {
  header: Header;
  name: string[];
  position: ArrayLike<number>;
  velocity: ArrayLike<number>;
  effort: ArrayLike<number>;
}
export interface ImageMsg {
  header: Header;
  height: number;
  width: number;
  encoding: string;
  is_bigendian: number;
  step: number;
  data: Uint8Array;
}
export interface CompressedImageMsg {
  header: Header;
  format: string;
  data: Uint8Array;
}
export interface JointTrajectoryPointMsg {
  positions: number[];
  velocities: number[];
  accelerations: number[];
  effort: number[];
  time_from_start: Time;
}
export interface JointTrajectoryMsg {
  header: Header;
  joint_names: string[];
  points: JointTrajectoryPointMsg[];
}
export interface Float64MultiArrayMsg {
  layout: { dim: Array<{ label: string; size: number; stride: number }>; data_offset: number };
  data: number[];
}
export interface KeyValueMsg {
  key: string;
  value: string;
}
export interface DiagnosticStatusMsg {
  level: number;
  name: string;
  message: string;
  hardware_id: string;
  values: KeyValueMsg[];
}
export interface DiagnosticArrayMsg {
  header: Header;
  status: DiagnosticStatusMsg[];
}
export interface GripperCommandMsg {
  position: number;
  max_effort: number;
}

export interface TransformStampedMsg {
  header: Header;
  child_frame_id: string;
  transform: { translation: { x: number; y: number; z: number }; rotation: { x: number; y: number; z: number; w: number } };
}
export interface TFMessageMsg {
  transforms: TransformStampedMsg[];
}

/** DiagnosticStatus levels. */
export const DIAG = { OK: 0, WARN: 1, ERROR: 2, STALE: 3 } as const;

/** Seconds (>= 0) to a ROS time/duration. */
export function toRosTime(seconds: number): Time {
  if (!Number.isFinite(seconds) || seconds < 0) throw new RangeError(`time must be finite seconds >= 0, got ${seconds}`);
  let sec = Math.floor(seconds);
  let nanosec = Math.round((seconds - sec) * 1e9);
  if (nanosec >= 1e9) {
    sec += 1;
    nanosec -= 1e9;
  }
  return { sec, nanosec };
}

/** A ROS time to seconds. */
export function fromRosTime(t: Time): number {
  return t.sec + t.nanosec * 1e-9;
}
