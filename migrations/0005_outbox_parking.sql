-- 0005: outbox rows that can never be published are parked, and what a row
-- may carry is bounded (SEMANTICS.md §5; crates/cal-store/src/relay.rs).
--
-- A row the bus refuses for good (over EventBridge's 256 KB entry limit, or
-- a non-retryable PutEvents error) is parked by the relay: parked_at and
-- park_reason are set, the row is kept (never deleted) so an operator can
-- read and replay it, and it no longer holds back its user's later rows.

alter table cal.outbox
  add column parked_at timestamptz,
  add column park_reason text,
  add constraint outbox_park_reason_ck
    check ((parked_at is null) = (park_reason is null) and char_length(park_reason) <= 500);

-- A row waiting to be published is at most 64 KiB (user, type and payload as
-- stored): a quarter of the PutEvents entry limit, so the detail envelope
-- around it always fits and a put carries at least four entries. An
-- oversized event is refused when it is written (its transaction fails)
-- instead of becoming a row no relay can ever send. Rows already marked
-- published or parked are exempt, so the relay can still mark a row written
-- before this bound; NOT VALID leaves existing rows unchecked for the same
-- reason (the relay parks them).
alter table cal.outbox
  add constraint outbox_size_ck
    check (published_at is not null or parked_at is not null
           or octet_length(event_type) + octet_length(user_id) + octet_length(payload::text) <= 65536)
    not valid;

-- The relay's queue is the rows neither published nor parked: claimed in
-- outbox_id order, and read per user to find each user's next row.
drop index cal.outbox_unpublished_ix;
create index outbox_pending_ix on cal.outbox (outbox_id) where published_at is null and parked_at is null;
create index outbox_pending_user_ix on cal.outbox (user_id, outbox_id) where published_at is null and parked_at is null;
-- What operators look at: parked rows, few.
create index outbox_parked_ix on cal.outbox (parked_at) where parked_at is not null;
