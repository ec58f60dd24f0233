/**
 * The adapter that gives an Env's observations camera images. The env config turns it on (its
 * `cameras` list names the cameras and their sizes); this module renders them with a CameraRig
 * through the env's observation hook, so sim/ itself never imports three.js.
 *
 * A camera's config is built in layers, later ones winning field by field: the built-in placement
 * by name ('eye_side': fixed third-person view, mounted relative to the robot's base link;
 * 'eye_arm': wrist camera on the tool frame), a full CameraConfig passed here with that name, and
 * the fields of the env config's entry (size, and optionally intrinsics, clip planes, mount),
 * which are what an episode file records. Intrinsics go together: an entry giving `fovy` or any
 * of `fx`/`fy`/`cx`/`cy` replaces all of the layer below's.
 */
import { Rng } from '../rng.ts';
import type { EnvCameraConfig } from '../camera_config.ts';
import type { SimEnv } from '../env.ts';
import { getRobot, robotLinkVisuals } from '../robot/index.ts';
import type { SceneDesc } from '../types.ts';
import { lookAtPose, type CameraConfig } from './camera.ts';
import { CameraRig } from './cameras.ts';
import { parseVisualRandomization, type VisualRandomization } from './randomize.ts';
import type { MirrorDesc } from './scene.ts';

/**
 * Built-in placements: 'eye_side' looks at the workspace in front of the robot from the front
 * right (positions in the robot base frame, metres); 'eye_arm' looks along the tool's approach
 * axis (+Z of the tool frame, the fingers' direction) from 8 cm behind the tool point and 5 cm to
 * the side, so the fingertips and a grasped object are in view.
 */
export function defaultCameraConfig(name: string, baseLink: string, width = 128, height = 128): CameraConfig | undefined {
  if (name === 'eye_side') {
    return { name, width, height, fovy: 55, mount: { kind: 'link', link: baseLink, pose: lookAtPose([0.85, -0.5, 0.5], [0.3, 0, 0.02]) } };
  }
  if (name === 'eye_arm') {
    // The camera looks along its -Z; a half turn about X points it along the tool's +Z.
    return { name, width, height, fovy: 75, near: 0.005, far: 2, mount: { kind: 'link', link: 'ee', pose: { p: [-0.05, 0, -0.08], q: [1, 0, 0, 0] } } };
  }
  return undefined;
}

export interface EnvCameraOptions {
  /** Full configs for cameras named in the env config (override the built-in placement). */
  cameras?: CameraConfig[];
  /** Visual domain randomisation ranges (default none). */
  randomization?: VisualRandomization;
  /**
   * Mixed into the per-episode look seed. The look is a function of this and the episode's
   * randomisation (itself a function of the reset seed), so a seed gives the same images in any
   * process.
   */
  seed?: number;
}

const INTRINSIC_KEYS = ['fovy', 'fx', 'fy', 'cx', 'cy'] as const;

/**
 * The renderer config of an env config camera entry over `base` (a built-in placement or a full
 * config passed in code): the entry's fields win; intrinsics are replaced as a group.
 */
export function mergeCameraConfig(base: CameraConfig | undefined, entry: Readonly<EnvCameraConfig>): CameraConfig {
  const merged: Record<string, unknown> = { ...base };
  if (INTRINSIC_KEYS.some((k) => entry[k] !== undefined)) for (const k of INTRINSIC_KEYS) delete merged[k];
  for (const [k, v] of Object.entries(entry)) if (v !== undefined) merged[k] = v;
  return merged as CameraConfig;
}

/** What the mirror draws for a scene: its objects and its robot's links. */
export function mirrorDescOf(scene: SceneDesc): MirrorDesc {
  return { objects: scene.objects, links: robotLinkVisuals(scene.robot) };
}

function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

/** Cameras attached to an env: `rig` renders, `detach()` removes the hook and frees the GL context. */
export interface EnvCameras {
  readonly rig: CameraRig;
  /** `labels[id]` for the segmentation images of the current episode. */
  readonly labels: readonly string[];
  detach(): void;
}

/**
 * Attaches cameras to `env` when its config names any (returns null when `env.config.cameras` is
 * empty: rendering is off). Each observation then carries `images[name]` with RGB, depth and
 * segmentation. Call before `reset()`.
 */
export async function attachEnvCameras(env: SimEnv, options: EnvCameraOptions = {}): Promise<EnvCameras | null> {
  const wanted = env.config.cameras;
  if (wanted.length === 0) return null;
  const randomization = parseVisualRandomization(options.randomization ?? {});
  const probeScene = env.task.buildScene(env.task.randomize(new Rng(0)));
  const baseLink = getRobot(probeScene.robot).baseLink;
  const configs = wanted.map((c) => {
    const base = options.cameras?.find((x) => x.name === c.name) ?? defaultCameraConfig(c.name, baseLink);
    if (!base && !c.mount) {
      throw new RangeError(
        `env config camera '${c.name}' has no placement: give it a mount in the env config (e.g. mount: {kind: lookAt, eye: [x, y, z], target: [x, y, z]}), use 'eye_side' or 'eye_arm', or pass a full camera config with that name`,
      );
    }
    return mergeCameraConfig(base, c);
  });
  const rig = await CameraRig.create({ scene: mirrorDescOf(probeScene), cameras: configs });
  let shownFor: unknown = null;
  env.setObservationHook((state, e) => {
    // A reset brings a new randomisation object: rebuild the scene and sample a new look.
    if (e.randomization !== shownFor) {
      shownFor = e.randomization;
      if (e.randomization) {
        rig.setScene(mirrorDescOf(e.task.buildScene(e.randomization)));
        const lookSeed = hashString(`${options.seed ?? 0}:${JSON.stringify(e.randomization)}`);
        rig.randomize(new Rng(lookSeed), randomization);
      }
    }
    return rig.render(state);
  });
  let detached = false;
  return {
    rig,
    get labels() {
      return rig.labels;
    },
    detach() {
      if (detached) return;
      detached = true;
      env.setObservationHook(null);
      rig.dispose();
    },
  };
}

/**
 * Parses a camera list flag: `NAME[,NAME...][@WIDTHxHEIGHT]`, e.g. `eye_side,eye_arm@128x128`
 * (size default 128x128), into env config camera entries.
 */
export function parseCameraList(spec: string): Array<{ name: string; width: number; height: number }> {
  const m = /^([A-Za-z0-9_-]+(?:,[A-Za-z0-9_-]+)*)(?:@(\d+)x(\d+))?$/.exec(spec.trim());
  if (!m) throw new RangeError(`expected NAME[,NAME...][@WIDTHxHEIGHT] (e.g. eye_side,eye_arm@128x128), got '${spec}'`);
  const width = m[2] ? Number(m[2]) : 128;
  const height = m[3] ? Number(m[3]) : 128;
  if (width < 8 || height < 8 || width > 2048 || height > 2048) {
    throw new RangeError(`camera size must be 8..2048 pixels per side, got ${width}x${height}`);
  }
  const names = m[1].split(',');
  if (new Set(names).size !== names.length) throw new RangeError(`camera names repeat in '${spec}'`);
  return names.map((name) => ({ name, width, height }));
}
