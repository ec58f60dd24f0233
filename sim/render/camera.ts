/**
 * Cameras resolved from their configs (intrinsics and mounting; the config schema itself is plain
 * data in sim/camera_config.ts) and the pinhole maths shared by the headless renderer and the
 * tests that check its images.
 *
 * Two cameras as in Discoverse: a fixed third-person camera ('eye_side') and a wrist camera on the
 * gripper ('eye_arm'). Intrinsics follow OpenCV: pixel (u, v) with u to the right, v down, the
 * centre of the top-left pixel at (0, 0); fx, fy, cx, cy in pixels. The camera frame is OpenGL's
 * (x right, y up, looking along -z), which is what three.js cameras use and what MuJoCo cameras
 * (Discoverse) use, so mount poses carry over without a flip.
 */
import { cameraConfigSchema, type CameraConfig, type CameraMount } from '../camera_config.ts';
import type { Pose, Quat, Vec3 } from '../types.ts';
import { poseApply, quatConj, quatMul, quatRotate } from '../math.ts';

// The config schema is plain data and lives in sim/ (the env config validates cameras with it).
export { cameraConfigSchema, cameraMountSchema, type CameraConfig, type CameraMount } from '../camera_config.ts';

/** Pinhole intrinsics in pixels (OpenCV convention). */
export interface Intrinsics {
  fx: number;
  fy: number;
  cx: number;
  cy: number;
}

/** A camera, fully resolved (defaults applied). */
export interface CameraSpec {
  name: string;
  width: number;
  height: number;
  intrinsics: Intrinsics;
  /** Clip planes in metres; depth outside (near, far) reads as 0. */
  near: number;
  far: number;
  mount: CameraMount;
  /** Which images to produce. RGB is always produced. */
  depth: boolean;
  segmentation: boolean;
}

