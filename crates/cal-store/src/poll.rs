//! The ICS poller's side of `cal.external_source` (SEMANTICS.md §3, §6):
//! which sources are due, and what a poll's success or failure writes.
//!
//! * [`due_sources`] claims a bounded batch of due sources in one statement
//!   (`FOR UPDATE SKIP LOCKED`, `next_poll_at` pushed forward by
//!   [`LEASE_SECS`]), so two orchestrations never poll one source twice.
//! * [`record_success`] applies a poll's busy occurrences as a diff against
//!   the stored `cal.external_event` rows, in one transaction with the poll
//!   state, the outbox row and (only if busy time changed) the version bump.
//! * [`record_failure`] keeps every stored row — an import error must never
//!   make busy time look free — and backs off exponentially.
//!
//! The URL is a secret (see [`crate::sources`]): it leaves this module only
//! inside [`SecretUrl`], whose `Debug` shows the host, and it is never part
//! of an outbox payload or of `last_error`.
//!
//! ## Occurrence identity
//!
//! A stored occurrence is keyed by `(uid, recurrence_id)` (the table's
//! primary key): `recurrence_id` is the occurrence's RECURRENCE-ID (or the
//! generated instance's original start) in RFC 3339 UTC, and `''` for a
//! non-recurring event, as the migration documents. So a moved single
//! event, or a moved occurrence of a series, is an *update*, not a delete
//! plus an insert. A calendar that repeats a UID without RECURRENCE-ID (not
//! valid RFC 5545, but seen) would collide; such duplicates, in the sorted
//! order `cal_core` returns them, get `#2`, `#3`, … appended to the key, so
//! every occurrence is kept and the keys are stable across identical polls.
//! A UID longer than [`MAX_UID_CHARS`] is stored as `sha256:<hex>` of
//! itself, so a hostile feed cannot break the primary key's index.

use std::collections::HashMap;

use cal_core::ics_in::BusyOccurrence;
use cal_core::time::{Instant, Interval, Zone};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio_postgres::Row;
use url::Url;

use crate::db::{Begin, Executor};
use crate::error::StoreError;
use crate::outbox;

/// A poll applied a change, or a failing source recovered (payload without the URL).
pub const POLL_OK: &str = "cal.ics.poll.ok";
/// A poll failed; the source's last good data stays (payload without the URL).
pub const POLL_ERROR: &str = "cal.ics.poll.error";

/// How far [`due_sources`] pushes `next_poll_at` of what it claims: long
/// enough for a whole Map run of the state machine (a batch of 100 at
/// concurrency 10, each poll bounded by the fetch timeout), after which an
/// unfinished source is simply due again.
pub const LEASE_SECS: i64 = 10 * 60;
/// Next poll after one that changed busy time.
pub const CHANGED_INTERVAL_SECS: i64 = 15 * 60;
/// Longest interval between polls of an unchanged calendar (it doubles from
/// [`CHANGED_INTERVAL_SECS`] up to this).
pub const MAX_UNCHANGED_INTERVAL_SECS: i64 = 6 * 3600;
/// Backoff after the first failure; doubled per consecutive failure.
pub const FAILURE_BASE_SECS: i64 = 5 * 60;
/// Longest backoff after failures.
pub const MAX_FAILURE_BACKOFF_SECS: i64 = 24 * 3600;
/// Booking horizon for a provider without an active rule (cal-core's default).
pub const DEFAULT_HORIZON_DAYS: i32 = 60;
/// Longest `last_error` stored, in characters.
pub const MAX_ERROR_CHARS: usize = 500;
/// Longest UID stored as is (see the module docs).
pub const MAX_UID_CHARS: usize = 255;
/// Longest summary stored, in characters.
pub const MAX_SUMMARY_CHARS: usize = 500;

const TABLE: &str = "cal.external_source";

/// A source's URL: the secret. `Debug` shows scheme and host only.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// The full URL, for the HTTP client only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `https://calendar.example.com/…`: safe to log.
    pub fn hint(&self) -> String {
        match Url::parse(&self.0) {
            Ok(u) => format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or_default()),
            Err(_) => "(unreadable URL)".to_owned(),
        }
    }
}

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SecretUrl").field(&self.hint()).finish()
    }
}

