//! Creating a hold, the hot path: one read statement, the check, then one
//! conditional write ([`super::hold_write`]), or with a process's calendar
//! cache the write alone. A loser is answered from what it reads, or starts
//! over. See [`create_hold`].

use cal_core::BookingError;
use cal_core::feasibility::{EventStatus, HoldStatus};
use cal_core::holds::{self, HoldRequest};
use cal_core::time::Instant;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::hold_sql::{ENSURE_VERSION_SQL, HoldStatements};
use super::hold_write::{WriteLocking, WriteOutcome, write_hold};
use super::policy::HoldPolicy;
use super::records::{HoldRecord, event_by_id, instant, not_found};
use crate::calendar::{CalendarParams, CalendarSnapshot, read_snapshot};
use crate::db::Executor;
use crate::error::StoreError;
use crate::hold_cache::{self, CachedCalendar, CalendarCache, Span};

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
/// takes the customer's lock and counts their holds (see `hold_sql::write_sql`):
/// still one statement, its own transaction.
///
/// [`create_hold_cached`] skips (1) when it can. This function trusts its
/// caller ([`HoldPolicy::TRUSTED`]: operators, jobs); the API's requests go
/// through [`create_hold_cached`] with the caller's policy.
pub async fn create_hold(db: &impl Executor, req: &HoldRequest, now: Instant) -> Result<HoldRecord, StoreError> {
    create_hold_optimistically(db, None, req, &HoldPolicy::TRUSTED, now).await
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
    create_hold_optimistically(db, Some(cache), req, policy, now).await
}

