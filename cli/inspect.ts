/**
 * `evovla inspect FILE`: summarise an episode file (header, length, outcome, stages reached) and,
 * for a damaged file, say exactly where it breaks and what was still readable before it.
 */
import * as fs from 'node:fs';
import { readEpisode, type EpisodeReadResult } from '../sim/record/reader.ts';
import { parseFlags } from './args.ts';
import { UsageError } from './main.ts';

const USAGE = 'usage: evovla inspect <file.evep> [--json]';

/** The facts `inspect` prints, also as JSON. */
export interface EpisodeInspection {
  file: string;
  bytes: number;
  intact: boolean;
  damage: EpisodeReadResult['damage'];
  header: { task: string; robot: string; seed: number; controlHz: number; physicsHz: number; actionMode: string; configHash: string; stages: number; cameras: string[]; version: number } | null;
  steps: number;
  durationSeconds: number;
  success: boolean | null;
  finalStateHash: string | null;
  maxStage: number;
  finalStage: number | null;
  /** Name of the furthest stage completed (highest stage reached - 1). */
  furthestStageName: string | null;
  meanReward: number;
  rewardTerms: string[];
  hasImages: boolean;
}

export function inspectEpisode(file: string, r: EpisodeReadResult): EpisodeInspection {
  const h = r.header;
  const last = r.steps.at(-1);
  const maxStage = r.steps.reduce((m, s) => Math.max(m, s.stage), 0);
  return {
    file,
    bytes: r.bytes,
    intact: r.damage === null,
    damage: r.damage,
    header: h
      ? { task: h.task, robot: h.robot, seed: h.seed, controlHz: h.controlHz, physicsHz: h.physicsHz, actionMode: h.actionMode, configHash: h.configHash, stages: h.stages.length, cameras: h.cameras, version: h.version }
      : null,
    steps: r.steps.length,
    durationSeconds: h && r.steps.length ? r.steps.length / h.controlHz : 0,
    success: r.footer ? r.footer.success : last ? last.terminated && Boolean(last.predicates.success) : null,
    finalStateHash: r.footer?.finalStateHash ?? null,
    maxStage,
    finalStage: last ? last.stage : null,
    furthestStageName: h && maxStage > 0 ? h.stages[maxStage - 1] ?? null : null,
    meanReward: r.steps.length ? r.steps.reduce((a, s) => a + s.reward, 0) / r.steps.length : 0,
    rewardTerms: last ? Object.keys(last.rewardTerms) : [],
    hasImages: r.steps.some((s) => s.images && Object.keys(s.images).length > 0),
  };
}

export function formatInspection(x: EpisodeInspection): string {
  const lines = [`${x.file}: ${x.bytes} bytes, ${x.intact ? 'intact' : 'DAMAGED'}`];
  if (x.header) {
    const h = x.header;
    lines.push(`task ${h.task}, robot ${h.robot}, seed ${h.seed}, ${h.controlHz} Hz control / ${h.physicsHz} Hz physics, actions '${h.actionMode}', config ${h.configHash}, format v${h.version}`);
  }
  lines.push(`${x.steps} steps (${x.durationSeconds.toFixed(2)} s)${x.hasImages ? ', with images' : ''}`);
  if (x.header) {
    lines.push(
      `outcome: ${x.success === null ? 'unknown' : x.success ? 'success' : 'no success'}; furthest stage ${x.maxStage}/${x.header.stages}${x.furthestStageName ? ` (completed '${x.furthestStageName}')` : ''}`,
    );
  }
  lines.push(`mean reward ${x.meanReward.toFixed(4)}; reward terms: ${x.rewardTerms.join(', ') || 'none'}`);
  if (x.finalStateHash) lines.push(`final state hash ${x.finalStateHash}`);
  if (x.damage) {
    lines.push(`damage: ${x.damage.code} at byte ${x.damage.offset} (record ${x.damage.recordIndex}): ${x.damage.message}`);
    lines.push(`readable before it: ${x.header ? 'header' : 'nothing'}${x.steps ? ` + ${x.steps} steps` : ''}`);
  }
  return lines.join('\n');
}

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return 0;
  }
  const args = parseFlags(argv, { json: 'bool' }, USAGE);
  if (args.positional.length !== 1) throw new UsageError(`expected exactly one episode file, got ${args.positional.length} arguments\n${USAGE}`);
  const file = args.positional[0];
  if (!fs.existsSync(file)) throw new UsageError(`episode file '${file}' does not exist`);
  const info = inspectEpisode(file, readEpisode(file));
  console.log(args.flags.json ? JSON.stringify(info, null, 2) : formatInspection(info));
  // A damaged file is reported, and the exit code says so (1) for scripts.
  return info.intact ? 0 : 1;
}
