//! iCalendar import (SEMANTICS.md §6): one parser and expander, used by the
//! ICS poller and by `calctl ics expand`.
//!
//! A body that is not iCalendar at all, or is over a limit, is *rejected*
//! with the line or limit named, and the caller keeps its last good data.
//! Inside a valid calendar, faults are repaired where busy time can still be
//! known (an unknown TZID is read as floating, an inverted DTEND is swapped)
//! and skipped where it cannot (an unreadable DTSTART, RRULE, DTEND or
//! DURATION), each with a [`Warning`] naming its line.
//!
//! Recurrences are expanded in wall-clock time (RFC 5545 §3.3.10) and each
//! occurrence is placed with the point rule of its zone (§3.3.5): a
//! nonexistent local time takes the offset before the gap, an ambiguous one
//! its first occurrence. Expansion is bounded by the requested window and by
//! [`ImportLimits`], so a hostile RRULE can neither loop nor exhaust memory.
//!
//! This module holds the public face and the two passes over the body; the
//! syntax is read by `lexer`, values by `values`, zones by `zones` (each
//! VCALENDAR its own), and the events of all of them are expanded together
//! by `expand`, so versions of one UID meet wherever they stand.

use serde::Serialize;

use super::expand::{Length, Recurrence, Vevent};
use super::lexer::{Component, ContentLine, Nesting, Step, content_lines, decode};
use super::rrule::RRule;
use super::values::{IcsDuration, When, parse_duration};
use super::versions::Version;
use super::zones::Zones;
use crate::time::{Instant, Zone};

/// Bounds on what one calendar may make us do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportLimits {
    /// Largest body accepted, in bytes.
    pub max_bytes: usize,
    /// Most VEVENT components accepted.
    pub max_events: usize,
    /// Most busy occurrences produced; beyond it the rest is dropped with a warning.
    pub max_occurrences: usize,
    /// Most recurrence periods examined per rule (guards hostile RRULEs).
    pub max_iterations: usize,
}

impl Default for ImportLimits {
    fn default() -> Self {
        ImportLimits { max_bytes: 10 * 1024 * 1024, max_events: 50_000, max_occurrences: 100_000, max_iterations: 200_000 }
    }
}

/// Why a whole body was refused. The source keeps its last good data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("line 1: empty body, not an iCalendar file")]
    Empty,
    #[error("line {line}: not an iCalendar file (expected BEGIN:VCALENDAR, found {found:?})")]
    NotCalendar { line: usize, found: String },
    #[error("line {line}: binary data, not an iCalendar file")]
    Binary { line: usize },
    #[error("line {line}: truncated: {open} is not closed (END:VCALENDAR missing)")]
    Truncated { line: usize, open: String },
    #[error("line {line}: END:{found} does not close BEGIN:{open}")]
    Mismatched { line: usize, found: String, open: String },
    #[error("body is {bytes} bytes, over the limit of {max}")]
    TooLarge { bytes: usize, max: usize },
    #[error("{count} events, over the limit of {max}")]
    TooManyEvents { count: usize, max: usize },
}

