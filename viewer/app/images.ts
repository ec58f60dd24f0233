/**
 * Camera images to canvas pixels: RGB as is, depth as grey (near bright, far dark, nothing black),
 * segmentation ids as distinct colours (0, the background, black).
 */
import type { ViewImage } from '../protocol.ts';

/** A stable, well-spread colour for segmentation id `id` (golden-angle hues). */
export function idColor(id: number): [number, number, number] {
  if (id === 0) return [0, 0, 0];
  const h = (id * 137.508) % 360;
  const s = 0.65;
  const l = 0.55;
  const k = (n: number): number => (n + h / 30) % 12;
  const a = s * Math.min(l, 1 - l);
  const f = (n: number): number => l - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)));
  return [Math.round(f(0) * 255), Math.round(f(8) * 255), Math.round(f(4) * 255)];
}

/** Fills RGBA `out` (width*height*4) from whichever image `img` carries. */
export function imageToRgba(img: ViewImage, out: Uint8ClampedArray): void {
  const n = img.width * img.height;
  if (img.rgb) {
    for (let i = 0; i < n; i++) {
      out[4 * i] = img.rgb[3 * i];
      out[4 * i + 1] = img.rgb[3 * i + 1];
      out[4 * i + 2] = img.rgb[3 * i + 2];
      out[4 * i + 3] = 255;
    }
  } else if (img.depth) {
    let lo = Infinity;
    let hi = 0;
    for (let i = 0; i < n; i++) {
      const d = img.depth[i];
      if (d > 0) {
        lo = Math.min(lo, d);
        hi = Math.max(hi, d);
      }
    }
    const span = hi > lo ? hi - lo : 1;
    for (let i = 0; i < n; i++) {
      const d = img.depth[i];
      const v = d > 0 ? Math.round(255 - (200 * (d - lo)) / span) : 0;
      out[4 * i] = out[4 * i + 1] = out[4 * i + 2] = v;
      out[4 * i + 3] = 255;
    }
  } else if (img.segmentation) {
    const cache = new Map<number, [number, number, number]>();
    for (let i = 0; i < n; i++) {
      const id = img.segmentation[i];
      let c = cache.get(id);
      if (!c) cache.set(id, (c = idColor(id)));
      out[4 * i] = c[0];
      out[4 * i + 1] = c[1];
      out[4 * i + 2] = c[2];
      out[4 * i + 3] = 255;
    }
  }
}
