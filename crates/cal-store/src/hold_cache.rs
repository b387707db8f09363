//! A process's cache of the calendars its hold requests read, so that a
//! hold on a provider it booked a moment ago costs one round trip.
//!
//! Every change to what feasibility reads bumps `cal.provider_version` in
//! its own transaction, and the write of a hold succeeds only if that version
//! is still the one its check read (see `create_hold`). So a calendar read
//! at version `v`, plus the hold this process then wrote as `v → v + 1`, is
//! exactly the provider's state at `v + 1`: the next request can be checked
//! against it and written with `v + 1` as the version it expects, without
//! reading anything first. If anyone changed the provider meanwhile, the
//! write refuses, the entry is dropped and the request is answered from
//! fresh reads; nothing is ever stored on the cache's word alone.
//!
//! An entry is used only for [`CalendarCache::DEFAULT_MAX_AGE`] after it was
//! read or confirmed, only for a request inside the range it was read for
//! (a week from the request that read it), and only if it holds no hold that
//! ran out but is still marked active (its write would need the full record,
//! for the outbox). A refusal the cached calendar suggests is believed only
//! once one statement shows the provider's version still the entry's (else
//! the busy time is read afresh).
//!
//! A cache belongs to one database: keep one per pool.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant as Clock};

use cal_core::feasibility::{HoldBusy, HoldStatus, ProviderCalendar};
use cal_core::holds::HoldRequest;
use cal_core::time::{Instant, Interval};

/// The range of a calendar load: `[from, to)` and the longest slot it was
/// read for (its `duration_min`); see `calendar::bounds_cte`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) from: Instant,
    pub(crate) to: Instant,
    pub(crate) duration_min: u32,
}

impl Span {
    /// How far past a request's start a cached load reaches.
    const REACH_SECS: i64 = 7 * 86_400;

    /// Exactly what `req` needs.
    pub(crate) fn exact(req: &HoldRequest) -> Span {
        Span { from: req.interval.start(), to: req.interval.end(), duration_min: req.minutes() }
    }

    /// What `req` needs, widened to a week from its start (and slots of at
    /// least an hour), so the entry also serves the provider's next requests.
    pub(crate) fn widened(req: &HoldRequest) -> Span {
        let (start, end) = (req.interval.start(), req.interval.end());
        Span { from: start, to: end.max(start.plus_secs(Self::REACH_SECS)), duration_min: req.minutes().max(60) }
    }

    /// Whether a load over `self` read everything a load for `req` would.
    /// The loaded range is `[from − 2 days, to + 2 days + max(duration, 60,
    /// longest rule minimum))`: starting no earlier, ending no later and no
    /// longer than `self`'s, the request's range lies within it.
    fn covers(&self, req: &HoldRequest) -> bool {
        req.interval.start() >= self.from
            && req.interval.end() <= self.to
            && req.minutes() <= self.duration_min.max(60)
    }
}

/// A calendar as of a provider version.
#[derive(Clone, Debug)]
pub(crate) struct CachedCalendar {
    pub(crate) version: i64,
    pub(crate) span: Span,
    pub(crate) calendar: ProviderCalendar,
}

struct Entry {
    cached: CachedCalendar,
    at: Clock,
}

/// See the module documentation. Cheap to share: one lock around a map,
/// held only to copy an entry in or out.
pub struct CalendarCache {
    entries: Mutex<HashMap<(String, String), Entry>>,
    max_age: Duration,
    capacity: usize,
}

impl Default for CalendarCache {
    fn default() -> Self {
        CalendarCache::new(CalendarCache::DEFAULT_MAX_AGE, CalendarCache::DEFAULT_CAPACITY)
    }
}

impl CalendarCache {
    /// How long an entry is trusted after it was read or last confirmed by a
    /// write: it bounds how old the rules and exceptions behind a refusal's
    /// alternatives can be.
    pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(10);
    /// Providers kept (the oldest entry goes first).
    pub const DEFAULT_CAPACITY: usize = 1_024;

    /// A cache trusting entries for `max_age`, of at most `capacity` providers.
    pub fn new(max_age: Duration, capacity: usize) -> Self {
        CalendarCache { entries: Mutex::new(HashMap::new()), max_age, capacity: capacity.max(1) }
    }

