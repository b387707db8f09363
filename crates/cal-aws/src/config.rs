//! The one reader of a Lambda's configuration: the environment, read once at
//! cold start into each function's typed `Config`.
//!
//! A value that is set but unusable (not a number, out of range) is
//! *refused*, naming the variable and what it must be: a typo in a template
//! should stop the cold start, not quietly become a default or a clamp that
//! nobody asked for. The refusal never repeats the value: it may be a secret
//! (`DATABASE_URL` holds a password).
//!
//! An empty value counts as unset: CloudFormation cannot drop a variable
//! conditionally, so `""` is how a template says "not configured".

use std::collections::HashMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

/// How long a feasibility cache entry is served, seconds, unless
/// `FEASIBILITY_CACHE_TTL_SECS` says otherwise. One default for the
/// function that reads through the cache (fn-api) and the one that warms it
/// (fn-cache-rebuilder). The provider version already keeps changes out of
/// stale entries; the TTL only bounds how far the clock-dependent parts
/// (lead time, booking window) may lag, and a hold re-checks them anyway.
pub const FEASIBILITY_CACHE_TTL_SECS: i64 = 300;
/// The range `FEASIBILITY_CACHE_TTL_SECS` may take.
pub const FEASIBILITY_CACHE_TTL_RANGE: RangeInclusive<i64> = 1..=86_400;

/// A configuration variable is missing or unusable. The message names the
/// variable and what it must be, never the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Required and not set (or empty, or not valid Unicode).
    #[error("{0} is not set")]
    Missing(String),
    /// Set to something unusable.
    #[error("{name} must be {expected}")]
    Invalid {
        /// The variable.
        name: String,
        /// What it must be, e.g. "a whole number from 1 to 50".
        expected: String,
    },
}

/// Where configuration comes from: the process environment, or (in tests) a
/// fixed set of variables.
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    /// The process environment, as it is now (variables that are not valid
    /// Unicode are left out, so they read as unset).
    pub fn from_process() -> Env {
        Env { vars: std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect() }
    }

    /// Exactly these variables (tests).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Env {
        Env { vars: pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect() }
    }

    /// The raw text of `name`; unset and empty are both `None`.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// `name` read as `T`; refused when set but unreadable. `None` when unset.
    pub fn maybe<T: FromStr>(&self, name: &str) -> Result<Option<T>, ConfigError> {
        self.text(name)
            .map(|v| v.trim().parse().map_err(|_| invalid(name, kind::<T>().to_owned())))
            .transpose()
    }

    /// `name` read as `T`, which must be set.
    pub fn required<T: FromStr>(&self, name: &str) -> Result<T, ConfigError> {
        self.maybe(name)?.ok_or_else(|| ConfigError::Missing(name.to_owned()))
    }

    /// `name` read as `T`, or `default` when unset.
    pub fn optional<T: FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError> {
        Ok(self.maybe(name)?.unwrap_or(default))
    }

    /// The number in `name`, or `default` when unset; a value outside
    /// `range` is refused (never clamped).
    pub fn in_range<T>(&self, name: &str, default: T, range: RangeInclusive<T>) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + fmt::Display,
    {
        let expected = || format!("{} from {} to {}", kind::<T>(), range.start(), range.end());
        match self.text(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().ok().filter(|n| range.contains(n)).ok_or_else(|| invalid(name, expected())),
        }
    }

    /// `name` read by `parse`, or `default` when unset. `parse` explains a
    /// refusal as what the value must be ("a name without ;"); it is handed
    /// the value, so use it only for variables that hold no secret.
    pub fn parse_with<T>(&self, name: &str, default: T, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<T, ConfigError> {
        match self.text(name) {
            None => Ok(default),
            Some(v) => parse(v).map_err(|expected| invalid(name, expected)),
        }
    }

    /// Milliseconds in `name` (whole, within `range`) as a duration.
    pub fn millis(&self, name: &str, default: u64, range: RangeInclusive<u64>) -> Result<Duration, ConfigError> {
        Ok(Duration::from_millis(self.in_range(name, default, range)?))
    }

    /// Seconds in `name` (whole, within `range`) as a duration.
    pub fn secs(&self, name: &str, default: u64, range: RangeInclusive<u64>) -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(self.in_range(name, default, range)?))
    }
}

fn invalid(name: &str, expected: String) -> ConfigError {
    ConfigError::Invalid { name: name.to_owned(), expected }
}

/// What a value of `T` is called in a refusal.
fn kind<T>() -> &'static str {
    let t = std::any::type_name::<T>();
    if ["i8", "i16", "i32", "i64", "isize", "u8", "u16", "u32", "u64", "usize"].contains(&t) {
        "a whole number"
    } else if t == "bool" {
        "true or false"
    } else {
        "a value of the expected form"
    }
}

/// `DB_POOL_SIZE`: connections per instance of a function that serves
/// concurrent requests (default 2, 1 to 50). Functions that handle one
/// event at a time use one connection and do not read it.
pub fn db_pool_size(env: &Env) -> Result<usize, ConfigError> {
    env.in_range("DB_POOL_SIZE", 2, 1..=50)
}

