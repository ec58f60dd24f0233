/**
 * A training run in the viewer, in a real browser (Debian's chromium via playwright-core): the
 * learning curves (uPlot) and the config show, rows appended to metrics.jsonl while the page is
 * open reach the charts, and an eval episode replays with SAR's stage beside the ground truth.
 * The run folder is made here, in the documented layout (viewer/runs.ts).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { decodePng } from '../../robot/ros2/png.ts';
import { HALLUCINATION_COLOR, STAGE_COLORS } from '../../viewer/app/charts.ts';
import { RunWatcher } from '../../viewer/runs.ts';
import { startViewerServer, type ViewerServer } from '../../viewer/server.ts';
import { writeEpisode } from '../interop/helpers.ts';
import { scratchDir } from '../tmp.ts';

const CHROMIUM = '/usr/bin/chromium';

function metricLine(step: number): string {
  return JSON.stringify({
    step,
    'loss/bc': 1 / (1 + step),
    'loss/value': 0.5 / (1 + 0.5 * step),
    success: Math.min(1, step / 30),
    hallucination: 0.2 * Math.exp(-step / 10),
    'reward/stage': 0.01 * step,
    'reward/cur': 0.02,
  });
}

describe('runs in the viewer (chromium)', { timeout: 120_000 }, () => {
  const dir = scratchDir('evovla-runview-');
  const runDir = path.join(dir, 'bc-stack');
  let server: ViewerServer;
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];

  before(async () => {
    fs.mkdirSync(path.join(runDir, 'eval'), { recursive: true });
    fs.mkdirSync(path.join(runDir, 'eval_episodes'));
    fs.writeFileSync(path.join(runDir, 'config.yaml'), 'task: stack\ntrain:\n  algo: bc\n  lr: 0.0003\n');
    fs.writeFileSync(path.join(runDir, 'metrics.jsonl'), Array.from({ length: 20 }, (_, i) => `${metricLine(i)}\n`).join(''));
    fs.writeFileSync(path.join(runDir, 'eval.json'), JSON.stringify({ episodes: 2, successRate: 0.5 }));
    writeEpisode(path.join(runDir, 'eval'), 'stack-0', 0, 10, { sar: true });
    const run = new RunWatcher(runDir);
    server = await startViewerServer({ episodes: run.load(), run, runPollMs: 100 });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],
    });
    page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url);
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it('shows one uPlot chart per metric group, with the curves named, and the resolved config', async () => {
    await page.waitForSelector('#run[data-rows="20"]', { timeout: 60_000 });
    const groups = await page.locator('#runCharts figure').evaluateAll((fs) => fs.map((f) => (f as HTMLElement).dataset.group));
    assert.deepEqual(groups, ['hallucination', 'loss', 'reward', 'success']);
    const lossLegend = await page.locator('#runCharts figure[data-group="loss"] .u-legend').innerText();
    assert.match(lossLegend, /loss\/bc/);
    assert.match(lossLegend, /loss\/value/);
    assert.match(await page.locator('#runConfig').innerText(), /algo: bc/);
    assert.match(await page.locator('#runEval').innerText(), /successRate/);
    assert.match(await page.locator('#runTitle').innerText(), /bc-stack/);
    // The curves are drawn: the loss chart's canvas holds the series colours, not just background.
    const shot = decodePng(await page.locator('#runCharts figure[data-group="loss"] canvas').screenshot());
    const colours = new Set<number>();
    for (let i = 0; i < shot.rgb.length; i += 3) colours.add((shot.rgb[i] << 16) | (shot.rgb[i + 1] << 8) | shot.rgb[i + 2]);
    assert.ok(colours.size > 10, `loss chart looks blank (${colours.size} colours)`);
  });

  it('follows the run: appended metric lines and a new eval episode arrive without a reload', async () => {
    fs.appendFileSync(path.join(runDir, 'metrics.jsonl'), `${metricLine(20)}\n${metricLine(21)}\n${JSON.stringify({ phase: 'bc', phase_index: 0, step: 22, 'loss/bc': 0.04, val_loss: 0.1 })}\n`);
    await page.waitForSelector('#run[data-rows="23"]', { timeout: 30_000 });
    assert.match(await page.locator('#runCharts figure[data-group="loss"] .u-legend').innerText(), /val_loss/, 'a new curve joins its group');
    writeEpisode(path.join(runDir, 'eval_episodes'), 'stack-1', 1, 6, { sar: true, cameras: false });
    await page.waitForFunction(() => document.querySelectorAll('#episode option').length === 2, undefined, { timeout: 30_000 });
  });

  it('replays an eval episode with the SAR stage beside the ground-truth stage', async () => {
    await page.click('#runToggle');
    await page.selectOption('#episode', { label: path.join('eval', 'stack-0.evep') });
    await page.waitForSelector('body[data-state="ready"]', { timeout: 30_000 });
    await page.evaluate(() => {
      const s = document.getElementById('scrub') as HTMLInputElement;
      s.value = '4';
      s.dispatchEvent(new Event('input'));
    });
    // Step 4: ground truth is stage 2 (lift); SAR, one step behind, still says stage 1 (grasp).
    await page.waitForFunction(() => /^step 5\//.test(document.getElementById('stepLabel')!.textContent!));
    assert.equal(await page.locator('#stagename').innerText(), 'stage 2: lift');
    assert.equal(await page.locator('#sarname').innerText(), 'SAR: stage 1: grasp');
    // The timeline has a SAR band between the ground truth and the commanded stage.
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const tl = decodePng(await page.locator('#timeline').screenshot());
    const rowColours = (frac: number) => {
      const y = Math.floor(tl.height * frac);
      const set = new Set<string>();
      for (let x = 0; x < tl.width; x++) set.add(Array.from(tl.rgb.subarray((y * tl.width + x) * 3, (y * tl.width + x) * 3 + 3)).join(','));
      return set;
    };
    const hex = (c: string) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)).join(',');
    const sarRow = rowColours(0.62);
    for (const k of [0, 1, 2]) assert.ok(sarRow.has(hex(STAGE_COLORS[k])), `SAR band lacks stage ${k}'s colour`);
    // The hallucinated completion (stage 1 claimed at step index 5) is marked through the SAR band,
    // and only there: no mark in the commanded-stage band below it.
    assert.ok(sarRow.has(hex(HALLUCINATION_COLOR)), 'SAR band lacks the hallucination mark');
    assert.ok(!rowColours(0.9).has(hex(HALLUCINATION_COLOR)), 'the mark spills into the commanded-stage band');
    const markColumns = (() => {
      const y = Math.floor(tl.height * 0.62);
      const xs: number[] = [];
      for (let x = 0; x < tl.width; x++) if (Array.from(tl.rgb.subarray((y * tl.width + x) * 3, (y * tl.width + x) * 3 + 3)).join(',') === hex(HALLUCINATION_COLOR)) xs.push(x);
      return xs;
    })();
    // One mark, at the claim's step (index 5 of 10 steps: the middle of the timeline).
    assert.ok(Math.max(...markColumns) - Math.min(...markColumns) < tl.width / 20, `mark columns ${markColumns}`);
    const mid = (Math.min(...markColumns) + Math.max(...markColumns)) / 2 / tl.width;
    assert.ok(mid > 0.5 && mid < 0.7, `mark at ${mid} of the width`);
    // The step of the claim names it beside SAR's stage.
    await page.evaluate(() => {
      const s = document.getElementById('scrub') as HTMLInputElement;
      s.value = '5';
      s.dispatchEvent(new Event('input'));
    });
    await page.waitForFunction(() => /^step 6\//.test(document.getElementById('stepLabel')!.textContent!));
    assert.equal(await page.locator('#sarname').innerText(), 'SAR: stage 2: lift (hallucinated completion: grasp)');
    assert.deepEqual(errors, []);
  });
});
