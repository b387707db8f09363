//! AWS adapters of the calendar backend, each behind a narrow trait (one
//! capability per trait), and the start-up every function shares. The
//! handlers live in their functions' crates (`crates/fn-*`).
//!
//! * [`bootstrap`]: logging, [`Aws`] (SDK, pool, adapters), [`serve`].
//! * [`config`]: [`Env`], the one reader of configuration (refuses a bad
//!   value, naming the variable).
//! * [`sdk`]: one `SdkConfig` per process (rustls on ring; `AWS_ENDPOINT_URL`
//!   is honoured, which is how the tests reach moto).
//! * [`publisher`]: [`cal_store::EventPublisher`] on EventBridge PutEvents.
//! * [`cache`]: answers in DynamoDB, stamped with the provider version
//!   ([`VersionedCache`]), and the one read-through rule.
//! * [`idempotency`]: Powertools-style idempotency records in DynamoDB
//!   ([`IdempotencyStore`]).
//! * [`event`]: the EventBridge envelope and [`HandlerError`], shared by the
//!   event-driven functions.
//! * [`poll`]: starting the ICS poll state machine at once
//!   ([`PollStarter`]).
//! * [`metrics`]: custom CloudWatch metrics as embedded-metric-format lines
//!   ([`emit_metric`]).
//! * [`vault`]: the sync's refresh tokens sealed by KMS envelope encryption
//!   ([`KmsTokenVault`]).
//! * [`queue`]: sync jobs onto SQS ([`SqsJobQueue`]).
//! * [`sync_config`]: the sync functions' variables and their secret
//!   ([`SyncSecrets`]).

#![forbid(unsafe_code)]

pub mod bootstrap;
pub mod cache;
pub mod config;
pub mod database;
pub mod error;
pub mod event;
pub mod idempotency;
pub mod metrics;
pub mod poll;
pub mod publisher;
pub mod queue;
pub mod sdk;
pub mod sync_config;
#[cfg(feature = "testing")]
pub mod testing;
pub mod vault;

pub use cache::{CacheKey, CachedEntry, DynamoCache, VersionedCache};
pub use bootstrap::{Aws, StartupError, init_logging, serve, start};
pub use config::{ConfigError, Env, EventBus};
pub use event::{EventBridgeEvent, HandlerError};
pub use error::AwsError;
pub use idempotency::{DynamoIdempotencyStore, IdempotencyError, IdempotencyStore, Idempotent, RunError};
pub use metrics::emit_metric;
pub use poll::{PollStarter, StepFunctionsPollStarter};
pub use publisher::EventBridgePublisher;
pub use queue::SqsJobQueue;
pub use sync_config::{SyncSecrets, SyncSecretsError};
pub use vault::KmsTokenVault;