/// `FEASIBILITY_CACHE_TTL_SECS` (default [`FEASIBILITY_CACHE_TTL_SECS`]).
pub fn feasibility_cache_ttl_secs(env: &Env) -> Result<i64, ConfigError> {
    env.in_range("FEASIBILITY_CACHE_TTL_SECS", FEASIBILITY_CACHE_TTL_SECS, FEASIBILITY_CACHE_TTL_RANGE)
}

/// How a function that publishes the outbox relays it: `RELAY_BATCH`,
/// `RELAY_MAX_BATCHES`, `RELAY_ATTEMPTS`, `RELAY_BACKOFF_MS`. One reader, so
/// the relay and the sweeper (which relays after sweeping) behave alike.
pub fn relay_options(env: &Env) -> Result<cal_store::RelayOptions, ConfigError> {
    Ok(cal_store::RelayOptions {
        batch: env.in_range("RELAY_BATCH", 100, 1..=1000)?,
        max_batches: env.in_range("RELAY_MAX_BATCHES", 20, 1..=1000)?,
        attempts: env.in_range("RELAY_ATTEMPTS", 3, 1..=10)?,
        backoff: env.millis("RELAY_BACKOFF_MS", 100, 0..=10_000)?,
    })
}

/// Where outbox events go: `EVENT_BUS_NAME` (required) as `EVENT_SOURCE`
/// (default `cal`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventBus {
    /// The bus's name or ARN.
    pub name: String,
    /// The events' `source`.
    pub source: String,
}

impl EventBus {
    /// From `EVENT_BUS_NAME` and `EVENT_SOURCE`.
    pub fn from_env(env: &Env) -> Result<EventBus, ConfigError> {
        Ok(EventBus { name: env.required("EVENT_BUS_NAME")?, source: env.optional("EVENT_SOURCE", "cal".to_owned())? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_number_is_refused_naming_the_variable() {
        let env = Env::from_pairs(&[("DB_POOL_SIZE", "two")]);
        assert_eq!(db_pool_size(&env).unwrap_err().to_string(), "DB_POOL_SIZE must be a whole number from 1 to 50");
        let env = Env::from_pairs(&[("RELAY_BATCH", "1e3")]);
        assert_eq!(relay_options(&env).unwrap_err().to_string(), "RELAY_BATCH must be a whole number from 1 to 1000");
    }

    #[test]
    fn out_of_range_is_refused_not_clamped() {
        for bad in ["0", "51", "-1"] {
            let env = Env::from_pairs(&[("DB_POOL_SIZE", bad)]);
            let err = db_pool_size(&env).unwrap_err();
            assert_eq!(err, ConfigError::Invalid { name: "DB_POOL_SIZE".into(), expected: "a whole number from 1 to 50".into() });
        }
        let env = Env::from_pairs(&[("FEASIBILITY_CACHE_TTL_SECS", "86401")]);
        assert_eq!(
            feasibility_cache_ttl_secs(&env).unwrap_err().to_string(),
            "FEASIBILITY_CACHE_TTL_SECS must be a whole number from 1 to 86400"
        );
        // The bounds themselves are fine; so is surrounding whitespace.
        assert_eq!(db_pool_size(&Env::from_pairs(&[("DB_POOL_SIZE", " 50 ")])).unwrap(), 50);
        assert_eq!(db_pool_size(&Env::from_pairs(&[("DB_POOL_SIZE", "1")])).unwrap(), 1);
    }

    #[test]
    fn unset_or_empty_takes_the_default() {
        assert_eq!(feasibility_cache_ttl_secs(&Env::from_pairs(&[])).unwrap(), FEASIBILITY_CACHE_TTL_SECS);
        assert_eq!(db_pool_size(&Env::from_pairs(&[("DB_POOL_SIZE", "")])).unwrap(), 2);
        let relay = relay_options(&Env::from_pairs(&[])).unwrap();
        assert_eq!((relay.batch, relay.max_batches, relay.attempts, relay.backoff), (100, 20, 3, Duration::from_millis(100)));
    }

    #[test]
    fn a_missing_required_variable_names_itself() {
        let err = EventBus::from_env(&Env::from_pairs(&[("EVENT_SOURCE", "x")])).unwrap_err();
        assert_eq!(err.to_string(), "EVENT_BUS_NAME is not set");
        // Empty is unset.
        let err = EventBus::from_env(&Env::from_pairs(&[("EVENT_BUS_NAME", "")])).unwrap_err();
        assert_eq!(err, ConfigError::Missing("EVENT_BUS_NAME".into()));
        let bus = EventBus::from_env(&Env::from_pairs(&[("EVENT_BUS_NAME", "cal-bus")])).unwrap();
        assert_eq!(bus, EventBus { name: "cal-bus".into(), source: "cal".into() });
    }

    #[test]
    fn a_refusal_never_echoes_the_value() {
        let secret = "postgres://app:hunter2@db.internal:5432/cal";
        let env = Env::from_pairs(&[("DATABASE_URL", secret)]);
        let err = env.required::<u16>("DATABASE_URL").unwrap_err();
        assert_eq!(err.to_string(), "DATABASE_URL must be a whole number");
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains("hunter2") && !text.contains("db.internal"), "{text}");
        }
        let err = env.in_range("DATABASE_URL", 1, 1..=2).unwrap_err();
        assert!(!format!("{err:?}").contains("hunter2"));
    }
}
