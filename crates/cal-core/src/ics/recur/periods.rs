//! Walking a rule's periods (RFC 5545 §3.3.10 FREQ, INTERVAL, WKST): for
//! YEARLY, MONTHLY and WEEKLY one calendar period's days at a time; for
//! DAILY and finer a cursor stepping INTERVAL units in wall-clock time that
//! jumps over whole months, days, hours or minutes that cannot match. Every
//! period examined counts against the iteration limit.

use chrono::{Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike};

use super::gregorian::{days_after, month_len, year_len};
use super::period_set::TimeSet;
use super::plan::Plan;
use super::sink::Sink;
use crate::ics::rrule::Freq;

impl Plan {
    /// The `k`th period of a YEARLY, MONTHLY or WEEKLY rule: first day and
    /// length in days. `None` past the calendar's range.
    fn period(&self, origin: NaiveDate, k: i64) -> Option<(NaiveDate, u32)> {
        let offset = k.checked_mul(self.interval)?;
        match self.freq {
            Freq::Yearly => {
                let year = i32::try_from(i64::from(origin.year()).checked_add(offset)?).ok()?;
                Some((NaiveDate::from_ymd_opt(year, 1, 1)?, year_len(year)))
            }
            Freq::Monthly => {
                let index = (i64::from(origin.year()) * 12 + i64::from(origin.month0())).checked_add(offset)?;
                let year = i32::try_from(index.div_euclid(12)).ok()?;
                let month = index.rem_euclid(12) as u32 + 1;
                Some((NaiveDate::from_ymd_opt(year, month, 1)?, month_len(year, month)))
            }
            _ => {
                let days = u64::try_from(offset.checked_mul(7)?).ok()?;
                Some((origin.checked_add_days(Days::new(days))?, 7))
            }
        }
    }

    /// YEARLY, MONTHLY and WEEKLY: one period's days at a time.
    pub(super) fn expand_calendar(&self, sink: &mut Sink<'_>, max_iterations: usize) {
        let start = self.dtstart.date();
        let origin = match self.freq {
            Freq::Yearly => start.with_ordinal(1),
            Freq::Monthly => start.with_day(1),
            // §3.3.10 WKST: weeks of a WEEKLY rule begin on WKST, which is
            // what makes INTERVAL>1 depend on it.
            _ => start.checked_sub_days(Days::new(days_after(start.weekday(), self.wkst))),
        };
        let Some(origin) = origin else { return };
        let times = TimeSet { hours: &self.hours, minutes: &self.minutes, seconds: &self.seconds };
        let mut days = Vec::with_capacity(366);
        let mut picks = Vec::new();
        for k in 0.. {
            if k as usize >= max_iterations {
                sink.truncated = true;
                return;
            }
            let Some((first, len)) = self.period(origin, k) else { return };
            if sink.past_end(first.and_time(NaiveTime::MIN)) {
                return;
            }
            days.clear();
            days.extend(first.iter_days().take(len as usize).filter(|d| self.day_matches(*d)));
            if self.emit(&days, &times, &mut picks, sink).is_break() {
                return;
            }
        }
    }

