-- 0003: read-only external calendars (ICS import) and the personal ICS feed.

create table cal.external_source (
  source_id text primary key,                  -- src_
  user_id text not null,                       -- provider
  -- A private ICS URL is a bearer credential: it is never logged or returned
  -- in full. At rest it relies on the cluster's storage encryption; url_hash
  -- (SHA-256 of the URL) finds duplicates without comparing secrets.
  url text not null,
  url_hash bytea not null check (octet_length(url_hash) = 32),
  label text,
  status text not null default 'active' check (status in ('active','paused','error')),
  -- Conditional GET state, echoed back verbatim (If-None-Match, If-Modified-Since).
  etag text,
  last_modified text,
  content_hash bytea,                          -- SHA-256 of the last body parsed
  last_polled_at timestamptz,
  last_success_at timestamptz,
  next_poll_at timestamptz not null default now(),
  consecutive_failures int not null default 0 check (consecutive_failures >= 0),
  last_error text,
  warning_count int not null default 0 check (warning_count >= 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint external_source_url_uq unique (user_id, url_hash)
);

-- The poller claims due sources with FOR UPDATE SKIP LOCKED in this order.
create index external_source_due_ix on cal.external_source (next_poll_at) where status <> 'paused';

-- Flattened busy occurrences of a source, expanded inside the booking horizon.
-- Replaced only by a successful poll: a failed poll leaves the last good data,
-- so an import error never makes busy time look free (SEMANTICS.md §3).
create table cal.external_event (
  source_id text not null references cal.external_source (source_id) on delete cascade,
  user_id text not null,
  uid text not null,                           -- ICS UID
  -- Which occurrence of the UID: RECURRENCE-ID (or the generated instance's
  -- original start) as RFC 3339 UTC; '' for a non-recurring event.
  recurrence_id text not null default '',
  start_at timestamptz not null,
  end_at timestamptz not null,
  summary text,
  constraint external_event_interval_ck check (end_at > start_at),
  constraint external_event_pk primary key (source_id, uid, recurrence_id)
);

-- Busy look-ups are "this user, overlapping this range".
create index external_event_user_range_ix on cal.external_event
  using gist (user_id, tstzrange(start_at, end_at, '[)'));

-- The personal ICS feed: reached by a long random token of which only the
-- SHA-256 is stored, so a database leak does not reveal feed URLs.
create table cal.ics_feed (
  feed_id text primary key,                    -- feed_
  user_id text not null unique,
  token_hash bytea not null unique check (octet_length(token_hash) = 32),
  created_at timestamptz not null default now(),
  rotated_at timestamptz,
  revoked_at timestamptz
);
