//! Holds and bookings (SEMANTICS.md §5) as store-backed services: the
//! resolvers, the jobs and calctl all call these functions.
//!
//! Every write happens in one transaction that starts with a per-provider
//! advisory lock, so one provider's bookings happen one after another; the
//! exclusion constraints of `migrations/0002` are the backstop that makes an
//! overlap impossible to store even if this code were wrong. Under the lock
//! the change is re-checked, written with its outbox row and the provider's
//! new version, and committed; a refusal rolls back: nothing is stored.
//! Confirming, releasing, rescheduling and cancelling read and re-check under
//! the lock; creating a hold, the hot path, reads and checks first and lets
//! its one-statement write re-check by the provider's version (see
//! [`create_hold`]); with a process's calendar cache it can skip the read
//! ([`create_hold_cached`]). A customer's hold limit is counted by that same
//! write, under a per-customer lock it takes before the provider's
//! ([`HoldPolicy`]).

use cal_core::feasibility::{EventStatus, HoldStatus};
use cal_core::holds::{self, Conversion, HoldKind, HoldMode, HoldRequest};
use cal_core::time::{Instant, Interval, Zone};
use cal_core::BookingError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::calendar::{self, CalendarParams, ReadParts, ReadShape, load_calendar};
use crate::db::{Begin, Executor};
use crate::hold_cache::{self, CalendarCache, Cached, Span};
use crate::error::StoreError;
use crate::outbox;

/// `cal.hold.created`
pub const HOLD_CREATED: &str = "cal.hold.created";
/// `cal.hold.expired`
pub const HOLD_EXPIRED: &str = "cal.hold.expired";
/// `cal.hold.released`
pub const HOLD_RELEASED: &str = "cal.hold.released";
/// `cal.event.confirmed`
pub const EVENT_CONFIRMED: &str = "cal.event.confirmed";
/// `cal.event.rescheduled`
pub const EVENT_RESCHEDULED: &str = "cal.event.rescheduled";
/// `cal.event.cancelled`
pub const EVENT_CANCELLED: &str = "cal.event.cancelled";

/// Columns read by [`HoldRecord::from_row`].
const HOLD_RECORD: &str = "hold_id, user_id, role_code, customer_id, start_at, end_at, kind, mode, status, \
     expires_at, event_id, converted_event_id, idempotency_key, request_fingerprint, created_at";

/// Columns read by [`EventRecord::from_row`].
pub(crate) const EVENT_RECORD: &str = "event_id, user_id, role_code, customer_id, hold_id, start_at, end_at, status, sequence, \
     ics_uid, summary, timezone, created_at, updated_at";

/// A hold as stored; fields mirror `cal.hold` (migrations/0002).
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HoldRecord {
    pub hold_id: String,
    pub user_id: String,
    pub role_code: String,
    pub customer_id: Option<String>,
    pub start: Instant,
    pub end: Instant,
    pub kind: HoldKind,
    pub mode: HoldMode,
    /// The stored status; see [`HoldRecord::status_at`] for the effective one.
    pub status: HoldStatus,
    pub expires_at: Instant,
    pub event_id: Option<String>,
    pub converted_event_id: Option<String>,
    pub idempotency_key: String,
    #[serde(skip)]
    pub request_fingerprint: String,
    pub created_at: Instant,
}

impl HoldRecord {
    /// The status at `now`: an active hold past its expiry is expired even
    /// before the sweeper marks it.
    pub fn status_at(&self, now: Instant) -> HoldStatus {
        match self.status {
            HoldStatus::Active if self.expires_at <= now => HoldStatus::Expired,
            s => s,
        }
    }

    fn from_row(row: &Row) -> Result<Self, StoreError> {
        let hold_id: String = row.try_get("hold_id")?;
        let bad = |column: &'static str| StoreError::corrupt("cal.hold", &hold_id, column);
        Ok(HoldRecord {
            user_id: row.try_get("user_id")?,
            role_code: row.try_get("role_code")?,
            customer_id: row.try_get("customer_id")?,
            start: instant(row, "start_at")?,
            end: instant(row, "end_at")?,
            kind: HoldKind::parse(row.try_get("kind")?).ok_or_else(|| bad("kind"))?,
            mode: HoldMode::parse(row.try_get("mode")?).ok_or_else(|| bad("mode"))?,
            status: HoldStatus::parse(row.try_get("status")?).ok_or_else(|| bad("status"))?,
            expires_at: instant(row, "expires_at")?,
            event_id: row.try_get("event_id")?,
            converted_event_id: row.try_get("converted_event_id")?,
            idempotency_key: row.try_get("idempotency_key")?,
            request_fingerprint: row.try_get("request_fingerprint")?,
            created_at: instant(row, "created_at")?,
            hold_id,
        })
    }

    /// The hold in event payloads: ids and bounded fields only, so not the
    /// idempotency key (the caller's free text).
    fn payload(&self) -> serde_json::Value {
        without(serde_json::to_value(self).expect("a hold serializes"), &["idempotency_key"])
    }
}

/// A booked event as stored; fields mirror `cal.event` (migrations/0002).
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventRecord {
    pub event_id: String,
    pub user_id: String,
    pub role_code: String,
    pub customer_id: Option<String>,
    pub hold_id: Option<String>,
    pub start: Instant,
    pub end: Instant,
    pub status: EventStatus,
    /// ICS SEQUENCE: 0 when booked, +1 per reschedule and on cancellation.
    pub sequence: i32,
    /// ICS UID, stable for the event's life.
    pub ics_uid: String,
    pub summary: Option<String>,
    /// The provider's zone, for local renderings.
    pub timezone: Zone,
    pub created_at: Instant,
    pub updated_at: Instant,
}

impl EventRecord {
    pub(crate) fn from_row(row: &Row) -> Result<Self, StoreError> {
        let event_id: String = row.try_get("event_id")?;
        let bad = |column: &'static str| StoreError::corrupt("cal.event", &event_id, column);
        Ok(EventRecord {
            user_id: row.try_get("user_id")?,
            role_code: row.try_get("role_code")?,
            customer_id: row.try_get("customer_id")?,
            hold_id: row.try_get("hold_id")?,
            start: instant(row, "start_at")?,
            end: instant(row, "end_at")?,
            status: EventStatus::parse(row.try_get("status")?).ok_or_else(|| bad("status"))?,
            sequence: row.try_get("sequence")?,
            ics_uid: row.try_get("ics_uid")?,
            summary: row.try_get("summary")?,
            timezone: Zone::parse(row.try_get("timezone")?).map_err(|_| bad("timezone"))?,
            created_at: instant(row, "created_at")?,
            updated_at: instant(row, "updated_at")?,
            event_id,
        })
    }

