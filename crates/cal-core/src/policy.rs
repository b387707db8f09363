//! Booking policies (SEMANTICS.md §8): buffers around a provider's bookings
//! and limits on how many start per local day and ISO week.
//!
//! A policy belongs to one `(user_id, role_code)`; no policy means no
//! buffers and no limits. The slot engine asks [`PolicyCheck`] about each
//! candidate, so a hold's re-check (which runs the slot engine) applies the
//! same rules.

use chrono::{Datelike, Duration, NaiveDate};

use crate::availability::{FieldError, RuleError, bounded};
use crate::feasibility::{Booking, ProviderCalendar};
use crate::intervals;
use crate::time::{Instant, Interval, Zone};

/// Largest buffer before or after a booking, in minutes (a day).
pub const MAX_BUFFER_MIN: u32 = 24 * 60;

/// A provider's policy for one role (`cal.booking_policy`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BookingPolicy {
    pub user_id: String,
    pub role_code: String,
    /// The zone whose local days and ISO weeks the limits count.
    pub timezone: Zone,
    pub buffer_before_min: u32,
    pub buffer_after_min: u32,
    /// At most this many bookings of the role start on one local day; `None`: no limit.
    pub max_per_day: Option<u32>,
    /// At most this many start in one ISO week (Monday 00:00 to Monday 00:00, local).
    pub max_per_week: Option<u32>,
}

/// A policy as an input carries it (a document row, later an API input):
/// values read as their JSON types, checked by `BookingPolicy::try_from`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookingPolicyInput<'a> {
    pub user_id: &'a str,
    pub role_code: &'a str,
    pub timezone: &'a str,
    pub buffer_before_min: Option<i64>,
    pub buffer_after_min: Option<i64>,
    pub max_per_day: Option<i64>,
    pub max_per_week: Option<i64>,
}

impl TryFrom<BookingPolicyInput<'_>> for BookingPolicy {
    type Error = FieldError;

    /// Checks, in this order: the zone, the buffers (0..=1440, default 0),
    /// the limits (at least 1, or null for none).
    fn try_from(p: BookingPolicyInput<'_>) -> Result<Self, FieldError> {
        let buffer = |field: &'static str, v: Option<i64>| {
            v.map_or(Ok(0), |v| bounded(v, 0, MAX_BUFFER_MIN)).map_err(|e| FieldError::new(field, e))
        };
        let limit = |field: &'static str, v: Option<i64>| match v {
            None => Ok(None),
            // A limit beyond u32 is no limit in practice.
            Some(v) if v >= 1 => Ok(Some(u32::try_from(v).unwrap_or(u32::MAX))),
            Some(got) => Err(FieldError::new(field, RuleError::BelowOne(got))),
        };
        Ok(BookingPolicy {
            user_id: p.user_id.to_owned(),
            role_code: p.role_code.to_owned(),
            timezone: crate::availability::zone("timezone", p.timezone)?,
            buffer_before_min: buffer("buffer_before_min", p.buffer_before_min)?,
            buffer_after_min: buffer("buffer_after_min", p.buffer_after_min)?,
            max_per_day: limit("max_per_day", p.max_per_day)?,
            max_per_week: limit("max_per_week", p.max_per_week)?,
        })
    }
}

impl BookingPolicy {
    /// The policy of `(user_id, role_code)` among `policies`, if any.
    pub fn find<'a>(policies: &'a [BookingPolicy], user_id: &str, role_code: &str) -> Option<&'a BookingPolicy> {
        policies.iter().find(|p| p.user_id == user_id && p.role_code == role_code)
    }

    /// The first policy that repeats an earlier one's `(user_id, role_code)`,
    /// as `(earlier, repeat)` positions: a second row for a pair is refused.
    pub fn first_repeat(policies: &[BookingPolicy]) -> Option<(usize, usize)> {
        policies.iter().enumerate().find_map(|(i, p)| {
            policies[..i].iter().position(|q| q.user_id == p.user_id && q.role_code == p.role_code).map(|j| (j, i))
        })
    }

    pub fn buffers(&self) -> Buffers {
        Buffers { before_min: self.buffer_before_min, after_min: self.buffer_after_min }
    }

    /// The local day (SEMANTICS.md §1, boundary rule) in the policy's zone
    /// that contains `t`.
    pub fn day_of(&self, t: Instant) -> Interval {
        days(self.timezone, self.timezone.date_at(t), 1, t)
    }

    /// The ISO week (local Monday 00:00 to Monday 00:00) containing `t`.
    pub fn week_of(&self, t: Instant) -> Interval {
        let date = self.timezone.date_at(t);
        let monday = date - Duration::days(date.weekday().num_days_from_monday().into());
        days(self.timezone, monday, 7, t)
    }
}

