//! SEMANTICS.md §8, one rule per test, through the `calctl slots --input`
//! document: buffers, day and week limits (on DST days and across ISO week
//! boundaries), role filtering and reschedules. Every expectation is worked
//! by hand in the comment above it.

use cal_core::holds::{self, HoldKind, HoldRequest, HoldRequestInput};
use cal_core::slots_document::{answer, slots_document};
use cal_core::{BookingError, Instant};
use serde_json::{Value, json};

/// A Monday (2026-03-02) 09:00–17:00 UTC rule for `u`/`r`, 60-minute
/// minimum, no lead time; 60-minute slots on a 30-minute step; `patch`
/// sets top-level keys.
fn doc(patch: Value) -> Value {
    let mut d = json!({
        "now": "2026-03-01T00:00:00Z",
        "query": {"user_id": "u", "role_code": "r", "from": "2026-03-02T00:00:00Z", "to": "2026-03-03T00:00:00Z",
                  "duration_min": 60, "step_min": 30},
        "weekly_rules": [rule(1, "09:00", "17:00")],
    });
    for (k, v) in patch.as_object().unwrap() {
        d[k] = v.clone();
    }
    d
}

fn rule(mask: u8, start: &str, end: &str) -> Value {
    json!({"rule_id": "wr", "user_id": "u", "role_code": "r", "weekday_mask": mask, "start_local": start, "end_local": end,
           "timezone": "UTC", "min_duration_min": 30, "lead_time_hours": 0, "booking_window_days": 365})
}

fn policy(role: &str, tz: &str, before: u32, after: u32, day: Option<u32>, week: Option<u32>) -> Value {
    json!({"user_id": "u", "role_code": role, "timezone": tz, "buffer_before_min": before, "buffer_after_min": after,
           "max_per_day": day, "max_per_week": week})
}

fn event(id: &str, role: Option<&str>, start: &str, end: &str) -> Value {
    json!({"event_id": id, "user_id": "u", "role_code": role, "start": start, "end": end, "status": "confirmed"})
}

fn run(d: &Value) -> Result<Value, String> {
    let parsed = slots_document(&d.to_string()).map_err(|e| e.to_string())?;
    answer(&parsed).map(|a| serde_json::to_value(a).unwrap()).map_err(|e| e.to_string())
}

/// Slot starts as `HH:MM` (one-day queries).
fn starts(a: &Value) -> Vec<String> {
    a["slots"].as_array().unwrap().iter().map(|s| s["start"].as_str().unwrap()[11..16].to_owned()).collect()
}

/// Slot starts as full instants.
fn instants(a: &Value) -> Vec<String> {
    a["slots"].as_array().unwrap().iter().map(|s| s["start"].as_str().unwrap().to_owned()).collect()
}

