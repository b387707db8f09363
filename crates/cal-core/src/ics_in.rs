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

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};
use serde::Serialize;

use crate::ics_rrule::{self, RRule};
use crate::time::{Instant, Zone};
use crate::windows_zones::WINDOWS_ZONES;

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
    // The open top-level VCALENDAR, its events read so far, and the VEVENT being read.
    let mut calendar: Option<(Context, Vec<Vevent>)> = None;
    let mut event: Option<Component<'_>> = None;
    for l in content_lines(&text)? {
        match nesting.step(&l)? {
            Step::Begin(name) => match nesting.depth() {
                1 if name == "VCALENDAR" => {
                    if let Some(head) = heads.next() {
                        let capacity = head.events;
                        calendar = Some((Context::new(head, provider_zone, from, to, limits, std::mem::take(&mut warnings)), Vec::with_capacity(capacity)));
                    }
                }
                2 if calendar.is_some() && name == "VEVENT" => {
                    event = Some(Component { name: name.into_owned(), line: l.line, ..Component::default() });
                }
                _ => {}
            },
            Step::End(_) => match nesting.depth() {
                0 => {
                    if let Some((mut ctx, events)) = calendar.take() {
                        ctx.run(events, &mut out.busy);
                        warnings = ctx.warnings;
                    }
                }
                1 => {
                    if let (Some(e), Some((ctx, events))) = (event.take(), calendar.as_mut()) {
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
    // Cannot fail: the survey saw every component closed.
    nesting.finish()?;
    // Equal occurrences are identical in every field, so an unstable sort
    // (in place, no scratch buffer) orders them as a stable one would.
    out.busy.sort_unstable();
    out.busy.dedup();
    out.warnings = warnings;
    Ok(out)
}

// ---------------------------------------------------------------------------
// Content lines (RFC 5545 §3.1)

/// One unfolded content line with the physical line it started on. Name,
/// parameters and value borrow from the body unless the line was folded
/// (or a name is not upper case, or a parameter value quoted).
#[derive(Clone, Debug, PartialEq, Eq)]
struct ContentLine<'a> {
    line: usize,
    name: Cow<'a, str>,
    params: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    value: Cow<'a, str>,
}

impl ContentLine<'_> {
    fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_ref())
    }

    fn into_owned(self) -> ContentLine<'static> {
        let own = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        ContentLine {
            line: self.line,
            name: own(self.name),
            params: self.params.into_iter().map(|(k, v)| (own(k), own(v))).collect(),
            value: own(self.value),
        }
    }
}

/// `s` in ASCII upper case, borrowed when it already is.
fn upper(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_lowercase()) { Cow::Owned(s.to_ascii_uppercase()) } else { Cow::Borrowed(s) }
}

/// A BEGIN/END value as a component name: trimmed, upper case.
fn component_name<'a>(value: &Cow<'a, str>) -> Cow<'a, str> {
    match value {
        Cow::Borrowed(s) => upper(s.trim()),
        Cow::Owned(s) => Cow::Owned(s.trim().to_ascii_uppercase()),
    }
}

/// Decodes (invalid UTF-8 replaced, never a panic), refusing binary bodies.
fn decode(body: &[u8]) -> Result<Cow<'_, str>, Rejection> {
    if let Some(pos) = body.iter().take(64 * 1024).position(|&b| b == 0) {
        let line = body[..pos].iter().filter(|&&b| b == b'\n').count() + 1;
        return Err(Rejection::Binary { line });
    }
    Ok(String::from_utf8_lossy(body))
}

/// The logical (unfolded) lines of `text` with the physical line each starts
/// on, produced one at a time: an unfolded line borrows from `text`, only a
/// folded one is copied, so a large body is never held twice.
fn logical_lines(text: &str) -> impl Iterator<Item = (usize, Cow<'_, str>)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut raw = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).enumerate().peekable();
    std::iter::from_fn(move || loop {
        let (i, line) = raw.next()?;
        if line.trim().is_empty() || line.starts_with([' ', '\t']) {
            // Blank, or a continuation with nothing before it to continue.
            continue;
        }
        let mut logical = Cow::Borrowed(line);
        while let Some((_, next)) = raw.peek() {
            let Some(rest) = next.strip_prefix([' ', '\t']) else { break };
            logical.to_mut().push_str(rest);
            raw.next();
        }
        return Some((i + 1, logical));
    })
}

