/**
 * The three.js scene mirrored from the simulator's state. One module builds it for both the
 * headless cameras (Node, `gl`) and the browser viewer, so what a policy sees and what a person
 * watches are drawn by the same code.
 *
 * Browser-safe: imports only three.js and sim types (no Node modules, no Rapier), so esbuild can
 * bundle it into the viewer. The robot's link geometry is passed in as data (`LinkVisual[]`,
 * from `robotLinkVisuals()` on the Node side) rather than imported, for the same reason.
 *
 * Conventions: the data stay Z-up (the world frame of sim/types.ts); cameras set `up = +Z`
 * instead of rotating the data. Cylinders and capsules have their axis along local Z, so their
 * three.js (Y-axis) geometries are rotated once when built.
 */
import * as THREE from 'three';
import type { Color, ColliderDesc, ObjectDesc, Pose, ShapeDesc } from '../types.ts';

/** The colliders drawn for one robot link, at `SimState.links[link]`. */
export interface LinkVisual {
  link: string;
  colliders: ColliderDesc[];
}

/** What the mirror draws: the scene's objects and the robot's links. */
export interface MirrorDesc {
  objects: ObjectDesc[];
  links: LinkVisual[];
  /** Draw a ground plane at z = 0 (default true); it gets its own segmentation id. */
  ground?: boolean;
}

/** Poses to show: any SimState or StepRecord fits. */
export interface PoseSource {
  links: Record<string, Pose>;
  objects: Record<string, Pose>;
}

/**
 * 'lambert' is cheap (headless cameras at hundreds of frames/s); 'standard' is PBR with
 * shadows for people (the viewer).
 */
export type MaterialStyle = 'lambert' | 'standard';

export interface SceneMirrorOptions {
  materials?: MaterialStyle;
  /** Cast and receive shadows (viewer only; costs a shadow pass per frame). */
  shadows?: boolean;
}

/** One drawn collider: its mesh, the body it belongs to and that body's segmentation id. */
export interface MirrorMesh {
  mesh: THREE.Mesh;
  /** Object name, `robot/<link>` or 'ground'. */
  label: string;
  segmentationId: number;
  /** The colour from the description, before any randomisation (linear RGB). */
  baseColor: Color;
}

/** Label of segmentation id 0: pixels that hit nothing. */
export const BACKGROUND_LABEL = 'background';
/** Prefix of robot link labels in the segmentation table. */
export const ROBOT_LABEL_PREFIX = 'robot/';
export const GROUND_LABEL = 'ground';

const DEFAULT_OBJECT_COLOR: Color = [0.6, 0.6, 0.6];
const DEFAULT_LINK_COLOR: Color = [0.75, 0.75, 0.78];
const GROUND_COLOR: Color = [0.32, 0.33, 0.35];
const GROUND_HALF_SIZE = 5;

/**
 * Segmentation ids, fixed by the description so they are the same in every process:
 * 0 background, 1..N the scene's objects in `objects` order, then the robot links in `links`
 * order, then the ground. `labels[id]` names each id.
 */
export function segmentationLabels(desc: MirrorDesc): string[] {
  const labels = [BACKGROUND_LABEL];
  for (const o of desc.objects) labels.push(o.name);
  for (const l of desc.links) labels.push(ROBOT_LABEL_PREFIX + l.link);
  if (desc.ground ?? true) labels.push(GROUND_LABEL);
  return labels;
}

function shapeKey(shape: ShapeDesc): string {
  switch (shape.kind) {
    case 'box':
      return `box:${shape.halfExtents.join(',')}`;
    case 'sphere':
      return `sphere:${shape.radius}`;
    case 'cylinder':
    case 'capsule':
      return `${shape.kind}:${shape.halfHeight},${shape.radius}`;
  }
}

function checkPositive(value: number, what: string): void {
  if (!(Number.isFinite(value) && value > 0)) {
    throw new RangeError(`${what} must be a finite number > 0, got ${value}`);
  }
}

