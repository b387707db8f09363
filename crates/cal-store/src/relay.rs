//! The outbox relay (SEMANTICS.md §5): publishes `cal.outbox` rows at least
//! once, in order per user, and marks them published.
//!
//! One run is a sequence of bounded batches, each one transaction:
//!
//! 1. claim up to `batch` pending rows (neither published nor parked) in
//!    `outbox_id` order with `FOR UPDATE SKIP LOCKED`, so concurrent relays
//!    never publish the same row at the same time, leaving out the users
//!    this run already had to hold back (so one stuck user, however many
//!    rows it has, cannot keep every other user's rows from being claimed);
//! 2. keep, per user, only the prefix of the claimed rows that starts at that
//!    user's oldest pending row (a row another relay holds, or one that
//!    failed, blocks the user's later rows: per-user order beats throughput);
//! 3. hand them to an [`EventPublisher`] in puts within EventBridge's
//!    PutEvents limits (at most one entry per user per put), retrying only
//!    the entries that failed, and park those that can never be published;
//! 4. set `published_at` on the accepted rows, `parked_at` and `park_reason`
//!    on the parked ones, and commit.
//!
//! A crash anywhere before the commit leaves every row pending, so the next
//! run sends it again (consumers deduplicate by `event_id`, which is in
//! every detail).
//!
//! Failures, by what they say ([`FailureKind`]):
//!
//! * **The entry can never be published**: it is over the PutEvents entry
//!   limit (checked here before sending: PutEvents would refuse the whole
//!   request, and moto nothing at all), or the bus refused it with a
//!   non-retryable code about the entry. The row is *parked*: kept (never
//!   deleted), marked with why, counted in [`RelayReport::parked`] and
//!   logged at ERROR, so an operator sees it (the Lambdas turn the count
//!   into an alarmed metric) and can replay it. A parked row leaves its
//!   user's order: the user's later rows go out after it.
//! * **Transient** (`InternalFailure`, `ThrottlingException`, or a code this
//!   relay does not know — never park on a guess): retried with backoff;
//!   still failing, the row stays pending and holds back its own user's
//!   later rows until a later run, never another user's.
//! * **The bus itself** (a put that fails as a whole on every attempt —
//!   network, credentials, the service — an entry refused for the caller's
//!   rights or account, or several puts in a row refusing everything): the
//!   run commits what it published and parked so far and returns
//!   [`RelayError::Bus`], so the invocation fails where alarms see it.

use std::collections::HashSet;
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
/// The largest entry PutEvents accepts: one entry may fill a put. A larger
/// one is parked without being sent.
pub const MAX_ENTRY_BYTES: usize = MAX_BYTES_PER_PUT;
/// The [`EntryFailure::code`] of an entry over [`MAX_ENTRY_BYTES`] (ours:
/// PutEvents fails the whole request instead of naming the entry).
pub const ENTRY_TOO_LARGE: &str = "EntryTooLarge";
/// Puts in a row whose every entry was refused (transiently, after every
/// attempt) before the run takes the bus for failing: one user's stuck row
/// is that user's problem, everyone's is the bus's.
const MAX_FAILED_PUTS_IN_A_ROW: u32 = 3;
/// `park_reason` is cut to this many characters (the column's check).
const MAX_PARK_REASON_CHARS: usize = 500;

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
    /// E.g. `InternalFailure`, `ThrottlingException`, `MalformedDetail`.
    pub code: String,
    /// The service's message, for the log.
    pub message: String,
}

/// What a refused entry means for the relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// May succeed on a later try: retried, then left pending.
    Transient,
    /// This entry can never be published: it is parked.
    Permanent,
    /// The caller may not publish at all (rights, account): a failure of
    /// the bus set-up, not of the entry, so nothing is parked for it.
    Bus,
}