/// The content lines of `text`, after checking that it starts as a calendar.
fn content_lines(text: &str) -> Result<impl Iterator<Item = ContentLine<'_>> + '_, Rejection> {
    let mut lines = logical_lines(text).peekable();
    let Some((first_line, first)) = lines.peek() else { return Err(Rejection::Empty) };
    if !first.trim().eq_ignore_ascii_case("BEGIN:VCALENDAR") {
        let found: String = first.chars().take(40).filter(|c| !c.is_control()).collect();
        let binary = first.chars().filter(|c| *c == char::REPLACEMENT_CHARACTER || c.is_control()).count() * 4 > first.chars().count().max(1);
        return Err(if binary { Rejection::Binary { line: *first_line } } else { Rejection::NotCalendar { line: *first_line, found } });
    }
    Ok(lines.filter_map(|(line, text)| match text {
        Cow::Borrowed(text) => parse_line(line, text),
        Cow::Owned(text) => parse_line(line, &text).map(ContentLine::into_owned),
    }))
}

/// `NAME *(;PARAM=VALUE[,VALUE]) : VALUE`, with quoted parameter values.
/// A line without a colon is not a content line and is dropped here; the
/// component that holds it notices what it lacks.
fn parse_line(line: usize, text: &str) -> Option<ContentLine<'_>> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() && bytes[i] != b';' && bytes[i] != b':' {
        i += 1;
    }
    let name = upper(text[..i].trim());
    if name.is_empty() || i >= bytes.len() {
        return None;
    }
    let mut params = Vec::new();
    while bytes[i] == b';' {
        i += 1;
        let key_start = i;
        while i < bytes.len() && bytes[i] != b'=' && bytes[i] != b':' && bytes[i] != b';' {
            i += 1;
        }
        let key = upper(text[key_start..i].trim());
        let mut value = Cow::Borrowed("");
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            // Unquoted parts and the commas between them are the text as it
            // stands; only a quoted part (quotes dropped) needs a copy.
            let value_start = i;
            let mut quoted: Option<String> = None;
            loop {
                if i < bytes.len() && bytes[i] == b'"' {
                    let end = text[i + 1..].find('"').map(|p| i + 1 + p)?;
                    quoted.get_or_insert_with(|| text[value_start..i].to_owned()).push_str(&text[i + 1..end]);
                    i = end + 1;
                } else {
                    let start = i;
                    while i < bytes.len() && !matches!(bytes[i], b',' | b';' | b':') {
                        i += 1;
                    }
                    if let Some(q) = quoted.as_mut() {
                        q.push_str(&text[start..i]);
                    }
                }
                if i < bytes.len() && bytes[i] == b',' {
                    if let Some(q) = quoted.as_mut() {
                        q.push(',');
                    }
                    i += 1;
                } else {
                    break;
                }
            }
            value = match quoted {
                Some(q) => Cow::Owned(q),
                None => Cow::Borrowed(&text[value_start..i]),
            };
        }
        params.push((key, value));
        if i >= bytes.len() {
            return None;
        }
    }
    if bytes[i] != b':' {
        return None;
    }
    Some(ContentLine { line, name, params, value: Cow::Borrowed(&text[i + 1..]) })
}

/// A component with its properties and sub-components.
#[derive(Clone, Debug, Default)]
struct Component<'a> {
    name: String,
    line: usize,
    props: Vec<ContentLine<'a>>,
    children: Vec<Component<'a>>,
}

impl<'a> Component<'a> {
    fn prop(&self, name: &str) -> Option<&ContentLine<'a>> {
        self.props.iter().find(|p| p.name == name)
    }

    fn props<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s ContentLine<'a>> + 's {
        self.props.iter().filter(move |p| p.name == name)
    }

    fn text(&self, name: &str) -> Option<String> {
        self.prop(name).map(|p| unescape(&p.value))
    }
}

