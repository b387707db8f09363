//! A rule ready to expand (RFC 5545 §3.3.10): the parts the rule leaves out
//! taken from DTSTART, and which days pass the day-level parts (BYMONTH,
//! BYWEEKNO, BYYEARDAY, BYMONTHDAY, BYDAY). Where BYHOUR, BYMINUTE and
//! BYSECOND expand a day into times and where they limit a period is decided
//! here too.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike, Weekday};

use super::gregorian::{month_len, week_number, year_len};
use crate::ics::rrule::{Freq, RRule};

/// A set of signed ordinals (`1..=max` from the start, `-max..=-1` from the end).
struct Ordinals {
    from_start: Vec<bool>,
    from_end: Vec<bool>,
}

impl Ordinals {
    fn new(values: impl Iterator<Item = i64>, max: usize) -> Ordinals {
        let mut set = Ordinals { from_start: vec![false; max + 1], from_end: vec![false; max + 1] };
        for v in values {
            let k = v.unsigned_abs() as usize;
            if (1..=max).contains(&k) {
                if v > 0 {
                    set.from_start[k] = true;
                } else {
                    set.from_end[k] = true;
                }
            }
        }
        set
    }

    /// Whether the `n`th of `len` (1-based) is in the set, counted either way.
    fn contains(&self, n: u32, len: u32) -> bool {
        let (n, len) = (n as usize, len as usize);
        self.from_start.get(n).copied().unwrap_or(false)
            || (n <= len && self.from_end.get(len + 1 - n).copied().unwrap_or(false))
    }
}

/// BYDAY: plain weekdays and (weekday, ordinal) pairs.
struct ByDay {
    plain: [bool; 7],
    nth: Vec<(i16, Weekday)>,
}

/// A rule with DTSTART's defaults filled in, ready to expand.
pub(super) struct Plan {
    pub(super) freq: Freq,
    pub(super) interval: i64,
    pub(super) wkst: Weekday,
    pub(super) dtstart: NaiveDateTime,
    pub(super) months: Option<[bool; 13]>,
    week_nos: Option<Ordinals>,
    year_days: Option<Ordinals>,
    month_days: Option<Ordinals>,
    by_day: Option<ByDay>,
    /// BYDAY ordinals count within the month (else within the year).
    nth_in_month: bool,
    /// Times of day of each occurring day (YEARLY … DAILY), or the expanded
    /// finer units of a sub-daily period (HOURLY: minutes and seconds;
    /// MINUTELY: seconds). Sorted, unique, valid.
    pub(super) hours: Vec<u8>,
    pub(super) minutes: Vec<u8>,
    pub(super) seconds: Vec<u8>,
    /// BYHOUR / BYMINUTE / BYSECOND where they limit (sub-daily frequencies).
    pub(super) hour_limit: Option<Vec<u8>>,
    pub(super) minute_limit: Option<Vec<u8>>,
    pub(super) second_limit: Option<Vec<u8>>,
    pub(super) set_pos: Vec<i16>,
}

fn sorted_valid(values: &[u8], max: u8) -> Vec<u8> {
    let mut v: Vec<u8> = values.iter().copied().filter(|x| *x <= max).collect();
    v.sort_unstable();
    v.dedup();
    v
}

