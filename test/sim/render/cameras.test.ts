/**
 * Renders known scenes and checks the pixels: where the block appears against its projected
 * position, the depth against the known distance, the segmentation ids against the labels.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Rng } from '../../../sim/rng.ts';
import { projectPoint, resolveCamera, unprojectPixel, type CameraConfig } from '../../../sim/render/camera.ts';
import { CameraRig, type RenderState } from '../../../sim/render/cameras.ts';
import type { MirrorDesc } from '../../../sim/render/scene.ts';
import type { CameraFrame, Pose, Vec3 } from '../../../sim/types.ts';

const IDENTITY: Pose['q'] = [0, 0, 0, 1];
const BLOCK_CENTRE: Vec3 = [0.1, -0.05, 0.02];
const BLOCK_HALF = 0.02;
const SPHERE_CENTRE: Vec3 = [-0.15, 0.1, 0.03];
const PILL_CENTRE: Vec3 = [0.15, 0.12, 0.055];

const scene: MirrorDesc = {
  objects: [
    { name: 'block', type: 'dynamic', pose: { p: BLOCK_CENTRE, q: IDENTITY }, colliders: [{ shape: { kind: 'box', halfExtents: [BLOCK_HALF, BLOCK_HALF, BLOCK_HALF] } }], color: [0.9, 0.05, 0.05] },
    { name: 'ball', type: 'dynamic', pose: { p: SPHERE_CENTRE, q: IDENTITY }, colliders: [{ shape: { kind: 'sphere', radius: 0.03 } }], color: [0.05, 0.2, 0.9] },
    // Axis along local Z: standing up, its top is at 0.055 + 0.04 + 0.015 = 0.11.
    { name: 'pill', type: 'dynamic', pose: { p: PILL_CENTRE, q: IDENTITY }, colliders: [{ shape: { kind: 'capsule', halfHeight: 0.04, radius: 0.015 } }] },
  ],
  links: [{ link: 'link6', colliders: [{ shape: { kind: 'cylinder', halfHeight: 0.05, radius: 0.03 }, color: [0.1, 0.8, 0.1] }] }],
};

// A tool pose 0.5 m above the table pointing straight down (tool +Z = world -Z).
const EE: Pose = { p: [0.3, 0.25, 0.5], q: [1, 0, 0, 0] };
const state: RenderState = {
  objects: { block: { p: BLOCK_CENTRE, q: IDENTITY }, ball: { p: SPHERE_CENTRE, q: IDENTITY }, pill: { p: PILL_CENTRE, q: IDENTITY } },
  links: { link6: { p: [-0.2, -0.2, 0.05], q: IDENTITY } },
  ee: EE,
};

const cameras: CameraConfig[] = [
  // Straight down from 1 m: the identity camera pose looks along world -Z with x right = world +X.
  { name: 'top', width: 128, height: 128, fovy: 50, mount: { kind: 'world', pose: { p: [0, 0, 1], q: IDENTITY } } },
  // Off-centre principal point and unequal focal lengths, from the side.
  { name: 'side', width: 160, height: 96, fx: 120, fy: 110, cx: 70.5, cy: 52, mount: { kind: 'lookAt', eye: [0.9, -0.6, 0.5], target: [0, 0, 0.05] } },
  // On the tool: camera looks along the tool's +Z (down), 0.1 m behind the tool point.
  { name: 'wrist', width: 64, height: 64, fovy: 70, near: 0.01, far: 2, mount: { kind: 'link', link: 'ee', pose: { p: [0, 0, -0.1], q: [1, 0, 0, 0] } } },
];

function at(frame: CameraFrame, u: number, v: number): { rgb: number[]; depth: number; id: number } {
  const x = Math.round(u), y = Math.round(v);
  assert.ok(x >= 0 && y >= 0 && x < frame.width && y < frame.height, `pixel (${x}, ${y}) outside ${frame.width}x${frame.height}`);
  const i = y * frame.width + x;
  return { rgb: [...frame.rgb.subarray(3 * i, 3 * i + 3)], depth: frame.depth![i], id: frame.segmentation![i] };
}

function maskStats(frame: CameraFrame, id: number): { count: number; minU: number; maxU: number; minV: number; maxV: number } {
  let count = 0, minU = Infinity, maxU = -Infinity, minV = Infinity, maxV = -Infinity;
  for (let v = 0; v < frame.height; v++) {
    for (let u = 0; u < frame.width; u++) {
      if (frame.segmentation![v * frame.width + u] !== id) continue;
      count++;
      minU = Math.min(minU, u); maxU = Math.max(maxU, u);
      minV = Math.min(minV, v); maxV = Math.max(maxV, v);
    }
  }
  return { count, minU, maxU, minV, maxV };
}

describe('CameraRig on a known scene', () => {
  let rig: CameraRig;
  let frames: Record<string, CameraFrame>;
  before(async () => {
    rig = await CameraRig.create({ scene, cameras });
    frames = rig.render(state);
  });
  after(() => rig?.dispose());

  it('labels segmentation ids: background, objects in order, robot links, ground', () => {
    assert.deepEqual(rig.labels, ['background', 'block', 'ball', 'pill', 'robot/link6', 'ground']);
  });

  it('returns images of the configured sizes and types', () => {
    for (const c of cameras) {
      const f = frames[c.name];
      const w = c.width!, h = c.height!;
      assert.equal(f.width, w);
      assert.equal(f.height, h);
      assert.ok(f.rgb instanceof Uint8Array && f.rgb.length === w * h * 3);
      assert.ok(f.depth instanceof Float32Array && f.depth.length === w * h);
      assert.ok(f.segmentation instanceof Uint16Array && f.segmentation.length === w * h);
    }
  });

  it('draws the block where its projection says, at the known depth, in its colour', () => {
    for (const name of ['top', 'side']) {
      const spec = resolveCamera(cameras.find((c) => c.name === name)!);
      const pose = rig.cameraPose(name, state);
      const f = frames[name];
      // Top-face centre: visible from both cameras.
      const topCentre: Vec3 = [BLOCK_CENTRE[0], BLOCK_CENTRE[1], BLOCK_CENTRE[2] + BLOCK_HALF];
      const p = projectPoint(spec, pose, topCentre);
      const px = at(f, p.u, p.v);
      assert.equal(px.id, 1, `${name}: id at the block's projected top centre (${p.u.toFixed(1)}, ${p.v.toFixed(1)})`);
      // The depth read at that pixel, unprojected through the pixel centre, lands on the top face.
      const hit = unprojectPixel(spec, pose, Math.round(p.u), Math.round(p.v), px.depth);
      assert.ok(Math.abs(hit[2] - topCentre[2]) < 1e-3, `${name}: depth ${px.depth} puts the hit at z=${hit[2]}, expected ${topCentre[2]}`);
      assert.ok(Math.abs(hit[0] - topCentre[0]) <= BLOCK_HALF && Math.abs(hit[1] - topCentre[1]) <= BLOCK_HALF, `${name}: hit ${hit} off the top face`);
      assert.ok(px.rgb[0] > 2 * px.rgb[1] && px.rgb[0] > 2 * px.rgb[2], `${name}: block pixel should be red, got ${px.rgb}`);
      // Every block corner projects inside the mask's bounding box (+-1 px), and the box is no larger.
      const corners: Vec3[] = [];
      for (const dx of [-1, 1]) for (const dy of [-1, 1]) for (const dz of [-1, 1]) {
        corners.push([BLOCK_CENTRE[0] + dx * BLOCK_HALF, BLOCK_CENTRE[1] + dy * BLOCK_HALF, BLOCK_CENTRE[2] + dz * BLOCK_HALF]);
      }
      // Only corners the camera can see bound the mask: the bottom ones may hide behind the block.
      const visible = corners.filter((c) => c[2] > BLOCK_CENTRE[2]);
      const proj = visible.map((c) => projectPoint(spec, pose, c));
      const m = maskStats(f, 1);
      const lo = (xs: number[]) => Math.min(...xs), hi = (xs: number[]) => Math.max(...xs);
      assert.ok(Math.abs(m.minU - lo(proj.map((q) => q.u))) <= 1.5, `${name}: mask left ${m.minU} vs ${lo(proj.map((q) => q.u))}`);
      assert.ok(Math.abs(m.maxU - hi(proj.map((q) => q.u))) <= 1.5, `${name}: mask right ${m.maxU} vs ${hi(proj.map((q) => q.u))}`);
      assert.ok(m.minV >= lo(proj.map((q) => q.v)) - 1.5, `${name}: mask top ${m.minV} vs ${lo(proj.map((q) => q.v))}`);
    }
  });

  it('gives the top camera exact depths: block top 0.96 m, ground 1.002 m, and centres the ball', () => {
    const f = frames.top;
    const spec = resolveCamera(cameras[0]);
    const pose = rig.cameraPose('top', state);
    // The camera looks straight down from z = 1, so depth is 1 - z everywhere.
    const ground = at(f, 3, 3);
    assert.equal(ground.id, rig.labels.indexOf('ground'));
    // The ground's top sits 2 mm below z = 0 (see scene.ts).
    assert.ok(Math.abs(ground.depth - 1.002) < 1e-4, `ground depth ${ground.depth}`);
    const top = projectPoint(spec, pose, [BLOCK_CENTRE[0], BLOCK_CENTRE[1], 0.04]);
    assert.ok(Math.abs(at(f, top.u, top.v).depth - 0.96) < 1e-4);
    // The ball's nearest point is its top, at z = 0.06.
    const ball = projectPoint(spec, pose, SPHERE_CENTRE);
    const px = at(f, ball.u, ball.v);
    assert.equal(px.id, 2);
    assert.ok(Math.abs(px.depth - 0.94) < 2e-3, `ball depth ${px.depth}`);
    assert.ok(px.rgb[2] > px.rgb[0] + 40, `ball pixel should be blue, got ${px.rgb}`);
    // Capsules and cylinders stand along Z: the capsule's top is 0.11 high, the cylinder's 0.1.
    const pill = projectPoint(spec, pose, [PILL_CENTRE[0], PILL_CENTRE[1], 0.11]);
    assert.equal(at(f, pill.u, pill.v).id, rig.labels.indexOf('pill'));
    assert.ok(Math.abs(at(f, pill.u, pill.v).depth - 0.89) < 1e-3, `capsule top depth ${at(f, pill.u, pill.v).depth}`);
    const link = projectPoint(spec, pose, [-0.2, -0.2, 0.1]);
    assert.equal(at(f, link.u, link.v).id, rig.labels.indexOf('robot/link6'));
    assert.ok(Math.abs(at(f, link.u, link.v).depth - 0.9) < 1e-3);
  });

  it('gives depths that unproject onto the table plane everywhere the side camera sees the ground', () => {
    const f = frames.side;
    const spec = resolveCamera(cameras[1]);
    const pose = rig.cameraPose('side', state);
    const groundId = rig.labels.indexOf('ground');
    let checked = 0;
    for (let v = 0; v < f.height; v += 7) {
      for (let u = 0; u < f.width; u += 7) {
        const i = v * f.width + u;
        if (f.segmentation![i] !== groundId) continue;
        const hit = unprojectPixel(spec, pose, u, v, f.depth![i]);
        assert.ok(Math.abs(hit[2] + 0.002) < 1e-3, `ground pixel (${u}, ${v}) unprojects to z=${hit[2]}`);
        checked++;
      }
    }
    assert.ok(checked > 100, `only ${checked} ground pixels checked`);
  });

  it('moves the wrist camera with the tool pose', () => {
    const f = frames.wrist;
    // Straight down from 0.6 m (tool at 0.5 m, camera 0.1 m behind it): the ground is 0.602 m away.
    const centre = at(f, 31.5, 31.5);
    assert.equal(centre.id, rig.labels.indexOf('ground'));
    assert.ok(Math.abs(centre.depth - 0.602) < 1e-4, `wrist depth ${centre.depth}`);
    // Move the tool over the block: the block fills the centre, 0.6 - 0.04 m away.
    const over = rig.render({ ...state, ee: { p: [BLOCK_CENTRE[0], BLOCK_CENTRE[1], 0.5], q: EE.q } }).wrist;
    const c2 = at(over, 31.5, 31.5);
    assert.equal(c2.id, 1);
    assert.ok(Math.abs(c2.depth - 0.56) < 1e-4, `wrist depth over block ${c2.depth}`);
  });

  it('follows object poses given in the state', () => {
    const moved = rig.render({ ...state, objects: { ...state.objects, block: { p: [-0.1, -0.1, 0.02], q: IDENTITY } } }).top;
    const spec = resolveCamera(cameras[0]);
    const p = projectPoint(spec, rig.cameraPose('top', state), [-0.1, -0.1, 0.04]);
    assert.equal(at(moved, p.u, p.v).id, 1);
    const old = projectPoint(spec, rig.cameraPose('top', state), [BLOCK_CENTRE[0], BLOCK_CENTRE[1], 0.04]);
    assert.notEqual(at(moved, old.u, old.v).id, 1);
  });

  it('gives id 0 and depth 0 to pixels that see nothing', async () => {
    const sky = await CameraRig.create({
      scene,
      cameras: [{ name: 'up', width: 32, height: 32, mount: { kind: 'lookAt', eye: [0, 0, 0.5], target: [0, 0.001, 2] } }],
    });
    try {
      const f = sky.render(state).up;
      assert.ok(f.segmentation!.every((id) => id === 0));
      assert.ok(f.depth!.every((d) => d === 0));
    } finally {
      sky.dispose();
    }
  });
});

describe('CameraRig visual randomisation', () => {
  const config = { keyLightScale: [0.5, 1.5] as [number, number], objectColorJitter: 0.3, cameraPositionJitter: 0.02, cameraRotationJitterDeg: 3, backgroundColorJitter: 0.1 };

  it('is seeded: same seed, same images; another seed, other images; segmentation labels unchanged', async () => {
    const rig = await CameraRig.create({ scene, cameras: [cameras[0]] });
    try {
      const plain = rig.render(state).top;
      rig.randomize(new Rng(7), config);
      const a = rig.render(state).top;
      rig.randomize(new Rng(7), config);
      const b = rig.render(state).top;
      rig.randomize(new Rng(8), config);
      const c = rig.render(state).top;
      assert.deepEqual(a.rgb, b.rgb);
      assert.deepEqual(a.segmentation, b.segmentation);
      assert.notDeepEqual(a.rgb, c.rgb);
      assert.notDeepEqual(a.rgb, plain.rgb);
      // Camera jitter moves the image: segmentation differs, but ids still name the same things.
      assert.notDeepEqual(a.segmentation, plain.segmentation);
      assert.deepEqual(new Set(a.segmentation), new Set(plain.segmentation));
      // An empty config restores the defaults exactly.
      rig.randomize(new Rng(9), {});
      assert.deepEqual(rig.render(state).top.rgb, plain.rgb);
    } finally {
      rig.dispose();
    }
  });
});

describe('CameraRig colour jitter', () => {
  it('shifts every part of a body by the same offset, so a two-tone body stays two-tone', async () => {
    const twoTone: MirrorDesc = {
      objects: [{
        name: 'mug', type: 'dynamic', pose: { p: [0, 0, 0.05], q: IDENTITY },
        colliders: [
          { shape: { kind: 'cylinder', halfHeight: 0.05, radius: 0.04 }, color: [0.8, 0.8, 0.8] },
          { shape: { kind: 'box', halfExtents: [0.01, 0.01, 0.03] }, pose: { p: [0.05, 0, 0], q: IDENTITY }, color: [0.1, 0.1, 0.1] },
        ],
      }],
      links: [],
    };
    const rig = await CameraRig.create({ scene: twoTone, cameras: [{ name: 'c', width: 16, height: 16, mount: { kind: 'lookAt', eye: [1, 0, 1], target: [0, 0, 0] } }] });
    try {
      const sample = rig.randomize(new Rng(11), { objectColorJitter: 0.05 });
      const offset = sample.colorOffsets.mug;
      assert.ok(offset && offset.some((x) => x !== 0));
      const parts = rig.sceneMirror.meshes.filter((m) => m.label === 'mug');
      assert.equal(parts.length, 2);
      for (const part of parts) {
        const c = (part.mesh.material as unknown as { color: { r: number; g: number; b: number } }).color;
        const got = [c.r, c.g, c.b];
        for (let i = 0; i < 3; i++) assert.ok(Math.abs(got[i] - (part.baseColor[i] + offset[i])) < 1e-6, `channel ${i}: ${got[i]}`);
      }
    } finally {
      rig.dispose();
    }
  });
});

describe('CameraRig inputs', () => {
  it('rejects bad camera configs naming the field', async () => {
    await assert.rejects(CameraRig.create({ scene, cameras: [{ name: 'x', width: 0, mount: { kind: 'world', pose: { p: [0, 0, 1], q: IDENTITY } } }] }), /camera\.width/);
    await assert.rejects(CameraRig.create({ scene, cameras: [{ name: 'x', mount: { kind: 'world', pose: { p: [0, 0, 1], q: [0, 0, 0, 2] } } }] }), /unit quaternion/);
    await assert.rejects(CameraRig.create({ scene, cameras: [] }), /at least one camera/);
  });

  it('names the link when a wrist camera is mounted on a link the state lacks', async () => {
    const rig = await CameraRig.create({ scene, cameras: [{ name: 'w', width: 16, height: 16, mount: { kind: 'link', link: 'link9', pose: { p: [0, 0, 0], q: IDENTITY } } }] });
    try {
      assert.throws(() => rig.render(state), /link 'link9'.*known: ee, link6/);
    } finally {
      rig.dispose();
    }
  });
});
