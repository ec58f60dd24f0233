/**
 * Headless cameras for the policy: RGB (uint8), depth (float32 metres along the optical axis)
 * and per-object segmentation (uint16 ids) from the mirrored three.js scene.
 *
 * Two passes per camera, because headless-gl has no multiple render targets (drawBuffers is
 * refused): a lit pass into the default framebuffer (three.js encodes sRGB there, like a real
 * camera's output) and an "info" pass into a float target whose red channel is view depth and
 * green channel the segmentation id, drawn with per-body flat shaders swapped in for the lit
 * materials. Antialiasing is off, so ids never blend at edges and the RGB pixels line up with the
 * depth and id pixels.
 */
import * as THREE from 'three';
import type { Rng } from '../rng.ts';
import type { CameraFrame, Color, Pose } from '../types.ts';
import { cameraWorldPose, composePose, projectionFromIntrinsics, resolveCamera, type CameraConfig, type CameraSpec } from './camera.ts';
import { createHeadlessRenderer, type HeadlessRenderer } from './headless.ts';
import { sampleVisuals, type VisualRandomization, type VisualSample } from './randomize.ts';
import { addLights, applyPose, BACKGROUND_LABEL, SceneMirror, type MirrorDesc, type SceneLights } from './scene.ts';

/** What a rig needs from a state: link and object poses, and the tool pose for wrist cameras. */
export interface RenderState {
  links: Record<string, Pose>;
  objects: Record<string, Pose>;
  ee?: Pose;
}

export interface CameraRigOptions {
  scene: MirrorDesc;
  cameras: CameraConfig[];
  /** Background colour (linear RGB), default a pale grey-blue. */
  background?: Color;
}

const DEFAULT_BACKGROUND: Color = [0.55, 0.62, 0.7];

const INFO_VERTEX = /* glsl */ `
varying float vViewDepth;
void main() {
  vec4 mvPosition = modelViewMatrix * vec4(position, 1.0);
  vViewDepth = -mvPosition.z;
  gl_Position = projectionMatrix * mvPosition;
}`;

const INFO_FRAGMENT = /* glsl */ `
precision highp float;
uniform float segmentationId;
varying float vViewDepth;
void main() {
  gl_FragColor = vec4(vViewDepth, segmentationId, 0.0, 1.0);
}`;

function toThreeColor(c: Color): THREE.Color {
  return new THREE.Color().setRGB(c[0], c[1], c[2], THREE.LinearSRGBColorSpace);
}

/** RGBA rows bottom-up (GL) to RGB rows top-down (images). */
function rgbaToRgbFlipped(rgba: Uint8Array, w: number, h: number): Uint8Array {
  const rgb = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    let src = (h - 1 - y) * w * 4;
    let dst = y * w * 3;
    const end = dst + w * 3;
    while (dst < end) {
      rgb[dst++] = rgba[src++];
      rgb[dst++] = rgba[src++];
      rgb[dst++] = rgba[src++];
      src++;
    }
  }
  return rgb;
}

/** One channel of a bottom-up RGBA float image, as a top-down image in `out`. */
function unpackChannel<T extends Float32Array | Uint16Array>(info: Float32Array, channel: number, w: number, h: number, out: T): T {
  for (let y = 0; y < h; y++) {
    let src = (h - 1 - y) * w * 4 + channel;
    let dst = y * w;
    const end = dst + w;
    while (dst < end) {
      out[dst++] = info[src];
      src += 4;
    }
  }
  return out;
}

/**
 * A set of cameras rendering one scene. Create with `CameraRig.create()`, call `render(state)`
 * after each control step, `setScene()` when an episode brings a new scene, `dispose()` at the end.
 */
export class CameraRig {
  readonly specs: readonly CameraSpec[];
  private readonly scene = new THREE.Scene();
  private readonly lights: SceneLights;
  private readonly camera = new THREE.PerspectiveCamera();
  private readonly infoTargets = new Map<string, THREE.WebGLRenderTarget>();
  private readonly rgbaScratch: Uint8Array;
  private readonly infoScratch: Float32Array;
  private mirror: SceneMirror;
  private infoMaterials: THREE.ShaderMaterial[] = [];
  private litMaterials: THREE.Material[] = [];
  private readonly background: Color;
  private sample: VisualSample | null = null;
  private disposed = false;