    /// The event as its e-mail attachment shows it (SEMANTICS.md §7): one
    /// UID for its life, SEQUENCE equal to its sequence, CANCEL once cancelled.
    pub fn invite(&self) -> cal_core::ics_out::EventInvite {
        cal_core::ics_out::EventInvite {
            uid: self.ics_uid.clone(),
            sequence: self.sequence,
            start: self.start,
            end: self.end,
            summary: self.summary.clone().unwrap_or_else(|| format!("Booking ({})", self.role_code)),
            description: None,
            cancelled: self.status == EventStatus::Cancelled,
            organizer: None,
            attendees: Vec::new(),
        }
    }

    /// The event's `[start, end)`.
    pub fn interval(&self) -> Interval {
        Interval::new(self.start, self.end).expect("the table's check keeps end > start")
    }

    /// The event in event payloads: ids and bounded fields only, so not the
    /// summary (free text).
    fn payload(&self) -> serde_json::Value {
        without(serde_json::to_value(self).expect("an event serializes"), &["summary"])
    }
}

/// `record` without the free-text `fields` (see [`crate::outbox`]).
fn without(mut record: serde_json::Value, fields: &[&str]) -> serde_json::Value {
    if let Some(object) = record.as_object_mut() {
        for field in fields {
            object.remove(*field);
        }
    }
    record
}

fn instant(row: &Row, column: &str) -> Result<Instant, StoreError> {
    Ok(Instant::from_chrono(row.try_get::<_, DateTime<Utc>>(column)?))
}

/// Serializes one provider's bookings inside the current transaction.
async fn lock_provider(db: &impl Executor, user_id: &str) -> Result<(), StoreError> {
    db.execute("select pg_advisory_xact_lock(hashtextextended('cal.provider:' || $1, 0))", &[&user_id]).await?;
    Ok(())
}

async fn hold_by_id(db: &impl Executor, hold_id: &str, for_update: bool) -> Result<HoldRecord, StoreError> {
    let lock = if for_update { " for update" } else { "" };
    let rows = db.query(&format!("select {HOLD_RECORD} from cal.hold where hold_id = $1{lock}"), &[&hold_id]).await?;
    rows.first().map(HoldRecord::from_row).transpose()?.ok_or_else(|| not_found("hold", hold_id))
}

async fn event_by_id(db: &impl Executor, event_id: &str, for_update: bool) -> Result<EventRecord, StoreError> {
    let lock = if for_update { " for update" } else { "" };
    let rows =
        db.query(&format!("select {EVENT_RECORD} from cal.event where event_id = $1{lock}"), &[&event_id]).await?;
    rows.first().map(EventRecord::from_row).transpose()?.ok_or_else(|| not_found("event", event_id))
}

fn not_found(what: &'static str, id: &str) -> StoreError {
    StoreError::NotFound { entity: what, id: id.to_owned() }
}

/// Looks a hold up (no lock).
pub async fn get_hold(db: &impl Executor, hold_id: &str) -> Result<HoldRecord, StoreError> {
    hold_by_id(db, hold_id, false).await
}

/// Looks an event up (no lock).
pub async fn get_event(db: &impl Executor, event_id: &str) -> Result<EventRecord, StoreError> {
    event_by_id(db, event_id, false).await
}

/// At most `max` holds created by one customer (`HoldRequest::customer_id`)
/// in the `window_secs` before a request's `now`, all providers together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CustomerLimit {
    /// Holds allowed in the window.
    pub max: i64,
    /// The window, in seconds.
    pub window_secs: i64,
}

impl CustomerLimit {
    /// At most `max` holds an hour.
    pub const fn per_hour(max: i64) -> Self {
        CustomerLimit { max, window_secs: 3600 }
    }
}

impl std::fmt::Display for CustomerLimit {
    /// `at most 20 holds per hour`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let max = self.max;
        match self.window_secs {
            3600 => write!(f, "at most {max} holds per hour"),
            86_400 => write!(f, "at most {max} holds per day"),
            s if s % 60 == 0 => write!(f, "at most {max} holds per {} minutes", s / 60),
            s => write!(f, "at most {max} holds per {s} seconds"),
        }
    }
}

/// What the store checks on behalf of a hold's caller, beyond the request
/// itself. [`HoldPolicy::TRUSTED`] (the default) checks nothing more: for
/// admins, services and operators.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HoldPolicy {
    /// The limit on the request's customer's holds, checked by the write
    /// under a per-customer lock, so concurrent requests of one customer,
    /// whatever their providers, never exceed it: over it, the request is
    /// [`StoreError::CustomerLimit`] (`RATE_LIMITED`). A retry of a hold
    /// already made is answered whatever the limit. `None`, or a request
    /// without a customer: no limit.
    pub customer_limit: Option<CustomerLimit>,
    /// The caller, unless trusted: a reschedule hold may move only an event
    /// the caller is the provider or the customer of; another's is
    /// `NOT_FOUND`, as if it did not exist. `None`: any event of the
    /// request's provider.
    pub on_behalf_of: Option<String>,
}

impl HoldPolicy {
    /// No limit, any event of the provider.
    pub const TRUSTED: HoldPolicy = HoldPolicy { customer_limit: None, on_behalf_of: None };

    /// The limit that applies to `req`: none without a customer.
    fn limit_for(&self, req: &HoldRequest) -> Option<CustomerLimit> {
        self.customer_limit.filter(|_| req.customer_id.is_some())
    }

    /// Whether the caller may move `event` (see [`HoldPolicy::on_behalf_of`]).
    fn may_move(&self, event: &EventRecord) -> bool {
        self.on_behalf_of.as_deref().is_none_or(|me| me == event.user_id || Some(me) == event.customer_id.as_deref())
    }
}