fn hours(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Every half hour from `from` to `to` (both `HH:MM`, inclusive).
fn every_half_hour(from: &str, to: &str) -> Vec<String> {
    let m = |s: &str| s[..2].parse::<u32>().unwrap() * 60 + s[3..].parse::<u32>().unwrap();
    (m(from)..=m(to)).step_by(30).map(|x| format!("{:02}:{:02}", x / 60, x % 60)).collect()
}

#[test]
fn buffers_of_the_booking_and_of_the_slot_add_up() {
    // Event 11:00–12:00 of role r, policy r: 15 before, 30 after.
    // Widened event [10:45, 12:30); a slot [t, t+60) widens to [t−15, t+90).
    // Before: t + 90 <= 10:45 → t <= 09:15 → 09:00. After: t − 15 >= 12:30
    // → t >= 12:45 → 13:00 … 16:00.
    let d = doc(json!({"events": [event("ev_1", Some("r"), "2026-03-02T11:00:00Z", "2026-03-02T12:00:00Z")],
                       "policies": [policy("r", "UTC", 15, 30, None, None)]}));
    let a = run(&d).unwrap();
    let mut want = hours(&["09:00"]);
    want.extend(every_half_hour("13:00", "16:00"));
    assert_eq!(starts(&a), want);
    // Free ranges are not changed by buffers.
    assert_eq!(a["free"], json!([{"start": "2026-03-02T09:00:00Z", "end": "2026-03-02T11:00:00Z"},
                                 {"start": "2026-03-02T12:00:00Z", "end": "2026-03-02T17:00:00Z"}]));
}

#[test]
fn a_booking_without_role_or_policy_is_not_widened_but_the_slot_still_is() {
    // Event 11–12 without role_code: not widened. The slot's own 15/30:
    // t + 90 <= 11:00 → t <= 09:30; t − 15 >= 12:00 → t >= 12:15 → 12:30.
    let mut want = hours(&["09:00", "09:30"]);
    want.extend(every_half_hour("12:30", "16:00"));
    let pol = json!([policy("r", "UTC", 15, 30, None, None)]);
    let d = doc(json!({"events": [event("ev_1", None, "2026-03-02T11:00:00Z", "2026-03-02T12:00:00Z")], "policies": pol}));
    assert_eq!(starts(&run(&d).unwrap()), want);
    // External busy is never widened: the same answer.
    let d = doc(json!({"external_busy": [{"start": "2026-03-02T11:00:00Z", "end": "2026-03-02T12:00:00Z"}], "policies": pol}));
    assert_eq!(starts(&run(&d).unwrap()), want);
    // A booking of role x under x's policy (60 after) widens to [11:00,
    // 13:00) even for a query of role r without a policy: 09–10, 13–16.
    let d = doc(json!({"events": [event("ev_1", Some("x"), "2026-03-02T11:00:00Z", "2026-03-02T12:00:00Z")],
                       "policies": [policy("x", "UTC", 0, 60, None, None)]}));
    let mut want = hours(&["09:00", "09:30", "10:00"]);
    want.extend(every_half_hour("13:00", "16:00"));
    assert_eq!(starts(&run(&d).unwrap()), want);
}

#[test]
fn buffers_need_not_lie_inside_availability() {
    // 30 before and after; no bookings: 09:00 … 16:00 as without a policy.
    let pol = json!([policy("r", "UTC", 30, 30, None, None)]);
    assert_eq!(starts(&run(&doc(json!({"policies": pol}))).unwrap()), every_half_hour("09:00", "16:00"));
    // Bookings outside the hours still reach in through buffers: an event
    // 08:00–08:45 widens to [07:30, 09:15); a slot needs t − 30 >= 09:15 →
    // 10:00. An event 17:00–18:00 widens to [16:30, 18:30); t + 60 + 30 <=
    // 16:30 → t <= 15:00.
    let d = doc(json!({"policies": pol, "events": [
        event("early", Some("r"), "2026-03-02T08:00:00Z", "2026-03-02T08:45:00Z"),
        event("late", Some("r"), "2026-03-02T17:00:00Z", "2026-03-02T18:00:00Z")]}));
    assert_eq!(starts(&run(&d).unwrap()), every_half_hour("10:00", "15:00"));
}

#[test]
fn a_day_limit_counts_only_the_roles_confirmed_events_and_live_holds() {
    let pol = json!([policy("r", "UTC", 0, 0, Some(2), None)]);
    let hold = |id: &str, expires: &str, status: &str| json!({"hold_id": id, "user_id": "u", "role_code": "r",
        "start": "2026-03-02T16:00:00Z", "end": "2026-03-02T17:00:00Z", "expires_at": expires, "status": status});
    let rows = |holds: Value| doc(json!({"policies": pol, "holds": holds, "events": [
        event("a", Some("r"), "2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"),
        event("other_role", Some("x"), "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"),
        event("no_role", None, "2026-03-02T11:00:00Z", "2026-03-02T12:00:00Z"),
        json!({"event_id": "gone", "user_id": "u", "role_code": "r", "start": "2026-03-02T12:00:00Z", "end": "2026-03-02T13:00:00Z", "status": "cancelled"})]}));
    // One counted booking (a): below 2, slots offered around the busy time.
    let a = run(&rows(json!([hold("h_expired", "2026-03-01T00:00:00Z", "active"), hold("h_released", "2026-03-03T00:00:00Z", "released")]))).unwrap();
    assert_eq!(starts(&a), every_half_hour("12:00", "16:00"));
    // An active, unexpired hold of the role is the second: the day is full.
    let a = run(&rows(json!([hold("h_live", "2026-03-03T00:00:00Z", "active")]))).unwrap();
    assert_eq!(starts(&a), Vec::<String>::new());
}

/// Whole UTC days every day, 60-minute slots on the hour, `policy` and
/// `events`, over `[from, to)`.
fn daily(from: &str, to: &str, pol: Value, events: Value, duration: u32) -> Value {
    let mut d = doc(json!({"policies": [pol], "events": events}));
    d["weekly_rules"][0] = rule(127, "00:00", "00:00");
    d["query"]["from"] = from.into();
    d["query"]["to"] = to.into();
    d["query"]["duration_min"] = duration.into();
    d["query"]["step_min"] = duration.into();
    d
}

#[test]
fn day_limits_count_23_and_25_hour_days_in_new_york() {
    // 2026-03-08 in New York is [05:00Z, 03-09 04:00Z) (23 h). One booking a
    // day. An event at 03-09 03:30Z (23:30 EDT on the 8th) fills the 8th;
    // one at 03-08 04:30Z (23:30 EST on the 7th) fills the 7th, which runs
    // to 05:00Z. So nothing from 00:00Z until 03-09 04:00Z, when the 9th
    // starts (the 4:00Z start proves the 8th had 23 hours).
    let pol = policy("r", "America/New_York", 0, 0, Some(1), None);
    let events = json!([event("e7", Some("r"), "2026-03-08T04:30:00Z", "2026-03-08T05:00:00Z"),
                        event("e8", Some("r"), "2026-03-09T03:30:00Z", "2026-03-09T04:00:00Z")]);
    let a = run(&daily("2026-03-08T00:00:00Z", "2026-03-09T06:00:00Z", pol.clone(), events, 60)).unwrap();
    assert_eq!(instants(&a), ["2026-03-09T04:00:00Z", "2026-03-09T05:00:00Z"]);

    // 2026-11-01 is [04:00Z, 11-02 05:00Z) (25 h). An event at 11-02
    // 04:30Z (23:30 EST on the 1st) fills the 1st: free before 04:00Z (the
    // 31st), again from 05:00Z on the 2nd.
    let events = json!([event("e1", Some("r"), "2026-11-02T04:30:00Z", "2026-11-02T05:00:00Z")]);
    let a = run(&daily("2026-11-01T02:00:00Z", "2026-11-02T07:00:00Z", pol, events, 60)).unwrap();
    assert_eq!(instants(&a), ["2026-11-01T02:00:00Z", "2026-11-01T03:00:00Z", "2026-11-02T05:00:00Z", "2026-11-02T06:00:00Z"]);
}

#[test]
fn day_limits_on_lord_howes_half_hour_change() {
    // Australia/Lord_Howe 2026-04-05 falls back 30 minutes at 02:00: the
    // day is [04-04 13:00Z, 04-05 13:30Z) (24.5 h). An event at 13:00Z on
    // the 5th (23:30 +10:30) fills it; 30-minute slots resume at 13:30Z.
    let pol = policy("r", "Australia/Lord_Howe", 0, 0, Some(1), None);
    let events = json!([event("e5", Some("r"), "2026-04-05T13:00:00Z", "2026-04-05T13:30:00Z")]);
    let a = run(&daily("2026-04-04T12:00:00Z", "2026-04-05T14:30:00Z", pol, events, 30)).unwrap();
    assert_eq!(instants(&a), ["2026-04-04T12:00:00Z", "2026-04-04T12:30:00Z", "2026-04-05T13:30:00Z", "2026-04-05T14:00:00Z"]);
}

#[test]
fn week_limits_count_iso_weeks_from_local_monday_midnight() {
    // Berlin, one a week. An event Sunday 2026-03-08 22:30Z (23:30 CET)
    // fills the week of 03-02; the next week starts Monday 00:00 CET =
    // 03-08 23:00Z. A booking counts only for the week its start is in.
    let pol = policy("r", "Europe/Berlin", 0, 0, None, Some(1));
    let events = json!([event("sun", Some("r"), "2026-03-08T22:30:00Z", "2026-03-08T23:00:00Z")]);
    let a = run(&daily("2026-03-08T20:00:00Z", "2026-03-09T02:00:00Z", pol.clone(), events, 60)).unwrap();
    assert_eq!(instants(&a), ["2026-03-08T23:00:00Z", "2026-03-09T00:00:00Z", "2026-03-09T01:00:00Z"]);
    // The same event one hour later (Monday 00:30 CET) fills the new week instead.
    let events = json!([event("mon", Some("r"), "2026-03-08T23:30:00Z", "2026-03-09T00:00:00Z")]);
    let a = run(&daily("2026-03-08T20:00:00Z", "2026-03-09T02:00:00Z", pol, events, 60)).unwrap();
    assert_eq!(instants(&a), ["2026-03-08T20:00:00Z", "2026-03-08T21:00:00Z", "2026-03-08T22:00:00Z"]);
}

#[test]
fn a_reschedule_is_not_busy_buffered_or_counted() {
    // ev_1 10:00–11:00 fills the day (max 1) and has 30-minute buffers.
    let d = doc(json!({"policies": [policy("r", "UTC", 30, 30, Some(1), None)],
                       "events": [event("ev_1", Some("r"), "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z")]}));
    assert_eq!(starts(&run(&d).unwrap()), Vec::<String>::new());
    let mut moving = d.clone();
    moving["query"]["reschedule_event_id"] = "ev_1".into();
    assert_eq!(starts(&run(&moving).unwrap()), every_half_hour("09:00", "16:00"));
    // Naming an event that is not there changes nothing.
    let mut other = d;
    other["query"]["reschedule_event_id"] = "ev_404".into();
    assert_eq!(starts(&run(&other).unwrap()), Vec::<String>::new());
}

#[test]
fn bad_policies_name_their_path() {
    let cases = [
        (json!([{"user_id": "u", "role_code": "r", "timezone": "UTC", "buffer_before_min": 1441}]), "policies[0].buffer_before_min: must be between 0 and 1440, got 1441"),
        (json!([{"user_id": "u", "role_code": "r", "timezone": "UTC", "buffer_after_min": -5}]), "policies[0].buffer_after_min: must be between 0 and 1440, got -5"),
        (json!([{"user_id": "u", "role_code": "r", "timezone": "UTC", "max_per_day": 0}]), "policies[0].max_per_day: must be at least 1, or null for no limit, got 0"),
        (json!([{"user_id": "u", "role_code": "r", "timezone": "UTC", "max_per_week": 1.5}]), "policies[0].max_per_week: must be a whole number"),
        (json!([{"user_id": "u", "role_code": "r", "timezone": "Europe/Berlinn"}]), "policies[0].timezone: unknown zone \"Europe/Berlinn\""),
        (json!([{"user_id": "u", "role_code": "r"}]), "policies[0].timezone: is required"),
        (json!([{"user_id": "u", "timezone": "UTC"}]), "policies[0].role_code: is required"),
        (json!({"user_id": "u"}), "policies: must be an array"),
        (
            json!([policy("r", "UTC", 0, 0, None, None), policy("x", "UTC", 0, 0, None, None), policy("r", "Europe/Berlin", 5, 0, None, None)]),
            "policies[2]: a second policy for user_id \"u\" and role_code \"r\"; the first is policies[0]",
        ),
    ];
    for (policies, want) in cases {
        assert_eq!(run(&doc(json!({"policies": policies}))).unwrap_err(), want);
    }
    // Null limits are no limits; a policy of another user is allowed.
    let ok = json!([{"user_id": "u", "role_code": "r", "timezone": "UTC", "max_per_day": null}, {"user_id": "v", "role_code": "r", "timezone": "UTC"}]);
    assert_eq!(starts(&run(&doc(json!({"policies": ok}))).unwrap()), every_half_hour("09:00", "16:00"));
    let bad_role = doc(json!({"events": [{"user_id": "u", "role_code": 5, "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T11:00:00Z", "status": "confirmed"}]}));
    assert_eq!(run(&bad_role).unwrap_err(), "events[0].role_code: must be a string");
}

fn at(s: &str) -> Instant {
    Instant::parse(s).unwrap()
}

fn request(kind: HoldKind, start: &str, end: &str, event: Option<&str>) -> HoldRequest {
    HoldRequest::new(HoldRequestInput {
        user_id: "u".into(),
        role_code: "r".into(),
        customer_id: None,
        start: at(start),
        end: at(end),
        kind: Some(kind),
        mode: None,
        event_id: event.map(str::to_owned),
        ttl_min: None,
        step_min: None,
        idempotency_key: "k".into(),
    })
    .unwrap()
}

#[test]
fn hold_checks_apply_buffers_and_limits_and_admin_holds_skip_them() {
    // ev_1 11–12, policy r: 30 minutes after, two bookings a day. A slot
    // [t, t+60) widens to [t, t+90) and must miss [11:00, 12:30): 09:00,
    // 09:30, then 12:30 on. So 12:00 is refused through the buffer, with the
    // three nearest feasible starts as alternatives.
    let d = doc(json!({"policies": [policy("r", "UTC", 0, 30, Some(2), None)],
                       "events": [event("ev_1", Some("r"), "2026-03-02T11:00:00Z", "2026-03-02T12:00:00Z")]}));
    let cal = slots_document(&d.to_string()).unwrap().calendar;
    let now = at("2026-03-01T00:00:00Z");
    let refused = holds::check_hold(&request(HoldKind::Checkout, "2026-03-02T12:00:00Z", "2026-03-02T13:00:00Z", None), &cal, now).unwrap_err();
    let BookingError::Conflict { alternatives } = refused else { panic!("{refused:?}") };
    let alt: Vec<String> = alternatives.iter().map(|s| s.start.to_string()).collect();
    assert_eq!(alt, ["2026-03-02T12:30:00Z", "2026-03-02T13:00:00Z", "2026-03-02T13:30:00Z"]);
    assert!(holds::check_hold(&request(HoldKind::Checkout, "2026-03-02T12:30:00Z", "2026-03-02T13:30:00Z", None), &cal, now).is_ok());
    // Admin holds skip buffers (and limits): only overlap refuses them.
    assert!(holds::check_hold(&request(HoldKind::Admin, "2026-03-02T12:00:00Z", "2026-03-02T13:00:00Z", None), &cal, now).is_ok());
    // A reschedule of ev_1 is not buffered by ev_1 itself.
    assert!(holds::check_hold(&request(HoldKind::Reschedule, "2026-03-02T12:00:00Z", "2026-03-02T13:00:00Z", Some("ev_1")), &cal, now).is_ok());

    // With a second booking of the role the day is full: refused anywhere that day.
    let mut full = cal.clone();
    full.events.push(cal_core::EventBusy { event_id: "ev_2".into(), role_code: Some("r".into()), ..cal.events[0].clone() });
    full.events[1].interval = cal_core::Interval::new(at("2026-03-02T15:00:00Z"), at("2026-03-02T16:00:00Z")).unwrap();
    let err = holds::check_hold(&request(HoldKind::Checkout, "2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z", None), &full, now).unwrap_err();
    assert!(matches!(err, BookingError::Conflict { .. }), "{err:?}");
    // Moving one of the two frees a place on that day.
    assert!(holds::check_hold(&request(HoldKind::Reschedule, "2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z", Some("ev_2")), &full, now).is_ok());
}
