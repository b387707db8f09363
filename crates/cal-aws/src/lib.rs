//! AWS adapters of the calendar backend, each behind a narrow trait (one
//! capability per trait), and the handlers of the event-driven Lambdas.
//!
//! * [`sdk`]: one `SdkConfig` per process (rustls on ring; `AWS_ENDPOINT_URL`
//!   is honoured, which is how the tests reach moto).
//! * [`publisher`]: [`cal_store::EventPublisher`] on EventBridge PutEvents.
//! * [`cache`]: the feasibility cache and the reschedule candidate sets in
//!   DynamoDB, stamped with the provider version ([`FeasibilityCache`],
//!   [`RescheduleCandidateCache`]).
//! * [`idempotency`]: Powertools-style idempotency records in DynamoDB
//!   ([`IdempotencyStore`]).
//! * [`handlers`]: what `fn-outbox-relay`, `fn-hold-sweeper`,
//!   `fn-order-events` and `fn-cache-rebuilder` do per invocation.
//! * [`metrics`]: custom CloudWatch metrics as embedded-metric-format lines
//!   ([`emit_metric`]).

#![forbid(unsafe_code)]

pub mod cache;
pub mod config;
pub mod database;
pub mod error;
pub mod handlers;
pub mod idempotency;
pub mod metrics;
pub mod publisher;
pub mod sdk;
#[cfg(feature = "testing")]
pub mod testing;

pub use cache::{CacheKey, CachedEntry, DynamoCache, FeasibilityCache, RescheduleCandidateCache, RescheduleKey};
pub use config::{ConfigError, env_number, env_var};
pub use error::AwsError;
pub use idempotency::{DynamoIdempotencyStore, IdempotencyError, IdempotencyStore, Idempotent, RunError};
pub use metrics::emit_metric;
pub use publisher::EventBridgePublisher;

/// JSON log lines (CloudWatch) filtered by `RUST_LOG`: every function's first call.
pub fn init_logging() {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).without_time().json().init();
}
