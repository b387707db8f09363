//! Holds and events as stored: the records, their columns, how a row
//! becomes one (a row that no longer validates names its table, id and
//! column), what of one goes into an event payload, and the lookups by id.

use cal_core::feasibility::{EventStatus, HoldStatus};
use cal_core::holds::{HoldKind, HoldMode};
use cal_core::time::{Instant, Interval, Zone};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Row;

use crate::db::Executor;
use crate::error::StoreError;

/// Columns read by [`HoldRecord::from_row`].
pub(crate) const HOLD_RECORD: &str = "hold_id, user_id, role_code, customer_id, start_at, end_at, kind, mode, status, \
     expires_at, event_id, converted_event_id, idempotency_key, request_fingerprint, created_at";

/// Columns read by [`EventRecord::from_row`].
pub(crate) const EVENT_RECORD: &str = "event_id, user_id, role_code, customer_id, hold_id, start_at, end_at, status, sequence, \
     ics_uid, summary, timezone, created_at, updated_at";

/// A hold as stored; fields mirror `cal.hold` (migrations/0002).
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HoldRecord {
    pub hold_id: String,
    pub user_id: String,
    pub role_code: String,
    pub customer_id: Option<String>,
    pub start: Instant,
    pub end: Instant,
    pub kind: HoldKind,
    pub mode: HoldMode,
    /// The stored status; see [`HoldRecord::status_at`] for the effective one.
    pub status: HoldStatus,
    pub expires_at: Instant,
    pub event_id: Option<String>,
    pub converted_event_id: Option<String>,
    pub idempotency_key: String,
    #[serde(skip)]
    pub request_fingerprint: String,
    pub created_at: Instant,
}

impl HoldRecord {
    /// The status at `now`: an active hold past its expiry is expired even
    /// before the sweeper marks it ([`HoldStatus::at`]).
    pub fn status_at(&self, now: Instant) -> HoldStatus {
        self.status.at(self.expires_at, now)
    }

    pub(crate) fn from_row(row: &Row) -> Result<Self, StoreError> {
        let hold_id: String = row.try_get("hold_id")?;
        let bad = |column: &'static str| StoreError::corrupt("cal.hold", &hold_id, column);
        Ok(HoldRecord {
            user_id: row.try_get("user_id")?,
            role_code: row.try_get("role_code")?,
            customer_id: row.try_get("customer_id")?,
            start: instant(row, "start_at")?,
            end: instant(row, "end_at")?,
            kind: HoldKind::parse(row.try_get("kind")?).ok_or_else(|| bad("kind"))?,
            mode: HoldMode::parse(row.try_get("mode")?).ok_or_else(|| bad("mode"))?,
            status: HoldStatus::parse(row.try_get("status")?).ok_or_else(|| bad("status"))?,
            expires_at: instant(row, "expires_at")?,
            event_id: row.try_get("event_id")?,
            converted_event_id: row.try_get("converted_event_id")?,
            idempotency_key: row.try_get("idempotency_key")?,
            request_fingerprint: row.try_get("request_fingerprint")?,
            created_at: instant(row, "created_at")?,
            hold_id,
        })
    }

    /// The hold in event payloads: ids and bounded fields only, so not the
    /// idempotency key (the caller's free text).
    pub(crate) fn payload(&self) -> serde_json::Value {
        without(serde_json::to_value(self).expect("a hold serializes"), &["idempotency_key"])
    }
}

/// A booked event as stored; fields mirror `cal.event` (migrations/0002).
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventRecord {
    pub event_id: String,
    pub user_id: String,
    pub role_code: String,
    pub customer_id: Option<String>,
    pub hold_id: Option<String>,
    pub start: Instant,
    pub end: Instant,
    pub status: EventStatus,
    /// ICS SEQUENCE: 0 when booked, +1 per reschedule and on cancellation.
    pub sequence: i32,
    /// ICS UID, stable for the event's life.
    pub ics_uid: String,
    pub summary: Option<String>,
    /// The provider's zone, for local renderings.
    pub timezone: Zone,
    pub created_at: Instant,
    pub updated_at: Instant,
}