impl Rejection {
    /// The line the rejection is about, if any.
    pub fn line(&self) -> Option<usize> {
        match self {
            Rejection::Empty => Some(1),
            Rejection::NotCalendar { line, .. }
            | Rejection::Binary { line }
            | Rejection::Truncated { line, .. }
            | Rejection::Mismatched { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// A repaired or skipped fault inside a valid calendar.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub line: usize,
    pub message: String,
}

/// One busy occurrence.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct BusyOccurrence {
    pub start: Instant,
    pub end: Instant,
    pub uid: String,
    pub summary: String,
    /// The occurrence's original start (its RECURRENCE-ID) for recurring
    /// events; with the UID it identifies the occurrence across polls.
    pub recurrence_id: Option<Instant>,
}

/// The result of an import.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Imported {
    /// Busy occurrences overlapping the window, sorted by start, end, UID.
    pub busy: Vec<BusyOccurrence>,
    pub warnings: Vec<Warning>,
    /// Number of VEVENT components read.
    pub events: usize,
}

/// Parses `body` and returns the busy occurrences overlapping `[from, to)`.
///
/// `provider_zone` places floating and all-day times (unless the calendar
/// names a default with Google's `X-WR-TIMEZONE`, which then places floating
/// times; all-day events always use the provider's zone).
///
/// Two passes over the borrowed text keep memory near the size of the body:
/// the first checks the structure and keeps only what a calendar's events
/// depend on (its VTIMEZONEs and X-WR-TIMEZONE); the second reads the events
/// one at a time, each turned into a compact `Vevent` at its END:VEVENT, so
/// the whole calendar never exists as a tree of content lines.
pub fn import(body: &[u8], provider_zone: Zone, from: Instant, to: Instant, limits: ImportLimits) -> Result<Imported, Rejection> {
    if body.len() > limits.max_bytes {
        return Err(Rejection::TooLarge { bytes: body.len(), max: limits.max_bytes });
    }
    let text = decode(body)?;
    let heads = survey(&text)?;
    let event_count: usize = heads.iter().map(|h| h.events).sum();
    if event_count > limits.max_events {
        return Err(Rejection::TooManyEvents { count: event_count, max: limits.max_events });
    }
    let mut out = Imported { events: event_count, ..Imported::default() };
    let mut warnings = Vec::new();
    let mut heads = heads.into_iter();
    let mut nesting = Nesting::default();
    // The open top-level VCALENDAR, the last one closed, and the VEVENT being
    // read. The events of every VCALENDAR are expanded together at the end:
    // versions of one UID may stand in different ones (appended iTIP
    // messages), and each event carries what it needs of its calendar.
    let (mut calendar, mut closed): (Option<Context>, Option<Context>) = (None, None);
    let mut events: Vec<Vevent> = Vec::with_capacity(event_count);
    let mut event: Option<Component<'_>> = None;
    for l in content_lines(&text)? {
        match nesting.step(&l)? {
            Step::Begin(name) => match nesting.depth() {
                1 if name == "VCALENDAR" => {
                    if let Some(head) = heads.next() {
                        calendar = Some(Context::new(head, provider_zone, from, to, limits, std::mem::take(&mut warnings)));
                    }
                }
                2 if calendar.is_some() && name == "VEVENT" => {
                    event = Some(Component { name: name.into_owned(), line: l.line, ..Component::default() });
                }
                _ => {}
            },
            Step::End(_) => match nesting.depth() {
                0 => {
                    if let Some(mut ctx) = calendar.take() {
                        warnings = std::mem::take(&mut ctx.warnings);
                        closed = Some(ctx);
                    }
                }
                1 => {
                    if let (Some(e), Some(ctx)) = (event.take(), calendar.as_mut()) {
                        events.extend(ctx.read_event(&e));
                    }
                }
                _ => {}
            },
            Step::Prop => {
                if let Some(e) = event.as_mut().filter(|_| nesting.depth() == 2) {
                    e.props.push(l);
                }
            }
            Step::Ignored => {}
        }
    }
    if let Some(mut ctx) = closed {
        ctx.warnings = warnings;
        ctx.run(events, &mut out.busy);
        warnings = ctx.warnings;
    }
    // Cannot fail: the survey saw every component closed.
    nesting.finish()?;
    // Equal occurrences are identical in every field, so an unstable sort
    // (in place, no scratch buffer) orders them as a stable one would.
    out.busy.sort_unstable();
    out.busy.dedup();
    out.warnings = warnings;
    Ok(out)
}

/// What a top-level VCALENDAR's events depend on, found before they are read.
#[derive(Debug, Default)]
struct CalendarHead<'a> {
    line: usize,
    /// Its first `X-WR-TIMEZONE` property.
    wr_timezone: Option<ContentLine<'a>>,
    /// Its VTIMEZONE components, whole.
    vtimezones: Vec<Component<'a>>,
    /// How many VEVENTs it holds.
    events: usize,
}

