//! Turning holds into events and events into other times: confirm (Instant
//! Book), accept and decline (Request-to-Book), release, reschedule and
//! cancel. Each is one transaction that takes the provider's lock, re-reads
//! and re-checks under it, writes its change with its outbox row and the
//! provider's new version, and commits; a refusal rolls back.

use cal_core::BookingError;
use cal_core::feasibility::EventStatus;
use cal_core::holds::{self, Conversion, HoldKind, HoldMode};
use cal_core::time::{Instant, Zone};
use serde_json::json;

use super::records::{EVENT_RECORD, EventRecord, HOLD_RECORD, HoldRecord, event_by_id, get_event, get_hold, hold_by_id};
use super::{EVENT_CANCELLED, EVENT_CONFIRMED, EVENT_RESCHEDULED, HOLD_RELEASED};
use crate::db::{Begin, Executor};
use crate::error::StoreError;
use crate::outbox;

/// Serializes one provider's bookings inside the current transaction.
async fn lock_provider(db: &impl Executor, user_id: &str) -> Result<(), StoreError> {
    db.execute("select pg_advisory_xact_lock(hashtextextended('cal.provider:' || $1, 0))", &[&user_id]).await?;
    Ok(())
}

/// The exclusion constraints are the last word: if they fire, someone else
/// got there first (possible only if the lock were bypassed).
fn conflict_on_overlap(e: StoreError) -> StoreError {
    if e.violates("hold_no_overlap_ex") || e.violates("event_no_overlap_ex") {
        StoreError::Booking(BookingError::Conflict { alternatives: Vec::new() })
    } else {
        e
    }
}

/// Converts a hold into a confirmed event, atomically and idempotently
/// (Instant Book on `order.booked`, Request-to-Book on acceptance, or a
/// reschedule, which moves the hold's event instead of creating one).
///
/// Converting again returns the same event. An expired hold is
/// `HOLD_EXPIRED`, a released one `HOLD_RELEASED`; either stores nothing.
pub async fn confirm_hold(db: &mut impl Begin, hold_id: &str, now: Instant) -> Result<EventRecord, StoreError> {
    let user_id = get_hold(&*db, hold_id).await?.user_id;
    let tx = db.begin().await?;
    lock_provider(&tx, &user_id).await?;
    let hold = hold_by_id(&tx, hold_id, true).await?;
    match holds::conversion(hold_id, hold.status, hold.expires_at, now)? {
        Conversion::AlreadyConverted => {
            let event_id = hold.converted_event_id.as_deref().ok_or_else(|| StoreError::corrupt("cal.hold", hold_id, "converted_event_id"))?;
            return event_by_id(&tx, event_id, false).await;
        }
        Conversion::Proceed => {}
    }

    let (event, event_type, previous) = match (&hold.kind, &hold.event_id) {
        (HoldKind::Reschedule, Some(event_id)) => {
            let before = event_by_id(&tx, event_id, true).await?;
            if before.status != EventStatus::Confirmed {
                return Err(BookingError::Validation { field: "event_id", reason: format!("event {event_id} is cancelled") }.into());
            }
            let rows = tx
                .query(
                    &format!(
                        "update cal.event set start_at = $2, end_at = $3, sequence = sequence + 1, updated_at = $4
                         where event_id = $1 returning {EVENT_RECORD}"
                    ),
                    &[event_id, &hold.start.to_chrono(), &hold.end.to_chrono(), &now.to_chrono()],
                )
                .await
                .map_err(|e| conflict_on_overlap(e.into()))?;
            let previous = json!({"start": before.start, "end": before.end, "sequence": before.sequence});
            (EventRecord::from_row(&rows[0])?, EVENT_RESCHEDULED, Some(previous))
        }
        _ => {
            let zone = provider_zone(&tx, &hold.user_id, &hold.role_code).await?;
            let rows = tx
                .query(
                    &format!(
                        "with id as (select 'ev_' || replace(gen_random_uuid()::text, '-', '') as v)
                         insert into cal.event (event_id, user_id, role_code, customer_id, hold_id, start_at, end_at,
                                                status, sequence, ics_uid, timezone, created_at, updated_at)
                         select id.v, $1, $2, $3, $4, $5, $6, 'confirmed', 0, id.v || '@cal', $7, $8, $8 from id
                         returning {EVENT_RECORD}"
                    ),
                    &[
                        &hold.user_id,
                        &hold.role_code,
                        &hold.customer_id,
                        &hold.hold_id,
                        &hold.start.to_chrono(),
                        &hold.end.to_chrono(),
                        &zone.name(),
                        &now.to_chrono(),
                    ],
                )
                .await
                .map_err(|e| conflict_on_overlap(e.into()))?;
            (EventRecord::from_row(&rows[0])?, EVENT_CONFIRMED, None)
        }
    };
    tx.execute(
        "update cal.hold set status = 'converted', converted_event_id = $2, updated_at = $3 where hold_id = $1",
        &[&hold_id, &event.event_id, &now.to_chrono()],
    )
    .await?;
    outbox::bump_version(&tx, &hold.user_id).await?;
    let payload = json!({"event": event.payload(), "hold_id": hold.hold_id, "previous": previous});
    outbox::enqueue(&tx, event_type, &hold.user_id, &payload).await?;
    tx.commit().await?;
    tracing::info!(hold_id, event_id = %event.event_id, event_type, "hold converted");
    Ok(event)
}