  private constructor(
    private readonly headless: HeadlessRenderer,
    specs: CameraSpec[],
    scene: MirrorDesc,
    background: Color,
  ) {
    this.specs = specs;
    this.background = background;
    this.scene.background = toThreeColor(background);
    this.lights = addLights(this.scene);
    this.camera.up.set(0, 0, 1);
    this.camera.matrixAutoUpdate = true;
    this.rgbaScratch = new Uint8Array(headless.width * headless.height * 4);
    this.infoScratch = new Float32Array(headless.width * headless.height * 4);
    this.mirror = this.buildMirror(new SceneMirror(scene, { materials: 'lambert' }));
  }

  /**
   * Starts headless rendering (a private Xvfb when DISPLAY is unset) and builds the cameras.
   * Throws RenderUnavailableError naming what to install when nothing can render.
   */
  static async create(options: CameraRigOptions): Promise<CameraRig> {
    if (options.cameras.length === 0) throw new RangeError('a camera rig needs at least one camera, got none');
    const specs = options.cameras.map(resolveCamera);
    const names = new Set<string>();
    for (const s of specs) {
      if (names.has(s.name)) throw new RangeError(`duplicate camera name '${s.name}'`);
      names.add(s.name);
    }
    const width = Math.max(...specs.map((s) => s.width));
    const height = Math.max(...specs.map((s) => s.height));
    const headless = await createHeadlessRenderer(width, height);
    try {
      return new CameraRig(headless, specs, options.scene, options.background ?? DEFAULT_BACKGROUND);
    } catch (err) {
      headless.dispose();
      throw err;
    }
  }

  /** `labels[id]` names segmentation id `id` (0 background, objects, `robot/<link>`, ground). */
  get labels(): readonly string[] {
    return this.mirror.labels;
  }

  /** The mirrored scene (read-only use: tests and tools). */
  get sceneMirror(): SceneMirror {
    return this.mirror;
  }

  private buildMirror(mirror: SceneMirror): SceneMirror {
    this.scene.add(mirror.root);
    const byId = new Map<number, THREE.ShaderMaterial>();
    this.infoMaterials = [];
    this.litMaterials = [];
    for (const m of mirror.meshes) {
      let info = byId.get(m.segmentationId);
      if (!info) {
        info = new THREE.ShaderMaterial({
          vertexShader: INFO_VERTEX,
          fragmentShader: INFO_FRAGMENT,
          uniforms: { segmentationId: { value: m.segmentationId } },
        });
        byId.set(m.segmentationId, info);
      }
      this.infoMaterials.push(info);
      this.litMaterials.push(m.mesh.material as THREE.Material);
    }
    return mirror;
  }

  /** Replaces the scene (a new episode's objects); keeps cameras, lights and randomisation ranges. */
  setScene(desc: MirrorDesc): void {
    this.assertLive();
    // Build first: a bad description throws before the current scene is torn down.
    const next = new SceneMirror(desc, { materials: 'lambert' });
    this.disposeMirror();
    this.mirror = this.buildMirror(next);
    if (this.sample) this.applyColors(this.sample);
  }

  private disposeMirror(): void {
    for (const m of new Set(this.infoMaterials)) m.dispose();
    this.infoMaterials = [];
    this.litMaterials = [];
    this.mirror.dispose();
  }

  /**
   * Samples and applies a new look (lights, colours, camera jitter) from `rng`; an empty config
   * restores the defaults. Call at episode reset with an Rng forked from the episode seed.
   */
  randomize(rng: Rng, config: VisualRandomization): VisualSample {
    this.assertLive();
    const baseColors: Array<readonly [string, Color]> = [[BACKGROUND_LABEL, this.background]];
    const seen = new Set<string>();
    for (const m of this.mirror.meshes) {
      if (seen.has(m.label)) continue;
      seen.add(m.label);
      baseColors.push([m.label, m.baseColor]);
    }
    const sample = sampleVisuals(rng, config, baseColors, this.specs.map((s) => s.name));
    this.sample = sample;
    const d = this.lights.defaults;
    this.lights.key.intensity = d.keyIntensity * sample.keyLightScale;
    this.lights.ambient.intensity = d.ambientIntensity * sample.ambientLightScale;
    this.lights.key.position.copy(d.keyPosition).applyAxisAngle(new THREE.Vector3(0, 0, 1), sample.keyLightAzimuthRad);
    this.applyColors(sample);
    return sample;
  }

