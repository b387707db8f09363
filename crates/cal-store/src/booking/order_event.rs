//! The order service's events (`order.booked`, `order.rescheduled`,
//! `order.cancelled`): how one is read from EventBridge and what it does.
//! Self-contained, so it can move to its handler whole.

use cal_core::BookingError;
use cal_core::time::Instant;

use super::convert::{cancel_event, confirm_hold, reschedule_event};
use super::records::EventRecord;
use crate::db::Begin;
use crate::error::StoreError;

/// An event of the order service this suite reacts to.
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderEvent {
    /// `order.booked`: convert the checkout or accepted request hold.
    Booked { hold_id: String },
    /// `order.rescheduled`: move the event to its reschedule hold's time.
    Rescheduled { event_id: String, hold_id: String },
    /// `order.cancelled`: cancel the event.
    Cancelled { event_id: String },
}

impl OrderEvent {
    /// Reads an EventBridge `detail-type` and `detail`; a missing or blank
    /// field is a validation error naming it.
    pub fn parse(detail_type: &str, detail: &serde_json::Value) -> Result<Self, StoreError> {
        let field = |name: &'static str| -> Result<String, StoreError> {
            detail
                .get(name)
                .and_then(|v| v.as_str())
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned)
                .ok_or_else(|| BookingError::Validation { field: name, reason: "is required".into() }.into())
        };
        match detail_type {
            "order.booked" => Ok(OrderEvent::Booked { hold_id: field("hold_id")? }),
            "order.rescheduled" => Ok(OrderEvent::Rescheduled { event_id: field("event_id")?, hold_id: field("hold_id")? }),
            "order.cancelled" => Ok(OrderEvent::Cancelled { event_id: field("event_id")? }),
            other => Err(BookingError::Validation { field: "detail-type", reason: format!("unknown order event {other:?}") }.into()),
        }
    }
}

/// Applies an order event. Every branch is idempotent, so a redelivered
/// event is harmless: converting a converted hold returns its event,
/// cancelling a cancelled event returns it unchanged.
pub async fn apply_order_event(db: &mut impl Begin, event: &OrderEvent, now: Instant) -> Result<EventRecord, StoreError> {
    match event {
        OrderEvent::Booked { hold_id } => confirm_hold(db, hold_id, now).await,
        OrderEvent::Rescheduled { event_id, hold_id } => reschedule_event(db, event_id, hold_id, now).await,
        OrderEvent::Cancelled { event_id } => cancel_event(db, event_id, now).await,
    }
}
