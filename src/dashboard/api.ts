// The HTTP API as the dashboard uses it (api.md), on the page's own origin: typed JSON in and
// out, error bodies turned into ApiError. Knows nothing of sockets or components.
import type { Stats, Task, TaskAuditEvent, TaskPage } from '../contract/index.ts';

/** A task as the dashboard reads it: an admin's reads name the owner. */
export type OwnedTask = Task & { owner?: string };

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export interface ListQuery {
  status?: string;
  type?: string;
  owner?: string;
  all?: boolean;
  cursor?: string | null;
  limit?: number;
}

export class Api {
  readonly #token: () => string;
  /** Told of every 401 (the token expired or was revoked). */
  onUnauthorized: (() => void) | undefined;

  constructor(token: () => string) {
    this.#token = token;
  }

  async #request<T>(method: string, path: string): Promise<T> {
    let res: Response;
    try {
      res = await fetch(path, {
        method,
        headers: { authorization: `Bearer ${this.#token()}` },
        signal: AbortSignal.timeout(15_000),
      });
    } catch (err) {
      throw new ApiError(0, 'network', `cannot reach the server (${(err as Error).message})`);
    }
    const body = (await res.json().catch(() => null)) as
      | (T & { error?: { code: string; message: string } })
      | null;
    if (!res.ok) {
      if (res.status === 401) this.onUnauthorized?.();
      const error = body?.error;
      throw new ApiError(res.status, error?.code ?? 'http', error?.message ?? `HTTP ${res.status}`);
    }
    return body as T;
  }

  list(q: ListQuery): Promise<TaskPage & { tasks: OwnedTask[] }> {
    const params = new URLSearchParams();
    if (q.status) params.set('status', q.status);
    if (q.type) params.set('type', q.type);
    if (q.owner) params.set('owner', q.owner);
    else if (q.all) params.set('all', 'true');
    if (q.cursor) params.set('cursor', q.cursor);
    params.set('limit', String(q.limit ?? 100));
    return this.#request('GET', `/api/tasks?${params}`);
  }

  get(id: string): Promise<OwnedTask> {
    return this.#request('GET', `/api/tasks/${encodeURIComponent(id)}`);
  }

  async events(id: string): Promise<TaskAuditEvent[]> {
    return (
      await this.#request<{ events: TaskAuditEvent[] }>('GET', `/api/tasks/${encodeURIComponent(id)}/events`)
    ).events;
  }

  cancel(id: string): Promise<Task> {
    return this.#request('POST', `/api/tasks/${encodeURIComponent(id)}/cancel`);
  }

  retry(id: string): Promise<Task> {
    return this.#request('POST', `/api/tasks/${encodeURIComponent(id)}/retry`);
  }

  stats(window: string, all: boolean): Promise<Stats> {
    return this.#request('GET', `/api/stats?window=${encodeURIComponent(window)}${all ? '&all=true' : ''}`);
  }
}
