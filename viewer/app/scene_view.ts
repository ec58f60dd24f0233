/**
 * The 3D view: the same SceneMirror the headless cameras use, with PBR materials, shadows and
 * orbit controls. Objects of an episode whose scene is unknown are drawn as small markers at their
 * recorded poses.
 */
import * as THREE from 'three';
import { OrbitControls } from 'three/examples/jsm/controls/OrbitControls.js';
import { addLights, applyPose, SceneMirror, type MirrorDesc, type SceneLights } from '../../sim/render/scene.ts';
import type { Pose } from '../../sim/types.ts';
import type { ViewStep } from '../protocol.ts';

export class SceneView {
  private readonly renderer: THREE.WebGLRenderer;
  private readonly scene = new THREE.Scene();
  private readonly camera = new THREE.PerspectiveCamera(45, 1, 0.01, 50);
  private readonly controls: OrbitControls;
  private readonly lights: SceneLights;
  private mirror: SceneMirror | null = null;
  private markers = new Map<string, THREE.Mesh>();
  private readonly markerGeometry = new THREE.BoxGeometry(0.03, 0.03, 0.03);
  private readonly markerMaterial = new THREE.MeshStandardMaterial({ color: 0xcccc44 });
  private readonly tool: THREE.AxesHelper;
  private robotVisible = true;

  constructor(private readonly canvas: HTMLCanvasElement) {
    this.renderer = new THREE.WebGLRenderer({ canvas, antialias: true });
    this.renderer.setPixelRatio(window.devicePixelRatio || 1);
    this.renderer.shadowMap.enabled = true;
    this.renderer.shadowMap.type = THREE.PCFSoftShadowMap;
    this.scene.background = new THREE.Color(0x2a2e35);
    this.lights = addLights(this.scene, { shadows: true });
    // Z-up data: tell the camera, do not rotate the scene.
    this.camera.up.set(0, 0, 1);
    this.camera.position.set(1.3, -1.1, 1.1);
    this.controls = new OrbitControls(this.camera, canvas);
    this.controls.target.set(0.3, 0, 0.3);
    this.controls.enableDamping = true;
    this.controls.update();
    this.tool = new THREE.AxesHelper(0.06);
    this.scene.add(this.tool);
  }

  /** Shows a new episode's scene; aims the camera at its objects. */
  setScene(desc: MirrorDesc | null, first?: ViewStep): void {
    this.mirror?.dispose();
    this.mirror = null;
    for (const m of this.markers.values()) this.scene.remove(m);
    this.markers.clear();
    if (desc) {
      this.mirror = new SceneMirror(desc, { materials: 'standard', shadows: true });
      this.scene.add(this.mirror.root);
      this.setRobotVisible(this.robotVisible);
    }
    if (first) {
      const ps = Object.values(first.objects).map((p) => p.p);
      // Frame the objects and the tool; the table (the largest object) would pull the view away.
      ps.push(first.ee.p);
      if (ps.length) {
        const c = ps.reduce((a, p) => [a[0] + p[0] / ps.length, a[1] + p[1] / ps.length, a[2] + p[2] / ps.length], [0, 0, 0]);
        this.controls.target.set(c[0], c[1], c[2]);
        this.camera.position.set(c[0] + 1.0, c[1] - 0.9, c[2] + 0.7);
        this.controls.update();
      }
    }
  }

  setRobotVisible(visible: boolean): void {
    this.robotVisible = visible;
    if (!this.mirror) return;
    for (const m of this.mirror.meshes) if (m.label.startsWith('robot/')) m.mesh.visible = visible;
    this.tool.visible = visible;
  }

  /** Moves everything to a step's poses. */
  show(step: ViewStep): void {
    if (this.mirror) this.mirror.update(step);
    else {
      for (const [name, pose] of Object.entries(step.objects)) this.marker(name, pose);
    }
    applyPose(this.tool, step.ee);
  }

  private marker(name: string, pose: Pose): void {
    let m = this.markers.get(name);
    if (!m) {
      m = new THREE.Mesh(this.markerGeometry, this.markerMaterial);
      this.markers.set(name, m);
      this.scene.add(m);
    }
    applyPose(m, pose);
  }

  /** Draws a frame at the canvas's current size. */
  render(): void {
    const w = this.canvas.clientWidth;
    const h = this.canvas.clientHeight;
    const size = this.renderer.getSize(new THREE.Vector2());
    if (size.x !== w || size.y !== h) {
      this.renderer.setSize(w, h, false);
      this.camera.aspect = w / Math.max(1, h);
      this.camera.updateProjectionMatrix();
    }
    this.controls.update();
    this.renderer.render(this.scene, this.camera);
  }

  dispose(): void {
    this.mirror?.dispose();
    this.markerGeometry.dispose();
    this.markerMaterial.dispose();
    this.tool.dispose();
    this.lights.dispose();
    this.controls.dispose();
    this.renderer.dispose();
  }
}
