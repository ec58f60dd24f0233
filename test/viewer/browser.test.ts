/**
 * The viewer in a real browser (Debian's chromium driven by playwright-core): a replay loads, the
 * screenshot shows the arm, the stage timeline, the plot and the camera images; a wrong token is
 * refused in the browser and in the HTTP upgrade.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createEnv } from '../../sim/env.ts';
import { attachEnvCameras } from '../../sim/render/env_cameras.ts';
import { getTask } from '../../tasks/index.ts';
import { runExpertEpisode } from '../../tasks/rollout.ts';
import { STAGE_COLORS, DONE_COLOR } from '../../viewer/app/charts.ts';
import { idColor } from '../../viewer/app/images.ts';
import { loadEpisodeFile, viewerStepCount, viewerSteps } from '../../viewer/episodes.ts';
import { startViewerServer, type ViewerServer } from '../../viewer/server.ts';
import { decodePng } from '../../robot/ros2/png.ts';

type Rgb = ReturnType<typeof decodePng>;

const CHROMIUM = '/usr/bin/chromium';

interface Box { x: number; y: number; width: number; height: number }

function crop(img: Rgb, box: Box): { pixels: number[][]; w: number; h: number } {
  const x0 = Math.max(0, Math.round(box.x)), y0 = Math.max(0, Math.round(box.y));
  const w = Math.min(img.width - x0, Math.round(box.width)), h = Math.min(img.height - y0, Math.round(box.height));
  const pixels: number[][] = [];
  for (let y = y0; y < y0 + h; y++) {
    for (let x = x0; x < x0 + w; x++) {
      const i = (y * img.width + x) * 3;
      pixels.push([img.rgb[i], img.rgb[i + 1], img.rgb[i + 2]]);
    }
  }
  return { pixels, w, h };
}

function distinctColors(pixels: number[][]): number {
  return new Set(pixels.map((p) => (p[0] << 16) | (p[1] << 8) | p[2])).size;
}

function hex(c: string): number[] {
  return [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));
}

describe('viewer in chromium', { timeout: 120_000 }, () => {
  let dir: string;
  let server: ViewerServer;
  let browser: Browser;
  let page: Page;
  let stagesReached: number[];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'evovla-viewer-'));
    // A real recorded episode with camera images.
    const task = getTask('blocks');
    const env = await createEnv(task, { cameras: [{ name: 'eye_side', width: 48, height: 48 }, { name: 'eye_arm', width: 48, height: 48 }] });
    const cams = await attachEnvCameras(env);
    const file = path.join(dir, 'blocks-0.evep');
    try {
      runExpertEpisode(env, task, 0, { file });
    } finally {
      cams?.detach();
      env.free();
    }
    const ep = loadEpisodeFile(file);
    assert.ok(ep.scene, `scene should be drawn: ${ep.notes.join('; ')}`);
    stagesReached = [...new Set(viewerSteps(ep, 0, viewerStepCount(ep), { images: false }).map((s) => s.stage))];
    server = await startViewerServer({ episodes: [ep] });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--disable-quic', '--no-first-run', '--use-angle=swiftshader', '--enable-unsafe-swiftshader',
      ],
      // playwright gives each launch a fresh temporary profile (it refuses --user-data-dir here).
    });
    page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('replays an episode: the arm, the timeline, the plot and the camera images are drawn', async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url);
    await page.waitForSelector('body[data-state="ready"]', { timeout: 60_000 });
    // Scrub to the middle of the episode (the arm is over the table there).
    await page.evaluate(() => {
      const s = document.getElementById('scrub') as HTMLInputElement;
      s.value = String(Math.floor(Number(s.max) / 2));
      s.dispatchEvent(new Event('input'));
    });
    await page.waitForFunction(() => {
      const c = document.querySelector<HTMLCanvasElement>('#cams canvas[data-camera="eye_side"]');
      return !!c && c.width === 48;
    });
    // Let a few animation frames draw the new step.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const withArm = decodePng(await page.screenshot({ path: path.join(dir, 'viewer.png') }));
    const sceneBox = (await page.locator('#scene').boundingBox())!;
    const a = crop(withArm, sceneBox);
    assert.ok(distinctColors(a.pixels) > 100, `3D view looks blank (${distinctColors(a.pixels)} colours)`);

    // The arm: hiding the robot must change a good part of the 3D view.
    await page.click('#showRobot');
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const b = crop(decodePng(await page.screenshot()), sceneBox);
    let changed = 0;
    for (let i = 0; i < a.pixels.length; i++) {
      const d = Math.abs(a.pixels[i][0] - b.pixels[i][0]) + Math.abs(a.pixels[i][1] - b.pixels[i][1]) + Math.abs(a.pixels[i][2] - b.pixels[i][2]);
      if (d > 30) changed++;
    }
    assert.ok(changed > a.pixels.length * 0.01, `hiding the robot changed only ${changed} of ${a.pixels.length} pixels`);
    await page.click('#showRobot');

    // The timeline shows every ground-truth stage the episode went through, in its colour.
    const tl = crop(withArm, (await page.locator('#timeline').boundingBox())!);
    const stageCount = 5;
    for (const k of stagesReached) {
      const c = k >= stageCount ? hex(DONE_COLOR) : hex(STAGE_COLORS[k]);
      const n = tl.pixels.filter((p) => p[0] === c[0] && p[1] === c[1] && p[2] === c[2]).length;
      assert.ok(n > 20, `timeline lacks stage ${k}'s colour ${c} (${n} pixels)`);
    }
    assert.ok(stagesReached.length >= 3, `episode went through stages ${stagesReached}`);

    // The plot has lines on its background, and the legend names the reward terms.
    const plot = crop(withArm, (await page.locator('#plot').boundingBox())!);
    assert.ok(distinctColors(plot.pixels) > 5, 'plot looks blank');
    const legend = await page.locator('#legend').innerText();
    assert.match(legend, /stageProgress/);

    // Camera image: not a flat colour.
    const cam = crop(withArm, (await page.locator('#cams canvas[data-camera="eye_side"]').boundingBox())!);
    assert.ok(distinctColors(cam.pixels) > 20, 'camera image looks blank');
    assert.deepEqual(errors, []);
  });

  it('shows the segmentation and depth images of a camera on request', async () => {
    const canvasColors = () =>
      page.evaluate(() => {
        const c = document.querySelector<HTMLCanvasElement>('#cams canvas[data-camera="eye_side"]')!;
        const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        const set = new Set<string>();
        for (let i = 0; i < d.length; i += 4) set.add(`${d[i]},${d[i + 1]},${d[i + 2]}`);
        return [...set];
      });
    const palette = new Set(Array.from({ length: 64 }, (_, id) => idColor(id).join(',')));
    await page.selectOption('#channel', 'segmentation');
    await page.waitForFunction(() => {
      const c = document.querySelector<HTMLCanvasElement>('#cams canvas[data-camera="eye_side"]')!;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      // Segmentation colours: no grey pixels (r == g == b) except the background's black.
      for (let i = 0; i < d.length; i += 4) if (d[i] === d[i + 1] && d[i + 1] === d[i + 2] && d[i] !== 0) return false;
      return true;
    });
    const seg = await canvasColors();
    assert.ok(seg.length >= 3, `segmentation shows ${seg.length} ids`);
    for (const c of seg) assert.ok(palette.has(c), `segmentation colour ${c} is not an id colour`);
    await page.selectOption('#channel', 'depth');
    await page.waitForFunction(() => {
      const c = document.querySelector<HTMLCanvasElement>('#cams canvas[data-camera="eye_side"]')!;
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      for (let i = 0; i < d.length; i += 4) if (d[i] !== d[i + 1] || d[i + 1] !== d[i + 2]) return false;
      return true;
    });
    assert.ok((await canvasColors()).length > 10, 'depth image should have many grey levels');
    await page.selectOption('#channel', 'rgb');
  });

  it('plays: the step advances', async () => {
    const before = await page.locator('#stepLabel').innerText();
    await page.evaluate(() => {
      const s = document.getElementById('scrub') as HTMLInputElement;
      s.value = '0';
      s.dispatchEvent(new Event('input'));
    });
    await page.click('#play');
    await page.waitForFunction((b) => document.getElementById('stepLabel')!.textContent !== b && !/^step 1\//.test(document.getElementById('stepLabel')!.textContent!), before);
    await page.click('#play');
  });

  it('refuses a wrong token: the page says so and the upgrade answers 401', async () => {
    const bad = new URL(server.url);
    bad.searchParams.set('token', 'x'.repeat(48));
    const p2 = await browser.newPage();
    try {
      await p2.goto(bad.href);
      await p2.waitForSelector('body[data-state="refused"]', { timeout: 30_000 });
      assert.match(await p2.locator('#status').innerText(), /refused/);
    } finally {
      await p2.close();
    }
    assert.ok(server.stats().refused >= 1);
  });
});
