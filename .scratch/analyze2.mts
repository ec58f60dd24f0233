import { createEnv } from '../sim/env.ts';
import { getTask } from '../tasks/index.ts';
import { recordDemo, demoFrames } from '../rewards/sar/data.ts';
import { SarScorer } from '../rewards/sar/scorer.ts';
import { createSarRenderer } from '../policy/train/sar_phase.ts';
const task = getTask('stack');
const env = await createEnv(task);
const r = await createSarRenderer(task, 64);
const scorer = await SarScorer.load(process.argv[2]);
for (const seed of (process.argv[3] ?? '100').split(',').map(Number)) {
  const demo = recordDemo(env, task, seed);
  const frames = demoFrames(task, demo, r, 1).slice(1);
  const emb = await scorer.embed(frames.map((f) => f.images));
  const out: string[] = [];
  for (let k = 0; k < task.stages.length; k++) {
    const start = frames.findIndex((f) => f.gtStage >= k);
    const firstTrue = frames.findIndex((f) => f.done[k] === 1);
    // From when stage k is the current one: u sequence until gtStage > k+2
    const us: number[] = []; const dn: number[] = [];
    for (let i = start; i < frames.length && frames[i].gtStage <= k + 2; i++) { us.push(scorer.scores(emb, i, k).u); dn.push(frames[i].done[k]); }
    const best = (m: number) => { let b = 0; for (let i = 0; i + m <= us.length; i++) b = Math.max(b, us.slice(i, i + m).reduce((a, x) => a + x, 0) / m); return b; };
    const trueCount = dn.filter((d) => d).length;
    out.push(`${k} ${task.stages[k].name}: frames ${us.length}, true ${trueCount}, firstTrue@${firstTrue - start}, best mean m=2 ${best(2).toFixed(2)} m=4 ${best(4).toFixed(2)} m=6 ${best(6).toFixed(2)}; u>0.8 on ${us.filter((u, i) => u > 0.8 && dn[i]).length} true, ${us.filter((u, i) => u > 0.8 && !dn[i]).length} false`);
  }
  console.log(`seed ${seed}\n` + out.join('\n'));
}
r.dispose(); env.free();
