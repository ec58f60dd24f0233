/**
 * ROS 2 message encoding/decoding for every type the bridge and the log use: our .msg texts parse
 * to the same definitions as the reference set, CDR round trips keep every field, known byte
 * layouts match, and the domain conversions map by joint name.
 */
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { ros2humble, ros2jazzy } from '@foxglove/rosmsg-msgs-common';
import {
  compressedToFrame,
  decisionDiagnostics,
  gripperCommandMessage,
  gripperPositionMessage,
  imageToFrame,
  JointNameError,
  jointStateMessage,
  readJointState,
  trajectoryMessage,
} from '../../../robot/ros2/convert.ts';
import { codec, definitions, dependencies, fromRosTime, MSG_TEXT, type RosType, schemaText, toRosTime } from '../../../robot/ros2/messages.ts';

const TYPES: RosType[] = [
  'std_msgs/Bool',
  'std_msgs/String',
  'std_msgs/Float64MultiArray',
  'sensor_msgs/JointState',
  'sensor_msgs/Image',
  'sensor_msgs/CompressedImage',
  'trajectory_msgs/JointTrajectory',
  'diagnostic_msgs/DiagnosticArray',
  'control_msgs/GripperCommand',
];

const map = { rosNames: ['j1', 'j2', 'j3', 'j4', 'j5', 'j6'], gripperName: 'gripper_joint', gripperScale: 2 };

function plain(x: unknown): unknown {
  if (ArrayBuffer.isView(x) && !(x instanceof DataView)) return Array.from(x as unknown as ArrayLike<number>);
  if (Array.isArray(x)) return x.map(plain);
  if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, plain(v)]));
  return x;
}

function roundTrip<T>(type: RosType, msg: T): unknown {
  const c = codec<T>(type);
  return plain(c.decode(c.encode(msg)));
}

describe('message definitions', () => {
  for (const type of TYPES) {
    if (type === 'control_msgs/GripperCommand') continue; // not in the reference set
    it(`${type} matches the reference ROS 2 definition (humble and jazzy)`, () => {
      type Field = { name: string; type: string; isArray?: boolean; isConstant?: boolean };
      const refs: Array<Record<string, { definitions: Field[] }>> = [ros2humble as never, ros2jazzy as never];
      for (const ref of refs) {
        const want: { definitions: Field[] } | undefined = ref[type];
        assert.ok(want, `reference lacks ${type}`);
        const ours: Field[] = definitions(type)[0].definitions;
        const shape = (d: Field) => `${d.name}:${d.type}${d.isArray ? '[]' : ''}${d.isConstant ? '=' : ''}`;
        assert.deepEqual(ours.map(shape), want.definitions.map(shape));
      }
    });
  }

  it('writes rosbag2-style schema text with every dependency once', () => {
    const text = schemaText('trajectory_msgs/JointTrajectory');
    assert.ok(text.startsWith(MSG_TEXT['trajectory_msgs/JointTrajectory']));
    for (const dep of ['std_msgs/Header', 'builtin_interfaces/Time', 'trajectory_msgs/JointTrajectoryPoint', 'builtin_interfaces/Duration']) {
      assert.equal(text.split(`MSG: ${dep}\n`).length, 2, dep);
    }
    assert.match(text, /\n={80}\nMSG: /);
    assert.deepEqual(dependencies('std_msgs/Bool'), []);
  });
});

