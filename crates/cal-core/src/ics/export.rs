//! iCalendar output (SEMANTICS.md §7): the attachment of booking e-mails.
//!
//! One stable `UID` per event and `SEQUENCE` equal to the event's sequence,
//! so Google, Apple and Outlook update the one event in place (RFC 5546
//! §2.1.4). Times are written in UTC (RFC 5545 §3.3.5 form 2), which needs no
//! VTIMEZONE; text is escaped (§3.3.11) and lines are folded at 75 octets on
//! character boundaries (§3.1) with CRLF line ends.

use std::fmt::Write;

use chrono::{Datelike, Timelike};

use crate::time::Instant;

/// What the attachment asks the recipient's calendar to do (RFC 5546).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Booked or rescheduled: add or update the event.
    Request,
    /// Cancelled: remove it.
    Cancel,
}

impl Method {
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Request => "REQUEST",
            Method::Cancel => "CANCEL",
        }
    }
}

/// A person on the invitation (`mailto:` address and optional name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Party {
    pub email: String,
    pub name: Option<String>,
}

/// One booked event as the attachment shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventInvite {
    pub uid: String,
    pub sequence: i32,
    pub start: Instant,
    pub end: Instant,
    pub summary: String,
    pub description: Option<String>,
    pub cancelled: bool,
    pub organizer: Option<Party>,
    pub attendees: Vec<Party>,
}

impl EventInvite {
    /// REQUEST while booked, CANCEL once cancelled.
    pub fn method(&self) -> Method {
        if self.cancelled { Method::Cancel } else { Method::Request }
    }
}

/// The product identifier in every calendar we write.
pub const PRODID: &str = "-//cal-suite//booking calendar//EN";

/// The attachment for one event, stamped `dtstamp` (the time it is sent).
pub fn attachment(event: &EventInvite, dtstamp: Instant) -> String {
    let mut out = String::with_capacity(512);
    calendar_head(&mut out, event.method().as_str());
    write_event(&mut out, event, dtstamp);
    line(&mut out, "END:VCALENDAR");
    out
}

/// The personal feed (SEMANTICS.md §7): one VCALENDAR with `METHOD:PUBLISH`
/// (RFC 5546 §3.2.1: a snapshot to subscribe to, no replies expected), the
/// calendar's name (`X-WR-CALNAME`, read by Apple, Google and Outlook, and
/// RFC 7986 `NAME`) and one VEVENT per event, appended to `out` in one pass.
///
/// The name is escaped as TEXT (RFC 5545 §3.8.8.2), yet common readers
/// (Python icalendar, ical.js) return an X- property's value raw: a name
/// without `\\ ; ,` reads back the same everywhere.
///
/// `out` never grows while this runs if it has room for
/// [`feed_capacity`] more bytes; [`feed_body`] sizes it so.
pub fn feed<'a>(
    out: &mut String,
    calendar_name: &str,
    events: impl IntoIterator<Item = &'a EventInvite>,
    dtstamp: Instant,
) {
    calendar_head(out, "PUBLISH");
    for name in ["X-WR-CALNAME:", "NAME:"] {
        let mut l = Folded::start(out, name);
        write_escaped(&mut l, calendar_name);
        l.end();
    }
    for event in events {
        write_event(out, event, dtstamp);
    }
    line(out, "END:VCALENDAR");
}

/// The feed of `events` in a `String` allocated once, at its final size
/// (see [`feed_capacity`]): a large feed is never copied while it is written.
pub fn feed_body(calendar_name: &str, events: &[EventInvite], dtstamp: Instant) -> String {
    let mut out = String::with_capacity(feed_capacity(calendar_name, events, dtstamp));
    feed(&mut out, calendar_name, events, dtstamp);
    out
}

