//! The outbox relay (SEMANTICS.md §5): publishes `cal.outbox` rows at least
//! once, in order per user, and marks them published.
//!
//! One run is a sequence of bounded batches, each one transaction:
//!
//! 1. claim up to `batch` unpublished rows in `outbox_id` order with
//!    `FOR UPDATE SKIP LOCKED`, so concurrent relays never publish the same
//!    row at the same time;
//! 2. keep, per user, only the prefix of the claimed rows that starts at that
//!    user's oldest unpublished row (a row another relay holds, or one that
//!    failed, blocks the user's later rows: per-user order beats throughput);
//! 3. hand them to an [`EventPublisher`] in puts within EventBridge's
//!    PutEvents limits (at most one entry per user per put), retrying only
//!    the entries that failed;
//! 4. set `published_at` on the accepted rows and commit.
//!
//! A crash anywhere before the commit leaves every row unpublished, so the
//! next run sends it again (consumers deduplicate by `event_id`, which is in
//! every detail). A row is never dropped: one that keeps failing stays
//! unpublished and is retried by every later run.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::db::{Begin, Executor};
use crate::error::StoreError;

/// PutEvents accepts at most this many entries per call.
pub const MAX_ENTRIES_PER_PUT: usize = 10;
/// PutEvents accepts at most this many bytes per call (entry sizes as
/// [`OutboundEvent::put_size`] computes them).
pub const MAX_BYTES_PER_PUT: usize = 256 * 1024;

/// One outbox row on its way to the bus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundEvent {
    /// The relay's order (per user, commit order).
    pub outbox_id: i64,
    /// The id consumers deduplicate by (a UUID, lower-case text).
    pub event_id: String,
    /// `cal.hold.created`, ...: the EventBridge `detail-type`.
    pub event_type: String,
    /// The provider the event is about.
    pub user_id: String,
    /// When the change committed.
    pub created_at: DateTime<Utc>,
    /// The EventBridge `detail`, JSON text: `event_id`, `outbox_id`,
    /// `event_type`, `user_id`, `occurred_at` and the row's `payload` as `data`.
    pub detail: String,
}

impl OutboundEvent {
    fn from_row(row: &tokio_postgres::Row) -> Self {
        let (outbox_id, event_id, event_type, user_id, created_at, payload): (
            i64,
            String,
            String,
            String,
            DateTime<Utc>,
            Value,
        ) = (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4), row.get(5));
        let detail = json!({
            "event_id": event_id,
            "outbox_id": outbox_id,
            "event_type": event_type,
            "user_id": user_id,
            "occurred_at": created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "data": payload,
        })
        .to_string();
        OutboundEvent { outbox_id, event_id, event_type, user_id, created_at, detail }
    }

    /// The entry's size as PutEvents counts it: UTF-8 bytes of source,
    /// detail-type and detail, plus 14 for the time (no resources are sent).
    pub fn put_size(&self, source: &str) -> usize {
        source.len() + self.event_type.len() + self.detail.len() + 14
    }
}

/// Why one entry of a put was refused (PutEvents' per-entry `ErrorCode`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryFailure {
    /// E.g. `InternalFailure`, `ThrottlingException`.
    pub code: String,
    /// The service's message, for the log.
    pub message: String,
}

/// The whole put failed (network, credentials, a refused request): nothing
/// is known to be published.
#[derive(Debug, thiserror::Error)]
#[error("publishing failed: {message}")]
pub struct PublishError {
    /// What went wrong, for the log.
    pub message: String,
    /// The cause.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// Puts one batch of events on the bus: the one capability the relay needs.
pub trait EventPublisher: Sync {
    /// The `source` of every entry (counted in the entry size).
    fn source(&self) -> &str;

