-- 0001: the `cal` schema, availability rules and exceptions, and the
-- per-provider change counter.
--
-- cal.weekly_rule and cal.exception keep the table and column names and
-- defaults of the original DDL (TechnicalDevelopmentPlan §1.12.3); this file
-- only adds constraints and indexes. Constraints mirror what cal-core accepts
-- (crates/cal-core/src/availability.rs), so a row the database takes is a row
-- the engine can read: otherwise one bad row would make every slot query of
-- that provider fail.
--
-- Migrations run inside one transaction each (crates/cal-store/src/migrate.rs):
-- nothing here may need to run outside one (no CREATE INDEX CONCURRENTLY).

create schema if not exists cal;

-- GiST operator classes for scalar types, so exclusion constraints can say
-- "same user (=) and overlapping time (&&)" (0002). Trusted since PostgreSQL 13:
-- the database owner may create it; it ships with Aurora and Debian's contrib.
create extension if not exists btree_gist;

-- Weekly recurring availability rules.
create table cal.weekly_rule (
  rule_id text primary key,                    -- wr_
  user_id text not null,                       -- provider
  role_code text not null,                     -- model|photographer|...
  weekday_mask int not null,                   -- bit 0 = Monday ... bit 6 = Sunday
  start_local time not null,
  end_local time not null,                     -- <= start_local: runs into the next day
  timezone text not null,                      -- IANA zone, checked by the application
  min_duration_min int not null default 60,
  lead_time_hours int not null default 24,
  booking_window_days int not null default 60,
  active boolean not null default true,
  created_at timestamptz default now(),
  updated_at timestamptz default now(),
  constraint weekly_rule_weekday_mask_ck check (weekday_mask between 1 and 127),
  -- PostgreSQL accepts '24:00' for `time`; SEMANTICS.md §2 does not, and the
  -- engine reads whole seconds only.
  constraint weekly_rule_start_local_ck check (start_local < '24:00' and start_local = start_local::time(0)),
  constraint weekly_rule_end_local_ck check (end_local < '24:00' and end_local = end_local::time(0)),
  -- Upper bounds are cal-core's MAX_DURATION_MIN (31 days), MAX_LEAD_TIME_HOURS
  -- (366 days) and MAX_BOOKING_WINDOW_DAYS (ten years).
  constraint weekly_rule_min_duration_min_ck check (min_duration_min between 1 and 44640),
  constraint weekly_rule_lead_time_hours_ck check (lead_time_hours between 0 and 8784),
  constraint weekly_rule_booking_window_days_ck check (booking_window_days between 0 and 3660)
);

create index weekly_rule_user_role_ix on cal.weekly_rule (user_id, role_code);

-- Per-date overrides (vacation day, extended hours, special blocks).
create table cal.exception (
  exc_id text primary key,                     -- ex_
  user_id text not null,
  date_local date not null,
  timezone text not null,
  kind text not null check (kind in ('available','unavailable')),
  start_local time,                            -- both null: the whole local day
  end_local time,
  note text,
  created_at timestamptz default now(),
  constraint exception_times_both_or_neither_ck check ((start_local is null) = (end_local is null)),
  constraint exception_start_local_ck check (start_local < '24:00' and start_local = start_local::time(0)),
  constraint exception_end_local_ck check (end_local < '24:00' and end_local = end_local::time(0))
);

create index exception_user_date_ix on cal.exception (user_id, date_local);

-- A whole-day `unavailable` row (a vacation day) says everything there is to
-- say about that date in that zone: a second identical one is redundant. This
-- index is also the arbiter that lets a vacation be re-entered without
-- duplicating days (ON CONFLICT DO NOTHING).
create unique index exception_whole_day_off_uq on cal.exception (user_id, date_local, timezone)
  where kind = 'unavailable' and start_local is null;

-- One counter per provider, bumped in the same transaction as every change to
-- that provider's rules, exceptions, holds or events. A feasibility cache keyed
-- by (user_id, version) is never stale. Writers bump it first: the row lock
-- then serializes one provider's writers, so their outbox rows are numbered in
-- commit order.
create table cal.provider_version (
  user_id text primary key,
  version bigint not null default 0 check (version >= 0),
  updated_at timestamptz not null default now()
);