/// An upper bound on the bytes [`feed`] writes for `events`, tight for
/// ordinary text: every line is bounded by its escaped length (each escaped
/// byte at most doubles) plus the worst folding (a fold at least every 71
/// octets, 3 octets each) and its CRLF; exact for numbers and times. Reads
/// only the lengths (and the bytes that escaping doubles) of the events' text,
/// never formats anything.
pub fn feed_capacity<'a>(
    calendar_name: &str,
    events: impl IntoIterator<Item = &'a EventInvite>,
    dtstamp: Instant,
) -> usize {
    let head = [
        "BEGIN:VCALENDAR".len(),
        "PRODID:".len() + PRODID.len(),
        "VERSION:2.0".len(),
        "CALSCALE:GREGORIAN".len(),
        "METHOD:PUBLISH".len(),
        "END:VCALENDAR".len(),
    ]
    .into_iter()
    .map(folded_bound)
    .sum::<usize>();
    let name = folded_bound("X-WR-CALNAME:".len() + escaped_bound(calendar_name))
        + folded_bound("NAME:".len() + escaped_bound(calendar_name));
    let stamp = utc_len(dtstamp);
    head + name + events.into_iter().map(|e| event_bound(e, stamp)).sum::<usize>()
}

/// BEGIN:VCALENDAR through METHOD.
fn calendar_head(out: &mut String, method: &str) {
    line(out, "BEGIN:VCALENDAR");
    let mut l = Folded::start(out, "PRODID:");
    let _ = l.write_str(PRODID);
    l.end();
    line(out, "VERSION:2.0");
    line(out, "CALSCALE:GREGORIAN");
    let mut l = Folded::start(out, "METHOD:");
    let _ = l.write_str(method);
    l.end();
}

/// Appends one VEVENT (shared by attachments and the personal feed), straight
/// into `out`: no line is built apart first.
pub fn write_event(out: &mut String, event: &EventInvite, dtstamp: Instant) {
    line(out, "BEGIN:VEVENT");
    let mut l = Folded::start(out, "UID:");
    write_escaped(&mut l, &event.uid);
    l.end();
    let mut l = Folded::start(out, "SEQUENCE:");
    let _ = write!(l, "{}", event.sequence.max(0));
    l.end();
    for (name, t) in [("DTSTAMP:", dtstamp), ("DTSTART:", event.start), ("DTEND:", event.end)] {
        let mut l = Folded::start(out, name);
        write_utc(&mut l, t);
        l.end();
    }
    let mut l = Folded::start(out, "SUMMARY:");
    write_escaped(&mut l, &event.summary);
    l.end();
    if let Some(d) = &event.description {
        let mut l = Folded::start(out, "DESCRIPTION:");
        write_escaped(&mut l, d);
        l.end();
    }
    line(out, if event.cancelled { "STATUS:CANCELLED" } else { "STATUS:CONFIRMED" });
    line(out, "TRANSP:OPAQUE");
    if let Some(o) = &event.organizer {
        let mut l = Folded::start(out, "ORGANIZER");
        write_cn(&mut l, o);
        let _ = l.write_str(":mailto:");
        let _ = l.write_str(&o.email);
        l.end();
    }
    for a in &event.attendees {
        let mut l = Folded::start(out, "ATTENDEE");
        write_cn(&mut l, a);
        let _ = l.write_str(";ROLE=REQ-PARTICIPANT;RSVP=FALSE:mailto:");
        let _ = l.write_str(&a.email);
        l.end();
    }
    line(out, "END:VEVENT");
}

/// The most [`write_event`] can write for `event` (see [`feed_capacity`]).
fn event_bound(event: &EventInvite, stamp_len: usize) -> usize {
    let party = |p: &Party| cn_bound(p) + ":mailto:".len() + p.email.len();
    folded_bound("BEGIN:VEVENT".len())
        + folded_bound("UID:".len() + escaped_bound(&event.uid))
        + folded_bound("SEQUENCE:".len() + digits(event.sequence.max(0).unsigned_abs()))
        + folded_bound("DTSTAMP:".len() + stamp_len)
        + folded_bound("DTSTART:".len() + utc_len(event.start))
        + folded_bound("DTEND:".len() + utc_len(event.end))
        + folded_bound("SUMMARY:".len() + escaped_bound(&event.summary))
        + event.description.as_deref().map_or(0, |d| folded_bound("DESCRIPTION:".len() + escaped_bound(d)))
        + folded_bound("STATUS:CANCELLED".len())
        + folded_bound("TRANSP:OPAQUE".len())
        + event.organizer.as_ref().map_or(0, |o| folded_bound("ORGANIZER".len() + party(o)))
        + event
            .attendees
            .iter()
            .map(|a| folded_bound("ATTENDEE;ROLE=REQ-PARTICIPANT;RSVP=FALSE".len() + party(a)))
            .sum::<usize>()
        + folded_bound("END:VEVENT".len())
}

