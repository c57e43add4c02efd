// Joins `task:<id>` through the service as the task channel does: events that arrive before the
// state are held and only those newer than it are kept, so a recorder sees what a client would.
import type { TopicEvent, TopicSubscriber } from '../../src/bus/index.ts';
import { JoinGate } from '../../src/channels/join-gate.ts';
import { taskTopic } from '../../src/contract/index.ts';
import type { Task } from '../../src/db/index.ts';
import type { TaskService } from '../../src/tasks/index.ts';

export interface Joined {
  task: Task;
  leave(): void;
}

/** Null when the join is refused (unknown task, another user's, or unavailable). */
export async function joinTask(
  service: TaskService,
  owner: string,
  id: string,
  sub: TopicSubscriber,
): Promise<Joined | null> {
  const gate = new JoinGate();
  const gated: TopicSubscriber = {
    deliver: (event: TopicEvent) => {
      if (gate.admit(event)) sub.deliver(event);
    },
    lost: (topic) => sub.lost(topic),
  };
  const result = await service.joinTask(owner, id, gated);
  if (!result.ok) return null;
  for (const event of gate.open([{ key: id, seq: result.state.seq }])) sub.deliver(event);
  return { task: result.state, leave: () => service.leave(taskTopic(id), gated) };
}
