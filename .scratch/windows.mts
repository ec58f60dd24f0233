import { readFileSync, writeFileSync } from 'node:fs';
import { createEnv } from '../sim/env.ts';
import { getTask } from '../tasks/index.ts';
import { recordDemo } from '../rewards/sar/data.ts';
import { stageWindows } from '../rewards/sar/train.ts';
const task = getTask('stack');
const env = await createEnv(task);
const frames: any[] = [];
for (const seed of [0, 1, 2, 3, 4, 5]) {
  const d = recordDemo(env, task, seed);
  d.infos.forEach((info, t) => {
    if (t === 0 || t % 3) return;
    frames.push({ source: 'demo', seed, step: t, done: Uint8Array.from(task.stages.map((s) => (info.predicates[s.name] ? 1 : 0))) });
  });
}
const w = stageWindows(frames, task.stages.length, 3, 6);
console.log(JSON.stringify(w));
for (const f of process.argv.slice(2)) {
  const m = JSON.parse(readFileSync(f, 'utf8'));
  m.gate.windows = w;
  writeFileSync(f, JSON.stringify(m, null, 1));
}
env.free();