    /// Publishes `events` (at most [`MAX_ENTRIES_PER_PUT`] entries and
    /// [`MAX_BYTES_PER_PUT`] bytes) and returns one result per entry, in
    /// order: `Ok` for an accepted entry, its failure otherwise.
    fn put(&self, events: &[OutboundEvent])
    -> impl Future<Output = Result<Vec<Result<(), EntryFailure>>, PublishError>> + Send;
}

/// How a run proceeds.
#[derive(Clone, Copy, Debug)]
pub struct RelayOptions {
    /// Rows claimed per transaction.
    pub batch: i64,
    /// Transactions per run at most (a Lambda has a deadline).
    pub max_batches: usize,
    /// Attempts per entry within a run (the first included).
    pub attempts: u32,
    /// Pause before the first retry; doubles with each retry.
    pub backoff: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions { batch: 100, max_batches: 20, attempts: 3, backoff: Duration::from_millis(100) }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RelayReport {
    /// Rows published and marked.
    pub published: usize,
    /// Rows whose entries still failed after every attempt (left unpublished).
    pub failed: usize,
    /// Rows claimed but not sent because an earlier row of their user was
    /// held by another relay or failed (left unpublished, order kept).
    pub deferred: usize,
    /// Transactions run.
    pub batches: usize,
}

/// Runs the relay until the outbox is drained, a batch leaves rows behind
/// (failed or deferred: the next run retries them), or `max_batches` ran.
pub async fn relay_outbox(
    db: &mut impl Begin,
    publisher: &impl EventPublisher,
    opts: RelayOptions,
) -> Result<RelayReport, StoreError> {
    let mut report = RelayReport::default();
    for _ in 0..opts.max_batches.max(1) {
        let (claimed, batch) = relay_batch(db, publisher, opts).await?;
        report.published += batch.published;
        report.failed += batch.failed;
        report.deferred += batch.deferred;
        report.batches += 1;
        if claimed < opts.batch.max(1) as usize || batch.failed > 0 || batch.deferred > 0 {
            break;
        }
    }
    Ok(report)
}

/// One transaction of [`relay_outbox`]; returns how many rows it claimed.
async fn relay_batch(
    db: &mut impl Begin,
    publisher: &impl EventPublisher,
    opts: RelayOptions,
) -> Result<(usize, RelayReport), StoreError> {
    let tx = db.begin().await?;
    let rows = tx
        .query(
            "select outbox_id, event_id::text, event_type, user_id, created_at, payload
             from cal.outbox where published_at is null
             order by outbox_id limit $1
             for update skip locked",
            &[&opts.batch.max(1)],
        )
        .await?;
    let claimed: Vec<OutboundEvent> = rows.iter().map(OutboundEvent::from_row).collect();
    if claimed.is_empty() {
        return Ok((0, RelayReport::default()));
    }
    let (ready, deferred) = in_order_prefix(&tx, &claimed).await?;
    let mut report = RelayReport { deferred, ..RelayReport::default() };
    let outcome = publish_in_order(publisher, &ready, opts).await?;
    report.published = outcome.published.len();
    report.failed = outcome.failed;
    report.deferred += outcome.blocked;
    if !outcome.published.is_empty() {
        tx.execute("update cal.outbox set published_at = now() where outbox_id = any($1)", &[&outcome.published])
            .await?;
    }
    tx.commit().await?;
    Ok((claimed.len(), report))
}

/// Per user, the claimed rows that directly follow the user's last published
/// row: the longest prefix of the user's unpublished rows (up to the highest
/// claimed id) that this transaction holds. The rest are deferred.
async fn in_order_prefix(db: &impl Executor, claimed: &[OutboundEvent]) -> Result<(Vec<OutboundEvent>, usize), StoreError> {
    let users: Vec<&str> = {
        let mut seen = HashSet::new();
        claimed.iter().map(|e| e.user_id.as_str()).filter(|u| seen.insert(*u)).collect()
    };
    let max_id = claimed.iter().map(|e| e.outbox_id).max().unwrap_or(0);
    // A plain select is not blocked by other relays' row locks: it sees the
    // rows they hold, which is the point.
    let rows = db
        .query(
            "select user_id, array_agg(outbox_id order by outbox_id) from cal.outbox
             where published_at is null and user_id = any($1) and outbox_id <= $2
             group by user_id",
            &[&users, &max_id],
        )
        .await?;
    let mine: HashSet<i64> = claimed.iter().map(|e| e.outbox_id).collect();
    let mut allowed: HashSet<i64> = HashSet::new();
    for row in &rows {
        let ids: Vec<i64> = row.get(1);
        allowed.extend(ids.into_iter().take_while(|id| mine.contains(id)));
    }
    let ready: Vec<OutboundEvent> = claimed.iter().filter(|e| allowed.contains(&e.outbox_id)).cloned().collect();
    let deferred = claimed.len() - ready.len();
    Ok((ready, deferred))
}

struct PublishOutcome {
    published: Vec<i64>,
    failed: usize,
    blocked: usize,
}

/// Sends `events` in puts within the PutEvents limits, retrying only the
/// failed entries of a put before the next one.
///
/// Order per user is kept strictly: a put carries at most one entry per
/// user (PutEvents does not promise that one call's entries arrive in
/// order, and a retried entry must not be overtaken by a later one of its
/// user that shared its call), and once an entry has failed for good its
/// user's later events are held back for the next run. The cost is one put
/// per event for a single busy provider, which the relay's batches absorb.
async fn publish_in_order(
    publisher: &impl EventPublisher,
    events: &[OutboundEvent],
    opts: RelayOptions,
) -> Result<PublishOutcome, StoreError> {
    let source = publisher.source().to_owned();
    let mut outcome = PublishOutcome { published: Vec::new(), failed: 0, blocked: 0 };
    let mut stuck_users: HashSet<String> = HashSet::new();
    let mut remaining: Vec<OutboundEvent> = events.to_vec();
    while !remaining.is_empty() {
        // Only each user's first remaining event is eligible. An entry over
        // the byte limit on its own is still sent alone: the service refuses
        // it and it stays unpublished (logged), never dropped.
        let mut chunk: Vec<OutboundEvent> = Vec::new();
        let mut bytes = 0;
        let mut seen: HashSet<&str> = HashSet::new();
        let mut taken: HashSet<i64> = HashSet::new();
        for e in &remaining {
            if !seen.insert(e.user_id.as_str()) {
                continue;
            }
            let size = e.put_size(&source);
            if !chunk.is_empty() && (chunk.len() == MAX_ENTRIES_PER_PUT || bytes + size > MAX_BYTES_PER_PUT) {
                break;
            }
            bytes += size;
            taken.insert(e.outbox_id);
            chunk.push(e.clone());
        }
        let failed = put_with_retries(publisher, chunk.clone(), opts).await;
        for e in &chunk {
            if failed.contains_key(&e.outbox_id) {
                outcome.failed += 1;
                stuck_users.insert(e.user_id.clone());
            } else {
                outcome.published.push(e.outbox_id);
            }
        }
        remaining.retain(|e| !taken.contains(&e.outbox_id));
        let before = remaining.len();
        remaining.retain(|e| !stuck_users.contains(&e.user_id));
        outcome.blocked += before - remaining.len();
    }
    Ok(outcome)
}

/// Puts `chunk`, then re-puts only the entries that failed, up to
/// `opts.attempts` times in all. Returns the entries still failing, by
/// `outbox_id`. A failure of the whole call counts as every entry failing.
async fn put_with_retries(
    publisher: &impl EventPublisher,
    mut chunk: Vec<OutboundEvent>,
    opts: RelayOptions,
) -> HashMap<i64, EntryFailure> {
    let mut failures: HashMap<i64, EntryFailure> = HashMap::new();
    let mut delay = opts.backoff;
    for attempt in 1..=opts.attempts.max(1) {
        if attempt > 1 {
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
        }
        let results = match publisher.put(&chunk).await {
            Ok(results) if results.len() == chunk.len() => results,
            Ok(results) => {
                // A publisher must answer every entry; treat anything else as
                // a failed call rather than guess which entries went through.
                tracing::error!(sent = chunk.len(), answered = results.len(), "publisher answered the wrong number of entries");
                vec![Err(EntryFailure { code: "BadResponse".into(), message: "entry count mismatch".into() }); chunk.len()]
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, entries = chunk.len(), "put failed as a whole");
                vec![Err(EntryFailure { code: "PutFailed".into(), message: e.message.clone() }); chunk.len()]
            }
        };
        let mut retry = Vec::new();
        for (event, result) in chunk.into_iter().zip(results) {
            match result {
                Ok(()) => {
                    failures.remove(&event.outbox_id);
                }
                Err(f) => {
                    tracing::warn!(outbox_id = event.outbox_id, event_id = %event.event_id, code = %f.code, attempt, "entry refused");
                    failures.insert(event.outbox_id, f);
                    retry.push(event);
                }
            }
        }
        if retry.is_empty() {
            break;
        }
        chunk = retry;
    }
    failures
}

/// Unpublished rows (for operators and tests).
pub async fn unpublished_count(db: &impl Executor) -> Result<i64, StoreError> {
    let rows = db.query("select count(*) from cal.outbox where published_at is null", &[]).await?;
    Ok(rows[0].get(0))
}

/// A publisher for tests: records what it accepts and fails entries on
/// demand, per event id and number of attempts.
#[cfg(feature = "testing")]
pub mod fake {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::{EntryFailure, EventPublisher, OutboundEvent, PublishError};

