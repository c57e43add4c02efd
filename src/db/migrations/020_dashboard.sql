-- The dashboard (issue 11): an admin's lists of every user's tasks, the stats of GET /api/stats,
-- retention, and what each node reports in its heartbeat.

-- Every user's tasks newest first (an admin's list; a status or type filter reads it in order and
-- stops at the page's end).
create index tasks_inserted_idx on taskwire.tasks (inserted_at desc, id desc);
-- Tasks finished in a window: counts, throughput and run times (index-only), and the pruner's
-- oldest-first batches. Only finished tasks are in it: one insert per task, at its end.
create index tasks_finished_idx on taskwire.tasks (finished_at) include (type, status, started_at)
  where finished_at is not null;
create index tasks_owner_finished_idx on taskwire.tasks (owner, finished_at) include (type, status, started_at)
  where finished_at is not null;
-- In flight by type (counts of queued and running per type).
create index tasks_active_type_idx on taskwire.tasks (status, type) where status in ('queued', 'running');

-- Each node's open sockets and what it runs, as of its last heartbeat.
alter table taskwire.nodes
  add column sockets integer not null default 0,
  add column info jsonb not null default '{}';
