//! Why a time is not bookable (SEMANTICS.md §10).
//!
//! [`explain`] answers for one exact span `[start, end)` under §4 and §8:
//! bookable exactly when a slot query with `duration = end − start` and the
//! same step would return it, and otherwise every reason that applies. Each
//! reason is the negation of one test the slot engine makes, asked with the
//! same pieces (availability windows, busy bookings, [`PolicyCheck`]), so
//! the two cannot disagree; a property test checks that they do not.

use serde::Serialize;

use crate::availability::{Availability, BookingParams, ExceptionKind, MAX_DURATION_MIN};
use crate::feasibility::{BookingId, FeasibilityError, ProviderCalendar, StepMinutes, on_grid};
use crate::intervals;
use crate::policy::{Buffers, LimitCount, PolicyCheck, exclusion};
use crate::time::{Instant, Interval, SECS_PER_DAY};

/// The answer: `reasons` is empty exactly when `bookable`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub bookable: bool,
    pub reasons: Vec<Reason>,
}

/// One reason a span is not bookable, serialised as `{"code": …, fields}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// `start > now + booking_window_days` (governing); `limit` is that instant.
    BookingWindow { limit: Instant },
    /// A booking or external interval conflicts only through buffers (§8).
    Buffer {
        #[serde(flatten)]
        by: BufferedBy,
    },
    BusyEvent { event_id: String },
    BusyExternal { start: Instant, end: Instant },
    BusyHold { hold_id: String, expires_at: Instant },
    DayLimit { count: usize, limit: u32 },
    /// The span overlaps an `unavailable` exception.
    Exception { exc_id: String },
    /// `start < now + lead_time_hours` (governing); `limit` is that instant.
    LeadTime { limit: Instant },
    MinDuration { min_duration_min: u32 },
    OffGrid { step_min: u32 },
    /// Not inside availability before unavailable spans are removed.
    OutsideHours,
    WeekLimit { count: usize, limit: u32 },
}

/// What a [`Reason::Buffer`] is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum BufferedBy {
    Event { event_id: String },
    Hold { hold_id: String },
    External { start: Instant, end: Instant },
}

impl Reason {
    /// `code`, then the id, or an external interval's start then end, as
    /// rendered: the order §10 lists reasons in (byte strings).
    fn sort_key(&self) -> (String, String, String) {
        let code = serde_json::to_value(self).ok().and_then(|v| v["code"].as_str().map(str::to_owned)).unwrap_or_default();
        let (a, b) = match self {
            Reason::BusyEvent { event_id } | Reason::Buffer { by: BufferedBy::Event { event_id } } => (event_id.clone(), String::new()),
            Reason::BusyHold { hold_id, .. } | Reason::Buffer { by: BufferedBy::Hold { hold_id } } => (hold_id.clone(), String::new()),
            Reason::Exception { exc_id } => (exc_id.clone(), String::new()),
            Reason::BusyExternal { start, end } | Reason::Buffer { by: BufferedBy::External { start, end } } => (start.rfc3339(), end.rfc3339()),
            _ => (String::new(), String::new()),
        };
        (code, a, b)
    }
}

/// Why a span may not be given to `explain`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpanError {
    #[error("end {end} is not after start {start}")]
    NotAfterStart { start: Instant, end: Instant },
    #[error("the span must last whole minutes, got {secs} s")]
    NotWholeMinutes { secs: i64 },
    #[error(transparent)]
    Duration(FeasibilityError),
}

/// A span `explain` can answer for: `end > start`, whole minutes, at most
/// the longest duration a slot query accepts.
pub fn span(start: Instant, end: Instant) -> Result<Interval, SpanError> {
    let iv = Interval::non_empty(start, end).ok_or(SpanError::NotAfterStart { start, end })?;
    if iv.secs() % 60 != 0 {
        return Err(SpanError::NotWholeMinutes { secs: iv.secs() });
    }
    let minutes = iv.secs() / 60;
    if minutes > i64::from(MAX_DURATION_MIN) {
        let e = FeasibilityError::MinutesOutOfRange { field: "duration_min", min: 1, max: MAX_DURATION_MIN, got: minutes };
        return Err(SpanError::Duration(e));
    }
    Ok(iv)
}

