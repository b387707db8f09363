//! The resolver's configuration, read once at cold start.

use cal_aws::{ConfigError, Env};

use crate::{Limits, ServiceRoles};

/// Configuration from the environment; a bad value is refused, naming the
/// variable.
pub struct Config {
    /// `FEED_BASE_URL` (required): base of personal feed URLs.
    pub feed_base_url: String,
    /// `DB_POOL_SIZE`.
    pub pool_size: usize,
    /// `HOLDS_PER_CUSTOMER_PER_HOUR` (default 20, 1 to 10000).
    pub limits: Limits,
    /// `SERVICE_ROLE_ARNS`: unset or empty, no IAM caller is trusted.
    pub services: ServiceRoles,
    /// `FEASIBILITY_CACHE_TABLE`: unset or empty, every query asks the
    /// engine.
    pub cache_table: Option<String>,
    /// `FEASIBILITY_CACHE_TTL_SECS`, as fn-cache-rebuilder reads it.
    pub cache_ttl_secs: i64,
    /// `POLL_STATE_MACHINE_ARN`: the ICS poll state machine `resyncIcs`
    /// starts; unset or empty (local runs), the schedule polls.
    pub poll_state_machine_arn: Option<String>,
    /// Two-way sync, when `SYNC_SECRETS_ARN` is set: then
    /// `SYNC_CALLBACK_URL`, `SYNC_QUEUE_URL` and `TOKEN_KMS_KEY_ID` are
    /// required too.
    pub sync: Option<SyncConfig>,
}

/// fn-api's part of two-way sync's configuration.
pub struct SyncConfig {
    /// `SYNC_CALLBACK_URL`: the OAuth redirect URI (fn-sync-callback's URL).
    pub callback_url: String,
    /// `SYNC_QUEUE_URL`.
    pub queue_url: String,
    /// `TOKEN_KMS_KEY_ID`.
    pub kms_key_id: String,
}

impl Config {
    /// Reads it.
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let roles = |list: &str| {
            ServiceRoles::parse(list).map_err(|e| format!("a comma-separated list of IAM role ARNs: {e}"))
        };
        let per_hour = Limits::default().holds_per_customer_per_hour;
        Ok(Config {
            feed_base_url: env.required("FEED_BASE_URL")?,
            pool_size: cal_aws::config::db_pool_size(env)?,
            limits: Limits { holds_per_customer_per_hour: env.in_range("HOLDS_PER_CUSTOMER_PER_HOUR", per_hour, 1..=10_000)? },
            services: env.parse_with("SERVICE_ROLE_ARNS", ServiceRoles::default(), roles)?,
            cache_table: env.maybe("FEASIBILITY_CACHE_TABLE")?,
            cache_ttl_secs: cal_aws::config::feasibility_cache_ttl_secs(env)?,
            poll_state_machine_arn: env.maybe("POLL_STATE_MACHINE_ARN")?,
            sync: match env.text(cal_aws::sync_config::SYNC_SECRETS_ARN) {
                None => None,
                Some(_) => Some(SyncConfig {
                    callback_url: env.required("SYNC_CALLBACK_URL")?,
                    queue_url: cal_aws::sync_config::sync_queue_url(env)?,
                    kms_key_id: cal_aws::sync_config::token_kms_key_id(env)?,
                }),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cache_ttl_default_and_refusals_that_name_the_variable() {
        let base = [("FEED_BASE_URL", "https://feeds.example.com/feeds/")];
        let c = Config::from_env(&Env::from_pairs(&base)).unwrap();
        assert_eq!(c.cache_ttl_secs, cal_aws::config::FEASIBILITY_CACHE_TTL_SECS);
        assert_eq!((c.pool_size, c.limits.holds_per_customer_per_hour, c.cache_table), (2, 20, None));
        let refused = |name: &'static str, value: &'static str| {
            let mut vars = base.to_vec();
            vars.push((name, value));
            Config::from_env(&Env::from_pairs(&vars)).err().expect("refused").to_string()
        };
        // Silently ignored before: now the cold start stops and says why.
        assert_eq!(refused("FEASIBILITY_CACHE_TTL_SECS", "1m"), "FEASIBILITY_CACHE_TTL_SECS must be a whole number from 1 to 86400");
        assert_eq!(refused("HOLDS_PER_CUSTOMER_PER_HOUR", "0"), "HOLDS_PER_CUSTOMER_PER_HOUR must be a whole number from 1 to 10000");
        assert!(refused("SERVICE_ROLE_ARNS", "arn:aws:s3:::bucket").starts_with("SERVICE_ROLE_ARNS must be a comma-separated list"));
        let e = Config::from_env(&Env::from_pairs(&[])).err().unwrap();
        assert_eq!(e.to_string(), "FEED_BASE_URL is not set");
    }
}
