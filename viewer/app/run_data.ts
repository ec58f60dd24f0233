/**
 * How a run's metric rows become charts (no DOM, so tests run it in Node): which chart a metric
 * goes in, and the x value of each row.
 */
import type { MetricRow } from '../protocol.ts';

/** Fields tried in order for a row's x value (as viewer/runs.ts documents). */
export const X_FIELDS = ['step', 'iter', 'update', 'epoch'];

/** Bookkeeping fields that are not curves. */
export const NOT_CURVES = new Set(['_line', 'phase_index', ...X_FIELDS]);

/**
 * The chart a metric goes in: its name up to the first '/' or '.'; a name without one that
 * contains "loss" (val_loss, l1_loss) goes in "loss"; any other name is its own chart.
 */
export function groupOf(key: string): string {
  const cut = key.search(/[/.]/);
  if (cut > 0) return key.slice(0, cut);
  return /loss/.test(key) ? 'loss' : key;
}

/**
 * The x value of every row: the first of step/iter/update/epoch (else the row index); when it
 * falls back (a later phase counting from 0 again) the values continue after the last one, so x
 * never goes backwards.
 */
export function xValues(rows: readonly MetricRow[]): number[] {
  const xs: number[] = [];
  let base = 0;
  let prevRaw = -Infinity;
  let prevX = 0;
  rows.forEach((row, i) => {
    let raw = i;
    for (const f of X_FIELDS) {
      if (typeof row[f] === 'number') {
        raw = row[f];
        break;
      }
    }
    if (raw < prevRaw) base = prevX;
    prevRaw = raw;
    prevX = base + raw;
    xs.push(prevX);
  });
  return xs;
}

