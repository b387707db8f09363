-- The sweeper: marks up to $2 holds that ran out by $1 expired.
update cal.hold set status = 'expired', updated_at = $1
                 where hold_id in (select hold_id from cal.hold
                                   where status = 'active' and expires_at <= $1
                                   order by expires_at, hold_id limit $2
                                   for update skip locked)
                 returning hold_id, user_id, role_code, customer_id, start_at, end_at, kind, mode, status, expires_at, event_id, converted_event_id, idempotency_key, request_fingerprint, created_at