/// Decimal digits of `n`.
const fn digits(n: u32) -> usize {
    if n == 0 { 1 } else { n.ilog10() as usize + 1 }
}

/// Octets of [`utc`]`(t)`: 16 for years 0000–9999; chrono's `+YYYYY` form
/// beyond is bounded by 20.
fn utc_len(t: Instant) -> usize {
    const YEAR_0: i64 = -62_167_219_200; // 0000-01-01T00:00:00Z
    const YEAR_10000: i64 = 253_402_300_800; // 10000-01-01T00:00:00Z
    if (YEAR_0..YEAR_10000).contains(&t.unix()) { 16 } else { 20 }
}

/// A content line of `n` octets once folded, CRLF included: a fold comes at
/// the latest after 75 octets (74 on continuation lines), at worst 3 early
/// to keep a UTF-8 character whole, and adds CRLF + space.
const fn folded_bound(n: usize) -> usize {
    n + 3 * (n / 71) + 2
}

/// At least the length of [`escape`]`(text)`: only `\ ; , CR LF` grow.
fn escaped_bound(text: &str) -> usize {
    text.len() + text.bytes().filter(|b| matches!(b, b'\\' | b';' | b',' | b'\r' | b'\n')).count()
}

fn cn_bound(p: &Party) -> usize {
    p.name.as_ref().map_or(0, |n| ";CN=\"\"".len() + n.len())
}

/// `;CN="…"` for a named party (quoted: names may hold `,;:`; `"` cannot be
/// quoted in a parameter value, RFC 5545 §3.2, so it is dropped).
fn write_cn(w: &mut impl Write, p: &Party) {
    let Some(name) = &p.name else { return };
    let _ = w.write_str(";CN=\"");
    for part in name.split(['"', '\r', '\n']) {
        let _ = w.write_str(part);
    }
    let _ = w.write_str("\"");
}

/// An instant as `YYYYMMDDTHHMMSSZ`.
pub fn utc(t: Instant) -> String {
    let mut out = String::with_capacity(16);
    write_utc(&mut out, t);
    out
}

/// [`utc`] without a `String` of its own: the digits go straight to `w`.
fn write_utc(w: &mut impl Write, t: Instant) {
    let dt = t.to_chrono();
    let year = dt.year();
    if !(0..=9999).contains(&year) {
        let _ = write!(w, "{}", dt.format("%Y%m%dT%H%M%SZ"));
        return;
    }
    let mut buf = *b"00000000T000000Z";
    let mut put = |at: usize, width: usize, mut v: u32| {
        for i in (at..at + width).rev() {
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, year as u32);
    put(4, 2, dt.month());
    put(6, 2, dt.day());
    put(9, 2, dt.hour());
    put(11, 2, dt.minute());
    put(13, 2, dt.second());
    let _ = w.write_str(std::str::from_utf8(&buf).expect("ASCII digits"));
}

/// TEXT escaping (RFC 5545 §3.3.11): backslash, semicolon, comma, newline.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    write_escaped(&mut out, text);
    out
}

