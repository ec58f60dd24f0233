/**
 * Training runs as the viewer shows them. A run folder (what `evovla train` writes, one per run):
 *
 *   runs/NAME/config.yaml    the resolved config (shown as text)
 *   runs/NAME/metrics.jsonl  one JSON object per line, appended as training goes; every finite
 *                            numeric field (booleans as 0/1) is a curve. The x axis is the first
 *                            of `step`, `iter`, `update`, `epoch` the row has, else the line
 *                            number; when it falls back (a new phase counting from 0) the curve
 *                            continues after the previous phase. Curves are grouped into one
 *                            chart per name prefix before the first '/' or '.' (`loss/bc` and
 *                            `loss/value` share "loss"); names without one that contain "loss"
 *                            (`val_loss`) join "loss"; any other name gets its own chart
 *   runs/NAME/eval_episodes/ episode files (.evep) of evaluation rollouts (`evovla train` writes
 *   runs/NAME/eval/          them to eval_episodes/; eval/ is read too), also one folder deep
 *                            (eval/iter-000100/*.evep); a step record may carry `sarStage`, the
 *                            stage SAR believed the episode was in, drawn beside the ground truth
 *   runs/NAME/eval.json      the evaluation summary (shown as text when present)
 *
 * `RunWatcher` follows a run while it is written: it reads lines appended to metrics.jsonl and
 * episode files that appear (complete ones: the writer renames them into place when closed; a
 * `.partial` file still being written is not picked up). Eval episodes are opened by index, as
 * `evovla view` opens any file (viewer/episodes.ts): their steps are read on demand.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EPISODE_EXTENSION, openEpisodeFiles, type ViewerEpisode } from './episodes.ts';
import type { MetricRow, RunSummary } from './protocol.ts';

export const RUN_CONFIG = 'config.yaml';
export const RUN_METRICS = 'metrics.jsonl';
export const RUN_EVAL_DIRS = ['eval_episodes', 'eval'] as const;
export const RUN_EVAL_SUMMARY = 'eval.json';
/** Fields tried in order for a metrics row's x value. */
export const X_FIELDS = ['step', 'iter', 'update', 'epoch'] as const;

/** True when `dir` looks like a run folder (has config.yaml or metrics.jsonl). */
export function isRunDir(dir: string): boolean {
  const st = fs.statSync(dir, { throwIfNoEntry: false });
  return !!st?.isDirectory() && (fs.existsSync(path.join(dir, RUN_CONFIG)) || fs.existsSync(path.join(dir, RUN_METRICS)));
}

/**
 * Parse metrics lines: keeps each line's finite numbers (booleans as 0/1); a line that is not a
 * JSON object is skipped with a note naming its line number. `firstLine` numbers lines (1-based).
 */
export function parseMetricLines(text: string, firstLine = 1): { rows: MetricRow[]; notes: string[] } {
  const rows: MetricRow[] = [];
  const notes: string[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      notes.push(`${RUN_METRICS} line ${firstLine + i}: not JSON (${(err as Error).message}); skipped`);
      return;
    }
    if (!value || typeof value !== 'object' || Array.isArray(value)) {
      notes.push(`${RUN_METRICS} line ${firstLine + i}: expected a JSON object, got ${JSON.stringify(value).slice(0, 40)}; skipped`);
      return;
    }
    const row: MetricRow = { _line: firstLine + i };
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (typeof v === 'number' && Number.isFinite(v)) row[k] = v;
      else if (typeof v === 'boolean') row[k] = v ? 1 : 0;
    }
    rows.push(row);
  });
  return { rows, notes };
}

/** The episode files under a run's eval folders (and one level of subfolders), sorted. */
export function evalEpisodeFiles(runDir: string): string[] {
  const out: string[] = [];
  for (const name of RUN_EVAL_DIRS) {
    const root = path.join(runDir, name);
    if (!fs.existsSync(root)) continue;
    for (const entry of fs.readdirSync(root, { withFileTypes: true })) {
      const p = path.join(root, entry.name);
      if (entry.isFile() && entry.name.endsWith(EPISODE_EXTENSION)) out.push(p);
      else if (entry.isDirectory()) {
        for (const f of fs.readdirSync(p)) if (f.endsWith(EPISODE_EXTENSION)) out.push(path.join(p, f));
      }
    }
  }
  return out.sort();
}

