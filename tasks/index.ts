/**
 * Task registry: a plain table from id to Task. Adding a task is one line here.
 */
import type { Task } from '../sim/task.ts';
import { blocksTask } from './blocks.ts';
import { blockBridgeTask } from './block_bridge.ts';
import { jujubeCupTask } from './jujube_cup.ts';
import { stackTask } from './stack.ts';

export const TASKS: Record<string, Task> = {
  blocks: blocksTask,
  stack: stackTask,
  jujube_cup: jujubeCupTask,
  block_bridge: blockBridgeTask,
};

/** The task registered under `id`; throws listing the known ids. */
export function getTask(id: string): Task {
  const t = Object.hasOwn(TASKS, id) ? TASKS[id] : undefined;
  if (!t) throw new Error(`unknown task '${id}' (expected one of: ${Object.keys(TASKS).join(', ')})`);
  return t;
}