  private applyColors(sample: VisualSample): void {
    const bg = sample.colors[BACKGROUND_LABEL] ?? this.background;
    (this.scene.background as THREE.Color).setRGB(bg[0], bg[1], bg[2], THREE.LinearSRGBColorSpace);
    for (const m of this.mirror.meshes) {
      const c = sample.colors[m.label] ?? m.baseColor;
      ((m.mesh.material as THREE.MeshLambertMaterial).color as THREE.Color).setRGB(c[0], c[1], c[2], THREE.LinearSRGBColorSpace);
    }
  }

  /** Renders every camera for `state`. Images are fresh arrays (safe to keep in an episode). */
  render(state: RenderState): Record<string, CameraFrame> {
    this.assertLive();
    this.mirror.update(state);
    const frames: Record<string, CameraFrame> = {};
    for (const spec of this.specs) frames[spec.name] = this.renderCamera(spec, state);
    return frames;
  }

  /** The world pose a camera has for `state`, including this episode's jitter. */
  cameraPose(name: string, state: RenderState): Pose {
    const spec = this.specs.find((s) => s.name === name);
    if (!spec) throw new RangeError(`unknown camera '${name}' (cameras: ${this.specs.map((s) => s.name).join(', ')})`);
    return this.poseOf(spec, state);
  }

  private poseOf(spec: CameraSpec, state: RenderState): Pose {
    const mount = cameraWorldPose(spec.mount, state);
    const offset = this.sample?.cameraOffsets[spec.name];
    return offset ? composePose(mount, offset) : mount;
  }

  private renderCamera(spec: CameraSpec, state: RenderState): CameraFrame {
    const { renderer } = this.headless;
    const gl = this.headless.gl;
    const { width: w, height: h } = spec;
    const cam = this.camera;
    applyPose(cam, this.poseOf(spec, state));
    cam.updateMatrixWorld(true);
    cam.projectionMatrix.fromArray(projectionFromIntrinsics(spec.intrinsics, w, h, spec.near, spec.far));
    cam.projectionMatrixInverse.copy(cam.projectionMatrix).invert();

    // Lit pass into the default framebuffer (sRGB output); the image sits in its bottom-left corner.
    renderer.setRenderTarget(null);
    renderer.setViewport(0, 0, w, h);
    renderer.render(this.scene, cam);
    const rgba = this.rgbaScratch;
    gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, rgba);
    const rgb = rgbaToRgbFlipped(rgba, w, h);
    const frame: CameraFrame = { width: w, height: h, rgb };
    if (!spec.depth && !spec.segmentation) return frame;

    // Info pass: view depth and segmentation id into a float target.
    const target = this.infoTarget(spec);
    const meshes = this.mirror.meshes;
    for (let i = 0; i < meshes.length; i++) meshes[i].mesh.material = this.infoMaterials[i];
    const background = this.scene.background;
    this.scene.background = null;
    const clear = renderer.getClearColor(new THREE.Color());
    const clearAlpha = renderer.getClearAlpha();
    renderer.setClearColor(0x000000, 0);
    try {
      renderer.setRenderTarget(target);
      renderer.render(this.scene, cam);
      renderer.readRenderTargetPixels(target, 0, 0, w, h, this.infoScratch);
    } finally {
      for (let i = 0; i < meshes.length; i++) meshes[i].mesh.material = this.litMaterials[i];
      this.scene.background = background;
      renderer.setClearColor(clear, clearAlpha);
      renderer.setRenderTarget(null);
    }
    if (spec.depth) frame.depth = unpackChannel(this.infoScratch, 0, w, h, new Float32Array(w * h));
    if (spec.segmentation) frame.segmentation = unpackChannel(this.infoScratch, 1, w, h, new Uint16Array(w * h));
    return frame;
  }

  private infoTarget(spec: CameraSpec): THREE.WebGLRenderTarget {
    const key = `${spec.width}x${spec.height}`;
    let target = this.infoTargets.get(key);
    if (!target) {
      target = new THREE.WebGLRenderTarget(spec.width, spec.height, {
        type: THREE.FloatType,
        format: THREE.RGBAFormat,
        minFilter: THREE.NearestFilter,
        magFilter: THREE.NearestFilter,
        depthBuffer: true,
        generateMipmaps: false,
      });
      this.infoTargets.set(key, target);
    }
    return target;
  }

  private assertLive(): void {
    if (this.disposed) throw new Error('CameraRig used after dispose()');
  }

  /** Releases the scene, render targets and the GL context. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.disposeMirror();
    for (const t of this.infoTargets.values()) t.dispose();
    this.infoTargets.clear();
    this.lights.dispose();
    this.headless.dispose();
  }
}
