//! Instants, zones, wall-clock times and the two local → UTC rules of
//! SEMANTICS.md §1.
//!
//! Three kinds of time are kept apart by type: [`Instant`] (a UTC instant,
//! whole seconds), [`LocalTime`] (a wall-clock time of day, meaningless
//! without a zone) and [`Zone`] (a validated IANA zone). A local date-time only
//! becomes an instant through one of the zone's conversions, each of which
//! names the rule it applies.

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, SecondsFormat,
    TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use serde::{Serialize, Serializer};

/// Seconds in a civil day (a local day may still be 23 or 25 hours long).
pub const SECS_PER_DAY: i64 = 86_400;

/// Failures to read a time value. Each names the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    #[error("unknown zone {0:?}")]
    UnknownZone(String),
    #[error("not an RFC 3339 instant: {0:?} (expected e.g. \"2026-03-01T12:00:00Z\")")]
    BadInstant(String),
    #[error("not a time of day: {0:?} (expected HH:MM or HH:MM:SS, 00:00 to 23:59:59)")]
    BadLocalTime(String),
    #[error("not a date: {0:?} (expected YYYY-MM-DD)")]
    BadDate(String),
    #[error("end {end} is not after start {start}")]
    EmptyInterval { start: Instant, end: Instant },
    #[error("instant out of the supported range")]
    OutOfRange,
}

/// A UTC instant in whole seconds since the Unix epoch.
///
/// Whole seconds are a property of the type: input with fractional seconds is
/// truncated when parsed (SEMANTICS.md §1), so arithmetic deep inside never
/// meets a sub-second remainder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(i64);

impl Instant {
    /// The instant `secs` seconds after 1970-01-01T00:00:00Z.
    pub const fn from_unix(secs: i64) -> Self {
        Instant(secs)
    }

    /// Seconds since the Unix epoch.
    pub const fn unix(self) -> i64 {
        self.0
    }

    /// Parses RFC 3339 with `Z` or a numeric offset; fractional seconds are
    /// truncated toward the earlier whole second.
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        DateTime::parse_from_rfc3339(text.trim())
            .map(|dt| Instant(dt.timestamp()))
            .map_err(|_| TimeError::BadInstant(text.to_owned()))
    }

    /// From a chrono UTC date-time (sub-second part dropped).
    pub fn from_chrono(dt: DateTime<Utc>) -> Self {
        Instant(dt.timestamp())
    }

    /// As a chrono UTC date-time.
    pub fn to_chrono(self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.0, 0).expect("instants are created within chrono's range")
    }

    /// `self + secs`, saturating at the ends of time.
    pub const fn plus_secs(self, secs: i64) -> Self {
        Instant(self.0.saturating_add(secs))
    }

    /// `self + minutes`.
    pub const fn plus_minutes(self, minutes: i64) -> Self {
        self.plus_secs(minutes.saturating_mul(60))
    }

    /// RFC 3339 in UTC with `Z`, whole seconds.
    pub fn rfc3339(self) -> String {
        self.to_chrono().to_rfc3339_opts(SecondsFormat::Secs, true)
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

impl Serialize for Instant {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.rfc3339())
    }
}

/// A half-open interval `[start, end)` with `end > start` (SEMANTICS.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Interval {
    start: Instant,
    end: Instant,
}

impl Interval {
    /// An interval given as input: an empty or inverted one is an error.
    pub fn new(start: Instant, end: Instant) -> Result<Self, TimeError> {
        Self::non_empty(start, end).ok_or(TimeError::EmptyInterval { start, end })
    }

    /// An interval produced by computation: an empty one is dropped.
    pub fn non_empty(start: Instant, end: Instant) -> Option<Self> {
        (end > start).then_some(Interval { start, end })
    }

    pub const fn start(self) -> Instant {
        self.start
    }

    pub const fn end(self) -> Instant {
        self.end
    }

    /// Whether `t` lies in `[start, end)`.
    pub fn contains(self, t: Instant) -> bool {
        self.start <= t && t < self.end
    }

    /// Whether the two share an instant (touching intervals do not).
    pub fn overlaps(self, other: Interval) -> bool {
        self.start < other.end && other.start < self.end
    }

    /// Length in seconds.
    pub fn secs(self) -> i64 {
        self.end.0 - self.start.0
    }
}

