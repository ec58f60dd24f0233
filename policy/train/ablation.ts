/**
 * The EvoVLA ablation's bookkeeping: which configurations ("arms") it compares, the JSONL log each
 * finished run is appended to (so a killed bench keeps what it measured and `--resume` skips it),
 * and the summary (success and hallucination with 95% intervals, sample efficiency) that becomes
 * the table in docs/evovla.md. Running the arms is bench/evovla.ts's job.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../nn/model.ts';
import { makeDirectory } from '../../sim/files.ts';
import { dirname, join } from 'node:path';
import { wilsonInterval } from '../../tasks/rollout.ts';

/** One configuration of the ablation: which of EvoVLA's parts are on. */
export interface AblationArm {
  id: string;
  label: string;
  sar: boolean;
  poe: boolean;
  memory: boolean;
}

/** The four arms, each adding one part to the one before. */
export const ABLATION_ARMS: readonly AblationArm[] = [
  { id: 'baseline', label: 'PPO baseline', sar: false, poe: false, memory: false },
  { id: 'sar', label: '+ SAR', sar: true, poe: false, memory: false },
  { id: 'sar_poe', label: '+ SAR + POE', sar: true, poe: true, memory: false },
  { id: 'full', label: 'full EvoVLA (+ memory)', sar: true, poe: true, memory: true },
];

/** Arm id of the shared starting point (the BC checkpoint evaluated without PPO). */
export const START_ARM = 'bc';

/** One finished PPO run of one arm, as logged. */
export interface AblationRecord {
  arm: string;
  task: string;
  seed: number;
  /** Env steps of PPO (the same budget for every arm). */
  envSteps: number;
  wallSeconds: number;
  /** Held-out evaluation after PPO (same seeds for every arm). */
  eval: { episodes: number; successes: number };
  /** SAR-gate stage completions claimed on the held-out episodes, and those the ground truth denies. */
  hallucination: { claims: number; false: number };
  /** Training success (share of the episodes ended in the iteration) against env steps. */
  curve: Array<{ envSteps: number; success: number }>;
  /** Free-form settings of the run (scale, budgets) for the report. */
  settings?: Record<string, unknown>;
}

/** Identity of a run in the log (what --resume skips). */
export function runKey(r: Pick<AblationRecord, 'arm' | 'task' | 'seed'>): string {
  return `${r.task}/${r.arm}/${r.seed}`;
}

/**
 * Reads the log. A last line cut short (the bench was killed while writing it) is dropped and
 * reported in `dropped`; a damaged line anywhere else is an error naming its line number.
 */
export function readAblationLog(path: string): { records: AblationRecord[]; dropped: number } {
  if (!existsSync(path)) return { records: [], dropped: 0 };
  const lines = readFileSync(path, 'utf8').split('\n');
  const records: AblationRecord[] = [];
  let dropped = 0;
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      records.push(JSON.parse(line) as AblationRecord);
    } catch (e) {
      const last = lines.slice(i + 1).every((l) => l.trim() === '');
      if (!last) throw new Error(`${path}:${i + 1}: not a JSON record (${(e as Error).message})`);
      dropped++;
    }
  });
  return { records, dropped };
}

/** Settings that decide what a run measures: a resumed bench adds runs to a log only when they match. */
export const ABLATION_BUDGET_KEYS = ['scale', 'ppoSteps', 'evalEpisodes', 'episodeSteps', 'sar', 'bc'] as const;

/**
 * Refuses to resume a log whose runs were made with another budget (different --scale, PPO steps,
 * evaluation episodes, episode length, SAR scorer settings or --bc start), or by a version of the
 * bench that did not record one of them: the table would pool runs that measured different things,
 * and the reused SAR scorer (`<out>/sar/sar.onnx`) could be another version's.
 */
export function checkResumable(records: readonly AblationRecord[], current: Readonly<Record<string, unknown>>, path: string): void {
  for (const r of records) {
    for (const key of ABLATION_BUDGET_KEYS) {
      const was = r.settings?.[key];
      const now = current[key];
      if (JSON.stringify(was) === JSON.stringify(now)) continue;
      const wasText = was === undefined ? `no ${key} recorded (an older bench)` : `${key} = ${JSON.stringify(was)}`;
      throw new Error(
        `cannot resume ${path}: its run ${runKey(r)} has ${wasText}, this run has ${key} = ${JSON.stringify(now)}; pass the same flags, or --out DIR to start a new log`,
      );
    }
  }
}

/** The file in a bench folder that records what its reusable artifacts (`bc/`, `sar/`) were made with. */
export const ABLATION_SETTINGS_FILE = 'settings.json';

/**
 * Guards a bench folder's reusable artifacts (`<out>/bc/` and `<out>/sar/sar.onnx`, reused on the next
 * start): the first start writes `<out>/settings.json` (the task and the budget keys); a later start
 * with another task or budget is refused, as is a folder that holds `bc/` or `sar/` but no
 * settings file (a bench killed before it recorded one, or an older bench). Returns true when the
 * file was written now.
 */
