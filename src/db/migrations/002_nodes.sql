-- Liveness: each server process heartbeats a row; a silent one is dead and its jobs are rescued.
create table taskwire.nodes (
  id           text primary key,
  worker_ids   text[] not null default '{}',
  started_at   timestamptz not null default now(),
  heartbeat_at timestamptz not null default now(),
  stopped_at   timestamptz
);
