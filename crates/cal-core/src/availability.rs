//! Weekly rules and per-date exceptions → availability windows
//! (SEMANTICS.md §2).

use std::collections::BTreeSet;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

use crate::intervals;
use crate::time::{Instant, Interval, LocalTime, TimeError, Zone};

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
    #[error("must be at least 1, or null for no limit, got {0}")]
    BelowOne(i64),
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

/// What was wrong with one value of an input row (a weekly rule, an
/// exception, a booking policy), by the field's snake_case name. Each
/// reader turns the name into its own path: `weekly_rules[0].timezone` in
/// the `calctl` document, `input.timezone` in the API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct FieldError {
    pub field: &'static str,
    #[source]
    pub problem: ValueProblem,
}

/// The problem of a [`FieldError`]; its message is the underlying error's own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueProblem {
    #[error(transparent)]
    Time(#[from] TimeError),
    #[error(transparent)]
    Rule(#[from] RuleError),
}

impl FieldError {
    pub fn new(field: &'static str, problem: impl Into<ValueProblem>) -> Self {
        FieldError { field, problem: problem.into() }
    }
}

/// A weekly rule as an input carries it (an API `RuleInput`, a document
/// row): values read as their JSON types, not yet checked.
/// `WeeklyRule::try_from` is the one check every reader goes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WeeklyRuleInput<'a> {
    pub rule_id: Option<&'a str>,
    pub user_id: &'a str,
    pub role_code: &'a str,
    pub weekday_mask: i64,
    pub start_local: &'a str,
    pub end_local: &'a str,
    pub timezone: &'a str,
    pub min_duration_min: Option<i64>,
    pub lead_time_hours: Option<i64>,
    pub booking_window_days: Option<i64>,
    pub active: Option<bool>,
}

impl TryFrom<WeeklyRuleInput<'_>> for WeeklyRule {
    type Error = FieldError;

    /// Checks, in this order: the booking parameters, the mask, the times,
    /// the zone. A missing parameter takes the DDL default; `active` defaults
    /// to true.
    fn try_from(r: WeeklyRuleInput<'_>) -> Result<Self, FieldError> {
        let params = BookingParams::new(r.min_duration_min, r.lead_time_hours, r.booking_window_days)
            .map_err(|(field, e)| FieldError::new(field, e))?;
        Ok(WeeklyRule {
            rule_id: r.rule_id.unwrap_or_default().to_owned(),
            user_id: r.user_id.to_owned(),
            role_code: r.role_code.to_owned(),
            weekday_mask: WeekdayMask::new(r.weekday_mask).map_err(|e| FieldError::new("weekday_mask", e))?,
            start_local: local_time("start_local", r.start_local)?,
            end_local: local_time("end_local", r.end_local)?,
            timezone: zone("timezone", r.timezone)?,
            params,
            active: r.active.unwrap_or(true),
        })
    }
}

/// An exception as an input carries it; its kind is already read (each
/// reader keeps its own spelling of a bad kind), the rest is checked by
/// `Exception::try_from`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExceptionInput<'a> {
    pub exc_id: Option<&'a str>,
    pub user_id: &'a str,
    pub date_local: &'a str,
    pub timezone: &'a str,
    pub kind: ExceptionKind,
    pub start_local: Option<&'a str>,
    pub end_local: Option<&'a str>,
}

impl TryFrom<ExceptionInput<'_>> for Exception {
    type Error = FieldError;

    /// Checks, in this order: the date, the times (each, then both or
    /// neither, [`exception_times`]), the zone.
    fn try_from(e: ExceptionInput<'_>) -> Result<Self, FieldError> {
        let date_local = crate::time::parse_date(e.date_local).map_err(|err| FieldError::new("date_local", err))?;
        let start = e.start_local.map(|t| local_time("start_local", t)).transpose()?;
        let end = e.end_local.map(|t| local_time("end_local", t)).transpose()?;
        let times = exception_times(start, end).map_err(|(field, err)| FieldError::new(field, err))?;
        Ok(Exception {
            exc_id: e.exc_id.unwrap_or_default().to_owned(),
            user_id: e.user_id.to_owned(),
            date_local,
            timezone: zone("timezone", e.timezone)?,
            kind: e.kind,
            times,
        })
    }
}

/// `text` as a wall-clock time, refused under `field`.
fn local_time(field: &'static str, text: &str) -> Result<LocalTime, FieldError> {
    LocalTime::parse(text).map_err(|e| FieldError::new(field, e))
}

/// `text` as a zone, refused under `field`.
pub(crate) fn zone(field: &'static str, text: &str) -> Result<Zone, FieldError> {
    Zone::parse(text).map_err(|e| FieldError::new(field, e))
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
    fn one_check_per_row_names_the_field_it_refuses() {
        let rule = WeeklyRuleInput {
            rule_id: None,
            user_id: "u",
            role_code: "r",
            weekday_mask: 31,
            start_local: "09:00",
            end_local: "17:00",
            timezone: "Europe/Berlin",
            min_duration_min: None,
            lead_time_hours: None,
            booking_window_days: None,
            active: None,
        };
        let ok = WeeklyRule::try_from(rule).unwrap();
        assert_eq!((ok.params, ok.active, ok.rule_id.as_str()), (BookingParams::default(), true, ""));
        let field = |r: WeeklyRuleInput<'_>| WeeklyRule::try_from(r).unwrap_err().field;
        assert_eq!(field(WeeklyRuleInput { timezone: "Europe/Berlinn", ..rule }), "timezone");
        assert_eq!(field(WeeklyRuleInput { weekday_mask: 0, ..rule }), "weekday_mask");
        assert_eq!(field(WeeklyRuleInput { end_local: "24:00", ..rule }), "end_local");
        assert_eq!(field(WeeklyRuleInput { lead_time_hours: Some(-1), ..rule }), "lead_time_hours");

        let exc = ExceptionInput {
            exc_id: Some("ex"),
            user_id: "u",
            date_local: "2026-03-04",
            timezone: "UTC",
            kind: ExceptionKind::Unavailable,
            start_local: None,
            end_local: None,
        };
        assert_eq!(Exception::try_from(exc).unwrap().times, None);
        let err = Exception::try_from(ExceptionInput { start_local: Some("09:00"), ..exc }).unwrap_err();
        assert_eq!(err.to_string(), "end_local: start_local and end_local must both be set or both be null");
        assert_eq!(Exception::try_from(ExceptionInput { date_local: "2026-02-30", ..exc }).unwrap_err().field, "date_local");
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
