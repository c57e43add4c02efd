// Loads user task modules (TASKWIRE_TASKS / --tasks): every export that is a task type made
// with defineTask() is registered; a module with none is an error, not a silent no-op.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { isTaskType, type TaskType } from '../tasks/index.ts';

export async function loadTaskModules(paths: string[]): Promise<TaskType[]> {
  const types: TaskType[] = [];
  for (const file of paths) {
    const url = pathToFileURL(path.resolve(file)).href;
    let mod: Record<string, unknown>;
    try {
      mod = await import(url);
    } catch (err) {
      throw new Error(`could not load task module ${file}: ${(err as Error).message}`, { cause: err });
    }
    const found = Object.values(mod)
      .flatMap((value) => (Array.isArray(value) ? value : [value]))
      .filter(isTaskType);
    if (found.length === 0)
      throw new Error(`task module ${file} exports no task type (use defineTask from 'taskwire')`);
    types.push(...new Set(found));
  }
  return types;
}
