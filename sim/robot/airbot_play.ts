/**
 * The AIRBOT Play arm (6 revolute joints + a parallel two-finger gripper, 0..0.04 m per finger),
 * described from the manufacturer's kinematics and mass data as published with the DISCOVERSE
 * simulator (its MJCF model gives link offsets, inertias and collision boxes; its URDF gives the
 * speed limits). Our own description, in our format (./description.ts).
 *
 * Frames follow the MJCF model: every joint turns about (or slides along) the child frame's Z axis
 * for the arm, and along Y for the fingers. link6's frame has +Z pointing out of the gripper and the
 * finger pads near its origin; the tool centre point sits between the pads.
 * Links without a collision box in the source (link1, link4, link5) get visual-only cylinders so
 * the renderer can draw them; they take no part in contacts, as in the source model.
 */
import { quatFromAxisAngle } from '../math.ts';
import type { ColliderDesc, Pose, Quat, Vec3 } from '../types.ts';
import type { Inertial, JointLimit, RobotDescription } from './description.ts';

/** MuJoCo writes quaternions w, x, y, z; ours are x, y, z, w. */
function wxyz(w: number, x: number, y: number, z: number): Quat {
  const n = Math.hypot(w, x, y, z);
  return [x / n, y / n, z / n, w / n];
}

function inertial(mass: number, com: Vec3, frame: Quat, principal: Vec3): Inertial {
  return { mass, com, frame, principal };
}

function box(halfExtents: Vec3, p: Vec3, yaw = 0, extra: Partial<ColliderDesc> = {}): ColliderDesc {
  return { shape: { kind: 'box', halfExtents }, pose: { p, q: quatFromAxisAngle([0, 0, 1], yaw) }, ...extra };
}

/** A visual-only cylinder along the axis given by a rotation about X (MJCF's euler="1.5708 0 0"). */
function visualCylinder(radius: number, halfHeight: number, p: Vec3, rollX = 0): ColliderDesc {
  return {
    shape: { kind: 'cylinder', radius, halfHeight },
    pose: { p, q: quatFromAxisAngle([1, 0, 0], rollX) },
    visualOnly: true,
  };
}

const DARK: [number, number, number] = [0.05, 0.05, 0.05];
const LIGHT: [number, number, number] = [0.85, 0.85, 0.85];

function limit(lower: number, upper: number, velocity: number, effort: number): JointLimit {
  return { lower, upper, velocity, effort };
}

function origin(p: Vec3, q: Quat = [0, 0, 0, 1]): Pose {
  return { p, q };
}

/**
 * Reflected rotor inertia (kg m^2) of the shoulder/elbow (joint1-3) and wrist (joint4-6) actuators.
 * The AIRBOT Play publishes none and DISCOVERSE's MJCF sets none (it damps the joints with
 * frictionloss 15 / 5 N m instead, which a Rapier multibody cannot express); these are typical of
 * geared joints of this size (MuJoCo models of comparable arms use 0.01-0.1), large enough that a
 * wrist struck at full arm speed is not spun past its speed limit.
 */
const ARM_ARMATURE = 0.1;
const WRIST_ARMATURE = 0.1;
/**
 * Reflected mass (kg) of the gripper drive along each finger's travel. Not published. A geared
 * finger drive reflects its rotor through the gear and screw as a large mass (a 2e-7 kg m^2 rotor
 * through 30:1 onto a 2 mm lead is ~1,800 kg: such fingers are not backdriven by what they touch).
 * Rapier gives a body one scalar mass, so it is added to the finger in every direction (the arm's
 * links have gravity scale 0, so it adds no weight). With the fingers' own 62 g, a hand slammed
 * onto the table at ~2.5 m/s drove a finger 3-11 mm past its closed end within one physics step
 * (Rapier's joint limit acts only once crossed, and the contact pushed the lightest part hardest);
 * with 0.3 kg and the drive's brake (sim/control.ts) no finger left its travel by more than
 * 1.3 mm in the exploration bench (0.2 kg: one finger 2.2 mm past its end in 180 episodes).
 * 0.5 kg made the cup's handle pinch fail (Jujube-Cup 0 of 3 at lift_cup).
 */
