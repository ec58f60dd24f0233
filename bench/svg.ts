/**
 * Minimal SVG line plots for benchmark reports (no dependency): one or more named series of
 * (x, y) points, optional error bars, axes with round ticks, a legend. Deterministic output, so a
 * plot only changes in git when its data does.
 */

/** One line of a plot. */
export interface Series {
  name: string;
  points: ReadonlyArray<{ x: number; y: number; low?: number; high?: number }>;
}

/** What to draw. */
export interface LinePlot {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  /** Fixed y range (default: from the data, including error bars). */
  yRange?: [number, number];
  width?: number;
  height?: number;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

/** Ticks at 1, 2 or 5 times a power of ten, about `count` of them across [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e3) return `${+(v / 1e3).toPrecision(3)}k`;
  return `${+v.toPrecision(3)}`;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Renders the plot as a standalone SVG document. Throws on non-finite coordinates. */
export function linePlotSvg(p: LinePlot): string {
  const W = p.width ?? 640;
  const H = p.height ?? 400;
  const m = { left: 64, right: 170, top: 36, bottom: 48 };
  const all = p.series.flatMap((s) => s.points);
  for (const s of p.series) {
    for (const pt of s.points) {
      if (![pt.x, pt.y, pt.low ?? 0, pt.high ?? 0].every(Number.isFinite)) throw new RangeError(`series '${s.name}': non-finite point ${JSON.stringify(pt)}`);
    }
  }
  const xs = all.map((q) => q.x);
  const ys = all.flatMap((q) => [q.y, q.low ?? q.y, q.high ?? q.y]);
  const x0 = xs.length ? Math.min(...xs) : 0;
  const x1 = xs.length ? Math.max(...xs) : 1;
  let [y0, y1] = p.yRange ?? [ys.length ? Math.min(...ys) : 0, ys.length ? Math.max(...ys) : 1];
  if (y1 <= y0) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const xr = x1 > x0 ? x1 - x0 : 1;
  const sx = (x: number): number => m.left + ((x - x0) / xr) * (W - m.left - m.right);
  const sy = (y: number): number => H - m.bottom - ((y - y0) / (y1 - y0)) * (H - m.top - m.bottom);
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2 - m.right / 2 + m.left / 2}" y="20" text-anchor="middle" font-size="14">${esc(p.title)}</text>`);
  for (const t of niceTicks(y0, y1)) {
    out.push(`<line x1="${m.left}" x2="${W - m.right}" y1="${sy(t).toFixed(1)}" y2="${sy(t).toFixed(1)}" stroke="#ddd"/>`);
    out.push(`<text x="${m.left - 6}" y="${(sy(t) + 4).toFixed(1)}" text-anchor="end">${fmt(t)}</text>`);
  }
  for (const t of niceTicks(x0, x1)) {
    out.push(`<line x1="${sx(t).toFixed(1)}" x2="${sx(t).toFixed(1)}" y1="${H - m.bottom}" y2="${H - m.bottom + 4}" stroke="#333"/>`);
    out.push(`<text x="${sx(t).toFixed(1)}" y="${H - m.bottom + 18}" text-anchor="middle">${fmt(t)}</text>`);
  }
  out.push(`<line x1="${m.left}" x2="${W - m.right}" y1="${H - m.bottom}" y2="${H - m.bottom}" stroke="#333"/>`);
  out.push(`<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${H - m.bottom}" stroke="#333"/>`);
  out.push(`<text x="${(m.left + W - m.right) / 2}" y="${H - 10}" text-anchor="middle">${esc(p.xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${(m.top + H - m.bottom) / 2}) rotate(-90)" text-anchor="middle">${esc(p.yLabel)}</text>`);
  p.series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    if (pts.length > 1) out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.map((q) => `${sx(q.x).toFixed(1)},${sy(q.y).toFixed(1)}`).join(' ')}"/>`);
    for (const q of pts) {
      if (q.low !== undefined && q.high !== undefined) {
        out.push(`<line x1="${sx(q.x).toFixed(1)}" x2="${sx(q.x).toFixed(1)}" y1="${sy(q.low).toFixed(1)}" y2="${sy(q.high).toFixed(1)}" stroke="${c}" stroke-opacity="0.5"/>`);
      }
      out.push(`<circle cx="${sx(q.x).toFixed(1)}" cy="${sy(q.y).toFixed(1)}" r="3" fill="${c}"/>`);
    }
    const ly = m.top + 8 + i * 18;
    out.push(`<line x1="${W - m.right + 12}" x2="${W - m.right + 32}" y1="${ly}" y2="${ly}" stroke="${c}" stroke-width="2"/>`);
    out.push(`<text x="${W - m.right + 38}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