describe('CDR encoding', () => {
  const header = { stamp: { sec: 12, nanosec: 345 }, frame_id: 'base' };
  it('std_msgs/Bool has the known 5-byte layout and round-trips', () => {
    const bytes = codec('std_msgs/Bool').encode({ data: true });
    assert.deepEqual(Array.from(bytes), [0, 1, 0, 0, 1]); // CDR little-endian encapsulation header + 1 byte
    assert.deepEqual(roundTrip('std_msgs/Bool', { data: false }), { data: false });
  });

  it('round-trips every message type with every field', () => {
    const cases: Array<[RosType, unknown]> = [
      ['std_msgs/String', { data: '<robot name="r"/>' }],
      ['std_msgs/Float64MultiArray', { layout: { dim: [{ label: 'x', size: 2, stride: 2 }], data_offset: 0 }, data: [1.5, Number.NaN] }],
      ['sensor_msgs/JointState', { header, name: ['a', 'b'], position: [0.1, -0.2], velocity: [1, 2], effort: [] }],
      ['sensor_msgs/Image', { header, height: 1, width: 2, encoding: 'rgb8', is_bigendian: 0, step: 6, data: new Uint8Array([1, 2, 3, 4, 5, 6]) }],
      ['sensor_msgs/CompressedImage', { header, format: 'png', data: new Uint8Array([9, 8, 7]) }],
      ['trajectory_msgs/JointTrajectory', trajectoryMessage([1, 2, 3, 4, 5, 6], map, 1 / 60)],
      ['diagnostic_msgs/DiagnosticArray', { header, status: [{ level: 2, name: 'n', message: 'm', hardware_id: 'h', values: [{ key: 'k', value: 'v' }] }] }],
      ['control_msgs/GripperCommand', { position: 0.03, max_effort: 10 }],
    ];
    for (const [type, msg] of cases) {
      const back = roundTrip(type, msg) as Record<string, unknown>;
      const want = plain(msg) as Record<string, unknown>;
      if (type === 'std_msgs/Float64MultiArray') {
        assert.ok(Number.isNaN((back.data as number[])[1]), 'NaN survives (the log keeps refused values)');
        (back.data as number[])[1] = 0;
        (want.data as number[])[1] = 0;
      }
      assert.deepEqual(back, want, type);
    }
  });

  it('converts seconds to ROS time exactly at the nanosecond boundary', () => {
    assert.deepEqual(toRosTime(1.5), { sec: 1, nanosec: 500_000_000 });
    assert.deepEqual(toRosTime(2.9999999999), { sec: 3, nanosec: 0 });
    assert.equal(fromRosTime({ sec: 3, nanosec: 250_000_000 }), 3.25);
    assert.throws(() => toRosTime(-1), /finite seconds >= 0, got -1/);
  });
});

