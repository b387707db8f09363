//! SEMANTICS.md §9 party queries through the `calctl slots --input`
//! document, with hand-worked expectations.
//!
//! Monday 2026-03-02, no lead time, 30-minute step. The cast:
//! - `ph`, photographer, 10:00–13:00 Europe/Berlin (09:00–12:00Z), minimum 60;
//! - `mo`, model, 10:00–13:00 UTC, minimum 90;
//! - `r1`, room, 09:00–17:00 UTC, minimum 30;
//! - `r2`, room, 12:00–18:00 Europe/Berlin (11:00–17:00Z), minimum 120.

use serde_json::{Value, json};

fn rule(user: &str, role: &str, start: &str, end: &str, tz: &str, min: u32) -> Value {
    json!({"rule_id": format!("wr_{user}"), "user_id": user, "role_code": role, "weekday_mask": 1, "start_local": start,
           "end_local": end, "timezone": tz, "min_duration_min": min, "lead_time_hours": 0, "booking_window_days": 60})
}

fn who(user: &str, role: &str) -> Value {
    json!({"user_id": user, "role_code": role})
}

fn ph() -> Value {
    who("ph", "photographer")
}
fn mo() -> Value {
    who("mo", "model")
}
fn r1() -> Value {
    who("r1", "room")
}
fn r2() -> Value {
    who("r2", "room")
}

fn doc(query: Value) -> Value {
    let mut q = json!({"from": "2026-03-02T00:00:00Z", "to": "2026-03-03T00:00:00Z", "step_min": 30});
    for (k, v) in query.as_object().unwrap() {
        q[k] = v.clone();
    }
    json!({"now": "2026-03-01T00:00:00Z", "query": q, "weekly_rules": [
        rule("ph", "photographer", "10:00", "13:00", "Europe/Berlin", 60),
        rule("mo", "model", "10:00", "13:00", "UTC", 90),
        rule("r1", "room", "09:00", "17:00", "UTC", 30),
        rule("r2", "room", "12:00", "18:00", "Europe/Berlin", 120)]})
}

fn run(d: &Value) -> Result<Value, String> {
    let parsed = cal_core::slots_document::slots_document(&d.to_string()).map_err(|e| e.to_string())?;
    cal_core::slots_document::answer(&parsed).map(|a| serde_json::to_value(a).unwrap()).map_err(|e| e.to_string())
}

#[test]
fn all_of_and_any_of_groups_take_the_largest_minimum_of_those_taken() {
    // Group 0 all_of [ph, mo]: common starts 10:00–11:30Z; the slot lasts
    // max(60, 90) = 90, which ph fits until 10:30 (ph ends 12:00Z). Group 1
    // any_of [r1, r2]: r1 is free then; r2 starts only at 11:00Z. The 90
    // minutes are the all_of group's, so every free room fitting 90 takes
    // part: r1 (r2's own minimum, 120, is above 90). start_local is ph's zone.
    let a = run(&doc(json!({"parties": [{"all_of": [ph(), mo()]}, {"any_of": [r1(), r2()]}]}))).unwrap();
    assert_eq!(
        a["slots"],
        json!([
            {"start": "2026-03-02T10:00:00Z", "end": "2026-03-02T11:30:00Z", "start_local": "2026-03-02T11:00:00+01:00", "parties": [["ph", "mo"], ["r1"]]},
            {"start": "2026-03-02T10:30:00Z", "end": "2026-03-02T12:00:00Z", "start_local": "2026-03-02T11:30:00+01:00", "parties": [["ph", "mo"], ["r1"]]}
        ])
    );
    // free: (ph ∩ mo) ∩ (r1 ∪ r2) = [10:00, 12:00) ∩ [09:00, 17:00).
    assert_eq!(a["free"], json!([{"start": "2026-03-02T10:00:00Z", "end": "2026-03-02T12:00:00Z"}]));
}

