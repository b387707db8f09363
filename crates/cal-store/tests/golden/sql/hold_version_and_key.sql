-- The provider's version and the hold of the key $2, in one snapshot (checks a cached calendar).
select (select version from cal.provider_version where user_id = $1) as version, k.*
             from (select 1) as one left join (
                 select hold_id, user_id, role_code, customer_id, start_at, end_at, kind, mode, status, expires_at, event_id, converted_event_id, idempotency_key, request_fingerprint, created_at from cal.hold where user_id = $1 and idempotency_key = $2
             ) as k on true