/** A three.js geometry for a shape, in the shape's own frame (axis along local Z). */
export function geometryFor(shape: ShapeDesc): THREE.BufferGeometry {
  switch (shape.kind) {
    case 'box': {
      const [x, y, z] = shape.halfExtents;
      for (const [i, h] of shape.halfExtents.entries()) checkPositive(h, `box halfExtents[${i}]`);
      return new THREE.BoxGeometry(2 * x, 2 * y, 2 * z);
    }
    case 'sphere':
      checkPositive(shape.radius, 'sphere radius');
      return new THREE.SphereGeometry(shape.radius, 24, 16);
    case 'cylinder': {
      checkPositive(shape.radius, 'cylinder radius');
      checkPositive(shape.halfHeight, 'cylinder halfHeight');
      // three.js cylinders stand along +Y; ours along +Z.
      return new THREE.CylinderGeometry(shape.radius, shape.radius, 2 * shape.halfHeight, 24).rotateX(Math.PI / 2);
    }
    case 'capsule': {
      checkPositive(shape.radius, 'capsule radius');
      checkPositive(shape.halfHeight, 'capsule halfHeight');
      return new THREE.CapsuleGeometry(shape.radius, 2 * shape.halfHeight, 6, 16).rotateX(Math.PI / 2);
    }
    default:
      throw new TypeError(`unknown shape kind ${JSON.stringify((shape as { kind: unknown }).kind)} (expected box, sphere, cylinder or capsule)`);
  }
}

/** Sets a three.js object's transform from a Pose (position + [x,y,z,w] quaternion). */
export function applyPose(target: THREE.Object3D, pose: Pose): void {
  target.position.set(pose.p[0], pose.p[1], pose.p[2]);
  target.quaternion.set(pose.q[0], pose.q[1], pose.q[2], pose.q[3]);
}

/**
 * A three.js group that mirrors the simulator: build once per scene, then `update()` with each
 * state. Meshes are grouped per body; collider offsets are the meshes' local transforms, so an
 * update sets one transform per body.
 */
export class SceneMirror {
  /** Add this to a THREE.Scene. */
  readonly root = new THREE.Group();
  /** `labels[id]` is the name of segmentation id `id` (see segmentationLabels()). */
  readonly labels: string[];
  readonly meshes: MirrorMesh[] = [];
  private readonly objectGroups = new Map<string, THREE.Group>();
  private readonly linkGroups = new Map<string, THREE.Group>();
  private readonly geometries = new Map<string, THREE.BufferGeometry>();
  private readonly materials: THREE.Material[] = [];
  private disposed = false;

  constructor(desc: MirrorDesc, options: SceneMirrorOptions = {}) {
    const style = options.materials ?? 'lambert';
    const shadows = options.shadows ?? false;
    this.labels = segmentationLabels(desc);
    this.root.name = 'evovla-scene';
    let nextId = 1;
    const seen = new Set<string>();
    for (const obj of desc.objects) {
      if (seen.has(obj.name)) throw new Error(`duplicate object name '${obj.name}' (object names must be unique)`);
      seen.add(obj.name);
      const group = this.addBody(obj.name, obj.colliders, obj.color ?? DEFAULT_OBJECT_COLOR, nextId++, style, shadows);
      applyPose(group, obj.pose);
      this.objectGroups.set(obj.name, group);
    }
    for (const link of desc.links) {
      const label = ROBOT_LABEL_PREFIX + link.link;
      if (seen.has(label)) throw new Error(`duplicate robot link '${link.link}'`);
      seen.add(label);
      const group = this.addBody(label, link.colliders, DEFAULT_LINK_COLOR, nextId++, style, shadows);
      // Hidden until the first update gives the link a pose, so a link missing from the state
      // is not drawn at the origin.
      group.visible = false;
      this.linkGroups.set(link.link, group);
    }
    if (desc.ground ?? true) {
      const ground: ColliderDesc = {
        shape: { kind: 'box', halfExtents: [GROUND_HALF_SIZE, GROUND_HALF_SIZE, 0.005] },
        // Its top 2 mm below z = 0: tables whose top is at z = 0 would otherwise z-fight with it.
        pose: { p: [0, 0, -0.007], q: [0, 0, 0, 1] },
      };
      const group = this.addBody(GROUND_LABEL, [ground], GROUND_COLOR, nextId++, style, false);
      for (const m of group.children) m.receiveShadow = shadows;
    }
  }

