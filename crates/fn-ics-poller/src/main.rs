//! `fn-ics-poller`: the ICS poll state machine's task function. Reads its
//! config, builds the pool and the HTTP client once at cold start; each
//! invocation borrows them.

use std::sync::Arc;

use cal_core::ics_in::ImportLimits;
use fn_ics_poller::{Deps, FetchPolicy, Fetcher, handle, system_clock};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

/// Configuration from the environment, read once; a missing or unusable
/// variable names itself (its value is never printed: DATABASE_URL may hold
/// a password).
struct Config {
    pool_size: usize,
    max_feed_bytes: usize,
    max_feed_events: usize,
}

impl Config {
    fn from_env() -> Result<Config, String> {
        let number = |name: &str, default: usize| -> Result<usize, String> {
            std::env::var(name).map_or(Ok(default), |v| v.parse().map_err(|_| format!("{name} is not a whole number")))
        };
        let defaults = ImportLimits::default();
        Ok(Config {
            pool_size: number("DB_POOL_SIZE", 2)?.clamp(1, 50),
            max_feed_bytes: number("MAX_FEED_BYTES", FetchPolicy::production().max_bytes)?.max(1),
            max_feed_events: number("MAX_FEED_EVENTS", defaults.max_events)?.max(1),
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    cal_aws::init_logging();
    // As text, so the error names the variable rather than an enum variant.
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let sdk = cal_aws::sdk::load().await;
    // DATABASE_URL, or the Aurora secret named by DATABASE_SECRET_ARN.
    let pool = cal_aws::database::pool(&sdk, config.pool_size).await?;
    // One byte limit for the download and for the parser.
    let policy = FetchPolicy { max_bytes: config.max_feed_bytes, ..FetchPolicy::production() };
    let limits = ImportLimits {
        max_bytes: config.max_feed_bytes,
        max_events: config.max_feed_events,
        ..ImportLimits::default()
    };
    let deps = Deps { pool, fetcher: Fetcher::new(policy)?, limits, clock: Arc::new(system_clock) };
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move { handle(deps, event.payload).await }))
        .await
}
