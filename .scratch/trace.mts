import { createEnv } from '../sim/env.ts';
import { getTask } from '../tasks/index.ts';
import { recordDemo, demoFrames } from '../rewards/sar/data.ts';
import { SarScorer } from '../rewards/sar/scorer.ts';
import { StageGate } from '../rewards/sar/score.ts';
import { createSarRenderer } from '../policy/train/sar_phase.ts';
const task = getTask('stack');
const env = await createEnv(task);
const r = await createSarRenderer(task, 64);
const scorer = await SarScorer.load(process.argv[2]);
const thr = Number(process.argv[4] ?? 0.8);
for (const seed of (process.argv[3] ?? '100').split(',').map(Number)) {
  const demo = recordDemo(env, task, seed);
  const frames = demoFrames(task, demo, r, 1).slice(1);
  const emb = await scorer.embed(frames.map((f) => f.images));
  const g = new StageGate(18, { window: 6, threshold: thr, windows: scorer.meta.gate.windows });
  const log: string[] = [];
  let stuckU: string[] = [];
  frames.forEach((f, i) => {
    if (g.stage >= 18) return;
    const k = g.stage;
    const u = scorer.scores(emb, i, k).u;
    const c = g.push(u);
    if (c.length) { log.push(`${task.stages[k].name}@${f.step}(gt ${f.gtStage}${f.done[k] ? '' : ' FALSE'})`); stuckU = []; }
    else stuckU.push(`${f.step}:${f.done[k]}:${u.toFixed(2)}`);
  });
  console.log(`seed ${seed}: ${log.join(' ')}\n  stuck at ${g.stage < 18 ? task.stages[g.stage].name : '-'}: ${stuckU.slice(0, 60).join(' ')}`);
}
r.dispose(); env.free();
