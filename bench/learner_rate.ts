/**
 * The measuring loop bench/scale.ts and bench/scale_ppo.ts share: given a learner consuming the
 * segments of `workers` worker processes, wait until every worker's first segment arrived (process
 * start and module loading are not the transport's cost), then count env steps and bytes consumed
 * for `seconds`.
 */
import type { Learner, SegmentHeader } from '../scale/learner.ts';

/** Env steps/s and segment bytes per env step that `learner` consumed over `seconds`. */
export async function learnerRate<S extends SegmentHeader>(learner: Learner<S>, workers: number, seconds: number): Promise<{ stepsPerSec: number; bytesPerStep: number }> {
  while ([...Array(workers).keys()].some((w) => !learner.stats.byWorker.get(w)?.length)) await learner.step({ partialAfterIdleMs: 1000 });
  const steps0 = learner.stats.envSteps;
  const bytes0 = learner.stats.bytes;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) await learner.step({ partialAfterIdleMs: 1000 });
  const dt = (performance.now() - t0) / 1000;
  const steps = learner.stats.envSteps - steps0;
  return { stepsPerSec: steps / dt, bytesPerStep: steps ? (learner.stats.bytes - bytes0) / steps : NaN };
}