impl EntryFailure {
    /// The kind of failure, from PutEvents' documented codes
    /// (`PutEventsResultEntry.ErrorCode`): `InvalidArgument`,
    /// `MalformedDetail` and `RedactionFailure` are non-retryable and about
    /// the entry, as is [`ENTRY_TOO_LARGE`]; `AccessDeniedException`,
    /// `InvalidAccountIdException` and the `NotAuthorizedFor*` codes are
    /// non-retryable but about the caller's rights, which an operator fixes
    /// once for every entry; `InternalFailure`, `ThrottlingException` and
    /// any code not listed are transient.
    pub fn kind(&self) -> FailureKind {
        match self.code.as_str() {
            ENTRY_TOO_LARGE | "InvalidArgument" | "MalformedDetail" | "RedactionFailure" => FailureKind::Permanent,
            "AccessDeniedException"
            | "InvalidAccountIdException"
            | "NotAuthorizedForSourceException"
            | "NotAuthorizedForDetailTypeException" => FailureKind::Bus,
            _ => FailureKind::Transient,
        }
    }
}

impl std::fmt::Display for EntryFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
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

/// What a run did. Every claimed row is counted once: published, parked,
/// failed or deferred.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RelayReport {
    /// Rows published and marked.
    pub published: usize,
    /// Rows the bus can never accept, marked parked (kept, not published;
    /// they no longer hold back their user).
    pub parked: usize,
    /// Rows whose entries still failed after every attempt, or were in a put
    /// when the bus failed (left pending).
    pub failed: usize,
    /// Rows claimed but not sent because an earlier row of their user was
    /// held by another relay or failed, or because the bus failed first
    /// (left pending, order kept).
    pub deferred: usize,
    /// Transactions run.
    pub batches: usize,
}

impl RelayReport {
    fn add(&mut self, other: &RelayReport) {
        self.published += other.published;
        self.parked += other.parked;
        self.failed += other.failed;
        self.deferred += other.deferred;
        self.batches += other.batches;
    }
}

/// Why a run failed. Either way, what earlier batches published and parked
/// was committed; `report` says what the run did up to the failure.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The database failed; the batch in progress was rolled back.
    #[error("the outbox could not be relayed: {source}")]
    Store {
        /// The run up to the failure.
        report: RelayReport,
        /// The failure.
        source: StoreError,
    },
    /// The bus failed; the batch in progress was committed with what went
    /// out before.
    #[error("the event bus failed: {source}")]
    Bus {
        /// The run up to the failure.
        report: RelayReport,
        /// The failure.
        source: PublishError,
    },
}

impl RelayError {
    /// What the run did before it failed.
    pub fn report(&self) -> &RelayReport {
        match self {
            RelayError::Store { report, .. } | RelayError::Bus { report, .. } => report,
        }
    }
}

/// What the batches of one run share.
#[derive(Default)]
struct RunState {
    /// Users with a row left pending in this run: their later rows must
    /// wait, so they are not claimed again until the next run.
    held_back: HashSet<String>,
    /// Consecutive puts whose every entry failed.
    failed_puts: u32,
}

/// Runs the relay until no claimable row is left, `max_batches` ran, or the
/// bus failed ([`RelayError::Bus`], after committing what went out).
pub async fn relay_outbox(
    db: &mut impl Begin,
    publisher: &impl EventPublisher,
    opts: RelayOptions,
) -> Result<RelayReport, RelayError> {
    let mut report = RelayReport::default();
    let mut run = RunState::default();
    for _ in 0..opts.max_batches.max(1) {
        let batch = match relay_batch(db, publisher, opts, &mut run).await {
            Ok(batch) => batch,
            Err(source) => return Err(RelayError::Store { report, source }),
        };
        report.add(&batch.report);
        if let Some(source) = batch.bus {
            return Err(RelayError::Bus { report, source });
        }
        if batch.claimed < opts.batch.max(1) as usize {
            break;
        }
    }
    Ok(report)
}

/// What one transaction of [`relay_outbox`] did.
struct Batch {
    claimed: usize,
    report: RelayReport,
    bus: Option<PublishError>,
}

