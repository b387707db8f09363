//! `fn-cache-rebuilder`: an EventBridge rule on `cal.*` and `order.*`
//! events; rebuilds the near-term feasibility cache of the provider the
//! event is about.

#![forbid(unsafe_code)]

use cal_aws::cache::{CacheKey, VersionedCache};
use cal_aws::{ConfigError, Env, EventBridgeEvent, HandlerError};
use cal_core::{Instant, SlotQuery, SlotRange, StepMinutes};
use cal_store::Executor;
use deadpool_postgres::Pool;
use serde_json::{Value, json};

/// Configuration from the environment, read once.
pub struct Config {
    /// `FEASIBILITY_CACHE_TABLE` (required).
    pub cache_table: String,
    /// `FEASIBILITY_CACHE_TTL_SECS` (the default fn-api reads through with).
    pub cache_ttl_secs: i64,
    /// `CACHE_NEAR_TERM_DAYS` (default 14, 1 to 60).
    pub rebuild: RebuildOptions,
}

impl Config {
    /// Reads it; a bad value is refused, naming the variable.
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        Ok(Config {
            cache_table: env.required("FEASIBILITY_CACHE_TABLE")?,
            cache_ttl_secs: cal_aws::config::feasibility_cache_ttl_secs(env)?,
            rebuild: RebuildOptions { days: env.in_range("CACHE_NEAR_TERM_DAYS", 14, 1..=60)? },
        })
    }
}

/// `fn-cache-rebuilder` settings.
#[derive(Clone, Copy, Debug)]
pub struct RebuildOptions {
    /// Days from today to keep warm.
    pub days: u32,
}

/// `fn-cache-rebuilder`: a `cal.*` event (detail `user_id`, as the relay
/// writes it) or an `order.*` event (detail `hold_id` / `event_id`) names a
/// provider; recompute that provider's near-term entries at its current
/// version.
pub async fn rebuild_cache(
    pool: &Pool,
    cache: &impl VersionedCache,
    opts: RebuildOptions,
    now: Instant,
    event: Value,
) -> Result<Value, HandlerError> {
    let event = cal_aws::event::decode(event)?;
    let db = cal_aws::event::connection(pool).await?;
    let user_id = provider_of(&db, &event).await?;
    let written = rebuild_near_term(&db, cache, &user_id, now, opts.days).await?;
    tracing::info!(event_id = %event.id, user_id, written, "near-term cache rebuilt");
    Ok(json!({ "user_id": user_id, "entries": written }))
}

async fn provider_of(db: &impl cal_store::Executor, event: &EventBridgeEvent) -> Result<String, HandlerError> {
    let field = |name: &str| event.detail.get(name).and_then(Value::as_str).filter(|s| !s.is_empty());
    if event.detail_type.starts_with("cal.") {
        if let Some(user) = field("user_id") {
            return Ok(user.to_owned());
        }
    } else if event.detail_type.starts_with("order.") {
        // The event first: after a reschedule the hold is converted, and
        // either names the same provider.
        if let Some(event_id) = field("event_id") {
            return Ok(cal_store::get_event(db, event_id).await?.user_id);
        }
        if let Some(hold_id) = field("hold_id") {
            return Ok(cal_store::get_hold(db, hold_id).await?.user_id);
        }
    }
    let err = serde_json::Error::io(std::io::Error::other(format!(
        "{}: the detail names no provider (user_id, event_id or hold_id)",
        event.detail_type
    )));
    Err(HandlerError::BadEvent(err))
}

/// The near-term windows the rebuilder keeps warm: `days` whole UTC days
/// from the start of `now`'s day, one query per day (default duration and
/// step). Readers asking for exactly such a window hit the cache.
pub fn near_term_queries(user_id: &str, role_code: &str, now: Instant, days: u32) -> Vec<SlotQuery> {
    let day0 = now.unix() - now.unix().rem_euclid(86_400);
    (0..i64::from(days))
        .map(|d| {
            let from = Instant::from_unix(day0 + d * 86_400);
            let range = SlotRange::new(from, from.plus_secs(86_400), None, StepMinutes::default())
                .expect("a day with the default step is a valid range");
            SlotQuery { user_id: user_id.to_owned(), role_code: role_code.to_owned(), range }
        })
        .collect()
}

/// Recomputes and stores the near-term entries of every role `user_id` has
/// an active rule for, at the current version. Returns how many entries were
/// written. Unlike a read, a cache failure is an error here: rebuilding is
/// the whole job.
pub async fn rebuild_near_term(
    db: &impl Executor,
    cache: &impl VersionedCache,
    user_id: &str,
    now: Instant,
    days: u32,
) -> Result<usize, HandlerError> {
    let version = cal_store::outbox::version(db, user_id).await?;
    let mut roles: Vec<String> =
        cal_store::list_rules(db, user_id, None).await?.into_iter().filter(|r| r.active).map(|r| r.role_code).collect();
    roles.dedup();
    let mut written = 0;
    for role in &roles {
        for query in near_term_queries(user_id, role, now, days) {
            let answer = cal_store::slots(db, &query, now).await?;
            // The API's response shape, so the API serves a hit as it is.
            let entry = cache.entry(version, fn_api::out::slot_page(&answer).to_string(), now);
            cache.put(&CacheKey::slots(&query), &entry).await?;
            written += 1;
        }
    }
    Ok(written)
}
