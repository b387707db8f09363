//! `fn-feed`: the personal ICS feed behind a Lambda Function URL. Reads its
//! config and builds the pool once at cold start; each invocation borrows them.

use std::sync::Arc;

use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest;
use fn_feed::{Config, Deps, handle, system_clock};
use lambda_runtime::{Error, LambdaEvent, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    cal_aws::init_logging();
    // As text, so the error names the variable rather than an enum variant.
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let sdk = cal_aws::sdk::load().await;
    // DATABASE_URL, or the Aurora secret named by DATABASE_SECRET_ARN.
    let pool = cal_aws::database::pool(&sdk, config.pool_size).await?;
    let deps = Deps { pool, feed: config.feed, clock: Arc::new(system_clock) };
    let deps = &deps;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<LambdaFunctionUrlRequest>| async move {
        Ok::<_, Error>(handle(deps, event.payload).await)
    }))
    .await
}