impl Plan {
    pub(super) fn new(rule: &RRule, dtstart: NaiveDateTime) -> Plan {
        let freq = rule.freq;
        let mut by_month = rule.by_month.clone();
        let mut by_month_day: Vec<i64> = rule.by_month_day.iter().map(|&n| i64::from(n)).collect();
        let mut by_day = rule.by_day.clone();
        let no_day_parts = rule.by_day.is_empty() && rule.by_month_day.is_empty() && rule.by_year_day.is_empty();

        // Missing parts come from DTSTART (§3.3.10: "Information, not contained
        // in the rule, necessary to determine the various recurrence instance
        // start time and dates are derived from the Start Time").
        match freq {
            Freq::Yearly if no_day_parts => {
                if rule.by_week_no.is_empty() {
                    // "Yearly in June and July": DTSTART's day of the month;
                    // without BYMONTH, DTSTART's month too.
                    if by_month.is_empty() {
                        by_month.push(dtstart.month() as u8);
                    }
                    by_month_day.push(i64::from(dtstart.day()));
                } else {
                    // BYWEEKNO picks weeks; the day in each is DTSTART's weekday.
                    by_day.push((None, dtstart.weekday()));
                }
            }
            Freq::Monthly if no_day_parts && rule.by_week_no.is_empty() => by_month_day.push(i64::from(dtstart.day())),
            Freq::Weekly if no_day_parts && rule.by_week_no.is_empty() => by_day.push((None, dtstart.weekday())),
            _ => {}
        }

        let months = (!by_month.is_empty()).then(|| {
            let mut set = [false; 13];
            for m in by_month.iter().filter(|m| (1..=12).contains(*m)) {
                set[*m as usize] = true;
            }
            set
        });
        let ordinals =
            |values: Vec<i64>, max: usize| (!values.is_empty()).then(|| Ordinals::new(values.into_iter(), max));
        let week_nos = ordinals(rule.by_week_no.iter().map(|&n| i64::from(n)).collect(), 53);
        let year_days = ordinals(rule.by_year_day.iter().map(|&n| i64::from(n)).collect(), 366);
        let month_days = ordinals(by_month_day, 31);

        // Ordinals belong to MONTHLY and YEARLY only (§3.3.10: "MUST NOT be
        // specified when the FREQ rule part is not set to MONTHLY or YEARLY");
        // elsewhere they are read as the plain weekday.
        let ordinals_apply = matches!(freq, Freq::Monthly | Freq::Yearly);
        let by_day = (!by_day.is_empty()).then(|| {
            let mut set = ByDay { plain: [false; 7], nth: Vec::new() };
            for &(n, day) in &by_day {
                match n {
                    Some(n) if ordinals_apply => set.nth.push((n, day)),
                    _ => set.plain[day.num_days_from_monday() as usize] = true,
                }
            }
            set
        });
        // §3.3.10 BYDAY: "within a MONTHLY rule ... the nth occurrence within
        // the month"; within YEARLY, within the year, or the month when BYMONTH
        // is present (Note 2 of the table).
        let nth_in_month = freq == Freq::Monthly || (freq == Freq::Yearly && months.is_some());

        let given = |values: &[u8], max: u8| (!values.is_empty()).then(|| sorted_valid(values, max));
        // Second 60 cannot be a wall-clock time: it matches nothing (§3.3.10,
        // invalid instances are ignored).
        let (by_hour, by_minute, by_second) =
            (given(&rule.by_hour, 23), given(&rule.by_minute, 59), given(&rule.by_second, 59));
        let own = |part: Option<Vec<u8>>, v: u32| part.unwrap_or_else(|| vec![v as u8]);
        let coarse = matches!(freq, Freq::Yearly | Freq::Monthly | Freq::Weekly | Freq::Daily);
        let (hours, minutes, seconds, hour_limit, minute_limit, second_limit) = match freq {
            _ if coarse => (
                own(by_hour, dtstart.hour()),
                own(by_minute, dtstart.minute()),
                own(by_second, dtstart.second()),
                None,
                None,
                None,
            ),
            Freq::Hourly => {
                (Vec::new(), own(by_minute, dtstart.minute()), own(by_second, dtstart.second()), by_hour, None, None)
            }
            Freq::Minutely => (Vec::new(), Vec::new(), own(by_second, dtstart.second()), by_hour, by_minute, None),
            _ => (Vec::new(), Vec::new(), Vec::new(), by_hour, by_minute, by_second),
        };

        Plan {
            freq,
            interval: i64::from(rule.interval.max(1)),
            wkst: rule.wkst,
            dtstart,
            months,
            week_nos,
            year_days,
            month_days,
            by_day,
            nth_in_month,
            hours,
            minutes,
            seconds,
            hour_limit,
            minute_limit,
            second_limit,
            set_pos: rule.by_set_pos.clone(),
        }
    }

    pub(super) fn month_ok(&self, day: NaiveDate) -> bool {
        self.months.is_none_or(|m| m[day.month() as usize])
    }

    /// Whether `day` passes every day-level part.
    pub(super) fn day_matches(&self, day: NaiveDate) -> bool {
        if !self.month_ok(day) {
            return false;
        }
        if let Some(weeks) = &self.week_nos {
            match week_number(day, self.wkst) {
                Some((n, len)) if weeks.contains(n, len) => {}
                _ => return false,
            }
        }
        if self.year_days.as_ref().is_some_and(|days| !days.contains(day.ordinal(), year_len(day.year()))) {
            return false;
        }
        let days_in_month = month_len(day.year(), day.month());
        if self.month_days.as_ref().is_some_and(|days| !days.contains(day.day(), days_in_month)) {
            return false;
        }
        if let Some(by_day) = &self.by_day {
            let weekday = day.weekday();
            if !by_day.plain[weekday.num_days_from_monday() as usize] {
                if by_day.nth.is_empty() {
                    return false;
                }
                let (index, len) = if self.nth_in_month {
                    (day.day(), month_len(day.year(), day.month()))
                } else {
                    (day.ordinal(), year_len(day.year()))
                };
                let from_start = ((index - 1) / 7 + 1) as i16;
                let from_end = -(((len - index) / 7 + 1) as i16);
                if !by_day.nth.iter().any(|&(n, d)| d == weekday && (n == from_start || n == from_end)) {
                    return false;
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals_count_from_both_ends() {
        let set = Ordinals::new([1, -1].into_iter(), 31);
        assert!(set.contains(1, 30) && set.contains(30, 30) && !set.contains(29, 30));
    }
}
