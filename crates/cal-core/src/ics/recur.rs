//! Expansion of one recurrence rule (SEMANTICS.md §6): a parsed RECUR value
//! (RFC 5545 §3.3.10, [`RRule`]) into its occurrences (§3.8.5.3).
//!
//! Expansion happens in wall-clock time, on [`NaiveDateTime`]: "every day at
//! 09:00" stays at 09:00 across a DST change, and the caller turns each
//! occurrence into an instant with its zone's point rule (SEMANTICS.md §1).
//! Only a UTC `UNTIL` needs an instant, through the caller's `to_utc`.
//!
//! How the BYxxx parts combine. The table of RFC 5545 §3.3.10 (page 44)
//! says, per FREQ, which parts *expand* the set of a period and which *limit*
//! it. Both are one operation here: every period (a year, month, week, day,
//! hour, minute or second, INTERVAL periods apart) contributes the days inside
//! it that pass every day-level part (BYMONTH, BYWEEKNO, BYYEARDAY,
//! BYMONTHDAY, BYDAY), crossed with its times of day (BYHOUR × BYMINUTE ×
//! BYSECOND, or the period's own hour/minute/second where the part limits).
//! A filter over a period longer than the part's unit is an expansion, over a
//! period no longer than it a limit; intersecting the filters is how the RFC's
//! examples combine parts ("every Friday the 13th", "the first Tuesday after a
//! Monday in November"). BYSETPOS then picks positions in that per-period set.
//!
//! Nothing here materialises more than one period's days (at most 366): the
//! times of day are indexed arithmetically, so BYSETPOS over a year of seconds
//! costs as much as over a year of days. Every period examined counts against
//! [`Limits::max_iterations`], so a rule that matches nothing still ends.

use std::ops::ControlFlow;

use chrono::{Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Timelike, Weekday};

use super::rrule::{Freq, RRule, Until};

/// Bounds on one expansion, so a hostile rule costs bounded time and memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// At most this many occurrences are returned.
    pub max_occurrences: usize,
    /// At most this many periods (years, months, …, seconds, or skips over
    /// runs of them that cannot match) are examined.
    pub max_iterations: usize,
}

/// The result of [`expand`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expansion {
    /// Wall-clock occurrences, strictly increasing, DTSTART first.
    pub occurrences: Vec<NaiveDateTime>,
    /// A limit stopped the expansion before the rule, its UNTIL/COUNT or the
    /// window did: more occurrences may exist.
    pub truncated: bool,
}

/// Occurrences in wall-clock time, in order, starting with `dtstart` itself
/// (RFC 5545 §3.8.5.3: DTSTART is always the first occurrence and counts
/// toward COUNT, even if it does not match the pattern).
///
/// Stops at COUNT, at UNTIL (inclusive; a [`Until::Utc`] is compared through
/// `to_utc`, which maps a wall-clock occurrence to unix seconds), at the first
/// occurrence after `window_end` (wall clock; occurrences come in increasing
/// wall-clock order, so this is a safe stop), or when a limit is hit — then
/// what was produced is returned with `truncated` set. Dates and times that do
/// not exist (February 30, a leap second) are skipped (§3.3.10).
pub fn expand(
    rule: &RRule,
    dtstart: NaiveDateTime,
    window_end: NaiveDateTime,
    to_utc: &dyn Fn(NaiveDateTime) -> i64,
    limits: Limits,
) -> Expansion {
    let mut sink = Sink {
        out: Vec::new(),
        truncated: false,
        dtstart,
        window_end,
        until: rule.until,
        count: rule.count.map(|c| c as usize),
        max_occurrences: limits.max_occurrences,
        to_utc,
        utc_overrun: None,
    };
    if dtstart <= window_end {
        if limits.max_occurrences == 0 {
            sink.truncated = true;
        } else {
            sink.out.push(dtstart);
            if sink.count.is_none_or(|c| c > 1) {
                let plan = Plan::new(rule, dtstart);
                match rule.freq {
                    Freq::Yearly | Freq::Monthly | Freq::Weekly => {
                        plan.expand_calendar(&mut sink, limits.max_iterations)
                    }
                    Freq::Daily | Freq::Hourly | Freq::Minutely | Freq::Secondly => {
                        plan.expand_stepping(&mut sink, limits.max_iterations)
                    }
                }
            }
        }
    }
    Expansion { occurrences: sink.out, truncated: sink.truncated }
}

/// How far a UTC UNTIL may be passed in wall-clock time before no later
/// occurrence can fall before it again. Wall clock → UTC is not monotonic
/// across a DST gap (02:30 read as 03:30 sorts after 03:00); the jump is at
/// most a day in any real zone (Samoa, 2011), so a day and two hours is safe.
const UTC_UNTIL_SLACK: TimeDelta = TimeDelta::hours(26);