/// Creates a hold, or returns the one an earlier request with the same
/// `(user_id, idempotency_key)` created.
///
/// * Same key, same request: the same hold, whatever its state now (an
///   expired or released hold is returned as such, never revived).
/// * Same key, another request: `IDEMPOTENCY_MISMATCH`.
/// * Otherwise the request is checked against rules and busy time
///   (`cal_core::holds::check_hold`) and written only if nothing it was
///   checked against changed; a loser gets `CONFLICT` with up to three
///   nearby slots.
///
/// Round trips are what a hold costs, so a winner pays two:
///
/// 1. One statement reads, in one snapshot, the provider's version, its
///    rules, its exceptions and its busy time with the key (a hold of the
///    key, if any, instead). The request is checked against it.
/// 2. One statement, its own transaction: the provider's lock (the same
///    advisory lock every other writer of the provider takes first), then
///    the re-check, then the insert. The re-check compares the provider's
///    version, read afresh under the lock, with the one read in (1): every
///    change to what feasibility reads (rules, exceptions, imported busy
///    time, holds, events) bumps it in its own transaction, so an unchanged
///    version means the check of (1) still holds. Only then it marks
///    expired the holds in the range read whose time ran out (the sweeper
///    marks the others), inserts the hold, writes the outbox rows and bumps
///    the version. The exclusion constraints stay the backstop.
///
/// The write only tries the lock: one that finds it taken waits, in the same
/// statement, for the holder with a *shared* lock, so when the holder
/// commits all waiters wake at once instead of one after another. One that
/// finds the version already moved takes no lock at all, and brings, from
/// its own snapshot (already as new as the change), the key and, unless it
/// has a hold, the busy time; a waiter reads them in one more statement.
/// Either way it lost, and that read says why: a concurrent retry of this
/// very request won (its hold is the answer), or its time is now booked
/// (`CONFLICT` with alternatives), or the change was elsewhere and it starts
/// over from (1) (queueing for the lock after many tries). In a race most
/// losers find the version moved: two statements each.
///
/// With a customer limit ([`HoldPolicy::customer_limit`]) the write first
/// takes the customer's lock and counts their holds (see [`write_sql`]):
/// still one statement, its own transaction.
///
/// [`create_hold_cached`] skips (1) when it can. This function trusts its
/// caller ([`HoldPolicy::TRUSTED`]: operators, jobs); the API's requests go
/// through [`create_hold_cached`] with the caller's policy.
pub async fn create_hold(db: &impl Executor, req: &HoldRequest, now: Instant) -> Result<HoldRecord, StoreError> {
    hold(db, None, req, &HoldPolicy::TRUSTED, now).await
}

/// [`create_hold`] with a process's [`CalendarCache`]: a request whose
/// provider's calendar this process read or wrote moments ago is checked
/// against that and written at once, expecting the version the cache holds
/// (one round trip). If the provider changed since, the write refuses and
/// the request goes the way of [`create_hold`]'s losers. A request the
/// cache refuses is answered only after one statement has read the
/// provider's version and the key: if the version is the cache's, the cache
/// is the provider's state exactly and its refusal (with alternatives) is
/// the answer; otherwise the busy time is read afresh. Whatever the cache
/// holds, the answer is the one fresh reads give.
///
/// `policy` is what the caller may do ([`HoldPolicy`]): the customer limit
/// is checked by the write itself, the ownership of a rescheduled event
/// when the event is read; the key and the event are read once, here.
pub async fn create_hold_cached(
    db: &impl Executor,
    cache: &CalendarCache,
    req: &HoldRequest,
    policy: &HoldPolicy,
    now: Instant,
) -> Result<HoldRecord, StoreError> {
    hold(db, Some(cache), req, policy, now).await
}

async fn hold(
    db: &impl Executor,
    cache: Option<&CalendarCache>,
    req: &HoldRequest,
    policy: &HoldPolicy,
    now: Instant,
) -> Result<HoldRecord, StoreError> {
    let limit = policy.limit_for(req);
    // With a cache, read a week at once so the entry serves what follows.
    let span = if cache.is_some() { Span::widened(req) } else { Span::exact(req) };
    let params = CalendarParams::new(&req.user_id, &req.role_code, span.from, span.to, Some(span.duration_min))?;
    // A reschedule hold checks its event first, which the cache cannot say.
    let cache = cache.filter(|_| req.event_id.is_none());
    let mut cached = cache.and_then(|c| c.get(req, now));
    for attempt in 0..MAX_ATTEMPTS {
        let hit = match (cache, cached.take()) {
            (Some(cache), Some(hit)) => match holds::check_hold(req, &hit.calendar, now) {
                Ok(()) => Some(hit),
                // Refused by bookings the cache shows: believed only once
                // the provider's version shows the cache current, or the
                // bookings read now refuse it too; otherwise start over
                // from fresh reads.
                Err(BookingError::Conflict { .. }) => match confirm_cached(db, cache, req, hit, now).await? {
                    Confirmed::Answer(answer) => return answer,
                    Confirmed::Write(hit) => Some(hit),
                    Confirmed::Stale(hit) => {
                        if let Some(hold) = answer_afresh(db, req, &params, hit.calendar, now).await? {
                            return Ok(hold);
                        }
                        cache.drop_stale(req, hit.version);
                        None
                    }
                },
                // Refused by rules the cache shows: read them afresh.
                Err(_) => None,
            },
            _ => None,
        };
        let read_afresh = hit.is_none();
        let (version, due, calendar, span) = match hit {
            Some(hit) => (hit.version, Vec::new(), hit.calendar, hit.span),
            None => {
                let look = read_for_hold(db, req, &params, now).await?;
                if let Some(hold) = look.existing {
                    return Ok(hold);
                }
                let Some(version) = look.version else {
                    // A provider nothing was ever written for has no version
                    // row to lock yet: create it (version 0, unchanged
                    // meaning), look again.
                    db.execute(ENSURE_VERSION_SQL, &[&req.user_id]).await?;
                    continue;
                };
                if let Some(event_id) = &req.event_id {
                    let event = event_by_id(db, event_id, false).await?;
                    if event.user_id != req.user_id || !policy.may_move(&event) {
                        return Err(not_found("event", event_id));
                    }
                    if event.status != EventStatus::Confirmed {
                        return Err(BookingError::Validation { field: "event_id", reason: format!("event {event_id} is cancelled") }.into());
                    }
                }
                if let Err(refused) = holds::check_hold(req, &look.calendar, now) {
                    if let Some(cache) = cache {
                        // Read after the version: as new as it, or newer
                        // (then a write expecting it refuses). A request
                        // that passes is cached with its hold, if it wins.
                        cache.put(&req.user_id, &req.role_code, Cached { version, span, calendar: look.calendar });
                    }
                    return Err(refused.into());
                }
                (version, look.due, look.calendar, span)
            }
        };
        let queue = attempt >= MAX_OPTIMISTIC_WAITS;
        // After a fresh read, a loss brings its answer (see `write_sql`).
        let answer_over = read_afresh.then_some(&params);
        match write_hold(db, req, answer_over, now, version, &due, Locking { queue, limit }).await? {
            Written::Hold(hold, version) => {
                tracing::info!(hold_id = %hold.hold_id, user_id = %hold.user_id, expired = due.len(), "hold created");
                if let Some(cache) = cache {
                    let expired: Vec<&str> = due.iter().map(|h| h.hold_id.as_str()).collect();
                    let mine = hold_cache::busy(&hold.hold_id, &hold.user_id, req.interval, hold.expires_at);
                    let calendar = hold_cache::with_hold(calendar, &expired, mine);
                    cache.put(&req.user_id, &req.role_code, Cached { version, span, calendar });
                }
                return Ok(*hold);
            }
            Written::Limited(limit) => {
                // Refused by the limit, unless a retry of this very request
                // made its hold meanwhile (the cached path read no key).
                let (_, key) = version_and_key(db, req).await?;
                return key.ok_or(StoreError::CustomerLimit { limit });
            }
            Written::Lost(fresh) => {
                // Someone changed the provider meanwhile: lost, unless the
                // change was elsewhere (then start over from fresh reads).
                if let Some(cache) = cache {
                    cache.drop_stale(req, version);
                }
                let answered = match fresh {
                    // The write read the answer itself.
                    Some(fresh) => answer(req, fresh, calendar, now)?,
                    None => {
                        // A write of this process may have cached the change.
                        if let Some(cache) = cache
                            && let Some(newer) = cache.get(req, now).filter(|n| n.version > version)
                        {
                            match confirm_cached(db, cache, req, newer, now).await? {
                                Confirmed::Answer(answer) => return answer,
                                Confirmed::Write(hit) => {
                                    cached = Some(hit);
                                    continue;
                                }
                                Confirmed::Stale(_) => {}
                            }
                        }
                        answer_afresh(db, req, &params, calendar, now).await?
                    }
                };
                if let Some(hold) = answered {
                    return Ok(hold);
                }
            }
        }
    }
    // Only a provider changing without pause for every attempt gets here.
    Err(BookingError::Conflict { alternatives: Vec::new() }.into())
}

