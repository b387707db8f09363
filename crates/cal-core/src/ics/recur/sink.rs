//! Where an expansion ends (RFC 5545 §3.3.10): at COUNT (DTSTART counted,
//! §3.8.5.3), at UNTIL (inclusive, in its three forms), at the end of the
//! window the caller needs, or at [`Limits`](super::Limits). Occurrences are
//! offered in increasing wall-clock order and collected here.

use std::ops::ControlFlow;

use chrono::{NaiveDateTime, TimeDelta};

use crate::ics::rrule::{RRule, Until};

/// How far a UTC UNTIL may be passed in wall-clock time before no later
/// occurrence can fall before it again. Wall clock → UTC is not monotonic
/// across a DST gap (02:30 read as 03:30 sorts after 03:00); the jump is at
/// most a day in any real zone (Samoa, 2011), so a day and two hours is safe.
const UTC_UNTIL_SLACK: TimeDelta = TimeDelta::hours(26);

/// Collects occurrences and decides where expansion ends.
pub(super) struct Sink<'a> {
    pub(super) out: Vec<NaiveDateTime>,
    pub(super) truncated: bool,
    dtstart: NaiveDateTime,
    window_end: NaiveDateTime,
    until: Option<Until>,
    pub(super) count: Option<usize>,
    max_occurrences: usize,
    to_utc: &'a dyn Fn(NaiveDateTime) -> i64,
    /// The first occurrence found after a UTC UNTIL.
    utc_overrun: Option<NaiveDateTime>,
}

impl<'a> Sink<'a> {
    pub(super) fn new(
        rule: &RRule,
        dtstart: NaiveDateTime,
        window_end: NaiveDateTime,
        to_utc: &'a dyn Fn(NaiveDateTime) -> i64,
        max_occurrences: usize,
    ) -> Sink<'a> {
        Sink {
            out: Vec::new(),
            truncated: false,
            dtstart,
            window_end,
            until: rule.until,
            count: rule.count.map(|c| c as usize),
            max_occurrences,
            to_utc,
            utc_overrun: None,
        }
    }

    /// True when no occurrence at or after the wall-clock time `t` can be
    /// produced: checked at the start of each period, so a rule that matches
    /// nothing still stops at the window or UNTIL.
    pub(super) fn past_end(&self, t: NaiveDateTime) -> bool {
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
    pub(super) fn offer(&mut self, t: NaiveDateTime) -> ControlFlow<()> {
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
