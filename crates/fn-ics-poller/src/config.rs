//! The poller's configuration, read once at cold start.

use cal_aws::{ConfigError, Env};
use cal_core::ics_in::ImportLimits;

use crate::FetchPolicy;

/// Configuration from the environment; a bad value is refused, naming the
/// variable.
pub struct Config {
    /// `DB_POOL_SIZE`.
    pub pool_size: usize,
    /// The download policy; its byte limit is `MAX_FEED_BYTES`.
    pub policy: FetchPolicy,
    /// The parser's limits: the same bytes, and `MAX_FEED_EVENTS`.
    pub limits: ImportLimits,
}

impl Config {
    /// Reads it. One byte limit serves the download and the parser.
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let (policy, limits) = (FetchPolicy::production(), ImportLimits::default());
        let max_bytes = env.in_range("MAX_FEED_BYTES", policy.max_bytes, 1..=usize::MAX)?;
        let max_events = env.in_range("MAX_FEED_EVENTS", limits.max_events, 1..=usize::MAX)?;
        Ok(Config {
            pool_size: cal_aws::config::db_pool_size(env)?,
            policy: FetchPolicy { max_bytes, ..policy },
            limits: ImportLimits { max_bytes, max_events, ..limits },
        })
    }
}
