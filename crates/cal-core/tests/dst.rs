//! DST table tests (SEMANTICS.md §1): each case names the zone and the date and
//! compares RFC 3339 strings. Expected values were worked out by hand from the
//! 2026 transitions (cross-checked with Python zoneinfo, tzdata 2025b).

use cal_core::{Instant, LocalTime, Zone};
use chrono::{NaiveDate, NaiveDateTime};
use serde_json::{Value, json};

fn zone(name: &str) -> Zone {
    Zone::parse(name).unwrap()
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn local(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap()
}

#[test]
fn local_days_are_23_24_or_25_hours_and_tile() {
    // (zone, date, start, end, hours)
    let cases = [
        ("America/New_York", "2026-03-08", "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z", 23.0),
        ("America/New_York", "2026-11-01", "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z", 25.0),
        ("Europe/Berlin", "2026-03-29", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z", 23.0),
        ("Europe/Berlin", "2026-10-25", "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z", 25.0),
        ("Australia/Lord_Howe", "2026-04-05", "2026-04-04T13:00:00Z", "2026-04-05T13:30:00Z", 24.5),
        ("Australia/Lord_Howe", "2026-10-04", "2026-10-03T13:30:00Z", "2026-10-04T13:00:00Z", 23.5),
        ("Asia/Kolkata", "2026-03-08", "2026-03-07T18:30:00Z", "2026-03-08T18:30:00Z", 24.0),
        ("Pacific/Chatham", "2026-04-05", "2026-04-04T10:15:00Z", "2026-04-05T11:15:00Z", 25.0),
        ("Pacific/Chatham", "2026-09-27", "2026-09-26T11:15:00Z", "2026-09-27T10:15:00Z", 23.0),
        // Santiago: 2026-09-06 00:00 does not exist; the day starts at 01:00 -03.
        ("America/Santiago", "2026-09-05", "2026-09-05T04:00:00Z", "2026-09-06T04:00:00Z", 24.0),
        ("America/Santiago", "2026-09-06", "2026-09-06T04:00:00Z", "2026-09-07T03:00:00Z", 23.0),
        // Santiago: 23:00–24:00 on 2026-04-04 is shown twice.
        ("America/Santiago", "2026-04-04", "2026-04-04T03:00:00Z", "2026-04-05T04:00:00Z", 25.0),
        // Havana: 2026-03-08 00:00 does not exist (clock 00:00 → 01:00).
        ("America/Havana", "2026-03-07", "2026-03-07T05:00:00Z", "2026-03-08T05:00:00Z", 24.0),
        ("America/Havana", "2026-03-08", "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z", 23.0),
        // Havana: midnight 2026-11-01 repeats; the previous day ends at the first one.
        ("America/Havana", "2026-10-31", "2026-10-31T04:00:00Z", "2026-11-01T04:00:00Z", 24.0),
        ("America/Havana", "2026-11-01", "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z", 25.0),
    ];
    for (z, d, start, end, hours) in cases {
        let day = zone(z).day(date(d)).unwrap();
        assert_eq!((day.start().rfc3339(), day.end().rfc3339()), (start.to_owned(), end.to_owned()), "{z} {d}");
        assert_eq!(day.secs() as f64 / 3600.0, hours, "{z} {d} length");
        let next = zone(z).day(date(d).succ_opt().unwrap()).unwrap();
        assert_eq!(day.end(), next.start(), "{z} {d}: consecutive days tile");
    }
}

/// (zone, date, start_local, end_local, expected [start, end) or None)
type EdgeCase<'a> = (&'a str, &'a str, &'a str, &'a str, Option<(&'a str, &'a str)>);

#[test]
fn window_edges_follow_the_boundary_rule() {
    let cases: [EdgeCase<'_>; 9] = [
        // NY spring forward: 02:30 does not exist; both edges meet the transition.
        ("America/New_York", "2026-03-08", "02:30", "03:15", Some(("2026-03-08T07:00:00Z", "2026-03-08T07:15:00Z"))),
        ("America/New_York", "2026-03-08", "02:00", "02:45", None),
        ("America/New_York", "2026-03-08", "09:00", "17:00", Some(("2026-03-08T13:00:00Z", "2026-03-08T21:00:00Z"))),
        // NY fall back: an end strictly inside the repeated hour takes the later instant.
        ("America/New_York", "2026-11-01", "00:00", "01:30", Some(("2026-11-01T04:00:00Z", "2026-11-01T06:30:00Z"))),
        // An end at the very start of the repeated hour takes the earlier one.
        ("America/New_York", "2026-11-01", "00:00", "01:00", Some(("2026-11-01T04:00:00Z", "2026-11-01T05:00:00Z"))),
        ("Europe/Berlin", "2026-10-25", "02:00", "02:30", Some(("2026-10-25T00:00:00Z", "2026-10-25T01:30:00Z"))),
        ("Australia/Lord_Howe", "2026-10-04", "02:00", "03:00", Some(("2026-10-03T15:30:00Z", "2026-10-03T16:00:00Z"))),
        ("Pacific/Chatham", "2026-09-27", "03:00", "03:30", None),
        // Overnight: 22:00–00:00 ends at the next local midnight.
        ("Asia/Kolkata", "2026-03-08", "22:00", "00:00", Some(("2026-03-08T16:30:00Z", "2026-03-08T18:30:00Z"))),
    ];
    for (z, d, s, e, want) in cases {
        let got = zone(z)
            .span(date(d), LocalTime::parse(s).unwrap(), LocalTime::parse(e).unwrap())
            .map(|iv| (iv.start().rfc3339(), iv.end().rfc3339()));
        assert_eq!(got, want.map(|(a, b)| (a.to_owned(), b.to_owned())), "{z} {d} {s}–{e}");
    }
}

#[test]
fn single_points_follow_rfc5545() {
    let cases = [
        ("America/New_York", "2026-03-08T02:30", "2026-03-08T07:30:00Z"),
        ("America/New_York", "2026-11-01T01:30", "2026-11-01T05:30:00Z"),
        ("Australia/Lord_Howe", "2026-10-04T02:15", "2026-10-03T15:45:00Z"),
        ("Australia/Lord_Howe", "2026-04-05T01:45", "2026-04-04T14:45:00Z"),
        ("Pacific/Chatham", "2026-09-27T03:00", "2026-09-26T14:15:00Z"),
        ("America/Havana", "2026-03-08T00:30", "2026-03-08T05:30:00Z"),
        ("America/Havana", "2026-11-01T00:30", "2026-11-01T04:30:00Z"),
        ("America/Santiago", "2026-09-06T00:30", "2026-09-06T04:30:00Z"),
        ("Asia/Kolkata", "2026-03-08T09:00", "2026-03-08T03:30:00Z"),
    ];
    for (z, l, want) in cases {
        assert_eq!(zone(z).point(local(l)).rfc3339(), want, "{z} {l}");
    }
}

/// Runs a single-rule document through the same path as `calctl slots --input`.
#[allow(clippy::too_many_arguments)]
fn slots(tz: &str, mask: u8, start: &str, end: &str, now: &str, from: &str, to: &str, duration: u32) -> Vec<(String, String)> {
    let doc = json!({
        "now": now,
        "query": {"user_id": "u", "role_code": "r", "from": from, "to": to, "duration_min": duration, "step_min": 30},
        "weekly_rules": [{"rule_id": "wr", "user_id": "u", "role_code": "r", "weekday_mask": mask,
            "start_local": start, "end_local": end, "timezone": tz,
            "min_duration_min": 30, "lead_time_hours": 0, "booking_window_days": 365, "active": true}],
    });
    let doc = cal_core::slots_document::slots_document(&doc.to_string()).unwrap();
    let answer = serde_json::to_value(cal_core::slots_document::answer(&doc).unwrap()).unwrap();
    answer["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s: &Value| (s["start"].as_str().unwrap().to_owned(), s["start_local"].as_str().unwrap().to_owned()))
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

#[test]
fn new_york_fall_back_offers_both_instants_of_the_repeated_hour() {
    let got = slots("America/New_York", 64, "00:00", "03:00", "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", 30);
    assert_eq!(
        got,
        pairs(&[
            ("2026-11-01T04:00:00Z", "2026-11-01T00:00:00-04:00"),
            ("2026-11-01T04:30:00Z", "2026-11-01T00:30:00-04:00"),
            ("2026-11-01T05:00:00Z", "2026-11-01T01:00:00-04:00"),
            ("2026-11-01T05:30:00Z", "2026-11-01T01:30:00-04:00"),
            ("2026-11-01T06:00:00Z", "2026-11-01T01:00:00-05:00"),
            ("2026-11-01T06:30:00Z", "2026-11-01T01:30:00-05:00"),
            ("2026-11-01T07:00:00Z", "2026-11-01T02:00:00-05:00"),
            ("2026-11-01T07:30:00Z", "2026-11-01T02:30:00-05:00"),
        ])
    );
}

#[test]
fn new_york_spring_forward_skips_wall_times_that_do_not_exist() {
    let got = slots("America/New_York", 64, "01:00", "04:00", "2026-02-01T00:00:00Z", "2026-03-08T00:00:00Z", "2026-03-09T00:00:00Z", 30);
    assert_eq!(
        got,
        pairs(&[
            ("2026-03-08T06:00:00Z", "2026-03-08T01:00:00-05:00"),
            ("2026-03-08T06:30:00Z", "2026-03-08T01:30:00-05:00"),
            ("2026-03-08T07:00:00Z", "2026-03-08T03:00:00-04:00"),
            ("2026-03-08T07:30:00Z", "2026-03-08T03:30:00-04:00"),
        ])
    );
}

#[test]
fn havana_repeated_midnight_and_santiago_missing_midnight() {
    let havana = slots("America/Havana", 64, "00:00", "02:00", "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", 30);
    assert_eq!(
        havana,
        pairs(&[
            ("2026-11-01T04:00:00Z", "2026-11-01T00:00:00-04:00"),
            ("2026-11-01T04:30:00Z", "2026-11-01T00:30:00-04:00"),
            ("2026-11-01T05:00:00Z", "2026-11-01T00:00:00-05:00"),
            ("2026-11-01T05:30:00Z", "2026-11-01T00:30:00-05:00"),
            ("2026-11-01T06:00:00Z", "2026-11-01T01:00:00-05:00"),
            ("2026-11-01T06:30:00Z", "2026-11-01T01:30:00-05:00"),
        ])
    );
    let santiago = slots("America/Santiago", 64, "00:00", "02:00", "2026-08-01T00:00:00Z", "2026-09-06T00:00:00Z", "2026-09-07T00:00:00Z", 30);
    assert_eq!(
        santiago,
        pairs(&[
            ("2026-09-06T04:00:00Z", "2026-09-06T01:00:00-03:00"),
            ("2026-09-06T04:30:00Z", "2026-09-06T01:30:00-03:00"),
        ])
    );
}

#[test]
fn half_hour_and_three_quarter_offsets_keep_the_local_grid() {
    let kolkata = slots("Asia/Kolkata", 1, "09:00", "10:30", "2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z", 60);
    assert_eq!(
        kolkata,
        pairs(&[("2026-03-02T03:30:00Z", "2026-03-02T09:00:00+05:30"), ("2026-03-02T04:00:00Z", "2026-03-02T09:30:00+05:30")])
    );
    // Chatham 2026-09-27 (Sunday): 02:45 → 03:45; a 02:00–05:00 window.
    let chatham = slots("Pacific/Chatham", 64, "02:00", "05:00", "2026-09-01T00:00:00Z", "2026-09-26T00:00:00Z", "2026-09-28T00:00:00Z", 30);
    assert_eq!(
        chatham,
        pairs(&[
            ("2026-09-26T13:15:00Z", "2026-09-27T02:00:00+12:45"),
            ("2026-09-26T13:45:00Z", "2026-09-27T02:30:00+12:45"),
            ("2026-09-26T14:15:00Z", "2026-09-27T04:00:00+13:45"),
            ("2026-09-26T14:45:00Z", "2026-09-27T04:30:00+13:45"),
        ])
    );
    // Lord Howe 2026-04-05 (Sunday): 02:00 +11 falls back to 01:30 +10:30.
    let lord_howe = slots("Australia/Lord_Howe", 64, "01:00", "02:30", "2026-03-01T00:00:00Z", "2026-04-04T00:00:00Z", "2026-04-06T00:00:00Z", 30);
    assert_eq!(
        lord_howe,
        pairs(&[
            ("2026-04-04T14:00:00Z", "2026-04-05T01:00:00+11:00"),
            ("2026-04-04T14:30:00Z", "2026-04-05T01:30:00+11:00"),
            ("2026-04-04T15:00:00Z", "2026-04-05T01:30:00+10:30"),
            ("2026-04-04T15:30:00Z", "2026-04-05T02:00:00+10:30"),
        ])
    );
}

#[test]
fn lead_time_is_exact_hours_across_spring_forward() {
    // 24 h of lead time from Sat 2026-03-07 10:00 EST ends Sun 11:00 EDT.
    let now = Instant::parse("2026-03-07T10:00:00-05:00").unwrap();
    let doc = json!({
        "now": now.rfc3339(),
        "query": {"user_id": "u", "role_code": "r", "from": "2026-03-08T00:00:00Z", "to": "2026-03-09T00:00:00Z", "duration_min": 60},
        "weekly_rules": [{"user_id": "u", "role_code": "r", "weekday_mask": 64, "start_local": "09:00", "end_local": "13:00",
            "timezone": "America/New_York", "lead_time_hours": 24}],
    });
    let doc = cal_core::slots_document::slots_document(&doc.to_string()).unwrap();
    let answer = serde_json::to_value(cal_core::slots_document::answer(&doc).unwrap()).unwrap();
    let first = &answer["slots"][0];
    assert_eq!(first["start"], "2026-03-08T15:00:00Z");
    assert_eq!(first["start_local"], "2026-03-08T11:00:00-04:00");
}