export function checkBenchFolder(out: string, current: Readonly<Record<string, unknown>>): boolean {
  const path = join(out, ABLATION_SETTINGS_FILE);
  const keys = ['task', ...ABLATION_BUDGET_KEYS] as const;
  const wanted = Object.fromEntries(keys.map((k) => [k, current[k] ?? null]));
  if (existsSync(path)) {
    let was: Record<string, unknown>;
    try {
      was = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`${path}: not a JSON object (${(e as Error).message}); remove it with ${out}'s bc/ and sar/, or use --out DIR`);
    }
    for (const key of keys) {
      if (JSON.stringify(was[key] ?? null) === JSON.stringify(wanted[key])) continue;
      throw new Error(
        `cannot reuse ${out}: its bc/ and sar/ were made with ${key} = ${JSON.stringify(was[key] ?? null)} (${path}), this run has ${key} = ${JSON.stringify(wanted[key])}; pass the same flags, or --out DIR`,
      );
    }
    return false;
  }
  const left = ['bc', 'sar'].filter((d) => existsSync(join(out, d)));
  if (left.length > 0) {
    throw new Error(`${out} holds ${left.join('/ and ')}/ but no ${ABLATION_SETTINGS_FILE}, so what they were made with is unknown; remove them, or use --out DIR`);
  }
  writeFileAtomic(path, new TextEncoder().encode(JSON.stringify(wanted, null, 2) + '\n'));
  return true;
}

/** Appends one record as a JSON line (creating the folder). */
export function appendAblationRecord(path: string, r: AblationRecord): void {
  makeDirectory(dirname(path));
  appendFileSync(path, JSON.stringify(r) + '\n');
}

/** First env-step count at which the curve reaches `target`; null if it never does. */
export function stepsToReach(curve: AblationRecord['curve'], target: number): number | null {
  for (const p of curve) if (p.success >= target) return p.envSteps;
  return null;
}

/** One row of the summary: an arm on a task, pooled over its seeds. */
export interface AblationRow {
  task: string;
  arm: string;
  label: string;
  seeds: number;
  envSteps: number;
  success: { rate: number; low: number; high: number; episodes: number };
  hallucination: { rate: number; low: number; high: number; claims: number };
  /** Mean furthest ground-truth stage of the evaluation episodes (null when not recorded). */
  furthestStage: number | null;
  /** Baseline's steps to reach the baseline's final training success over this arm's (null: undefined). */
  sampleEfficiency: number | null;
  wallSeconds: number;
}

/**
 * Pools runs per task and arm: success and hallucination as Wilson 95% intervals over all eval
 * episodes (claims) of all seeds, sample efficiency against the baseline's final training success.
 */
export function summariseAblation(records: readonly AblationRecord[]): AblationRow[] {
  const rows: AblationRow[] = [];
  const tasks = [...new Set(records.map((r) => r.task))];
  for (const task of tasks) {
    const of = (arm: string): AblationRecord[] => records.filter((r) => r.task === task && r.arm === arm);
    const baseline = of('baseline');
    const finalSuccess = (rs: AblationRecord[]): number => rs.reduce((s, r) => s + (r.curve.at(-1)?.success ?? 0), 0) / Math.max(1, rs.length);
    const target = baseline.length ? finalSuccess(baseline) : null;
    const meanSteps = (rs: AblationRecord[]): number | null => {
      if (target === null || target <= 0) return null;
      const steps = rs.map((r) => stepsToReach(r.curve, target));
      if (steps.some((s) => s === null)) return null;
      return (steps as number[]).reduce((a, b) => a + b, 0) / steps.length;
    };
    const baseSteps = meanSteps(baseline);
    const known = [START_ARM, ...ABLATION_ARMS.map((a) => a.id)];
    const arms = [...known.filter((a) => of(a).length), ...new Set(records.filter((r) => r.task === task && !known.includes(r.arm)).map((r) => r.arm))];
    for (const arm of arms) {
      const rs = of(arm);
      const episodes = rs.reduce((s, r) => s + r.eval.episodes, 0);
      const successes = rs.reduce((s, r) => s + r.eval.successes, 0);
      const claims = rs.reduce((s, r) => s + r.hallucination.claims, 0);
      const falseClaims = rs.reduce((s, r) => s + r.hallucination.false, 0);
      const armSteps = meanSteps(rs);
      rows.push({
        task,
        arm,
        label: ABLATION_ARMS.find((a) => a.id === arm)?.label ?? (arm === START_ARM ? 'BC start (no PPO)' : arm),
        seeds: rs.length,
        envSteps: Math.max(...rs.map((r) => r.envSteps)),
        success: { ...wilsonInterval(successes, episodes), episodes },
        hallucination: { ...(claims ? wilsonInterval(falseClaims, claims) : { rate: NaN, low: NaN, high: NaN }), claims },
        furthestStage: rs.every((r) => typeof r.settings?.furthestStage === 'number') ? rs.reduce((a, r) => a + (r.settings!.furthestStage as number), 0) / rs.length : null,
        sampleEfficiency: baseSteps !== null && armSteps !== null && armSteps > 0 ? baseSteps / armSteps : null,
        wallSeconds: rs.reduce((s, r) => s + r.wallSeconds, 0) / rs.length,
      });
    }
  }
  return rows;
}

const pct = (x: number): string => (Number.isFinite(x) ? (100 * x).toFixed(1) : 'n/a');

/** The summary as a markdown table. */
export function ablationMarkdown(rows: readonly AblationRow[]): string {
  const out = [
    '| task | configuration | seeds | env steps | success % [95% CI] (episodes) | mean furthest stage | hallucination % [95% CI] (claims) | sample efficiency | wall s/run |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const s = r.success;
    const h = r.hallucination;
    out.push(
      `| ${r.task} | ${r.label} | ${r.seeds} | ${r.envSteps} | ${pct(s.rate)} [${pct(s.low)}, ${pct(s.high)}] (${s.episodes}) | ${r.furthestStage === null ? 'n/a' : r.furthestStage.toFixed(2)} | ` +
        `${h.claims ? `${pct(h.rate)} [${pct(h.low)}, ${pct(h.high)}]` : 'n/a'} (${h.claims}) | ${r.sampleEfficiency === null ? 'n/a' : `${r.sampleEfficiency.toFixed(2)}x`} | ${r.wallSeconds.toFixed(0)} |`,
    );
  }
  return out.join('\n') + '\n';
}
