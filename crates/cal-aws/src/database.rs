//! The database connection of a function, resolved once at cold start.

use aws_config::SdkConfig;
use deadpool_postgres::Pool;
use serde::Deserialize;

use crate::config::Env;

/// Why no pool could be built. Messages name the variable or the secret's
/// field, never a value (they may be credentials).
#[derive(Debug, thiserror::Error)]
pub enum DatabaseConfigError {
    #[error("set DATABASE_URL or DATABASE_SECRET_ARN")]
    Missing,
    #[error("the secret in DATABASE_SECRET_ARN could not be read")]
    Fetch(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the secret in DATABASE_SECRET_ARN is not the expected JSON: {0}")]
    Shape(String),
    #[error(transparent)]
    Store(#[from] cal_store::StoreError),
}

/// The fields of an RDS/Aurora secret (the shape Secrets Manager's RDS
/// integration writes).
#[derive(Deserialize)]
struct AuroraSecret {
    host: String,
    #[serde(default = "default_port")]
    port: u16,
    #[serde(default = "default_dbname")]
    dbname: String,
    username: String,
    password: String,
}

fn default_port() -> u16 {
    5432
}

fn default_dbname() -> String {
    "postgres".into()
}

/// A pool for this function: `DATABASE_URL` when set (local runs, tests),
/// else the Aurora secret named by `DATABASE_SECRET_ARN`, fetched once.
///
/// The connection is built from the secret's fields rather than a URL, so
/// passwords need no escaping, and the password never sits in the
/// function's environment (where `GetFunctionConfiguration` would show it).
pub async fn pool(sdk: &SdkConfig, env: &Env, max_size: usize) -> Result<Pool, DatabaseConfigError> {
    if let Some(url) = env.text("DATABASE_URL") {
        return Ok(cal_store::pool_from_url(url, max_size)?);
    }
    let arn = env.text("DATABASE_SECRET_ARN").ok_or(DatabaseConfigError::Missing)?;
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let secret = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| DatabaseConfigError::Fetch(Box::new(e)))?;
    let text = secret.secret_string().ok_or_else(|| DatabaseConfigError::Shape("no SecretString".into()))?;
    let s: AuroraSecret = serde_json::from_str(text)
        // serde's message names the missing field, never a value.
        .map_err(|e| DatabaseConfigError::Shape(e.to_string().split(" at line").next().unwrap_or_default().to_owned()))?;
    let mut config = tokio_postgres::Config::new();
    config.host(&s.host).port(s.port).dbname(&s.dbname).user(&s.username).password(s.password.as_bytes());
    config.application_name("cal-suite");
    // Aurora always offers TLS (and with rds.force_ssl insists on it).
    config.ssl_mode(tokio_postgres::config::SslMode::Require);
    Ok(cal_store::pool_from_config(config, max_size)?)
}
