/**
 * Streams a running env to a live viewer: every reset publishes the episode (header and scene),
 * every step publishes its record (poses, stage, reward terms, camera images when the env renders
 * them). Works with any loop that drives the env (scripted experts, evaluation, training), because
 * it wraps the env's own reset/step rather than the loop.
 */
import type { SimEnv } from '../sim/env.ts';
import type { StepRecord } from '../sim/record/types.ts';
import type { Observation, StepInfo } from '../sim/types.ts';
import { episodeHeader } from '../tasks/rollout.ts';
import type { LiveViewer } from './live.ts';
import { waitForInterrupt } from './server.ts';

function record(info: StepInfo, obs: Observation, action: Float32Array, reward: number, terminated: boolean, truncated: boolean): StepRecord {
  const s = info.state;
  const rec: StepRecord = {
    step: s.step,
    time: s.time,
    action,
    proprio: obs.proprio,
    links: s.links,
    ee: s.ee,
    objects: s.objects,
    predicates: info.predicates,
    stage: info.stage,
    rewardTerms: info.rewardTerms,
    reward,
    terminated,
    truncated,
  };
  if (obs.images) rec.images = obs.images;
  return rec;
}

/**
 * Publishes `env`'s episodes to `viewer` from now on. Returns a function that stops streaming
 * (restores the env's own methods).
 */
export function streamEnvToViewer(env: SimEnv, viewer: LiveViewer, meta: Record<string, unknown> = {}): () => void {
  const reset = env.reset;
  const step = env.step;
  let lastSeed = 0;
  env.reset = function (this: SimEnv, opts = {}) {
    const r = reset.call(this, opts);
    if (opts.seed !== undefined) lastSeed = opts.seed;
    const header = episodeHeader(this, this.task, lastSeed, { writer: 'live', ...meta });
    const scene = this.randomization ? this.task.buildScene(this.randomization) : null;
    viewer.publish({ kind: 'episode', header, scene, name: `${this.task.id}-${lastSeed}` });
    viewer.publish({ kind: 'step', step: record(r.info, r.obs, new Float32Array(this.actionSize), 0, false, false) });
    return r;
  };
  env.step = function (this: SimEnv, action) {
    const r = step.call(this, action);
    viewer.publish({ kind: 'step', step: record(r.info, r.obs, Float32Array.from(action), r.reward, r.terminated, r.truncated) });
    return r;
  };
  return () => {
    env.reset = reset;
    env.step = step;
  };
}

/** A live view of one env, started by `evovla demos --view`. */
export interface EnvLiveView {
  readonly url: string;
  readonly viewer: LiveViewer;
  /**
   * Stops streaming. When `waitForUser` is true, keeps the page served until Ctrl+C so the last
   * episode can still be watched; then closes the server.
   */
  finish(waitForUser: boolean): Promise<void>;
}

/** Starts a live viewer on 127.0.0.1, streams `env` to it and prints the page URL on stderr. */
export async function startEnvLiveView(env: SimEnv, log: (line: string) => void = (l) => console.error(l)): Promise<EnvLiveView> {
  const { startLiveViewer } = await import('./live.ts');
  const viewer = await startLiveViewer();
  const stop = streamEnvToViewer(env, viewer);
  log(`live viewer: ${viewer.url}`);
  return {
    url: viewer.url,
    viewer,
    async finish(waitForUser) {
      stop();
      if (waitForUser) {
        log(`live viewer still open at ${viewer.url} - press Ctrl+C to exit`);
        await waitForInterrupt();
      }
      await viewer.close();
    },
  };
}
