//! SEMANTICS.md §2–§4, one rule per test, through the same JSON path as
//! `calctl slots --input`. All cases use UTC or a named zone and hand-worked
//! expectations.

use serde_json::{Value, json};

/// A document with sensible defaults; `patch` overrides top-level keys and
/// `query` keys.
fn doc(rules: Value, exceptions: Value, query: Value, extra: Value) -> Value {
    let mut q = json!({"user_id": "u", "role_code": "r", "from": "2026-03-02T00:00:00Z", "to": "2026-03-03T00:00:00Z", "step_min": 30});
    for (k, v) in query.as_object().unwrap() {
        q[k] = v.clone();
    }
    let mut d = json!({"now": "2026-03-01T00:00:00Z", "query": q, "weekly_rules": rules, "exceptions": exceptions});
    for (k, v) in extra.as_object().unwrap() {
        d[k] = v.clone();
    }
    d
}

fn rule(mask: u8, start: &str, end: &str, tz: &str, min: u32, lead: u32, window: u32) -> Value {
    json!({"rule_id": "wr", "user_id": "u", "role_code": "r", "weekday_mask": mask, "start_local": start, "end_local": end,
           "timezone": tz, "min_duration_min": min, "lead_time_hours": lead, "booking_window_days": window, "active": true})
}

fn exc(date: &str, kind: &str, start: Option<&str>, end: Option<&str>, tz: &str) -> Value {
    json!({"exc_id": "ex", "user_id": "u", "date_local": date, "timezone": tz, "kind": kind, "start_local": start, "end_local": end})
}

fn run(d: &Value) -> Result<Value, String> {
    let parsed = cal_core::slots_document::slots_document(&d.to_string()).map_err(|e| e.to_string())?;
    cal_core::slots_document::answer(&parsed).map(|a| serde_json::to_value(a).unwrap()).map_err(|e| e.to_string())
}

/// `start–end` in UTC HH:MM for each slot on one day (compact to compare).
fn slot_times(answer: &Value) -> Vec<String> {
    answer["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{}-{}", &s["start"].as_str().unwrap()[11..16], &s["end"].as_str().unwrap()[11..16]))
        .collect()
}