/// A source to poll, with what a conditional GET needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueSource {
    /// `src_…`.
    pub source_id: String,
    /// The provider.
    pub user_id: String,
    /// The URL to fetch. Internal only: never into a payload, log or error.
    pub url: SecretUrl,
    /// The last response's `ETag`, echoed as `If-None-Match`.
    pub etag: Option<String>,
    /// The last response's `Last-Modified`, echoed as `If-Modified-Since`.
    pub last_modified: Option<String>,
    /// SHA-256 of the last body parsed.
    pub content_hash: Option<[u8; 32]>,
    /// When a poll last succeeded (decides [`DueSource::conditional`]).
    pub last_success_at: Option<Instant>,
    /// Places floating and all-day times: the zone of the provider's first
    /// active weekly rule, else UTC.
    pub provider_zone: Zone,
    /// The provider's longest booking window over its active rules (else
    /// [`DEFAULT_HORIZON_DAYS`]): how far ahead occurrences matter.
    pub horizon_days: i32,
}

/// What a conditional poll may skip: sent as `If-None-Match` /
/// `If-Modified-Since`, and the body hash that means "unchanged".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conditional<'a> {
    /// The stored ETag.
    pub etag: Option<&'a str>,
    /// The stored Last-Modified.
    pub last_modified: Option<&'a str>,
    /// The stored body hash.
    pub content_hash: Option<&'a [u8; 32]>,
}

impl DueSource {
    /// The conditional-GET state to use at `now`, or `None` for a full
    /// fetch and parse.
    ///
    /// An unchanged body does not mean unchanged busy rows: the horizon
    /// moves with the clock, so a weekly series needs new occurrences
    /// expanded at its far end even if the file never changes. The first
    /// successful poll of each UTC day therefore fetches and parses in full
    /// (the poller expands a couple of days past the horizon to cover the
    /// gap); later polls that day may stop at a 304 or an equal hash.
    pub fn conditional(&self, now: Instant) -> Option<Conditional<'_>> {
        let last = self.last_success_at?;
        if last.to_chrono().date_naive() != now.to_chrono().date_naive() {
            return None;
        }
        Some(Conditional {
            etag: self.etag.as_deref(),
            last_modified: self.last_modified.as_deref(),
            content_hash: self.content_hash.as_ref(),
        })
    }
}

const DUE_COLUMNS: &str = "s.source_id, s.user_id, s.url, s.etag, s.last_modified, s.content_hash, s.last_success_at,
     (select r.timezone from cal.weekly_rule r where r.user_id = s.user_id and r.active
       order by r.created_at, r.rule_id limit 1) as provider_zone,
     (select max(r.booking_window_days) from cal.weekly_rule r where r.user_id = s.user_id and r.active) as horizon_days";

/// The provider's zone for floating and all-day times: the zone of the
/// first active weekly rule (`stored`), UTC without one. A rule's zone is
/// checked when written; one the tz database later dropped must not stop
/// this provider's imports, so it falls back to UTC with a warning naming
/// `whose` (a source or connection id) for the operator.
pub(crate) fn zone_or_utc(stored: Option<String>, whose: &str) -> Zone {
    match stored.as_deref().map(Zone::parse) {
        None => Zone::parse("UTC").expect("UTC is a zone"),
        Some(Ok(z)) => z,
        Some(Err(_)) => {
            tracing::warn!(whose, table = "cal.weekly_rule", column = "timezone", "unknown zone; reading in UTC");
            Zone::parse("UTC").expect("UTC is a zone")
        }
    }
}