/// What [`confirm_cached`] found.
enum Confirmed {
    /// The answer: the hold of the key, or the cache's refusal.
    Answer(Result<HoldRecord, StoreError>),
    /// The cache is current and admits the request: write it.
    Write(Cached),
    /// The provider's version is not the cache's.
    Stale(Cached),
}

/// Reads the provider's version and the hold of the key (one statement, one
/// snapshot): a retry of this very request is answered with its hold; if the
/// version is the one `hit` is as of, `hit` is the provider's state exactly,
/// and the request is answered, or written, from it.
async fn confirm_cached(
    db: &impl Executor,
    cache: &CalendarCache,
    req: &HoldRequest,
    hit: Cached,
    now: Instant,
) -> Result<Confirmed, StoreError> {
    let (version, key) = version_and_key(db, req).await?;
    if let Some(hold) = key {
        return Ok(Confirmed::Answer(Ok(hold)));
    }
    if version != Some(hit.version) {
        return Ok(Confirmed::Stale(hit));
    }
    cache.put(&req.user_id, &req.role_code, hit.clone());
    Ok(match holds::check_hold(req, &hit.calendar, now) {
        Ok(()) => Confirmed::Write(hit),
        Err(refused) => Confirmed::Answer(Err(refused.into())),
    })
}

/// The provider's version and the hold of the key ([`same_request`]), in
/// one statement ([`LookupSql::version_key`]).
async fn version_and_key(db: &impl Executor, req: &HoldRequest) -> Result<(Option<i64>, Option<HoldRecord>), StoreError> {
    let rows = db.query(&lookup_sql().version_key, &key_params(req)).await?;
    let version = rows.first().and_then(|r| r.get::<_, Option<i64>>("version"));
    let key: Vec<Row> = rows.into_iter().filter(|r| r.get::<_, Option<&str>>("hold_id").is_some()).collect();
    Ok((version, same_request(req, &key)?))
}

/// The answer to a request whose write lost, or whose cached calendar
/// refused it, from one statement (one snapshot): see [`answer`].
async fn answer_afresh(
    db: &impl Executor,
    req: &HoldRequest,
    params: &CalendarParams<'_>,
    calendar: cal_core::ProviderCalendar,
    now: Instant,
) -> Result<Option<HoldRecord>, StoreError> {
    let fresh = calendar::read(db, &lookup_sql().answer, params, Some(&req.idempotency_key)).await?;
    answer(req, fresh, calendar, now)
}

/// The answer a keyed read of busy time (`fresh`) gives a request that
/// lost: the hold of its key if a retry of the same request made one, else
/// `CONFLICT` (with alternatives) if that busy time refuses it against
/// `calendar`'s rules; `None`: the way is free, start over.
fn answer(
    req: &HoldRequest,
    fresh: calendar::Read,
    mut calendar: cal_core::ProviderCalendar,
    now: Instant,
) -> Result<Option<HoldRecord>, StoreError> {
    if let Some(hold) = same_request(req, &fresh.key)? {
        return Ok(Some(hold));
    }
    calendar.events = fresh.calendar.events;
    calendar.holds = fresh.calendar.holds;
    calendar.external_busy = fresh.calendar.external_busy;
    holds::check_hold(req, &calendar, now)?;
    Ok(None)
}

/// How often `create_hold` starts over because the provider changed
/// between its read and its write.
const MAX_ATTEMPTS: usize = 32;

/// How many attempts try the provider's lock without waiting (then wait
/// with the others on a shared lock); later ones queue for it.
const MAX_OPTIMISTIC_WAITS: usize = 16;

/// Creates the version row of a provider that has none (version 0 means
/// "nothing written", with or without the row).
const ENSURE_VERSION_SQL: &str =
    "insert into cal.provider_version (user_id, version) values ($1, 0) on conflict (user_id) do nothing";

/// The statements of `create_hold`, built once per process.
struct LookupSql {
    /// The first read: version, rules, exceptions, then the key and,
    /// unless it has a hold, the busy time ([`calendar::read_sql`]).
    read: String,
    /// A loser's read: the key and, unless it has a hold, the busy time.
    answer: String,
    /// `$1`'s version (null: no row) on every row, with the hold of the key
    /// (one row of nulls if none).
    version_key: String,
    /// The write ([`write_sql`]), `[queue][expire][answered][limited]`:
    /// trying the provider's lock or queueing for it, with expired holds to
    /// mark or none, with a loser's answer or without, under a customer
    /// limit or not.
    write: [[[[String; 2]; 2]; 2]; 2],
}