/// One transaction of [`relay_outbox`]. It commits even when the bus failed
/// midway (that failure is in [`Batch::bus`]), so what went out is marked.
async fn relay_batch(
    db: &mut impl Begin,
    publisher: &impl EventPublisher,
    opts: RelayOptions,
    run: &mut RunState,
) -> Result<Batch, StoreError> {
    let tx = db.begin().await?;
    let skip: Vec<&str> = run.held_back.iter().map(String::as_str).collect();
    let rows = tx
        .query(
            "select outbox_id, event_id::text, event_type, user_id, created_at, payload
             from cal.outbox where published_at is null and parked_at is null and user_id <> all($2)
             order by outbox_id limit $1
             for update skip locked",
            &[&opts.batch.max(1), &skip],
        )
        .await?;
    let claimed: Vec<OutboundEvent> = rows.iter().map(OutboundEvent::from_row).collect();
    let mut report = RelayReport { batches: 1, ..RelayReport::default() };
    if claimed.is_empty() {
        return Ok(Batch { claimed: 0, report, bus: None });
    }
    let (ready, deferred) = in_order_prefix(&tx, &claimed).await?;
    run.held_back.extend(deferred.into_iter().map(|e| e.user_id));
    let outcome = publish_in_order(publisher, &ready, opts, run).await;
    report.published = outcome.published.len();
    report.parked = outcome.parked.len();
    report.failed = outcome.failed;
    report.deferred = claimed.len() - ready.len() + outcome.blocked;
    if !outcome.published.is_empty() {
        tx.execute("update cal.outbox set published_at = now() where outbox_id = any($1)", &[&outcome.published])
            .await?;
    }
    if !outcome.parked.is_empty() {
        let ids: Vec<i64> = outcome.parked.iter().map(|(e, _)| e.outbox_id).collect();
        let reasons: Vec<String> =
            outcome.parked.iter().map(|(_, f)| f.to_string().chars().take(MAX_PARK_REASON_CHARS).collect()).collect();
        tx.execute(
            "update cal.outbox o set parked_at = now(), park_reason = p.reason
             from unnest($1::bigint[], $2::text[]) as p(outbox_id, reason) where o.outbox_id = p.outbox_id",
            &[&ids, &reasons],
        )
        .await?;
    }
    tx.commit().await?;
    // Once per row, after the commit: a rolled-back park is not a park. The
    // payload stays out of the log (it is the provider's data).
    for (e, f) in &outcome.parked {
        tracing::error!(
            outbox_id = e.outbox_id,
            event_id = %e.event_id,
            event_type = %e.event_type,
            user_id = %e.user_id,
            reason = %f,
            "outbox row parked: the bus will never accept it"
        );
    }
    Ok(Batch { claimed: claimed.len(), report, bus: outcome.bus })
}

/// Per user, the claimed rows that directly follow the user's last published
/// or parked row: the longest prefix of the user's pending rows (up to the
/// highest claimed id) that this transaction holds. Returns those and the
/// rest (deferred).
async fn in_order_prefix(
    db: &impl Executor,
    claimed: &[OutboundEvent],
) -> Result<(Vec<OutboundEvent>, Vec<OutboundEvent>), StoreError> {
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
             where published_at is null and parked_at is null and user_id = any($1) and outbox_id <= $2
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
    Ok(claimed.iter().cloned().partition(|e| allowed.contains(&e.outbox_id)))
}

#[derive(Default)]
struct PublishOutcome {
    published: Vec<i64>,
    parked: Vec<(OutboundEvent, EntryFailure)>,
    failed: usize,
    blocked: usize,
    bus: Option<PublishError>,
}

