//! `fn-ics-poller`: the ICS poll state machine's task function. Config, pool
//! and HTTP client are built once at cold start; each invocation borrows them.

use std::sync::Arc;

use cal_aws::StartupError;
use fn_ics_poller::{Config, Deps, Fetcher, handle, system_clock};

#[tokio::main]
async fn main() -> Result<(), StartupError> {
    let (env, config, aws) = cal_aws::start(Config::from_env).await?;
    let pool = aws.pool(&env, config.pool_size).await?;
    let deps = Deps { pool, fetcher: Fetcher::new(config.policy)?, limits: config.limits, clock: Arc::new(system_clock) };
    cal_aws::serve(|task, _| handle(&deps, task)).await
}
