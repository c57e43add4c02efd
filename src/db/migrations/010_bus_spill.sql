-- The PostgreSQL bus's large messages: one too large for a NOTIFY payload is stored here under a
-- unique ref that the notification carries; receivers read it, publishers prune rows past a TTL.
-- Unlogged: rows live for seconds and are worthless after a crash.
create unlogged table taskwire.bus_spill (
  ref        text primary key,
  body       text not null,
  created_at timestamptz not null default now()
);
create index bus_spill_created_at on taskwire.bus_spill (created_at);