  private addBody(
    label: string,
    colliders: ColliderDesc[],
    defaultColor: Color,
    segmentationId: number,
    style: MaterialStyle,
    shadows: boolean,
  ): THREE.Group {
    const group = new THREE.Group();
    group.name = label;
    for (const c of colliders) {
      const key = shapeKey(c.shape);
      let geometry = this.geometries.get(key);
      if (!geometry) {
        geometry = geometryFor(c.shape);
        this.geometries.set(key, geometry);
      }
      const baseColor = c.color ?? defaultColor;
      const color = new THREE.Color().setRGB(baseColor[0], baseColor[1], baseColor[2], THREE.LinearSRGBColorSpace);
      const material =
        style === 'standard'
          ? new THREE.MeshStandardMaterial({ color, roughness: 0.6, metalness: 0.05 })
          : new THREE.MeshLambertMaterial({ color });
      this.materials.push(material);
      const mesh = new THREE.Mesh(geometry, material);
      mesh.name = label;
      if (c.pose) applyPose(mesh, c.pose);
      mesh.castShadow = shadows;
      mesh.receiveShadow = shadows;
      group.add(mesh);
      this.meshes.push({ mesh, label, segmentationId, baseColor });
    }
    this.root.add(group);
    return group;
  }

  /**
   * Moves bodies to the poses in `state`. Objects or links absent from `state` keep their last
   * pose (objects) or stay hidden (links that never had one); names in `state` that the mirror
   * does not know are ignored (e.g. a marker only the physics has).
   */
  update(state: PoseSource): void {
    for (const [name, group] of this.objectGroups) {
      const pose = state.objects[name];
      if (pose) applyPose(group, pose);
    }
    for (const [link, group] of this.linkGroups) {
      const pose = state.links[link];
      if (pose) {
        applyPose(group, pose);
        group.visible = true;
      }
    }
  }

  /** The group of an object or robot link (`robot/<link>`), for attaching cameras or markers. */
  bodyGroup(label: string): THREE.Group | undefined {
    if (label.startsWith(ROBOT_LABEL_PREFIX)) return this.linkGroups.get(label.slice(ROBOT_LABEL_PREFIX.length));
    return this.objectGroups.get(label);
  }

  /** Releases GPU geometry and materials. The mirror is unusable afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const g of this.geometries.values()) g.dispose();
    for (const m of this.materials) m.dispose();
    this.root.removeFromParent();
    this.root.clear();
  }
}

/** Lights shared by the cameras and the viewer, so both see the same shading. */
export interface SceneLights {
  ambient: THREE.HemisphereLight;
  key: THREE.DirectionalLight;
  /** Default values, so randomisation can restore them. */
  readonly defaults: { ambientIntensity: number; keyIntensity: number; keyPosition: THREE.Vector3 };
  dispose(): void;
}

/** Adds a sky/ground hemisphere light and a key light from above to `scene`. */
export function addLights(scene: THREE.Scene, options: { shadows?: boolean } = {}): SceneLights {
  const ambient = new THREE.HemisphereLight(0xffffff, 0x444444, 1.2);
  // HemisphereLight's "sky" direction follows its position; Z is up in our world.
  ambient.position.set(0, 0, 1);
  const key = new THREE.DirectionalLight(0xffffff, 1.8);
  key.position.set(0.8, 0.6, 2.0);
  if (options.shadows) {
    key.castShadow = true;
    key.shadow.mapSize.set(1024, 1024);
    const cam = key.shadow.camera;
    cam.left = -1.5;
    cam.right = 1.5;
    cam.top = 1.5;
    cam.bottom = -1.5;
    cam.near = 0.1;
    cam.far = 6;
  }
  scene.add(ambient, key, key.target);
  return {
    ambient,
    key,
    defaults: { ambientIntensity: ambient.intensity, keyIntensity: key.intensity, keyPosition: key.position.clone() },
    dispose() {
      key.shadow.map?.dispose();
      ambient.dispose();
      key.dispose();
      scene.remove(ambient, key, key.target);
    },
  };
}