/**
 * Follows one run folder: `summary()` is what it holds now; `poll()` reads what was appended or
 * added since, returning new metric rows and new eval episodes.
 */
export class RunWatcher {
  readonly dir: string;
  readonly name: string;
  private metricsOffset = 0;
  private metricsLines = 0;
  private partialLine = '';
  private readonly rows: MetricRow[] = [];
  private readonly notes: string[] = [];
  private readonly seen = new Set<string>();
  private config = '';

  constructor(dir: string) {
    if (!isRunDir(dir)) throw new Error(`${dir} is not a run folder (expected ${RUN_CONFIG} or ${RUN_METRICS} in it)`);
    this.dir = dir;
    this.name = path.basename(path.resolve(dir));
  }

  /** Read everything present now; returns the eval episodes found (to add to the viewer). */
  load(): ViewerEpisode[] {
    const cfg = path.join(this.dir, RUN_CONFIG);
    this.config = fs.existsSync(cfg) ? fs.readFileSync(cfg, 'utf8') : '';
    if (!this.config) this.notes.push(`no ${RUN_CONFIG} in ${this.dir}`);
    return this.poll().episodes;
  }

  /** What the page is sent when it connects. */
  summary(): RunSummary {
    const evalFile = path.join(this.dir, RUN_EVAL_SUMMARY);
    const evalSummary = fs.existsSync(evalFile) ? fs.readFileSync(evalFile, 'utf8') : '';
    return { name: this.name, config: this.config, metrics: this.rows, notes: this.notes, evalSummary };
  }

  /** New metric rows (complete lines only) and new eval episodes since the last call. */
  poll(): { rows: MetricRow[]; episodes: ViewerEpisode[] } {
    const rows = this.readMetrics();
    const fresh = evalEpisodeFiles(this.dir).filter((f) => !this.seen.has(f));
    for (const f of fresh) this.seen.add(f);
    // Opened by index like any replayed file: steps stay on disk and are read on demand, so a run
    // with many long camera episodes costs an index per episode, not its decoded steps.
    const { episodes, unreadable } = openEpisodeFiles(fresh);
    for (const ep of episodes) ep.name = path.relative(this.dir, ep.index?.file ?? ep.name);
    for (const u of unreadable) this.notes.push(`cannot show ${path.relative(this.dir, u.file)}: ${u.reason}`);
    return { rows, episodes };
  }

  private readMetrics(): MetricRow[] {
    const file = path.join(this.dir, RUN_METRICS);
    const st = fs.statSync(file, { throwIfNoEntry: false });
    if (!st) return [];
    if (st.size < this.metricsOffset) {
      // Rewritten from the start (a restarted run): read it again.
      this.metricsOffset = 0;
      this.metricsLines = 0;
      this.partialLine = '';
      this.rows.length = 0;
    }
    if (st.size === this.metricsOffset) return [];
    const fd = fs.openSync(file, 'r');
    let chunk: Buffer;
    try {
      chunk = Buffer.alloc(st.size - this.metricsOffset);
      fs.readSync(fd, chunk, 0, chunk.length, this.metricsOffset);
    } finally {
      fs.closeSync(fd);
    }
    this.metricsOffset = st.size;
    const text = this.partialLine + chunk.toString('utf8');
    const cut = text.lastIndexOf('\n');
    // A line still being written waits for its newline.
    this.partialLine = text.slice(cut + 1);
    const complete = text.slice(0, cut + 1);
    const { rows, notes } = parseMetricLines(complete, this.metricsLines + 1);
    this.metricsLines += complete.split('\n').length - 1;
    this.rows.push(...rows);
    this.notes.push(...notes);
    return rows;
  }
}
