//! `fn-sync-callback`: see the library. Secrets, clients, pool, vault and
//! queue are built once at cold start; each invocation borrows them.

use std::convert::Infallible;
use std::sync::Arc;

use cal_aws::StartupError;
use cal_aws::event::system_now;
use fn_sync_callback::{Config, Deps, handle};

#[tokio::main]
async fn main() -> Result<(), StartupError> {
    let (env, config, aws) = cal_aws::start(Config::from_env).await?;
    let secrets = aws.sync_secrets(&env).await?;
    let deps = Deps {
        pool: aws.pool(&env, 1).await?,
        services: secrets.services(""),
        vault: aws.token_vault(&config.kms_key_id),
        queue: aws.job_queue(&config.queue_url),
        state_key: secrets.state_key,
        web_app_url: config.web_app_url,
        clock: Arc::new(|| system_now().0),
    };
    // Every request gets an HTTP answer: never a function error.
    cal_aws::serve(|request, _| async { Ok::<_, Infallible>(handle(&deps, request).await) }).await
}