fn due_source(row: &Row) -> Result<DueSource, StoreError> {
    let source_id: String = row.try_get("source_id")?;
    let hash: Option<Vec<u8>> = row.try_get("content_hash")?;
    let content_hash = match hash {
        None => None,
        Some(h) => Some(
            <[u8; 32]>::try_from(h.as_slice()).map_err(|_| StoreError::corrupt(TABLE, &source_id, "content_hash"))?,
        ),
    };
    let provider_zone = zone_or_utc(row.try_get("provider_zone")?, &source_id);
    Ok(DueSource {
        user_id: row.try_get("user_id")?,
        url: SecretUrl(row.try_get("url")?),
        etag: row.try_get("etag")?,
        last_modified: row.try_get("last_modified")?,
        content_hash,
        last_success_at: row.try_get::<_, Option<DateTime<Utc>>>("last_success_at")?.map(Instant::from_chrono),
        provider_zone,
        horizon_days: row.try_get::<_, Option<i32>>("horizon_days")?.unwrap_or(DEFAULT_HORIZON_DAYS),
        source_id,
    })
}

/// Claims up to `limit` sources that are due at `now` (not paused,
/// `next_poll_at <= now`), longest overdue first, and pushes their
/// `next_poll_at` to `now + LEASE_SECS` in the same statement.
///
/// Concurrent callers never get the same source: rows another claim holds
/// are skipped, and a row it already moved no longer matches. A claimed
/// source whose poll never reports back is due again when the lease ends.
pub async fn due_sources(db: &impl Executor, now: Instant, limit: i64) -> Result<Vec<DueSource>, StoreError> {
    let now_utc = now.to_chrono();
    let lease_end = now.plus_secs(LEASE_SECS).to_chrono();
    let rows = db
        .query(
            &format!(
                "with due as (
                   select source_id, next_poll_at from cal.external_source
                    where status <> 'paused' and next_poll_at <= $1
                    order by next_poll_at, source_id
                    limit $2
                    for update skip locked
                 )
                 update cal.external_source s
                    set next_poll_at = $3, updated_at = $1
                   from due
                  where s.source_id = due.source_id
                 returning {DUE_COLUMNS}, due.next_poll_at as was_due"
            ),
            &[&now_utc, &limit.max(0), &lease_end],
        )
        .await?;
    let mut claimed = rows
        .iter()
        .map(|r| Ok((r.try_get::<_, DateTime<Utc>>("was_due")?, due_source(r)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    // RETURNING has no order of its own.
    claimed.sort_by(|(a, x), (b, y)| a.cmp(b).then_with(|| x.source_id.cmp(&y.source_id)));
    Ok(claimed.into_iter().map(|(_, s)| s).collect())
}

/// The source `source_id` as the poll task needs it, unless it is gone or
/// paused (`None`): the state machine carries ids only, never URLs.
pub async fn source_for_poll(db: &impl Executor, source_id: &str) -> Result<Option<DueSource>, StoreError> {
    let rows = db
        .query(
            &format!("select {DUE_COLUMNS} from cal.external_source s where s.source_id = $1 and s.status <> 'paused'"),
            &[&source_id],
        )
        .await?;
    rows.first().map(due_source).transpose()
}

/// A successful poll, as [`record_success`] stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollSuccess {
    /// `ETag` to send next time (`None`: the server sent none).
    pub etag: Option<String>,
    /// `Last-Modified` to send next time.
    pub last_modified: Option<String>,
    /// SHA-256 of the body (on a 304: the stored one).
    pub content_hash: Option<[u8; 32]>,
    /// The busy occurrences inside `horizon`; `None` when the calendar is
    /// unchanged (304, or a body with the stored hash): rows stay as they are.
    pub busy: Option<Vec<BusyOccurrence>>,
    /// Warnings of the parse (ignored when `busy` is `None`: the stored
    /// count, from the parse that produced the rows, stays).
    pub warnings: usize,
    /// The window the busy occurrences were expanded in. Stored rows that
    /// ended before its start are pruned: past time no longer matters.
    pub horizon: Interval,
}

/// What [`record_success`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SuccessRecord {
    /// Occurrences added.
    pub inserted: u64,
    /// Occurrences gone from the calendar.
    pub deleted: u64,
    /// Occurrences whose time or summary changed.
    pub updated: u64,
    /// Stored occurrences that ended before the horizon, removed without
    /// counting as a change.
    pub pruned: u64,
    /// Whether busy time changed (version bumped).
    pub busy_changed: bool,
    /// The provider's new version when bumped.
    pub version: Option<i64>,
    /// When the source is due next.
    pub next_poll_at: Instant,
}