/// A wall-clock time of day, `00:00:00` to `23:59:59`, whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalTime(NaiveTime);

impl LocalTime {
    /// Midnight, the start of a local day.
    pub const MIDNIGHT: LocalTime = LocalTime(NaiveTime::MIN);

    /// Parses `HH:MM` or `HH:MM:SS` with two-digit fields. `24:00` and leap
    /// seconds are rejected.
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        let bad = || TimeError::BadLocalTime(text.to_owned());
        let b = text.as_bytes();
        let two = |i: usize| -> Option<u32> {
            let (h, l) = (*b.get(i)?, *b.get(i + 1)?);
            (h.is_ascii_digit() && l.is_ascii_digit()).then(|| u32::from(h - b'0') * 10 + u32::from(l - b'0'))
        };
        let (h, m, s) = match b.len() {
            5 if b[2] == b':' => (two(0), two(3), Some(0)),
            8 if b[2] == b':' && b[5] == b':' => (two(0), two(3), two(6)),
            _ => return Err(bad()),
        };
        let (h, m, s) = (h.ok_or_else(bad)?, m.ok_or_else(bad)?, s.ok_or_else(bad)?);
        if h > 23 || m > 59 || s > 59 {
            return Err(bad());
        }
        NaiveTime::from_hms_opt(h, m, s).map(LocalTime).ok_or_else(bad)
    }

    /// From a chrono time (a database `time`); sub-second parts are dropped.
    pub fn from_naive(t: NaiveTime) -> Self {
        LocalTime(t.with_nanosecond(0).unwrap_or(t))
    }

    pub const fn naive(self) -> NaiveTime {
        self.0
    }

    /// Seconds after midnight.
    pub fn secs_of_day(self) -> u32 {
        self.0.num_seconds_from_midnight()
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%H:%M:%S"))
    }
}

impl Serialize for LocalTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Parses a `YYYY-MM-DD` calendar date.
pub fn parse_date(text: &str) -> Result<NaiveDate, TimeError> {
    let ok = text.len() == 10 && text.as_bytes()[4] == b'-' && text.as_bytes()[7] == b'-';
    ok.then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| TimeError::BadDate(text.to_owned()))
}

/// How a zone maps one wall-clock date-time (SEMANTICS.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalMapping {
    /// Shown once by the clock.
    Single(Instant),
    /// Shown twice (a repeated hour): the earlier and the later instant.
    Repeated { earlier: Instant, later: Instant },
    /// Never shown (a spring-forward gap). `transition` is the instant the
    /// clock jumps over it; `offset_before` the UTC offset in force just
    /// before that jump, in seconds.
    Skipped { transition: Instant, offset_before: i32 },
}

/// A validated IANA time zone. Ordered by name, so windows sort deterministically.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Zone(Tz);

impl Zone {
    /// UTC, the zone of floating and all-day imports when none is given.
    pub const UTC: Zone = Zone(Tz::UTC);

    /// An IANA name, exactly as the tz database spells it. Anything else is
    /// an error: an unknown zone never silently becomes UTC.
    pub fn parse(name: &str) -> Result<Self, TimeError> {
        Tz::from_str(name).map(Zone).map_err(|_| TimeError::UnknownZone(name.to_owned()))
    }

    /// The IANA name.
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// The underlying chrono-tz zone.
    pub const fn tz(self) -> Tz {
        self.0
    }

    /// UTC offset in seconds in force at `t`.
    pub fn offset_at(self, t: Instant) -> i32 {
        self.0
            .offset_from_utc_datetime(&t.to_chrono().naive_utc())
            .fix()
            .local_minus_utc()
    }

    /// The wall-clock date-time at `t`.
    pub fn local_at(self, t: Instant) -> NaiveDateTime {
        t.to_chrono().with_timezone(&self.0).naive_local()
    }

    /// `t` rendered in this zone with its offset, e.g.
    /// `2026-03-02T09:00:00-05:00` (`+00:00` for UTC).
    pub fn render(self, t: Instant) -> String {
        t.to_chrono()
            .with_timezone(&self.0.offset_from_utc_datetime(&t.to_chrono().naive_utc()).fix())
            .to_rfc3339_opts(SecondsFormat::Secs, false)
    }

