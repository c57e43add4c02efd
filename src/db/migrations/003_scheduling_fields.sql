-- Fields of api.md's Task that scheduling needs: priority (-100..100) and a start-no-earlier time.
alter table taskwire.tasks
  add column priority integer not null default 0 check (priority between -100 and 100),
  add column scheduled_at timestamptz;
