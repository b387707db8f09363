//! `fn-api`: the AppSync direct Lambda resolver. Config, pool and cache are
//! built once at cold start; each invocation borrows them.

use std::sync::Arc;

use cal_aws::StartupError;
use fn_api::sync::SyncDeps;
use fn_api::{Config, Deps, respond, system_clock};

#[tokio::main]
async fn main() -> Result<(), StartupError> {
    let (env, config, aws) = cal_aws::start(Config::from_env).await?;
    let pool = aws.pool(&env, config.pool_size).await?;
    let cache = config.cache_table.as_deref().map(|table| Arc::new(aws.cache(table, config.cache_ttl_secs)));
    let polls = config.poll_state_machine_arn.as_deref().map(|arn| aws.poll_starter(arn));
    let sync = match &config.sync {
        None => None,
        Some(s) => {
            let secrets = aws.sync_secrets(&env).await?;
            let (vault, queue) = (Arc::new(aws.token_vault(&s.kms_key_id)), Arc::new(aws.job_queue(&s.queue_url)));
            Some(Arc::new(SyncDeps { services: secrets.services(&s.callback_url), state_key: secrets.state_key, vault, queue }))
        }
    };
    let (limits, services, clock) = (config.limits, config.services, Arc::new(system_clock));
    let deps = Deps { pool, feed_base_url: config.feed_base_url, limits, services, clock, cache, polls, calendars: Default::default(), sync };
    cal_aws::serve(|event, _| respond(&deps, event)).await
}
