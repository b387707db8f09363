//! What the event-driven functions share per invocation: the EventBridge
//! envelope they decode, and the one error type their handlers return, with
//! its stable `errorType` ([`HandlerError::error_type`]) and its [`Diagnostic`].

use cal_core::Instant;
use cal_store::{RelayError, StoreError};
use deadpool_postgres::Pool;
use lambda_runtime::Diagnostic;
use serde::Deserialize;
use serde_json::Value;

use crate::error::AwsError;
use crate::idempotency::{IdempotencyError, RunError};

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
    /// The sync queue refused a job.
    #[error(transparent)]
    Queue(#[from] cal_sync::jobs::QueueError),
}

impl HandlerError {
    /// The stable error type (`VALIDATION`, `NOT_FOUND`, `HOLD_EXPIRED`, ...).
    pub fn error_type(&self) -> cal_core::ErrorType {
        use cal_core::ErrorType;
        match self {
            HandlerError::BadEvent(_) => ErrorType::Validation,
            HandlerError::Store(e) => e.error_type(),
            HandlerError::Relay(e) => match &**e {
                RelayError::Store { source, .. } => source.error_type(),
                RelayError::Bus { .. } => ErrorType::Internal,
            },
            HandlerError::Idempotency(e) => e.error_type(),
            HandlerError::Aws(_) | HandlerError::Pool(_) | HandlerError::Queue(_) => ErrorType::Internal,
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

/// What the runtime reports for a failed invocation: the stable type and a
/// message that carries no secrets. The one mapping of the event-driven
/// functions (fn-api and fn-ics-poller map their own error types).
impl From<HandlerError> for Diagnostic {
    fn from(e: HandlerError) -> Self {
        Diagnostic { error_type: e.error_type().as_str().into(), error_message: e.to_string() }
    }
}

/// The event as an EventBridge envelope; anything else is `VALIDATION`.
pub fn decode(event: Value) -> Result<EventBridgeEvent, HandlerError> {
    serde_json::from_value(event).map_err(HandlerError::BadEvent)
}

/// A connection from `pool`.
pub async fn connection(pool: &Pool) -> Result<deadpool_postgres::Object, HandlerError> {
    pool.get().await.map_err(HandlerError::Pool)
}

/// Now, from the system clock: whole seconds and milliseconds.
pub fn system_now() -> (Instant, i64) {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (Instant::from_unix(d.as_secs() as i64), d.as_millis() as i64)
}