#[test]
fn an_any_of_member_that_sets_the_length_is_the_only_one_named_for_it() {
    // any_of [r1, r2] first, then all_of [mo]; look at 11:00Z. Taking r1
    // gives max(30, 90) = 90: 11:00–12:30, r1 named (r2 cannot do 90, its
    // minimum is 120). Taking r2 gives max(120, 90) = 120: 11:00–13:00, and
    // only r2 is named: with r1 the slot would last 90. start_local is the
    // first named provider's zone: r1's UTC, then r2's Berlin.
    let a = run(&doc(json!({"parties": [{"any_of": [r1(), r2()]}, {"all_of": [mo()]}], "from": "2026-03-02T11:00:00Z", "to": "2026-03-02T11:01:00Z"}))).unwrap();
    assert_eq!(
        a["slots"],
        json!([
            {"start": "2026-03-02T11:00:00Z", "end": "2026-03-02T12:30:00Z", "start_local": "2026-03-02T11:00:00+00:00", "parties": [["r1"], ["mo"]]},
            {"start": "2026-03-02T11:00:00Z", "end": "2026-03-02T13:00:00Z", "start_local": "2026-03-02T12:00:00+01:00", "parties": [["r2"], ["mo"]]}
        ])
    );
    // With a duration of 120 both rooms fit: one slot naming both.
    let mut d = doc(json!({"parties": [{"any_of": [r1(), r2()]}, {"all_of": [mo()]}], "from": "2026-03-02T11:00:00Z", "to": "2026-03-02T11:01:00Z", "duration_min": 120}));
    let a = run(&d).unwrap();
    assert_eq!(a["slots"][0]["parties"], json!([["r1", "r2"], ["mo"]]));
    assert_eq!(a["slots"].as_array().unwrap().len(), 1);
    // Each member under its own policy: r1's booking 10:00–10:30 as a room
    // with 60 minutes after it keeps r1 out until 11:30.
    d["events"] = json!([{"event_id": "e", "user_id": "r1", "role_code": "room", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T10:30:00Z", "status": "confirmed"}]);
    d["policies"] = json!([{"user_id": "r1", "role_code": "room", "timezone": "UTC", "buffer_after_min": 60}]);
    assert_eq!(run(&d).unwrap()["slots"][0]["parties"], json!([["r2"], ["mo"]]));
}

#[test]
fn the_duration_is_refused_per_group() {
    // all_of [mo]: 45 < 90, mo refuses, so the group does.
    let err = run(&doc(json!({"parties": [{"any_of": [r1(), r2()]}, {"all_of": [mo()]}], "duration_min": 45}))).unwrap_err();
    assert_eq!(err, "query.parties[1].all_of[0].duration_min: 45 min is below the minimum duration of every window in the range (smallest minimum: 90 min)");
    // any_of [r2, r1] at 60: r2 refuses, r1 does not: no refusal; r1 alone.
    let a = run(&doc(json!({"parties": [{"any_of": [r2(), r1()]}], "duration_min": 60, "to": "2026-03-02T09:01:00Z"}))).unwrap();
    assert_eq!(a["slots"][0]["parties"], json!([["r1"]]));
    // any_of [nobody, r2] at 60: the member without windows does not count.
    let err = run(&doc(json!({"parties": [{"any_of": [who("nobody", "room"), r2()]}], "duration_min": 60}))).unwrap_err();
    assert!(err.starts_with("query.parties[0].any_of[1].duration_min: 60 min is below"), "{err}");
}

#[test]
fn parties_win_over_all_of_over_any_of_over_user_id() {
    let parties = json!([{"any_of": [r1()]}]);
    let all_of = json!([r2()]);
    let any_of = json!([mo()]);
    let q = |with: &[(&str, &Value)]| {
        let mut q = json!({"user_id": "ph", "role_code": "photographer", "to": "2026-03-02T11:01:00Z"});
        for (k, v) in with {
            q[*k] = (*v).clone();
        }
        run(&doc(q)).unwrap()
    };
    let first = |a: &Value| a["slots"][0].clone();
    let r1_first = first(&q(&[("parties", &parties), ("all_of", &all_of), ("any_of", &any_of)]));
    assert_eq!((r1_first["start"].as_str(), &r1_first["parties"]), (Some("2026-03-02T09:00:00Z"), &json!([["r1"]])));
    let r2_first = first(&q(&[("all_of", &all_of), ("any_of", &any_of)]));
    assert_eq!((r2_first["start"].as_str(), &r2_first["providers"]), (Some("2026-03-02T11:00:00Z"), &json!(["r2"])));
    let mo_first = first(&q(&[("any_of", &any_of)]));
    assert_eq!((mo_first["start"].as_str(), &mo_first["providers"]), (Some("2026-03-02T10:00:00Z"), &json!(["mo"])));
    let ph_first = first(&q(&[]));
    assert_eq!((ph_first["start"].as_str(), ph_first.get("providers")), (Some("2026-03-02T09:00:00Z"), None));
}

#[test]
fn bad_groups_name_their_path() {
    for (parties, want) in [
        (json!([]), "query.parties: must be a non-empty array of groups"),
        (json!({}), "query.parties: must be an array"),
        (json!([{"all_of": []}]), "query.parties[0].all_of: must be a non-empty array of {user_id, role_code}"),
        (json!([{}]), "query.parties[0]: must be an object with exactly one of \"all_of\" or \"any_of\""),
        (json!([{"all_of": [ph()], "any_of": [r1()]}]), "query.parties[0]: must be an object with exactly one of \"all_of\" or \"any_of\""),
        (json!([{"all_of": [ph()]}, {"any_of": [{"user_id": "r1"}]}]), "query.parties[1].any_of[0].role_code: is required"),
    ] {
        assert_eq!(run(&doc(json!({"parties": parties}))).unwrap_err(), want);
    }
}
