//! ICS import (SEMANTICS.md §6): real-shaped calendars from Google, Outlook
//! and Apple, recurrence with overrides, zones, all-day and floating times,
//! and the rejections and repairs. Expected instants are worked out by hand
//! and compared as RFC 3339 strings.

use cal_core::Zone;
use cal_core::ics::import::{ImportLimits, Imported, Rejection, import};
use cal_core::time::Instant;

fn at(s: &str) -> Instant {
    Instant::parse(s).unwrap()
}

fn run(body: &str, zone: &str) -> Imported {
    run_in(body, zone, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")
}

fn run_in(body: &str, zone: &str, from: &str, to: &str) -> Imported {
    import(body.as_bytes(), Zone::parse(zone).unwrap(), at(from), at(to), ImportLimits::default()).unwrap_or_else(|e| panic!("rejected: {e}"))
}

/// January 2025, the window of the cases in SEMANTICS.md §6's last bullets.
fn january_2025(body: &str, zone: &str) -> Imported {
    run_in(body, zone, "2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z")
}

fn spans(i: &Imported) -> Vec<String> {
    i.busy.iter().map(|b| format!("{}/{}", b.start, b.end)).collect()
}

fn cal(inner: &str) -> String {
    format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n{inner}END:VCALENDAR\r\n")
}

#[test]
fn google_utc_recurrence_follows_x_wr_timezone_across_dst() {
    // Mondays 09:00 Berlin stored in UTC; after 2026-03-29 Berlin is +02:00.
    let body = cal(
        "X-WR-TIMEZONE:Europe/Berlin\r\nBEGIN:VEVENT\r\nUID:g1@google.com\r\nDTSTART:20260316T080000Z\r\n\
         DTEND:20260316T090000Z\r\nRRULE:FREQ=WEEKLY;COUNT=4\r\nSUMMARY:Standup\r\nEND:VEVENT\r\n",
    );
    let i = run(&body, "UTC");
    assert_eq!(
        spans(&i),
        [
            "2026-03-16T08:00:00Z/2026-03-16T09:00:00Z",
            "2026-03-23T08:00:00Z/2026-03-23T09:00:00Z",
            "2026-03-30T07:00:00Z/2026-03-30T08:00:00Z",
            "2026-04-06T07:00:00Z/2026-04-06T08:00:00Z",
        ]
    );
    assert!(i.warnings.is_empty(), "{:?}", i.warnings);
}

const OUTLOOK_TZ: &str = "BEGIN:VTIMEZONE\r\nTZID:W. Europe Standard Time\r\nBEGIN:STANDARD\r\nDTSTART:16010101T030000\r\n\
    TZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nRRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\n\
    BEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n\
    RRULE:FREQ=YEARLY;INTERVAL=1;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n";

#[test]
fn outlook_windows_tzid_maps_through_cldr() {
    let body = cal(&format!(
        "{OUTLOOK_TZ}BEGIN:VEVENT\r\nUID:o1\r\nDTSTART;TZID=W. Europe Standard Time:20261023T100000\r\n\
         DTEND;TZID=W. Europe Standard Time:20261023T110000\r\nRRULE:FREQ=DAILY;COUNT=4\r\nSUMMARY:Review\r\nEND:VEVENT\r\n"
    ));
    assert_eq!(
        spans(&run(&body, "UTC")),
        [
            "2026-10-23T08:00:00Z/2026-10-23T09:00:00Z",
            "2026-10-24T08:00:00Z/2026-10-24T09:00:00Z",
            "2026-10-25T09:00:00Z/2026-10-25T10:00:00Z",
            "2026-10-26T09:00:00Z/2026-10-26T10:00:00Z",
        ]
    );
}

#[test]
fn a_custom_vtimezone_is_used_with_the_point_rule() {
    // Berlin's rules under a name no database knows.
    let tz = OUTLOOK_TZ.replace("W. Europe Standard Time", "My Office");
    let body = cal(&format!(
        "{tz}BEGIN:VEVENT\r\nUID:c1\r\nDTSTART;TZID=My Office:20260329T023000\r\nDURATION:PT30M\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:c2\r\nDTSTART;TZID=\"My Office\":20261025T023000\r\nDURATION:PT30M\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:c3\r\nDTSTART;TZID=My Office:20260701T120000\r\nDURATION:PT1H\r\nEND:VEVENT\r\n"
    ));
    assert_eq!(
        spans(&run(&body, "UTC")),
        [
            // 02:30 does not exist on 03-29: the offset before the gap (+01:00).
            "2026-03-29T01:30:00Z/2026-03-29T02:00:00Z",
            "2026-07-01T10:00:00Z/2026-07-01T11:00:00Z",
            // 02:30 happens twice on 10-25: the first (+02:00).
            "2026-10-25T00:30:00Z/2026-10-25T01:00:00Z",
        ]
    );
}

#[test]
fn all_day_events_block_whole_local_days_and_floating_times_use_the_provider_zone() {
    let body = cal(
        "BEGIN:VEVENT\r\nUID:a1\r\nDTSTART;VALUE=DATE:20260308\r\nDTEND;VALUE=DATE:20260309\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:a2\r\nDTSTART;VALUE=DATE:20260312\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:f1\r\nDTSTART:20260310T090000\r\nDTEND:20260310T100000\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:z1\r\nDTSTART:20260311T090000Z\r\nEND:VEVENT\r\n",
    );
    assert_eq!(
        spans(&run(&body, "America/New_York")),
        [
            // The spring-forward day is 23 hours long.
            "2026-03-08T05:00:00Z/2026-03-09T04:00:00Z",
            "2026-03-10T13:00:00Z/2026-03-10T14:00:00Z",
            // A DATE without DTEND lasts one day; a DATE-TIME without one blocks nothing.
            "2026-03-12T04:00:00Z/2026-03-13T04:00:00Z",
        ]
    );
}

#[test]
fn every_occurrence_lasts_the_first_instances_exact_duration_but_days_are_nominal() {
    let body = cal(
        // 00:00–04:00 on the spring-forward day is 3 hours; every occurrence lasts 3 hours.
        "BEGIN:VEVENT\r\nUID:d1\r\nDTSTART;TZID=America/New_York:20260308T000000\r\n\
         DTEND;TZID=America/New_York:20260308T040000\r\nRRULE:FREQ=DAILY;COUNT=2\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:d2\r\nDTSTART;TZID=America/New_York:20260307T120000\r\nDURATION:P1D\r\nEND:VEVENT\r\n",
    );
    assert_eq!(
        spans(&run(&body, "UTC")),
        [
            // P1D from Sat 12:00 EST ends Sun 12:00 EDT: 23 hours.
            "2026-03-07T17:00:00Z/2026-03-08T16:00:00Z",
            "2026-03-08T05:00:00Z/2026-03-08T08:00:00Z",
            "2026-03-09T04:00:00Z/2026-03-09T07:00:00Z",
        ]
    );
}

#[test]
fn overrides_exdates_rdates_and_what_does_not_block() {
    let body = cal(
        "BEGIN:VEVENT\r\nUID:w1\r\nDTSTART:20260302T100000Z\r\nDTEND:20260302T110000Z\r\nRRULE:FREQ=WEEKLY;COUNT=5\r\n\
         EXDATE:20260316T100000Z\r\nRDATE:20260305T150000Z\r\nSUMMARY:Weekly\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:w1\r\nRECURRENCE-ID:20260309T100000Z\r\nDTSTART:20260310T140000Z\r\nDTEND:20260310T143000Z\r\n\
         SUMMARY:Moved\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:w1\r\nRECURRENCE-ID:20260323T100000Z\r\nDTSTART:20260323T100000Z\r\nDTEND:20260323T110000Z\r\n\
         STATUS:CANCELLED\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:t1\r\nDTSTART:20260304T100000Z\r\nDTEND:20260304T110000Z\r\nTRANSP:TRANSPARENT\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:x1\r\nDTSTART:20260306T100000Z\r\nDTEND:20260306T110000Z\r\nSTATUS:CANCELLED\r\nEND:VEVENT\r\n",
    );
    let i = run(&body, "UTC");
    assert_eq!(
        spans(&i),
        [
            "2026-03-02T10:00:00Z/2026-03-02T11:00:00Z",
            "2026-03-05T15:00:00Z/2026-03-05T16:00:00Z",
            "2026-03-10T14:00:00Z/2026-03-10T14:30:00Z",
            "2026-03-30T10:00:00Z/2026-03-30T11:00:00Z",
        ]
    );
    let moved = &i.busy[2];
    assert_eq!((moved.summary.as_str(), moved.recurrence_id), ("Moved", Some(at("2026-03-09T10:00:00Z"))));
}

#[test]
fn this_and_future_overrides_move_the_rest_of_the_series() {
    let body = cal(
        "BEGIN:VEVENT\r\nUID:r1\r\nDTSTART:20260302T100000Z\r\nDTEND:20260302T110000Z\r\nRRULE:FREQ=DAILY;COUNT=5\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:r1\r\nRECURRENCE-ID;RANGE=THISANDFUTURE:20260304T100000Z\r\nDTSTART:20260304T120000Z\r\n\
         DTEND:20260304T123000Z\r\nEND:VEVENT\r\n",
    );
    assert_eq!(
        spans(&run(&body, "UTC")),
        [
            "2026-03-02T10:00:00Z/2026-03-02T11:00:00Z",
            "2026-03-03T10:00:00Z/2026-03-03T11:00:00Z",
            "2026-03-04T12:00:00Z/2026-03-04T12:30:00Z",
            "2026-03-05T12:00:00Z/2026-03-05T12:30:00Z",
            "2026-03-06T12:00:00Z/2026-03-06T12:30:00Z",
        ]
    );
}

#[test]
fn faults_inside_a_valid_calendar_are_repaired_or_skipped_with_their_line() {
    let body = "BEGIN:VCALENDAR\nVERSION:2.0\n\
        BEGIN:VEVENT\nUID:ok\nDTSTART;TZID=Mars/Olympus:20260302T100000\nDTEND;TZID=Mars/Olympus:20260302T110000\nSUMMARY:Long\n  folded\nEND:VEVENT\n\
        BEGIN:VEVENT\nUID:swap\nDTSTART:20260303T110000Z\nDTEND:20260303T100000Z\nEND:VEVENT\n\
        BEGIN:VEVENT\nUID:bad-start\nDTSTART:2026-03-04 10:00\nDTEND:20260304T110000Z\nEND:VEVENT\n\
        BEGIN:VEVENT\nUID:bad-rule\nDTSTART:20260305T100000Z\nDTEND:20260305T110000Z\nRRULE:FREQ=FORTNIGHTLY\nEND:VEVENT\n\
        END:VCALENDAR\n";
    let i = run(body, "Europe/Berlin");
    // The unknown TZID is floating in Berlin (+01:00); the inverted one is swapped.
    assert_eq!(spans(&i), ["2026-03-02T09:00:00Z/2026-03-02T10:00:00Z", "2026-03-03T10:00:00Z/2026-03-03T11:00:00Z"]);
    assert_eq!(i.busy[0].summary, "Long folded");
    let lines: Vec<usize> = i.warnings.iter().map(|w| w.line).collect();
    assert_eq!(lines, [5, 13, 17, 24], "{:#?}", i.warnings);
    assert!(i.warnings[0].message.contains("Mars/Olympus"));
    assert!(i.warnings[1].message.contains("swapped"));
    assert!(i.warnings[2].message.contains("DTSTART"));
    assert!(i.warnings[3].message.contains("RRULE"));
}

#[test]
fn bodies_that_are_not_calendars_are_rejected_with_their_line() {
    let zone = Zone::UTC;
    let (from, to) = (at("2026-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z"));
    let try_import = |b: &[u8]| import(b, zone, from, to, ImportLimits::default()).unwrap_err();
    assert_eq!(try_import(b""), Rejection::Empty);
    assert_eq!(try_import(b"\n\n<!DOCTYPE html><html>").line(), Some(3));
    assert!(matches!(try_import(b"<html><body>Sign in</body></html>"), Rejection::NotCalendar { line: 1, .. }));
    assert!(matches!(try_import(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Rejection::Binary { .. }));
    let truncated = try_import(b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART:20260302T100000Z\r\n");
    assert_eq!(truncated, Rejection::Truncated { line: 4, open: "VCALENDAR".into() });
    assert!(truncated.to_string().starts_with("line 4: truncated"));
    let mismatched = try_import(b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VCALENDAR\r\n");
    assert!(matches!(mismatched, Rejection::Mismatched { line: 3, .. }));
    // Non-UTF-8 bytes are not a reason to fail.
    let latin1 = b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:l\r\nSUMMARY:Caf\xe9\r\nDTSTART:20260302T100000Z\r\nDURATION:PT1H\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let ok = import(latin1, zone, from, to, ImportLimits::default()).unwrap();
    assert_eq!(ok.busy.len(), 1);
}

#[test]
fn limits_refuse_oversized_calendars_and_stop_hostile_rules() {
    let small = ImportLimits { max_bytes: 100, ..ImportLimits::default() };
    let body = cal("BEGIN:VEVENT\r\nUID:a\r\nDTSTART:20260302T100000Z\r\nDURATION:PT1H\r\nEND:VEVENT\r\n");
    let e = import(body.as_bytes(), Zone::UTC, at("2026-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z"), small).unwrap_err();
    assert!(matches!(e, Rejection::TooLarge { max: 100, .. }), "{e}");
    let few = ImportLimits { max_events: 1, ..ImportLimits::default() };
    let two = cal(&"BEGIN:VEVENT\r\nUID:a\r\nDTSTART:20260302T100000Z\r\nDURATION:PT1H\r\nEND:VEVENT\r\n".repeat(2));
    let e = import(two.as_bytes(), Zone::UTC, at("2026-01-01T00:00:00Z"), at("2027-01-01T00:00:00Z"), few).unwrap_err();
    assert_eq!(e.to_string(), "2 events, over the limit of 1");
    // Every second since 1970, with no end: bounded, and said so.
    let hostile = cal("BEGIN:VEVENT\r\nUID:h\r\nDTSTART:19700101T000000Z\r\nDURATION:PT1S\r\nRRULE:FREQ=SECONDLY\r\nEND:VEVENT\r\n");
    let i = run(&hostile, "UTC");
    assert!(i.busy.is_empty());
    assert!(i.warnings.iter().any(|w| w.message.contains("limit")), "{:?}", i.warnings);
}

// ---------------------------------------------------------------------------
// SEMANTICS.md §6, its last six bullets: versions of one event, deleted
// overrides, all-day recurrence ids, several RRULEs, DATE observances and
// blank lines inside a fold.

#[test]
fn blank_lines_inside_a_folded_property_are_skipped_when_unfolding() {
    // The brief's case: DTSTART, a blank line, then its folded value.
    let body = cal("BEGIN:VEVENT\r\nUID:fold@x\r\nDTSTART\r\n\r\n :20250110T100000Z\r\nDURATION:PT1H\r\nEND:VEVENT\r\n");
    let i = january_2025(&body, "UTC");
    assert_eq!(spans(&i), ["2025-01-10T10:00:00Z/2025-01-10T11:00:00Z"]);
    assert!(i.warnings.is_empty(), "{:?}", i.warnings);
    // Several blank lines (LF and CRLF), a fold inside the value, and a blank
    // line before END: the event is whole and later lines keep their numbers.
    let body = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:f2\r\nSUMMARY:Plan\r\n\n\r\n ning\r\n\
        DTSTART:2025011\r\n\r\n 3T080000Z\r\nDTEND;TZID=Mars/Olympus:20250113T090000\r\n\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let i = january_2025(body, "UTC");
    assert_eq!(spans(&i), ["2025-01-13T08:00:00Z/2025-01-13T09:00:00Z"]);
    assert_eq!(i.busy[0].summary, "Planning");
    assert_eq!(i.warnings.iter().map(|w| w.line).collect::<Vec<_>>(), [11], "{:?}", i.warnings);
}

#[test]
fn a_vtimezone_observance_whose_dtstart_is_a_date_starts_at_its_midnight() {
    // The brief's case: a fixed +05:30 zone whose only observance is a DATE.
    let body = cal(
        "BEGIN:VTIMEZONE\r\nTZID:Fixed+0530\r\nBEGIN:STANDARD\r\nDTSTART;VALUE=DATE:19700101\r\nTZOFFSETFROM:+0530\r\n\
         TZOFFSETTO:+0530\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n\
         BEGIN:VEVENT\r\nUID:tz@x\r\nDTSTART;TZID=Fixed+0530:20250110T100000\r\nDTEND;TZID=Fixed+0530:20250110T110000\r\nEND:VEVENT\r\n",
    );
    for zone in ["UTC", "America/New_York"] {
        let i = january_2025(&body, zone);
        assert_eq!(spans(&i), ["2025-01-10T04:30:00Z/2025-01-10T05:30:00Z"], "{zone}");
        assert!(i.warnings.is_empty(), "{:?}", i.warnings);
    }
    // DATE onsets with a rule: summer time from the last Sunday of March at
    // local midnight (+01:00 → +02:00), so 00:30 that day does not exist and
    // takes the offset before the gap (RFC 5545 §3.3.5).
    let body = cal(
        "BEGIN:VTIMEZONE\r\nTZID:Midnight\r\nBEGIN:STANDARD\r\nDTSTART;VALUE=DATE:19701025\r\nTZOFFSETFROM:+0200\r\n\
         TZOFFSETTO:+0100\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\n\
         DTSTART;VALUE=DATE:19700329\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n\
         END:DAYLIGHT\r\nEND:VTIMEZONE\r\n\
         BEGIN:VEVENT\r\nUID:m1\r\nDTSTART;TZID=Midnight:20250329T120000\r\nDURATION:PT1H\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:m2\r\nDTSTART;TZID=Midnight:20250330T003000\r\nDURATION:PT1H\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:m3\r\nDTSTART;TZID=Midnight:20250330T120000\r\nDURATION:PT1H\r\nEND:VEVENT\r\n",
    );
    let i = run_in(&body, "UTC", "2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z");
    assert_eq!(
        spans(&i),
        [
            "2025-03-29T11:00:00Z/2025-03-29T12:00:00Z",
            "2025-03-29T23:30:00Z/2025-03-30T00:30:00Z",
            "2025-03-30T10:00:00Z/2025-03-30T11:00:00Z",
        ]
    );
    assert!(i.warnings.is_empty(), "{:?}", i.warnings);
}

#[test]
fn several_rrules_on_one_event_are_a_union() {
    // The brief's case: Mondays until the 13th, Thursdays until the 16th;
    // DTSTART (a Monday) is in both and counted once.
    let body = cal(
        "BEGIN:VEVENT\r\nUID:two@x\r\nDTSTART:20250106T180000Z\r\nDTEND:20250106T190000Z\r\n\
         RRULE:FREQ=WEEKLY;BYDAY=MO;UNTIL=20250113T235959Z\r\nRRULE:FREQ=WEEKLY;BYDAY=TH;UNTIL=20250116T235959Z\r\nEND:VEVENT\r\n",
    );
    assert_eq!(
        spans(&january_2025(&body, "UTC")),
        [
            "2025-01-06T18:00:00Z/2025-01-06T19:00:00Z",
            "2025-01-09T18:00:00Z/2025-01-09T19:00:00Z",
            "2025-01-13T18:00:00Z/2025-01-13T19:00:00Z",
            "2025-01-16T18:00:00Z/2025-01-16T19:00:00Z",
        ]
    );
    // Each rule keeps its COUNT; EXDATE takes from the union and RDATE adds
    // to it (§3.8.5.3), on Berlin's wall clock across no change of offset.
    let body = cal(
        "BEGIN:VEVENT\r\nUID:u2\r\nDTSTART;TZID=Europe/Berlin:20250106T100000\r\nDURATION:PT30M\r\n\
         RRULE:FREQ=DAILY;COUNT=3\r\nRRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=3\r\n\
         EXDATE;TZID=Europe/Berlin:20250107T100000\r\nRDATE;TZID=Europe/Berlin:20250120T100000\r\nEND:VEVENT\r\n",
    );
    assert_eq!(
        spans(&january_2025(&body, "UTC")),
        [
            "2025-01-06T09:00:00Z/2025-01-06T09:30:00Z",
            "2025-01-08T09:00:00Z/2025-01-08T09:30:00Z",
            "2025-01-13T09:00:00Z/2025-01-13T09:30:00Z",
            "2025-01-20T09:00:00Z/2025-01-20T09:30:00Z",
        ]
    );
    // One unreadable rule leaves the busy time unknown: skipped, said where.
    let body = cal(
        "BEGIN:VEVENT\r\nUID:u3\r\nDTSTART:20250106T180000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=WEEKLY;COUNT=2\r\n\
         RRULE:FREQ=FORTNIGHTLY\r\nEND:VEVENT\r\n",
    );
    let i = january_2025(&body, "UTC");
    assert!(i.busy.is_empty());
    assert_eq!(i.warnings.iter().map(|w| w.line).collect::<Vec<_>>(), [9], "{:?}", i.warnings);
}

#[test]
fn of_several_versions_of_one_event_only_the_latest_counts() {
    // The brief's case: SEQUENCE 1 moved the series from Mondays to Tuesdays.
    let v0 = "BEGIN:VEVENT\r\nUID:standup@x\r\nSEQUENCE:0\r\nDTSTART:20250106T090000Z\r\nDTEND:20250106T093000Z\r\n\
              RRULE:FREQ=WEEKLY;COUNT=3\r\nEND:VEVENT\r\n";
    let v1 = "BEGIN:VEVENT\r\nUID:standup@x\r\nSEQUENCE:1\r\nDTSTART:20250107T090000Z\r\nDTEND:20250107T093000Z\r\n\
              RRULE:FREQ=WEEKLY;COUNT=3\r\nEND:VEVENT\r\n";
    let tuesdays = [
        "2025-01-07T09:00:00Z/2025-01-07T09:30:00Z",
        "2025-01-14T09:00:00Z/2025-01-14T09:30:00Z",
        "2025-01-21T09:00:00Z/2025-01-21T09:30:00Z",
    ];
    // Where the versions stand in the file does not matter.
    assert_eq!(spans(&january_2025(&cal(&format!("{v0}{v1}")), "UTC")), tuesdays);
    assert_eq!(spans(&january_2025(&cal(&format!("{v1}{v0}")), "UTC")), tuesdays);

    // One event written three times by an exporter that appends: SEQUENCE is
    // missing (0) in all, so the latest DTSTAMP wins; with DTSTAMPs equal the
    // latest LAST-MODIFIED; a full tie keeps both (more busy time).
    let version = |uid: &str, extra: &str, hour: u32| {
        format!("BEGIN:VEVENT\r\nUID:{uid}\r\n{extra}DTSTART:20250110T{hour:02}0000Z\r\nDURATION:PT1H\r\nEND:VEVENT\r\n")
    };
    let body = cal(&[
        version("stamp", "DTSTAMP:20250102T000000Z\r\n", 10),
        version("stamp", "SEQUENCE:0\r\nDTSTAMP:20250103T000000Z\r\n", 11),
        version("stamp", "DTSTAMP:20250101T000000Z\r\n", 12),
        version("modified", "DTSTAMP:20250102T000000Z\r\nLAST-MODIFIED:20250105T000000Z\r\n", 13),
        version("modified", "DTSTAMP:20250102T000000Z\r\nLAST-MODIFIED:20250104T000000Z\r\n", 14),
        version("tie", "SEQUENCE:3\r\nDTSTAMP:20250102T000000Z\r\n", 15),
        version("tie", "SEQUENCE:3\r\nDTSTAMP:20250102T000000Z\r\n", 16),
        version("tie", "SEQUENCE:2\r\nDTSTAMP:20250109T000000Z\r\n", 17),
    ]
    .concat());
    assert_eq!(
        spans(&january_2025(&body, "UTC")),
        [
            "2025-01-10T11:00:00Z/2025-01-10T12:00:00Z",
            "2025-01-10T13:00:00Z/2025-01-10T14:00:00Z",
            "2025-01-10T15:00:00Z/2025-01-10T16:00:00Z",
            "2025-01-10T16:00:00Z/2025-01-10T17:00:00Z",
        ]
    );
}

#[test]
fn of_several_versions_of_one_override_only_the_latest_stands_in() {
    // Tuesday 13:00 moved to 15:00 (SEQUENCE 1), then to 16:00 (SEQUENCE 2),
    // written in the other order; the RECURRENCE-IDs name the same instant,
    // once in UTC and once in Berlin time.
    let body = cal(
        "BEGIN:VEVENT\r\nUID:o@x\r\nDTSTART:20250107T130000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=WEEKLY;COUNT=3\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:o@x\r\nSEQUENCE:2\r\nRECURRENCE-ID;TZID=Europe/Berlin:20250114T140000\r\n\
         DTSTART:20250114T160000Z\r\nDURATION:PT1H\r\nSUMMARY:Second move\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:o@x\r\nSEQUENCE:1\r\nRECURRENCE-ID:20250114T130000Z\r\n\
         DTSTART:20250114T150000Z\r\nDURATION:PT1H\r\nSUMMARY:First move\r\nEND:VEVENT\r\n",
    );
    let i = january_2025(&body, "UTC");
    assert_eq!(
        spans(&i),
        [
            "2025-01-07T13:00:00Z/2025-01-07T14:00:00Z",
            "2025-01-14T16:00:00Z/2025-01-14T17:00:00Z",
            "2025-01-21T13:00:00Z/2025-01-21T14:00:00Z",
        ]
    );
    assert_eq!(i.busy[1].summary, "Second move");
    assert!(i.warnings.is_empty(), "{:?}", i.warnings);
}

#[test]
fn an_override_the_master_excludes_with_exdate_is_a_deleted_instance() {
    // The brief's case: the instance was edited (SEQUENCE 1), then deleted
    // from the series (SEQUENCE 2 adds the EXDATE); the override stays in
    // the file but blocks nothing.
    let body = cal(
        "BEGIN:VEVENT\r\nUID:del@x\r\nSEQUENCE:2\r\nDTSTART:20250106T140000Z\r\nDTEND:20250106T150000Z\r\n\
         RRULE:FREQ=WEEKLY;COUNT=3\r\nEXDATE:20250113T140000Z\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:del@x\r\nSEQUENCE:1\r\nRECURRENCE-ID:20250113T140000Z\r\n\
         DTSTART:20250114T160000Z\r\nDTEND:20250114T170000Z\r\nEND:VEVENT\r\n",
    );
    assert_eq!(
        spans(&january_2025(&body, "UTC")),
        ["2025-01-06T14:00:00Z/2025-01-06T15:00:00Z", "2025-01-20T14:00:00Z/2025-01-20T15:00:00Z"]
    );
    // The EXDATE in another form: a New York date-time naming the same
    // instant, and a DATE, which takes out every occurrence that day on the
    // series' clock (Outlook writes both).
    for exdate in ["EXDATE;TZID=America/New_York:20250113T090000", "EXDATE;VALUE=DATE:20250113"] {
        let body = body.replace("EXDATE:20250113T140000Z", exdate);
        assert_eq!(spans(&january_2025(&body, "UTC")).len(), 2, "{exdate}");
    }
    // An older master's EXDATE does not delete anything: the latest master
    // (SEQUENCE 3) no longer excludes the instance, so the override stands.
    let body = body.replace("END:VCALENDAR\r\n", "")
        + "BEGIN:VEVENT\r\nUID:del@x\r\nSEQUENCE:3\r\nDTSTART:20250106T140000Z\r\nDTEND:20250106T150000Z\r\n\
           RRULE:FREQ=WEEKLY;COUNT=3\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    assert_eq!(
        spans(&january_2025(&body, "UTC")),
        [
            "2025-01-06T14:00:00Z/2025-01-06T15:00:00Z",
            "2025-01-14T16:00:00Z/2025-01-14T17:00:00Z",
            "2025-01-20T14:00:00Z/2025-01-20T15:00:00Z",
        ]
    );
}

#[test]
fn an_all_day_series_matches_recurrence_ids_exdates_and_rdates_by_their_written_date() {
    // The brief's case: an all-day weekly series whose second instance is
    // moved by an override whose RECURRENCE-ID is a UTC date-time. Jan 6 and
    // Jan 15 are busy as whole days of the provider's zone, in every zone.
    let body = cal(
        "BEGIN:VEVENT\r\nUID:ad@x\r\nDTSTART;VALUE=DATE:20250106\r\nRRULE:FREQ=WEEKLY;COUNT=2\r\nEND:VEVENT\r\n\
         BEGIN:VEVENT\r\nUID:ad@x\r\nRECURRENCE-ID:20250113T000000Z\r\nDTSTART;VALUE=DATE:20250115\r\nEND:VEVENT\r\n",
    );
    for (zone, expected) in [
        ("UTC", ["2025-01-06T00:00:00Z/2025-01-07T00:00:00Z", "2025-01-15T00:00:00Z/2025-01-16T00:00:00Z"]),
        ("America/New_York", ["2025-01-06T05:00:00Z/2025-01-07T05:00:00Z", "2025-01-15T05:00:00Z/2025-01-16T05:00:00Z"]),
        ("Asia/Tokyo", ["2025-01-05T15:00:00Z/2025-01-06T15:00:00Z", "2025-01-14T15:00:00Z/2025-01-15T15:00:00Z"]),
        ("Pacific/Kiritimati", ["2025-01-05T10:00:00Z/2025-01-06T10:00:00Z", "2025-01-14T10:00:00Z/2025-01-15T10:00:00Z"]),
        ("Pacific/Pago_Pago", ["2025-01-06T11:00:00Z/2025-01-07T11:00:00Z", "2025-01-15T11:00:00Z/2025-01-16T11:00:00Z"]),
    ] {
        let i = january_2025(&body, zone);
        assert_eq!(spans(&i), expected, "{zone}");
        // The moved day keeps the occurrence it stands for as its id.
        assert_eq!(i.busy[1].recurrence_id, Some(i.busy[0].start.plus_secs(7 * 86_400)), "{zone}");
    }
    // EXDATE and RDATE as date-times in zones of their own still name dates:
    // Jan 13 is taken out and Jan 25 added, seen from Honolulu (UTC−10).
    let body = cal(
        "BEGIN:VEVENT\r\nUID:ad2@x\r\nDTSTART;VALUE=DATE:20250106\r\nDTEND;VALUE=DATE:20250107\r\nRRULE:FREQ=WEEKLY;COUNT=3\r\n\
         EXDATE;TZID=Asia/Tokyo:20250113T000000\r\nRDATE:20250125T000000Z\r\nEND:VEVENT\r\n",
    );
    assert_eq!(
        spans(&january_2025(&body, "Pacific/Honolulu")),
        [
            "2025-01-06T10:00:00Z/2025-01-07T10:00:00Z",
            "2025-01-20T10:00:00Z/2025-01-21T10:00:00Z",
            "2025-01-25T10:00:00Z/2025-01-26T10:00:00Z",
        ]
    );
}

#[test]
fn versions_in_different_vcalendars_of_one_body_are_versions_too() {
    // An exporter that appends whole iTIP messages: each VCALENDAR holds one
    // version. Each calendar's X-WR-TIMEZONE still applies to its own events:
    // Berlin's clock moves "w1" at the end of March, not "w2".
    let body = "BEGIN:VCALENDAR\r\nX-WR-TIMEZONE:Europe/Berlin\r\n\
        BEGIN:VEVENT\r\nUID:multi@x\r\nSEQUENCE:0\r\nDTSTART:20250324T100000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=WEEKLY;COUNT=2\r\nEND:VEVENT\r\n\
        BEGIN:VEVENT\r\nUID:w1\r\nDTSTART:20250324T080000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=WEEKLY;COUNT=2\r\nEND:VEVENT\r\n\
        END:VCALENDAR\r\nBEGIN:VCALENDAR\r\n\
        BEGIN:VEVENT\r\nUID:multi@x\r\nSEQUENCE:1\r\nDTSTART:20250325T100000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=WEEKLY;COUNT=2\r\nEND:VEVENT\r\n\
        BEGIN:VEVENT\r\nUID:w2\r\nDTSTART:20250324T090000Z\r\nDURATION:PT1H\r\nRRULE:FREQ=WEEKLY;COUNT=2\r\nEND:VEVENT\r\n\
        END:VCALENDAR\r\n";
    let i = run_in(body, "UTC", "2025-03-01T00:00:00Z", "2025-05-01T00:00:00Z");
    let got: Vec<String> = i.busy.iter().map(|b| format!("{} {}", b.start, b.uid)).collect();
    assert_eq!(
        got,
        [
            "2025-03-24T08:00:00Z w1",
            "2025-03-24T09:00:00Z w2",
            "2025-03-25T10:00:00Z multi@x",
            "2025-03-31T07:00:00Z w1",
            "2025-03-31T09:00:00Z w2",
            "2025-04-01T10:00:00Z multi@x",
        ]
    );
    assert_eq!(i.events, 4);
}
