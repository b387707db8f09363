-- The hold write: tries the provider's lock (finding it taken, waits for its holder and loses); first takes the customer's lock and counts their holds since $19, writing nothing at $20 or more; marks the holds $17 that ran out expired, with their outbox rows ($18).
with allowed as (
                     select cal.lock_customer_holds_since($3, $19) < $20 as ok
                 ), current as (
             select exists (select 1 from cal.provider_version where user_id = $1 and version = $13) as v
         ), advisory as (
             select case when not (select ok from allowed) then false when (select v from current) then pg_try_advisory_xact_lock(hashtextextended('cal.provider:' || $1, 0)) else false end as got
         ), bumped as (
             update cal.provider_version set version = version + 1, updated_at = now()
             where user_id = $1 and version = $13 and (select got from advisory)
             returning version
         ), marked as (
                 update cal.hold set status = 'expired', updated_at = $12
                 where hold_id = any($17::text[]) and user_id = $1 and status = 'active' and expires_at <= $12
                   and exists (select 1 from bumped)
                 returning hold_id
             ), h as (
             insert into cal.hold (hold_id, user_id, role_code, customer_id, start_at, end_at, kind, mode,
                                   status, expires_at, event_id, idempotency_key, request_fingerprint,
                                   created_at, updated_at)
             select $14, $1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, $10, $11, $12, $12
             from bumped where (select count(*) from marked) >= 0
             returning hold_id, user_id, role_code, customer_id, start_at, end_at, kind, mode, status, expires_at, event_id, converted_event_id, idempotency_key, request_fingerprint, created_at
         ), expired_events as (
                     insert into cal.outbox (event_type, user_id, payload)
                     select 'cal.hold.expired', $1, p.payload
                     from unnest($17::text[], $18::jsonb[]) with ordinality as p(hold_id, payload, n)
                     join marked using (hold_id)
                     where exists (select 1 from h)
                     order by p.n
                     returning outbox_id
                 ), created_event as (
             insert into cal.outbox (event_id, event_type, user_id, payload)
             select $15::text::uuid, 'cal.hold.created', $1, $16::jsonb
             from h where (select count(*) from expired_events) >= 0
         ) select (select ok from allowed) as allowed, (select got from advisory) as got, (select version from bumped) as new_version,
         case when not (select ok from allowed) then false when (select got from advisory) or not (select v from current) then false
              else (select true from pg_advisory_xact_lock_shared(hashtextextended('cal.provider:' || $1, 0)))
         end as waited, 'w' as row_kind, h.* from (select 1) as one left join h on true