/// `count` consecutive local days from `first`, as one interval; `t` (an
/// instant the caller knows lies in them) stands in for an edge the zone
/// cannot give, which the tz database never asks for.
fn days(zone: Zone, first: NaiveDate, count: i64, t: Instant) -> Interval {
    let start = zone.day(first).map_or(t, |d| d.start());
    let end = zone.day(first + Duration::days(count - 1)).map_or(t.plus_secs(1), |d| d.end());
    Interval::non_empty(start, end.max(t.plus_secs(1))).expect("a day ends after it starts")
}

/// Minutes before and after a booking, or around a candidate slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Buffers {
    pub before_min: u32,
    pub after_min: u32,
}

impl Buffers {
    /// The buffers of `user_id`'s policy for `role_code` (none without a
    /// role or a policy).
    pub fn of(policies: &[BookingPolicy], user_id: &str, role_code: Option<&str>) -> Buffers {
        role_code
            .and_then(|r| BookingPolicy::find(policies, user_id, r))
            .map_or_else(Buffers::default, BookingPolicy::buffers)
    }

    pub fn is_zero(self) -> bool {
        self.before_min == 0 && self.after_min == 0
    }

    /// `[s − before, e + after)`.
    pub fn widen(self, iv: Interval) -> Interval {
        Interval::non_empty(iv.start().plus_minutes(-i64::from(self.before_min)), iv.end().plus_minutes(self.after_min.into()))
            .expect("widening keeps an interval non-empty")
    }
}

/// Where a slot `[t, t + d)` whose own buffers are `slot` may not lie
/// because of `other` (a booking widened by its own buffers, or an external
/// interval with none): the widened slot `[t − slot.before, t + d +
/// slot.after)` overlaps `other` exactly when `[t, t + d)` overlaps
/// `[other.start − slot.after, other.end + slot.before)`.
pub fn exclusion(slot: Buffers, other: Interval) -> Interval {
    Buffers { before_min: slot.after_min, after_min: slot.before_min }.widen(other)
}

/// §8 as it bears on one provider's candidate slots for one role: the
/// buffer test and the day and week limits.
pub(crate) struct PolicyCheck<'a> {
    /// The union of every booking's and external interval's [`exclusion`];
    /// empty when no buffer applies (then the buffer test is the busy test).
    excluded: Vec<Interval>,
    limits: Option<Limits<'a>>,
}

/// The role's limits and the starts they count.
struct Limits<'a> {
    policy: &'a BookingPolicy,
    /// Starts of the user's bookings of the role, sorted.
    starts: Vec<Instant>,
    /// The last day and week looked at, with their counts (candidates come
    /// in time order, so most look-ups hit these).
    day: Option<(Interval, usize)>,
    week: Option<(Interval, usize)>,
}

/// How many bookings of the role start in the local day or week of a
/// candidate, and the limit they are held to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitCount {
    pub count: usize,
    pub limit: u32,
}

impl LimitCount {
    pub fn reached(self) -> bool {
        self.count >= self.limit as usize
    }
}

impl<'a> PolicyCheck<'a> {
    /// The check for `user_id` booking as `role_code` at `now`, over the
    /// bookings `calendar` holds (a reschedule's event already left out).
    pub(crate) fn new(user_id: &str, role_code: &str, calendar: &'a ProviderCalendar, now: Instant) -> Self {
        let policies = &calendar.policies[..];
        let own = Buffers::of(policies, user_id, Some(role_code));
        let mut excluded = Vec::new();
        // Without any buffer the exclusions are the bookings and external
        // intervals themselves, which the busy test already refuses.
        if !own.is_zero() || policies.iter().any(|p| p.user_id == user_id && !p.buffers().is_zero()) {
            for b in calendar.bookings(user_id, now) {
                excluded.push(exclusion(own, Buffers::of(policies, user_id, b.role_code).widen(b.interval)));
            }
            excluded.extend(calendar.external_busy.iter().map(|&iv| exclusion(own, iv)));
            excluded = intervals::merge(excluded);
        }
        let limits = BookingPolicy::find(policies, user_id, role_code)
            .filter(|p| p.max_per_day.is_some() || p.max_per_week.is_some())
            .map(|policy| {
                let mut starts: Vec<Instant> =
                    calendar.bookings(user_id, now).filter(|b| counts_for(b, role_code)).map(|b| b.interval.start()).collect();
                starts.sort_unstable();
                Limits { policy, starts, day: None, week: None }
            });
        PolicyCheck { excluded, limits }
    }

    /// The latest end a slot starting at `t` may have under the buffer
    /// test, given that it must end by `free_end` anyway; `None` when no
    /// slot may start at `t`.
    pub(crate) fn room_until(&self, t: Instant, free_end: Instant) -> Option<Instant> {
        let i = self.excluded.partition_point(|x| x.end() <= t);
        match self.excluded.get(i) {
            Some(x) if x.start() <= t => None,
            Some(x) => Some(free_end.min(x.start())),
            None => Some(free_end),
        }
    }