/// [`create_hold`] and [`create_hold_cached`]: check against a calendar
/// (cached, else read), write if the provider's version is still the
/// checked one, and on a loss answer from what the loser reads or start
/// over.
async fn create_hold_optimistically(
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
                Err(BookingError::Conflict { .. }) => match verify_cached_version(db, cache, req, hit, now).await? {
                    CacheVerdict::Answered(answer) => return answer,
                    CacheVerdict::Admitted(hit) => Some(hit),
                    CacheVerdict::Outdated(hit) => {
                        if let Some(hold) = reread_busy_and_recheck(db, req, &params, hit.calendar, now).await? {
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
        let (version, ran_out, calendar, span) = match hit {
            Some(hit) => (hit.version, Vec::new(), hit.calendar, hit.span),
            None => {
                let look = first_read(db, req, &params, now).await?;
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
                        cache.put(&req.user_id, &req.role_code, CachedCalendar { version, span, calendar: look.calendar });
                    }
                    return Err(refused.into());
                }
                (version, look.ran_out, look.calendar, span)
            }
        };
        let queue = attempt >= MAX_OPTIMISTIC_WAITS;
        // After a fresh read, a loss brings its answer (see `hold_sql::write_sql`).
        let loser_answer = read_afresh.then_some(&params);
        let locking = WriteLocking { queue_for_lock: queue, customer_limit: limit };
        match write_hold(db, req, loser_answer, now, version, &ran_out, locking).await? {
            WriteOutcome::Created { hold, version } => {
                tracing::info!(hold_id = %hold.hold_id, user_id = %hold.user_id, expired = ran_out.len(), "hold created");
                if let Some(cache) = cache {
                    let expired: Vec<&str> = ran_out.iter().map(|h| h.hold_id.as_str()).collect();
                    let mine = hold_cache::hold_busy(&hold.hold_id, &hold.user_id, &hold.role_code, req.interval, hold.expires_at);
                    let calendar = hold_cache::with_written_hold(calendar, &expired, mine);
                    cache.put(&req.user_id, &req.role_code, CachedCalendar { version, span, calendar });
                }
                return Ok(*hold);
            }
            WriteOutcome::CustomerLimited(limit) => {
                // Refused by the limit, unless a retry of this very request
                // made its hold meanwhile (the cached path read no key).
                let (_, key) = version_and_key(db, req).await?;
                return key.ok_or(StoreError::CustomerLimit { limit });
            }
            WriteOutcome::VersionMoved(fresh) => {
                // Someone changed the provider meanwhile: lost, unless the
                // change was elsewhere (then start over from fresh reads).
                if let Some(cache) = cache {
                    cache.drop_stale(req, version);
                }
                let answered = match fresh {
                    // The write read the answer itself.
                    Some(fresh) => recheck_with_busy_time(req, fresh, calendar, now)?,
                    None => {
                        // A write of this process may have cached the change.
                        if let Some(cache) = cache
                            && let Some(newer) = cache.get(req, now).filter(|n| n.version > version)
                        {
                            match verify_cached_version(db, cache, req, newer, now).await? {
                                CacheVerdict::Answered(answer) => return answer,
                                CacheVerdict::Admitted(hit) => {
                                    cached = Some(hit);
                                    continue;
                                }
                                CacheVerdict::Outdated(_) => {}
                            }
                        }
                        reread_busy_and_recheck(db, req, &params, calendar, now).await?
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

/// What [`verify_cached_version`] found.
enum CacheVerdict {
    /// The answer: the hold of the key, or the cache's refusal.
    Answered(Result<HoldRecord, StoreError>),
    /// The cache is current and admits the request: write it.
    Admitted(CachedCalendar),
    /// The provider's version is not the cache's: the cache says nothing.
    Outdated(CachedCalendar),
}

/// Reads the provider's version and the hold of the key (one statement, one
/// snapshot): a retry of this very request is answered with its hold; if the
/// version is the one `hit` is as of, `hit` is the provider's state exactly,
/// and the request is answered, or written, from it.
async fn verify_cached_version(
    db: &impl Executor,
    cache: &CalendarCache,
    req: &HoldRequest,
    hit: CachedCalendar,
    now: Instant,
) -> Result<CacheVerdict, StoreError> {
    let (version, key) = version_and_key(db, req).await?;
    if let Some(hold) = key {
        return Ok(CacheVerdict::Answered(Ok(hold)));
    }
    if version != Some(hit.version) {
        return Ok(CacheVerdict::Outdated(hit));
    }
    cache.put(&req.user_id, &req.role_code, hit.clone());
    Ok(match holds::check_hold(req, &hit.calendar, now) {
        Ok(()) => CacheVerdict::Admitted(hit),
        Err(refused) => CacheVerdict::Answered(Err(refused.into())),
    })
}

/// The provider's version and the hold of the key ([`hold_of_same_request`]),
/// in one statement ([`HoldStatements::version_and_key`]).
async fn version_and_key(db: &impl Executor, req: &HoldRequest) -> Result<(Option<i64>, Option<HoldRecord>), StoreError> {
    let rows = db.query(&HoldStatements::get().version_and_key, &key_params(req)).await?;
    let version = rows.first().and_then(|r| r.get::<_, Option<i64>>("version"));
    let key: Vec<Row> = rows.into_iter().filter(|r| r.get::<_, Option<&str>>("hold_id").is_some()).collect();
    Ok((version, hold_of_same_request(req, &key)?))
}

/// The answer to a request whose write lost, or whose cached calendar
/// refused it, from one statement (one snapshot) reading the key and busy
/// time afresh: see [`recheck_with_busy_time`].
async fn reread_busy_and_recheck(
    db: &impl Executor,
    req: &HoldRequest,
    params: &CalendarParams<'_>,
    calendar: cal_core::ProviderCalendar,
    now: Instant,
) -> Result<Option<HoldRecord>, StoreError> {
    let fresh = read_snapshot(db, &HoldStatements::get().loser_read, params, Some(&req.idempotency_key)).await?;
    recheck_with_busy_time(req, fresh, calendar, now)
}

/// The answer a keyed read of busy time (`fresh`) gives a request that
/// lost: the hold of its key if a retry of the same request made one, else
/// `CONFLICT` (with alternatives) if that busy time and the policies read
/// with it refuse it against `calendar`'s rules; `None`: the way is free,
/// start over.
fn recheck_with_busy_time(
    req: &HoldRequest,
    fresh: CalendarSnapshot,
    mut calendar: cal_core::ProviderCalendar,
    now: Instant,
) -> Result<Option<HoldRecord>, StoreError> {
    if let Some(hold) = hold_of_same_request(req, &fresh.key)? {
        return Ok(Some(hold));
    }
    calendar.events = fresh.calendar.events;
    calendar.holds = fresh.calendar.holds;
    calendar.external_busy = fresh.calendar.external_busy;
    calendar.policies = fresh.calendar.policies;
    holds::check_hold(req, &calendar, now)?;
    Ok(None)
}

/// How often `create_hold` starts over because the provider changed
/// between its read and its write.
const MAX_ATTEMPTS: usize = 32;

/// How many attempts try the provider's lock without waiting (then wait
/// with the others on a shared lock); later ones queue for it.
const MAX_OPTIMISTIC_WAITS: usize = 16;

/// What `create_hold` read in its first round trip.
struct FirstRead {
    /// The provider's version (`None`: no version row yet).
    version: Option<i64>,
    /// The hold of an earlier request with the same key.
    existing: Option<HoldRecord>,
    /// The provider's holds in the range read whose time ran out, not yet
    /// marked (`HoldStatus::ran_out_unmarked`): the write marks them.
    ran_out: Vec<HoldRecord>,
    calendar: cal_core::ProviderCalendar,
}

/// The first round trip, one statement ([`HoldStatements::first_read`]): version,
/// rules, exceptions, the key and busy time (holds whole, so those that ran
/// out can be marked), all in one snapshot. If anything changes after it,
/// the version moves and the write refuses; a concurrent retry of this same
/// request whose hold the busy time would show is found by its key instead,
/// not mistaken for a rival booking.
async fn first_read(
    db: &impl Executor,
    req: &HoldRequest,
    params: &CalendarParams<'_>,
    now: Instant,
) -> Result<FirstRead, StoreError> {
    let read = read_snapshot(db, &HoldStatements::get().first_read, params, Some(&req.idempotency_key)).await?;
    // Holds in the range whose time ran out but are still marked active
    // (every `h` row is): the write marks them (the exclusion constraint
    // still counts them).
    let mut ran_out = Vec::new();
    for row in read.busy.iter().filter(|r| r.get::<_, &str>("row_kind") == "h") {
        if HoldStatus::Active.ran_out_unmarked(instant(row, "expires_at")?, now) {
            ran_out.push(HoldRecord::from_row(row)?);
        }
    }
    Ok(FirstRead {
        version: read.version,
        existing: hold_of_same_request(req, &read.key)?,
        ran_out,
        calendar: read.calendar,
    })
}

/// `$1 user_id, $2 idempotency_key`.
fn key_params(req: &HoldRequest) -> [&(dyn ToSql + Sync); 2] {
    [&req.user_id, &req.idempotency_key]
}

/// The hold an earlier request with this key created (from its row, read by
/// a keyed busy read or [`HoldStatements::version_and_key`]), or
/// `IDEMPOTENCY_MISMATCH` if that request was a different one.
fn hold_of_same_request(req: &HoldRequest, rows: &[Row]) -> Result<Option<HoldRecord>, StoreError> {
    let Some(hold) = rows.first().map(HoldRecord::from_row).transpose()? else { return Ok(None) };
    if hold.request_fingerprint != req.fingerprint() {
        return Err(BookingError::IdempotencyMismatch { key: req.idempotency_key.clone() }.into());
    }
    Ok(Some(hold))
}
