import assert from 'node:assert/strict';
import { test } from 'node:test';
import { linePlotSvg, niceTicks } from '../../bench/svg.ts';

test('ticks fall on 1-2-5 steps inside the range', () => {
  assert.deepEqual(niceTicks(0, 1), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(niceTicks(0, 20000, 4), [0, 5000, 10000, 15000, 20000]);
});

test('a plot draws each series with its legend and error bars, escapes text, refuses NaN', () => {
  const svg = linePlotSvg({
    title: 'success <stack>',
    xLabel: 'env steps',
    yLabel: 'success',
    series: [
      { name: 'baseline', points: [{ x: 0, y: 0.1, low: 0, high: 0.2 }, { x: 100, y: 0.3 }] },
      { name: 'full', points: [{ x: 0, y: 0.2 }, { x: 100, y: 0.5 }] },
    ],
  });
  assert.match(svg, /^<svg xmlns/);
  assert.equal((svg.match(/<polyline/g) ?? []).length, 2);
  assert.match(svg, />baseline</);
  assert.match(svg, /success &lt;stack&gt;/);
  assert.throws(() => linePlotSvg({ title: '', xLabel: '', yLabel: '', series: [{ name: 'x', points: [{ x: 0, y: NaN }] }] }), /series 'x': non-finite/);
});