/// One stored or new occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Occ {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    summary: Option<String>,
}

fn stored_uid(uid: &str) -> String {
    if uid.chars().count() <= MAX_UID_CHARS {
        return uid.to_owned();
    }
    let digest = Sha256::digest(uid.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// `busy` keyed as the module docs say.
fn keyed(busy: &[BusyOccurrence]) -> HashMap<(String, String), Occ> {
    let mut out = HashMap::with_capacity(busy.len());
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for b in busy {
        let uid = stored_uid(&b.uid);
        let base = b.recurrence_id.map(Instant::rfc3339).unwrap_or_default();
        let n = seen.entry((uid.clone(), base.clone())).or_insert(0);
        *n += 1;
        let rid = if *n == 1 { base } else { format!("{base}#{n}") };
        let summary: String = b.summary.chars().take(MAX_SUMMARY_CHARS).collect();
        let summary = (!summary.is_empty()).then_some(summary);
        out.insert((uid, rid), Occ { start: b.start.to_chrono(), end: b.end.to_chrono(), summary });
    }
    out
}

fn secs_between(a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
    (b - a).num_seconds()
}

/// Records a successful poll of `source_id` at `now`, in one transaction:
///
/// * with `busy`, the stored occurrences become exactly `busy` by a diff —
///   rows that vanished are deleted, new ones inserted, changed ones
///   updated, the rest untouched — and rows that ended before the horizon
///   are pruned;
/// * the poll state: `last_polled_at`, `last_success_at`,
///   `consecutive_failures` 0, `last_error` cleared, a failing source back
///   to `active`, the conditional-GET state, `warning_count`;
/// * `next_poll_at`: [`CHANGED_INTERVAL_SECS`] after a change of busy time,
///   else twice the previous interval, between that and
///   [`MAX_UNCHANGED_INTERVAL_SECS`];
/// * `cal.ics.poll.ok` when an occurrence changed or the source recovered
///   from failures (an unchanged poll is not an event), and the provider's
///   version bumped only if busy time changed.
///
/// A source that is gone (disconnected meanwhile) is [`StoreError::NotFound`].
pub async fn record_success(
    db: &mut impl Begin,
    source_id: &str,
    now: Instant,
    poll: PollSuccess,
) -> Result<SuccessRecord, StoreError> {
    let now_utc = now.to_chrono();
    let tx = db.begin().await?;
    let user_id = lock_provider_then_source(&tx, source_id).await?;
    let state = tx
        .query(
            "select last_polled_at, consecutive_failures from cal.external_source where source_id = $1 for update",
            &[&source_id],
        )
        .await?;
    let Some(state) = state.first() else { return Err(not_found(source_id)) };
    let last_polled_at: Option<DateTime<Utc>> = state.try_get(0)?;
    let failures_before: i32 = state.try_get(1)?;

    let horizon_start = poll.horizon.start().to_chrono();
    let (mut inserted, mut deleted, mut updated, mut pruned, mut busy_changed) = (0, 0, 0, 0, false);
    if let Some(busy) = &poll.busy {
        let new = keyed(busy);
        let old: HashMap<(String, String), Occ> = tx
            .query(
                "select uid, recurrence_id, start_at, end_at, summary from cal.external_event where source_id = $1",
                &[&source_id],
            )
            .await?
            .iter()
            .map(|r| {
                Ok((
                    (r.try_get(0)?, r.try_get(1)?),
                    Occ { start: r.try_get(2)?, end: r.try_get(3)?, summary: r.try_get(4)? },
                ))
            })
            .collect::<Result<_, StoreError>>()?;

        let (mut gone_uid, mut gone_rid) = (Vec::new(), Vec::new());
        for ((uid, rid), occ) in &old {
            if !new.contains_key(&(uid.clone(), rid.clone())) {
                if occ.end <= horizon_start {
                    pruned += 1;
                } else {
                    deleted += 1;
                }
                gone_uid.push(uid.as_str());
                gone_rid.push(rid.as_str());
            }
        }
        let mut ins: Columns = Columns::default();
        let mut upd: Columns = Columns::default();
        for (key, occ) in &new {
            match old.get(key) {
                None => ins.push(key, occ),
                Some(prev) if prev != occ => {
                    busy_changed |= prev.start != occ.start || prev.end != occ.end;
                    upd.push(key, occ);
                }
                Some(_) => {}
            }
        }
        inserted = ins.uid.len() as u64;
        updated = upd.uid.len() as u64;
        busy_changed |= inserted > 0 || deleted > 0;

        if !gone_uid.is_empty() {
            tx.execute(
                "delete from cal.external_event e
                  using unnest($2::text[], $3::text[]) as g(uid, rid)
                  where e.source_id = $1 and e.uid = g.uid and e.recurrence_id = g.rid",
                &[&source_id, &gone_uid, &gone_rid],
            )
            .await?;
        }
        if !upd.uid.is_empty() {
            tx.execute(
                "update cal.external_event e
                    set start_at = u.s, end_at = u.e, summary = u.summary
                   from unnest($2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::text[])
                        as u(uid, rid, s, e, summary)
                  where e.source_id = $1 and e.uid = u.uid and e.recurrence_id = u.rid",
                &[&source_id, &upd.uid, &upd.rid, &upd.start, &upd.end, &upd.summary],
            )
            .await?;
        }
        if !ins.uid.is_empty() {
            tx.execute(
                "insert into cal.external_event (source_id, user_id, uid, recurrence_id, start_at, end_at, summary)
                 select $1, $2, u.uid, u.rid, u.s, u.e, u.summary
                   from unnest($3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::text[])
                        as u(uid, rid, s, e, summary)",
                &[&source_id, &user_id, &ins.uid, &ins.rid, &ins.start, &ins.end, &ins.summary],
            )
            .await?;
        }
    } else {
        // Unchanged: only past occurrences go.
        pruned = tx
            .execute(
                "delete from cal.external_event where source_id = $1 and end_at <= $2",
                &[&source_id, &horizon_start],
            )
            .await?;
    }

    let interval = if busy_changed {
        CHANGED_INTERVAL_SECS
    } else {
        let previous = last_polled_at.map_or(0, |t| secs_between(t, now_utc));
        previous.saturating_mul(2).clamp(CHANGED_INTERVAL_SECS, MAX_UNCHANGED_INTERVAL_SECS)
    };
    let next_poll_at = now.plus_secs(interval);
    let warnings = poll.busy.as_ref().map(|_| i32::try_from(poll.warnings).unwrap_or(i32::MAX));
    tx.execute(
        "update cal.external_source
            set last_polled_at = $2, last_success_at = $2, consecutive_failures = 0, last_error = null,
                status = case when status = 'error' then 'active' else status end,
                etag = $3, last_modified = $4, content_hash = $5,
                warning_count = coalesce($6, warning_count), next_poll_at = $7, updated_at = $2
          where source_id = $1",
        &[
            &source_id,
            &now_utc,
            &poll.etag,
            &poll.last_modified,
            &poll.content_hash.as_ref().map(|h| &h[..]),
            &warnings,
            &next_poll_at.to_chrono(),
        ],
    )
    .await?;

    let version = if busy_changed { Some(outbox::bump_version(&tx, &user_id).await?) } else { None };
    let recovered = failures_before > 0;
    if inserted + deleted + updated > 0 || recovered {
        let payload = json!({
            "source_id": source_id,
            "user_id": user_id,
            "inserted": inserted,
            "deleted": deleted,
            "updated": updated,
            "warnings": warnings.map_or(serde_json::Value::Null, |w| w.into()),
            "busy_changed": busy_changed,
            "recovered": recovered,
            "version": version,
        });
        outbox::enqueue(&tx, POLL_OK, &user_id, &payload).await?;
    }
    tx.commit().await?;
    Ok(SuccessRecord { inserted, deleted, updated, pruned, busy_changed, version, next_poll_at })
}

/// Column arrays for one `unnest` statement.
#[derive(Default)]
struct Columns {
    uid: Vec<String>,
    rid: Vec<String>,
    start: Vec<DateTime<Utc>>,
    end: Vec<DateTime<Utc>>,
    summary: Vec<Option<String>>,
}

impl Columns {
    fn push(&mut self, (uid, rid): &(String, String), occ: &Occ) {
        self.uid.push(uid.clone());
        self.rid.push(rid.clone());
        self.start.push(occ.start);
        self.end.push(occ.end);
        self.summary.push(occ.summary.clone());
    }
}

/// Takes the provider's version row, then the source's row, in that order —
/// the order every writer uses (`bump_version` first) — so a poll and a
/// disconnect of the same provider cannot deadlock. Returns the provider.
async fn lock_provider_then_source(db: &impl Executor, source_id: &str) -> Result<String, StoreError> {
    let rows = db.query("select user_id from cal.external_source where source_id = $1", &[&source_id]).await?;
    let Some(row) = rows.first() else { return Err(not_found(source_id)) };
    let user_id: String = row.try_get(0)?;
    db.execute(
        "insert into cal.provider_version (user_id, version) values ($1, 0) on conflict (user_id) do nothing",
        &[&user_id],
    )
    .await?;
    db.execute("select 1 from cal.provider_version where user_id = $1 for update", &[&user_id]).await?;
    Ok(user_id)
}

/// What [`record_failure`] set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureRecord {
    /// Failed polls since the last success, this one included.
    pub consecutive_failures: i32,
    /// When the source is due next.
    pub next_poll_at: Instant,
    /// The error as stored (URL-free, cut to [`MAX_ERROR_CHARS`]).
    pub last_error: String,
}

/// The backoff after the `failures`-th consecutive failure:
/// [`FAILURE_BASE_SECS`] × 2^(failures−1), at most
/// [`MAX_FAILURE_BACKOFF_SECS`], less up to a tenth as jitter so sources
/// that failed together (a provider's outage) do not come back together.
/// The jitter is a hash of the source and the count: deterministic, so a
/// test can know it, and different per source.
pub fn failure_backoff_secs(source_id: &str, failures: i32) -> i64 {
    let exp = failures.clamp(1, 20) - 1;
    let delay = FAILURE_BASE_SECS.saturating_mul(1i64 << exp).min(MAX_FAILURE_BACKOFF_SECS);
    let digest = Sha256::new().chain_update(source_id.as_bytes()).chain_update(failures.to_be_bytes()).finalize();
    let h = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    let jitter = (h % (delay as u64 / 10 + 1)) as i64;
    delay - jitter
}

/// Records a failed poll of `source_id` at `now`. `error` is shown to the
/// provider: it must be client-safe; as a second line of defence the
/// source's URL is replaced by its host wherever it appears, and the text is
/// cut at [`MAX_ERROR_CHARS`].
///
/// Every `cal.external_event` row stays (SEMANTICS.md §3: the last good data
/// keeps blocking). `consecutive_failures` goes up, `next_poll_at` backs off
/// ([`failure_backoff_secs`]), the source is marked `error` (unless paused),
/// and `cal.ics.poll.error` is written. Busy time did not change: no
/// version bump. A source that is gone is [`StoreError::NotFound`].
pub async fn record_failure(
    db: &mut impl Begin,
    source_id: &str,
    now: Instant,
    error: &str,
) -> Result<FailureRecord, StoreError> {
    let now_utc = now.to_chrono();
    let tx = db.begin().await?;
    let rows = tx
        .query(
            "select user_id, url, consecutive_failures from cal.external_source where source_id = $1 for update",
            &[&source_id],
        )
        .await?;
    let Some(row) = rows.first() else { return Err(not_found(source_id)) };
    let user_id: String = row.try_get(0)?;
    let url = SecretUrl(row.try_get(1)?);
    let failures = row.try_get::<_, i32>(2)?.saturating_add(1);
    let message = safe_error(error, &url);
    let next_poll_at = now.plus_secs(failure_backoff_secs(source_id, failures));
    tx.execute(
        "update cal.external_source
            set last_polled_at = $2, consecutive_failures = $3, last_error = $4, next_poll_at = $5,
                status = case when status = 'paused' then status else 'error' end, updated_at = $2
          where source_id = $1",
        &[&source_id, &now_utc, &failures, &message, &next_poll_at.to_chrono()],
    )
    .await?;
    let payload = json!({
        "source_id": source_id,
        "user_id": user_id,
        "error": message,
        "consecutive_failures": failures,
        "next_poll_at": next_poll_at,
    });
    outbox::enqueue(&tx, POLL_ERROR, &user_id, &payload).await?;
    tx.commit().await?;
    Ok(FailureRecord { consecutive_failures: failures, next_poll_at, last_error: message })
}

fn safe_error(error: &str, url: &SecretUrl) -> String {
    let mut text = error.trim().to_owned();
    let secret = url.expose();
    if !secret.is_empty() {
        text = text.replace(secret, &url.hint());
        // The path alone (query included) is the secret part too.
        if let Ok(u) = Url::parse(secret) {
            let tail = &secret[u.host_str().map_or(0, |h| secret.find(h).map_or(0, |i| i + h.len()))..];
            if tail.len() > 1 {
                text = text.replace(tail, "/…");
            }
        }
    }
    if text.is_empty() {
        text = "poll failed".to_owned();
    }
    text.chars().take(MAX_ERROR_CHARS).collect()
}

fn not_found(source_id: &str) -> StoreError {
    StoreError::NotFound { entity: "external_source", id: source_id.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn occ(uid: &str, start: i64, rid: Option<i64>) -> BusyOccurrence {
        BusyOccurrence {
            start: Instant::from_unix(start),
            end: Instant::from_unix(start + 3600),
            uid: uid.into(),
            summary: "x".into(),
            recurrence_id: rid.map(Instant::from_unix),
        }
    }

    #[test]
    fn keys_are_uid_and_recurrence_id_with_duplicates_numbered() {
        let k = keyed(&[occ("a", 0, None), occ("a", 7200, None), occ("b", 0, Some(0)), occ("b", 86400, Some(86400))]);
        let mut keys: Vec<_> = k.keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            vec![
                ("a".into(), "".into()),
                ("a".into(), "#2".into()),
                ("b".into(), "1970-01-01T00:00:00Z".into()),
                ("b".into(), "1970-01-02T00:00:00Z".into()),
            ]
        );
        let long = "u".repeat(MAX_UID_CHARS + 1);
        assert!(stored_uid(&long).starts_with("sha256:"));
        assert_eq!(stored_uid("short"), "short");
    }

    #[test]
    fn failure_backoff_doubles_and_caps() {
        let b: Vec<i64> = (1..=12).map(|n| failure_backoff_secs("src_x", n)).collect();
        for (n, secs) in b.iter().enumerate() {
            let full = (FAILURE_BASE_SECS << n).min(MAX_FAILURE_BACKOFF_SECS);
            assert!(*secs <= full && *secs >= full - full / 10, "failure {}: {secs} vs {full}", n + 1);
        }
        assert_eq!(failure_backoff_secs("src_x", 3), failure_backoff_secs("src_x", 3), "deterministic");
        assert!(b[11] <= MAX_FAILURE_BACKOFF_SECS);
    }

    #[test]
    fn errors_never_carry_the_url() {
        let url = SecretUrl("https://cal.example.com/private-s3cr3t/basic.ics?k=v".into());
        let e = safe_error(
            "GET https://cal.example.com/private-s3cr3t/basic.ics?k=v failed; /private-s3cr3t/basic.ics?k=v",
            &url,
        );
        assert!(!e.contains("s3cr3t"), "{e}");
        assert!(e.contains("https://cal.example.com/…"), "{e}");
        assert!(!format!("{url:?}").contains("s3cr3t"));
    }
}
