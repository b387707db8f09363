//! `fn-feed`: the personal ICS feed behind a Lambda Function URL. Config and
//! pool are built once at cold start; each invocation borrows them.

use std::convert::Infallible;
use std::sync::Arc;

use cal_aws::StartupError;
use fn_feed::{Config, Deps, handle, system_clock};

#[tokio::main]
async fn main() -> Result<(), StartupError> {
    let (env, config, aws) = cal_aws::start(Config::from_env).await?;
    let deps = Deps { pool: aws.pool(&env, config.pool_size).await?, feed: config.feed, clock: Arc::new(system_clock) };
    // Every request gets an HTTP answer (4xx/5xx included): never a function error.
    cal_aws::serve(|request, _| async { Ok::<_, Infallible>(handle(&deps, request).await) }).await
}
