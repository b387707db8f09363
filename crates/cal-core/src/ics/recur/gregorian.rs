//! Gregorian calendar arithmetic for recurrence: leap years and the lengths
//! of years and months (for negative BYYEARDAY/BYMONTHDAY ordinals and
//! BYDAY counted from the end), and week numbers as RFC 5545 §3.3.10 defines
//! them for BYWEEKNO, with weeks starting on WKST.

use chrono::{Datelike, Days, NaiveDate, Weekday};

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub(super) fn year_len(year: i32) -> u32 {
    if is_leap(year) { 366 } else { 365 }
}

pub(super) fn month_len(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from the week start `wkst` to `day` (0..=6).
pub(super) fn days_after(day: Weekday, wkst: Weekday) -> u64 {
    u64::from((day.num_days_from_monday() + 7 - wkst.num_days_from_monday()) % 7)
}

/// The first day of week 1 of `year`: RFC 5545 §3.3.10 BYWEEKNO, "week
/// number one of the calendar year is the first week that contains at least
/// four (4) days in that calendar year", weeks starting on WKST (ISO 8601
/// when WKST=MO).
pub(super) fn week_one(year: i32, wkst: Weekday) -> Option<NaiveDate> {
    let jan1 = NaiveDate::from_ymd_opt(year, 1, 1)?;
    let offset = days_after(jan1.weekday(), wkst);
    if offset <= 3 { jan1.checked_sub_days(Days::new(offset)) } else { jan1.checked_add_days(Days::new(7 - offset)) }
}

/// `day`'s week number and the number of weeks of its week-numbering year
/// (52 or 53). Late December may be week 1 of the next year and early
/// January week 52/53 of the previous one.
pub(super) fn week_number(day: NaiveDate, wkst: Weekday) -> Option<(u32, u32)> {
    let year = day.year();
    let this = week_one(year, wkst)?;
    let next = week_one(year + 1, wkst)?;
    let (start, end) = if day >= next {
        (next, week_one(year + 2, wkst)?)
    } else if day < this {
        (week_one(year - 1, wkst)?, this)
    } else {
        (this, next)
    };
    let week = (day - start).num_days() / 7 + 1;
    let weeks = (end - start).num_days() / 7;
    Some((week as u32, weeks as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn week_numbers_with_wkst_monday_are_iso_8601() {
        let mut day = ymd(1990, 1, 1);
        while day < ymd(2040, 1, 1) {
            let iso = day.iso_week();
            let (week, weeks) = week_number(day, Weekday::Mon).unwrap();
            assert_eq!(week, iso.week(), "{day}");
            let last = NaiveDate::from_isoywd_opt(iso.year(), 53, Weekday::Mon).map_or(52, |_| 53);
            assert_eq!(weeks, last, "{day}");
            day = day.succ_opt().unwrap();
        }
    }

    #[test]
    fn week_one_with_wkst_sunday() {
        // 2026-01-01 is a Thursday: the Monday-started week of Dec 29 has four
        // days in 2026 (week 1), the Sunday-started week of Dec 28 only three.
        assert_eq!(week_one(2026, Weekday::Mon), Some(ymd(2025, 12, 29)));
        assert_eq!(week_one(2026, Weekday::Sun), Some(ymd(2026, 1, 4)));
        // 2025-01-01 is a Wednesday: Sunday-started week 1 begins 2024-12-29.
        assert_eq!(week_one(2025, Weekday::Sun), Some(ymd(2024, 12, 29)));
        // 1999-01-01 is a Friday: only three days, week 1 starts Jan 3.
        assert_eq!(week_one(1999, Weekday::Sun), Some(ymd(1999, 1, 3)));
        assert_eq!(week_number(ymd(1999, 1, 2), Weekday::Sun), Some((52, 52)));
    }
}