/// Sends `events` in puts within the PutEvents limits, retrying only the
/// failed entries of a put before the next one.
///
/// Order per user is kept strictly: a put carries at most one entry per
/// user (PutEvents does not promise that one call's entries arrive in
/// order, and a retried entry must not be overtaken by a later one of its
/// user that shared its call), and once an entry has failed for good its
/// user's later events are held back for the next run. A parked entry does
/// not hold anyone back. The cost is one put per event for a single busy
/// provider, which the relay's batches absorb.
async fn publish_in_order(
    publisher: &impl EventPublisher,
    events: &[OutboundEvent],
    opts: RelayOptions,
    run: &mut RunState,
) -> PublishOutcome {
    let source = publisher.source().to_owned();
    let mut outcome = PublishOutcome::default();
    let mut remaining: Vec<OutboundEvent> = events.to_vec();
    while !remaining.is_empty() {
        // Only each user's first remaining event is eligible. One too large
        // to ever send is parked at its turn, and the user's next event may
        // take its place in this put.
        let mut chunk: Vec<OutboundEvent> = Vec::new();
        let mut bytes = 0;
        let mut seen: HashSet<&str> = HashSet::new();
        let mut taken: HashSet<i64> = HashSet::new();
        for e in &remaining {
            if seen.contains(e.user_id.as_str()) {
                continue;
            }
            let size = e.put_size(&source);
            if size > MAX_ENTRY_BYTES {
                let message = format!("{size} bytes, more than the {MAX_ENTRY_BYTES} a PutEvents entry may have");
                outcome.parked.push((e.clone(), EntryFailure { code: ENTRY_TOO_LARGE.into(), message }));
                taken.insert(e.outbox_id);
                continue;
            }
            if !chunk.is_empty() && (chunk.len() == MAX_ENTRIES_PER_PUT || bytes + size > MAX_BYTES_PER_PUT) {
                break;
            }
            seen.insert(e.user_id.as_str());
            bytes += size;
            taken.insert(e.outbox_id);
            chunk.push(e.clone());
        }
        remaining.retain(|e| !taken.contains(&e.outbox_id));
        if chunk.is_empty() {
            continue;
        }
        let sent = chunk.len();
        let put = put_with_retries(publisher, chunk, opts).await;
        outcome.published.extend(&put.accepted);
        let mut failed = 0;
        for (e, f) in put.refused {
            if f.kind() == FailureKind::Permanent {
                outcome.parked.push((e, f));
            } else {
                failed += 1;
                run.held_back.insert(e.user_id);
            }
        }
        outcome.failed += failed;
        run.failed_puts = if failed == sent { run.failed_puts + 1 } else { 0 };
        let bus = put.bus.or_else(|| {
            (run.failed_puts >= MAX_FAILED_PUTS_IN_A_ROW).then(|| PublishError {
                message: format!("{MAX_FAILED_PUTS_IN_A_ROW} puts in a row had every entry refused"),
                source: None,
            })
        });
        if let Some(e) = bus {
            // Nothing more goes out in this run: what is left waits, in order.
            outcome.blocked += remaining.len();
            outcome.bus = Some(e);
            break;
        }
        let before = remaining.len();
        remaining.retain(|e| !run.held_back.contains(&e.user_id));
        outcome.blocked += before - remaining.len();
    }
    outcome
}

/// What [`put_with_retries`] ended with.
struct PutOutcome {
    /// The accepted entries' `outbox_id`s.
    accepted: Vec<i64>,
    /// Entries refused for good (permanently, or still transiently after
    /// every attempt, or stopped by the bus failing).
    refused: Vec<(OutboundEvent, EntryFailure)>,
    /// Set when the bus failed: every attempt of a put failed as a whole, or
    /// an entry was refused for the caller's rights.
    bus: Option<PublishError>,
}

/// Puts `chunk`, then re-puts only the entries that failed transiently, up
/// to `opts.attempts` times in all.
async fn put_with_retries(publisher: &impl EventPublisher, mut chunk: Vec<OutboundEvent>, opts: RelayOptions) -> PutOutcome {
    let mut out = PutOutcome { accepted: Vec::new(), refused: Vec::new(), bus: None };
    let mut delay = opts.backoff;
    let attempts = opts.attempts.max(1);
    for attempt in 1..=attempts {
        if attempt > 1 {
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
        }
        // A publisher must answer every entry; anything else counts as a
        // failed call rather than a guess at which entries went through.
        let answer = publisher.put(&chunk).await.and_then(|results| match results.len() == chunk.len() {
            true => Ok(results),
            false => Err(PublishError {
                message: format!("the publisher answered {} entries for {}", results.len(), chunk.len()),
                source: None,
            }),
        });
        let results = match answer {
            Ok(results) => results,
            Err(e) => {
                tracing::warn!(error = %e, attempt, entries = chunk.len(), "put failed as a whole");
                if attempt < attempts {
                    continue;
                }
                let failure = EntryFailure { code: "PutFailed".into(), message: e.message.clone() };
                out.refused.extend(chunk.into_iter().map(|c| (c, failure.clone())));
                out.bus = Some(e);
                return out;
            }
        };
        let mut retry = Vec::new();
        for (event, result) in chunk.into_iter().zip(results) {
            let Err(f) = result else {
                out.accepted.push(event.outbox_id);
                continue;
            };
            tracing::warn!(outbox_id = event.outbox_id, event_id = %event.event_id, code = %f.code, attempt, "entry refused");
            match f.kind() {
                FailureKind::Transient => retry.push((event, f)),
                FailureKind::Permanent => out.refused.push((event, f)),
                FailureKind::Bus => {
                    out.bus.get_or_insert(PublishError { message: format!("the bus refused an entry: {f}"), source: None });
                    out.refused.push((event, f));
                }
            }
        }
        if retry.is_empty() || out.bus.is_some() || attempt == attempts {
            out.refused.extend(retry);
            break;
        }
        chunk = retry.into_iter().map(|(e, _)| e).collect();
    }
    out
}