/// The provider's zone for renderings: that of its first active rule of the
/// role, else UTC.
async fn provider_zone(db: &impl Executor, user_id: &str, role_code: &str) -> Result<Zone, StoreError> {
    let rows = db
        .query(
            "select timezone from cal.weekly_rule where user_id = $1 and role_code = $2 and active
             order by created_at, rule_id limit 1",
            &[&user_id, &role_code],
        )
        .await?;
    Ok(rows.first().and_then(|r| Zone::parse(r.get::<_, &str>(0)).ok()).unwrap_or(Zone::UTC))
}

/// Releases a hold (a customer leaving checkout, a provider declining a
/// request). Releasing a released hold changes nothing.
pub async fn release_hold(db: &mut impl Begin, hold_id: &str, now: Instant) -> Result<HoldRecord, StoreError> {
    let user_id = get_hold(&*db, hold_id).await?.user_id;
    let tx = db.begin().await?;
    lock_provider(&tx, &user_id).await?;
    let hold = hold_by_id(&tx, hold_id, true).await?;
    if !holds::release(hold_id, hold.status, hold.expires_at, now)? {
        return Ok(hold);
    }
    let rows = tx
        .query(
            &format!("update cal.hold set status = 'released', updated_at = $2 where hold_id = $1 returning {HOLD_RECORD}"),
            &[&hold_id, &now.to_chrono()],
        )
        .await?;
    let released = HoldRecord::from_row(&rows[0])?;
    outbox::bump_version(&tx, &user_id).await?;
    outbox::enqueue(&tx, HOLD_RELEASED, &user_id, &released.payload()).await?;
    tx.commit().await?;
    Ok(released)
}

/// Request-to-Book: the provider accepts a request hold (it becomes the event).
pub async fn accept_request(db: &mut impl Begin, hold_id: &str, now: Instant) -> Result<EventRecord, StoreError> {
    require_request(&*db, hold_id).await?;
    confirm_hold(db, hold_id, now).await
}

/// Request-to-Book: the provider declines a request hold (it is released).
pub async fn decline_request(db: &mut impl Begin, hold_id: &str, now: Instant) -> Result<HoldRecord, StoreError> {
    require_request(&*db, hold_id).await?;
    release_hold(db, hold_id, now).await
}

async fn require_request(db: &impl Executor, hold_id: &str) -> Result<(), StoreError> {
    if get_hold(db, hold_id).await?.mode != HoldMode::Request {
        return Err(BookingError::Validation { field: "hold_id", reason: format!("hold {hold_id} is not a booking request") }.into());
    }
    Ok(())
}

/// Moves event `event_id` to the time of reschedule hold `hold_id` (which
/// must be a reschedule hold for that event): same UID, sequence + 1, the old
/// time freed. Idempotent like [`confirm_hold`].
pub async fn reschedule_event(db: &mut impl Begin, event_id: &str, hold_id: &str, now: Instant) -> Result<EventRecord, StoreError> {
    let hold = get_hold(&*db, hold_id).await?;
    if hold.kind != HoldKind::Reschedule || hold.event_id.as_deref() != Some(event_id) {
        return Err(BookingError::Validation { field: "hold_id", reason: format!("hold {hold_id} is not a reschedule hold for event {event_id}") }.into());
    }
    confirm_hold(db, hold_id, now).await
}

/// Cancels a confirmed event: its time is free again and its sequence
/// increments. Cancelling a cancelled event changes nothing.
pub async fn cancel_event(db: &mut impl Begin, event_id: &str, now: Instant) -> Result<EventRecord, StoreError> {
    let user_id = get_event(&*db, event_id).await?.user_id;
    let tx = db.begin().await?;
    lock_provider(&tx, &user_id).await?;
    let event = event_by_id(&tx, event_id, true).await?;
    if event.status == EventStatus::Cancelled {
        return Ok(event);
    }
    let rows = tx
        .query(
            &format!(
                "update cal.event set status = 'cancelled', sequence = sequence + 1, updated_at = $2
                 where event_id = $1 returning {EVENT_RECORD}"
            ),
            &[&event_id, &now.to_chrono()],
        )
        .await?;
    let cancelled = EventRecord::from_row(&rows[0])?;
    outbox::bump_version(&tx, &user_id).await?;
    outbox::enqueue(&tx, EVENT_CANCELLED, &user_id, &json!({"event": cancelled.payload()})).await?;
    tx.commit().await?;
    Ok(cancelled)
}