/// The first pass: checks that components nest and close (rejecting the
/// body otherwise) and returns, for each top-level VCALENDAR, what its
/// events depend on. Only VTIMEZONE subtrees are built; everything else is
/// looked at and let go.
fn survey(text: &str) -> Result<Vec<CalendarHead<'_>>, Rejection> {
    let mut nesting = Nesting::default();
    let mut heads = Vec::new();
    let mut head: Option<CalendarHead<'_>> = None;
    // The open VTIMEZONE and its open sub-components, innermost last.
    let mut zone: Vec<Component<'_>> = Vec::new();
    for l in content_lines(text)? {
        match nesting.step(&l)? {
            Step::Begin(name) => {
                let depth = nesting.depth();
                if depth == 1 && name == "VCALENDAR" {
                    head = Some(CalendarHead { line: l.line, ..CalendarHead::default() });
                } else if !zone.is_empty() || (depth == 2 && head.is_some() && name == "VTIMEZONE") {
                    zone.push(Component { name: name.into_owned(), line: l.line, ..Component::default() });
                }
            }
            Step::End(name) => match zone.pop() {
                Some(done) => match (zone.last_mut(), head.as_mut()) {
                    (Some(parent), _) => parent.children.push(done),
                    (None, Some(h)) => h.vtimezones.push(done),
                    (None, None) => {}
                },
                None => match nesting.depth() {
                    0 => heads.extend(head.take()),
                    1 if name == "VEVENT" => {
                        if let Some(h) = head.as_mut() {
                            h.events += 1;
                        }
                    }
                    _ => {}
                },
            },
            Step::Prop => {
                if let Some(c) = zone.last_mut() {
                    c.props.push(l);
                } else if let Some(h) = head.as_mut().filter(|_| nesting.depth() == 1) {
                    if l.name == "X-WR-TIMEZONE" && h.wr_timezone.is_none() {
                        h.wr_timezone = Some(l);
                    }
                }
            }
            Step::Ignored => {}
        }
    }
    nesting.finish()?;
    Ok(heads)
}

/// One VCALENDAR's zones and limits while its events are read; the last
/// one expands the events of all of them.
pub(super) struct Context {
    /// The line of its BEGIN:VCALENDAR.
    pub(super) cal_line: usize,
    pub(super) provider: Zone,
    pub(super) zones: Zones,
    pub(super) from: Instant,
    pub(super) to: Instant,
    pub(super) limits: ImportLimits,
    /// The import's warnings so far (taken over, and handed back after [`Context::run`]).
    pub(super) warnings: Vec<Warning>,
}

impl Context {
    fn new(head: CalendarHead<'_>, provider: Zone, from: Instant, to: Instant, limits: ImportLimits, mut warnings: Vec<Warning>) -> Self {
        let zones = Zones::new(head.wr_timezone, &head.vtimezones, provider, to, &mut warnings);
        Context { cal_line: head.line, provider, zones, from, to, limits, warnings }
    }

    pub(super) fn warn(&mut self, line: usize, message: impl Into<String>) {
        self.warnings.push(Warning { line, message: message.into() });
    }

    /// A DATE or DATE-TIME value of `prop` (one of possibly several), on the
    /// wall clock its TZID names.
    fn when(&mut self, prop: &ContentLine, value: &str) -> Option<When> {
        self.zones.when(prop, value, &mut self.warnings)
    }

