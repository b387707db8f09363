//! `fn-sync-renewer`: see the library. Config, pool and queue are built
//! once at cold start; each invocation borrows them.

use cal_aws::StartupError;
use cal_aws::event::system_now;
use fn_sync_renewer::{Config, renew};

#[tokio::main]
async fn main() -> Result<(), StartupError> {
    let (env, config, aws) = cal_aws::start(Config::from_env).await?;
    let (pool, queue) = (aws.pool(&env, 1).await?, aws.job_queue(&config.queue_url));
    cal_aws::serve(|event, _| renew(&pool, &queue, &config, system_now().0, event)).await
}
