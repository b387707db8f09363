-- 0002: holds (soft blocks) and confirmed events.
--
-- No double booking (SEMANTICS.md §5) is enforced here per table by exclusion
-- constraints over half-open ranges '[)' (touching intervals do not overlap).
-- Two things a constraint cannot say are left to the booking code, which takes
-- a per-user lock (pg_advisory_xact_lock) inside its transaction before it
-- writes:
--   * expiry is a matter of time, and a constraint cannot read the clock: an
--     `active` hold whose expires_at has passed still occupies its range here.
--     Under the lock, the booking code first marks that user's expired holds
--     `expired` (writing cal.hold.expired), then inserts;
--   * holds and events live in two tables: under the lock, the booking code
--     checks a new hold against confirmed events and a new event against
--     active holds (other than the hold being converted).

create table cal.event (
  event_id text primary key,                   -- ev_
  user_id text not null,                       -- provider
  role_code text not null,
  customer_id text,
  hold_id text unique,                         -- the hold this event was converted from
  start_at timestamptz not null,
  end_at timestamptz not null,
  status text not null default 'confirmed' check (status in ('confirmed','cancelled')),
  -- ICS SEQUENCE (RFC 5545 §3.8.7.4): incremented on every reschedule and on
  -- cancellation, so calendar clients update the one event in place.
  sequence int not null default 0 check (sequence >= 0),
  ics_uid text not null unique,                -- stable UID, never changes
  summary text,
  timezone text not null,                      -- provider zone for local renderings
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint event_interval_ck check (end_at > start_at),
  constraint event_no_overlap_ex exclude using gist (
    user_id with =,
    tstzrange(start_at, end_at, '[)') with &&
  ) where (status = 'confirmed')
);

create table cal.hold (
  hold_id text primary key,                    -- hld_
  user_id text not null,                       -- provider
  role_code text not null,
  customer_id text,
  start_at timestamptz not null,
  end_at timestamptz not null,
  kind text not null check (kind in ('checkout','reschedule','admin')),
  mode text not null check (mode in ('instant','request')),
  status text not null default 'active' check (status in ('active','released','converted','expired')),
  expires_at timestamptz not null,
  -- The event a reschedule hold moves; only reschedule holds have one.
  event_id text references cal.event (event_id),
  idempotency_key text not null,
  -- What the request asked for, so a retry with the same key but another
  -- request is told IDEMPOTENCY_MISMATCH instead of getting the old hold.
  request_fingerprint text not null,
  converted_event_id text references cal.event (event_id),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint hold_interval_ck check (end_at > start_at),
  constraint hold_reschedule_event_ck check ((kind = 'reschedule') = (event_id is not null)),
  constraint hold_converted_event_ck check (status <> 'converted' or converted_event_id is not null),
  constraint hold_idempotency_uq unique (user_id, idempotency_key),
  constraint hold_no_overlap_ex exclude using gist (
    user_id with =,
    tstzrange(start_at, end_at, '[)') with &&
  ) where (status = 'active')
);

alter table cal.event
  add constraint event_hold_fk foreign key (hold_id) references cal.hold (hold_id);

-- The sweeper looks for active holds past their expiry (FOR UPDATE SKIP LOCKED).
create index hold_active_expiry_ix on cal.hold (expires_at) where status = 'active';