/// [`escape`] into `w`: runs of plain text are written whole.
fn write_escaped(w: &mut impl Write, text: &str) {
    let mut plain = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let replacement = match c {
            '\\' => "\\\\",
            ';' => "\\;",
            ',' => "\\,",
            '\r' if chars.peek().is_some_and(|&(_, next)| next == '\n') => "",
            '\n' | '\r' => "\\n",
            c if c.is_control() => "",
            _ => continue,
        };
        let _ = w.write_str(&text[plain..i]);
        let _ = w.write_str(replacement);
        plain = i + c.len_utf8();
    }
    let _ = w.write_str(&text[plain..]);
}

/// Appends a content line folded at 75 octets without splitting a UTF-8
/// character; continuation lines start with one space (RFC 5545 §3.1).
pub fn line(out: &mut String, content: &str) {
    let mut l = Folded::new(out);
    let _ = l.write_str(content);
    l.end();
}

/// One content line being written: text appended through it is folded as it
/// arrives (RFC 5545 §3.1), so a line's parts need not be joined first.
struct Folded<'a> {
    out: &'a mut String,
    /// Octets on the current physical line.
    used: usize,
    /// Octets it may hold: 75, or 74 after the leading space of a continuation.
    budget: usize,
}

impl<'a> Folded<'a> {
    fn new(out: &'a mut String) -> Self {
        Folded { out, used: 0, budget: 75 }
    }

    /// A line starting with `name` (and whatever parameters follow it).
    fn start(out: &'a mut String, name: &str) -> Self {
        let mut l = Folded::new(out);
        let _ = l.write_str(name);
        l
    }

    fn end(self) {
        self.out.push_str("\r\n");
    }
}

