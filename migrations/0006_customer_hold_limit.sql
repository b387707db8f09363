-- 0005: the per-customer hold limit, enforced by the hold's own write.
--
-- A customer may create at most N holds in a window (fn-api: 20 an hour).
-- Counting before the write lets concurrent requests of one customer on
-- different providers all pass (the provider lock does not serialize them),
-- so the write statement of a limited hold calls this function first: it
-- takes a per-customer transaction-level advisory lock, then counts.
--
-- It is plpgsql and VOLATILE on purpose. Under READ COMMITTED a statement
-- reads one snapshot, taken when it starts: a count written inline after
-- the lock in the same statement would miss the holds that the lock's
-- previous holders committed while this one waited. A VOLATILE function
-- takes a fresh snapshot for each query it runs, so the count, run after
-- the lock is granted, sees every hold of the customer committed under it.
-- The lock is held until the calling statement's transaction ends, i.e.
-- until its hold is committed (or not written).
create function cal.lock_customer_holds_since(customer text, since timestamptz) returns bigint
language plpgsql volatile
as $$
declare
  n bigint;
begin
  perform pg_advisory_xact_lock(hashtextextended('cal.customer:' || customer, 0));
  select count(*) into n from cal.hold where customer_id = customer and created_at >= since;
  return n;
end
$$;

-- What that count reads (and what the lock is held around).
create index hold_customer_created_ix on cal.hold (customer_id, created_at) where customer_id is not null;
