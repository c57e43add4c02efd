-- Fair scheduling (api.md "Fair scheduling"; design.md): which queued task runs next is decided
-- here, in PostgreSQL, so the rule holds across nodes. Queue jobs are wake-ups that carry no
-- decision: a worker holding one asks taskwire.pick_tasks() for the fairest runnable task.
--
-- vtime: an owner's turn (start-time fair queueing). A new task of an owner comes after that
-- owner's own queued work, and no earlier than the turn being served now, so owners take turns
-- among tasks of equal priority whatever their backlogs.
-- job_id: the queue job the running attempt holds; when its node dies the job is offered again
-- and whoever takes it runs that same task again (a rescue), so its slot frees only then.
-- not_before: a queued task may not start before this (null: now): the `scheduled_at` it was
-- created with, or the time of its next attempt after a failed one (retry backoff).
alter table taskwire.tasks
  add column vtime bigint not null default 0,
  add column job_id bigint,
  add column not_before timestamptz;

-- What may run next: the highest priority, then the owners' turns, then age.
create index tasks_queued_order_idx on taskwire.tasks (priority desc, vtime, id) where status = 'queued';
-- Each owner's next queued task: how a claim with caps finds the owners not held back when the
-- head of the order above is all held back (an owner at its cap with a long backlog).
create index tasks_queued_owner_idx on taskwire.tasks (owner, priority desc, vtime, id) where status = 'queued';

-- Picks up to k queued tasks that may start now, fairest first, and locks them (FOR UPDATE SKIP
-- LOCKED): due (not_before passed), priority first, then turns. With caps (user_cap: running
-- tasks per owner, null for none; type_caps: {type: cap}) an owner or type at its cap is passed
-- over; running counts come from the rows of running attempts (a dead node's count until they are
-- rescued). Claims with caps take one transaction-level lock so that two nodes never both take
-- the last slot of an owner; claims without caps take none. With caps, the head of the order (at
-- most SCAN rows) is read first; when all of it is held back, each owner's next task is read
-- instead (one index probe per owner with queued tasks), so a capped owner's long backlog ahead
-- of the others costs a claim one probe, not a pass over the backlog.
create function taskwire.pick_tasks(k int, user_cap int, type_caps jsonb)
returns table (task_id uuid)
language plpgsql volatile as $$
declare
  capped_owners text[] := '{}';
  capped_types text[] := '{}';
  picked uuid[] := '{}';
  owner_used jsonb := '{}';
  type_used jsonb := '{}';
  passed uuid[] := '{}';
  r record;
  chosen record;
  scanned int;
  scan constant int := 64;
  used int;
  tcap int;
begin
  if k <= 0 then
    return;
  end if;
  if user_cap is null and (type_caps is null or type_caps = '{}'::jsonb) then
    return query
      select t.id from taskwire.tasks t
       where t.status = 'queued' and (t.not_before is null or t.not_before <= now())
       order by t.priority desc, t.vtime, t.id
       limit k
       for update skip locked;
    return;
  end if;
  perform pg_advisory_xact_lock(7451203, 13);
  if user_cap is not null then
    select coalesce(array_agg(c.owner), '{}') into capped_owners
      from (select t.owner from taskwire.tasks t where t.status = 'running'
             group by t.owner having count(*) >= user_cap) c;
  end if;
  if type_caps is not null and type_caps <> '{}'::jsonb then
    select coalesce(array_agg(c.type), '{}') into capped_types
      from (select t.type from taskwire.tasks t where t.status = 'running' and type_caps ? t.type
             group by t.type having count(*) >= (type_caps ->> t.type)::int) c;
  end if;
  while cardinality(picked) < k loop
    chosen := null;
    scanned := 0;
    for r in
      select t.id, t.owner, t.type from taskwire.tasks t
       where t.status = 'queued' and (t.not_before is null or t.not_before <= now())
         and t.id <> all (picked) and t.id <> all (passed)
       order by t.priority desc, t.vtime, t.id
       limit scan
    loop
      scanned := scanned + 1;
      continue when r.owner = any (capped_owners) or r.type = any (capped_types);
      perform 1 from taskwire.tasks t where t.id = r.id and t.status = 'queued' for update skip locked;
      if found then
        chosen := r;
        exit;
      end if;
      passed := passed || r.id; -- another claim holds it
    end loop;
    if chosen is null and scanned >= scan then
      -- All of the head is held back: the next task of each owner not at its cap, the fairest.
      for r in
        with recursive owners(owner) as (
          (select t.owner from taskwire.tasks t where t.status = 'queued' order by t.owner limit 1)
          union all
          select (select t.owner from taskwire.tasks t where t.status = 'queued' and t.owner > o.owner
                   order by t.owner limit 1)
            from owners o where o.owner is not null
        )
        select c.id, c.owner, c.type from owners o cross join lateral (
          select t.id, t.owner, t.type, t.priority, t.vtime from taskwire.tasks t
           where t.owner = o.owner and t.status = 'queued' and (t.not_before is null or t.not_before <= now())
             and t.type <> all (capped_types) and t.id <> all (picked) and t.id <> all (passed)
           order by t.priority desc, t.vtime, t.id
           limit 1) c
         where o.owner is not null and o.owner <> all (capped_owners)
         order by c.priority desc, c.vtime, c.id
      loop
        perform 1 from taskwire.tasks t where t.id = r.id and t.status = 'queued' for update skip locked;
        if found then
          chosen := r;
          exit;
        end if;
        passed := passed || r.id;
      end loop;
    end if;
    exit when chosen is null;
    r := chosen;
    picked := picked || r.id;
    if user_cap is not null then
      used := coalesce((owner_used ->> r.owner)::int,
                       (select count(*) from taskwire.tasks t where t.owner = r.owner and t.status = 'running')) + 1;
      owner_used := owner_used || jsonb_build_object(r.owner, used);
      if used >= user_cap then
        capped_owners := capped_owners || r.owner;
      end if;
    end if;
    tcap := (type_caps ->> r.type)::int;
    if tcap is not null then
      used := coalesce((type_used ->> r.type)::int,
                       (select count(*) from taskwire.tasks t where t.type = r.type and t.status = 'running')) + 1;
      type_used := type_used || jsonb_build_object(r.type, used);
      if used >= tcap then
        capped_types := capped_types || r.type;
      end if;
    end if;
  end loop;
  return query select unnest(picked);
end
$$;
