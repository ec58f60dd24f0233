import { createEnv } from '../sim/env.ts';
import { getTask } from '../tasks/index.ts';
import { recordDemo } from '../rewards/sar/data.ts';
const task = getTask('stack');
const env = await createEnv(task);
for (const seed of [0, 1, 100]) {
  const d = recordDemo(env, task, seed);
  for (const k of [1, 6, 10, 15]) {
    const on = d.infos.map((i) => (i.predicates[task.stages[k].name] ? 1 : 0));
    const runs: string[] = []; let s = -1;
    on.forEach((v, t) => { if (v && s < 0) s = t; if (!v && s >= 0) { runs.push(`${s}-${t - 1}`); s = -1; } });
    if (s >= 0) runs.push(`${s}-end`);
    console.log(seed, task.stages[k].name, runs.join(' '), 'gt stage enters k+1 at', d.infos.findIndex((i) => i.stage > k));
  }
}
env.free();
