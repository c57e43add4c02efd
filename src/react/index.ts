// `taskwire/react`: useTask(id) for React 18 and 19, on the client SDK. A component gets the
// task's state, progress and streamed output text, live, resumed by index across reconnects and,
// after a page reload, fetched again from the server. Give the client once with
// <TaskwireProvider client={tw}> (or per call: useTask(id, { client })).
import {
  createContext,
  createElement,
  type ReactElement,
  type ReactNode,
  useContext,
  useSyncExternalStore,
} from 'react';
import type { TaskwireClient } from '../client/index.ts';
import { loadingView, noTaskView, type TaskStoreOptions, type TaskView, taskStore } from './task-store.ts';

export type { TaskStoreOptions, TaskView } from './task-store.ts';

const ClientContext = createContext<TaskwireClient | null>(null);

export interface TaskwireProviderProps {
  client: TaskwireClient;
  children?: ReactNode;
}

/** Makes `client` the one `useTask` uses below it. */
export function TaskwireProvider({ client, children }: TaskwireProviderProps): ReactElement {
  return createElement(ClientContext.Provider, { value: client }, children);
}

/** The client of the nearest TaskwireProvider. */
export function useTaskwire(): TaskwireClient {
  const client = useContext(ClientContext);
  if (!client) throw new Error('useTaskwire: no <TaskwireProvider client={...}> above this component');
  return client;
}

export interface UseTaskOptions extends TaskStoreOptions {
  /** Instead of the provider's. */
  client?: TaskwireClient;
}

const noop = () => () => {};

/**
 * Follows task `id` (null: none) and re-renders on every change: `{state, status, progress,
 * message, output, chunks, result, error, loading, done, outputDone, handle}` (see TaskView).
 * The output is the whole valid text from index 0, so a remounted component or a reloaded page
 * shows it complete; a retry that starts over clears it. Components using the same id share
 * one channel, left when the last of them unmounts (unless the app's own code made the handle).
 */
export function useTask<R = unknown>(id: string | null | undefined, opts: UseTaskOptions = {}): TaskView<R> {
  const fromContext = useContext(ClientContext);
  const client = opts.client ?? fromContext;
  if (!client) throw new Error('useTask: pass { client } or render inside <TaskwireProvider client={...}>');
  const store = id ? taskStore<R>(client, id, opts) : null;
  return useSyncExternalStore<TaskView<R>>(
    store ? store.subscribe : noop,
    store ? store.getSnapshot : noTaskView,
    store ? loadingView : noTaskView,
  );
}