/// The write of [`write_hold`], taking the provider's lock with `lock` (an
/// expression, true once held). Each step reads the one before it, which
/// makes the order certain: the version as of the statement's start (if it
/// is no longer `$13`, the write lost: it takes no lock, so a crowd that
/// lost a race does not queue for it); the provider's lock (the advisory
/// lock every booking writer of a provider takes first); the version bumped
/// only if it is
/// still `$13` (an UPDATE re-reads the row's newest version after any wait,
/// and locks it against the provider's other writers); then, if `expire`,
/// the expired holds `$17` marked; the hold inserted; the outbox rows (the
/// expired holds' first, their payloads `$18`). An error (the exclusion
/// constraint) undoes all of it. If the lock was taken, it waits for the
/// holder to finish with a shared lock (granted to every such waiter at
/// once), so the statements after it see its work.
///
/// The ids are made by the caller (`$14` the hold's, `$15` its outbox
/// event's), so its payload `$16` is whole before the statement runs.
///
/// If `answered`, a write that finds the version moved brings a loser's
/// answer (the key and busy time of its statement's snapshot, already as
/// new as the change), which saves it a statement. It costs every write
/// some executor work, so only a write after a fresh read, which a race
/// makes a loser most often, asks for it.
///
/// If `limited`, before anything else the write calls
/// `cal.lock_customer_holds_since($3, since)` (migrations/0005), which
/// takes the customer's advisory lock (held to the end of the statement's
/// transaction, so one customer's limited holds are written one after
/// another, whatever their providers) and only then counts the customer's
/// holds since `since`. The count is in the function, not in this
/// statement, because a statement reads the snapshot it started with: one
/// that waited for the lock would not see the holds committed meanwhile; a
/// VOLATILE function's query takes a fresh snapshot, after the lock. At
/// `max` or more the write takes no other lock and writes nothing, and
/// says so in the column `allowed`. `since` and `max` are the statement's
/// last two parameters. The customer's lock is always taken before the
/// provider's, never the other way round, so the two cannot deadlock.
fn write_sql(lock: &str, expire: bool, answered: bool, limited: bool) -> String {
    let (marked, after_marked, expired_events, after_expired) = if expire {
        (
            "marked as (
                 update cal.hold set status = 'expired', updated_at = $12
                 where hold_id = any($17::text[]) and user_id = $1 and status = 'active' and expires_at <= $12
                   and exists (select 1 from bumped)
                 returning hold_id
             ), ",
            " where (select count(*) from marked) >= 0",
            format!(
                "expired_events as (
                     insert into cal.outbox (event_type, user_id, payload)
                     select '{HOLD_EXPIRED}', $1, p.payload
                     from unnest($17::text[], $18::jsonb[]) with ordinality as p(hold_id, payload, n)
                     join marked using (hold_id)
                     where exists (select 1 from h)
                     order by p.n
                     returning outbox_id
                 ), "
            ),
            " where (select count(*) from expired_events) >= 0",
        )
    } else {
        ("", "", String::new(), "")
    };
    // The outcome first (`w`): the hold, if written. Then, only if the
    // version had moved before the statement began (then it took no lock),
    // the key and busy time as of that moment, read as a loser's answer
    // ([`calendar::read_sql`]; its parameters after this statement's own).
    let (allowed, refused, allowed_column) = if limited {
        let since = 17 + if expire { 2 } else { 0 } + if answered { 3 } else { 0 };
        (
            format!(
                "allowed as (
                     select cal.lock_customer_holds_since($3, ${since}) < ${} as ok
                 ), ",
                since + 1
            ),
            "when not (select ok from allowed) then false ",
            "(select ok from allowed) as allowed,",
        )
    } else {
        (String::new(), "", "")
    };
    let lead = format!(
        "{allowed_column} (select got from advisory) as got, (select version from bumped) as new_version,
         case {refused}when (select got from advisory) or not (select v from current) then false
              else (select true from pg_advisory_xact_lock_shared(hashtextextended('cal.provider:' || $1, 0)))
         end as waited,"
    );
    let lead = lead.as_str();
    let from_h = "from (select 1) as one left join h on true";
    let tail = if answered {
        // The read's $3–$5 go after our own parameters; its key $6 is our $10.
        let first = if expire { 19 } else { 17 };
        let nulls = if limited { "null, null, null, null," } else { "null, null, null," };
        let answer = ReadParts::new(ReadShape { keyed: true, rules: false }, HOLD_RECORD, "not (select v from current)", nulls);
        let end = answer.finish(&calendar::branch(lead, "w", HOLD_RECORD, from_h, true));
        let end = calendar::renumber(&end, |n| match n {
            3..=5 => first + n - 3,
            6 => 10,
            n => n,
        });
        format!(", {end}")
    } else {
        // The outcome alone, no wider than the hold.
        format!(" select {lead} 'w' as row_kind, h.* {from_h}")
    };
    format!(
        "with {allowed}current as (
             select exists (select 1 from cal.provider_version where user_id = $1 and version = $13) as v
         ), advisory as (
             select case {refused}when (select v from current) then {lock} else false end as got
         ), bumped as (
             update cal.provider_version set version = version + 1, updated_at = now()
             where user_id = $1 and version = $13 and (select got from advisory)
             returning version
         ), {marked}h as (
             insert into cal.hold (hold_id, user_id, role_code, customer_id, start_at, end_at, kind, mode,
                                   status, expires_at, event_id, idempotency_key, request_fingerprint,
                                   created_at, updated_at)
             select $14, $1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, $10, $11, $12, $12
             from bumped{after_marked}
             returning {HOLD_RECORD}
         ), {expired_events}created_event as (
             insert into cal.outbox (event_id, event_type, user_id, payload)
             select $15::text::uuid, '{HOLD_CREATED}', $1, $16::jsonb
             from h{after_expired}
         ){tail}"
    )
}

/// A random version-4 UUID, as 128 bits.
fn uuid_v4() -> u128 {
    use rand::Rng;
    let r: u128 = rand::rng().random();
    (r & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62)
}

/// `{prefix}` and a random UUID's 32 hex digits, as the database's ids are.
fn new_id(prefix: &str) -> String {
    format!("{prefix}{:032x}", uuid_v4())
}

/// A random UUID in its hyphenated form.
fn new_uuid() -> String {
    let h = format!("{:032x}", uuid_v4());
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn lookup_sql() -> &'static LookupSql {
    static SQL: std::sync::OnceLock<LookupSql> = std::sync::OnceLock::new();
    SQL.get_or_init(|| LookupSql {
        read: calendar::read_sql(ReadShape { keyed: true, rules: true }, HOLD_RECORD),
        answer: calendar::read_sql(ReadShape { keyed: true, rules: false }, HOLD_RECORD),
        version_key: format!(
            "select (select version from cal.provider_version where user_id = $1) as version, k.*
             from (select 1) as one left join (
                 select {HOLD_RECORD} from cal.hold where user_id = $1 and idempotency_key = $2
             ) as k on true"
        ),
        write: [false, true].map(|queue| {
            let lock = if queue {
                "(select true from pg_advisory_xact_lock(hashtextextended('cal.provider:' || $1, 0)))"
            } else {
                "pg_try_advisory_xact_lock(hashtextextended('cal.provider:' || $1, 0))"
            };
            [false, true].map(|expire| {
                [false, true].map(|answered| [false, true].map(|limited| write_sql(lock, expire, answered, limited)))
            })
        }),
    })
}

/// What `create_hold` read in its first round trip.
struct HoldLook {
    /// The provider's version (`None`: no version row yet).
    version: Option<i64>,
    /// The hold of an earlier request with the same key.
    existing: Option<HoldRecord>,
    /// The provider's holds in the range read whose time ran out, not yet
    /// marked.
    due: Vec<HoldRecord>,
    calendar: cal_core::ProviderCalendar,
}