/// Where a content line falls in the component structure.
enum Step<'a> {
    /// `BEGIN` of this component, now the innermost open one.
    Begin(Cow<'a, str>),
    /// `END` of this component, closed now.
    End(Cow<'a, str>),
    /// A property of the innermost open component.
    Prop,
    /// An `END` with nothing open, or a property outside any component.
    Ignored,
}

/// The open components (names only) while content lines go by; every
/// BEGIN must be closed by the END of the same name.
#[derive(Default)]
struct Nesting<'a> {
    open: Vec<Cow<'a, str>>,
    /// The physical line of the last content line seen.
    last_line: usize,
}

impl<'a> Nesting<'a> {
    fn step(&mut self, l: &ContentLine<'a>) -> Result<Step<'a>, Rejection> {
        self.last_line = l.line;
        match &*l.name {
            "BEGIN" => {
                let name = component_name(&l.value);
                self.open.push(name.clone());
                Ok(Step::Begin(name))
            }
            "END" => {
                let name = component_name(&l.value);
                let Some(top) = self.open.pop() else { return Ok(Step::Ignored) };
                if top != name {
                    return Err(Rejection::Mismatched { line: l.line, found: name.into_owned(), open: top.into_owned() });
                }
                Ok(Step::End(top))
            }
            _ if self.open.is_empty() => Ok(Step::Ignored),
            _ => Ok(Step::Prop),
        }
    }

    /// How many components are open.
    fn depth(&self) -> usize {
        self.open.len()
    }

    /// At the end of the body: every VCALENDAR must be closed.
    fn finish(&self) -> Result<(), Rejection> {
        match self.open.first() {
            Some(open) => Err(Rejection::Truncated { line: self.last_line, open: open.to_string() }),
            None => Ok(()),
        }
    }
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

/// TEXT unescaping (RFC 5545 §3.3.11).
fn unescape(value: &str) -> String {
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

// ---------------------------------------------------------------------------
// Zones

/// A custom VTIMEZONE: its transitions, computed for the years needed.
#[derive(Debug)]
struct CustomZone {
    /// `(instant, offset_from, offset_to)` sorted by instant.
    transitions: Vec<(i64, i32, i32)>,
    /// Offset before the first transition.
    initial: i32,
}

impl CustomZone {
    fn offset_at(&self, t: i64) -> i32 {
        let i = self.transitions.partition_point(|(at, _, _)| *at <= t);
        if i == 0 { self.initial } else { self.transitions[i - 1].2 }
    }

    /// RFC 5545 §3.3.5 point rule over the VTIMEZONE's own transitions.
    fn point(&self, local: NaiveDateTime) -> i64 {
        let l = local.and_utc().timestamp();
        let mut offsets: Vec<i32> = self.transitions.iter().flat_map(|(_, a, b)| [*a, *b]).collect();
        offsets.push(self.initial);
        offsets.sort_unstable();
        offsets.dedup();
        let valid = offsets.iter().map(|o| l - i64::from(*o)).filter(|t| i64::from(self.offset_at(*t)) == l - t).min();
        if let Some(t) = valid {
            return t;
        }
        // In a gap: the offset before the jump.
        for (at, from, to) in &self.transitions {
            if to > from && l >= at + i64::from(*from) && l < at + i64::from(*to) {
                return l - i64::from(*from);
            }
        }
        l - i64::from(self.initial)
    }
}

/// How a wall-clock time becomes an instant.
#[derive(Clone, Debug)]
enum TimeBase {
    Utc,
    Iana(Zone),
    Custom(Arc<CustomZone>),
}

impl TimeBase {
    fn point(&self, local: NaiveDateTime) -> Instant {
        match self {
            TimeBase::Utc => Instant::from_unix(local.and_utc().timestamp()),
            TimeBase::Iana(z) => z.point(local),
            TimeBase::Custom(c) => Instant::from_unix(c.point(local)),
        }
    }

    fn local_at(&self, t: Instant) -> NaiveDateTime {
        match self {
            TimeBase::Utc => t.to_chrono().naive_utc(),
            TimeBase::Iana(z) => z.local_at(t),
            TimeBase::Custom(c) => (t.to_chrono() + Duration::seconds(c.offset_at(t.unix()).into())).naive_utc(),
        }
    }
}

/// An IANA zone for a TZID: exact, after a `/…/` vendor prefix, or a Windows name.
fn known_zone(tzid: &str) -> Option<Zone> {
    let tzid = tzid.trim().trim_matches('"');
    if let Ok(z) = Zone::parse(tzid) {
        return Some(z);
    }
    // Lightning / Mozilla write "/mozilla.org/20050126_1/Europe/Berlin".
    if tzid.starts_with('/') {
        let parts: Vec<&str> = tzid.trim_start_matches('/').split('/').collect();
        for i in 0..parts.len() {
            if let Ok(z) = Zone::parse(&parts[i..].join("/")) {
                return Some(z);
            }
        }
    }
    WINDOWS_ZONES
        .binary_search_by(|(win, _)| (*win).cmp(tzid))
        .ok()
        .and_then(|i| Zone::parse(WINDOWS_ZONES[i].1).ok())
}

// ---------------------------------------------------------------------------
// Values

/// A DTSTART-like value.
#[derive(Clone, Debug)]
enum When {
    Date(NaiveDate),
    Local(NaiveDateTime, TimeBase),
}

impl When {
    fn instant(&self, all_day_zone: Zone) -> Instant {
        match self {
            When::Date(d) => all_day_zone.day(*d).map_or_else(|| Instant::from_unix(d.and_time(NaiveTime::MIN).and_utc().timestamp()), |iv| iv.start()),
            When::Local(l, base) => base.point(*l),
        }
    }
}

fn parse_date(v: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(v.trim(), "%Y%m%d").ok().filter(|_| v.trim().len() == 8)
}

fn parse_local(v: &str) -> Option<NaiveDateTime> {
    let v = v.trim();
    (v.len() == 15).then(|| NaiveDateTime::parse_from_str(v, "%Y%m%dT%H%M%S").ok()).flatten()
}

/// A nominal-plus-exact duration (RFC 5545 §3.3.6): weeks and days are
/// nominal (same wall-clock time N days later), hours to seconds exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct IcsDuration {
    days: i64,
    secs: i64,
}

fn parse_duration(v: &str) -> Option<IcsDuration> {
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

// ---------------------------------------------------------------------------
// Events

/// What an occurrence looks like: its length and whether it blocks time.
#[derive(Clone, Debug)]
enum Length {
    /// All-day: this many whole local days.
    Days(i64),
    /// Exact seconds (DTEND − DTSTART of the first instance).
    Exact(i64),
    /// A DURATION: nominal days plus exact seconds.
    Nominal(IcsDuration),
}

/// One VEVENT, read: what expansion needs and nothing more.
#[derive(Clone, Debug)]
struct Vevent {
    line: usize,
    uid: String,
    summary: String,
    start: When,
    length: Length,
    blocks: bool,
    /// Boxed: most events have no rule, and a rule is large.
    rrule: Option<Box<RRule>>,
    rdates: Vec<(When, Option<Length>)>,
    exdates: Vec<When>,
    recurrence_id: Option<(When, bool)>,
}

/// One VCALENDAR's zones and limits while its events are read and expanded.
struct Context {
    /// The line of its BEGIN:VCALENDAR.
    cal_line: usize,
    provider: Zone,
    floating: TimeBase,
    /// `X-WR-TIMEZONE`: a recurring UTC DTSTART is expanded on this wall clock.
    wr_zone: Option<Zone>,
    from: Instant,
    to: Instant,
    limits: ImportLimits,
    customs: HashMap<String, Arc<CustomZone>>,
    /// The import's warnings so far (taken over, and handed back after [`Context::run`]).
    warnings: Vec<Warning>,
    unknown_tzids: HashSet<String>,
}

impl Context {
    fn new(head: CalendarHead<'_>, provider: Zone, from: Instant, to: Instant, limits: ImportLimits, mut warnings: Vec<Warning>) -> Self {
        let wr_zone = head.wr_timezone.and_then(|p| {
            let z = known_zone(&p.value);
            if z.is_none() {
                warnings.push(Warning { line: p.line, message: format!("X-WR-TIMEZONE {:?} is not a known zone; ignored", p.value.trim()) });
            }
            z
        });
        let floating = TimeBase::Iana(wr_zone.unwrap_or(provider));
        let mut ctx = Context {
            cal_line: head.line,
            provider,
            floating,
            wr_zone,
            from,
            to,
            limits,
            customs: HashMap::new(),
            warnings,
            unknown_tzids: HashSet::new(),
        };
        for tz in &head.vtimezones {
            if let Some(tzid) = tz.prop("TZID").map(|p| p.value.trim().trim_matches('"').to_owned()) {
                if let Some(zone) = ctx.custom_zone(tz) {
                    ctx.customs.insert(tzid, Arc::new(zone));
                }
            }
        }
        ctx
    }

    fn warn(&mut self, line: usize, message: impl Into<String>) {
        self.warnings.push(Warning { line, message: message.into() });
    }

    /// Transitions of a VTIMEZONE's STANDARD/DAYLIGHT observances, from their
    /// onsets (DTSTART, RRULE, RDATE in the observance's TZOFFSETFROM), up to
    /// a year past the window.
    fn custom_zone(&mut self, tz: &Component) -> Option<CustomZone> {
        let horizon = self.to.to_chrono().naive_utc() + Duration::days(400);
        let mut transitions = Vec::new();
        for obs in tz.children.iter().filter(|c| c.name == "STANDARD" || c.name == "DAYLIGHT") {
            let offset = |name: &str| obs.prop(name).and_then(|p| parse_offset(&p.value));
            let (Some(from), Some(to), Some(start)) =
                (offset("TZOFFSETFROM"), offset("TZOFFSETTO"), obs.prop("DTSTART").and_then(|p| parse_local(&p.value)))
            else {
                self.warn(obs.line, format!("{} observance without a readable DTSTART/TZOFFSETFROM/TZOFFSETTO; ignored", obs.name));
                continue;
            };
            let mut onsets = vec![start];
            if let Some(p) = obs.prop("RRULE") {
                match RRule::parse(&p.value) {
                    Ok(rule) => {
                        let to_utc = |l: NaiveDateTime| l.and_utc().timestamp() - i64::from(from);
                        let limits = ics_rrule::Limits { max_occurrences: 2_000, max_iterations: 20_000 };
                        onsets = ics_rrule::expand(&rule, start, horizon, &to_utc, limits).occurrences;
                    }
                    Err(e) => self.warn(p.line, format!("RRULE in VTIMEZONE: {e}; only its DTSTART is used")),
                }
            }
            for p in obs.props("RDATE") {
                onsets.extend(p.value.split(',').filter_map(parse_local));
            }
            for onset in onsets {
                transitions.push((onset.and_utc().timestamp() - i64::from(from), from, to));
            }
        }
        if transitions.is_empty() {
            self.warn(tz.line, "VTIMEZONE without usable observances; its TZID is read as floating");
            return None;
        }
        transitions.sort_unstable();
        transitions.dedup_by_key(|t| t.0);
        let initial = transitions[0].1;
        Some(CustomZone { transitions, initial })
    }

    /// The zone of a property's TZID parameter (or UTC / floating).
    fn base_for(&mut self, prop: &ContentLine) -> TimeBase {
        if prop.value.trim().ends_with(['Z', 'z']) {
            return TimeBase::Utc;
        }
        let Some(tzid) = prop.param("TZID").map(|t| t.trim().trim_matches('"').to_owned()) else { return self.floating.clone() };
        if let Some(z) = known_zone(&tzid) {
            return TimeBase::Iana(z);
        }
        if let Some(c) = self.customs.get(&tzid) {
            return TimeBase::Custom(Arc::clone(c));
        }
        if self.unknown_tzids.insert(tzid.clone()) {
            self.warn(prop.line, format!("TZID {tzid:?} is neither IANA, Windows nor defined by a VTIMEZONE; read as floating ({})", self.provider));
        }
        self.floating.clone()
    }

    /// A DATE or DATE-TIME value of `prop` (one of possibly several).
    fn when(&mut self, prop: &ContentLine, value: &str) -> Option<When> {
        let is_date = prop.param("VALUE").is_some_and(|v| v.eq_ignore_ascii_case("DATE")) || value.trim().len() == 8;
        if is_date {
            return parse_date(value).map(When::Date);
        }
        let v = value.trim();
        let local = parse_local(v.trim_end_matches(['Z', 'z']))?;
        if v.ends_with(['Z', 'z']) {
            return Some(When::Local(local, TimeBase::Utc));
        }
        Some(When::Local(local, self.base_for(prop)))
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
        let rrule = match c.prop("RRULE") {
            None => None,
            Some(p) => match RRule::parse(&p.value) {
                Ok(r) => Some(Box::new(r)),
                Err(e) => {
                    self.warn(p.line, format!("RRULE cannot be read ({e}); event skipped"));
                    return None;
                }
            },
        };
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
        Some(Vevent { line: c.line, uid, summary, start, length, blocks: !transparent && !cancelled, rrule, rdates, exdates, recurrence_id })
    }

    /// Expands this calendar's events: by UID (in UID order), its overrides
    /// as they stand, then its masters around them.
    fn run(&mut self, events: Vec<Vevent>, out: &mut Vec<BusyOccurrence>) {
        // A stable sort keeps each UID's events in the order they were read.
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by(|&a, &b| events[a].uid.cmp(&events[b].uid));
        let (mut masters, mut overrides): (Vec<&Vevent>, Vec<&Vevent>) = (Vec::new(), Vec::new());
        for group in order.chunk_by(|&a, &b| events[a].uid == events[b].uid) {
            masters.clear();
            overrides.clear();
            for e in group.iter().map(|&i| &events[i]) {
                if e.recurrence_id.is_some() { overrides.push(e) } else { masters.push(e) }
            }
            for ov in &overrides {
                self.emit(ov, ov.start.instant(self.provider), &ov.length, ov.blocks, ov.recurrence_id.as_ref().map(|(w, _)| w.instant(self.provider)), out);
            }
            for master in &masters {
                self.expand_master(master, &overrides, out);
            }
            if out.len() > self.limits.max_occurrences {
                out.truncate(self.limits.max_occurrences);
                self.warn(self.cal_line, format!("more than {} busy occurrences; the rest were dropped", self.limits.max_occurrences));
                return;
            }
        }
    }

    /// Every occurrence of a master, minus EXDATEs and overridden ones, with
    /// RANGE=THISANDFUTURE overrides applied to the occurrences they govern.
    fn expand_master(&mut self, e: &Vevent, overrides: &[&Vevent], out: &mut Vec<BusyOccurrence>) {
        let recurring = e.rrule.is_some() || !e.rdates.is_empty();
        // Wall clock of the expansion: a recurring UTC DTSTART follows
        // X-WR-TIMEZONE when the calendar names one (Google).
        let (start_local, base) = match (&e.start, self.wr_zone) {
            (When::Local(l, TimeBase::Utc), Some(z)) if recurring => (z.local_at(TimeBase::Utc.point(*l)), TimeBase::Iana(z)),
            (When::Local(l, b), _) => (*l, b.clone()),
            (When::Date(d), _) => (d.and_time(NaiveTime::MIN), TimeBase::Iana(self.provider)),
        };
        let all_day = matches!(e.start, When::Date(_));
        let provider = self.provider;
        let place = |l: NaiveDateTime| if all_day { When::Date(l.date()).instant(provider) } else { base.point(l) };

        let mut starts: Vec<(Instant, Option<Length>)> = Vec::new();
        match &e.rrule {
            Some(rule) => {
                // Occurrences far past the window are not needed: stop a day
                // past its end on this wall clock (zones differ by < 1 day).
                let window_end = base.local_at(self.to) + Duration::days(2);
                let to_utc = |l: NaiveDateTime| place(l).unix();
                let limits = ics_rrule::Limits { max_occurrences: self.limits.max_occurrences, max_iterations: self.limits.max_iterations };
                let exp = ics_rrule::expand(rule, start_local, window_end, &to_utc, limits);
                if exp.truncated {
                    self.warn(e.line, format!("recurrence of {:?} stopped at a limit; later occurrences are not imported", e.uid));
                }
                starts.extend(exp.occurrences.into_iter().map(|l| (place(l), None)));
            }
            None => starts.push((place(start_local), None)),
        }
        for (w, len) in &e.rdates {
            starts.push((w.instant(self.provider), len.clone()));
        }
        let excluded: HashSet<Instant> = e.exdates.iter().map(|w| w.instant(self.provider)).collect();
        let excluded_dates: HashSet<NaiveDate> =
            e.exdates.iter().filter_map(|w| if let When::Date(d) = w { Some(*d) } else { None }).collect();
        let single: HashSet<Instant> = overrides.iter().filter_map(|o| o.recurrence_id.as_ref().map(|(w, _)| w.instant(self.provider))).collect();
        let mut future: Vec<(Instant, &Vevent)> = overrides
            .iter()
            .filter_map(|o| match &o.recurrence_id {
                Some((w, true)) => Some((w.instant(self.provider), *o)),
                _ => None,
            })
            .collect();
        future.sort_by_key(|(at, _)| *at);

        starts.sort_by_key(|(s, _)| *s);
        starts.dedup_by_key(|(s, _)| *s);
        for (s, len) in starts {
            let local_date = self.provider.date_at(s);
            if excluded.contains(&s) || (!all_day && excluded_dates.contains(&base.local_at(s).date())) || (all_day && excluded_dates.contains(&local_date)) {
                continue;
            }
            if single.contains(&s) {
                continue; // the override stands in its place
            }
            match future.iter().rev().find(|(at, _)| *at <= s) {
                Some((at, ov)) => {
                    let shift = ov.start.instant(self.provider).unix() - at.unix();
                    self.emit(e, s.plus_secs(shift), &ov.length, ov.blocks, Some(s), out);
                }
                None => {
                    let len = len.unwrap_or_else(|| e.length.clone());
                    self.emit(e, s, &len, e.blocks, recurring.then_some(s), out);
                }
            }
        }
    }

    /// Adds one occurrence if it blocks time and overlaps the window.
    fn emit(&self, e: &Vevent, start: Instant, length: &Length, blocks: bool, recurrence_id: Option<Instant>, out: &mut Vec<BusyOccurrence>) {
        if !blocks {
            return;
        }
        let (start, end) = match length {
            Length::Days(n) => {
                let first = self.provider.date_at(start);
                let last = first + Duration::days(n - 1);
                match (self.provider.day(first), self.provider.day(last)) {
                    (Some(a), Some(b)) => (a.start(), b.end()),
                    _ => return,
                }
            }
            Length::Exact(secs) => (start, start.plus_secs(*secs)),
            Length::Nominal(d) => {
                let base = match &e.start {
                    When::Local(_, b) => b.clone(),
                    When::Date(_) => TimeBase::Iana(self.provider),
                };
                let local_end = base.local_at(start) + Duration::days(d.days);
                (start, base.point(local_end).plus_secs(d.secs))
            }
        };
        if end <= start || end <= self.from || start >= self.to {
            return;
        }
        out.push(BusyOccurrence { start, end, uid: e.uid.clone(), summary: e.summary.clone(), recurrence_id });
    }
}

/// `+HHMM`, `-HHMM` or `±HHMMSS` (RFC 5545 §3.3.14) in seconds.
fn parse_offset(v: &str) -> Option<i32> {
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
