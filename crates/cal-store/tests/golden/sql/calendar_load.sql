-- A provider's calendar for a slot query (load_calendar): version, rules, exceptions, busy time.
with padded as (
             select $3::timestamptz - interval '2 days' as lo,
                    $4::timestamptz + interval '2 days' + make_interval(mins => greatest($5::int, 60,
                        coalesce((select max(r.min_duration_min) from cal.weekly_rule r
                                  where r.user_id = $1::text and r.role_code = $2::text and r.active), 0))) as hi,
                    exists (select 1 from cal.booking_policy p
                            where p.user_id = $1::text and p.role_code = $2::text and p.max_per_week is not null) as weekly
         ), bounds as (
             select lo, hi,
                    case when weekly then least(lo, $3::timestamptz - interval '8 days') else lo end as clo,
                    case when weekly then greatest(hi, $4::timestamptz + interval '8 days') else hi end as chi
             from padded
             where true
         )
             select  'v' as row_kind, ((select version from cal.provider_version where user_id = $1::text))::int8 as version, null::text as rule_id, null::text as user_id, null::text as role_code, null::int4 as weekday_mask, null::text as start_local, null::text as end_local, null::text as timezone, null::int4 as min_duration_min, null::int4 as lead_time_hours, null::int4 as booking_window_days, null::bool as active, null::int4 as buffer_before_min, null::int4 as buffer_after_min, null::int4 as max_per_day, null::int4 as max_per_week, null::text as exc_id, null::date as date_local, null::text as note, null::text as hold_id, null::text as customer_id, null::timestamptz as start_at, null::timestamptz as end_at, null::text as kind, null::text as mode, null::text as status, null::timestamptz as expires_at, null::text as event_id, null::text as converted_event_id, null::text as idempotency_key, null::text as request_fingerprint, null::timestamptz as created_at, null::text as id 
             union all
             select  'r', null, rule_id, user_id, role_code, weekday_mask, start_local::text, end_local::text, timezone, min_duration_min, lead_time_hours, booking_window_days, active, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null from cal.weekly_rule where user_id = $1::text and role_code = $2::text and true
         union all
         select  'c', null, null, user_id, null, null, start_local::text, end_local::text, timezone, null, null, null, null, null, null, null, null, exc_id, date_local, note, null, null, null, null, kind, null, null, null, null, null, null, null, null, null from cal.exception, bounds where user_id = $1::text
                   and date_local between (lo at time zone 'UTC')::date and (hi at time zone 'UTC')::date
         union all
         select  'p', null, null, user_id, role_code, null, null, null, timezone, null, null, null, null, buffer_before_min, buffer_after_min, max_per_day, max_per_week, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null from cal.booking_policy where user_id = $1::text and true
         union all
         select  'e', null, null, user_id, role_code, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, start_at, end_at, null, null, status, null, event_id, null, null, null, null, null from cal.event, bounds where user_id = $1::text and status = 'confirmed' and tstzrange(start_at, end_at, '[)') && tstzrange(clo, chi, '[)')
                   and (role_code = $2::text or tstzrange(start_at, end_at, '[)') && tstzrange(lo, hi, '[)'))
         union all
         select  'h', null, null, user_id, role_code, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, hold_id, null, start_at, end_at, null, null, status, expires_at, null, null, null, null, null, null from cal.hold, bounds where user_id = $1::text and status = 'active' and tstzrange(start_at, end_at, '[)') && tstzrange(clo, chi, '[)')
                   and (role_code = $2::text or tstzrange(start_at, end_at, '[)') && tstzrange(lo, hi, '[)'))
         union all
         select  'x', null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, start_at, end_at, null, null, null, null, null, null, null, null, null, source_id || '/' || uid || '/' || recurrence_id from cal.external_event, bounds where user_id = $1::text and tstzrange(start_at, end_at, '[)') && tstzrange(lo, hi, '[)')
         union all
         select  's', null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, start_at, end_at, null, null, null, null, null, null, null, null, null, connection_id || '/' || calendar_id || '/' || item_id from cal.synced_event, bounds where user_id = $1::text and tstzrange(start_at, end_at, '[)') && tstzrange(lo, hi, '[)')
             order by row_kind, rule_id, date_local, exc_id, start_at, end_at, event_id, hold_id, id, role_code