describe('conversions', () => {
  it('reads joint states by name, in policy order, whatever order they arrive in', () => {
    const msg = {
      header: { stamp: { sec: 0, nanosec: 0 }, frame_id: '' },
      name: ['gripper_joint', 'j6', 'j5', 'j4', 'j3', 'j2', 'j1'],
      position: [0.05, 6, 5, 4, 3, 2, 1],
      velocity: [0, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1],
      effort: [],
    };
    const r = readJointState(msg, map);
    assert.deepEqual(r.q, [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(r.qd, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]);
    assert.equal(r.gripper, 0.025); // scale 2: the controller's unit is the total width
    assert.equal(readJointState({ ...msg, velocity: [] }, map).qd, null);
  });

  it('names missing joints and what arrived', () => {
    const msg = jointStateMessage([1, 2, 3, 4, 5, 6], [0, 0, 0, 0, 0, 0], 0.01, map, 0);
    const renamed = { ...msg, name: msg.name.map((n) => (n === 'j3' ? 'elbow' : n)) };
    assert.throws(() => readJointState(renamed, map), (e: unknown) => e instanceof JointNameError && /lacks joint 'j3'.*elbow/.test(e.message));
  });

  it('builds the trajectory and gripper commands ros2_control expects', () => {
    const t = trajectoryMessage([1, 2, 3, 4, 5, 6], map, 1 / 60);
    assert.deepEqual(t.joint_names, map.rosNames);
    assert.deepEqual(t.header.stamp, { sec: 0, nanosec: 0 }, 'zero stamp: start now');
    assert.equal(t.points.length, 1);
    assert.deepEqual(t.points[0].time_from_start, { sec: 0, nanosec: 16_666_667 });
    assert.deepEqual(gripperPositionMessage(0.02, map).data, [0.04]);
    assert.deepEqual(gripperCommandMessage(0.02, map, 5), { position: 0.04, max_effort: 5 });
  });

  it('decodes raw images in each encoding to RGB, honouring the row step', () => {
    const header = { stamp: { sec: 0, nanosec: 0 }, frame_id: '' };
    const bgr = imageToFrame({ header, width: 1, height: 2, encoding: 'bgr8', is_bigendian: 0, step: 4, data: new Uint8Array([3, 2, 1, 99, 6, 5, 4, 99]) });
    assert.deepEqual(Array.from(bgr.rgb), [1, 2, 3, 4, 5, 6]);
    const mono = imageToFrame({ header, width: 2, height: 1, encoding: 'mono8', is_bigendian: 0, step: 2, data: new Uint8Array([7, 8]) });
    assert.deepEqual(Array.from(mono.rgb), [7, 7, 7, 8, 8, 8]);
    assert.throws(() => imageToFrame({ header, width: 1, height: 1, encoding: '16UC1', is_bigendian: 0, step: 2, data: new Uint8Array(2) }), /'16UC1' is not supported/);
  });

  it('decodes PNG compressed images and refuses JPEG with what to do', () => {
    // A 2x1 RGB PNG built by hand: signature, IHDR, IDAT (filter 1 = Sub on the row), IEND.
    const chunk = (type: string, body: Uint8Array) => {
      const out = new Uint8Array(12 + body.length);
      const v = new DataView(out.buffer);
      v.setUint32(0, body.length);
      out.set(Buffer.from(type, 'ascii'), 4);
      out.set(body, 8);
      return out; // CRC left zero: the decoder does not check it
    };
    const ihdr = new Uint8Array(13);
    new DataView(ihdr.buffer).setUint32(0, 2);
    new DataView(ihdr.buffer).setUint32(4, 1);
    ihdr[8] = 8;
    ihdr[9] = 2;
    const raw = new Uint8Array([1, 10, 20, 30, 5, 5, 5]);
    const png = Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array())]);
    const header = { stamp: { sec: 0, nanosec: 0 }, frame_id: '' };
    const frame = compressedToFrame({ header, format: 'rgb8; png compressed bgr8', data: new Uint8Array(png) });
    assert.deepEqual([frame.width, frame.height], [2, 1]);
    assert.deepEqual(Array.from(frame.rgb), [10, 20, 30, 15, 25, 35]);
    assert.throws(() => compressedToFrame({ header, format: 'jpeg', data: new Uint8Array(4) }), /PNG only.*republish/);
  });

  it('reports a safety decision as a DiagnosticStatus with level and values', () => {
    const d = {
      t: 1, mode: 'hold' as const, source: 'hold' as const, reason: 'refused' as const, proposed: [Number.NaN, 0, 0, 0, 0, 0, 0], sent: [0, 0, 0, 0, 0, 0, 0.01],
      refusals: [{ check: 'nonfinite', field: 'joint1', value: Number.NaN, limit: Number.NaN }], clamps: [],
    };
    const msg = decisionDiagnostics(d, 'evovla: safety', 'arm', 10);
    assert.equal(msg.status[0].level, 2);
    assert.match(msg.status[0].message, /refused \(nonfinite joint1=NaN\)/);
    assert.ok(msg.status[0].values.some((kv) => kv.key === 'refusal0' && kv.value.startsWith('nonfinite joint1')));
    const back = roundTrip('diagnostic_msgs/DiagnosticArray', msg) as typeof msg;
    assert.equal(back.status[0].message, msg.status[0].message);
  });
});

describe('URDF limits', () => {
  it('reads revolute and prismatic limits by joint name, skipping fixed joints', async () => {
    const { urdfJointLimits } = await import('../../../robot/ros2/convert.ts');
    const text = `<robot name="r"><joint name="a" type="revolute"><parent link="x"/><child link="y"/><limit lower="-1" upper="2" velocity="3" effort="4"/></joint>
      <joint name="f" type="fixed"><parent link="y"/><child link="z"/></joint>
      <joint name="g" type="prismatic"><limit effort="1" velocity="0.2" lower="0" upper="0.04"/></joint></robot>`;
    const limits = urdfJointLimits(text);
    assert.deepEqual([...limits.keys()], ['a', 'g']);
    assert.deepEqual(limits.get('a'), { lower: -1, upper: 2, velocity: 3 });
    assert.deepEqual(limits.get('g'), { lower: 0, upper: 0.04, velocity: 0.2 });
  });
});
