//! `fn-cache-rebuilder`: see the library. Config, pool and cache are built
//! once at cold start; each invocation borrows them.

use cal_aws::event::system_now;
use cal_aws::StartupError;
use fn_cache_rebuilder::{Config, rebuild_cache};

#[tokio::main]
async fn main() -> Result<(), StartupError> {
    let (env, config, aws) = cal_aws::start(Config::from_env).await?;
    let (pool, cache) = (aws.pool(&env, 1).await?, aws.cache(&config.cache_table, config.cache_ttl_secs));
    cal_aws::serve(|event, _| rebuild_cache(&pool, &cache, config.rebuild, system_now().0, event)).await
}
