/**
 * Headless cameras for the policy: RGB (uint8), depth (float32 metres along the optical axis)
 * and per-object segmentation (uint16 ids) from the mirrored three.js scene.
 *
 * One pass per camera: headless-gl has no multiple render targets (drawBuffers is refused), and
 * a second pass for depth and ids would double the cost, so the lit (Lambert) shader is extended
 * to write all three into one float target: red = the sRGB colour quantised to 8 bits per channel
 * and packed into a 24-bit integer (exact in float32), green = view depth, blue = the id. The
 * colour is encoded exactly as three.js encodes its canvas output (sRGB, round to nearest), so
 * the RGB matches a normal render. Antialiasing is off, so ids never blend at edges and the three
 * images line up pixel for pixel.
 */
import * as THREE from 'three';
import type { Rng } from '../rng.ts';
import type { CameraFrame, Color, Pose } from '../types.ts';
import { cameraWorldPose, composePose, projectionFromIntrinsics, resolveCamera, type CameraConfig, type CameraSpec } from './camera.ts';
import { createHeadlessRenderer, type HeadlessRenderer } from './headless.ts';
import { offsetColor, sampleVisuals, type VisualRandomization, type VisualSample } from './randomize.ts';
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

/** Adds the depth/id/packed-colour output to a lit material; one program shared by all. */
function extendLitMaterial(material: THREE.Material, segmentationId: number): void {
  const id = { value: segmentationId };
  material.onBeforeCompile = (shader) => {
    shader.uniforms.segmentationId = id;
    shader.vertexShader = shader.vertexShader
      .replace('#include <common>', '#include <common>\nvarying float vViewDepth;')
      .replace('#include <project_vertex>', '#include <project_vertex>\n\tvViewDepth = -mvPosition.z;');
    shader.fragmentShader = shader.fragmentShader
      .replace('#include <common>', '#include <common>\nvarying float vViewDepth;\nuniform float segmentationId;')
      .replace(
        '#include <dithering_fragment>',
        [
          '#include <dithering_fragment>',
          // Render targets get linear colour from three.js; encode like its canvas output does.
          '\tvec3 evovlaSrgb = floor(sRGBTransferOETF(vec4(clamp(gl_FragColor.rgb, 0.0, 1.0), 1.0)).rgb * 255.0 + 0.5);',
          '\tgl_FragColor = vec4(evovlaSrgb.r * 65536.0 + evovlaSrgb.g * 256.0 + evovlaSrgb.b, vViewDepth, segmentationId, 1.0);',
        ].join('\n'),
      );
  };
  material.customProgramCacheKey = () => 'evovla-camera-pass';
  material.needsUpdate = true;
}

/** The packed value of a linear colour, as the shader would write it (for the clear colour). */
function packedSrgb(c: Color): number {
  const enc = (x: number): number => {
    const v = Math.min(1, Math.max(0, x));
    const s = v <= 0.0031308 ? v * 12.92 : 1.055 * Math.pow(v, 1 / 2.4) - 0.055;
    return Math.floor(s * 255 + 0.5);
  };
  return enc(c[0]) * 65536 + enc(c[1]) * 256 + enc(c[2]);
}

/**
 * Splits the float target (rows bottom-up) into top-down images: RGB from the packed red channel,
 * depth from green, ids from blue.
 */