/** Validates one camera config and fills in defaults (intrinsics from fovy when fx/fy are absent). */
export function resolveCamera(config: CameraConfig): CameraSpec {
  const parsed = cameraConfigSchema.safeParse(config);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${['camera', ...i.path].join('.')}: ${i.message}`);
    throw new RangeError(`invalid camera config ${JSON.stringify((config as { name?: unknown }).name ?? '?')}: ${issues.join('; ')}`);
  }
  const c = parsed.data;
  const fromFov = c.height / 2 / Math.tan(((c.fovy * Math.PI) / 180) / 2);
  return {
    name: c.name,
    width: c.width,
    height: c.height,
    intrinsics: {
      fx: c.fx ?? fromFov,
      fy: c.fy ?? c.fx ?? fromFov,
      cx: c.cx ?? (c.width - 1) / 2,
      cy: c.cy ?? (c.height - 1) / 2,
    },
    near: c.near,
    far: c.far,
    mount: c.mount,
    depth: c.depth,
    segmentation: c.segmentation,
  };
}

/**
 * Default cameras at 128x128: a third-person view of the table from the front-right, and a wrist
 * camera on the tool frame looking along the tool's approach axis (+Z of the tool frame), set a
 * little behind the fingertips so the fingers and the grasped object are in view.
 */
export function defaultCameras(size = 128): CameraConfig[] {
  return [
    { name: 'eye_side', width: size, height: size, fovy: 55, mount: { kind: 'lookAt', eye: [1.0, -0.55, 0.65], target: [0.35, 0, 0.05] } },
    {
      name: 'eye_arm',
      width: size,
      height: size,
      fovy: 75,
      near: 0.005,
      far: 2,
      // Camera looks along its -Z; the tool approaches along +Z: rotate 180 deg about X.
      mount: { kind: 'link', link: 'ee', pose: { p: [0, -0.05, -0.09], q: [1, 0, 0, 0] } },
    },
  ];
}

/**
 * OpenGL projection matrix (column-major, as three.js `Matrix4.elements`) for pinhole
 * intrinsics. With the OpenCV pixel convention, continuous image x of pixel column u is u + 0.5.
 */
export function projectionFromIntrinsics(k: Intrinsics, width: number, height: number, near: number, far: number): number[] {
  const a = (2 * k.fx) / width;
  const b = (2 * k.fy) / height;
  // Clip-space x = a*x + (1 - 2(cx+0.5)/W) * z; y = b*y + (2(cy+0.5)/H - 1) * z  (z < 0 in front).
  const c = 1 - (2 * (k.cx + 0.5)) / width;
  const d = (2 * (k.cy + 0.5)) / height - 1;
  const e = -(far + near) / (far - near);
  const f = (-2 * far * near) / (far - near);
  // Column-major.
  return [a, 0, 0, 0, 0, b, 0, 0, c, d, e, -1, 0, 0, f, 0];
}

/** Composes poses: `parent * child`. */
export function composePose(parent: Pose, child: Pose): Pose {
  return { p: poseApply(parent, child.p), q: quatMul(parent.q, child.q) };
}

/** Camera pose (OpenGL camera frame) looking from `eye` at `target` with world +Z up. */
export function lookAtPose(eye: Vec3, target: Vec3): Pose {
  // Camera axes in the world: back (+z) = eye - target, right (+x) = up x back, up (+y) = back x right.
  let bz: Vec3 = [eye[0] - target[0], eye[1] - target[1], eye[2] - target[2]];
  const n = Math.hypot(...bz);
  if (!(n > 0)) throw new RangeError(`camera eye and target must differ, got eye=${JSON.stringify(eye)} target=${JSON.stringify(target)}`);
  bz = [bz[0] / n, bz[1] / n, bz[2] / n];
  let bx: Vec3 = [-bz[1], bz[0], 0]; // (0,0,1) x bz
  const nx = Math.hypot(...bx);
  // Looking straight down or up: any right vector will do; pick world +X.
  bx = nx < 1e-9 ? [1, 0, 0] : [bx[0] / nx, bx[1] / nx, bx[2] / nx];
  const by: Vec3 = [bz[1] * bx[2] - bz[2] * bx[1], bz[2] * bx[0] - bz[0] * bx[2], bz[0] * bx[1] - bz[1] * bx[0]];
  return { p: [...eye], q: quatFromBasis(bx, by, bz) };
}

/** Quaternion of the rotation whose columns are the given axes (Shepperd's method). */
function quatFromBasis(x: Vec3, y: Vec3, zAxis: Vec3): Quat {
  const m00 = x[0], m10 = x[1], m20 = x[2];
  const m01 = y[0], m11 = y[1], m21 = y[2];
  const m02 = zAxis[0], m12 = zAxis[1], m22 = zAxis[2];
  const tr = m00 + m11 + m22;
  let q: Quat;
  if (tr > 0) {
    const s = Math.sqrt(tr + 1) * 2;
    q = [(m21 - m12) / s, (m02 - m20) / s, (m10 - m01) / s, 0.25 * s];
  } else if (m00 > m11 && m00 > m22) {
    const s = Math.sqrt(1 + m00 - m11 - m22) * 2;
    q = [0.25 * s, (m01 + m10) / s, (m02 + m20) / s, (m21 - m12) / s];
  } else if (m11 > m22) {
    const s = Math.sqrt(1 + m11 - m00 - m22) * 2;
    q = [(m01 + m10) / s, 0.25 * s, (m12 + m21) / s, (m02 - m20) / s];
  } else {
    const s = Math.sqrt(1 + m22 - m00 - m11) * 2;
    q = [(m02 + m20) / s, (m12 + m21) / s, 0.25 * s, (m10 - m01) / s];
  }
  return q;
}

/** A camera's world pose for a state (`links` by name; 'ee' is the tool pose). */
export function cameraWorldPose(mount: CameraMount, state: { links: Record<string, Pose>; ee?: Pose }): Pose {
  switch (mount.kind) {
    case 'world':
      return mount.pose;
    case 'lookAt':
      return lookAtPose(mount.eye, mount.target);
    case 'link': {
      const parent = mount.link === 'ee' ? state.ee : state.links[mount.link];
      if (!parent) {
        const known = ['ee', ...Object.keys(state.links)].join(', ');
        throw new RangeError(`camera mounted on link '${mount.link}', which the state does not have (known: ${known})`);
      }
      return composePose(parent, mount.pose);
    }
  }
}

/**
 * Projects a world point into a camera: pixel coordinates (OpenCV convention) and the depth
 * along the optical axis in metres (negative when behind the camera).
 */
export function projectPoint(spec: Pick<CameraSpec, 'intrinsics'>, cameraPose: Pose, point: Vec3): { u: number; v: number; depth: number } {
  const rel: Vec3 = [point[0] - cameraPose.p[0], point[1] - cameraPose.p[1], point[2] - cameraPose.p[2]];
  const c = quatRotate(quatConj(cameraPose.q), rel);
  const depth = -c[2];
  const k = spec.intrinsics;
  return { u: k.cx + (k.fx * c[0]) / depth, v: k.cy - (k.fy * c[1]) / depth, depth };
}

/**
 * The world point seen at pixel (u, v) (OpenCV convention) at `depth` metres along the optical
 * axis: the inverse of projectPoint, e.g. to turn a depth image into a point cloud.
 */
export function unprojectPixel(spec: Pick<CameraSpec, 'intrinsics'>, cameraPose: Pose, u: number, v: number, depth: number): Vec3 {
  const k = spec.intrinsics;
  const c: Vec3 = [((u - k.cx) / k.fx) * depth, (-(v - k.cy) / k.fy) * depth, -depth];
  const r = quatRotate(cameraPose.q, c);
  return [cameraPose.p[0] + r[0], cameraPose.p[1] + r[1], cameraPose.p[2] + r[2]];
}
