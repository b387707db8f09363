//! Read-through caches in DynamoDB, stamped with the provider version.
//!
//! Every `cal.*` change bumps `cal.provider_version` in its own transaction
//! (`cal_store::outbox::bump_version`). An entry records the version that was
//! current *before* its answer was computed; a read serves it only if that
//! is still the current version. A change committed while the answer was
//! being computed makes the stamp older than the data, never newer, so the
//! worst case is a needless miss — a stale entry is never served.
//!
//! Answers also depend on the clock (holds expire, notice periods move), so
//! entries live briefly: `expires_at` (epoch seconds) is the table's TTL
//! attribute and is checked on read too, because DynamoDB deletes expired
//! items only eventually.

use std::collections::HashMap;
use std::future::Future;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use cal_core::{Instant, SlotQuery, StepMinutes};

use crate::error::AwsError;

/// The TTL attribute of every table here (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// The partition key of every table here (a string).
pub const KEY_ATTRIBUTE: &str = "id";

/// A cached answer: its text (the caller's serialized answer), the version it
/// was computed at, and until when it may be served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedEntry {
    /// `cal.provider_version` read before the answer was computed.
    pub version: i64,
    /// The answer as stored (for the API: its JSON response shape).
    pub body: String,
    /// When it was computed.
    pub computed_at: Instant,
    /// When it stops being served (and DynamoDB may delete it).
    pub expires_at: Instant,
}

impl CachedEntry {
    /// Whether it may answer a read at `now` when the provider is at `version`.
    pub fn serves(&self, version: i64, now: Instant) -> bool {
        self.version == version && now < self.expires_at
    }
}

/// An entry's key: what was asked, without the provider's version (the
/// entry carries that).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey(String);

impl CacheKey {
    /// A slot query: provider, role, window, duration and step.
    pub fn slots(query: &SlotQuery) -> Self {
        let r = &query.range;
        let duration = r.duration_min().map_or_else(|| "-".to_owned(), |d| d.to_string());
        CacheKey(format!(
            "slots#{}#{}#{}#{}#{}#{}",
            query.user_id,
            query.role_code,
            r.from().unix(),
            r.to().unix(),
            duration,
            r.step().get()
        ))
    }

    /// The candidates for moving `event_id` within `[from, to)` on a `step` grid.
    pub fn reschedule(event_id: &str, from: Instant, to: Instant, step: StepMinutes) -> Self {
        CacheKey(format!("resched#{event_id}#{}#{}#{}", from.unix(), to.unix(), step.get()))
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A cache of answers stamped with the provider's version: the one
/// capability both the API (reads through it) and the rebuilder (fills it)
/// need. What an answer looks like is the caller's business: the API stores
/// its response shape, so a hit is served as it is.
pub trait VersionedCache: Sync {
    /// The entry under `key`, if any (expired or not: the caller decides).
    fn get(&self, key: &CacheKey) -> impl Future<Output = Result<Option<CachedEntry>, AwsError>> + Send;
    /// Stores `entry` under `key`, replacing what was there.
    fn put(&self, key: &CacheKey, entry: &CachedEntry) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// How long a new entry may be served, seconds.
    fn ttl_secs(&self) -> i64;

    /// An entry for `body`, computed at `now` from a calendar at `version`.
    fn entry(&self, version: i64, body: String, now: Instant) -> CachedEntry {
        CachedEntry { version, body, computed_at: now, expires_at: now.plus_secs(self.ttl_secs()) }
    }
}

/// One DynamoDB table (`id` string key, TTL on `expires_at`) used as a
/// versioned cache.
#[derive(Clone, Debug)]
pub struct DynamoCache {
    client: Client,
    table: String,
    ttl_secs: i64,
}

impl DynamoCache {
    /// A cache on `table` whose entries are served for `ttl_secs`.
    pub fn new(client: Client, table: impl Into<String>, ttl_secs: i64) -> Self {
        DynamoCache { client, table: table.into(), ttl_secs: ttl_secs.max(1) }
    }

    /// The table.
    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get_item(&self, key: &str) -> Result<Option<CachedEntry>, AwsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::call("GetItem", &self.table, e))?;
        let Some(item) = out.item() else { return Ok(None) };
        let corrupt = |attribute| AwsError::Corrupt { table: self.table.clone(), key: key.to_owned(), attribute };
        Ok(Some(CachedEntry {
            version: number(item, "version").ok_or_else(|| corrupt("version"))?,
            body: string(item, "body").ok_or_else(|| corrupt("body"))?,
            computed_at: Instant::from_unix(number(item, "computed_at").ok_or_else(|| corrupt("computed_at"))?),
            expires_at: Instant::from_unix(number(item, TTL_ATTRIBUTE).ok_or_else(|| corrupt(TTL_ATTRIBUTE))?),
        }))
    }

    async fn put_item(&self, key: &str, entry: &CachedEntry) -> Result<(), AwsError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(KEY_ATTRIBUTE, AttributeValue::S(key.to_owned()))
            .item("version", AttributeValue::N(entry.version.to_string()))
            .item("body", AttributeValue::S(entry.body.clone()))
            .item("computed_at", AttributeValue::N(entry.computed_at.unix().to_string()))
            .item(TTL_ATTRIBUTE, AttributeValue::N(entry.expires_at.unix().to_string()))
            .send()
            .await
            .map_err(|e| AwsError::call("PutItem", &self.table, e))?;
        Ok(())
    }
}

pub(crate) fn number(item: &HashMap<String, AttributeValue>, name: &str) -> Option<i64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

pub(crate) fn string(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name)?.as_s().ok().cloned()
}

impl VersionedCache for DynamoCache {
    async fn get(&self, key: &CacheKey) -> Result<Option<CachedEntry>, AwsError> {
        self.get_item(key.as_str()).await
    }
    async fn put(&self, key: &CacheKey, entry: &CachedEntry) -> Result<(), AwsError> {
        self.put_item(key.as_str(), entry).await
    }
    fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }
}

/// Where an answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A current entry of the cache.
    Cache,
    /// The engine (`cal_store`), then stored.
    Engine,
}

/// Reads through the cache: a current entry (the provider still at
/// `version`, not expired) is served as stored; anything else (no entry, an
/// older version, an expired entry, a cache that cannot be reached) runs
/// `compute` and stores its answer. The cache never fails a read.
///
/// `version` must be read before `compute` runs (see the module comment).
pub async fn read_through<E, Fut>(
    cache: &impl VersionedCache,
    key: &CacheKey,
    version: i64,
    now: Instant,
    compute: impl FnOnce() -> Fut,
) -> Result<(String, Source), E>
where
    Fut: Future<Output = Result<String, E>>,
{
    match cache.get(key).await {
        Ok(Some(entry)) if entry.serves(version, now) => return Ok((entry.body, Source::Cache)),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, key = key.as_str(), "cache unreadable; computing the answer"),
    }
    let entry = cache.entry(version, compute().await?, now);
    if let Err(e) = cache.put(key, &entry).await {
        tracing::warn!(error = %e, key = key.as_str(), "cache not filled");
    }
    Ok((entry.body, Source::Engine))
}