    fn read_event(&mut self, c: &Component) -> Option<Vevent> {
        let uid = c.text("UID").filter(|u| !u.trim().is_empty()).unwrap_or_else(|| format!("line-{}", c.line));
        let summary = c.text("SUMMARY").unwrap_or_default();
        let Some(dtstart) = c.prop("DTSTART") else {
            self.warn(c.line, "VEVENT without DTSTART; skipped");
            return None;
        };
        let Some(start) = self.when(dtstart, &dtstart.value.clone()) else {
            self.warn(dtstart.line, format!("DTSTART {:?} cannot be read; event skipped", dtstart.value));
            return None;
        };
        // Several RRULEs are a union (RFC 5545 §3.8.5.3); one unreadable rule
        // leaves the busy time unknown, so the event is skipped.
        let mut rrules = Vec::new();
        for p in c.props("RRULE") {
            match RRule::parse(&p.value) {
                Ok(r) => rrules.push(r),
                Err(e) => {
                    self.warn(p.line, format!("RRULE cannot be read ({e}); event skipped"));
                    return None;
                }
            }
        }
        let mut start = start;
        let length = match (c.prop("DTEND"), c.prop("DURATION")) {
            (Some(p), _) => {
                let Some(end) = self.when(p, &p.value.clone()) else {
                    self.warn(p.line, format!("DTEND {:?} cannot be read; event skipped", p.value));
                    return None;
                };
                match (&start, &end) {
                    (When::Date(s), When::Date(e)) => {
                        let days = (*e - *s).num_days();
                        if days < 0 {
                            self.warn(p.line, "DTEND before DTSTART; swapped");
                            start = end.clone();
                        }
                        Length::Days(days.abs().max(1))
                    }
                    _ => {
                        let (s, e) = (start.instant(self.provider), end.instant(self.provider));
                        if e < s {
                            self.warn(p.line, "DTEND before DTSTART; swapped");
                            start = end.clone();
                        }
                        Length::Exact((e.unix() - s.unix()).abs())
                    }
                }
            }
            (None, Some(p)) => match parse_duration(&p.value) {
                Some(d) if matches!(start, When::Date(_)) => Length::Days((d.days + d.secs.div_euclid(86_400)).abs().max(1)),
                Some(d) if d.days < 0 || d.secs < 0 => {
                    self.warn(p.line, "negative DURATION; its length is used");
                    Length::Nominal(IcsDuration { days: d.days.abs(), secs: d.secs.abs() })
                }
                Some(d) => Length::Nominal(d),
                None => {
                    self.warn(p.line, format!("DURATION {:?} cannot be read; event skipped", p.value));
                    return None;
                }
            },
            // A date lasts one day; a date-time without end or duration has no length.
            (None, None) => match start {
                When::Date(_) => Length::Days(1),
                When::Local(..) => Length::Exact(0),
            },
        };
        let transparent = c.prop("TRANSP").is_some_and(|p| p.value.trim().eq_ignore_ascii_case("TRANSPARENT"));
        let cancelled = c.prop("STATUS").is_some_and(|p| p.value.trim().eq_ignore_ascii_case("CANCELLED"));
        let mut rdates = Vec::new();
        for p in c.props("RDATE") {
            for v in p.value.split(',') {
                if p.param("VALUE").is_some_and(|t| t.eq_ignore_ascii_case("PERIOD")) || v.contains('/') {
                    let (a, b) = v.split_once('/').unwrap_or((v, ""));
                    match (self.when(p, a), parse_duration(b), self.when(p, b)) {
                        (Some(w), Some(d), _) => rdates.push((w, Some(Length::Nominal(d)))),
                        (Some(w), None, Some(e)) => {
                            let secs = e.instant(self.provider).unix() - w.instant(self.provider).unix();
                            rdates.push((w, Some(Length::Exact(secs.abs()))));
                        }
                        _ => self.warn(p.line, format!("RDATE period {v:?} cannot be read; ignored")),
                    }
                } else {
                    match self.when(p, v) {
                        Some(w) => rdates.push((w, None)),
                        None => self.warn(p.line, format!("RDATE {v:?} cannot be read; ignored")),
                    }
                }
            }
        }
        let mut exdates = Vec::new();
        for p in c.props("EXDATE") {
            for v in p.value.split(',') {
                match self.when(p, v) {
                    Some(w) => exdates.push(w),
                    None => self.warn(p.line, format!("EXDATE {v:?} cannot be read; ignored (the occurrence stays busy)")),
                }
            }
        }
        let recurrence_id = match c.prop("RECURRENCE-ID") {
            None => None,
            Some(p) => match self.when(p, &p.value.clone()) {
                Some(w) => Some((w, p.param("RANGE").is_some_and(|r| r.eq_ignore_ascii_case("THISANDFUTURE")))),
                None => {
                    self.warn(p.line, format!("RECURRENCE-ID {:?} cannot be read; treated as a separate event", p.value));
                    None
                }
            },
        };
        let version = Version::new(self.sequence(c), self.stamp(c, "DTSTAMP"), self.stamp(c, "LAST-MODIFIED"));
        let recurrence = Recurrence { rrules: rrules.into(), rdates: rdates.into(), exdates: exdates.into(), recurrence_id };
        let recurrence = (!recurrence.is_empty()).then(|| Box::new(recurrence));
        Some(Vevent { line: c.line, uid, summary, start, length, blocks: !transparent && !cancelled, wr_zone: self.zones.wr_zone, version, recurrence })
    }

    /// SEQUENCE (RFC 5545 §3.8.7.4): missing is 0, and so is an unreadable
    /// one, with a warning.
    fn sequence(&mut self, c: &Component) -> i64 {
        let Some(p) = c.prop("SEQUENCE") else { return 0 };
        p.value.trim().parse().unwrap_or_else(|_| {
            self.warn(p.line, format!("SEQUENCE {:?} cannot be read; read as 0", p.value));
            0
        })
    }

    /// DTSTAMP or LAST-MODIFIED (RFC 5545 §3.8.7.2, §3.8.7.3), UTC by the
    /// RFC but read like any date-time; an unreadable one is missing.
    fn stamp(&mut self, c: &Component, name: &str) -> Option<Instant> {
        let p = c.prop(name)?;
        let at = self.when(p, &p.value).map(|w| w.instant(self.provider));
        if at.is_none() {
            self.warn(p.line, format!("{name} {:?} cannot be read; read as missing", p.value));
        }
        at
    }
}