fn free_times(answer: &Value) -> Vec<String> {
    answer["free"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{}/{}", s["start"].as_str().unwrap(), s["end"].as_str().unwrap()))
        .collect()
}

// Monday 2026-03-02 is the query day throughout (mask bit 0 = Monday = 1).

#[test]
fn available_exception_replaces_the_days_weekly_windows_and_takes_their_strictest_params() {
    let rules = json!([rule(1, "09:00", "12:00", "UTC", 60, 0, 60), rule(3, "13:00", "15:00", "UTC", 90, 0, 60), rule(4, "09:00", "17:00", "UTC", 120, 0, 60)]);
    let excs = json!([exc("2026-03-02", "available", Some("16:00"), Some("18:00"), "UTC")]);
    let a = run(&doc(rules, excs, json!({}), json!({}))).unwrap();
    // Monday's 09–12 and 13–15 are gone; the override takes 90 min (the
    // strictest of the Monday rules; the Tuesday-only rule does not count).
    assert_eq!(slot_times(&a), ["16:00-17:30", "16:30-18:00"]);
}

#[test]
fn override_on_a_day_no_rule_covers_takes_all_rules_strictest_or_defaults() {
    let rules = json!([rule(2, "09:00", "12:00", "UTC", 45, 0, 60), rule(4, "09:00", "12:00", "UTC", 30, 0, 60)]);
    let excs = json!([exc("2026-03-02", "available", Some("10:00"), Some("11:00"), "UTC")]);
    assert_eq!(slot_times(&run(&doc(rules, excs.clone(), json!({}), json!({}))).unwrap()), ["10:00-10:45"]);
    // No rules at all: the DDL defaults (60 min, 24 h lead, 60 days).
    let a = run(&doc(json!([]), excs, json!({}), json!({}))).unwrap();
    assert_eq!(slot_times(&a), ["10:00-11:00"]);
}

#[test]
fn an_override_replaces_windows_starting_that_date_not_the_tail_of_the_previous_night() {
    // Sunday 22:00–02:00 runs into Monday; a Monday override keeps that tail.
    let rules = json!([rule(64 | 1, "22:00", "02:00", "UTC", 60, 0, 60)]);
    let excs = json!([exc("2026-03-02", "available", Some("10:00"), Some("11:00"), "UTC")]);
    let a = run(&doc(rules, excs, json!({}), json!({}))).unwrap();
    assert_eq!(slot_times(&a), ["00:00-01:00", "00:30-01:30", "01:00-02:00", "10:00-11:00"]);
}

#[test]
fn unavailable_wins_and_a_whole_day_vacation_removes_everything() {
    let rules = json!([rule(1, "09:00", "12:00", "UTC", 60, 0, 60)]);
    let excs = json!([
        exc("2026-03-02", "available", Some("09:00"), Some("12:00"), "UTC"),
        exc("2026-03-02", "unavailable", Some("10:00"), Some("11:00"), "UTC"),
    ]);
    let a = run(&doc(rules.clone(), excs, json!({}), json!({}))).unwrap();
    assert_eq!(slot_times(&a), ["09:00-10:00", "11:00-12:00"]);
    let vacation = json!([exc("2026-03-02", "unavailable", None, None, "UTC"), exc("2026-03-02", "available", None, None, "UTC")]);
    let a = run(&doc(rules, vacation, json!({}), json!({}))).unwrap();
    assert!(slot_times(&a).is_empty() && free_times(&a).is_empty());
}

#[test]
fn equal_start_and_end_is_a_24_hour_window_and_midnight_to_midnight_is_the_day() {
    let a = run(&doc(json!([rule(1, "09:00", "09:00", "UTC", 60, 0, 60)]), json!([]), json!({"to": "2026-03-04T00:00:00Z"}), json!({}))).unwrap();
    assert_eq!(free_times(&a), ["2026-03-02T09:00:00Z/2026-03-03T09:00:00Z"]);
    let a = run(&doc(json!([rule(1, "00:00", "00:00", "UTC", 60, 0, 60)]), json!([]), json!({"to": "2026-03-04T00:00:00Z"}), json!({}))).unwrap();
    assert_eq!(free_times(&a), ["2026-03-02T00:00:00Z/2026-03-03T00:00:00Z"]);
}

#[test]
fn slots_run_across_touching_windows_and_past_the_query_end() {
    let rules = json!([rule(1, "09:00", "10:00", "UTC", 60, 0, 60), rule(1, "10:00", "11:00", "UTC", 60, 0, 60)]);
    let a = run(&doc(rules, json!([]), json!({"to": "2026-03-02T09:45:00Z", "duration_min": 90}), json!({}))).unwrap();
    assert_eq!(slot_times(&a), ["09:00-10:30", "09:30-11:00"]);
    assert_eq!(free_times(&a), ["2026-03-02T09:00:00Z/2026-03-02T09:45:00Z"], "free ranges are clipped");
}

#[test]
fn slots_start_on_the_local_step_grid_not_where_busy_time_ends() {
    let rules = json!([rule(1, "09:00", "12:00", "Europe/Berlin", 60, 0, 60)]);
    let busy = json!({"external_busy": [{"start": "2026-03-02T08:00:00Z", "end": "2026-03-02T08:47:00Z"}]});
    let a = run(&doc(rules, json!([]), json!({}), busy)).unwrap();
    // 09:47 CET is free but off-grid; the first slot is 10:00 CET.
    assert_eq!(slot_times(&a), ["09:00-10:00", "09:30-10:30", "10:00-11:00"]);
    assert_eq!(a["slots"][0]["start_local"], "2026-03-02T10:00:00+01:00");
}

#[test]
fn the_strictest_of_overlapping_windows_governs() {
    // 09–12 lead 0 / min 30 and 10–11 lead 0 / min 60: inside 10–11 the
    // minimum is 60, so with no duration given those slots last 60 min.
    let rules = json!([rule(1, "09:00", "12:00", "UTC", 30, 0, 60), rule(1, "10:00", "11:00", "UTC", 60, 0, 60)]);
    let a = run(&doc(rules.clone(), json!([]), json!({}), json!({}))).unwrap();
    assert_eq!(slot_times(&a), ["09:00-09:30", "09:30-10:00", "10:00-11:00", "10:30-11:30", "11:00-11:30", "11:30-12:00"]);
    // A requested 30 min is below the 60 min governing 10:00 and 10:30.
    let a = run(&doc(rules, json!([]), json!({"duration_min": 30}), json!({}))).unwrap();
    assert_eq!(slot_times(&a), ["09:00-09:30", "09:30-10:00", "11:00-11:30", "11:30-12:00"]);
}

#[test]
fn lead_time_and_booking_window_are_exact_hours_and_days() {
    let rules = json!([rule(127, "00:00", "00:00", "UTC", 60, 5, 1)]);
    let q = json!({"from": "2026-03-01T00:00:00Z", "to": "2026-03-04T00:00:00Z", "step_min": 60});
    let a = run(&doc(rules, json!([]), q, json!({"now": "2026-03-01T00:30:00Z"}))).unwrap();
    let starts: Vec<&str> = a["slots"].as_array().unwrap().iter().map(|s| s["start"].as_str().unwrap()).collect();
    assert_eq!(starts.first(), Some(&"2026-03-01T06:00:00Z"), "now + 5 h = 05:30, next grid point 06:00");
    assert_eq!(starts.last(), Some(&"2026-03-02T00:00:00Z"), "now + 1 day = 03-02 00:30");
}

#[test]
fn duration_under_every_minimum_names_the_smallest_minimum() {
    let rules = json!([rule(1, "09:00", "12:00", "UTC", 60, 0, 60), rule(1, "13:00", "15:00", "UTC", 45, 0, 60)]);
    let vacation = json!([exc("2026-03-02", "unavailable", None, None, "UTC")]);
    // The windows still count though a vacation removes them.
    let err = run(&doc(rules.clone(), vacation, json!({"duration_min": 30}), json!({}))).unwrap_err();
    assert_eq!(err, "query.duration_min: 30 min is below the minimum duration of every window in the range (smallest minimum: 45 min)");
    // No window shares an instant with the range: no error, no slots.
    let q = json!({"from": "2026-03-03T00:00:00Z", "to": "2026-03-04T00:00:00Z", "duration_min": 30});
    assert!(slot_times(&run(&doc(rules, json!([]), q, json!({}))).unwrap()).is_empty());
}

#[test]
fn empty_and_inverted_ranges() {
    let rules = json!([rule(1, "09:00", "12:00", "UTC", 60, 0, 60)]);
    let a = run(&doc(rules.clone(), json!([]), json!({"to": "2026-03-02T00:00:00Z"}), json!({}))).unwrap();
    assert!(slot_times(&a).is_empty() && free_times(&a).is_empty());
    let err = run(&doc(rules, json!([]), json!({"to": "2026-03-01T23:59:00Z"}), json!({}))).unwrap_err();
    assert!(err.starts_with("query.to: "), "{err}");
}

#[test]
fn only_confirmed_events_and_unexpired_active_holds_are_busy() {
    let rules = json!([rule(1, "09:00", "13:00", "UTC", 60, 0, 60)]);
    let now = "2026-03-02T08:00:00Z";
    let rows = json!({
        "now": now,
        "events": [
            {"event_id": "e1", "user_id": "u", "start": "2026-03-02T09:00:00Z", "end": "2026-03-02T10:00:00Z", "status": "cancelled"},
            {"event_id": "e2", "user_id": "other", "start": "2026-03-02T09:00:00Z", "end": "2026-03-02T13:00:00Z", "status": "confirmed"},
            {"event_id": "e3", "user_id": "u", "start": "2026-03-02T12:00:00Z", "end": "2026-03-02T13:00:00Z", "status": "confirmed"}],
        "holds": [
            {"hold_id": "h1", "user_id": "u", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T11:00:00Z", "expires_at": now, "status": "active"},
            {"hold_id": "h2", "user_id": "u", "start": "2026-03-02T11:00:00Z", "end": "2026-03-02T12:00:00Z", "expires_at": "2026-03-02T08:00:01Z", "status": "active"},
            {"hold_id": "h3", "user_id": "u", "start": "2026-03-02T09:00:00Z", "end": "2026-03-02T10:00:00Z", "expires_at": "2026-03-03T00:00:00Z", "status": "released"}],
    });
    let a = run(&doc(rules, json!([]), json!({"duration_min": 60}), rows)).unwrap();
    // Free: 09–11 (h1 expires exactly at now); busy 11–12 (h2) and 12–13 (e3).
    assert_eq!(slot_times(&a), ["09:00-10:00", "09:30-10:30", "10:00-11:00"]);
}

#[test]
fn local_rendering_uses_the_first_containing_window_whose_grid_the_slot_is_on() {
    // Kolkata (+05:30) 14:30–17:30 = 09:00–12:00Z and UTC 09:00–12:00; step 60.
    let rules = json!([rule(1, "14:30", "17:30", "Asia/Kolkata", 60, 0, 60), rule(1, "09:00", "12:00", "UTC", 60, 0, 60)]);
    let a = run(&doc(rules, json!([]), json!({"step_min": 60}), json!({}))).unwrap();
    let rendered: Vec<&str> = a["slots"].as_array().unwrap().iter().map(|s| s["start_local"].as_str().unwrap()).collect();
    // Both windows start at 09:00Z; ordered by zone name Asia/Kolkata < UTC.
    // 09:00Z is 14:30 IST (off the hourly grid) but 09:00 UTC (on it);
    // 09:30Z is 15:00 IST (on it) and 09:30 UTC (off it).
    assert_eq!(
        rendered,
        [
            "2026-03-02T09:00:00+00:00",
            "2026-03-02T15:00:00+05:30",
            "2026-03-02T10:00:00+00:00",
            "2026-03-02T16:00:00+05:30",
            "2026-03-02T11:00:00+00:00"
        ]
    );
}

#[test]
fn exceptions_match_rule_dates_each_in_its_own_zone() {
    // A New York Monday rule 20:00–22:00 EST is 01:00–03:00Z on Tuesday.
    // An override dated Monday in Tokyo still replaces that Monday window.
    let rules = json!([rule(1, "20:00", "22:00", "America/New_York", 60, 0, 60)]);
    let excs = json!([exc("2026-03-02", "available", Some("09:00"), Some("10:00"), "Asia/Tokyo")]);
    let q = json!({"from": "2026-03-02T00:00:00Z", "to": "2026-03-04T00:00:00Z"});
    let a = run(&doc(rules, excs, q, json!({}))).unwrap();
    assert_eq!(free_times(&a), ["2026-03-02T00:00:00Z/2026-03-02T01:00:00Z"]);
}

#[test]
fn bad_input_names_the_field() {
    let base = || doc(json!([rule(1, "09:00", "12:00", "UTC", 60, 0, 60)]), json!([]), json!({}), json!({}));
    type Patch = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Patch, &str)> = vec![
        (Box::new(|d| d["weekly_rules"][0]["timezone"] = json!("Europe/Berlinn")), r#"weekly_rules[0].timezone: unknown zone "Europe/Berlinn""#),
        (Box::new(|d| d["weekly_rules"][0]["weekday_mask"] = json!(128)), "weekly_rules[0].weekday_mask: must be between 1 and 127"),
        (Box::new(|d| d["weekly_rules"][0]["active"] = json!(false)), ""),
        (Box::new(|d| d["weekly_rules"][0]["end_local"] = json!("24:00")), "weekly_rules[0].end_local: not a time of day"),
        (Box::new(|d| d["weekly_rules"][0]["min_duration_min"] = json!(0)), "weekly_rules[0].min_duration_min: must be between 1"),
        (Box::new(|d| d["exceptions"] = json!([exc("2026-03-02", "available", Some("09:00"), None, "UTC")])), "exceptions[0].end_local: start_local and end_local must both be set"),
        (Box::new(|d| d["exceptions"] = json!([exc("2026-02-30", "available", None, None, "UTC")])), "exceptions[0].date_local: not a date"),
        (Box::new(|d| d["exceptions"] = json!([exc("2026-03-02", "maybe", None, None, "UTC")])), "exceptions[0].kind: must be"),
        (Box::new(|d| d["events"] = json!([{"user_id": "u", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T10:00:00Z", "status": "confirmed"}])), "events[0].end: end 2026-03-02T10:00:00Z is not after start"),
        (Box::new(|d| d["holds"] = json!([{"user_id": "u", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T11:00:00Z", "status": "active"}])), "holds[0].expires_at: is required"),
        (Box::new(|d| d["external_busy"] = json!([{"start": "yesterday", "end": "2026-03-02T11:00:00Z"}])), "external_busy[0].start: not an RFC 3339 instant"),
        (Box::new(|d| d["query"]["step_min"] = json!(0)), "query.step_min: must be between 1 and 1440"),
        (Box::new(|d| d["now"] = json!("2026-03-01")), "now: not an RFC 3339 instant"),
    ];
    for (patch, want) in cases {
        let mut d = base();
        patch(&mut d);
        match run(&d) {
            Ok(_) => assert_eq!(want, "", "expected an error starting {want:?}"),
            Err(e) => assert!(!want.is_empty() && e.starts_with(want), "got {e:?}, want {want:?}"),
        }
    }
    // Inactive rows are still validated.
    let mut d = base();
    d["weekly_rules"][0]["active"] = json!(false);
    d["weekly_rules"][0]["timezone"] = json!("Mars/Olympus");
    assert!(run(&d).unwrap_err().starts_with("weekly_rules[0].timezone"));
}
