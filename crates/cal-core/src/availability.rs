//! Weekly rules and per-date exceptions → availability windows
//! (SEMANTICS.md §2).

use std::collections::BTreeSet;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

use crate::intervals;
use crate::time::{Instant, Interval, LocalTime, Zone};

/// Largest minimum duration / requested duration accepted, in minutes (31 days).
pub const MAX_DURATION_MIN: u32 = 31 * 24 * 60;
/// Largest lead time accepted, in hours (one leap year).
pub const MAX_LEAD_TIME_HOURS: u32 = 366 * 24;
/// Largest booking window accepted, in days (ten years).
pub const MAX_BOOKING_WINDOW_DAYS: u32 = 3660;

/// Why a booking parameter or mask was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("must be between 1 and 127 (bit 0 = Monday … bit 6 = Sunday), got {0}")]
    MaskOutOfRange(i64),
    #[error("must be between {min} and {max}, got {got}")]
    OutOfRange { min: i64, max: i64, got: i64 },
    #[error("start_local and end_local must both be set or both be null")]
    HalfTimes,
    #[error("must be \"available\" or \"unavailable\", got {0:?}")]
    BadKind(String),
}

/// Checks `value` against `min..=max` and converts it.
pub fn bounded(value: i64, min: u32, max: u32) -> Result<u32, RuleError> {
    if value < i64::from(min) || value > i64::from(max) {
        return Err(RuleError::OutOfRange { min: min.into(), max: max.into(), got: value });
    }
    Ok(value as u32)
}

/// Days of the week a rule applies to: bit 0 = Monday … bit 6 = Sunday.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct WeekdayMask(u8);

impl WeekdayMask {
    /// A mask in 1..=127.
    pub fn new(bits: i64) -> Result<Self, RuleError> {
        if (1..=127).contains(&bits) {
            Ok(WeekdayMask(bits as u8))
        } else {
            Err(RuleError::MaskOutOfRange(bits))
        }
    }

    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether `day` is in the mask.
    pub fn contains(self, day: Weekday) -> bool {
        self.0 & (1 << day.num_days_from_monday()) != 0
    }
}

/// Booking parameters a window carries (DDL defaults 60 min / 24 h / 60 days).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct BookingParams {
    pub min_duration_min: u32,
    pub lead_time_hours: u32,
    pub booking_window_days: u32,
}

impl Default for BookingParams {
    fn default() -> Self {
        BookingParams { min_duration_min: 60, lead_time_hours: 24, booking_window_days: 60 }
    }
}

impl BookingParams {
    /// Validated parameters; `None` takes the DDL default.
    pub fn new(min_duration_min: Option<i64>, lead_time_hours: Option<i64>, booking_window_days: Option<i64>) -> Result<Self, (&'static str, RuleError)> {
        let d = BookingParams::default();
        Ok(BookingParams {
            min_duration_min: min_duration_min
                .map(|v| bounded(v, 1, MAX_DURATION_MIN))
                .transpose()
                .map_err(|e| ("min_duration_min", e))?
                .unwrap_or(d.min_duration_min),
            lead_time_hours: lead_time_hours
                .map(|v| bounded(v, 0, MAX_LEAD_TIME_HOURS))
                .transpose()
                .map_err(|e| ("lead_time_hours", e))?
                .unwrap_or(d.lead_time_hours),
            booking_window_days: booking_window_days
                .map(|v| bounded(v, 0, MAX_BOOKING_WINDOW_DAYS))
                .transpose()
                .map_err(|e| ("booking_window_days", e))?
                .unwrap_or(d.booking_window_days),
        })
    }

    /// Per parameter, the stricter of the two: the larger minimum duration,
    /// the larger lead time, the smaller booking window.
    pub fn strictest(self, other: BookingParams) -> BookingParams {
        BookingParams {
            min_duration_min: self.min_duration_min.max(other.min_duration_min),
            lead_time_hours: self.lead_time_hours.max(other.lead_time_hours),
            booking_window_days: self.booking_window_days.min(other.booking_window_days),
        }
    }

    /// The strictest of many, or `None` for none.
    pub fn strictest_of(items: impl IntoIterator<Item = BookingParams>) -> Option<BookingParams> {
        items.into_iter().reduce(BookingParams::strictest)
    }
}

/// A weekly recurring availability rule (`cal.weekly_rule`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WeeklyRule {
    pub rule_id: String,
    pub user_id: String,
    pub role_code: String,
    pub weekday_mask: WeekdayMask,
    pub start_local: LocalTime,
    pub end_local: LocalTime,
    pub timezone: Zone,
    pub params: BookingParams,
    pub active: bool,
}

