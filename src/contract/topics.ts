// Topic names of api.md: `task:<task_id>`, `user:<sub>`, `admin:tasks`. No imports.

export const TASK_TOPIC_PREFIX = 'task:';
export const USER_TOPIC_PREFIX = 'user:';
export const ADMIN_TOPIC = 'admin:tasks';

/** Canonical (lowercase) UUIDs: the form the server gives out. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isTaskId(id: string): boolean {
  return UUID.test(id);
}

export function taskTopic(taskId: string): string {
  return TASK_TOPIC_PREFIX + taskId;
}

export function userTopic(sub: string): string {
  return USER_TOPIC_PREFIX + sub;
}
