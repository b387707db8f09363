-- The hold write: queues for the provider's lock; first takes the customer's lock and counts their holds since $20, writing nothing at $21 or more; when the version had moved, brings the key and busy time as a loser's answer.
with allowed as (
                     select cal.lock_customer_holds_since($3, $20) < $21 as ok
                 ), current as (
             select exists (select 1 from cal.provider_version where user_id = $1 and version = $13) as v
         ), advisory as (
             select case when not (select ok from allowed) then false when (select v from current) then (select true from pg_advisory_xact_lock(hashtextextended('cal.provider:' || $1, 0))) else false end as got
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
         ), padded as (
             select $17::timestamptz - interval '2 days' as lo,
                    $18::timestamptz + interval '2 days' + make_interval(mins => greatest($19::int, 60,
                        coalesce((select max(r.min_duration_min) from cal.weekly_rule r
                                  where r.user_id = $1::text and r.role_code = $2::text and r.active), 0))) as hi,
                    exists (select 1 from cal.booking_policy p
                            where p.user_id = $1::text and p.role_code = $2::text and p.max_per_week is not null) as weekly
         ), bounds as (
             select lo, hi,
                    case when weekly then least(lo, $17::timestamptz - interval '8 days') else lo end as clo,
                    case when weekly then greatest(hi, $18::timestamptz + interval '8 days') else hi end as chi
             from padded
             where not (select v from current) and not exists (select 1 from cal.hold where user_id = $1::text and idempotency_key = $10::text)
         )
             select (select ok from allowed) as allowed, (select got from advisory) as got, (select version from bumped) as new_version,
         case when not (select ok from allowed) then false when (select got from advisory) or not (select v from current) then false
              else (select true from pg_advisory_xact_lock_shared(hashtextextended('cal.provider:' || $1, 0)))
         end as waited, 'w' as row_kind, null::int8 as version, null::text as rule_id, (user_id)::text as user_id, (role_code)::text as role_code, null::int4 as weekday_mask, null::text as start_local, null::text as end_local, null::text as timezone, null::int4 as min_duration_min, null::int4 as lead_time_hours, null::int4 as booking_window_days, null::bool as active, null::int4 as buffer_before_min, null::int4 as buffer_after_min, null::int4 as max_per_day, null::int4 as max_per_week, null::text as exc_id, null::date as date_local, null::text as note, (hold_id)::text as hold_id, (customer_id)::text as customer_id, (start_at)::timestamptz as start_at, (end_at)::timestamptz as end_at, (kind)::text as kind, (mode)::text as mode, (status)::text as status, (expires_at)::timestamptz as expires_at, (event_id)::text as event_id, (converted_event_id)::text as converted_event_id, (idempotency_key)::text as idempotency_key, (request_fingerprint)::text as request_fingerprint, (created_at)::timestamptz as created_at, null::text as id from (select 1) as one left join h on true
             union all
             select null, null, null, null, 'p', null, null, user_id, role_code, null, null, null, timezone, null, null, null, null, buffer_before_min, buffer_after_min, max_per_day, max_per_week, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null from cal.booking_policy where user_id = $1::text and not (select v from current)
         union all
         select null, null, null, null, 'k', null, null, user_id, role_code, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, hold_id, customer_id, start_at, end_at, kind, mode, status, expires_at, event_id, converted_event_id, idempotency_key, request_fingerprint, created_at, null from cal.hold where user_id = $1::text and idempotency_key = $10::text and not (select v from current)
         union all
         select null, null, null, null, 'e', null, null, user_id, role_code, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, start_at, end_at, null, null, status, null, event_id, null, null, null, null, null from cal.event, bounds where user_id = $1::text and status = 'confirmed' and tstzrange(start_at, end_at, '[)') && tstzrange(clo, chi, '[)')
                   and (role_code = $2::text or tstzrange(start_at, end_at, '[)') && tstzrange(lo, hi, '[)'))
         union all
         select null, null, null, null, 'h', null, null, user_id, role_code, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, hold_id, customer_id, start_at, end_at, kind, mode, status, expires_at, event_id, converted_event_id, idempotency_key, request_fingerprint, created_at, null from cal.hold, bounds where user_id = $1::text and status = 'active' and tstzrange(start_at, end_at, '[)') && tstzrange(clo, chi, '[)')
                   and (role_code = $2::text or tstzrange(start_at, end_at, '[)') && tstzrange(lo, hi, '[)'))
         union all
         select null, null, null, null, 'x', null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, start_at, end_at, null, null, null, null, null, null, null, null, null, source_id || '/' || uid || '/' || recurrence_id from cal.external_event, bounds where user_id = $1::text and tstzrange(start_at, end_at, '[)') && tstzrange(lo, hi, '[)')
         union all
         select null, null, null, null, 's', null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, start_at, end_at, null, null, null, null, null, null, null, null, null, connection_id || '/' || calendar_id || '/' || item_id from cal.synced_event, bounds where user_id = $1::text and tstzrange(start_at, end_at, '[)') && tstzrange(lo, hi, '[)')
             order by row_kind, rule_id, date_local, exc_id, start_at, end_at, event_id, hold_id, id, role_code