/// Rows waiting to be published, parked ones not included (for operators
/// and tests).
pub async fn unpublished_count(db: &impl Executor) -> Result<i64, StoreError> {
    let rows =
        db.query("select count(*) from cal.outbox where published_at is null and parked_at is null", &[]).await?;
    Ok(rows[0].get(0))
}

/// Parked rows (for operators and tests): refused for good, kept for replay.
pub async fn parked_count(db: &impl Executor) -> Result<i64, StoreError> {
    let rows = db.query("select count(*) from cal.outbox where parked_at is not null", &[]).await?;
    Ok(rows[0].get(0))
}

/// A publisher for tests: records what it accepts, refuses what PutEvents
/// would (a request over 256 KB, as a whole), and fails entries or calls on
/// demand.
#[cfg(feature = "testing")]
pub mod fake {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::{EntryFailure, EventPublisher, OutboundEvent, PublishError};

    /// Records accepted entries; fails the entries and calls it was told to.
    #[derive(Default)]
    pub struct FakePublisher {
        state: Mutex<State>,
    }

    #[derive(Default)]
    struct State {
        /// event_id → how many more times to refuse it with `InternalFailure`.
        fail: HashMap<String, u32>,
        /// event_id → the code to refuse it with, every time.
        refuse: HashMap<String, String>,
        /// Calls to answer normally before failing `fail_calls` as a whole.
        calls_before_failing: u32,
        /// Refuse the next calls as a whole.
        fail_calls: u32,
        accepted: Vec<OutboundEvent>,
        calls: Vec<Vec<String>>,
    }

    impl FakePublisher {
        /// A publisher that accepts everything within the PutEvents limits.
        pub fn new() -> Self {
            Self::default()
        }

        /// Refuse `event_id` the next `times` times it is put, with
        /// `InternalFailure` (transient).
        pub fn fail_entry(&self, event_id: &str, times: u32) {
            self.state.lock().unwrap().fail.insert(event_id.to_owned(), times);
        }

        /// Refuse `event_id` every time it is put, with `code` (e.g.
        /// `MalformedDetail`, `AccessDeniedException`).
        pub fn refuse_entry(&self, event_id: &str, code: &str) {
            self.state.lock().unwrap().refuse.insert(event_id.to_owned(), code.to_owned());
        }

        /// Refuse the next `times` calls as a whole.
        pub fn fail_calls(&self, times: u32) {
            self.fail_calls_after(0, times);
        }

        /// Answer `ok` calls, then refuse `times` calls as a whole.
        pub fn fail_calls_after(&self, ok: u32, times: u32) {
            let mut st = self.state.lock().unwrap();
            st.calls_before_failing = ok;
            st.fail_calls = times;
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
            let mut st = self.state.lock().unwrap();
            st.calls.push(events.iter().map(|e| e.event_id.clone()).collect());
            if st.calls_before_failing > 0 {
                st.calls_before_failing -= 1;
            } else if st.fail_calls > 0 {
                st.fail_calls -= 1;
                return Err(PublishError { message: "injected call failure".into(), source: None });
            }
            // PutEvents refuses such a request as a whole (a
            // ValidationException), naming no entry.
            let bytes: usize = events.iter().map(|e| e.put_size(self.source())).sum();
            if bytes > super::MAX_BYTES_PER_PUT {
                return Err(PublishError {
                    message: format!("ValidationException: {bytes} bytes, over the {} a request may have", super::MAX_BYTES_PER_PUT),
                    source: None,
                });
            }
            let mut out = Vec::with_capacity(events.len());
            for e in events {
                if let Some(code) = st.refuse.get(&e.event_id) {
                    out.push(Err(EntryFailure { code: code.clone(), message: "injected refusal".into() }));
                    continue;
                }
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
