//! `fn-sync-receiver`: see the library. The queue is built once at cold
//! start; the receiver has no database and no key.

use std::convert::Infallible;

use cal_aws::StartupError;
use fn_sync_receiver::{Deps, handle, service_from_env};

#[tokio::main]
async fn main() -> Result<(), StartupError> {
    let read = |env: &cal_aws::Env| Ok((service_from_env(env)?, cal_aws::sync_config::sync_queue_url(env)?));
    let (_, (service, queue_url), aws) = cal_aws::start(read).await?;
    let deps = Deps { queue: aws.job_queue(&queue_url), service };
    // Every request gets an HTTP answer: never a function error.
    cal_aws::serve(|request, _| async { Ok::<_, Infallible>(handle(&deps, request).await) }).await
}
