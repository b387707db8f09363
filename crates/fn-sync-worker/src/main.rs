//! `fn-sync-worker`: see the library. Config, secrets, clients, pool, vault
//! and queue are built once at cold start; each invocation borrows them.

use std::convert::Infallible;
use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use cal_aws::StartupError;
use cal_aws::event::system_now;
use fn_sync_worker::{Config, Deps};

#[tokio::main]
async fn main() -> Result<(), StartupError> {
    let (env, config, aws) = cal_aws::start(Config::from_env).await?;
    let services = aws.sync_secrets(&env).await?.services("");
    let (pool, vault, queue) = (aws.pool(&env, config.pool_size).await?, aws.token_vault(&config.kms_key_id), aws.job_queue(&config.queue_url));
    let deps = Deps::new(pool, services, vault, queue, config.receivers, config.settings, Arc::new(|| system_now().0));
    // Failed records are reported per item; the invocation itself succeeds.
    cal_aws::serve(|event: SqsEvent, _| async { Ok::<_, Infallible>(deps.handle(event).await) }).await
}
