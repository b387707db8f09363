//! Reading a Lambda's configuration from the environment, once, at cold start.

/// A configuration variable is missing or unusable. The value is never part
/// of the message (it may be a secret).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not set (or not valid Unicode).
    #[error("{0} is not set")]
    Missing(String),
    /// Set but not a whole number.
    #[error("{0} is not a whole number")]
    NotANumber(String),
}

/// The value of `name`, which must be set.
pub fn env_var(name: &str) -> Result<String, ConfigError> {
    std::env::var(name).map_err(|_| ConfigError::Missing(name.to_owned()))
}

/// The whole number in `name`, or `default` when unset.
pub fn env_number(name: &str, default: i64) -> Result<i64, ConfigError> {
    std::env::var(name).map_or(Ok(default), |v| v.trim().parse().map_err(|_| ConfigError::NotANumber(name.to_owned())))
}

/// How a function that publishes the outbox relays it: `RELAY_BATCH`,
/// `RELAY_MAX_BATCHES`, `RELAY_ATTEMPTS`, `RELAY_BACKOFF_MS`. One reader, so
/// the relay and the sweeper (which relays after sweeping) behave alike.
pub fn relay_options() -> Result<cal_store::RelayOptions, ConfigError> {
    Ok(cal_store::RelayOptions {
        batch: env_number("RELAY_BATCH", 100)?.clamp(1, 1000),
        max_batches: env_number("RELAY_MAX_BATCHES", 20)?.clamp(1, 1000) as usize,
        attempts: env_number("RELAY_ATTEMPTS", 3)?.clamp(1, 10) as u32,
        backoff: std::time::Duration::from_millis(env_number("RELAY_BACKOFF_MS", 100)?.clamp(0, 10_000) as u64),
    })
}

/// The bus events are published to (`EVENT_BUS_NAME`, required) and their
/// source (`EVENT_SOURCE`, default `cal`).
pub fn event_bus() -> Result<(String, String), ConfigError> {
    Ok((env_var("EVENT_BUS_NAME")?, std::env::var("EVENT_SOURCE").unwrap_or_else(|_| "cal".into())))
}