    /// How this zone maps a wall-clock date-time.
    pub fn map_local(self, local: NaiveDateTime) -> LocalMapping {
        match self.0.from_local_datetime(&local) {
            LocalResult::Single(dt) => LocalMapping::Single(Instant(dt.timestamp())),
            LocalResult::Ambiguous(a, b) => {
                let (a, b) = (Instant(a.timestamp()), Instant(b.timestamp()));
                LocalMapping::Repeated { earlier: a.min(b), later: a.max(b) }
            }
            LocalResult::None => self.gap_containing(local),
        }
    }

    /// Finds the jump over a nonexistent `local`: the latest existing
    /// wall-clock time before it gives the offset before the gap, and the
    /// transition lies between that time and `local` read with that offset.
    fn gap_containing(self, local: NaiveDateTime) -> LocalMapping {
        // Gaps are at most a day long (Pacific/Apia skipped 2011-12-30).
        let mut probe = local;
        let mut before = None;
        for _ in 0..(49 * 4) {
            probe -= Duration::minutes(15);
            match self.0.from_local_datetime(&probe) {
                LocalResult::Single(dt) => before = Some(dt.timestamp()),
                LocalResult::Ambiguous(_, later) => before = Some(later.timestamp()),
                LocalResult::None => continue,
            }
            break;
        }
        let before = Instant(before.expect("every gap in the tz database is shorter than 49 hours"));
        let offset_before = self.offset_at(before);
        let naive_secs = local.and_utc().timestamp();
        let after = Instant(naive_secs - i64::from(offset_before));
        let transition = self.first_change(before, after.max(before.plus_secs(1)));
        LocalMapping::Skipped { transition, offset_before }
    }

    /// The first instant in `(from, to]` whose offset differs from the one at
    /// `from`, assuming at most one transition in between (binary search).
    /// Returns `to` when the offset at `to` is unchanged.
    pub fn first_change(self, from: Instant, to: Instant) -> Instant {
        let base = self.offset_at(from);
        if self.offset_at(to) == base {
            return to;
        }
        let (mut lo, mut hi) = (from.0, to.0);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.offset_at(Instant(mid)) == base {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Instant(hi)
    }

    /// Boundary rule, start edge (SEMANTICS.md §1): the first instant at
    /// which the clock shows `local` or later. In a gap that is the
    /// transition; in a repeated hour the earlier instant.
    pub fn window_start(self, local: NaiveDateTime) -> Instant {
        match self.map_local(local) {
            LocalMapping::Single(t) => t,
            LocalMapping::Repeated { earlier, .. } => earlier,
            LocalMapping::Skipped { transition, .. } => transition,
        }
    }

    /// Boundary rule, end edge (SEMANTICS.md §1): the instant after which
    /// the clock never again shows a time before `local`. In a gap that is
    /// the transition; strictly inside a repeated range the later instant;
    /// at the very first second of a repeated range the earlier one (nothing
    /// before `local` is shown again), so consecutive days tile.
    pub fn window_end(self, local: NaiveDateTime) -> Instant {
        match self.map_local(local) {
            LocalMapping::Single(t) => t,
            LocalMapping::Skipped { transition, .. } => transition,
            LocalMapping::Repeated { earlier, later } => {
                let just_before = local - Duration::seconds(1);
                match self.map_local(just_before) {
                    LocalMapping::Repeated { .. } => later,
                    _ => earlier,
                }
            }
        }
    }

    /// Point rule (RFC 5545 §3.3.5): a nonexistent time is read with the
    /// offset before the gap, an ambiguous one as its first occurrence
    /// (Python `zoneinfo` with `fold=0`).
    pub fn point(self, local: NaiveDateTime) -> Instant {
        match self.map_local(local) {
            LocalMapping::Single(t) => t,
            LocalMapping::Repeated { earlier, .. } => earlier,
            LocalMapping::Skipped { offset_before, .. } => {
                Instant(local.and_utc().timestamp() - i64::from(offset_before))
            }
        }
    }

    /// The local day `date` as `[start(date 00:00), end(date+1 00:00))`
    /// under the boundary rule: 23, 24 or 25 hours (or 23.5/24.5), and
    /// consecutive days tile exactly.
    pub fn day(self, date: NaiveDate) -> Option<Interval> {
        let next = date.succ_opt()?;
        Interval::non_empty(
            self.window_start(date.and_time(NaiveTime::MIN)),
            self.window_end(next.and_time(NaiveTime::MIN)),
        )
    }

    /// The window `[start(date start), end(E end))` of a wall-clock range on
    /// `date`, where `E` is the next day when `end <= start` (overnight;
    /// `09:00–09:00` is 24 hours). `None` when it lies wholly in a DST gap.
    pub fn span(self, date: NaiveDate, start: LocalTime, end: LocalTime) -> Option<Interval> {
        let end_date = if end > start { date } else { date.succ_opt()? };
        Interval::non_empty(
            self.window_start(date.and_time(start.naive())),
            self.window_end(end_date.and_time(end.naive())),
        )
    }

    /// The local calendar date at `t`.
    pub fn date_at(self, t: Instant) -> NaiveDate {
        self.local_at(t).date()
    }
}

impl PartialOrd for Zone {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Zone {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.name().cmp(other.name())
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Zone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn z(name: &str) -> Zone {
        Zone::parse(name).unwrap()
    }

