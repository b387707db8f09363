//! `fn-order-events`: the order service's `order.booked`,
//! `order.rescheduled` and `order.cancelled` (EventBridge) convert, move or
//! cancel; redelivery is harmless. Config, pool and clients are built once.

use std::time::Duration;

use cal_aws::handlers::{self, OrderOptions};
use cal_aws::{DynamoIdempotencyStore, env_number, env_var};
use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use serde_json::Value;

/// Configuration from the environment, read once; a missing variable names itself.
struct Config {
    idempotency_table: String,
    order: OrderOptions,
}

impl Config {
    fn from_env() -> Result<Config, cal_aws::ConfigError> {
        Ok(Config {
            idempotency_table: env_var("IDEMPOTENCY_TABLE")?,
            order: OrderOptions {
                idempotency_ttl: Duration::from_secs(env_number("IDEMPOTENCY_TTL_SECS", 3600)?.clamp(60, 7 * 86_400) as u64),
            },
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
    let store = DynamoIdempotencyStore::new(aws_sdk_dynamodb::Client::new(&sdk), config.idempotency_table);
    let (pool, store, opts) = (&pool, &store, config.order);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let (now, now_ms) = handlers::system_now();
        // The context's deadline bounds how long our in-progress record holds.
        let remaining = Duration::from_millis(event.context.deadline.saturating_sub(now_ms as u64));
        handlers::order_event(pool, store, opts, now, now_ms, remaining, event.payload)
            .await
            .map_err(|e| Diagnostic { error_type: e.error_type().as_str().into(), error_message: e.to_string() })
    }))
    .await
}
