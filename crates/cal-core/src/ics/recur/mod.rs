//! Expansion of one recurrence rule (SEMANTICS.md §6): a parsed RECUR value
//! (RFC 5545 §3.3.10, [`RRule`]) into its occurrences (§3.8.5.3).
//!
//! The pieces, each in the file of its name:
//! - this file: [`expand`], the entry point, with its [`Limits`] and result;
//! - `plan`: the rule with DTSTART's defaults filled in, and which days it
//!   allows (the day-level BYxxx parts);
//! - `periods`: walking the periods FREQ and INTERVAL make, calendar periods
//!   (YEARLY, MONTHLY, WEEKLY) and stepping ones (DAILY … SECONDLY);
//! - `period_set`: one period's set of days × times of day, and BYSETPOS;
//! - `sink`: where an expansion ends (COUNT, UNTIL, the window, the limits);
//! - `gregorian`: leap years, month lengths and week numbers (BYWEEKNO, WKST).
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

mod gregorian;
mod period_set;
mod periods;
mod plan;
mod sink;

use chrono::NaiveDateTime;

use super::rrule::{Freq, RRule};
use plan::Plan;
use sink::Sink;

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
/// Stops at COUNT, at UNTIL (inclusive; a
/// [`Until::Utc`](crate::ics::rrule::Until::Utc) is compared through
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
    let mut sink = Sink::new(rule, dtstart, window_end, to_utc, limits.max_occurrences);
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

/// The occurrences of several rules on one DTSTART: their union (RFC 5545
/// §3.8.5.3, "gathering all of the start DATE-TIME values generated by any
/// of the specified RRULE and RDATE properties"), in order, each once —
/// DTSTART too. Each rule is expanded as by [`expand`], with its own COUNT.
///
/// Past [`Limits::max_occurrences`] the union keeps the earliest ones and is
/// `truncated`; they are complete, since every rule that stopped at the limit
/// produced that many by then. No rule yields DTSTART alone.
pub fn expand_union(
    rules: &[RRule],
    dtstart: NaiveDateTime,
    window_end: NaiveDateTime,
    to_utc: &dyn Fn(NaiveDateTime) -> i64,
    limits: Limits,
) -> Expansion {
    let Some((first, rest)) = rules.split_first() else {
        let truncated = limits.max_occurrences == 0;
        let occurrences = if truncated || dtstart > window_end { Vec::new() } else { vec![dtstart] };
        return Expansion { occurrences, truncated };
    };
    let mut union = expand(first, dtstart, window_end, to_utc, limits);
    if rest.is_empty() {
        return union;
    }
    for rule in rest {
        let more = expand(rule, dtstart, window_end, to_utc, limits);
        union.occurrences.extend(more.occurrences);
        union.truncated |= more.truncated;
    }
    union.occurrences.sort_unstable();
    union.occurrences.dedup();
    if union.occurrences.len() > limits.max_occurrences {
        union.occurrences.truncate(limits.max_occurrences);
        union.truncated = true;
    }
    union
}
