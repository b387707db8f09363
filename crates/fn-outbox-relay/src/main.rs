//! `fn-outbox-relay`: on an EventBridge schedule, publishes `cal.outbox` to
//! the event bus (at least once, in order per user). Config, pool and client
//! are built once at cold start; each invocation borrows them.

// The relay's futures (puts inside a transaction inside a batch loop) nest
// deeper than the default limit when laid out as one async main.
#![recursion_limit = "256"]


use cal_aws::{EventBridgePublisher, handlers};
use cal_store::RelayOptions;
use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use serde_json::Value;

/// Configuration from the environment, read once; a missing variable names itself.
struct Config {
    event_bus: String,
    event_source: String,
    relay: RelayOptions,
}

impl Config {
    fn from_env() -> Result<Config, cal_aws::ConfigError> {
        let (event_bus, event_source) = cal_aws::config::event_bus()?;
        Ok(Config { event_bus, event_source, relay: cal_aws::config::relay_options()? })
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
    let (pool, publisher, opts) = (&pool, &publisher, config.relay);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        handlers::relay(pool, publisher, opts, event.payload)
            .await
            .map_err(|e| Diagnostic { error_type: e.error_type().as_str().into(), error_message: e.to_string() })
    }))
    .await
}
