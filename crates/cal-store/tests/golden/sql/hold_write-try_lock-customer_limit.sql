-- The hold write: tries the provider's lock (finding it taken, waits for its holder and loses); first takes the customer's lock and counts their holds since $17, writing nothing at $18 or more.
with allowed as (
                     select cal.lock_customer_holds_since($3, $17) < $18 as ok
                 ), current as (
             select exists (select 1 from cal.provider_version where user_id = $1 and version = $13) as v
         ), advisory as (
             select case when not (select ok from allowed) then false when (select v from current) then pg_try_advisory_xact_lock(hashtextextended('cal.provider:' || $1, 0)) else false end as got
         ), bumped as (
             update cal.provider_version set version = version + 1, updated_at = now()
             where user_id = $1 and version = $13 and (select got from advisory)
             returning version
         ), h as (
             insert into cal.hold (hold_id, user_id, role_code, customer_id, start_at, end_at, kind, mode,
                                   status, expires_at, event_id, idempotency_key, request_fingerprint,
                                   created_at, updated_at)
             select $14, $1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, $10, $11, $12, $12
             from bumped
             returning hold_id, user_id, role_code, customer_id, start_at, end_at, kind, mode, status, expires_at, event_id, converted_event_id, idempotency_key, request_fingerprint, created_at
         ), created_event as (
             insert into cal.outbox (event_id, event_type, user_id, payload)
             select $15::text::uuid, 'cal.hold.created', $1, $16::jsonb
             from h
         ) select (select ok from allowed) as allowed, (select got from advisory) as got, (select version from bumped) as new_version,
         case when not (select ok from allowed) then false when (select got from advisory) or not (select v from current) then false
              else (select true from pg_advisory_xact_lock_shared(hashtextextended('cal.provider:' || $1, 0)))
         end as waited, 'w' as row_kind, h.* from (select 1) as one left join h on true