    /// DAILY and finer: a cursor at the start of each period, INTERVAL units
    /// apart in wall-clock time. Where a whole month, day, hour or minute
    /// cannot match, the cursor jumps to the first aligned period after it.
    pub(super) fn expand_stepping(&self, sink: &mut Sink<'_>, max_iterations: usize) {
        let unit: i64 = match self.freq {
            Freq::Daily => 86_400,
            Freq::Hourly => 3_600,
            Freq::Minutely => 60,
            _ => 1,
        };
        let Some(step) = self.interval.checked_mul(unit) else { return };
        let t = self.dtstart;
        let first = match self.freq {
            Freq::Daily => t.date().and_hms_opt(0, 0, 0),
            Freq::Hourly => t.date().and_hms_opt(t.hour(), 0, 0),
            Freq::Minutely => t.date().and_hms_opt(t.hour(), t.minute(), 0),
            _ => Some(t),
        };
        let Some(mut cursor) = first else { return };
        let mut picks = Vec::new();
        for iteration in 0.. {
            if iteration >= max_iterations {
                sink.truncated = true;
                return;
            }
            if sink.past_end(cursor) {
                return;
            }
            let day = cursor.date();
            let (h, m, s) = (cursor.hour() as u8, cursor.minute() as u8, cursor.second() as u8);
            let skip_to = if !self.month_ok(day) {
                Some(self.next_month_start(day))
            } else if !self.day_matches(day) {
                Some(day.succ_opt().map(|d| d.and_time(NaiveTime::MIN)))
            } else if let Some(hours) = self.hour_limit.as_deref().filter(|l| !l.contains(&h)) {
                Some(match hours.iter().find(|x| **x > h) {
                    Some(&next) => day.and_hms_opt(u32::from(next), 0, 0),
                    None => day.succ_opt().map(|d| d.and_time(NaiveTime::MIN)),
                })
            } else if let Some(minutes) = self.minute_limit.as_deref().filter(|l| !l.contains(&m)) {
                Some(match minutes.iter().find(|x| **x > m) {
                    Some(&next) => day.and_hms_opt(u32::from(h), u32::from(next), 0),
                    None => cursor
                        .with_minute(0)
                        .and_then(|c| c.with_second(0))
                        .and_then(|c| c.checked_add_signed(TimeDelta::hours(1))),
                })
            } else if let Some(seconds) = self.second_limit.as_deref().filter(|l| !l.contains(&s)) {
                Some(match seconds.iter().find(|x| **x > s) {
                    Some(&next) => day.and_hms_opt(u32::from(h), u32::from(m), u32::from(next)),
                    None => cursor.with_second(0).and_then(|c| c.checked_add_signed(TimeDelta::minutes(1))),
                })
            } else {
                let (hh, mm, ss) = ([h], [m], [s]);
                let times = match self.freq {
                    Freq::Daily => TimeSet { hours: &self.hours, minutes: &self.minutes, seconds: &self.seconds },
                    Freq::Hourly => TimeSet { hours: &hh, minutes: &self.minutes, seconds: &self.seconds },
                    Freq::Minutely => TimeSet { hours: &hh, minutes: &mm, seconds: &self.seconds },
                    _ => TimeSet { hours: &hh, minutes: &mm, seconds: &ss },
                };
                if self.emit(&[day], &times, &mut picks, sink).is_break() {
                    return;
                }
                None
            };
            let next = match skip_to {
                None => TimeDelta::try_seconds(step).and_then(|d| cursor.checked_add_signed(d)),
                Some(boundary) => boundary.and_then(|b| align(cursor, b, step)),
            };
            let Some(next) = next else { return };
            cursor = next;
        }
    }

    /// Midnight of the first day of the next month BYMONTH allows.
    fn next_month_start(&self, day: NaiveDate) -> Option<NaiveDateTime> {
        let months = self.months.as_ref()?;
        let (year, month) = (day.year(), day.month());
        let (year, month) = match (month + 1..=12).find(|m| months[*m as usize]) {
            Some(m) => (year, m),
            None => (year.checked_add(1)?, (1..=12).find(|m| months[*m as usize]).unwrap_or(1)),
        };
        NaiveDate::from_ymd_opt(year, month, 1).map(|d| d.and_time(NaiveTime::MIN))
    }
}

/// The first time at or after `boundary` that is a whole number of `step`
/// seconds after `cursor` (and at least one step after it).
fn align(cursor: NaiveDateTime, boundary: NaiveDateTime, step: i64) -> Option<NaiveDateTime> {
    let gap = (boundary - cursor).num_seconds();
    let steps = if gap <= 0 { 1 } else { gap.checked_add(step - 1)? / step };
    cursor.checked_add_signed(TimeDelta::try_seconds(steps.checked_mul(step)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn align_lands_on_the_step_grid() {
        let at = |h, m| NaiveDate::from_ymd_opt(2026, 1, 1).unwrap().and_hms_opt(h, m, 0).unwrap();
        assert_eq!(align(at(16, 40), at(17, 0), 20 * 60), Some(at(17, 0)));
        assert_eq!(align(at(16, 50), at(17, 0), 90 * 60), Some(at(18, 20)));
        assert_eq!(align(at(17, 0), at(17, 0), 60), Some(at(17, 1)));
    }
}
