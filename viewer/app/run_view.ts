/**
 * A training run in the page: learning curves from metrics.jsonl drawn with uPlot (one chart per
 * name prefix: loss/..., reward/..., success, ...), the resolved config, and notes. Rows that
 * arrive while the run trains are appended to the charts as they come.
 */
import uPlot from 'uplot';
import uPlotCss from 'uplot/dist/uPlot.min.css';
import type { MetricRow, RunSummary } from '../protocol.ts';
import { termColor } from './charts.ts';
import { NOT_CURVES, groupOf, xValues } from './run_data.ts';

interface Chart {
  group: string;
  keys: string[];
  plot: uPlot;
  box: HTMLElement;
}

export class RunView {
  private rows: MetricRow[] = [];
  private charts = new Map<string, Chart>();
  private readonly charts_el: HTMLElement;
  private readonly config_el: HTMLElement;
  private readonly notes_el: HTMLElement;
  private readonly title_el: HTMLElement;
  private readonly eval_el: HTMLElement;

  constructor(private readonly root: HTMLElement) {
    const style = document.createElement('style');
    style.textContent = uPlotCss;
    document.head.append(style);
    this.title_el = root.querySelector<HTMLElement>('#runTitle') as HTMLElement;
    this.charts_el = root.querySelector<HTMLElement>('#runCharts') as HTMLElement;
    this.config_el = root.querySelector<HTMLElement>('#runConfig') as HTMLElement;
    this.notes_el = root.querySelector<HTMLElement>('#runNotes') as HTMLElement;
    this.eval_el = root.querySelector<HTMLElement>('#runEval') as HTMLElement;
    window.addEventListener('resize', () => this.resize());
  }

  /** Show a run (replaces what was shown). */
  show(run: RunSummary): void {
    this.title_el.textContent = `run ${run.name}`;
    this.config_el.textContent = run.config || '(no config.yaml)';
    this.notes_el.textContent = run.notes.join('\n');
    this.eval_el.textContent = run.evalSummary || '(no eval.json yet)';
    for (const c of this.charts.values()) c.plot.destroy();
    this.charts.clear();
    this.charts_el.textContent = '';
    this.rows = [];
    this.append(run.metrics);
  }

  /** Add metric rows (new curves get a chart or join their group's). */
  append(rows: MetricRow[]): void {
    this.rows.push(...rows);
    const groups = new Map<string, string[]>();
    for (const row of this.rows) {
      for (const k of Object.keys(row)) {
        if (NOT_CURVES.has(k)) continue;
        const g = groupOf(k);
        const keys = groups.get(g) ?? [];
        if (!keys.includes(k)) keys.push(k);
        groups.set(g, keys);
      }
    }
    const xs = xValues(this.rows);
    for (const [group, keys] of groups) {
      const data: uPlot.AlignedData = [xs, ...keys.map((k) => this.rows.map((r) => (typeof r[k] === 'number' ? r[k] : null)))];
      const chart = this.charts.get(group);
      if (chart && chart.keys.length === keys.length) chart.plot.setData(data);
      else {
        chart?.plot.destroy();
        chart?.box.remove();
        this.charts.set(group, this.makeChart(group, keys, data));
      }
    }
    this.root.dataset.rows = String(this.rows.length);
    this.root.dataset.charts = String(this.charts.size);
  }

  private size(): { width: number; height: number } {
    const width = Math.max(280, Math.floor((this.charts_el.clientWidth || 900) / 2) - 16);
    return { width, height: 200 };
  }

  private makeChart(group: string, keys: string[], data: uPlot.AlignedData): Chart {
    const box = document.createElement('figure');
    box.className = 'runchart';
    box.dataset.group = group;
    const caption = document.createElement('figcaption');
    caption.textContent = group;
    box.append(caption);
    // Keep charts in name order whatever order their curves first appear in.
    const after = [...this.charts_el.children].find((c) => ((c as HTMLElement).dataset.group ?? '') > group);
    this.charts_el.insertBefore(box, after ?? null);
    const plot = new uPlot(
      {
        ...this.size(),
        scales: { x: { time: false } },
        axes: [
          { stroke: '#9aa0a6', grid: { stroke: '#2c3038' } },
          { stroke: '#9aa0a6', grid: { stroke: '#2c3038' } },
        ],
        series: [{ label: 'step' }, ...keys.map((k, i) => ({ label: k, stroke: termColor(i), width: 1.5, spanGaps: true }))],
      },
      data,
      box,
    );
    return { group, keys, plot, box };
  }

  private resize(): void {
    for (const c of this.charts.values()) c.plot.setSize(this.size());
  }
}
