/** VecEnv worker body: owns `count` envs of one task and serves reset/step requests in order. */
import { parentPort, workerData } from 'node:worker_threads';
import { createEnv, type SimEnv } from './env.ts';
import { loadTask } from './vec_env.ts';

const { taskModule, taskId, config, count } = workerData as { taskModule: string; taskId: string; config: object; count: number };
const task = await loadTask(taskModule, taskId);
const envs: SimEnv[] = [];
for (let i = 0; i < count; i++) envs.push(await createEnv(task, config));

parentPort!.on('message', (m: { id: number; op: string; arg: unknown }) => {
  try {
    let value: unknown = null;
    if (m.op === 'reset') value = envs.map((e, i) => e.reset({ seed: (m.arg as number[])[i] }));
    else if (m.op === 'step') {
      const actions = m.arg as number[][];
      const results = envs.map((e, i) => e.step(actions[i]));
      value = { results, hashes: envs.map((e) => e.stateHash()) };
    } else if (m.op !== 'ready') throw new Error(`unknown op '${m.op}'`);
    parentPort!.postMessage({ id: m.id, ok: true, value });
  } catch (e) {
    parentPort!.postMessage({ id: m.id, ok: false, error: e instanceof Error ? e.message : String(e) });
  }
});
