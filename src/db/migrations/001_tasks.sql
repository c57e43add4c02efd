-- Tasks (the one state machine) and their audit trail.
create table taskwire.tasks (
  id              uuid primary key,
  owner           text not null,
  type            text not null,
  status          text not null check (status in ('queued', 'running', 'completed', 'failed', 'cancelled')),
  progress        double precision not null default 0,
  message         text,
  input           jsonb not null,
  result          jsonb,
  error           jsonb,
  attempt         integer not null default 0,
  max_attempts    integer not null,
  seq             bigint not null default 0,
  idempotency_key text,
  node_id         text,
  cancel_requested_at timestamptz,
  inserted_at     timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  started_at      timestamptz,
  finished_at     timestamptz
);

-- History: the caller's tasks newest first, optionally by status or type (keyset pagination).
create index tasks_owner_inserted_idx on taskwire.tasks (owner, inserted_at desc, id desc);
create index tasks_owner_status_inserted_idx on taskwire.tasks (owner, status, inserted_at desc, id desc);
create index tasks_owner_type_inserted_idx on taskwire.tasks (owner, type, inserted_at desc, id desc);
-- Operators: what is in flight.
create index tasks_active_idx on taskwire.tasks (status) where status in ('queued', 'running');
create unique index tasks_owner_idempotency_idx on taskwire.tasks (owner, idempotency_key)
  where idempotency_key is not null;

create table taskwire.task_events (
  id          bigint generated always as identity primary key,
  task_id     uuid not null references taskwire.tasks (id) on delete cascade,
  seq         bigint not null,
  event       text not null,
  attempt     integer not null default 0,
  data        jsonb not null default '{}',
  inserted_at timestamptz not null default now()
);
create index task_events_task_idx on taskwire.task_events (task_id, id);
