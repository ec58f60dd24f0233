/**
 * The tiny VLA's speed, default model (both cameras at 64x64), CPU. Prints one JSON line:
 *   params                      parameter count
 *   infer_p50_ms, infer_p99_ms  policy.onnx latency at batch 1, one thread (target p99 < 2 ms)
 *   batched_samples_per_s       inference samples/s at batch 64, two threads
 *   bc_samples_per_s            behaviour-cloning training samples/s (batch 32, two threads, the
 *                               generated training graph: forward + L1 + backward + AdamW)
 *   eval_env_steps_per_s        closed-loop env steps/s on Stack with the cameras (RGB) rendered in 2
 *                               worker processes (one env each), the policy batched in this process
 *   load_avg_1m                 the host's 1-minute load average at the end (the figures vary with it)
 * Usage: npm run bench:policy [-- --policy FILE.onnx] (default: a freshly initialised model)
 */
import { loadavg } from 'node:os';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { l1 } from '../nn/losses.ts';
import { createSession, type HostTensor } from '../nn/runtime.ts';
import { Trainer } from '../nn/trainer.ts';
import { evaluatePolicy } from '../policy/eval.ts';
import { EVAL_SEED_BASE } from '../policy/train/config.ts';
import { defaultVlaConfig } from '../policy/vla/config.ts';
import { createVla, exportVla, identityStats, parameterCounts, VLA_IO } from '../policy/vla/model.ts';
import { taskTokenizer } from '../policy/vla/tokenizer.ts';
import { robotSpecFor } from '../robot/spec.ts';
import { Rng } from '../sim/rng.ts';
import { scratchDir } from '../test/tmp.ts';

const cfg = defaultVlaConfig();
const tok = taskTokenizer({ buckets: cfg.tokenizerBuckets, maxLength: cfg.maxTokens });
const vla = createVla(cfg, tok, identityStats(), 0);
const policyArg = process.argv.indexOf('--policy');
const dir = scratchDir('evovla-bench-policy-');
const policyFile = policyArg >= 0 ? process.argv[policyArg + 1] : join(dir, 'policy.onnx');
if (policyArg < 0) writeFileSync(policyFile, exportVla(vla, robotSpecFor('airbot_play')));

const rng = new Rng(1);
function feeds(n: number): Record<string, HostTensor> {
  const S = cfg.imageSize;
  const f: Record<string, HostTensor> = {
    [VLA_IO.proprio]: { data: Float32Array.from({ length: n * 7 }, () => rng.uniform(-1, 1)), shape: [n, 7] },
    [VLA_IO.instruction]: { data: BigInt64Array.from({ length: n * cfg.maxTokens }, (_, i) => BigInt(i % cfg.maxTokens < 12 ? 1 + rng.int(tok.vocabSize - 1) : 0)), shape: [n, cfg.maxTokens] },
  };
  for (const c of cfg.cameras) f[VLA_IO.image(c)] = { data: Float32Array.from({ length: n * 3 * S * S }, () => rng.next()), shape: [n, 3, S, S] };
  return f;
}

function quantile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

// Inference latency, batch 1, one thread.
const s1 = await createSession(policyFile, { threads: 1 });
const one = feeds(1);
for (let i = 0; i < 50; i++) await s1.run(one, ['action']);
const lat: number[] = [];
for (let i = 0; i < 1000; i++) {
  const t = performance.now();
  await s1.run(one, ['action']);
  lat.push(performance.now() - t);
}
await s1.dispose();

// Batched inference, batch 64, two threads.
const s2 = await createSession(policyFile, { threads: 2 });
const big = feeds(64);
for (let i = 0; i < 5; i++) await s2.run(big, ['action']);
let t0 = performance.now();
const rounds = 30;
for (let i = 0; i < rounds; i++) await s2.run(big, ['action']);
const batched = (rounds * 64) / ((performance.now() - t0) / 1000);
await s2.dispose();

// BC training step, batch 32, two threads.
const B = 32;
const trainer = await Trainer.create({
  model: vla.training,
  loss: (g, out) => ({ loss: l1(out[VLA_IO.actionNorm], g.input('target', ['B', cfg.chunk, 7])) }),
  optimizer: { lr: 3e-4, clipNorm: 1, weightDecay: 0.01 },
  session: { threads: 2 },
});
const batch = { ...feeds(B), target: { data: Float32Array.from({ length: B * cfg.chunk * 7 }, () => rng.normal()), shape: [B, cfg.chunk, 7] } };
for (let i = 0; i < 3; i++) await trainer.trainStep(batch);
t0 = performance.now();
const steps = 20;
for (let i = 0; i < steps; i++) await trainer.trainStep(batch);
const bc = (steps * B) / ((performance.now() - t0) / 1000);
await trainer.dispose();

// Closed loop: Stack, cameras rendered in 2 worker processes, 4 episodes of 120 steps.
const ev = await evaluatePolicy({ policy: policyFile, task: 'stack', episodes: 4, workers: 2, seed: EVAL_SEED_BASE, maxSteps: 120 });

console.log(
  JSON.stringify({
    bench: 'policy',
    params: parameterCounts(vla).total,
    infer_p50_ms: +quantile(lat, 0.5).toFixed(3),
    infer_p99_ms: +quantile(lat, 0.99).toFixed(3),
    batched_samples_per_s: +batched.toFixed(1),
    bc_samples_per_s: +bc.toFixed(1),
    eval_env_steps_per_s: +ev.envStepsPerSecond.toFixed(1),
    load_avg_1m: +loadavg()[0].toFixed(2),
  }),
);
