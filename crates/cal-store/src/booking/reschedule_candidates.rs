//! Where a confirmed event could move: the slots a reschedule hold could
//! take.

use cal_core::BookingError;
use cal_core::feasibility::EventStatus;
use cal_core::time::Instant;

use super::records::get_event;
use crate::calendar::load_calendar;
use crate::db::Executor;
use crate::error::StoreError;

/// Where a confirmed event could move within `[from, to)`: slots of its own
/// length under its provider's rules, ignoring the event's current time
/// (which a reschedule frees). The same rule `create_hold` applies to a
/// reschedule hold, so every candidate can be held.
pub async fn reschedule_candidates(
    db: &impl Executor,
    event_id: &str,
    from: Instant,
    to: Instant,
    step: cal_core::StepMinutes,
    now: Instant,
) -> Result<cal_core::SlotAnswer, StoreError> {
    let event = get_event(db, event_id).await?;
    if event.status != EventStatus::Confirmed {
        return Err(BookingError::Validation { field: "event_id", reason: format!("event {event_id} is cancelled") }.into());
    }
    let minutes = (event.interval().secs() / 60) as u32;
    let range = cal_core::SlotRange::new(from, to, Some(minutes.into()), step)
        .map_err(|e| BookingError::Validation { field: e.field(), reason: e.to_string() })?;
    let mut calendar = load_calendar(db, &event.user_id, &event.role_code, from, to, Some(minutes)).await?;
    calendar.events.retain(|e| e.event_id != event.event_id);
    let query = cal_core::SlotQuery { user_id: event.user_id, role_code: event.role_code, range };
    cal_core::bookable_slots(&query, &calendar, now)
        .map_err(|e| BookingError::Validation { field: e.field(), reason: e.to_string() }.into())
}
