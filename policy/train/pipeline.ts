/**
 * `evovla train` with no flags: EvoVLA's whole pipeline on Stack from a built-in config sized for a
 * 2-core machine (expert demos -> BC -> SAR -> PPO with EvoVLA's rewards -> held-out evaluation), and the
 * summary it ends on. The paper's protocol (50 demos, 2M env steps, 50 eval episodes) is
 * configs/evovla_stack.yaml; this default is the same pipeline, small.
 */
import { join, relative } from 'node:path';
import { formatHallucination, type EvalResult } from '../eval.ts';
import type { PhaseEval, PpoPhaseResult } from './ppo_phase.ts';
import type { TrainSummary } from './run.ts';

/**
 * The built-in config (raw, validated by parseTrainConfig like a YAML file; `--set` overrides
 * apply). Budgets: 20 demos (recorded by 2 processes), BC on them, a SAR scorer from 8 expert
 * episodes + near-miss states, 16k PPO env steps over 8 envs in 2 workers with SAR, POE and memory,
 * 8 greedy episodes before/after PPO and 16 held-out evaluation episodes. Evaluation is most of the
 * cost (a failing Stack episode runs its 720 steps), so the before/after check is the smaller one
 * and the final evaluation keeps 16.
 */
export function defaultPipelineConfig(): Record<string, unknown> {
  return {
    name: 'evovla_stack',
    task: 'stack',
    seed: 0,
    threads: 2,
    model: { cameras: ['eye_side', 'eye_arm'], imageSize: 64, width: 128, depth: 4, heads: 4, chunk: 16 },
    data: { episodes: 20, valEpisodes: 2, workers: 2 },
    phases: [
      { kind: 'bc', steps: 1500, batch: 32, lr: 0.0005, warmupSteps: 100, shift: 4, checkpointEvery: 500, logEvery: 50 },
      // configs/sar.yaml's defaults (8 expert episodes, 2,500 triplet steps: the scorer bench:sar
      // measures). The 6-episode, 600-step scorer this job had before was hacked by PPO: every
      // claim after PPO false, 16 of 16 (docs/rewards.md).
      { kind: 'sar' },
      {
        kind: 'ppo',
        totalSteps: 16384,
        rolloutSteps: 2048,
        minibatchSize: 256,
        epochs: 10,
        envs: 8,
        workers: 2,
        episodeSteps: 720,
        sar: true,
        poe: true,
        memory: true,
        evalEpisodes: 8,
        threads: 1,
      },
    ],
    inference: { mode: 'chunk', execute: 8 },
    eval: { episodes: 16, workers: 2, envs: 8 },
  };
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

function evalLine(label: string, e: PhaseEval | null): string {
  if (!e) return `  ${label}: not evaluated`;
  const h = e.hallucination;
  const hall = h === null ? 'n/a (SAR off)' : h.claims === 0 ? 'n/a (no gate claims)' : `${pct(h.rate)} [${pct(h.low)}, ${pct(h.high)}] of ${h.claims} claims`;
  return `  ${label}: success ${e.successes}/${e.episodes} = ${pct(e.success.rate)} [95% CI ${pct(e.success.low)}, ${pct(e.success.high)}], hallucination ${hall}`;
}

/** The lines `evovla train` ends on: before/after PPO, the final evaluation, the policy, what to run next. */
export function pipelineSummary(s: TrainSummary, taskId: string, cwd = process.cwd()): string[] {
  const lines: string[] = [];
  const ppo = s.phases.find((p) => p.kind === 'ppo') as (PpoPhaseResult & { kind: string }) | undefined;
  if (ppo) {
    lines.push(`PPO: ${ppo.envSteps} env steps in ${(ppo.seconds / 60).toFixed(1)} min; greedy policy on the same held-out seeds:`);
    lines.push(evalLine('before PPO (BC)', ppo.before));
    lines.push(evalLine('after PPO', ppo.after));
  }
  const ev = s.eval as EvalResult | null;
  if (ev) lines.push(`final evaluation: ${ev.successes}/${ev.episodes} = ${pct(ev.successRate)} [95% CI ${pct(ev.ci95[0])}, ${pct(ev.ci95[1])}] on seeds ${ev.seeds[0]}..${ev.seeds[1]}`);
  if (ev?.hallucination) lines.push(`  ${formatHallucination(ev.hallucination)}`);
  if (s.policy) {
    const policy = relative(cwd, s.policy) || s.policy;
    lines.push(`policy: ${policy}`);
    lines.push('next:');
    if (ev) lines.push(`  npx evovla view ${relative(cwd, join(s.runDir, 'eval_episodes'))}      # watch the evaluation episodes`);
    lines.push(`  npx evovla deploy --policy ${policy} --robot sim --task ${taskId}      # run it on the sim twin through the safety layer`);
    lines.push(`  npx evovla deploy --policy ${policy} --robot ros2 --dry-run      # on a ROS 2 arm, commanding nothing`);
  }
  return lines;
}