const FINGER_ARMATURE = 0.3;

/**
 * Finger pad friction: rubber pads on wood, about 0.6-0.9 (handbook tables for rubber on dry wood);
 * combined with the object by taking the larger coefficient.
 */
const PAD_FRICTION = 0.8;

export const AIRBOT_PLAY: RobotDescription = {
  id: 'airbot_play',
  source: 'built-in airbot_play',
  baseLink: 'arm_base',
  links: [
    {
      name: 'arm_base',
      inertial: inertial(0.77705, [-0.010729, -0.00017015, 0.041712], [0, 0, 0, 1], [0.0008454, 0.0011821, 0.0012443]),
      colliders: [
        box([0.0806, 0.1375, 0.0025], [-0.02, 0, 0.005], Math.PI / 2, { color: DARK }),
        box([0.07, 0.05, 0.04], [-0.015, 0, 0.045], 0, { color: LIGHT }),
      ],
    },
    {
      name: 'link1',
      inertial: inertial(0.54639, [7.9126e-5, -0.002527, -0.0041359], wxyz(0.696716, 0.716558, 0.0238919, -0.0236876), [
        0.000346294, 0.000325437, 0.000286269,
      ]),
      colliders: [{ ...visualCylinder(0.045, 0.035, [0, 0, -0.02]), color: DARK }],
    },
    {
      name: 'link2',
      inertial: inertial(0.64621, [0.22493, 0.0047721, 0.008023], wxyz(-0.210875, 0.632473, -0.273056, 0.693506), [
        0.00516535, 0.00505042, 0.000418626,
      ]),
      colliders: [
        box([0.11, 0.03, 0.04], [0.08, 0.015, 0], 0.15, { color: LIGHT }),
        box([0.065, 0.025, 0.045], [0.235, 0.015, 0], -0.3, { color: LIGHT }),
      ],
    },
    {
      name: 'link3',
      inertial: inertial(0.26829, [0.16813, -5.5576e-5, 0.0031184], wxyz(0.511278, 0.488423, 0.489191, 0.510617), [
        0.0031527, 0.0030951, 0.000239403,
      ]),
      colliders: [box([0.13, 0.025, 0.025], [0.13, 0, 0], 0, { color: LIGHT })],
    },
    {
      name: 'link4',
      inertial: inertial(0.34876, [5.2436e-6, 0.00040412, -0.03228], wxyz(0.999969, -0.000174762, -0.00792041, -6.98144e-5), [
        0.000423574, 0.000412, 0.000126826,
      ]),
      colliders: [{ ...visualCylinder(0.03, 0.03, [0, 0, 0], Math.PI / 2), color: DARK }],
    },
    {
      name: 'link5',
      inertial: inertial(0.36132, [8.3328e-6, 0.026148, 0.002525], wxyz(0.531568, 0.4663, 0.4663, 0.531568), [
        0.0004677, 0.000432922, 0.000178178,
      ]),
      colliders: [{ ...visualCylinder(0.03, 0.03, [0, 0.06, 0], Math.PI / 2), color: LIGHT }],
    },
    {
      name: 'link6',
      inertial: inertial(0.53855, [-0.0047053, 7.3857e-5, -0.12293], [0, 0, 0, 1], [5e-5, 5e-5, 3.85e-5]),
      colliders: [
        box([0.025, 0.08, 0.015], [0, 0, -0.07], 0, { color: DARK }),
        { ...visualCylinder(0.03, 0.03, [0, 0, -0.11]), color: DARK },
      ],
    },
    {
      name: 'left_finger',
      inertial: inertial(0.0626, [-0.048742, 0.0096369, 0.00044322], wxyz(0.757393, 0.0415116, 0.0313705, 0.650883), [
        2.79281e-5, 1.90181e-5, 1.21737e-5,
      ]),
      colliders: [
        box([0.00525, 0.002, 0.02], [0, 0.002, 0.005], 0, { friction: PAD_FRICTION, color: DARK }),
        box([0.015, 0.002, 0.018], [0, 0.002, -0.035], 0, { friction: PAD_FRICTION, color: DARK }),
      ],
    },
    {
      name: 'right_finger',
      inertial: inertial(0.061803, [-0.049039, -0.0096764, 0.00038868], wxyz(0.650491, 0.0296695, 0.0398251, 0.757889), [
        2.74809e-5, 1.88104e-5, 1.19127e-5,
      ]),
      colliders: [
        box([0.00525, 0.002, 0.02], [0, -0.002, 0.005], 0, { friction: PAD_FRICTION, color: DARK }),
        box([0.015, 0.002, 0.018], [0, -0.002, -0.035], 0, { friction: PAD_FRICTION, color: DARK }),
      ],
    },
  ],
  joints: [
    { name: 'joint1', type: 'revolute', parent: 'arm_base', child: 'link1', origin: origin([0, 0, 0.1172]), axis: [0, 0, 1], limit: limit(-3.151, 2.089, 3.14, 24), armature: ARM_ARMATURE },
    { name: 'joint2', type: 'revolute', parent: 'link1', child: 'link2', origin: origin([0, 0, 0], wxyz(0.135866, 0.135867, -0.69393, 0.693932)), axis: [0, 0, 1], limit: limit(-2.963, 0.181, 3.14, 24), armature: ARM_ARMATURE },
    { name: 'joint3', type: 'revolute', parent: 'link2', child: 'link3', origin: origin([0.27009, 0, 0], wxyz(0.192144, 0, 0, -0.981367)), axis: [0, 0, 1], limit: limit(-0.094, 3.161, 3.14, 24), armature: ARM_ARMATURE },
    { name: 'joint4', type: 'revolute', parent: 'link3', child: 'link4', origin: origin([0.29015, 0, 0], wxyz(-2.59734e-6, 0.707105, 2.59735e-6, 0.707108)), axis: [0, 0, 1], limit: limit(-3.012, 3.012, 6.28, 8), armature: WRIST_ARMATURE },
    { name: 'joint5', type: 'revolute', parent: 'link4', child: 'link5', origin: origin([0, 0, 0], wxyz(0.707105, 0.707108, 0, 0)), axis: [0, 0, 1], limit: limit(-1.859, 1.859, 6.28, 8), armature: WRIST_ARMATURE },
    { name: 'joint6', type: 'revolute', parent: 'link5', child: 'link6', origin: origin([0, 0.23645, 0], wxyz(0.499998, -0.5, 0.5, 0.500002)), axis: [0, 0, 1], limit: limit(-3.017, 3.017, 6.28, 8), armature: WRIST_ARMATURE },
    // The source model slides the second finger along -Y with a negative range; we flip the axis so
    // both joint values are the opening per finger (0 closed .. 0.04 open).
    { name: 'finger_left', type: 'prismatic', parent: 'link6', child: 'left_finger', origin: origin([0, 0, 0]), axis: [0, 1, 0], limit: limit(0, 0.04, 0.2, 7.5), armature: FINGER_ARMATURE },
    { name: 'finger_right', type: 'prismatic', parent: 'link6', child: 'right_finger', origin: origin([0, 0, 0]), axis: [0, -1, 0], limit: limit(0, 0.04, 0.2, 7.5), armature: FINGER_ARMATURE },
  ],
  armJoints: ['joint1', 'joint2', 'joint3', 'joint4', 'joint5', 'joint6'],
  fingerJoints: ['finger_left', 'finger_right'],
  // DISCOVERSE's gripper actuator: forcerange +-15 N on a tendon of coefficient 0.5 per finger,
  // so each finger squeezes with 7.5 N once stalled.
  gripper: { min: 0, max: 0.04, force: 7.5 },
  // Between the finger pads (pad centres are 5 mm out from link6's origin).
  tcp: { link: 'link6', pose: { p: [0, 0, 0.005], q: [0, 0, 0, 1] } },
  // The start pose of DISCOVERSE's block tasks.
  home: [-0.055, -0.547, 0.905, 1.599, -1.398, -1.599],
};