impl Write for Folded<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.used + s.len() <= self.budget {
            self.out.push_str(s);
            self.used += s.len();
            return Ok(());
        }
        for c in s.chars() {
            let n = c.len_utf8();
            if self.used + n > self.budget {
                self.out.push_str("\r\n ");
                self.used = 0;
                self.budget = 74; // the leading space counts
            }
            self.out.push(c);
            self.used += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite() -> EventInvite {
        EventInvite {
            uid: "ev_1@cal".into(),
            sequence: 2,
            start: Instant::parse("2026-03-02T14:00:00Z").unwrap(),
            end: Instant::parse("2026-03-02T15:00:00Z").unwrap(),
            summary: "Shoot; studio 2, \\ floor".into(),
            description: Some("line one\nline two".into()),
            cancelled: false,
            organizer: Some(Party { email: "p@example.com".into(), name: Some("Ana, \"Photo\"".into()) }),
            attendees: vec![Party { email: "c@example.com".into(), name: None }],
        }
    }

    #[test]
    fn attachment_has_method_uid_sequence_and_utc_times() {
        let text = attachment(&invite(), Instant::parse("2026-03-01T12:00:00Z").unwrap());
        assert!(text.starts_with("BEGIN:VCALENDAR\r\nPRODID:"));
        for want in [
            "METHOD:REQUEST\r\n",
            "UID:ev_1@cal\r\n",
            "SEQUENCE:2\r\n",
            "DTSTAMP:20260301T120000Z\r\n",
            "DTSTART:20260302T140000Z\r\n",
            "DTEND:20260302T150000Z\r\n",
            "SUMMARY:Shoot\\; studio 2\\, \\\\ floor\r\n",
            "DESCRIPTION:line one\\nline two\r\n",
            "STATUS:CONFIRMED\r\n",
            "ORGANIZER;CN=\"Ana, Photo\":mailto:p@example.com\r\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert!(text.ends_with("END:VCALENDAR\r\n"));
        assert!(!text.replace("\r\n", "").contains('\n'), "only CRLF line ends");
        let mut cancelled = invite();
        cancelled.cancelled = true;
        let text = attachment(&cancelled, Instant::parse("2026-03-01T12:00:00Z").unwrap());
        assert!(text.contains("METHOD:CANCEL\r\n") && text.contains("STATUS:CANCELLED\r\n"));
    }

    #[test]
    fn long_lines_fold_at_75_octets_on_character_boundaries() {
        let mut out = String::new();
        let content = format!("SUMMARY:{}", "é".repeat(60));
        line(&mut out, &content);
        for l in out.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(l.len() <= 75, "{} octets: {l:?}", l.len());
        }
        let unfolded = out.trim_end_matches("\r\n").replace("\r\n ", "");
        assert_eq!(unfolded, content);
    }

    #[test]
    fn feed_publishes_every_event_with_the_calendar_name() {
        let mut second = invite();
        second.uid = "ev_2@cal".into();
        second.sequence = 0;
        let stamp = Instant::parse("2026-03-01T00:00:00Z").unwrap();
        let body = feed_body("Ana's bookings, studio", &[invite(), second], stamp);
        assert!(body.starts_with("BEGIN:VCALENDAR\r\nPRODID:-//cal-suite//booking calendar//EN\r\nVERSION:2.0\r\n"));
        for want in [
            "METHOD:PUBLISH\r\n",
            "X-WR-CALNAME:Ana's bookings\\, studio\r\n",
            "NAME:Ana's bookings\\, studio\r\n",
            "UID:ev_1@cal\r\nSEQUENCE:2\r\n",
            "UID:ev_2@cal\r\nSEQUENCE:0\r\n",
        ] {
            assert!(body.contains(want), "missing {want:?} in\n{body}");
        }
        assert_eq!(body.matches("BEGIN:VEVENT\r\n").count(), 2);
        assert!(body.ends_with("END:VEVENT\r\nEND:VCALENDAR\r\n"));
        let empty = feed_body("x", &[], stamp);
        assert!(!empty.contains("VEVENT") && empty.ends_with("END:VCALENDAR\r\n"));
    }

    #[test]
    fn utc_writes_four_digit_years_and_falls_back_beyond() {
        assert_eq!(utc(Instant::parse("0999-01-02T03:04:05Z").unwrap()), "09990102T030405Z");
        assert_eq!(utc(Instant::parse("2026-12-31T23:59:59Z").unwrap()), "20261231T235959Z");
        let far = Instant::from_unix(Instant::parse("9999-12-31T23:59:59Z").unwrap().unix() + 1);
        assert_eq!(utc(far), far.to_chrono().format("%Y%m%dT%H%M%SZ").to_string());
    }

    /// The writer before it streamed into the output: each line formatted on
    /// its own, then folded. The streaming one must write the same octets.
    mod reference {
        use super::super::{EventInvite, Instant, Party, escape};

        fn line(out: &mut String, content: &str) {
            let mut budget = 75;
            let mut used = 0;
            for c in content.chars() {
                let n = c.len_utf8();
                if used + n > budget {
                    out.push_str("\r\n ");
                    used = 0;
                    budget = 74;
                }
                out.push(c);
                used += n;
            }
            out.push_str("\r\n");
        }

        fn utc(t: Instant) -> String {
            t.to_chrono().format("%Y%m%dT%H%M%SZ").to_string()
        }

        fn cn(p: &Party) -> String {
            p.name.as_ref().map(|n| format!(";CN=\"{}\"", n.replace(['"', '\r', '\n'], ""))).unwrap_or_default()
        }

        pub fn write_event(out: &mut String, event: &EventInvite, dtstamp: Instant) {
            line(out, "BEGIN:VEVENT");
            line(out, &format!("UID:{}", escape(&event.uid)));
            line(out, &format!("SEQUENCE:{}", event.sequence.max(0)));
            line(out, &format!("DTSTAMP:{}", utc(dtstamp)));
            line(out, &format!("DTSTART:{}", utc(event.start)));
            line(out, &format!("DTEND:{}", utc(event.end)));
            line(out, &format!("SUMMARY:{}", escape(&event.summary)));
            if let Some(d) = &event.description {
                line(out, &format!("DESCRIPTION:{}", escape(d)));
            }
            line(out, &format!("STATUS:{}", if event.cancelled { "CANCELLED" } else { "CONFIRMED" }));
            line(out, "TRANSP:OPAQUE");
            if let Some(o) = &event.organizer {
                line(out, &format!("ORGANIZER{}:mailto:{}", cn(o), o.email));
            }
            for a in &event.attendees {
                line(out, &format!("ATTENDEE{};ROLE=REQ-PARTICIPANT;RSVP=FALSE:mailto:{}", cn(a), a.email));
            }
            line(out, "END:VEVENT");
        }

        pub fn escape_chars(text: &str) -> String {
            let mut out = String::with_capacity(text.len());
            let mut chars = text.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    ';' => out.push_str("\\;"),
                    ',' => out.push_str("\\,"),
                    '\r' if chars.peek() == Some(&'\n') => {}
                    '\n' | '\r' => out.push_str("\\n"),
                    c if c.is_control() => {}
                    c => out.push(c),
                }
            }
            out
        }
    }

    fn text() -> impl Strategy<Value = String> {
        // Plain, multi-byte, escaped and control characters, long enough to fold.
        proptest::string::string_regex("([a-zé€😀 ,;:\\\\\"]|\r\n|\r|\n|\t){0,200}").unwrap()
    }

    fn party() -> impl Strategy<Value = Party> {
        (text(), proptest::option::of(text())).prop_map(|(email, name)| Party { email, name })
    }

    fn any_invite() -> impl Strategy<Value = EventInvite> {
        (
            text(),
            -3i32..100_000,
            prop_oneof![
                0i64..4_000_000_000,
                // Around year 0 and year 10000, where the time's width changes.
                -62_167_219_300i64..-62_167_219_100,
                253_402_300_700i64..253_402_300_900,
            ],
            1i64..100_000,
            text(),
            proptest::option::of(text()),
            any::<bool>(),
            proptest::option::of(party()),
            proptest::collection::vec(party(), 0..3),
        )
            .prop_map(|(uid, sequence, start, len, summary, description, cancelled, organizer, attendees)| EventInvite {
                uid,
                sequence,
                start: Instant::from_unix(start),
                end: Instant::from_unix(start + len),
                summary,
                description,
                cancelled,
                organizer,
                attendees,
            })
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn streaming_writes_what_the_line_by_line_writer_wrote(event in any_invite(), stamp in 0i64..4_000_000_000) {
            let (mut new, mut old) = (String::new(), String::new());
            write_event(&mut new, &event, Instant::from_unix(stamp));
            reference::write_event(&mut old, &event, Instant::from_unix(stamp));
            prop_assert_eq!(new, old);
        }

        #[test]
        fn escape_is_unchanged(s in text()) {
            prop_assert_eq!(escape(&s), reference::escape_chars(&s));
        }

        #[test]
        fn the_feed_fits_its_capacity_bound(
            name in text(),
            events in proptest::collection::vec(any_invite(), 0..8),
            stamp in prop_oneof![Just(1_772_323_200i64), Just(253_402_300_800i64), Just(-62_167_219_201i64)],
        ) {
            let stamp = Instant::from_unix(stamp);
            let bound = feed_capacity(&name, &events, stamp);
            let body = feed_body(&name, &events, stamp);
            prop_assert!(body.len() <= bound, "{} > {}", body.len(), bound);
            // Allocated once: the string never had to grow.
            prop_assert_eq!(body.capacity(), bound);
        }
    }

    #[test]
    fn the_capacity_bound_is_exact_for_ordinary_bookings() {
        let events: Vec<EventInvite> = (0..1000)
            .map(|i| EventInvite {
                uid: format!("ev_{i:032x}@cal-suite"),
                sequence: i % 3,
                start: Instant::from_unix(1_800_000_000 + i as i64 * 7200),
                end: Instant::from_unix(1_800_003_600 + i as i64 * 7200),
                summary: "Booking (photographer)".into(),
                description: None,
                cancelled: false,
                organizer: None,
                attendees: Vec::new(),
            })
            .collect();
        let body = feed_body("Bookings", &events, Instant::from_unix(1_800_000_000));
        // Short ASCII lines: nothing to escape or fold, so nothing to spare.
        assert_eq!(body.capacity(), body.len());
    }
}