    fn ldt(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").unwrap()
    }

    #[test]
    fn instants_parse_offsets_and_truncate_fractions() {
        assert_eq!(Instant::parse("2026-03-01T12:00:00.999Z").unwrap().rfc3339(), "2026-03-01T12:00:00Z");
        assert_eq!(Instant::parse("2026-03-01T07:00:00-05:00").unwrap().rfc3339(), "2026-03-01T12:00:00Z");
        assert!(Instant::parse("2026-03-01 12:00").is_err());
        assert!(Instant::parse("2026-03-01T12:00:00").is_err(), "an instant needs Z or an offset");
    }

    #[test]
    fn local_times_are_strict() {
        assert_eq!(LocalTime::parse("09:00").unwrap().to_string(), "09:00:00");
        assert_eq!(LocalTime::parse("23:59:59").unwrap().to_string(), "23:59:59");
        for bad in ["24:00", "9:00", "09:60", "09:00:60", "09-00", "", "09:00:00.5", "ab:cd"] {
            assert!(LocalTime::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn unknown_zone_is_an_error_not_utc() {
        assert_eq!(Zone::parse("Europe/Berlinn"), Err(TimeError::UnknownZone("Europe/Berlinn".into())));
        assert!(Zone::parse("europe/berlin").is_err());
        assert_eq!(z("Etc/UTC").render(Instant::from_unix(0)), "1970-01-01T00:00:00+00:00");
    }

    #[test]
    fn gap_in_new_york_spring_forward() {
        let ny = z("America/New_York");
        // 2026-03-08: 02:00 EST jumps to 03:00 EDT at 07:00Z.
        assert_eq!(ny.window_start(ldt("2026-03-08T02:00:00")).rfc3339(), "2026-03-08T07:00:00Z");
        assert_eq!(ny.window_start(ldt("2026-03-08T02:30:00")).rfc3339(), "2026-03-08T07:00:00Z");
        assert_eq!(ny.window_end(ldt("2026-03-08T02:30:00")).rfc3339(), "2026-03-08T07:00:00Z");
        // Point rule: offset before the gap, 02:30 EST = 07:30Z = 03:30 EDT.
        assert_eq!(ny.point(ldt("2026-03-08T02:30:00")).rfc3339(), "2026-03-08T07:30:00Z");
    }

    #[test]
    fn repeated_hour_in_new_york_fall_back() {
        let ny = z("America/New_York");
        // 2026-11-01: 02:00 EDT falls back to 01:00 EST at 06:00Z.
        assert_eq!(ny.window_start(ldt("2026-11-01T01:30:00")).rfc3339(), "2026-11-01T05:30:00Z");
        assert_eq!(ny.window_end(ldt("2026-11-01T01:30:00")).rfc3339(), "2026-11-01T06:30:00Z");
        assert_eq!(ny.window_end(ldt("2026-11-01T01:00:00")).rfc3339(), "2026-11-01T05:00:00Z");
        assert_eq!(ny.point(ldt("2026-11-01T01:30:00")).rfc3339(), "2026-11-01T05:30:00Z");
    }
}