    /// The day and week counts at `t` where the role has those limits.
    pub(crate) fn counts(&mut self, t: Instant) -> (Option<LimitCount>, Option<LimitCount>) {
        let Some(l) = &mut self.limits else { return (None, None) };
        let policy = l.policy;
        let day = policy.max_per_day.map(|limit| LimitCount { count: count_at(&mut l.day, &l.starts, t, |t| policy.day_of(t)), limit });
        let week = policy.max_per_week.map(|limit| LimitCount { count: count_at(&mut l.week, &l.starts, t, |t| policy.week_of(t)), limit });
        (day, week)
    }

    /// Whether a slot starting at `t` keeps within the limits.
    pub(crate) fn within_limits(&mut self, t: Instant) -> bool {
        let (day, week) = self.counts(t);
        !day.is_some_and(LimitCount::reached) && !week.is_some_and(LimitCount::reached)
    }
}

/// How many of `starts` (sorted) lie in the span `span_of(t)`, reusing
/// `cache` (the last span looked at and its count) when it contains `t`.
fn count_at(cache: &mut Option<(Interval, usize)>, starts: &[Instant], t: Instant, span_of: impl Fn(Instant) -> Interval) -> usize {
    match *cache {
        Some((iv, n)) if iv.contains(t) => n,
        _ => {
            let iv = span_of(t);
            let n = starts.partition_point(|s| *s < iv.end()) - starts.partition_point(|s| *s < iv.start());
            *cache = Some((iv, n));
            n
        }
    }
}

/// Whether booking `b` counts toward the limits of `role_code`: only rows
/// carrying that role do (§8; rows without `role_code` never count).
pub(crate) fn counts_for(b: &Booking<'_>, role_code: &str) -> bool {
    b.role_code == Some(role_code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(zone: &str) -> BookingPolicy {
        BookingPolicy {
            user_id: "u".into(),
            role_code: "r".into(),
            timezone: Zone::parse(zone).unwrap(),
            buffer_before_min: 0,
            buffer_after_min: 0,
            max_per_day: Some(1),
            max_per_week: None,
        }
    }

    fn at(s: &str) -> Instant {
        Instant::parse(s).unwrap()
    }

    fn text(iv: Interval) -> String {
        format!("{}/{}", iv.start(), iv.end())
    }

    #[test]
    fn days_and_weeks_follow_the_boundary_rule() {
        let ny = policy("America/New_York");
        // 2026-03-08 has 23 hours, 2026-11-01 has 25.
        assert_eq!(text(ny.day_of(at("2026-03-08T12:00:00Z"))), "2026-03-08T05:00:00Z/2026-03-09T04:00:00Z");
        assert_eq!(text(ny.day_of(at("2026-11-01T05:30:00Z"))), "2026-11-01T04:00:00Z/2026-11-02T05:00:00Z");
        assert_eq!(text(ny.day_of(at("2026-11-01T06:30:00Z"))), "2026-11-01T04:00:00Z/2026-11-02T05:00:00Z");
        // ISO week of Sunday 2026-03-08: Monday 03-02 to Monday 03-09, 167 hours.
        assert_eq!(text(ny.week_of(at("2026-03-09T03:59:59Z"))), "2026-03-02T05:00:00Z/2026-03-09T04:00:00Z");
        assert_eq!(text(ny.week_of(at("2026-03-09T04:00:00Z"))), "2026-03-09T04:00:00Z/2026-03-16T04:00:00Z");
        // Lord Howe: 2026-04-05 is 24.5 hours (+11 → +10:30 at 02:00 local).
        let lh = policy("Australia/Lord_Howe");
        assert_eq!(text(lh.day_of(at("2026-04-05T00:00:00Z"))), "2026-04-04T13:00:00Z/2026-04-05T13:30:00Z");
    }

    #[test]
    fn input_is_checked_field_by_field() {
        let input = BookingPolicyInput {
            user_id: "u",
            role_code: "r",
            timezone: "Europe/Berlin",
            buffer_before_min: None,
            buffer_after_min: Some(15),
            max_per_day: None,
            max_per_week: Some(3),
        };
        let p = BookingPolicy::try_from(input).unwrap();
        assert_eq!((p.buffer_before_min, p.buffer_after_min, p.max_per_day, p.max_per_week), (0, 15, None, Some(3)));
        let err = |i: BookingPolicyInput<'_>| BookingPolicy::try_from(i).unwrap_err().to_string();
        assert_eq!(err(BookingPolicyInput { buffer_before_min: Some(1441), ..input }), "buffer_before_min: must be between 0 and 1440, got 1441");
        assert_eq!(err(BookingPolicyInput { buffer_after_min: Some(-1), ..input }), "buffer_after_min: must be between 0 and 1440, got -1");
        assert_eq!(err(BookingPolicyInput { max_per_day: Some(0), ..input }), "max_per_day: must be at least 1, or null for no limit, got 0");
        assert_eq!(err(BookingPolicyInput { timezone: "Mars/Olympus", ..input }), "timezone: unknown zone \"Mars/Olympus\"");
        let other_role = BookingPolicy { role_code: "room".into(), ..policy("UTC") };
        let twice = [p.clone(), other_role, p];
        assert_eq!(BookingPolicy::first_repeat(&twice), Some((0, 2)));
    }
}
