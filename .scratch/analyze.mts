// Held-out demo: per step, gate stage, u of gate stage, predicate of reach, etc.
import { createEnv } from '../sim/env.ts';
import { getTask } from '../tasks/index.ts';
import { recordDemo, demoFrames } from '../rewards/sar/data.ts';
import { SarScorer } from '../rewards/sar/scorer.ts';
import { createSarRenderer } from '../policy/train/sar_phase.ts';
const task = getTask('stack');
const env = await createEnv(task);
const r = await createSarRenderer(task, 64);
const scorer = await SarScorer.load(process.argv[2]);
const seed = Number(process.argv[3] ?? 100);
const demo = recordDemo(env, task, seed);
const frames = demoFrames(task, demo, r, 1).slice(1);
const emb = await scorer.embed(frames.map((f) => f.images));
for (const k of [0, 1, 2, 3, 9, 10]) {
  const rows: string[] = [];
  frames.forEach((f, i) => {
    if (f.gtStage < k - 1 || f.gtStage > k + 1) return;
    const s = scorer.scores(emb, i, k);
    rows.push(`${f.step}:${f.done[k]}:${s.u.toFixed(2)}(${(s.positive - Math.max(s.negative, s.nearMiss)).toFixed(3)}${s.nearMiss > s.negative ? 'n' : ''})`);
  });
  console.log(`stage ${k} ${task.stages[k].name}: ${rows.join(' ')}`);
}
r.dispose(); env.free();