/// The first round trip, one statement ([`calendar::read_sql`]): version,
/// rules, exceptions, the key and busy time (holds whole, so those that ran
/// out can be marked), all in one snapshot. If anything changes after it,
/// the version moves and the write refuses; a concurrent retry of this same
/// request whose hold the busy time would show is found by its key instead,
/// not mistaken for a rival booking.
async fn read_for_hold(
    db: &impl Executor,
    req: &HoldRequest,
    params: &CalendarParams<'_>,
    now: Instant,
) -> Result<HoldLook, StoreError> {
    let read = calendar::read(db, &lookup_sql().read, params, Some(&req.idempotency_key)).await?;
    // Holds in the range whose time ran out but are still marked active:
    // the write marks them (the exclusion constraint still counts them).
    let mut due = Vec::new();
    for row in read.busy.iter().filter(|r| r.get::<_, &str>("row_kind") == "h") {
        if instant(row, "expires_at")? <= now {
            due.push(HoldRecord::from_row(row)?);
        }
    }
    Ok(HoldLook {
        version: read.version,
        existing: same_request(req, &read.key)?,
        due,
        calendar: read.calendar,
    })
}

/// `$1 user_id, $2 idempotency_key`.
fn key_params(req: &HoldRequest) -> [&(dyn ToSql + Sync); 2] {
    [&req.user_id, &req.idempotency_key]
}

/// The write of a checked request, one statement: under the provider's lock
/// (tried, or queued for when `queue`), if its version is still `version`,
/// marks the `due` holds expired (with their outbox rows), inserts the hold
/// with its outbox row and bumps the version; if the lock was taken, it
/// waits for its holder, so that what a loser reads next ([`answer_afresh`])
/// shows the holder's work. With `answer`, a write that finds the version
/// already moved brings the key and busy time over it with the refusal.
/// With a customer limit, it takes the customer's lock first and writes
/// only under the limit ([`write_sql`]).
async fn write_hold(
    db: &impl Executor,
    req: &HoldRequest,
    answer: Option<&CalendarParams<'_>>,
    now: Instant,
    version: i64,
    due: &[HoldRecord],
    locking: Locking,
) -> Result<Written, StoreError> {
    let created = HoldRecord {
        hold_id: new_id("hld_"),
        user_id: req.user_id.clone(),
        role_code: req.role_code.clone(),
        customer_id: req.customer_id.clone(),
        start: req.interval.start(),
        end: req.interval.end(),
        kind: req.kind,
        mode: req.mode,
        status: HoldStatus::Active,
        expires_at: req.expires_at(now),
        event_id: req.event_id.clone(),
        converted_event_id: None,
        idempotency_key: req.idempotency_key.clone(),
        request_fingerprint: req.fingerprint(),
        created_at: now,
    };
    let (start_at, end_at, expires_at, now_at) =
        (created.start.to_chrono(), created.end.to_chrono(), created.expires_at.to_chrono(), now.to_chrono());
    let due_ids: Vec<&str> = due.iter().map(|h| h.hold_id.as_str()).collect();
    let due_payloads: Vec<serde_json::Value> =
        due.iter().map(|h| HoldRecord { status: HoldStatus::Expired, ..h.clone() }.payload()).collect();
    let (payload, event_id) = (created.payload(), new_uuid());
    let (kind, mode) = (req.kind.as_str(), req.mode.as_str());
    let mut all: Vec<&(dyn ToSql + Sync)> = vec![
        &req.user_id,
        &req.role_code,
        &req.customer_id,
        &start_at,
        &end_at,
        &kind,
        &mode,
        &expires_at,
        &req.event_id,
        &req.idempotency_key,
        &created.request_fingerprint,
        &now_at,
        &version,
        &created.hold_id,
        &event_id,
        &payload,
    ];
    let expire = !due.is_empty();
    if expire {
        all.extend_from_slice(&[&due_ids, &due_payloads]);
    }
    if let Some(params) = answer {
        all.extend_from_slice(&params.range());
    }
    let limit = locking.limit.map(|limit| (now.plus_secs(-limit.window_secs).to_chrono(), limit.max));
    if let Some((since, max)) = &limit {
        all.extend_from_slice(&[since, max]);
    }
    let write = &lookup_sql().write[usize::from(locking.queue)][usize::from(expire)][usize::from(answer.is_some())]
        [usize::from(limit.is_some())];
    match db.query(write, &all).await {
        Ok(mut rows) => {
            let at = rows.iter().position(|r| r.get::<_, &str>("row_kind") == "w").expect("the outcome row");
            let outcome = rows.swap_remove(at);
            if let Some(version) = outcome.try_get::<_, Option<i64>>("new_version")? {
                return Ok(Written::Hold(Box::new(HoldRecord::from_row(&outcome)?), version));
            }
            if let Some(limit) = locking.limit
                && outcome.try_get::<_, Option<bool>>("allowed")? == Some(false)
            {
                return Ok(Written::Limited(limit));
            }
            // Asked for an answer, and neither the lock nor a wait for it:
            // the version had moved, and the rest is the answer as of then.
            // (A write without an answer part returns no such rows: reading
            // its none as busy time would be an empty calendar.)
            let moved = answer.is_some()
                && outcome.try_get::<_, Option<bool>>("got")? == Some(false)
                && outcome.try_get::<_, Option<bool>>("waited")? == Some(false);
            Ok(Written::Lost(if moved { Some(calendar::Read::from_rows(rows)?) } else { None }))
        }
        // Lost all the same: the constraints fire only for a retry of this
        // request, or a writer that bypassed the lock; the key, then the
        // busy time, will say who.
        Err(e) => {
            let e = StoreError::from(e);
            if ["hold_no_overlap_ex", "hold_idempotency_uq"].iter().any(|c| e.violates(c)) { Ok(Written::Lost(None)) } else { Err(e) }
        }
    }
}

/// How [`write_hold`] locks: the provider's lock tried, or queued for if
/// `queue`; before it, if `limit`, the request's customer's (whose holds it
/// counts).
struct Locking {
    queue: bool,
    limit: Option<CustomerLimit>,
}

/// What [`write_hold`] did.
enum Written {
    /// Wrote the hold; the provider's version is now the number.
    Hold(Box<HoldRecord>, i64),
    /// Wrote nothing: the customer has reached the limit.
    Limited(CustomerLimit),
    /// Wrote nothing: another writer of the provider held its lock (this
    /// write waited for it to finish) or had changed the provider since the
    /// read (then, if given, the key and busy time read when it began).
    Lost(Option<calendar::Read>),
}

/// The hold an earlier request with this key created (from its row, read by
/// a keyed busy read or [`LookupSql::version_key`]), or `IDEMPOTENCY_MISMATCH` if that request was a
/// different one.
fn same_request(req: &HoldRequest, rows: &[Row]) -> Result<Option<HoldRecord>, StoreError> {
    let Some(hold) = rows.first().map(HoldRecord::from_row).transpose()? else { return Ok(None) };
    if hold.request_fingerprint != req.fingerprint() {
        return Err(BookingError::IdempotencyMismatch { key: req.idempotency_key.clone() }.into());
    }
    Ok(Some(hold))
}

