/**
 * The ceiling of behaviour cloning with perfect perception: the same recipe as the VLA's BC
 * (action chunks, L1 on normalised targets, AdamW + cosine, chunked or ensembled execution), but
 * the policy is an MLP that reads the simulator's ground truth (joints, gripper, tool position,
 * every object's pose relative to the tool) instead of camera images. What it cannot reach, the
 * VLA cannot either: a failure here lies in the demonstrations, the action representation or
 * closed-loop execution, not in vision.
 *
 * Demos come from the task's expert on seeds 0..demos-1 (no cameras); evaluation runs on held-out
 * seeds from 1,000,000, as `evovla eval` does. Prints one JSON line per execution mode.
 * `--noise STD` records the demos with action noise (DART, tasks/action_noise.ts) as `evovla demos
 * --action-noise` does: the env executes the expert's joint targets plus a Gaussian offset of STD
 * rad held for `--noise-hold` steps, and the policy learns the expert's clean action.
 *   npm run bench:bc-state -- [--task stack] [--demos 100] [--steps 3000] [--batch 256] [--eval 30]
 *                             [--chunk 16] [--frame delta|absolute] [--modes chunk8,ensemble0.05] [--seed 0]
 *                             [--noise 0] [--noise-hold 10] [--noise-seed 0]
 */
import * as os from 'node:os';
import { flag, intFlag } from './args.ts';
import { l1 } from '../nn/losses.ts';
import { MLP } from '../nn/layers.ts';
import * as op from '../nn/ops.ts';
import type { ModelDefinition } from '../nn/model.ts';
import { ParamSet } from '../nn/params.ts';
import { ModelRunner } from '../nn/runner.ts';
import { Trainer } from '../nn/trainer.ts';
import { ChunkPlayer, type InferenceMode } from '../policy/eval.ts';
import { EVAL_SEED_BASE } from '../policy/train/config.ts';
import { createEnv } from '../sim/env.ts';
import { Rng } from '../sim/rng.ts';
import type { SimState } from '../sim/types.ts';
import { ActionNoiseInjector, validateActionNoise, type ActionNoise } from '../tasks/action_noise.ts';
import { getTask } from '../tasks/index.ts';
import { wilsonInterval } from '../tasks/rollout.ts';

const taskId = flag('task') ?? 'stack';
const nDemos = intFlag('demos', 100);
const steps = intFlag('steps', 3000);
const batch = intFlag('batch', 256);
const nEval = intFlag('eval', 30);
const K = intFlag('chunk', 16);
const seed = intFlag('seed', 0, 0);
const frame = flag('frame') ?? 'delta';
const noiseStd = Number(flag('noise') ?? '0');
const noise: ActionNoise = validateActionNoise({ std: noiseStd, holdSteps: intFlag('noise-hold', 10, 1), seed: intFlag('noise-seed', 0, 0) }, '--noise');
if (frame !== 'delta' && frame !== 'absolute') throw new Error(`--frame must be delta or absolute, got '${frame}'`);
const modes: InferenceMode[] = (flag('modes') ?? 'chunk8,ensemble0.05')
  .split(',')
  .map((m) => {
    const chunk = /^chunk(\d+)$/.exec(m);
    if (chunk) return { mode: 'chunk', execute: Number(chunk[1]), ensembleDecay: 0 };
    const ens = /^ensemble(-?[0-9.]+)$/.exec(m);
    if (ens) return { mode: 'ensemble', execute: 1, ensembleDecay: Number(ens[1]) };
    throw new Error(`--modes: '${m}' is not chunkN or ensembleD (e.g. chunk8, ensemble0.05)`);
  });

const task = getTask(taskId);
const env = await createEnv(task, {});
const relative = (d: number) => frame === 'delta' && d < 6;

/** Joints, gripper, tool position, then each object's position relative to the tool and its quaternion. */
function features(s: SimState): number[] {
  const f = [...s.q.slice(0, 6), s.gripper, ...s.ee.p];
  for (const name of Object.keys(s.objects).sort()) {
    const o = s.objects[name];
    f.push(o.p[0] - s.ee.p[0], o.p[1] - s.ee.p[1], o.p[2] - s.ee.p[2], ...o.q);
  }
  return f;
}

// Demonstrations: (features, action label) per control step; with noise, the env executes another action.
const t0 = performance.now();
const X: number[][] = [];
const A: number[][] = [];
const episodeEnd: number[] = [];
let demoSuccess = 0;
let demoErrors = 0;
for (let s = 0; s < nDemos; s++) {
  let { info } = env.reset({ seed: s });
  const expert = task.expert(env.randomization!, env.expertTools());
  const injector = noise.std > 0 ? new ActionNoiseInjector(noise, s) : null;
  for (;;) {
    let r;
    try {
      const label = Float32Array.from(expert.act(info.state).action);
      X.push(features(info.state));
      A.push(Array.from(label));
      r = env.step(injector ? injector.apply(label) : label);
    } catch (err) {
      // An expert that gives up (unreachable IK target) ends its demo, as in `evovla demos`.
      if ((err as Error).name !== 'ExpertIkError') throw err;
      demoErrors++;
      break;
    }
    info = r.info;
    if (r.terminated || r.truncated) {
      if (info.success) demoSuccess++;
      break;
    }
  }
  episodeEnd.push(X.length);
}
const demoSeconds = (performance.now() - t0) / 1000;
const F = X[0].length;
const endOf = new Int32Array(X.length);
for (let e = 0, i = 0; e < episodeEnd.length; e++) for (; i < episodeEnd[e]; i++) endOf[i] = episodeEnd[e] - 1;
const target = (i: number, k: number, d: number) => A[Math.min(i + k, endOf[i])][d] - (relative(d) ? X[i][d] : 0);