    /// Records accepted entries; fails the entries it was told to.
    #[derive(Default)]
    pub struct FakePublisher {
        state: Mutex<State>,
    }

    #[derive(Default)]
    struct State {
        /// event_id → how many more times to refuse it.
        fail: HashMap<String, u32>,
        /// Refuse the next calls as a whole.
        fail_calls: u32,
        accepted: Vec<OutboundEvent>,
        calls: Vec<Vec<String>>,
    }

    impl FakePublisher {
        /// A publisher that accepts everything.
        pub fn new() -> Self {
            Self::default()
        }

        /// Refuse `event_id` the next `times` times it is put.
        pub fn fail_entry(&self, event_id: &str, times: u32) {
            self.state.lock().unwrap().fail.insert(event_id.to_owned(), times);
        }

        /// Refuse the next `times` calls as a whole.
        pub fn fail_calls(&self, times: u32) {
            self.state.lock().unwrap().fail_calls = times;
        }

        /// Accepted entries in the order accepted.
        pub fn accepted(&self) -> Vec<OutboundEvent> {
            self.state.lock().unwrap().accepted.clone()
        }

        /// The event ids of every call, in order.
        pub fn calls(&self) -> Vec<Vec<String>> {
            self.state.lock().unwrap().calls.clone()
        }
    }