    /// The number of entries (fresh or not).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops what is cached of `user_id` (every role).
    pub fn forget(&self, user_id: &str) {
        self.lock().retain(|(user, _), _| user != user_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Entry>> {
        // A panic while holding the lock cannot leave a half-written entry
        // (entries are replaced whole), so a poisoned map is still sound.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The calendar cached for `req`'s provider and role, if it is fresh,
    /// covers the request and has no hold that ran out at `now` still marked
    /// active.
    pub(crate) fn get(&self, req: &HoldRequest, now: Instant) -> Option<CachedCalendar> {
        let key = (req.user_id.clone(), req.role_code.clone());
        let mut entries = self.lock();
        let entry = entries.get(&key)?;
        if entry.at.elapsed() > self.max_age {
            entries.remove(&key);
            return None;
        }
        let c = &entry.cached;
        let due = c.calendar.holds.iter().any(|h| h.status.ran_out_unmarked(h.expires_at, now));
        (c.span.covers(req) && !due).then(|| c.clone())
    }

    /// Records `cached` for `user_id`/`role_code`, fresh from now, unless
    /// the entry there is of a newer version.
    pub(crate) fn put(&self, user_id: &str, role_code: &str, cached: CachedCalendar) {
        let mut entries = self.lock();
        let key = (user_id.to_owned(), role_code.to_owned());
        if entries.get(&key).is_some_and(|e| e.cached.version > cached.version) {
            return;
        }
        if !entries.contains_key(&key) && entries.len() >= self.capacity {
            let oldest = entries.iter().min_by_key(|(_, e)| e.at).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(key, Entry { cached, at: Clock::now() });
    }

    /// Drops the entry of `req`'s provider and role if it is as of
    /// `version` or older: a write expecting `version` found it moved (a
    /// newer entry, put by the write that moved it, stays).
    pub(crate) fn drop_stale(&self, req: &HoldRequest, version: i64) {
        let key = (req.user_id.clone(), req.role_code.clone());
        let mut entries = self.lock();
        if entries.get(&key).is_some_and(|e| e.cached.version <= version) {
            entries.remove(&key);
        }
    }
}

/// `calendar` after a write that marked the holds `expired` expired and
/// added `hold`.
pub(crate) fn with_written_hold(mut calendar: ProviderCalendar, expired: &[&str], hold: HoldBusy) -> ProviderCalendar {
    for h in calendar.holds.iter_mut().filter(|h| expired.contains(&h.hold_id.as_str())) {
        h.status = HoldStatus::Expired;
    }
    calendar.holds.push(hold);
    calendar
}

/// A hold as its provider's calendar shows it, with its role: the role's
/// policy buffers it and its limits count it (SEMANTICS.md §8), so a cached
/// calendar must show the role a read would.
pub(crate) fn hold_busy(hold_id: &str, user_id: &str, role_code: &str, interval: Interval, expires_at: Instant) -> HoldBusy {
    HoldBusy {
        hold_id: hold_id.to_owned(),
        user_id: user_id.to_owned(),
        role_code: Some(role_code.to_owned()),
        interval,
        expires_at,
        status: HoldStatus::Active,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Instant {
        Instant::parse(s).unwrap()
    }

    fn request(user: &str, start: &str, end: &str) -> HoldRequest {
        crate::testing::checkout(user, "photographer", at(start), at(end), "k")
    }

    fn cached(req: &HoldRequest, holds: Vec<HoldBusy>) -> CachedCalendar {
        CachedCalendar { version: 7, span: Span::widened(req), calendar: ProviderCalendar { holds, ..Default::default() } }
    }

    #[test]
    fn an_entry_serves_requests_within_its_week_and_no_others() {
        let first = request("p", "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z");
        let cache = CalendarCache::default();
        cache.put("p", "photographer", cached(&first, Vec::new()));
        let now = at("2026-03-01T00:00:00Z");
        let hit = cache.get(&request("p", "2026-03-08T09:00:00Z", "2026-03-08T10:00:00Z"), now).expect("within the week");
        assert_eq!(hit.version, 7);
        // Past the week, before its start, another provider, a longer slot.
        assert!(cache.get(&request("p", "2026-03-09T10:00:00Z", "2026-03-09T11:00:00Z"), now).is_none());
        assert!(cache.get(&request("p", "2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"), now).is_none());
        assert!(cache.get(&request("q", "2026-03-02T12:00:00Z", "2026-03-02T13:00:00Z"), now).is_none());
        assert!(cache.get(&request("p", "2026-03-02T12:00:00Z", "2026-03-02T14:00:00Z"), now).is_none());
        // A write that expected version 6 leaves the entry of version 7.
        cache.drop_stale(&first, 6);
        assert_eq!(cache.len(), 1);
        cache.drop_stale(&first, 7);
        assert!(cache.is_empty());
        cache.put("p", "photographer", cached(&first, Vec::new()));
        cache.forget("p");
        assert!(cache.is_empty());
    }

    #[test]
    fn an_entry_with_a_hold_that_ran_out_unmarked_is_not_used() {
        let req = request("p", "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z");
        let hold = hold_busy("h1", "p", "photographer", Interval::new(at("2026-03-02T12:00:00Z"), at("2026-03-02T13:00:00Z")).unwrap(), at("2026-03-01T00:15:00Z"));
        let cache = CalendarCache::default();
        cache.put("p", "photographer", cached(&req, vec![hold.clone()]));
        assert!(cache.get(&req, at("2026-03-01T00:14:59Z")).is_some());
        assert!(cache.get(&req, at("2026-03-01T00:15:00Z")).is_none());
        // Once marked expired by a write, it no longer stands in the way.
        let calendar = with_written_hold(ProviderCalendar { holds: vec![hold], ..Default::default() }, &["h1"], hold_busy(
            "h2",
            "p",
            "photographer",
            req.interval,
            at("2026-03-01T00:30:00Z"),
        ));
        assert_eq!(calendar.holds[0].status, HoldStatus::Expired);
        cache.put("p", "photographer", CachedCalendar { version: 8, span: Span::widened(&req), calendar });
        assert!(cache.get(&req, at("2026-03-01T00:15:00Z")).is_some());
    }

    #[test]
    fn entries_age_out_and_the_oldest_makes_room() {
        let req = request("p", "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z");
        let now = at("2026-03-01T00:00:00Z");
        let aged = CalendarCache::new(Duration::ZERO, 8);
        aged.put("p", "photographer", cached(&req, Vec::new()));
        std::thread::sleep(Duration::from_millis(2));
        assert!(aged.get(&req, now).is_none());
        assert!(aged.is_empty(), "a stale entry is dropped when met");

        let small = CalendarCache::new(Duration::from_secs(60), 2);
        for user in ["a", "b", "c"] {
            small.put(user, "photographer", cached(&req, Vec::new()));
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(small.len(), 2);
        assert!(small.get(&request("a", "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"), now).is_none());
        assert!(small.get(&request("c", "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"), now).is_some());
    }
}
