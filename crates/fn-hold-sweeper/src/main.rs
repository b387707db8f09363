//! `fn-hold-sweeper`: see the library. Config, pool and publisher are built
//! once at cold start; each invocation borrows them.

// The relay's futures (puts inside a transaction inside a batch loop) nest
// deeper than the default limit when laid out as one async main.
#![recursion_limit = "256"]

use cal_aws::event::system_now;
use cal_aws::StartupError;
use fn_hold_sweeper::{Config, sweep};

#[tokio::main]
async fn main() -> Result<(), StartupError> {
    let (env, config, aws) = cal_aws::start(Config::from_env).await?;
    let (pool, publisher) = (aws.pool(&env, 1).await?, aws.publisher(&config.bus));
    cal_aws::serve(|event, _| sweep(&pool, &publisher, config.sweep, config.relay, system_now().0, event)).await
}
