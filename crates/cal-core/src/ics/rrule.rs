//! Recurrence rules (SEMANTICS.md §6): the RECUR value of RFC 5545 §3.3.10,
//! parsed into an [`RRule`]. Its expansion into occurrences (§3.8.5.3) is
//! [`expand`] ([`expand_union`] for several rules on one DTSTART),
//! re-exported here so that a rule and what it yields are one
//! module to callers.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, Weekday};

pub use super::recur::{Expansion, Limits, expand, expand_union};

/// FREQ (RFC 5545 §3.3.10): the unit of the recurrence's periods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Freq {
    Secondly,
    Minutely,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Freq {
    /// The name in a RECUR value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Freq::Secondly => "SECONDLY",
            Freq::Minutely => "MINUTELY",
            Freq::Hourly => "HOURLY",
            Freq::Daily => "DAILY",
            Freq::Weekly => "WEEKLY",
            Freq::Monthly => "MONTHLY",
            Freq::Yearly => "YEARLY",
        }
    }

    fn parse(s: &str) -> Option<Freq> {
        [Freq::Secondly, Freq::Minutely, Freq::Hourly, Freq::Daily, Freq::Weekly, Freq::Monthly, Freq::Yearly]
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s))
    }
}

/// UNTIL (RFC 5545 §3.3.10), inclusive, in the three forms it is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// `UNTIL=19971224`: every occurrence on or before that (wall-clock) day.
    Date(NaiveDate),
    /// `UNTIL=19971224T000000`: a wall-clock bound, for floating DTSTARTs.
    Floating(NaiveDateTime),
    /// `UNTIL=19971224T000000Z`, as unix seconds: compared with each
    /// occurrence through the caller's zone (`to_utc` of [`expand`]).
    Utc(i64),
}

/// A parsed RECUR value (RFC 5545 §3.3.10). Lists hold the values as written;
/// the expander sorts and de-duplicates them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RRule {
    pub freq: Freq,
    /// INTERVAL, at least 1 (a 0 set by hand is read as 1).
    pub interval: u32,
    /// COUNT, DTSTART included.
    pub count: Option<u32>,
    pub until: Option<Until>,
    /// 0..=60; 60 (a leap second) cannot be a wall-clock time and matches nothing.
    pub by_second: Vec<u8>,
    pub by_minute: Vec<u8>,
    pub by_hour: Vec<u8>,
    /// Weekdays with an optional ordinal (`1MO`, `-1FR`). The ordinal counts
    /// within the month (MONTHLY, or YEARLY with BYMONTH) or the year (YEARLY);
    /// for other frequencies RFC 5545 forbids it and it is ignored.
    pub by_day: Vec<(Option<i16>, Weekday)>,
    pub by_month_day: Vec<i8>,
    pub by_year_day: Vec<i16>,
    pub by_week_no: Vec<i8>,
    pub by_month: Vec<u8>,
    pub by_set_pos: Vec<i16>,
    /// WKST, Monday unless given.
    pub wkst: Weekday,
}

/// Why a RECUR value was refused. Each names the part and, where there is
/// one, the offending value (clipped to a safe length).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RRuleError {
    #[error("RRULE is empty")]
    Empty,
    #[error("FREQ is required")]
    MissingFreq,
    #[error("{part:?} is not NAME=VALUE")]
    Malformed { part: String },
    #[error("unknown rule part {name:?}")]
    UnknownPart { name: String },
    #[error("{part} is given more than once")]
    Duplicate { part: &'static str },
    #[error("COUNT and UNTIL must not both be given")]
    CountAndUntil,
    #[error("{part}: {value} is not {expected}")]
    InvalidValue { part: &'static str, value: String, expected: &'static str },
    #[error("{part}={value} is not supported")]
    Unsupported { part: &'static str, value: String },
}

/// The rule parts RFC 5545 §3.3.10 defines, plus RFC 7529's RSCALE and SKIP
/// (accepted only with their Gregorian defaults, which change nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Freq,
    Until,
    Count,
    Interval,
    BySecond,
    ByMinute,
    ByHour,
    ByDay,
    ByMonthDay,
    ByYearDay,
    ByWeekNo,
    ByMonth,
    BySetPos,
    Wkst,
    Rscale,
    Skip,
}

impl Part {
    const ALL: [Part; 16] = [
        Part::Freq,
        Part::Until,
        Part::Count,
        Part::Interval,
        Part::BySecond,
        Part::ByMinute,
        Part::ByHour,
        Part::ByDay,
        Part::ByMonthDay,
        Part::ByYearDay,
        Part::ByWeekNo,
        Part::ByMonth,
        Part::BySetPos,
        Part::Wkst,
        Part::Rscale,
        Part::Skip,
    ];