function meanStd(n: number, count: number, value: (i: number, d: number) => number): { mean: number[]; std: number[] } {
  const m = new Float64Array(n);
  const q = new Float64Array(n);
  for (let i = 0; i < count; i++) for (let d = 0; d < n; d++) (m[d] += value(i, d)), (q[d] += value(i, d) ** 2);
  const mean = [...m].map((v) => v / count);
  return { mean, std: [...q].map((v, d) => Math.max(1e-3, Math.sqrt(Math.max(0, v / count - mean[d] ** 2)))) };
}
const xs = meanStd(F, X.length, (i, d) => X[i][d]);
const as = meanStd(7, X.length * K, (j, d) => target(Math.floor(j / K), j % K, d));

const params = new ParamSet(seed);
const net = new MLP(params, 'policy', [F, 512, 512, 512, K * 7], 'gelu');
const model: ModelDefinition = { params, forward: (g) => ({ action: op.reshape(net.apply(g.input('x', ['B', F])), [0, K, 7]) }) };
const trainer = await Trainer.create({
  model,
  loss: (g, out) => ({ loss: l1(out.action, g.input('target', ['B', K, 7])), metrics: {} }),
  optimizer: { lr: 1e-3, warmupSteps: 100, clipNorm: 1, weightDecay: 1e-4 },
  session: { threads: 2 },
});
const rng = new Rng(seed).fork('bc-state');
const normX = (f: number[], out: Float32Array, at: number) => {
  for (let d = 0; d < F; d++) out[at + d] = (f[d] - xs.mean[d]) / xs.std[d];
};
const t1 = performance.now();
let loss = Number.NaN;
for (let step = 1; step <= steps; step++) {
  const x = new Float32Array(batch * F);
  const y = new Float32Array(batch * K * 7);
  for (let b = 0; b < batch; b++) {
    const i = rng.int(X.length);
    normX(X[i], x, b * F);
    for (let k = 0; k < K; k++) for (let d = 0; d < 7; d++) y[(b * K + k) * 7 + d] = (target(i, k, d) - as.mean[d]) / as.std[d];
  }
  trainer.learningRate = 1e-3 * 0.5 * (1 + Math.cos((Math.PI * step) / steps));
  loss = (await trainer.trainStep({ x: { data: x, shape: [batch, F] }, target: { data: y, shape: [batch, K, 7] } })).loss;
}
const trainSeconds = (performance.now() - t1) / 1000;

const runner = await ModelRunner.create(model, { threads: 2 });
for (const mode of modes) {
  const t2 = performance.now();
  const furthest: number[] = [];
  let successes = 0;
  for (let e = 0; e < nEval; e++) {
    let { info } = env.reset({ seed: EVAL_SEED_BASE + e });
    const player = new ChunkPlayer(mode);
    let best = info.stage;
    for (;;) {
      if (player.needsChunk()) {
        const f = features(info.state);
        const x = new Float32Array(F);
        normX(f, x, 0);
        const o = (await runner.run({ x: { data: x, shape: [1, F] } })).action.data as Float32Array;
        player.push(Array.from({ length: K }, (_, k) => Float32Array.from({ length: 7 }, (_, d) => o[k * 7 + d] * as.std[d] + as.mean[d] + (relative(d) ? f[d] : 0))));
      }
      const r = env.step(player.next());
      info = r.info;
      best = Math.max(best, info.stage);
      if (r.terminated || r.truncated) {
        if (info.success) successes++;
        break;
      }
    }
    furthest.push(best);
  }
  const ci = wilsonInterval(successes, nEval);
  console.log(
    JSON.stringify({
      bench: 'bc_state',
      task: taskId,
      frame,
      mode: mode.mode === 'chunk' ? `chunk${mode.execute}` : `ensemble${mode.ensembleDecay}`,
      demos: nDemos,
      demo_success: demoSuccess,
      demo_expert_errors: demoErrors,
      noise_std: noise.std,
      noise_hold: noise.holdSteps,
      frames: X.length,
      train_steps: steps,
      batch,
      final_loss: Number(loss.toFixed(4)),
      eval_episodes: nEval,
      success: successes,
      success_ci95: [Number(ci.low.toFixed(3)), Number(ci.high.toFixed(3))],
      mean_furthest_stage: Number((furthest.reduce((a, b) => a + b, 0) / nEval).toFixed(2)),
      stages: task.stages.length,
      furthest_stages: furthest.join(','),
      demo_s: Number(demoSeconds.toFixed(1)),
      train_s: Number(trainSeconds.toFixed(1)),
      eval_s: Number(((performance.now() - t2) / 1000).toFixed(1)),
      load_avg_1m: Number(os.loadavg()[0].toFixed(2)),
    }),
  );
}
await runner.dispose();
