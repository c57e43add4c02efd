// The contract part's public face: the shapes of api.md (the task, its events, topics, error
// codes) and their schemas. It imports nothing of the server; the client SDK imports task.ts,
// events.ts, topics.ts and errors.ts directly (they have no imports of their own).
export * from './errors.ts';
export * from './events.ts';
export * from './schemas.ts';
export * from './stats.ts';
export * from './task.ts';
export * from './topics.ts';