/// Collects occurrences and decides where expansion ends.
struct Sink<'a> {
    out: Vec<NaiveDateTime>,
    truncated: bool,
    dtstart: NaiveDateTime,
    window_end: NaiveDateTime,
    until: Option<Until>,
    count: Option<usize>,
    max_occurrences: usize,
    to_utc: &'a dyn Fn(NaiveDateTime) -> i64,
    /// The first occurrence found after a UTC UNTIL.
    utc_overrun: Option<NaiveDateTime>,
}

impl Sink<'_> {
    /// True when no occurrence at or after the wall-clock time `t` can be
    /// produced: checked at the start of each period, so a rule that matches
    /// nothing still stops at the window or UNTIL.
    fn past_end(&self, t: NaiveDateTime) -> bool {
        if t > self.window_end {
            return true;
        }
        if self.beyond_overrun(t) {
            return true;
        }
        match self.until {
            Some(Until::Date(d)) => t.date() > d,
            Some(Until::Floating(u)) => t > u,
            Some(Until::Utc(u)) => (self.to_utc)(t) > u.saturating_add(UTC_UNTIL_SLACK.num_seconds()),
            None => false,
        }
    }

    /// Past the slack after the first occurrence beyond a UTC UNTIL.
    fn beyond_overrun(&self, t: NaiveDateTime) -> bool {
        self.utc_overrun.and_then(|first| first.checked_add_signed(UTC_UNTIL_SLACK)).is_some_and(|bound| t > bound)
    }

    /// Offers one candidate, in increasing wall-clock order.
    fn offer(&mut self, t: NaiveDateTime) -> ControlFlow<()> {
        // DTSTART was emitted first; candidates before it are not occurrences.
        if t <= self.dtstart {
            return ControlFlow::Continue(());
        }
        if t > self.window_end {
            return ControlFlow::Break(());
        }
        if self.beyond_overrun(t) {
            return ControlFlow::Break(());
        }
        match self.until {
            Some(Until::Date(d)) if t.date() > d => return ControlFlow::Break(()),
            Some(Until::Floating(u)) if t > u => return ControlFlow::Break(()),
            Some(Until::Utc(u)) if (self.to_utc)(t) > u => {
                self.utc_overrun.get_or_insert(t);
                return ControlFlow::Continue(());
            }
            _ => {}
        }
        if self.out.len() >= self.max_occurrences {
            self.truncated = true;
            return ControlFlow::Break(());
        }
        self.out.push(t);
        if self.count.is_some_and(|c| self.out.len() >= c) {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

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
struct Plan {
    freq: Freq,
    interval: i64,
    wkst: Weekday,
    dtstart: NaiveDateTime,
    months: Option<[bool; 13]>,
    week_nos: Option<Ordinals>,
    year_days: Option<Ordinals>,
    month_days: Option<Ordinals>,
    by_day: Option<ByDay>,
    /// BYDAY ordinals count within the month (else within the year).
    nth_in_month: bool,
    /// Times of day of each occurring day (YEARLY … DAILY), or the expanded
    /// finer units of a sub-daily period (HOURLY: minutes and seconds;
    /// MINUTELY: seconds). Sorted, unique, valid.
    hours: Vec<u8>,
    minutes: Vec<u8>,
    seconds: Vec<u8>,
    /// BYHOUR / BYMINUTE / BYSECOND where they limit (sub-daily frequencies).
    hour_limit: Option<Vec<u8>>,
    minute_limit: Option<Vec<u8>>,
    second_limit: Option<Vec<u8>>,
    set_pos: Vec<i16>,
}

fn sorted_valid(values: &[u8], max: u8) -> Vec<u8> {
    let mut v: Vec<u8> = values.iter().copied().filter(|x| *x <= max).collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn year_len(year: i32) -> u32 {
    if is_leap(year) { 366 } else { 365 }
}

fn month_len(year: i32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from the week start `wkst` to `day` (0..=6).
fn days_after(day: Weekday, wkst: Weekday) -> u64 {
    u64::from((day.num_days_from_monday() + 7 - wkst.num_days_from_monday()) % 7)
}

/// The first day of week 1 of `year`: RFC 5545 §3.3.10 BYWEEKNO, "week
/// number one of the calendar year is the first week that contains at least
/// four (4) days in that calendar year", weeks starting on WKST (ISO 8601
/// when WKST=MO).
fn week_one(year: i32, wkst: Weekday) -> Option<NaiveDate> {
    let jan1 = NaiveDate::from_ymd_opt(year, 1, 1)?;
    let offset = days_after(jan1.weekday(), wkst);
    if offset <= 3 { jan1.checked_sub_days(Days::new(offset)) } else { jan1.checked_add_days(Days::new(7 - offset)) }
}

/// `day`'s week number and the number of weeks of its week-numbering year
/// (52 or 53). Late December may be week 1 of the next year and early
/// January week 52/53 of the previous one.
fn week_number(day: NaiveDate, wkst: Weekday) -> Option<(u32, u32)> {
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

impl Plan {
    fn new(rule: &RRule, dtstart: NaiveDateTime) -> Plan {
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

    fn month_ok(&self, day: NaiveDate) -> bool {
        self.months.is_none_or(|m| m[day.month() as usize])
    }

    /// Whether `day` passes every day-level part.
    fn day_matches(&self, day: NaiveDate) -> bool {
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
    fn expand_calendar(&self, sink: &mut Sink<'_>, max_iterations: usize) {
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
    fn expand_stepping(&self, sink: &mut Sink<'_>, max_iterations: usize) {
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

    /// Offers one period's set — `days` × `times`, in order — after BYSETPOS.
    fn emit(
        &self,
        days: &[NaiveDate],
        times: &TimeSet<'_>,
        picks: &mut Vec<usize>,
        sink: &mut Sink<'_>,
    ) -> ControlFlow<()> {
        let per_day = times.len();
        if days.is_empty() || per_day == 0 {
            return ControlFlow::Continue(());
        }
        let at = |i: usize| days[i / per_day].and_time(times.get(i % per_day));
        if self.set_pos.is_empty() {
            let first_day = self.dtstart.date();
            for (d, day) in days.iter().enumerate() {
                // Whole days before DTSTART cannot be occurrences.
                if *day < first_day {
                    continue;
                }
                for i in 0..per_day {
                    sink.offer(at(d * per_day + i))?;
                }
            }
            return ControlFlow::Continue(());
        }
        // §3.3.10 BYSETPOS: "the nth occurrence within the set of recurrence
        // instances specified by the rule" in this interval, negative from its
        // end. Positions outside the set select nothing.
        let size = days.len() * per_day;
        picks.clear();
        picks.extend(self.set_pos.iter().filter_map(|&p| {
            let k = p.unsigned_abs() as usize;
            if k == 0 || k > size {
                None
            } else if p > 0 {
                Some(k - 1)
            } else {
                Some(size - k)
            }
        }));
        picks.sort_unstable();
        picks.dedup();
        for &i in picks.iter() {
            sink.offer(at(i))?;
        }
        ControlFlow::Continue(())
    }
}

/// The first time at or after `boundary` that is a whole number of `step`
/// seconds after `cursor` (and at least one step after it).
fn align(cursor: NaiveDateTime, boundary: NaiveDateTime, step: i64) -> Option<NaiveDateTime> {
    let gap = (boundary - cursor).num_seconds();
    let steps = if gap <= 0 { 1 } else { gap.checked_add(step - 1)? / step };
    cursor.checked_add_signed(TimeDelta::try_seconds(steps.checked_mul(step)?)?)
}

/// The times of day of one day of a period: the product hours × minutes ×
/// seconds, each sorted, so index order is time order and nothing is stored.
struct TimeSet<'a> {
    hours: &'a [u8],
    minutes: &'a [u8],
    seconds: &'a [u8],
}

impl TimeSet<'_> {
    fn len(&self) -> usize {
        self.hours.len() * self.minutes.len() * self.seconds.len()
    }

    fn get(&self, i: usize) -> NaiveTime {
        let (m, s) = (self.minutes.len(), self.seconds.len());
        let (h, mi, se) = (self.hours[i / (m * s)], self.minutes[(i / s) % m], self.seconds[i % s]);
        NaiveTime::from_hms_opt(u32::from(h), u32::from(mi), u32::from(se)).unwrap_or(NaiveTime::MIN)
    }
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

    #[test]
    fn ordinals_count_from_both_ends() {
        let set = Ordinals::new([1, -1].into_iter(), 31);
        assert!(set.contains(1, 30) && set.contains(30, 30) && !set.contains(29, 30));
    }

    #[test]
    fn align_lands_on_the_step_grid() {
        let at = |h, m| ymd(2026, 1, 1).and_hms_opt(h, m, 0).unwrap();
        assert_eq!(align(at(16, 40), at(17, 0), 20 * 60), Some(at(17, 0)));
        assert_eq!(align(at(16, 50), at(17, 0), 90 * 60), Some(at(18, 20)));
        assert_eq!(align(at(17, 0), at(17, 0), 60), Some(at(17, 1)));
    }
}
