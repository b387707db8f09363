//! `fn-outbox-relay`: on an EventBridge schedule, publishes `cal.outbox` to
//! the event bus (at least once, in order per user).

#![forbid(unsafe_code)]

use cal_aws::{ConfigError, Env, EventBus, HandlerError};
use cal_store::{EventPublisher, RelayOptions, RelayReport};
use deadpool_postgres::Pool;
use serde_json::Value;

/// Configuration from the environment, read once.
pub struct Config {
    /// `EVENT_BUS_NAME`, `EVENT_SOURCE`.
    pub bus: EventBus,
    /// `RELAY_*`.
    pub relay: RelayOptions,
}

impl Config {
    /// Reads it; a bad value is refused, naming the variable.
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        Ok(Config { bus: EventBus::from_env(env)?, relay: cal_aws::config::relay_options(env)? })
    }
}

/// The custom metric counting outbox rows parked by a run (alarmed).
pub const OUTBOX_PARKED: &str = "OutboxParked";

/// Relays the outbox and emits [`OUTBOX_PARKED`] for `function`, also when
/// the run fails (rows parked before the failure stay parked). A failing
/// run is an error of the invocation, so the function's Errors alarm sees
/// a failing bus.
pub async fn relay_and_count(
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
    cal_aws::emit_metric(&cal_aws::metrics::function_name(function), OUTBOX_PARKED, report.parked as u64);
    if let Err(e) = &result {
        tracing::error!(error = %e, report = ?e.report(), "outbox relay failed");
    }
    Ok(result?)
}

/// `fn-outbox-relay`: on its schedule, publish the outbox.
pub async fn relay(pool: &Pool, publisher: &impl EventPublisher, opts: RelayOptions, event: Value) -> Result<Value, HandlerError> {
    let event = cal_aws::event::decode(event)?;
    let mut db = cal_aws::event::connection(pool).await?;
    let report = relay_and_count(&mut db, publisher, opts, "fn-outbox-relay").await?;
    tracing::info!(event_id = %event.id, ?report, "outbox relayed");
    Ok(serde_json::to_value(report).expect("reports serialize"))
}
