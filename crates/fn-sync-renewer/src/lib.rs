//! `fn-sync-renewer`: on an EventBridge schedule (every 15 minutes), queues
//! the sync's periodic work; the worker does it.
//!
//! * A **Watch** job for every blocking calendar whose channel /
//!   subscription is missing or expires within the renewal margin (a day by
//!   default: four schedules' worth of retries before anything lapses).
//! * A **Pull** job for every blocking calendar whose periodic sync is due:
//!   the net under notifications that never came.
//!
//! Jobs are state-based, so one queued twice (this run and a notification,
//! or two runs while the worker is behind) costs one incremental read.

#![forbid(unsafe_code)]

use cal_aws::{ConfigError, Env, HandlerError};
use cal_core::Instant;
use cal_store::sync;
use cal_sync::jobs::{JobQueue, SyncJob};
use deadpool_postgres::Pool;
use serde_json::{Value, json};

/// Configuration from the environment, read once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `SYNC_QUEUE_URL`.
    pub queue_url: String,
    /// `SYNC_RENEW_MARGIN_SECS` (default 86,400, 1 hour to 3 days): renew a
    /// watch that expires within this.
    pub renew_margin_secs: i64,
    /// `SYNC_RENEW_BATCH` (default 500, 1 to 10,000): most jobs of each kind per run.
    pub batch: i64,
}

impl Config {
    /// Reads it; a bad value is refused, naming the variable.
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        Ok(Config {
            queue_url: cal_aws::sync_config::sync_queue_url(env)?,
            renew_margin_secs: env.in_range("SYNC_RENEW_MARGIN_SECS", 86_400, 3_600..=3 * 86_400)?,
            batch: env.in_range("SYNC_RENEW_BATCH", 500, 1..=10_000)?,
        })
    }
}

/// Queues the due renewals and pulls at `now`; answers their counts.
pub async fn renew(pool: &Pool, queue: &impl JobQueue, config: &Config, now: Instant, event: Value) -> Result<Value, HandlerError> {
    let event = cal_aws::event::decode(event)?;
    let db = cal_aws::event::connection(pool).await?;
    let watches = sync::watches_due(&**db, now.plus_secs(config.renew_margin_secs), config.batch).await?;
    let pulls = sync::syncs_due(&**db, now, config.batch).await?;
    drop(db);
    for c in &watches {
        queue.send(&SyncJob::Watch { connection_id: c.connection_id.clone(), calendar_id: c.calendar_id.clone() }).await?;
    }
    for c in &pulls {
        queue.send(&SyncJob::Pull { connection_id: c.connection_id.clone(), calendar_id: c.calendar_id.clone() }).await?;
    }
    tracing::info!(event_id = %event.id, watches = watches.len(), pulls = pulls.len(), "sync work queued");
    Ok(json!({ "watches": watches.len(), "pulls": pulls.len() }))
}