impl EventRecord {
    pub(crate) fn from_row(row: &Row) -> Result<Self, StoreError> {
        let event_id: String = row.try_get("event_id")?;
        let bad = |column: &'static str| StoreError::corrupt("cal.event", &event_id, column);
        Ok(EventRecord {
            user_id: row.try_get("user_id")?,
            role_code: row.try_get("role_code")?,
            customer_id: row.try_get("customer_id")?,
            hold_id: row.try_get("hold_id")?,
            start: instant(row, "start_at")?,
            end: instant(row, "end_at")?,
            status: EventStatus::parse(row.try_get("status")?).ok_or_else(|| bad("status"))?,
            sequence: row.try_get("sequence")?,
            ics_uid: row.try_get("ics_uid")?,
            summary: row.try_get("summary")?,
            timezone: Zone::parse(row.try_get("timezone")?).map_err(|_| bad("timezone"))?,
            created_at: instant(row, "created_at")?,
            updated_at: instant(row, "updated_at")?,
            event_id,
        })
    }

    /// The event as its e-mail attachment shows it (SEMANTICS.md §7): one
    /// UID for its life, SEQUENCE equal to its sequence, CANCEL once cancelled.
    pub fn invite(&self) -> cal_core::ics_out::EventInvite {
        cal_core::ics_out::EventInvite {
            uid: self.ics_uid.clone(),
            sequence: self.sequence,
            start: self.start,
            end: self.end,
            summary: self.summary.clone().unwrap_or_else(|| format!("Booking ({})", self.role_code)),
            description: None,
            cancelled: self.status == EventStatus::Cancelled,
            organizer: None,
            attendees: Vec::new(),
        }
    }

    /// The event's `[start, end)`.
    pub fn interval(&self) -> Interval {
        Interval::new(self.start, self.end).expect("the table's check keeps end > start")
    }

    /// The event in event payloads: ids and bounded fields only, so not the
    /// summary (free text).
    pub(crate) fn payload(&self) -> serde_json::Value {
        without(serde_json::to_value(self).expect("an event serializes"), &["summary"])
    }
}

/// `record` without the free-text `fields` (see [`crate::outbox`]).
fn without(mut record: serde_json::Value, fields: &[&str]) -> serde_json::Value {
    if let Some(object) = record.as_object_mut() {
        for field in fields {
            object.remove(*field);
        }
    }
    record
}

/// The timestamp in `column` of `row`.
pub(crate) fn instant(row: &Row, column: &str) -> Result<Instant, StoreError> {
    Ok(Instant::from_chrono(row.try_get::<_, DateTime<Utc>>(column)?))
}

/// The hold `hold_id`, its row locked to the end of the transaction if
/// `for_update`.
pub(crate) async fn hold_by_id(db: &impl Executor, hold_id: &str, for_update: bool) -> Result<HoldRecord, StoreError> {
    let lock = if for_update { " for update" } else { "" };
    let rows = db.query(&format!("select {HOLD_RECORD} from cal.hold where hold_id = $1{lock}"), &[&hold_id]).await?;
    rows.first().map(HoldRecord::from_row).transpose()?.ok_or_else(|| not_found("hold", hold_id))
}

/// The event `event_id`, its row locked to the end of the transaction if
/// `for_update`.
pub(crate) async fn event_by_id(db: &impl Executor, event_id: &str, for_update: bool) -> Result<EventRecord, StoreError> {
    let lock = if for_update { " for update" } else { "" };
    let rows =
        db.query(&format!("select {EVENT_RECORD} from cal.event where event_id = $1{lock}"), &[&event_id]).await?;
    rows.first().map(EventRecord::from_row).transpose()?.ok_or_else(|| not_found("event", event_id))
}

/// `NOT_FOUND` for the `what` of id `id`.
pub(crate) fn not_found(what: &'static str, id: &str) -> StoreError {
    StoreError::NotFound { entity: what, id: id.to_owned() }
}

/// Looks a hold up (no lock).
pub async fn get_hold(db: &impl Executor, hold_id: &str) -> Result<HoldRecord, StoreError> {
    hold_by_id(db, hold_id, false).await
}

/// Looks an event up (no lock).
pub async fn get_event(db: &impl Executor, event_id: &str) -> Result<EventRecord, StoreError> {
    event_by_id(db, event_id, false).await
}
