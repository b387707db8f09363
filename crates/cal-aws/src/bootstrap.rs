//! What every function's `main` does, once: logging, the AWS clients, the
//! database pool, then [`serve`] with the function's own handler. Each
//! `main.rs` reads as that list; everything it builds is borrowed by the
//! handler for the life of the process.

use std::fmt;
use std::future::Future;

use aws_config::SdkConfig;
use deadpool_postgres::Pool;
use lambda_runtime::{Context, Diagnostic, IntoFunctionResponse, LambdaEvent, service_fn};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::{ConfigError, Env, EventBus};

/// JSON log lines (CloudWatch) filtered by `RUST_LOG`: every function's first call.
pub fn init_logging() {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).without_time().json().init();
}

/// Why a function could not start (or its runtime loop ended). Its Debug,
/// which is what `main` returning it prints, is the error's message and
/// causes: "DB_POOL_SIZE must be ...", never an enum variant's fields.
pub struct StartupError(Box<dyn std::error::Error + Send + Sync>);

impl<E: std::error::Error + Send + Sync + 'static> From<E> for StartupError {
    fn from(e: E) -> Self {
        StartupError(Box::new(e))
    }
}

impl fmt::Debug for StartupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", cal_core::error::ErrorChain(&*self.0))
    }
}

/// Every cold start's first steps: logging, the environment, the function's
/// own typed configuration (`read`, which refuses a bad value naming the
/// variable) and the AWS side.
pub async fn start<C>(read: impl FnOnce(&Env) -> Result<C, ConfigError>) -> Result<(Env, C, Aws), StartupError> {
    init_logging();
    let env = Env::from_process();
    let config = read(&env)?;
    Ok((env, config, Aws::load().await))
}

/// The AWS side of a function: one SDK configuration per process, and the
/// clients and adapters built from it.
pub struct Aws {
    sdk: SdkConfig,
}

impl Aws {
    /// Loads the SDK configuration (region, credentials, `AWS_ENDPOINT_URL`).
    pub async fn load() -> Aws {
        Aws { sdk: crate::sdk::load().await }
    }

    /// The SDK configuration (for tests that build their own clients).
    pub fn sdk(&self) -> &SdkConfig {
        &self.sdk
    }

    /// The pool: `DATABASE_URL`, or the Aurora secret named by
    /// `DATABASE_SECRET_ARN` (fetched once, here).
    pub async fn pool(&self, env: &Env, max_size: usize) -> Result<Pool, crate::database::DatabaseConfigError> {
        crate::database::pool(&self.sdk, env, max_size).await
    }

    /// The versioned cache on `table`, its entries served for `ttl_secs`.
    pub fn cache(&self, table: &str, ttl_secs: i64) -> crate::DynamoCache {
        crate::DynamoCache::new(aws_sdk_dynamodb::Client::new(&self.sdk), table, ttl_secs)
    }

    /// The idempotency records in `table`.
    pub fn idempotency(&self, table: &str) -> crate::DynamoIdempotencyStore {
        crate::DynamoIdempotencyStore::new(aws_sdk_dynamodb::Client::new(&self.sdk), table)
    }

    /// The outbox publisher onto `bus`.
    pub fn publisher(&self, bus: &EventBus) -> crate::EventBridgePublisher {
        crate::EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&self.sdk), &bus.name, &bus.source)
    }

    /// The starter of the ICS poll state machine `state_machine_arn`.
    pub fn poll_starter(&self, state_machine_arn: &str) -> crate::StepFunctionsPollStarter {
        crate::StepFunctionsPollStarter::new(aws_sdk_sfn::Client::new(&self.sdk), state_machine_arn)
    }

    /// The sync's token vault under the KMS key `key_id` (`TOKEN_KMS_KEY_ID`).
    pub fn token_vault(&self, key_id: &str) -> crate::KmsTokenVault {
        crate::KmsTokenVault::new(aws_sdk_kms::Client::new(&self.sdk), key_id)
    }

    /// The sync queue at `queue_url` (`SYNC_QUEUE_URL`).
    pub fn job_queue(&self, queue_url: &str) -> crate::SqsJobQueue {
        crate::SqsJobQueue::new(aws_sdk_sqs::Client::new(&self.sdk), queue_url)
    }

    /// The sync's OAuth clients and state key: the secret named by
    /// `SYNC_SECRETS_ARN` (fetched once, here).
    pub async fn sync_secrets(&self, env: &Env) -> Result<crate::SyncSecrets, crate::SyncSecretsError> {
        crate::SyncSecrets::load(&self.sdk, env).await
    }
}

/// Runs the Lambda loop: each event's payload and [`Context`] (deadline,
/// request id) go to `handler`. A failed invocation is reported as the
/// error's [`Diagnostic`] (`errorType` and a message fit for the caller), the
/// one mapping every function shares.
pub async fn serve<T, R, B, S, D, E2, Err, F, Fut>(handler: F) -> Result<(), StartupError>
where
    T: DeserializeOwned,
    F: Fn(T, Context) -> Fut,
    Fut: Future<Output = Result<R, Err>>,
    Err: Into<Diagnostic> + fmt::Debug,
    R: IntoFunctionResponse<B, S>,
    B: Serialize,
    S: futures_core::Stream<Item = Result<D, E2>> + Unpin + Send + 'static,
    D: Into<bytes::Bytes> + Send,
    E2: Into<lambda_runtime::Error> + Send + fmt::Debug,
{
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<T>| handler(event.payload, event.context)))
        .await
        .map_err(StartupError)
}
