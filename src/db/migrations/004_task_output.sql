-- Streamed output (api.md "Streamed output"): chunks numbered per task from 0, stored in segments
-- (one row per task per flush: chunks first_idx .. first_idx + n - 1 of one attempt), and each
-- task's cursor: chunks below output_start are void (an attempt started over), output_next is the
-- next index. Written behind, batched; a terminal state is written only after its output.
alter table taskwire.tasks
  add column output_start bigint not null default 0,
  add column output_next bigint not null default 0;

create table taskwire.task_output (
  task_id   uuid not null references taskwire.tasks (id) on delete cascade,
  first_idx bigint not null,
  attempt   integer not null,
  -- A JSON array of the segment's chunks, in index order.
  chunks    jsonb not null,
  bytes     integer not null,
  primary key (task_id, first_idx)
);
