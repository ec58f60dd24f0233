import { createEnv } from '../sim/env.ts';
import { getTask } from '../tasks/index.ts';
import { recordDemo, demoFrames } from '../rewards/sar/data.ts';
import { SarScorer } from '../rewards/sar/scorer.ts';
import { createSarRenderer } from '../policy/train/sar_phase.ts';
const task = getTask('stack');
const env = await createEnv(task);
const r = await createSarRenderer(task, 64);
const models = process.argv.slice(3);
const scorers = await Promise.all(models.map((m) => SarScorer.load(m)));
for (const seed of process.argv[2].split(',').map(Number)) {
  const demo = recordDemo(env, task, seed);
  const frames = demoFrames(task, demo, r, 1).slice(1);
  for (const k of [1, 10]) {
    const idx = frames.map((f, i) => (f.done[k] ? i : -1)).filter((i) => i >= 0);
    for (const [j, s] of scorers.entries()) {
      const emb = await s.embed(idx.map((i) => frames[i].images));
      const us = idx.map((_, n) => s.scores(emb, n, k).u);
      const above = us.filter((u) => u >= 0.8).length;
      console.log(`seed ${seed} ${task.stages[k].name} model ${j}: ${idx.length} true steps (${frames[idx[0]].step}-${frames[idx.at(-1)!].step}), u>=0.8 on ${above}; first 8: ${us.slice(0, 8).map((u) => u.toFixed(2)).join(' ')}; after grasp (gt>2): mean ${(us.filter((_, n) => frames[idx[n]].gtStage > k + 1).reduce((a, b) => a + b, 0) / Math.max(1, us.filter((_, n) => frames[idx[n]].gtStage > k + 1).length)).toFixed(2)}`);
    }
  }
}
r.dispose(); env.free();