/// Whether an exception adds or removes time.
///
/// Serde reads both the stored spelling (`available`) and the GraphQL enum
/// value (`AVAILABLE`): one type for every input of this value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExceptionKind {
    #[serde(alias = "AVAILABLE")]
    Available,
    #[serde(alias = "UNAVAILABLE")]
    Unavailable,
}

/// An exception's local times as an input gives them: both (a span) or
/// neither (the whole local day, SEMANTICS §2). One alone is refused,
/// naming the field that is missing (`start_local` or `end_local`). The one
/// both-or-neither rule for every reader of exceptions.
pub fn exception_times(
    start: Option<LocalTime>,
    end: Option<LocalTime>,
) -> Result<Option<(LocalTime, LocalTime)>, (&'static str, RuleError)> {
    match (start, end) {
        (Some(s), Some(e)) => Ok(Some((s, e))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(("end_local", RuleError::HalfTimes)),
        (None, Some(_)) => Err(("start_local", RuleError::HalfTimes)),
    }
}

impl ExceptionKind {
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        match text {
            "available" => Ok(ExceptionKind::Available),
            "unavailable" => Ok(ExceptionKind::Unavailable),
            other => Err(RuleError::BadKind(other.to_owned())),
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            ExceptionKind::Available => "available",
            ExceptionKind::Unavailable => "unavailable",
        }
    }
}

/// A per-date exception (`cal.exception`); `times` absent means the whole
/// local day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Exception {
    pub exc_id: String,
    pub user_id: String,
    pub date_local: NaiveDate,
    pub timezone: Zone,
    pub kind: ExceptionKind,
    pub times: Option<(LocalTime, LocalTime)>,
}

impl Exception {
    /// The span this exception covers: its times on its date (overnight
    /// convention as for weekly rules) or the whole local day.
    pub fn interval(&self) -> Option<Interval> {
        match self.times {
            Some((s, e)) => self.timezone.span(self.date_local, s, e),
            None => self.timezone.day(self.date_local),
        }
    }
}

/// A window of availability with the parameters that govern slots in it.
///
/// The derived order is the deterministic one of SEMANTICS.md §4: start,
/// end, zone name (then parameters, so equal windows sort together).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Window {
    pub interval: Interval,
    pub zone: Zone,
    pub params: BookingParams,
}

/// Availability of one provider and role near a range of instants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Availability {
    /// Every window overlapping the range, before unavailable spans are
    /// removed, sorted by (start, end, zone).
    pub windows: Vec<Window>,
    /// The removed spans (a set).
    pub unavailable: Vec<Interval>,
    /// Union of the windows minus the removed spans (a set).
    pub available: Vec<Interval>,
    /// The longest window, in seconds (bounds look-ups of containing windows).
    pub longest_window_secs: i64,
}

impl Availability {
    /// Builds the windows of `user_id`/`role_code` that overlap `[lo, hi)`.
    ///
    /// Rows of other users or roles and inactive rules are ignored, so
    /// callers may pass what they loaded without pre-filtering.
    pub fn build(
        user_id: &str,
        role_code: &str,
        rules: &[WeeklyRule],
        exceptions: &[Exception],
        lo: Instant,
        hi: Instant,
    ) -> Availability {
        let rules: Vec<&WeeklyRule> =
            rules.iter().filter(|r| r.active && r.user_id == user_id && r.role_code == role_code).collect();
        let exceptions: Vec<&Exception> = exceptions.iter().filter(|e| e.user_id == user_id).collect();
        let overlaps = |iv: &Interval| iv.start() < hi && lo < iv.end();

        // Dates with an `available` exception: their weekly windows are replaced.
        let overridden: BTreeSet<NaiveDate> = exceptions
            .iter()
            .filter(|e| e.kind == ExceptionKind::Available)
            .map(|e| e.date_local)
            .collect();

        let mut windows = Vec::new();
        for rule in &rules {
            let zone = rule.timezone;
            // A window starting on date D ends by D+2 00:00 local, so dates from
            // one before the local date at `lo` cover everything overlapping.
            let first = zone.date_at(lo) - Duration::days(1);
            let last = zone.date_at(hi);
            let mut date = first;
            while date <= last {
                if rule.weekday_mask.contains(date.weekday()) && !overridden.contains(&date) {
                    if let Some(iv) = zone.span(date, rule.start_local, rule.end_local).filter(overlaps) {
                        windows.push(Window { interval: iv, zone, params: rule.params });
                    }
                }
                date = date.succ_opt().expect("dates stay far inside chrono's range");
            }
        }

        let mut unavailable = Vec::new();
        for exc in &exceptions {
            let Some(iv) = exc.interval().filter(overlaps) else { continue };
            match exc.kind {
                ExceptionKind::Unavailable => unavailable.push(iv),
                ExceptionKind::Available => {
                    let weekday = exc.date_local.weekday();
                    // The strictest of the rules this override replaces, else of
                    // all the role's rules, else the defaults (SEMANTICS.md §2).
                    let params = BookingParams::strictest_of(
                        rules.iter().filter(|r| r.weekday_mask.contains(weekday)).map(|r| r.params),
                    )
                    .or_else(|| BookingParams::strictest_of(rules.iter().map(|r| r.params)))
                    .unwrap_or_default();
                    windows.push(Window { interval: iv, zone: exc.timezone, params });
                }
            }
        }

        windows.sort_unstable();
        windows.dedup();
        let unavailable = intervals::merge(unavailable);
        let all = intervals::merge(windows.iter().map(|w| w.interval).collect());
        let available = intervals::subtract(&all, &unavailable);
        let longest_window_secs = windows.iter().map(|w| w.interval.secs()).max().unwrap_or(0);
        Availability { windows, unavailable, available, longest_window_secs }
    }

