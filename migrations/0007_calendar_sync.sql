-- 0007: two-way sync with Google Calendar and Microsoft 365 (SEMANTICS.md §11).
--
-- A connection is one grant of one account; its calendars are chosen to
-- block time (their busy items land in cal.synced_event, beside imported
-- ICS busy time) and at most one per provider receives our bookings
-- (cal.sync_write records what we wrote there).

create table cal.sync_connection (
  connection_id text primary key,              -- con_
  user_id text not null,                       -- provider
  service text not null check (service in ('google','microsoft')),
  account_subject text not null,               -- the service's stable account id
  account_display text not null,               -- e-mail / user principal name
  status text not null default 'connected' check (status in ('connected','needs_reauth','error')),
  -- The refresh token, sealed by envelope encryption (KMS data key,
  -- AES-256-GCM; cal_sync::jobs::Sealed). Never stored in clear.
  token_ciphertext bytea not null,
  token_nonce bytea not null,
  token_wrapped_key bytea not null,
  scopes text,
  last_sync_at timestamptz,
  last_error text,                             -- never a secret
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint sync_connection_account_uq unique (user_id, service, account_subject)
);

create index sync_connection_user_ix on cal.sync_connection (user_id);

create table cal.sync_calendar (
  connection_id text not null references cal.sync_connection (connection_id) on delete cascade,
  calendar_id text not null,                   -- the service's calendar id
  user_id text not null,
  name text not null,
  writable boolean not null,
  blocks boolean not null default false,       -- its busy time blocks ours
  receives_bookings boolean not null default false,
  constraint sync_calendar_target_ck check (not receives_bookings or writable),
  -- Where the next increment starts (Google nextSyncToken, Graph
  -- deltaLink); null: the next read is a full one.
  sync_token text,
  -- The push channel (Google) or subscription (Graph). Only the SHA-256 of
  -- its secret (channel token, clientState) is kept: a notification proves
  -- itself by presenting the secret.
  watch_id text,
  watch_resource_id text,
  watch_expires_at timestamptz,
  watch_secret_hash bytea check (octet_length(watch_secret_hash) = 32),
  last_sync_at timestamptz,
  last_error text,
  next_sync_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint sync_calendar_pk primary key (connection_id, calendar_id)
);

-- At most one calendar per provider receives bookings.
create unique index sync_calendar_target_uq on cal.sync_calendar (user_id) where receives_bookings;
-- A notification names its channel / subscription.
create unique index sync_calendar_watch_uq on cal.sync_calendar (watch_id) where watch_id is not null;
-- The renewer's two questions: whose watch expires soon, whose sync is due.
create index sync_calendar_watch_due_ix on cal.sync_calendar (watch_expires_at) where blocks;
create index sync_calendar_sync_due_ix on cal.sync_calendar (next_sync_at) where blocks;

-- Busy items of the blocking calendars, one row per item (a single
-- instance of a series is its own item). Replaced only by a successful
-- sync: a failed one leaves the last good data.
create table cal.synced_event (
  connection_id text not null,
  calendar_id text not null,
  item_id text not null,
  user_id text not null,
  start_at timestamptz not null,
  end_at timestamptz not null,
  constraint synced_event_interval_ck check (end_at > start_at),
  constraint synced_event_pk primary key (connection_id, calendar_id, item_id),
  constraint synced_event_calendar_fk foreign key (connection_id, calendar_id)
    references cal.sync_calendar (connection_id, calendar_id) on delete cascade
);

create index synced_event_user_range_ix on cal.synced_event
  using gist (user_id, tstzrange(start_at, end_at, '[)'));

-- Our bookings in the provider's calendar: which item holds which event,
-- and which of the event's sequences it shows. The write happens after the
-- booking commits (from the outbox), so this row is how a retried write
-- finds the item instead of creating a second one.
create table cal.sync_write (
  event_id text primary key references cal.event (event_id) on delete cascade,
  user_id text not null,
  connection_id text not null,
  calendar_id text not null,
  item_id text,                                -- null until a create answered
  written_sequence int,                        -- null: nothing written yet
  removed boolean not null default false,      -- the cancellation was written
  attempts int not null default 0 check (attempts >= 0),
  last_error text,
  parked_at timestamptz,                       -- failed for good; alarmed
  updated_at timestamptz not null default now(),
  constraint sync_write_calendar_fk foreign key (connection_id, calendar_id)
    references cal.sync_calendar (connection_id, calendar_id) on delete cascade
);

create index sync_write_item_ix on cal.sync_write (connection_id, calendar_id, item_id);

-- Used OAuth states: the nonce of a signed state is recorded by the
-- callback, so one consent cannot be replayed.
create table cal.oauth_nonce (
  nonce text primary key,
  used_at timestamptz not null default now()
);
