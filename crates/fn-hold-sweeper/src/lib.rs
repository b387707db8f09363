//! `fn-hold-sweeper`: on an EventBridge schedule, expires holds whose time
//! ran out (bounded batches), then relays the outbox as `fn-outbox-relay`
//! does.

#![forbid(unsafe_code)]

use cal_aws::{ConfigError, Env, EventBus, HandlerError};
use cal_core::Instant;
use cal_store::{EventPublisher, RelayOptions};
use deadpool_postgres::Pool;
use serde_json::{Value, json};

/// Configuration from the environment, read once.
pub struct Config {
    /// `EVENT_BUS_NAME`, `EVENT_SOURCE`.
    pub bus: EventBus,
    /// `SWEEP_BATCH` (default 200, 1 to 5000), `SWEEP_MAX_BATCHES` (10, 1 to 1000).
    pub sweep: SweepOptions,
    /// `RELAY_*`, as fn-outbox-relay reads them.
    pub relay: RelayOptions,
}

impl Config {
    /// Reads it; a bad value is refused, naming the variable.
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        Ok(Config {
            bus: EventBus::from_env(env)?,
            sweep: SweepOptions {
                batch: env.in_range("SWEEP_BATCH", 200, 1..=5000)?,
                max_batches: env.in_range("SWEEP_MAX_BATCHES", 10, 1..=1000)?,
            },
            relay: cal_aws::config::relay_options(env)?,
        })
    }
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
/// `fn_outbox_relay::relay` does: a failing bus fails the invocation, parked rows are
/// counted).
pub async fn sweep(
    pool: &Pool,
    publisher: &impl EventPublisher,
    sweep: SweepOptions,
    relay: RelayOptions,
    now: Instant,
    event: Value,
) -> Result<Value, HandlerError> {
    let event = cal_aws::event::decode(event)?;
    let mut db = cal_aws::event::connection(pool).await?;
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
    let report = fn_outbox_relay::relay_and_count(&mut db, publisher, relay, "fn-hold-sweeper").await?;
    tracing::info!(event_id = %event.id, ?report, "outbox relayed");
    Ok(json!({ "swept": swept, "relay": report }))
}
