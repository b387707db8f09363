//! The ICS poller (SEMANTICS.md §6): the two Step Functions tasks of
//! `infra/statemachines/ics-poll.asl.json`.
//!
//! * `{"action":"list_due","limit":N}` claims up to N due sources
//!   ([`cal_store::due_sources`]) and answers their ids only —
//!   `{"sources":[{"sourceId":…}],"count":n}`. URLs are secrets and never
//!   travel through the state machine; the poll task loads its URL by id.
//! * `{"action":"poll","sourceId":…}` fetches one calendar ([`fetch`]),
//!   imports it with [`cal_core::ics_in::import`] and records the result:
//!   `{"sourceId","status":"ok"|"unchanged"|"error"|"skipped","inserted",
//!   "deleted","updated","warnings","error"?}`.
//!
//! A feed's failure — refused URL, timeout, HTTP error, a body that is not
//! iCalendar or is over a limit — is recorded ([`cal_store::record_failure`]:
//! the last good busy data stays) and answered as `status: "error"`, so the
//! Map goes on with the other feeds. Only the unexpected (the database is
//! unreachable, a malformed task) fails the invocation, for the Map's Retry
//! and Catch.

#![forbid(unsafe_code)]

pub mod config;
pub mod fetch;

use std::sync::Arc;

use cal_core::ics_in::{ImportLimits, import};
use cal_core::time::{Instant, Interval};
use cal_store::poll::DueSource;
use cal_store::{PollSuccess, StoreError};
use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use config::Config;
pub use fetch::{FetchError, FetchPolicy, Fetched, Fetcher, Refusal};

/// Sources claimed by one `list_due` when the task names no limit.
pub const DEFAULT_BATCH: i64 = 100;
/// Most sources one `list_due` may claim: the Map's results must stay far
/// below the 256 KiB state payload limit.
pub const MAX_BATCH: i64 = 500;
/// Days expanded past the provider's booking window, covering the time
/// until the next full parse (see [`DueSource::conditional`]).
pub const HORIZON_SLACK_DAYS: i64 = 2;

/// What every invocation borrows: built once at cold start.
#[derive(Clone)]
pub struct Deps {
    /// The database.
    pub pool: Pool,
    /// The HTTP client; its [`FetchPolicy::max_bytes`] should equal
    /// `limits.max_bytes`.
    pub fetcher: Fetcher,
    /// Per-feed limits: bytes and events (SEMANTICS.md §6).
    pub limits: ImportLimits,
    /// The clock (tests pin it).
    pub clock: Arc<dyn Fn() -> Instant + Send + Sync>,
}

/// The wall clock.
pub fn system_clock() -> Instant {
    Instant::from_chrono(chrono::Utc::now())
}

/// A task's input, as the state machine's Parameters build it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Task {
    /// Claim due sources.
    ListDue(ListDue),
    /// Poll one source.
    Poll(PollTask),
}

/// `{"action":"list_due","limit":N}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListDue {
    /// How many to claim, 1 to [`MAX_BATCH`] (default [`DEFAULT_BATCH`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}

/// `{"action":"poll","sourceId":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PollTask {
    /// The source to poll.
    pub source_id: String,
}

/// `list_due`'s answer: the Map's items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListDueOutput {
    /// The claimed sources, longest overdue first.
    pub sources: Vec<SourceRef>,
    /// `sources.len()`.
    pub count: usize,
}

/// One claimed source: its id only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SourceRef {
    /// `src_…`.
    pub source_id: String,
}

/// How a poll went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PollStatus {
    /// Parsed and applied (the counts say what changed; may be none).
    Ok,
    /// 304, or a body with the stored hash: nothing parsed or written but
    /// the poll state.
    Unchanged,
    /// Refused, failed or rejected: recorded, last good data kept.
    Error,
    /// The source was disconnected or paused since it was listed.
    Skipped,
}

/// `poll`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PollOutcome {
    /// The source.
    pub source_id: String,
    /// See [`PollStatus`].
    pub status: PollStatus,
    /// Occurrences added.
    pub inserted: u64,
    /// Occurrences removed.
    pub deleted: u64,
    /// Occurrences changed.
    pub updated: u64,
    /// Warnings of the parse (repaired or skipped faults).
    pub warnings: u64,
    /// With `error`: what went wrong, fit for the provider (no URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl PollOutcome {
    fn new(source_id: &str, status: PollStatus) -> Self {
        PollOutcome {
            source_id: source_id.to_owned(),
            status,
            inserted: 0,
            deleted: 0,
            updated: 0,
            warnings: 0,
            error: None,
        }
    }
}