    const fn name(self) -> &'static str {
        match self {
            Part::Freq => "FREQ",
            Part::Until => "UNTIL",
            Part::Count => "COUNT",
            Part::Interval => "INTERVAL",
            Part::BySecond => "BYSECOND",
            Part::ByMinute => "BYMINUTE",
            Part::ByHour => "BYHOUR",
            Part::ByDay => "BYDAY",
            Part::ByMonthDay => "BYMONTHDAY",
            Part::ByYearDay => "BYYEARDAY",
            Part::ByWeekNo => "BYWEEKNO",
            Part::ByMonth => "BYMONTH",
            Part::BySetPos => "BYSETPOS",
            Part::Wkst => "WKST",
            Part::Rscale => "RSCALE",
            Part::Skip => "SKIP",
        }
    }
}

/// Offending text is echoed in messages; never echo an unbounded amount.
fn clip(s: &str) -> String {
    const MAX: usize = 40;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

fn invalid(part: Part, value: &str, expected: &'static str) -> RRuleError {
    RRuleError::InvalidValue { part: part.name(), value: clip(value), expected }
}

/// Unsigned decimal digits only (RFC 5545 writes these parts without a sign).
fn uint(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `["+" / "-"] 1*DIGIT`, as in `ordwk`, `ordmoday`, `ordyrday`, `setposday`.
fn signed(s: &str) -> Option<i64> {
    let (negative, digits) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let n = i64::try_from(uint(digits)?).ok()?;
    Some(if negative { -n } else { n })
}

/// A signed value in `-max..=-1` or `1..=max`.
fn nonzero_within(s: &str, max: i64) -> Option<i64> {
    signed(s).filter(|n| *n != 0 && n.abs() <= max)
}

fn list<T>(
    part: Part,
    value: &str,
    expected: &'static str,
    item: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, RRuleError> {
    value.split(',').map(|v| item(v).ok_or_else(|| invalid(part, v, expected))).collect()
}

fn weekday(s: &str) -> Option<Weekday> {
    const DAYS: [(&str, Weekday); 7] = [
        ("MO", Weekday::Mon),
        ("TU", Weekday::Tue),
        ("WE", Weekday::Wed),
        ("TH", Weekday::Thu),
        ("FR", Weekday::Fri),
        ("SA", Weekday::Sat),
        ("SU", Weekday::Sun),
    ];
    DAYS.iter().find(|(name, _)| name.eq_ignore_ascii_case(s)).map(|&(_, d)| d)
}

/// `weekdaynum = [[plus / minus] ordwk] weekday`, `ordwk = 1*2DIGIT ; 1 to 53`.
fn weekday_num(s: &str) -> Option<(Option<i16>, Weekday)> {
    let split = s.len().checked_sub(2)?;
    if !s.is_char_boundary(split) {
        return None;
    }
    let (ordinal, day) = s.split_at(split);
    let day = weekday(day)?;
    if ordinal.is_empty() {
        return Some((None, day));
    }
    let n = nonzero_within(ordinal, 53)?;
    Some((Some(n as i16), day))
}

/// UNTIL: `date` or `date-time` (RFC 5545 §3.3.4, §3.3.5), the latter floating
/// or UTC. A leap second (`60`) is read as `59`, the same inclusive bound for
/// every time a wall clock can show.
fn until(value: &str) -> Result<Until, RRuleError> {
    let err =
        || invalid(Part::Until, value, "a DATE (YYYYMMDD) or DATE-TIME (YYYYMMDDTHHMMSS, optionally ending in Z)");
    if !value.is_ascii() {
        return Err(err());
    }
    let num = |range: std::ops::Range<usize>| value.get(range).and_then(uint).map(|n| n as u32);
    let date = (|| {
        let year = i32::try_from(num(0..4)?).ok()?;
        NaiveDate::from_ymd_opt(year, num(4..6)?, num(6..8)?)
    })()
    .ok_or_else(err)?;
    if value.len() == 8 {
        return Ok(Until::Date(date));
    }
    let utc = match value.len() {
        15 => false,
        16 if value[15..].eq_ignore_ascii_case("Z") => true,
        _ => return Err(err()),
    };
    if !value[8..9].eq_ignore_ascii_case("T") {
        return Err(err());
    }
    let (h, m, s) = (num(9..11).ok_or_else(err)?, num(11..13).ok_or_else(err)?, num(13..15).ok_or_else(err)?);
    let time = NaiveTime::from_hms_opt(h, m, if s == 60 { 59 } else { s }).ok_or_else(err)?;
    let at = date.and_time(time);
    Ok(if utc { Until::Utc(at.and_utc().timestamp()) } else { Until::Floating(at) })
}

impl RRule {
    /// `FREQ=<freq>` and nothing else: INTERVAL 1, no end, WKST Monday.
    pub fn new(freq: Freq) -> RRule {
        RRule {
            freq,
            interval: 1,
            count: None,
            until: None,
            by_second: Vec::new(),
            by_minute: Vec::new(),
            by_hour: Vec::new(),
            by_day: Vec::new(),
            by_month_day: Vec::new(),
            by_year_day: Vec::new(),
            by_week_no: Vec::new(),
            by_month: Vec::new(),
            by_set_pos: Vec::new(),
            wkst: Weekday::Mon,
        }
    }

    /// Parses a RECUR value (RFC 5545 §3.3.10), the text after `RRULE:`
    /// (a leading `RRULE:` is tolerated too), e.g.
    /// `FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20261231T235959Z`.
    ///
    /// Part names and values are case-insensitive and a trailing `;` is
    /// accepted. Refused: a missing FREQ, unknown or repeated parts, COUNT
    /// together with UNTIL, INTERVAL or COUNT below 1, values out of range.
    pub fn parse(value: &str) -> Result<RRule, RRuleError> {
        let mut text = value.trim();
        if text.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("RRULE:")) {
            text = &text[6..];
        }
        let text = text.strip_suffix(';').unwrap_or(text);
        if text.is_empty() {
            return Err(RRuleError::Empty);
        }

        let mut rule = RRule::new(Freq::Daily);
        let mut freq = None;
        let mut seen = [false; Part::ALL.len()];
        for item in text.split(';') {
            let (name, value) = item.split_once('=').ok_or_else(|| RRuleError::Malformed { part: clip(item) })?;
            let index = Part::ALL
                .iter()
                .position(|p| p.name().eq_ignore_ascii_case(name))
                .ok_or_else(|| RRuleError::UnknownPart { name: clip(name) })?;
            let part = Part::ALL[index];
            if std::mem::replace(&mut seen[index], true) {
                return Err(RRuleError::Duplicate { part: part.name() });
            }
            match part {
                Part::Freq => {
                    freq = Some(Freq::parse(value).ok_or_else(|| {
                        invalid(part, value, "one of SECONDLY, MINUTELY, HOURLY, DAILY, WEEKLY, MONTHLY, YEARLY")
                    })?);
                }
                Part::Until => rule.until = Some(until(value)?),
                Part::Count => {
                    let n = uint(value).filter(|n| *n >= 1).and_then(|n| u32::try_from(n).ok());
                    rule.count = Some(n.ok_or_else(|| invalid(part, value, "a whole number from 1 to 4294967295"))?);
                }
                Part::Interval => {
                    let n = uint(value).filter(|n| *n >= 1).and_then(|n| u32::try_from(n).ok());
                    rule.interval = n.ok_or_else(|| invalid(part, value, "a whole number from 1 to 4294967295"))?;
                }
                Part::BySecond => {
                    rule.by_second = list(part, value, "in 0..=60", |v| uint(v).filter(|n| *n <= 60).map(|n| n as u8))?;
                }
                Part::ByMinute => {
                    rule.by_minute = list(part, value, "in 0..=59", |v| uint(v).filter(|n| *n <= 59).map(|n| n as u8))?;
                }
                Part::ByHour => {
                    rule.by_hour = list(part, value, "in 0..=23", |v| uint(v).filter(|n| *n <= 23).map(|n| n as u8))?;
                }
                Part::ByDay => {
                    rule.by_day = list(
                        part,
                        value,
                        "a weekday (SU, MO, TU, WE, TH, FR, SA) with an optional ordinal in -53..=-1 or 1..=53",
                        weekday_num,
                    )?;
                }
                Part::ByMonthDay => {
                    rule.by_month_day =
                        list(part, value, "in -31..=-1 or 1..=31", |v| nonzero_within(v, 31).map(|n| n as i8))?;
                }
                Part::ByYearDay => {
                    rule.by_year_day =
                        list(part, value, "in -366..=-1 or 1..=366", |v| nonzero_within(v, 366).map(|n| n as i16))?;
                }
                Part::ByWeekNo => {
                    rule.by_week_no =
                        list(part, value, "in -53..=-1 or 1..=53", |v| nonzero_within(v, 53).map(|n| n as i8))?;
                }
                Part::ByMonth => {
                    rule.by_month =
                        list(part, value, "in 1..=12", |v| uint(v).filter(|n| (1..=12).contains(n)).map(|n| n as u8))?;
                }
                Part::BySetPos => {
                    rule.by_set_pos =
                        list(part, value, "in -366..=-1 or 1..=366", |v| nonzero_within(v, 366).map(|n| n as i16))?;
                }
                Part::Wkst => {
                    rule.wkst =
                        weekday(value).ok_or_else(|| invalid(part, value, "a weekday (SU, MO, TU, WE, TH, FR, SA)"))?;
                }
                Part::Rscale => {
                    if !value.eq_ignore_ascii_case("GREGORIAN") {
                        return Err(RRuleError::Unsupported { part: part.name(), value: clip(value) });
                    }
                }
                Part::Skip => {
                    if !value.eq_ignore_ascii_case("OMIT") {
                        return Err(RRuleError::Unsupported { part: part.name(), value: clip(value) });
                    }
                }
            }
        }
        // §3.3.10: "UNTIL or COUNT ... MUST NOT occur in the same 'recur'".
        if rule.count.is_some() && rule.until.is_some() {
            return Err(RRuleError::CountAndUntil);
        }
        rule.freq = freq.ok_or(RRuleError::MissingFreq)?;
        Ok(rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_bounds_echoed_text() {
        assert_eq!(clip(&"x".repeat(100)).chars().count(), 41);
    }
}