function unpack(info: Float32Array, w: number, h: number, rgb: Uint8Array, depth?: Float32Array, seg?: Uint16Array): void {
  for (let y = 0; y < h; y++) {
    let src = (h - 1 - y) * w * 4;
    let dst = y * w;
    const end = dst + w;
    for (; dst < end; dst++, src += 4) {
      const c = info[src];
      rgb[dst * 3] = c / 65536;
      rgb[dst * 3 + 1] = (c / 256) & 255;
      rgb[dst * 3 + 2] = c & 255;
      if (depth) depth[dst] = info[src + 1];
      if (seg) seg[dst] = info[src + 2];
    }
  }
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
  private readonly targets = new Map<string, THREE.WebGLRenderTarget>();
  private readonly scratch: Float32Array;
  private readonly clearColor = new THREE.Color();
  private mirror: SceneMirror;
  private readonly background: Color;
  private backgroundNow: Color;
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
    this.backgroundNow = background;
    this.lights = addLights(this.scene);
    this.camera.up.set(0, 0, 1);
    this.scratch = new Float32Array(headless.width * headless.height * 4);
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
    for (const m of mirror.meshes) extendLitMaterial(m.mesh.material as THREE.Material, m.segmentationId);
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
    // The mirror owns the materials (and disposes them).
    this.mirror.dispose();
  }

  /**
   * Samples and applies a new look (lights, colours, camera jitter) from `rng`; an empty config
   * restores the defaults. Call at episode reset with an Rng forked from the episode seed.
   */
  randomize(rng: Rng, config: VisualRandomization): VisualSample {
    this.assertLive();
    // Label order is fixed by the scene description, so the draws are too.
    const sample = sampleVisuals(rng, config, this.mirror.labels, this.specs.map((s) => s.name));
    this.sample = sample;
    const d = this.lights.defaults;
    this.lights.key.intensity = d.keyIntensity * sample.keyLightScale;
    this.lights.ambient.intensity = d.ambientIntensity * sample.ambientLightScale;
    this.lights.key.position.copy(d.keyPosition).applyAxisAngle(new THREE.Vector3(0, 0, 1), sample.keyLightAzimuthRad);
    this.applyColors(sample);
    return sample;
  }

  private applyColors(sample: VisualSample): void {
    this.backgroundNow = offsetColor(this.background, sample.colorOffsets[BACKGROUND_LABEL]);
    for (const m of this.mirror.meshes) {
      const c = offsetColor(m.baseColor, sample.colorOffsets[m.label]);
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
    const { width: w, height: h } = spec;
    const cam = this.camera;
    applyPose(cam, this.poseOf(spec, state));
    cam.updateMatrixWorld(true);
    cam.projectionMatrix.fromArray(projectionFromIntrinsics(spec.intrinsics, w, h, spec.near, spec.far));
    cam.projectionMatrixInverse.copy(cam.projectionMatrix).invert();

    // Pixels that hit nothing: the background colour packed like the shader packs colours, depth 0,
    // id 0. Three.js clears a render target with this colour as is (linear working space, no
    // conversion), so the packed integer arrives intact.
    this.clearColor.setRGB(packedSrgb(this.backgroundNow), 0, 0, THREE.LinearSRGBColorSpace);
    renderer.setClearColor(this.clearColor, 1);
    const target = this.target(spec);
    renderer.setRenderTarget(target);
    renderer.render(this.scene, cam);
    renderer.readRenderTargetPixels(target, 0, 0, w, h, this.scratch);
    renderer.setRenderTarget(null);

    const frame: CameraFrame = { width: w, height: h, rgb: new Uint8Array(w * h * 3) };
    const depth = spec.depth ? new Float32Array(w * h) : undefined;
    const seg = spec.segmentation ? new Uint16Array(w * h) : undefined;
    unpack(this.scratch, w, h, frame.rgb, depth, seg);
    if (depth) frame.depth = depth;
    if (seg) frame.segmentation = seg;
    return frame;
  }

  private target(spec: CameraSpec): THREE.WebGLRenderTarget {
    const key = `${spec.width}x${spec.height}`;
    let target = this.targets.get(key);
    if (!target) {
      target = new THREE.WebGLRenderTarget(spec.width, spec.height, {
        type: THREE.FloatType,
        format: THREE.RGBAFormat,
        minFilter: THREE.NearestFilter,
        magFilter: THREE.NearestFilter,
        depthBuffer: true,
        generateMipmaps: false,
      });
      this.targets.set(key, target);
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
    for (const t of this.targets.values()) t.dispose();
    this.targets.clear();
    this.lights.dispose();
    this.headless.dispose();
  }
}