/// The exclusion constraints are the last word: if they fire, someone else
/// got there first (possible only if the lock were bypassed).
fn conflict_on_overlap(e: StoreError) -> StoreError {
    if e.violates("hold_no_overlap_ex") || e.violates("event_no_overlap_ex") {
        StoreError::Booking(BookingError::Conflict { alternatives: Vec::new() })
    } else {
        e
    }
}

/// Converts a hold into a confirmed event, atomically and idempotently
/// (Instant Book on `order.booked`, Request-to-Book on acceptance, or a
/// reschedule, which moves the hold's event instead of creating one).
///
/// Converting again returns the same event. An expired hold is
/// `HOLD_EXPIRED`, a released one `HOLD_RELEASED`; either stores nothing.
pub async fn confirm_hold(db: &mut impl Begin, hold_id: &str, now: Instant) -> Result<EventRecord, StoreError> {
    let user_id = get_hold(&*db, hold_id).await?.user_id;
    let tx = db.begin().await?;
    lock_provider(&tx, &user_id).await?;
    let hold = hold_by_id(&tx, hold_id, true).await?;
    match holds::conversion(hold_id, hold.status, hold.expires_at, now)? {
        Conversion::AlreadyConverted => {
            let event_id = hold.converted_event_id.as_deref().ok_or_else(|| StoreError::corrupt("cal.hold", hold_id, "converted_event_id"))?;
            return event_by_id(&tx, event_id, false).await;
        }
        Conversion::Proceed => {}
    }

    let (event, event_type, previous) = match (&hold.kind, &hold.event_id) {
        (HoldKind::Reschedule, Some(event_id)) => {
            let before = event_by_id(&tx, event_id, true).await?;
            if before.status != EventStatus::Confirmed {
                return Err(BookingError::Validation { field: "event_id", reason: format!("event {event_id} is cancelled") }.into());
            }
            let rows = tx
                .query(
                    &format!(
                        "update cal.event set start_at = $2, end_at = $3, sequence = sequence + 1, updated_at = $4
                         where event_id = $1 returning {EVENT_RECORD}"
                    ),
                    &[event_id, &hold.start.to_chrono(), &hold.end.to_chrono(), &now.to_chrono()],
                )
                .await
                .map_err(|e| conflict_on_overlap(e.into()))?;
            let previous = json!({"start": before.start, "end": before.end, "sequence": before.sequence});
            (EventRecord::from_row(&rows[0])?, EVENT_RESCHEDULED, Some(previous))
        }
        _ => {
            let zone = provider_zone(&tx, &hold.user_id, &hold.role_code).await?;
            let rows = tx
                .query(
                    &format!(
                        "with id as (select 'ev_' || replace(gen_random_uuid()::text, '-', '') as v)
                         insert into cal.event (event_id, user_id, role_code, customer_id, hold_id, start_at, end_at,
                                                status, sequence, ics_uid, timezone, created_at, updated_at)
                         select id.v, $1, $2, $3, $4, $5, $6, 'confirmed', 0, id.v || '@cal', $7, $8, $8 from id
                         returning {EVENT_RECORD}"
                    ),
                    &[
                        &hold.user_id,
                        &hold.role_code,
                        &hold.customer_id,
                        &hold.hold_id,
                        &hold.start.to_chrono(),
                        &hold.end.to_chrono(),
                        &zone.name(),
                        &now.to_chrono(),
                    ],
                )
                .await
                .map_err(|e| conflict_on_overlap(e.into()))?;
            (EventRecord::from_row(&rows[0])?, EVENT_CONFIRMED, None)
        }
    };
    tx.execute(
        "update cal.hold set status = 'converted', converted_event_id = $2, updated_at = $3 where hold_id = $1",
        &[&hold_id, &event.event_id, &now.to_chrono()],
    )
    .await?;
    outbox::bump_version(&tx, &hold.user_id).await?;
    let payload = json!({"event": event.payload(), "hold_id": hold.hold_id, "previous": previous});
    outbox::enqueue(&tx, event_type, &hold.user_id, &payload).await?;
    tx.commit().await?;
    tracing::info!(hold_id, event_id = %event.event_id, event_type, "hold converted");
    Ok(event)
}

/// The provider's zone for renderings: that of its first active rule of the
/// role, else UTC.
async fn provider_zone(db: &impl Executor, user_id: &str, role_code: &str) -> Result<Zone, StoreError> {
    let rows = db
        .query(
            "select timezone from cal.weekly_rule where user_id = $1 and role_code = $2 and active
             order by created_at, rule_id limit 1",
            &[&user_id, &role_code],
        )
        .await?;
    Ok(rows.first().and_then(|r| Zone::parse(r.get::<_, &str>(0)).ok()).unwrap_or(Zone::UTC))
}

/// Releases a hold (a customer leaving checkout, a provider declining a
/// request). Releasing a released hold changes nothing.
pub async fn release_hold(db: &mut impl Begin, hold_id: &str, now: Instant) -> Result<HoldRecord, StoreError> {
    let user_id = get_hold(&*db, hold_id).await?.user_id;
    let tx = db.begin().await?;
    lock_provider(&tx, &user_id).await?;
    let hold = hold_by_id(&tx, hold_id, true).await?;
    if !holds::release(hold_id, hold.status, hold.expires_at, now)? {
        return Ok(hold);
    }
    let rows = tx
        .query(
            &format!("update cal.hold set status = 'released', updated_at = $2 where hold_id = $1 returning {HOLD_RECORD}"),
            &[&hold_id, &now.to_chrono()],
        )
        .await?;
    let released = HoldRecord::from_row(&rows[0])?;
    outbox::bump_version(&tx, &user_id).await?;
    outbox::enqueue(&tx, HOLD_RELEASED, &user_id, &released.payload()).await?;
    tx.commit().await?;
    Ok(released)
}

/// Request-to-Book: the provider accepts a request hold (it becomes the event).
pub async fn accept_request(db: &mut impl Begin, hold_id: &str, now: Instant) -> Result<EventRecord, StoreError> {
    require_request(&*db, hold_id).await?;
    confirm_hold(db, hold_id, now).await
}

/// Request-to-Book: the provider declines a request hold (it is released).
pub async fn decline_request(db: &mut impl Begin, hold_id: &str, now: Instant) -> Result<HoldRecord, StoreError> {
    require_request(&*db, hold_id).await?;
    release_hold(db, hold_id, now).await
}

