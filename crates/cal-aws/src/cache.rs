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
use cal_store::{Executor, StoreError};

use crate::error::AwsError;

/// The TTL attribute of every table here (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";
/// The partition key of every table here (a string).
pub const KEY_ATTRIBUTE: &str = "id";

/// A cached answer: JSON text, the version it was computed at, and until when
/// it may be served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedEntry {
    /// `cal.provider_version` read before the answer was computed.
    pub version: i64,
    /// The answer as JSON text.
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

/// A slot query's cache key: provider, role and the query window and shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey(String);

impl CacheKey {
    /// The key of `query`.
    pub fn of(query: &SlotQuery) -> Self {
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

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A reschedule candidate set's key: the event and the window.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RescheduleKey(String);

impl RescheduleKey {
    /// The key for moving `event_id` within `[from, to)` on a `step` grid.
    pub fn new(event_id: &str, from: Instant, to: Instant, step: StepMinutes) -> Self {
        RescheduleKey(format!("resched#{event_id}#{}#{}#{}", from.unix(), to.unix(), step.get()))
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Stores and reads slot answers by [`CacheKey`].
pub trait FeasibilityCache: Sync {
    /// The entry under `key`, if any (expired or not: the caller decides).
    fn get(&self, key: &CacheKey) -> impl Future<Output = Result<Option<CachedEntry>, AwsError>> + Send;
    /// Stores `entry` under `key`, replacing what was there.
    fn put(&self, key: &CacheKey, entry: &CachedEntry) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// How long a new entry may be served, seconds.
    fn ttl_secs(&self) -> i64;
}

/// Stores and reads reschedule candidate sets by [`RescheduleKey`].
pub trait RescheduleCandidateCache: Sync {
    /// The entry under `key`, if any.
    fn get(&self, key: &RescheduleKey) -> impl Future<Output = Result<Option<CachedEntry>, AwsError>> + Send;
    /// Stores `entry` under `key`.
    fn put(&self, key: &RescheduleKey, entry: &CachedEntry) -> impl Future<Output = Result<(), AwsError>> + Send;
    /// How long a new entry may be served, seconds (short: candidates go
    /// quickly).
    fn ttl_secs(&self) -> i64;
}

/// One DynamoDB table (`id` string key, TTL on `expires_at`) used as a
/// versioned cache. The same type serves both caches, each with its own
/// table and TTL.
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

impl FeasibilityCache for DynamoCache {
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

impl RescheduleCandidateCache for DynamoCache {
    async fn get(&self, key: &RescheduleKey) -> Result<Option<CachedEntry>, AwsError> {
        self.get_item(key.as_str()).await
    }
    async fn put(&self, key: &RescheduleKey, entry: &CachedEntry) -> Result<(), AwsError> {
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

/// Bookable slots through the cache: a current entry (same provider version,
/// not expired) is served; anything else — no entry, an older version, an
/// expired entry, a cache that cannot be reached — falls back to
/// `cal_store::slots` and stores the answer. The cache never fails a read.
pub async fn cached_slots(
    db: &impl Executor,
    cache: &impl FeasibilityCache,
    query: &SlotQuery,
    now: Instant,
) -> Result<(String, Source), StoreError> {
    // Read the version first: see the module comment.
    let version = cal_store::outbox::version(db, &query.user_id).await?;
    let key = CacheKey::of(query);
    match cache.get(&key).await {
        Ok(Some(entry)) if entry.serves(version, now) => return Ok((entry.body, Source::Cache)),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "feasibility cache unreadable; asking the engine"),
    }
    let answer = cal_store::slots(db, query, now).await?;
    let body = serde_json::to_string(&answer).expect("slot answers serialize");
    let entry = CachedEntry { version, body, computed_at: now, expires_at: now.plus_secs(cache.ttl_secs()) };
    if let Err(e) = cache.put(&key, &entry).await {
        tracing::warn!(error = %e, "feasibility cache not filled");
    }
    Ok((entry.body, Source::Engine))
}

/// Reschedule candidates of `event_id` through the cache, like
/// [`cached_slots`] (stamped with the event's provider version).
pub async fn cached_reschedule_candidates(
    db: &impl Executor,
    cache: &impl RescheduleCandidateCache,
    event_id: &str,
    from: Instant,
    to: Instant,
    step: StepMinutes,
    now: Instant,
) -> Result<(String, Source), StoreError> {
    let event = cal_store::get_event(db, event_id).await?;
    let version = cal_store::outbox::version(db, &event.user_id).await?;
    let key = RescheduleKey::new(event_id, from, to, step);
    match cache.get(&key).await {
        Ok(Some(entry)) if entry.serves(version, now) => return Ok((entry.body, Source::Cache)),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "reschedule cache unreadable; asking the engine"),
    }
    let answer = cal_store::reschedule_candidates(db, event_id, from, to, step, now).await?;
    let body = serde_json::to_string(&answer).expect("slot answers serialize");
    let entry = CachedEntry { version, body, computed_at: now, expires_at: now.plus_secs(cache.ttl_secs()) };
    if let Err(e) = cache.put(&key, &entry).await {
        tracing::warn!(error = %e, "reschedule cache not filled");
    }
    Ok((entry.body, Source::Engine))
}
