//! `fn-order-events`: the order service's `order.booked`,
//! `order.rescheduled` and `order.cancelled` (EventBridge) convert, move or
//! cancel; redelivery is harmless.

#![forbid(unsafe_code)]

use std::time::Duration;

use cal_aws::idempotency::{IdempotencyStore, Idempotent};
use cal_aws::{ConfigError, Env, HandlerError};
use cal_core::{BookingError, Instant};
use cal_store::StoreError;
use deadpool_postgres::Pool;
use serde_json::{Value, json};

/// Configuration from the environment, read once.
pub struct Config {
    /// `IDEMPOTENCY_TABLE` (required).
    pub idempotency_table: String,
    /// `IDEMPOTENCY_TTL_SECS` (default 3600, 60 to 604800).
    pub order: OrderOptions,
}

impl Config {
    /// Reads it; a bad value is refused, naming the variable.
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        Ok(Config {
            idempotency_table: env.required("IDEMPOTENCY_TABLE")?,
            order: OrderOptions { idempotency_ttl: env.secs("IDEMPOTENCY_TTL_SECS", 3600, 60..=7 * 86_400)? },
        })
    }
}

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
pub async fn apply_order_event(db: &mut impl cal_store::Begin, event: &OrderEvent, now: Instant) -> Result<cal_store::EventRecord, StoreError> {
    match event {
        OrderEvent::Booked { hold_id } => cal_store::confirm_hold(db, hold_id, now).await,
        OrderEvent::Rescheduled { event_id, hold_id } => cal_store::reschedule_event(db, event_id, hold_id, now).await,
        OrderEvent::Cancelled { event_id } => cal_store::cancel_event(db, event_id, now).await,
    }
}

/// `fn-order-events` settings.
#[derive(Clone, Copy, Debug)]
pub struct OrderOptions {
    /// How long a processed event's record answers redeliveries.
    pub idempotency_ttl: Duration,
}

/// `fn-order-events`: `order.booked` converts the hold, `order.rescheduled`
/// moves the event, `order.cancelled` cancels it. Guarded by an idempotency
/// record keyed by the EventBridge event id (a redelivery returns the first
/// answer); the store's operations are idempotent on their own as well, so
/// even an expired record makes a redelivery harmless.
#[allow(clippy::too_many_arguments)]
pub async fn order_event(
    pool: &Pool,
    store: &impl IdempotencyStore,
    opts: OrderOptions,
    now: Instant,
    now_ms: i64,
    remaining: Duration,
    event: Value,
) -> Result<Value, HandlerError> {
    let event = cal_aws::event::decode(event)?;
    let order = OrderEvent::parse(&event.detail_type, &event.detail)?;
    let guard = Idempotent { expires_after: opts.idempotency_ttl, now_ms, remaining };
    let key = format!("order-events#{}", event.id);
    let payload = json!({ "detail-type": event.detail_type, "detail": event.detail });
    let result = guard
        .run(store, &key, &payload, || async {
            let mut db = cal_aws::event::connection(pool).await?;
            let record = apply_order_event(&mut db, &order, now).await?;
            Ok::<_, HandlerError>(json!({ "event": record }))
        })
        .await?;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_events_parse_and_name_missing_fields() {
        let booked = OrderEvent::parse("order.booked", &serde_json::json!({"hold_id": "hld_1", "order_id": "o1"})).unwrap();
        assert_eq!(booked, OrderEvent::Booked { hold_id: "hld_1".into() });
        let err = OrderEvent::parse("order.rescheduled", &serde_json::json!({"event_id": "ev_1"})).unwrap_err();
        assert_eq!(err.to_string(), "hold_id: is required");
        assert!(OrderEvent::parse("order.refunded", &serde_json::json!({})).is_err());
    }

    #[test]
    fn the_idempotency_ttl_is_refused_out_of_range() {
        let env = Env::from_pairs(&[("IDEMPOTENCY_TABLE", "t"), ("IDEMPOTENCY_TTL_SECS", "59")]);
        assert_eq!(Config::from_env(&env).err().unwrap().to_string(), "IDEMPOTENCY_TTL_SECS must be a whole number from 60 to 604800");
    }
}