    impl EventPublisher for FakePublisher {
        fn source(&self) -> &str {
            "cal"
        }

        async fn put(&self, events: &[OutboundEvent]) -> Result<Vec<Result<(), EntryFailure>>, PublishError> {
            assert!(events.len() <= super::MAX_ENTRIES_PER_PUT, "more than 10 entries in one put");
            let bytes: usize = events.iter().map(|e| e.put_size("cal")).sum();
            assert!(events.len() == 1 || bytes <= super::MAX_BYTES_PER_PUT, "more than 256 KB in one put");
            let mut st = self.state.lock().unwrap();
            st.calls.push(events.iter().map(|e| e.event_id.clone()).collect());
            if st.fail_calls > 0 {
                st.fail_calls -= 1;
                return Err(PublishError { message: "injected call failure".into(), source: None });
            }
            let mut out = Vec::with_capacity(events.len());
            for e in events {
                match st.fail.get_mut(&e.event_id) {
                    Some(n) if *n > 0 => {
                        *n -= 1;
                        out.push(Err(EntryFailure { code: "InternalFailure".into(), message: "injected".into() }));
                    }
                    _ => {
                        st.accepted.push(e.clone());
                        out.push(Ok(()));
                    }
                }
            }
            Ok(out)
        }
    }
}