/// SEMANTICS.md §10 for `user_id` booking as `role_code`: whether the exact
/// span (from [`span`]) is bookable at `step`, and every reason it is not,
/// sorted by code, then id or interval.
pub fn explain(user_id: &str, role_code: &str, span: Interval, step: StepMinutes, calendar: &ProviderCalendar, now: Instant) -> Explanation {
    let (start, end) = (span.start(), span.end());
    let minutes = (span.secs() / 60) as u32;
    let mut reasons = Vec::new();

    let avail = Availability::build(user_id, role_code, &calendar.weekly_rules, &calendar.exceptions, start, end);
    let hours = intervals::merge(avail.windows.iter().map(|w| w.interval).collect());
    if intervals::containing(&hours, start).is_none_or(|h| h.end() < end) {
        reasons.push(Reason::OutsideHours);
    }
    for e in calendar.exceptions.iter().filter(|e| e.user_id == user_id && e.kind == ExceptionKind::Unavailable) {
        if e.interval().is_some_and(|iv| iv.overlaps(span)) {
            reasons.push(Reason::Exception { exc_id: e.exc_id.clone() });
        }
    }

    // Busy time, and what only buffers make conflict (§8).
    let policies = &calendar.policies[..];
    let own = Buffers::of(policies, user_id, Some(role_code));
    for b in calendar.bookings(user_id, now) {
        let buffered = exclusion(own, Buffers::of(policies, user_id, b.role_code).widen(b.interval)).overlaps(span);
        reasons.extend(match (b.id, b.interval.overlaps(span)) {
            (BookingId::Event { event_id }, true) => Some(Reason::BusyEvent { event_id: event_id.to_owned() }),
            (BookingId::Hold { hold_id, expires_at }, true) => Some(Reason::BusyHold { hold_id: hold_id.to_owned(), expires_at }),
            (BookingId::Event { event_id }, false) if buffered => Some(Reason::Buffer { by: BufferedBy::Event { event_id: event_id.to_owned() } }),
            (BookingId::Hold { hold_id, .. }, false) if buffered => Some(Reason::Buffer { by: BufferedBy::Hold { hold_id: hold_id.to_owned() } }),
            _ => None,
        });
    }
    for &iv in &calendar.external_busy {
        let (start, end) = (iv.start(), iv.end());
        if iv.overlaps(span) {
            reasons.push(Reason::BusyExternal { start, end });
        } else if exclusion(own, iv).overlaps(span) {
            reasons.push(Reason::Buffer { by: BufferedBy::External { start, end } });
        }
    }

    // The rules that need governing values: only where a window contains `start`.
    let containing: Vec<_> = avail.windows_containing(start).collect();
    if let Some(governing) = BookingParams::strictest_of(containing.iter().map(|w| w.params)) {
        if minutes < governing.min_duration_min {
            reasons.push(Reason::MinDuration { min_duration_min: governing.min_duration_min });
        }
        let earliest = now.plus_secs(i64::from(governing.lead_time_hours) * 3600);
        if start < earliest {
            reasons.push(Reason::LeadTime { limit: earliest });
        }
        let latest = now.plus_secs(i64::from(governing.booking_window_days) * SECS_PER_DAY);
        if start > latest {
            reasons.push(Reason::BookingWindow { limit: latest });
        }
        let step_secs = i64::from(step.get()) * 60;
        if !containing.iter().any(|w| on_grid(w.zone, start, step_secs)) {
            reasons.push(Reason::OffGrid { step_min: step.get() });
        }
        let (day, week) = PolicyCheck::new(user_id, role_code, calendar, now).counts(start);
        if let Some(LimitCount { count, limit }) = day.filter(|c| c.reached()) {
            reasons.push(Reason::DayLimit { count, limit });
        }
        if let Some(LimitCount { count, limit }) = week.filter(|c| c.reached()) {
            reasons.push(Reason::WeekLimit { count, limit });
        }
    }

    let mut keyed: Vec<_> = reasons.into_iter().map(|r| (r.sort_key(), r)).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let reasons: Vec<Reason> = keyed.into_iter().map(|(_, r)| r).collect();
    Explanation { bookable: reasons.is_empty(), reasons }
}
