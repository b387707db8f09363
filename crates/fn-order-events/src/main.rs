//! `fn-order-events`: see the library. Built once at cold start: config,
//! pool, the idempotency store; each invocation borrows them.

use std::time::Duration;

use cal_aws::event::system_now;
use cal_aws::StartupError;
use fn_order_events::{Config, order_event};

#[tokio::main]
async fn main() -> Result<(), StartupError> {
    let (env, config, aws) = cal_aws::start(Config::from_env).await?;
    let (pool, store) = (aws.pool(&env, 1).await?, aws.idempotency(&config.idempotency_table));
    cal_aws::serve(|event, context| {
        let (now, now_ms) = system_now();
        // The context's deadline bounds how long our in-progress record holds.
        let remaining = Duration::from_millis(context.deadline.saturating_sub(now_ms as u64));
        order_event(&pool, &store, config.order, now, now_ms, remaining, event)
    })
    .await
}
