//! Writing our bookings into the provider's booking calendar: what a push
//! of one event must do now, and recording what it did.
//!
//! A push is planned from the event's current row, never from the message
//! that asked for it: a duplicated, late or reordered job plans the same
//! write (or none), and the remote item is found through `cal.sync_write`,
//! so a retry updates the item it created instead of adding a second one.

use cal_core::time::Instant;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::{SYNC_ERROR, cut};
use crate::db::Executor;
use crate::error::StoreError;
use crate::outbox;

/// What a push of one event must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushPlan {
    /// Nothing: the provider has no booking calendar, or it already shows
    /// the event as it is.
    Nothing,
    /// Create or update the item (confirmed event).
    Put {
        /// The connection to write through.
        connection_id: String,
        /// The calendar written into.
        calendar_id: String,
        /// The item written before, if any.
        item_id: Option<String>,
        /// The booking as it is now.
        event: cal_sync::OutboundEvent,
        /// The event's sequence this write shows.
        sequence: i32,
    },
    /// Remove the item (cancelled event). `item_id` is `None` when a create
    /// was attempted but its answer never arrived: the idempotent create
    /// finds the item first.
    Delete {
        /// The connection to write through.
        connection_id: String,
        /// The calendar written into.
        calendar_id: String,
        /// The item written before, if known.
        item_id: Option<String>,
        /// The cancelled booking (for the idempotent create's key).
        event: cal_sync::OutboundEvent,
        /// The event's sequence.
        sequence: i32,
    },
}

/// Plans the push of `event_id`. An event that stays where it was first
/// written keeps its calendar even if the provider later picks another
/// booking calendar (moving old bookings is not a push's business).
pub async fn push_plan(db: &impl Executor, event_id: &str) -> Result<PushPlan, StoreError> {
    let rows = db
        .query(
            "select e.user_id, e.status, e.start_at, e.end_at, e.sequence, e.summary, e.role_code,
                    w.connection_id as w_connection, w.calendar_id as w_calendar, w.item_id, w.written_sequence, w.removed,
                    t.connection_id as t_connection, t.calendar_id as t_calendar
               from cal.event e
               left join cal.sync_write w using (event_id)
               left join cal.sync_calendar t on t.user_id = e.user_id and t.receives_bookings
              where e.event_id = $1",
            &[&event_id],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Err(StoreError::NotFound { entity: "event", id: event_id.to_owned() });
    };
    let status: &str = row.try_get("status")?;
    let sequence: i32 = row.try_get("sequence")?;
    let written: Option<i32> = row.try_get("written_sequence")?;
    let removed: Option<bool> = row.try_get("removed")?;
    let item_id: Option<String> = row.try_get("item_id")?;
    let role: String = row.try_get("role_code")?;
    let summary: Option<String> = row.try_get("summary")?;
    let event = cal_sync::OutboundEvent {
        event_id: event_id.to_owned(),
        start: Instant::from_chrono(row.try_get::<_, DateTime<Utc>>("start_at")?),
        end: Instant::from_chrono(row.try_get::<_, DateTime<Utc>>("end_at")?),
        title: summary.clone().unwrap_or_else(|| format!("Booking ({role})")),
        description: format!("Booked through the marketplace. Booking {event_id}; change it there, not here."),
    };
    let target = match (row.try_get::<_, Option<String>>("w_connection")?, row.try_get::<_, Option<String>>("t_connection")?) {
        (Some(c), _) => Some((c, row.try_get::<_, String>("w_calendar")?)),
        (None, Some(c)) => Some((c, row.try_get::<_, String>("t_calendar")?)),
        (None, None) => None,
    };
    let Some((connection_id, calendar_id)) = target else { return Ok(PushPlan::Nothing) };
    let attempted = written.is_some() || item_id.is_some() || removed.is_some();
    Ok(match status {
        "confirmed" if written == Some(sequence) && removed != Some(true) => PushPlan::Nothing,
        "confirmed" => PushPlan::Put { connection_id, calendar_id, item_id, event, sequence },
        // Never written (or its removal already written): nothing to take away.
        _ if !attempted || removed == Some(true) => PushPlan::Nothing,
        _ => PushPlan::Delete { connection_id, calendar_id, item_id, event, sequence },
    })
}

/// Records a successful push: the item now shows `sequence` (or, with
/// `removed`, is gone). Clears the failure count.
pub async fn record_push(
    db: &impl Executor,
    event_id: &str,
    connection_id: &str,
    calendar_id: &str,
    item_id: Option<&str>,
    sequence: i32,
    removed: bool,
) -> Result<(), StoreError> {
    db.execute(
        "insert into cal.sync_write (event_id, user_id, connection_id, calendar_id, item_id, written_sequence, removed)
         select $1, e.user_id, $2, $3, $4, $5, $6 from cal.event e where e.event_id = $1
         on conflict (event_id) do update
            set connection_id = excluded.connection_id, calendar_id = excluded.calendar_id,
                item_id = coalesce(excluded.item_id, cal.sync_write.item_id), written_sequence = excluded.written_sequence,
                removed = excluded.removed, attempts = 0, last_error = null, parked_at = null, updated_at = now()",
        &[&event_id, &connection_id, &calendar_id, &item_id, &sequence, &removed],
    )
    .await?;
    Ok(())
}

/// Records a failed push (the write record exists from then on, so a
/// later plan knows a create may have happened). With `park`, the write
/// failed for good: it is parked (counted by [`parked_push_count`], which
/// an alarm watches) and `cal.sync.error` is emitted; other providers'
/// pushes are not held back by it.
pub async fn record_push_failure(
    db: &impl Executor,
    event_id: &str,
    connection_id: &str,
    calendar_id: &str,
    error: &str,
    park: bool,
) -> Result<(), StoreError> {
    let error = cut(error);
    let rows = db
        .query(
            "insert into cal.sync_write (event_id, user_id, connection_id, calendar_id, attempts, last_error, parked_at)
             select $1, e.user_id, $2, $3, 1, $4, case when $5 then now() end from cal.event e where e.event_id = $1
             on conflict (event_id) do update
                set attempts = cal.sync_write.attempts + 1, last_error = excluded.last_error,
                    parked_at = excluded.parked_at, updated_at = now()
             returning user_id",
            &[&event_id, &connection_id, &calendar_id, &error, &park],
        )
        .await?;
    if park && let Some(row) = rows.first() {
        let user_id: String = row.try_get(0)?;
        let payload = json!({ "connection_id": connection_id, "calendar_id": calendar_id, "event_id": event_id, "error": error });
        outbox::enqueue(db, SYNC_ERROR, &user_id, &payload).await?;
    }
    Ok(())
}

/// Pushes parked for good (the `Cal/SyncWriteParked` metric).
pub async fn parked_push_count(db: &impl Executor) -> Result<i64, StoreError> {
    Ok(db.query("select count(*) from cal.sync_write where parked_at is not null", &[]).await?[0].get(0))
}

/// `user_id`'s confirmed bookings that have not ended at `now`, for a
/// newly chosen booking calendar to receive (at most `limit`, soonest first).
pub async fn future_bookings(db: &impl Executor, user_id: &str, now: Instant, limit: i64) -> Result<Vec<String>, StoreError> {
    db.query(
        "select event_id from cal.event where user_id = $1 and status = 'confirmed' and end_at > $2 order by start_at limit $3",
        &[&user_id, &now.to_chrono(), &limit],
    )
    .await?
    .iter()
    .map(|r| Ok(r.try_get(0)?))
    .collect()
}
