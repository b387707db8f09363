//! `fn-api`: the AppSync direct Lambda resolver. Reads its config and builds
//! the pool once at cold start; each invocation borrows them.

use std::sync::Arc;

use fn_api::{Deps, Limits, ServiceRoles, respond, system_clock};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

/// Configuration from the environment, read once; a missing variable names itself.
struct Config {
    feed_base_url: String,
    pool_size: usize,
    holds_per_customer_per_hour: i64,
    services: ServiceRoles,
}

impl Config {
    fn from_env() -> Result<Config, String> {
        let var = |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set"));
        let number = |name: &str, default: i64| -> Result<i64, String> {
            std::env::var(name).map_or(Ok(default), |v| v.parse().map_err(|_| format!("{name} is not a whole number")))
        };
        Ok(Config {
            feed_base_url: var("FEED_BASE_URL")?,
            pool_size: number("DB_POOL_SIZE", 2)?.clamp(1, 50) as usize,
            holds_per_customer_per_hour: number("HOLDS_PER_CUSTOMER_PER_HOUR", Limits::default().holds_per_customer_per_hour)?,
            // Unset or empty: no IAM caller is trusted.
            services: ServiceRoles::parse(&std::env::var("SERVICE_ROLE_ARNS").unwrap_or_default())
                .map_err(|e| format!("SERVICE_ROLE_ARNS: {e}"))?,
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
    // The feasibility cache is optional: without a table, every query asks the engine.
    let cache = match std::env::var("FEASIBILITY_CACHE_TABLE") {
        Ok(table) if !table.is_empty() => {
            let ttl = std::env::var("FEASIBILITY_CACHE_TTL_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
            Some(Arc::new(cal_aws::DynamoCache::new(aws_sdk_dynamodb::Client::new(&sdk), table, ttl)))
        }
        _ => None,
    };
    let deps = Deps {
        pool,
        feed_base_url: config.feed_base_url,
        limits: Limits { holds_per_customer_per_hour: config.holds_per_customer_per_hour },
        services: config.services,
        clock: Arc::new(system_clock),
        cache,
        calendars: Default::default(),
    };
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move { respond(deps, event.payload).await })).await
}
