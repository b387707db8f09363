-- 0004: the transactional outbox (SEMANTICS.md §5).
--
-- Every state change inserts its domain event here in the same transaction,
-- so a committed change is never lost on the way to EventBridge. A relay
-- publishes unpublished rows in outbox_id order (at least once) and sets
-- published_at; consumers deduplicate by event_id.

create table cal.outbox (
  outbox_id bigserial primary key,
  event_id uuid not null unique default gen_random_uuid(),
  event_type text not null check (event_type ~ '^[a-z]+(\.[a-z_]+)+$'),  -- cal.rule.updated, ...
  user_id text not null,
  payload jsonb not null,
  created_at timestamptz not null default now(),
  published_at timestamptz
);

-- The relay's queue: small, because published rows leave it.
create index outbox_unpublished_ix on cal.outbox (outbox_id) where published_at is null;
