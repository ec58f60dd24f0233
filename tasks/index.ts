/**
 * Task registry: a plain table from id to Task. Adding a task is one line here.
 */
import type { Task } from '../sim/task.ts';
import { blocksTask } from './blocks.ts';

export const TASKS: Record<string, Task> = {
  blocks: blocksTask,
};

/** The task registered under `id`; throws listing the known ids. */
export function getTask(id: string): Task {
  const t = Object.hasOwn(TASKS, id) ? TASKS[id] : undefined;
  if (!t) throw new Error(`unknown task '${id}' (expected one of: ${Object.keys(TASKS).join(', ')})`);
  return t;
}