    /// The windows containing `t`, in (start, end, zone) order.
    pub fn windows_containing(&self, t: Instant) -> impl Iterator<Item = &Window> {
        let hi = self.windows.partition_point(|w| w.interval.start() <= t);
        let earliest = t.plus_secs(-self.longest_window_secs);
        let lo = self.windows[..hi].partition_point(|w| w.interval.start() < earliest);
        self.windows[lo..hi].iter().filter(move |w| w.interval.contains(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(mask: i64, s: &str, e: &str, tz: &str) -> WeeklyRule {
        WeeklyRule {
            rule_id: "wr_1".into(),
            user_id: "u".into(),
            role_code: "photographer".into(),
            weekday_mask: WeekdayMask::new(mask).unwrap(),
            start_local: LocalTime::parse(s).unwrap(),
            end_local: LocalTime::parse(e).unwrap(),
            timezone: Zone::parse(tz).unwrap(),
            params: BookingParams::default(),
            active: true,
        }
    }

    fn at(s: &str) -> Instant {
        Instant::parse(s).unwrap()
    }

    fn rendered(a: &Availability) -> Vec<String> {
        a.available.iter().map(|iv| format!("{}/{}", iv.start(), iv.end())).collect()
    }

    #[test]
    fn mask_bits_are_monday_first() {
        let m = WeekdayMask::new(1 | 64).unwrap();
        assert!(m.contains(Weekday::Mon) && m.contains(Weekday::Sun) && !m.contains(Weekday::Tue));
        assert!(WeekdayMask::new(0).is_err() && WeekdayMask::new(128).is_err());
    }

    #[test]
    fn overnight_rule_runs_into_the_next_day() {
        // Mondays 22:00–02:00 in Berlin (CET, +01:00) on 2026-01-05.
        let a = Availability::build(
            "u",
            "photographer",
            &[rule(1, "22:00", "02:00", "Europe/Berlin")],
            &[],
            at("2026-01-05T00:00:00Z"),
            at("2026-01-07T00:00:00Z"),
        );
        assert_eq!(rendered(&a), ["2026-01-05T21:00:00Z/2026-01-06T01:00:00Z"]);
    }

    #[test]
    fn available_exception_replaces_the_days_windows_and_unavailable_wins() {
        let rules = [rule(127, "09:00", "17:00", "UTC")];
        let exc = |kind, times: Option<(&str, &str)>| Exception {
            exc_id: "ex".into(),
            user_id: "u".into(),
            date_local: NaiveDate::from_ymd_opt(2026, 3, 4).unwrap(),
            timezone: Zone::UTC,
            kind,
            times: times.map(|(s, e)| (LocalTime::parse(s).unwrap(), LocalTime::parse(e).unwrap())),
        };
        let a = Availability::build(
            "u",
            "photographer",
            &rules,
            &[exc(ExceptionKind::Available, Some(("12:00", "20:00"))), exc(ExceptionKind::Unavailable, Some(("13:00", "14:00")))],
            at("2026-03-04T00:00:00Z"),
            at("2026-03-05T00:00:00Z"),
        );
        assert_eq!(rendered(&a), ["2026-03-04T12:00:00Z/2026-03-04T13:00:00Z", "2026-03-04T14:00:00Z/2026-03-04T20:00:00Z"]);
    }
}
