//! `fn-hold-sweeper`: on an EventBridge schedule, expires holds whose time
//! ran out (bounded batches), then relays the outbox. Config, pool and client
//! are built once at cold start.

// The relay's futures (puts inside a transaction inside a batch loop) nest
// deeper than the default limit when laid out as one async main.
#![recursion_limit = "256"]


use cal_aws::handlers::{self, SweepOptions};
use cal_aws::{EventBridgePublisher, env_number};
use cal_store::RelayOptions;
use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use serde_json::Value;

/// Configuration from the environment, read once; a missing variable names itself.
struct Config {
    event_bus: String,
    event_source: String,
    sweep: SweepOptions,
    relay: RelayOptions,
}

impl Config {
    fn from_env() -> Result<Config, cal_aws::ConfigError> {
        let (event_bus, event_source) = cal_aws::config::event_bus()?;
        Ok(Config {
            event_bus,
            event_source,
            sweep: SweepOptions {
                batch: env_number("SWEEP_BATCH", 200)?.clamp(1, 5000),
                max_batches: env_number("SWEEP_MAX_BATCHES", 10)?.clamp(1, 1000) as usize,
            },
            relay: cal_aws::config::relay_options()?,
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
    let pool = cal_aws::database::pool(&sdk, 1).await?;
    let publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&sdk), config.event_bus, config.event_source);
    let (pool, publisher, sweep, relay) = (&pool, &publisher, config.sweep, config.relay);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let (now, _) = handlers::system_now();
        handlers::sweep(pool, publisher, sweep, relay, now, event.payload)
            .await
            .map_err(|e| Diagnostic { error_type: e.error_type().as_str().into(), error_message: e.to_string() })
    }))
    .await
}
