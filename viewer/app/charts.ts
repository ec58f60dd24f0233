/**
 * The stage timeline and the reward-term plot, drawn on 2D canvases. Pure drawing: the caller
 * owns the data and the cursor.
 */
import type { ViewStep } from '../protocol.ts';

/** Stage colours (sRGB hex), in stage order; the last stage index (all done) uses DONE_COLOR. */
export const STAGE_COLORS = ['#e4572e', '#f3a712', '#5b8def', '#a8c686', '#669bbc', '#b07bac', '#8d6a9f', '#dd7373'];
export const DONE_COLOR = '#2a9d4a';
/** Marks of hallucinated SAR-gate completions on the timeline (no stage uses it). */
export const HALLUCINATION_COLOR = '#ff2bd6';
const TERM_COLORS = ['#4cc9f0', '#f72585', '#b5e48c', '#ffd166', '#f4a261', '#9d4edd', '#06d6a0', '#ef476f'];

/** Colour of stage `k` of `n` (k == n: every stage done). */
export function stageColor(k: number, n: number): string {
  return k >= n ? DONE_COLOR : STAGE_COLORS[k % STAGE_COLORS.length];
}

/** Sizes a canvas's backing store to its CSS box (device pixels) and returns its 2D context. */
function context(canvas: HTMLCanvasElement): { ctx: CanvasRenderingContext2D; w: number; h: number } {
  const dpr = window.devicePixelRatio || 1;
  const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
  const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('2D canvas unavailable');
  return { ctx, w, h };
}

/** A SAR-gate completion the ground truth denies, at step index `index` of the episode. */
export interface HallucinationMark {
  index: number;
  stage: number;
}

/** The hallucinated SAR-gate completions of an episode's steps (from each step's `sarClaims`). */
export function hallucinationMarks(steps: readonly ViewStep[]): HallucinationMark[] {
  const marks: HallucinationMark[] = [];
  steps.forEach((s, index) => {
    for (const c of s.sarClaims ?? []) if (c.hallucinated) marks.push({ index, stage: c.stage });
  });
  return marks;
}

/**
 * Ground-truth stage per step as coloured bands (top two thirds, or top half when SAR's stage is
 * recorded), SAR's stage below it when recorded, with each hallucinated SAR-gate completion
 * marked by a HALLUCINATION_COLOR bar through the SAR band and a notch above it, and the stage
 * the expert or policy said it was executing at the bottom, with a cursor at `cursor`.
 */
export function drawTimeline(canvas: HTMLCanvasElement, steps: readonly ViewStep[], stageCount: number, total: number, cursor: number): void {
  const { ctx, w, h } = context(canvas);
  ctx.fillStyle = '#111317';
  ctx.fillRect(0, 0, w, h);
  const n = Math.max(total, steps.length, 1);
  const x = (i: number): number => Math.round((i / n) * w);
  // Bands: ground truth on top; below it SAR's stage (when recorded) and the commanded stage.
  const hasSar = steps.some((s) => s.sarStage !== undefined);
  const gt = Math.round(h * (hasSar ? 0.5 : 0.66));
  const sarBottom = hasSar ? Math.round(h * 0.75) : gt;
  const band = (value: (s: ViewStep) => number | undefined, top: number, bottom: number): void => {
    for (let i = 0; i < steps.length; ) {
      const v = value(steps[i]);
      let j = i + 1;
      while (j < steps.length && value(steps[j]) === v) j++;
      if (v !== undefined) {
        ctx.fillStyle = stageColor(v, stageCount);
        ctx.fillRect(x(i), top, Math.max(1, x(j) - x(i)), bottom - top);
      }
      i = j;
    }
  };
  band((s) => s.stage, 0, gt);
  if (hasSar) band((s) => s.sarStage, gt + 2, sarBottom);
  band((s) => s.commandedStage, sarBottom + 2, h);
  if (hasSar) {
    const dpr = window.devicePixelRatio || 1;
    const bar = Math.max(3, Math.round(3 * dpr));
    const notch = Math.max(4, Math.round((gt - 0) * 0.25));
    ctx.fillStyle = HALLUCINATION_COLOR;
    for (const m of hallucinationMarks(steps)) {
      const cx = Math.min(w - bar, Math.max(0, x(m.index + 1) - Math.floor(bar / 2)));
      ctx.fillRect(cx, gt + 2, bar, sarBottom - gt - 2);
      ctx.beginPath();
      ctx.moveTo(cx + bar / 2 - notch / 2, gt - notch);
      ctx.lineTo(cx + bar / 2 + notch / 2, gt - notch);
      ctx.lineTo(cx + bar / 2, gt);
      ctx.closePath();
      ctx.fill();
    }
  }
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(Math.min(w - 2, x(cursor)), 0, 2, h);
}

/** Names of the reward terms in an episode (union over steps, in first-seen order). */
export function termNames(steps: readonly ViewStep[]): string[] {
  const names = new Set<string>();
  for (const s of steps) for (const k of Object.keys(s.rewardTerms)) names.add(k);
  return [...names];
}

export function termColor(i: number): string {
  return TERM_COLORS[i % TERM_COLORS.length];
}

/** Reward terms over time (one line each, shared y axis) and the scaled reward (dashed white). */
export function drawPlot(canvas: HTMLCanvasElement, steps: readonly ViewStep[], terms: readonly string[], total: number, cursor: number): void {
  const { ctx, w, h } = context(canvas);
  ctx.fillStyle = '#111317';
  ctx.fillRect(0, 0, w, h);
  if (steps.length === 0) return;
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of steps) {
    for (const t of terms) {
      const v = s.rewardTerms[t];
      if (Number.isFinite(v)) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
    if (Number.isFinite(s.reward)) {
      lo = Math.min(lo, s.reward);
      hi = Math.max(hi, s.reward);
    }
  }
  if (!(hi > lo)) {
    hi = lo + 1;
    lo -= 1;
  }
  const pad = 6;
  const n = Math.max(total, steps.length, 2) - 1;
  const x = (i: number): number => (i / n) * w;
  const y = (v: number): number => pad + (1 - (v - lo) / (hi - lo)) * (h - 2 * pad);
  ctx.strokeStyle = '#2c3038';
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(0, y(0));
  ctx.lineTo(w, y(0));
  ctx.stroke();
  const line = (value: (s: ViewStep) => number | undefined, color: string, dash: number[]): void => {
    ctx.strokeStyle = color;
    ctx.setLineDash(dash);
    ctx.lineWidth = 1.5 * (window.devicePixelRatio || 1);
    ctx.beginPath();
    let pen = false;
    for (let i = 0; i < steps.length; i++) {
      const v = value(steps[i]);
      if (v === undefined || !Number.isFinite(v)) {
        pen = false;
        continue;
      }
      if (pen) ctx.lineTo(x(i), y(v));
      else ctx.moveTo(x(i), y(v));
      pen = true;
    }
    ctx.stroke();
    ctx.setLineDash([]);
  };
  terms.forEach((t, i) => line((s) => s.rewardTerms[t], termColor(i), []));
  line((s) => s.reward, '#ffffff', [4, 3]);
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(Math.min(w - 1, x(cursor)), 0, 1, h);
  ctx.fillStyle = '#9aa0a6';
  ctx.font = `${11 * (window.devicePixelRatio || 1)}px system-ui`;
  ctx.fillText(hi.toPrecision(3), 4, pad + 10);
  ctx.fillText(lo.toPrecision(3), 4, h - pad);
}
