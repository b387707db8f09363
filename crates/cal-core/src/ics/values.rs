//! Property values (RFC 5545 §3.3): DATE, DATE-TIME, DURATION, UTC-OFFSET
//! and TEXT, read leniently: surrounding blanks are ignored, anything else
//! unreadable is `None`, and the caller decides whether that skips an event
//! or only a value. PERIOD (§3.3.9) is a pair of these, split by the reader
//! of RDATE.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use super::zones::TimeBase;
use crate::time::{Instant, Zone};

/// TEXT unescaping (RFC 5545 §3.3.11).
pub(super) fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n' | 'N') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A DTSTART-like value.
#[derive(Clone, Debug)]
pub(super) enum When {
    Date(NaiveDate),
    Local(NaiveDateTime, TimeBase),
}

impl When {
    pub(super) fn instant(&self, all_day_zone: Zone) -> Instant {
        match self {
            When::Date(d) => all_day_zone.day(*d).map_or_else(|| Instant::from_unix(d.and_time(NaiveTime::MIN).and_utc().timestamp()), |iv| iv.start()),
            When::Local(l, base) => base.point(*l),
        }
    }

    /// The calendar date as written, whatever its time and zone: how an
    /// all-day series matches its RECURRENCE-IDs, EXDATEs and RDATEs
    /// (SEMANTICS.md §6), as some clients write those as date-times.
    pub(super) fn date_as_written(&self) -> NaiveDate {
        match self {
            When::Date(d) => *d,
            When::Local(l, _) => l.date(),
        }
    }
}

/// A DATE (RFC 5545 §3.3.4), `YYYYMMDD`.
///
/// This and [`parse_local`] read the fixed layout digit by digit rather than
/// through chrono's format interpreter: an import reads three or four of
/// them per event (DTSTART, DTEND, DTSTAMP, LAST-MODIFIED), and the
/// interpreter cost about a tenth of the whole import.
pub(super) fn parse_date(v: &str) -> Option<NaiveDate> {
    let b = v.trim().as_bytes();
    if b.len() != 8 {
        return None;
    }
    date(b)
}

/// A DATE-TIME (RFC 5545 §3.3.5) without its `Z`: `YYYYMMDDTHHMMSS`. Second
/// 60 is a leap second, as chrono reads it.
pub(super) fn parse_local(v: &str) -> Option<NaiveDateTime> {
    let b = v.trim().as_bytes();
    if b.len() != 15 || b[8] != b'T' {
        return None;
    }
    let (h, m, s) = (digits(&b[9..11])?, digits(&b[11..13])?, digits(&b[13..15])?);
    let time = if s == 60 { NaiveTime::from_hms_nano_opt(h, m, 59, 1_000_000_000) } else { NaiveTime::from_hms_opt(h, m, s) };
    Some(date(&b[..8])?.and_time(time?))
}

/// `YYYYMMDD` of a valid calendar date.
fn date(b: &[u8]) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(i32::try_from(digits(&b[..4])?).ok()?, digits(&b[4..6])?, digits(&b[6..8])?)
}

/// ASCII digits only, as a number.
fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
}

/// A nominal-plus-exact duration (RFC 5545 §3.3.6): weeks and days are
/// nominal (same wall-clock time N days later), hours to seconds exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct IcsDuration {
    pub(super) days: i64,
    pub(super) secs: i64,
}

pub(super) fn parse_duration(v: &str) -> Option<IcsDuration> {
    let v = v.trim();
    let (neg, v) = match v.as_bytes().first()? {
        b'-' => (true, &v[1..]),
        b'+' => (false, &v[1..]),
        _ => (false, v),
    };
    let v = v.strip_prefix(['P', 'p'])?;
    let (mut days, mut secs, mut num, mut in_time, mut any) = (0i64, 0i64, String::new(), false, false);
    for c in v.chars() {
        match c.to_ascii_uppercase() {
            d if d.is_ascii_digit() => num.push(d),
            'T' if !in_time && num.is_empty() => in_time = true,
            unit => {
                let n: i64 = num.parse().ok()?;
                num.clear();
                any = true;
                match (unit, in_time) {
                    ('W', false) => days += n.checked_mul(7)?,
                    ('D', false) => days += n,
                    ('H', true) => secs += n.checked_mul(3600)?,
                    ('M', true) => secs += n.checked_mul(60)?,
                    ('S', true) => secs += n,
                    _ => return None,
                }
            }
        }
    }
    if !num.is_empty() || !any || days > 36_600 || secs > 86_400 * 366 {
        return None;
    }
    Some(if neg { IcsDuration { days: -days, secs: -secs } } else { IcsDuration { days, secs } })
}

/// `+HHMM`, `-HHMM` or `±HHMMSS` (RFC 5545 §3.3.14) in seconds.
pub(super) fn parse_offset(v: &str) -> Option<i32> {
    let v = v.trim();
    let (sign, digits) = match v.as_bytes().first()? {
        b'+' => (1, &v[1..]),
        b'-' => (-1, &v[1..]),
        _ => return None,
    };
    if !(digits.len() == 4 || digits.len() == 6) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| digits[r].parse::<i32>().ok();
    let secs = n(0..2)? * 3600 + n(2..4)? * 60 + if digits.len() == 6 { n(4..6)? } else { 0 };
    Some(sign * secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_date_times_read_as_chronos_format_reads_them() {
        let chrono_local = |v: &str| {
            let v = v.trim();
            (v.len() == 15).then(|| NaiveDateTime::parse_from_str(v, "%Y%m%dT%H%M%S").ok()).flatten()
        };
        let chrono_date = |v: &str| NaiveDate::parse_from_str(v.trim(), "%Y%m%d").ok().filter(|_| v.trim().len() == 8);
        let cases = [
            "20250106T090000", " 20250106T090000 ", "20240229T235959", "20250229T120000", "20251231T240000",
            "20250101T006000", "20250630T235960", "20250106 090000", "2025010TT090000", "20250106T0900000",
            "2025-01-06T09:0", "20250106T09000", "00010101T000000", "99991231T235959", "20251301T000000",
            "20250100T000000", "+0250106T090000", "2025٠106T090000", "",
        ];
        for v in cases {
            assert_eq!(parse_local(v), chrono_local(v), "{v:?}");
            let d = v.get(..8).unwrap_or(v);
            assert_eq!(parse_date(d), chrono_date(d), "{d:?}");
        }
        assert_eq!(parse_date("20250106"), NaiveDate::from_ymd_opt(2025, 1, 6));
    }
}
