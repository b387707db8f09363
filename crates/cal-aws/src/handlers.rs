//! What the event-driven Lambdas do per invocation. Each binary builds its
//! dependencies once and calls one function here with the decoded event.

use std::time::Duration;

use cal_core::{ErrorType, Instant};
use cal_store::{EventPublisher, OrderEvent, RelayError, RelayOptions, RelayReport, StoreError};
use deadpool_postgres::Pool;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::cache::FeasibilityCache;
use crate::error::AwsError;
use crate::idempotency::{IdempotencyError, IdempotencyStore, Idempotent, RunError};

/// An EventBridge event as delivered to a Lambda (scheduled events included:
/// `detail-type` "Scheduled Event", `detail` `{}`).
#[derive(Clone, Debug, Deserialize)]
pub struct EventBridgeEvent {
    /// The event's id (EventBridge's, unique per event; redeliveries keep it).
    pub id: String,
    /// E.g. `order.booked`, `cal.hold.expired`, `Scheduled Event`.
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    /// E.g. `orders`, `cal`, `aws.events`.
    pub source: String,
    /// When it happened (RFC 3339).
    #[serde(default)]
    pub time: Option<String>,
    /// The event's body.
    #[serde(default)]
    pub detail: Value,
}

/// A failed invocation. [`HandlerError::error_type`] is the `errorType` the
/// binaries report; the Display is safe to log and carries no secrets.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The event does not decode.
    #[error("event does not decode: {0}")]
    BadEvent(#[source] serde_json::Error),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The outbox relay failed (the database, or the event bus itself).
    /// Boxed: it carries the run's report.
    #[error(transparent)]
    Relay(Box<RelayError>),
    /// An AWS call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The idempotency guard refused the request.
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    /// No connection could be taken from the pool.
    #[error("no database connection available")]
    Pool(#[source] deadpool_postgres::PoolError),
}

impl HandlerError {
    /// The stable error type (`VALIDATION`, `NOT_FOUND`, `HOLD_EXPIRED`, ...).
    pub fn error_type(&self) -> ErrorType {
        match self {
            HandlerError::BadEvent(_) => ErrorType::Validation,
            HandlerError::Store(e) => e.error_type(),
            HandlerError::Relay(e) => match &**e {
                RelayError::Store { source, .. } => source.error_type(),
                RelayError::Bus { .. } => ErrorType::Internal,
            },
            HandlerError::Idempotency(e) => e.error_type(),
            HandlerError::Aws(_) | HandlerError::Pool(_) => ErrorType::Internal,
        }
    }
}

impl From<RelayError> for HandlerError {
    fn from(e: RelayError) -> Self {
        HandlerError::Relay(Box::new(e))
    }
}

impl From<RunError<HandlerError>> for HandlerError {
    fn from(e: RunError<HandlerError>) -> Self {
        match e {
            RunError::Idempotency(e) => HandlerError::Idempotency(e),
            RunError::Handler(e) => e,
        }
    }
}

fn decode(event: Value) -> Result<EventBridgeEvent, HandlerError> {
    serde_json::from_value(event).map_err(HandlerError::BadEvent)
}

async fn client(pool: &Pool) -> Result<deadpool_postgres::Object, HandlerError> {
    pool.get().await.map_err(HandlerError::Pool)
}

/// The custom metric counting outbox rows parked by a run (alarmed).
pub const OUTBOX_PARKED: &str = "OutboxParked";

/// Relays the outbox and emits [`OUTBOX_PARKED`] for `function`, also when
/// the run fails (rows parked before the failure stay parked). A failing
/// run is an error of the invocation, so the function's Errors alarm sees
/// a failing bus.
async fn relay_and_count(
    db: &mut deadpool_postgres::Object,
    publisher: &impl EventPublisher,
    opts: RelayOptions,
    function: &str,
) -> Result<RelayReport, HandlerError> {
    let result = cal_store::relay_outbox(db, publisher, opts).await;
    let report = match &result {
        Ok(report) => report,
        Err(e) => e.report(),
    };
    crate::emit_metric(&crate::metrics::function_name(function), OUTBOX_PARKED, report.parked as u64);
    if let Err(e) = &result {
        tracing::error!(error = %e, report = ?e.report(), "outbox relay failed");
    }
    Ok(result?)
}

/// `fn-outbox-relay`: on its schedule, publish the outbox.
pub async fn relay(pool: &Pool, publisher: &impl EventPublisher, opts: RelayOptions, event: Value) -> Result<Value, HandlerError> {
    let event = decode(event)?;
    let mut db = client(pool).await?;
    let report = relay_and_count(&mut db, publisher, opts, "fn-outbox-relay").await?;
    tracing::info!(event_id = %event.id, ?report, "outbox relayed");
    Ok(serde_json::to_value(report).expect("reports serialize"))
}

/// `fn-hold-sweeper` settings.
#[derive(Clone, Copy, Debug)]
pub struct SweepOptions {
    /// Holds per transaction.
    pub batch: i64,
    /// Transactions per invocation at most.
    pub max_batches: usize,
}

/// `fn-hold-sweeper`: expire holds whose time ran out (bounded batches, one
/// transaction each, each writing `cal.hold.expired`), then relay the outbox
/// so the expiries go out without waiting for the relay's schedule (as
/// [`relay`] does: a failing bus fails the invocation, parked rows are
/// counted).
pub async fn sweep(
    pool: &Pool,
    publisher: &impl EventPublisher,
    sweep: SweepOptions,
    relay: RelayOptions,
    now: Instant,
    event: Value,
) -> Result<Value, HandlerError> {
    let event = decode(event)?;
    let mut db = client(pool).await?;
    let mut swept = 0;
    for _ in 0..sweep.max_batches.max(1) {
        let batch = cal_store::sweep_expired_holds(&mut db, now, sweep.batch.max(1)).await?;
        swept += batch.len();
        if (batch.len() as i64) < sweep.batch.max(1) {
            break;
        }
    }
    // Logged before relaying: the expiries are committed even if the relay
    // then fails the invocation.
    tracing::info!(event_id = %event.id, swept, "holds swept");
    let report = relay_and_count(&mut db, publisher, relay, "fn-hold-sweeper").await?;
    tracing::info!(event_id = %event.id, ?report, "outbox relayed");
    Ok(json!({ "swept": swept, "relay": report }))
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
    let event = decode(event)?;
    let order = OrderEvent::parse(&event.detail_type, &event.detail)?;
    let guard = Idempotent { expires_after: opts.idempotency_ttl, now_ms, remaining };
    let key = format!("order-events#{}", event.id);
    let payload = json!({ "detail-type": event.detail_type, "detail": event.detail });
    let result = guard
        .run(store, &key, &payload, || async {
            let mut db = client(pool).await?;
            let record = cal_store::apply_order_event(&mut db, &order, now).await?;
            Ok::<_, HandlerError>(json!({ "event": record }))
        })
        .await?;
    Ok(result)
}

/// `fn-cache-rebuilder` settings.
#[derive(Clone, Copy, Debug)]
pub struct RebuildOptions {
    /// Days from today to keep warm.
    pub days: u32,
}

/// `fn-cache-rebuilder`: a `cal.*` event (detail `user_id`, as the relay
/// writes it) or an `order.*` event (detail `hold_id` / `event_id`) names a
/// provider; recompute that provider's near-term entries at its current
/// version.
pub async fn rebuild_cache(
    pool: &Pool,
    cache: &impl FeasibilityCache,
    opts: RebuildOptions,
    now: Instant,
    event: Value,
) -> Result<Value, HandlerError> {
    let event = decode(event)?;
    let db = client(pool).await?;
    let user_id = provider_of(&db, &event).await?;
    let written = crate::cache::rebuild_near_term(&db, cache, &user_id, now, opts.days).await?;
    tracing::info!(event_id = %event.id, user_id, written, "near-term cache rebuilt");
    Ok(json!({ "user_id": user_id, "entries": written }))
}

async fn provider_of(db: &impl cal_store::Executor, event: &EventBridgeEvent) -> Result<String, HandlerError> {
    let field = |name: &str| event.detail.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
    if event.detail_type.starts_with("cal.") {
        if let Some(user) = field("user_id") {
            return Ok(user.to_owned());
        }
    } else if event.detail_type.starts_with("order.") {
        // The event first: after a reschedule the hold is converted, and
        // either names the same provider.
        if let Some(event_id) = field("event_id") {
            return Ok(cal_store::get_event(db, event_id).await?.user_id);
        }
        if let Some(hold_id) = field("hold_id") {
            return Ok(cal_store::get_hold(db, hold_id).await?.user_id);
        }
    }
    let err = serde_json::Error::io(std::io::Error::other(format!(
        "{}: the detail names no provider (user_id, event_id or hold_id)",
        event.detail_type
    )));
    Err(HandlerError::BadEvent(err))
}

/// Now, from the system clock: whole seconds and milliseconds.
pub fn system_now() -> (Instant, i64) {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (Instant::from_unix(d.as_secs() as i64), d.as_millis() as i64)
}