/// A failure of the poller itself (not of a feed): the invocation fails.
#[derive(Debug, thiserror::Error)]
pub enum PollerError {
    /// The task is not one of the two shapes.
    #[error("invalid task input: {0}")]
    BadTask(#[source] serde_json::Error),
    /// The database failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// No connection from the pool.
    #[error("no database connection available")]
    Pool(#[from] deadpool_postgres::PoolError),
}

impl PollerError {
    /// The stable `errorType` the state machine's Retry and Catch match on:
    /// `STORE_UNAVAILABLE` is retried (nothing was committed, polling again
    /// is safe), `INVALID_TASK` is a contract bug and is not.
    pub fn error_type(&self) -> &'static str {
        match self {
            PollerError::BadTask(_) => "INVALID_TASK",
            PollerError::Store(_) | PollerError::Pool(_) => "STORE_UNAVAILABLE",
        }
    }
}

impl From<PollerError> for lambda_runtime::Diagnostic {
    fn from(e: PollerError) -> Self {
        // Details (the database's own error) go to the log, not the answer.
        tracing::error!(error = ?e, "poller failed");
        lambda_runtime::Diagnostic { error_type: e.error_type().to_owned(), error_message: e.to_string() }
    }
}

/// The Lambda handler: one task in, its answer out.
pub async fn handle(deps: &Deps, payload: Value) -> Result<Value, PollerError> {
    let task: Task = serde_json::from_value(payload).map_err(PollerError::BadTask)?;
    let now = (deps.clock)();
    let out = match task {
        Task::ListDue(t) => serde_json::to_value(list_due(deps, now, t.limit.unwrap_or(DEFAULT_BATCH)).await?),
        Task::Poll(t) => serde_json::to_value(poll_by_id(deps, &t.source_id, now).await?),
    };
    Ok(out.expect("outputs serialize"))
}

/// Claims up to `limit` (clamped to 1..=[`MAX_BATCH`]) due sources.
pub async fn list_due(deps: &Deps, now: Instant, limit: i64) -> Result<ListDueOutput, PollerError> {
    let client = deps.pool.get().await?;
    let due = cal_store::due_sources(&client, now, limit.clamp(1, MAX_BATCH)).await?;
    let sources: Vec<SourceRef> = due.into_iter().map(|s| SourceRef { source_id: s.source_id }).collect();
    tracing::info!(count = sources.len(), "due sources claimed");
    Ok(ListDueOutput { count: sources.len(), sources })
}

/// Loads `source_id` and polls it; a source gone or paused is skipped.
pub async fn poll_by_id(deps: &Deps, source_id: &str, now: Instant) -> Result<PollOutcome, PollerError> {
    let source = {
        let client = deps.pool.get().await?;
        cal_store::source_for_poll(&client, source_id).await?
    };
    match source {
        Some(source) => poll_source(deps, &source, now).await,
        None => {
            tracing::info!(source_id, "source gone or paused; skipped");
            Ok(PollOutcome::new(source_id, PollStatus::Skipped))
        }
    }
}

/// Fetches, imports and records one source at `now`.
///
/// No database connection is held while the feed downloads: a slow feed
/// must not starve the pool.
pub async fn poll_source(deps: &Deps, source: &DueSource, now: Instant) -> Result<PollOutcome, PollerError> {
    let id = source.source_id.as_str();
    let host = source.url.hint();
    let days = i64::from(source.horizon_days.max(0)) + HORIZON_SLACK_DAYS;
    let horizon = Interval::new(now, now.plus_secs(days * 86_400)).expect("a horizon of at least two days");
    let conditional = source.conditional(now);

    let fetched = match deps.fetcher.fetch(source.url.expose(), conditional).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(source_id = id, host, error = %e, "fetch failed");
            return fail(deps, id, now, &e.to_string()).await;
        }
    };
    let (success, status) = match fetched {
        Fetched::NotModified { etag, last_modified } => (
            PollSuccess {
                etag: etag.or_else(|| source.etag.clone()),
                last_modified: last_modified.or_else(|| source.last_modified.clone()),
                content_hash: source.content_hash,
                busy: None,
                warnings: 0,
                horizon,
            },
            PollStatus::Unchanged,
        ),
        Fetched::Body { body, etag, last_modified } => {
            let hash: [u8; 32] = Sha256::digest(&body).into();
            if conditional.and_then(|c| c.content_hash) == Some(&hash) {
                let success =
                    PollSuccess { etag, last_modified, content_hash: Some(hash), busy: None, warnings: 0, horizon };
                (success, PollStatus::Unchanged)
            } else {
                match import(&body, source.provider_zone, horizon.start(), horizon.end(), deps.limits) {
                    Ok(imported) => (
                        PollSuccess {
                            etag,
                            last_modified,
                            content_hash: Some(hash),
                            warnings: imported.warnings.len(),
                            busy: Some(imported.busy),
                            horizon,
                        },
                        PollStatus::Ok,
                    ),
                    Err(rejection) => {
                        tracing::warn!(source_id = id, host, error = %rejection, "calendar rejected");
                        return fail(deps, id, now, &format!("calendar not imported: {rejection}")).await;
                    }
                }
            }
        }
    };
    let warnings = success.warnings as u64;
    let mut client = deps.pool.get().await?;
    match cal_store::record_success(&mut client, id, now, success).await {
        Ok(r) => {
            tracing::info!(
                source_id = id,
                host,
                ?status,
                inserted = r.inserted,
                deleted = r.deleted,
                updated = r.updated,
                pruned = r.pruned,
                busy_changed = r.busy_changed,
                "poll recorded"
            );
            let mut out = PollOutcome::new(id, status);
            (out.inserted, out.deleted, out.updated) = (r.inserted, r.deleted, r.updated);
            out.warnings = if status == PollStatus::Ok { warnings } else { 0 };
            Ok(out)
        }
        Err(StoreError::NotFound { .. }) => Ok(PollOutcome::new(id, PollStatus::Skipped)),
        Err(e) => Err(e.into()),
    }
}

async fn fail(deps: &Deps, id: &str, now: Instant, message: &str) -> Result<PollOutcome, PollerError> {
    let mut client = deps.pool.get().await?;
    match cal_store::record_failure(&mut client, id, now, message).await {
        Ok(r) => {
            let mut out = PollOutcome::new(id, PollStatus::Error);
            out.error = Some(r.last_error);
            Ok(out)
        }
        Err(StoreError::NotFound { .. }) => Ok(PollOutcome::new(id, PollStatus::Skipped)),
        Err(e) => Err(e.into()),
    }
}
