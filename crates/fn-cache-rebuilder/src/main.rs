//! `fn-cache-rebuilder`: an EventBridge rule on `cal.*` and `order.*`
//! events; rebuilds the near-term feasibility cache of the provider the
//! event is about. Config, pool and client are built once.

use cal_aws::handlers::{self, RebuildOptions};
use cal_aws::{DynamoCache, env_number, env_var};
use lambda_runtime::{Diagnostic, Error, LambdaEvent, service_fn};
use serde_json::Value;

/// Configuration from the environment, read once; a missing variable names itself.
struct Config {
    cache_table: String,
    cache_ttl_secs: i64,
    rebuild: RebuildOptions,
}

impl Config {
    fn from_env() -> Result<Config, cal_aws::ConfigError> {
        Ok(Config {
            cache_table: env_var("FEASIBILITY_CACHE_TABLE")?,
            cache_ttl_secs: env_number("FEASIBILITY_CACHE_TTL_SECS", 300)?.clamp(1, 86_400),
            rebuild: RebuildOptions { days: env_number("CACHE_NEAR_TERM_DAYS", 14)?.clamp(1, 60) as u32 },
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
    let cache = DynamoCache::new(aws_sdk_dynamodb::Client::new(&sdk), config.cache_table, config.cache_ttl_secs);
    let (pool, cache, opts) = (&pool, &cache, config.rebuild);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let (now, _) = handlers::system_now();
        handlers::rebuild_cache(pool, cache, opts, now, event.payload)
            .await
            .map_err(|e| Diagnostic { error_type: e.error_type().as_str().into(), error_message: e.to_string() })
    }))
    .await
}