async fn require_request(db: &impl Executor, hold_id: &str) -> Result<(), StoreError> {
    if get_hold(db, hold_id).await?.mode != HoldMode::Request {
        return Err(BookingError::Validation { field: "hold_id", reason: format!("hold {hold_id} is not a booking request") }.into());
    }
    Ok(())
}

/// Moves event `event_id` to the time of reschedule hold `hold_id` (which
/// must be a reschedule hold for that event): same UID, sequence + 1, the old
/// time freed. Idempotent like [`confirm_hold`].
pub async fn reschedule_event(db: &mut impl Begin, event_id: &str, hold_id: &str, now: Instant) -> Result<EventRecord, StoreError> {
    let hold = get_hold(&*db, hold_id).await?;
    if hold.kind != HoldKind::Reschedule || hold.event_id.as_deref() != Some(event_id) {
        return Err(BookingError::Validation { field: "hold_id", reason: format!("hold {hold_id} is not a reschedule hold for event {event_id}") }.into());
    }
    confirm_hold(db, hold_id, now).await
}

/// Cancels a confirmed event: its time is free again and its sequence
/// increments. Cancelling a cancelled event changes nothing.
pub async fn cancel_event(db: &mut impl Begin, event_id: &str, now: Instant) -> Result<EventRecord, StoreError> {
    let user_id = get_event(&*db, event_id).await?.user_id;
    let tx = db.begin().await?;
    lock_provider(&tx, &user_id).await?;
    let event = event_by_id(&tx, event_id, true).await?;
    if event.status == EventStatus::Cancelled {
        return Ok(event);
    }
    let rows = tx
        .query(
            &format!(
                "update cal.event set status = 'cancelled', sequence = sequence + 1, updated_at = $2
                 where event_id = $1 returning {EVENT_RECORD}"
            ),
            &[&event_id, &now.to_chrono()],
        )
        .await?;
    let cancelled = EventRecord::from_row(&rows[0])?;
    outbox::bump_version(&tx, &user_id).await?;
    outbox::enqueue(&tx, EVENT_CANCELLED, &user_id, &json!({"event": cancelled.payload()})).await?;
    tx.commit().await?;
    Ok(cancelled)
}

/// The hold sweeper's work: marks up to `batch` active holds whose time ran
/// out as `expired`, writing `cal.hold.expired` for each, in one transaction.
/// `FOR UPDATE SKIP LOCKED` lets several sweepers (and bookings holding a
/// hold's row) run at once without waiting on each other. Correctness never
/// depends on it: an expired hold is free time whether swept or not.
pub async fn sweep_expired_holds(db: &mut impl Begin, now: Instant, batch: i64) -> Result<Vec<HoldRecord>, StoreError> {
    let tx = db.begin().await?;
    let rows = tx
        .query(
            &format!(
                "update cal.hold set status = 'expired', updated_at = $1
                 where hold_id in (select hold_id from cal.hold
                                   where status = 'active' and expires_at <= $1
                                   order by expires_at, hold_id limit $2
                                   for update skip locked)
                 returning {HOLD_RECORD}"
            ),
            &[&now.to_chrono(), &batch.max(1)],
        )
        .await?;
    let mut swept = Vec::with_capacity(rows.len());
    for row in &rows {
        let hold = HoldRecord::from_row(row)?;
        outbox::bump_version(&tx, &hold.user_id).await?;
        outbox::enqueue(&tx, HOLD_EXPIRED, &hold.user_id, &hold.payload()).await?;
        swept.push(hold);
    }
    tx.commit().await?;
    Ok(swept)
}

/// An event of the order service this suite reacts to.
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderEvent {
    /// `order.booked`: convert the checkout or accepted request hold.
    Booked { hold_id: String },
    /// `order.rescheduled`: move the event to its reschedule hold's time.
    Rescheduled { event_id: String, hold_id: String },
    /// `order.cancelled`: cancel the event.
    Cancelled { event_id: String },
}

impl OrderEvent {
    /// Reads an EventBridge `detail-type` and `detail`; a missing or blank
    /// field is a validation error naming it.
    pub fn parse(detail_type: &str, detail: &serde_json::Value) -> Result<Self, StoreError> {
        let field = |name: &'static str| -> Result<String, StoreError> {
            detail
                .get(name)
                .and_then(|v| v.as_str())
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned)
                .ok_or_else(|| BookingError::Validation { field: name, reason: "is required".into() }.into())
        };
        match detail_type {
            "order.booked" => Ok(OrderEvent::Booked { hold_id: field("hold_id")? }),
            "order.rescheduled" => Ok(OrderEvent::Rescheduled { event_id: field("event_id")?, hold_id: field("hold_id")? }),
            "order.cancelled" => Ok(OrderEvent::Cancelled { event_id: field("event_id")? }),
            other => Err(BookingError::Validation { field: "detail-type", reason: format!("unknown order event {other:?}") }.into()),
        }
    }
}

/// Applies an order event. Every branch is idempotent, so a redelivered
/// event is harmless: converting a converted hold returns its event,
/// cancelling a cancelled event returns it unchanged.
pub async fn apply_order_event(db: &mut impl Begin, event: &OrderEvent, now: Instant) -> Result<EventRecord, StoreError> {
    match event {
        OrderEvent::Booked { hold_id } => confirm_hold(db, hold_id, now).await,
        OrderEvent::Rescheduled { event_id, hold_id } => reschedule_event(db, event_id, hold_id, now).await,
        OrderEvent::Cancelled { event_id } => cancel_event(db, event_id, now).await,
    }
}

/// Where a confirmed event could move within `[from, to)`: slots of its own
/// length under its provider's rules, ignoring the event's current time
/// (which a reschedule frees). The same rule `create_hold` applies to a
/// reschedule hold, so every candidate can be held.
pub async fn reschedule_candidates(
    db: &impl Executor,
    event_id: &str,
    from: Instant,
    to: Instant,
    step: cal_core::StepMinutes,
    now: Instant,
) -> Result<cal_core::SlotAnswer, StoreError> {
    let event = get_event(db, event_id).await?;
    if event.status != EventStatus::Confirmed {
        return Err(BookingError::Validation { field: "event_id", reason: format!("event {event_id} is cancelled") }.into());
    }
    let minutes = (event.interval().secs() / 60) as u32;
    let range = cal_core::SlotRange::new(from, to, Some(minutes.into()), step)
        .map_err(|e| BookingError::Validation { field: e.field(), reason: e.to_string() })?;
    let mut calendar = load_calendar(db, &event.user_id, &event.role_code, from, to, Some(minutes)).await?;
    calendar.events.retain(|e| e.event_id != event.event_id);
    let query = cal_core::SlotQuery { user_id: event.user_id, role_code: event.role_code, range };
    cal_core::bookable_slots(&query, &calendar, now)
        .map_err(|e| BookingError::Validation { field: e.field(), reason: e.to_string() }.into())
}
