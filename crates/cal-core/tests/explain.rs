//! SEMANTICS.md §10, one reason per test, through the document `calctl
//! explain` reads. Monday 2026-03-02, 09:00–17:00 UTC, 60-minute minimum,
//! 24 hours' lead, a 10-day booking window; now is 2026-03-01 00:00Z, so
//! the lead time ends 03-02 00:00Z and the window 03-11 00:00Z.

use cal_core::explain::{explain, span};
use cal_core::slots_document::explain_document;
use cal_core::{Instant, StepMinutes};
use serde_json::{Value, json};

fn doc(patch: Value) -> Value {
    let mut d = json!({
        "now": "2026-03-01T00:00:00Z",
        "query": {"user_id": "u", "role_code": "r"},
        "weekly_rules": [{"user_id": "u", "role_code": "r", "weekday_mask": 1, "start_local": "09:00", "end_local": "17:00",
                          "timezone": "UTC", "min_duration_min": 60, "lead_time_hours": 24, "booking_window_days": 10}],
    });
    for (k, v) in patch.as_object().unwrap() {
        d[k] = v.clone();
    }
    d
}

/// The explanation of `[start, end)` (times on 2026-03-02 unless a full
/// instant is given), at a 30-minute step, as JSON.
fn why(d: &Value, start: &str, end: &str) -> Value {
    let full = |t: &str| if t.len() == 5 { format!("2026-03-02T{t}:00Z") } else { t.to_owned() };
    let doc = explain_document(&d.to_string()).unwrap();
    let iv = span(Instant::parse(&full(start)).unwrap(), Instant::parse(&full(end)).unwrap()).unwrap();
    serde_json::to_value(explain(&doc.user_id, &doc.role_code, iv, StepMinutes::default(), &doc.calendar, doc.now)).unwrap()
}

fn event(id: &str, role: Option<&str>, start: &str, end: &str) -> Value {
    json!({"event_id": id, "user_id": "u", "role_code": role, "start": format!("2026-03-02T{start}:00Z"),
           "end": format!("2026-03-02T{end}:00Z"), "status": "confirmed"})
}

#[test]
fn a_bookable_span_has_no_reasons() {
    assert_eq!(why(&doc(json!({})), "10:00", "11:00"), json!({"bookable": true, "reasons": []}));
}

#[test]
fn busy_time_and_exceptions_give_one_reason_each_sorted_by_code_then_id() {
    // 12:00–14:00 overlaps two events, a live hold, an external interval
    // and an unavailable exception; a cancelled event, an expired hold, an
    // event that only touches the span and another user's event do not count.
    let d = doc(json!({
        "events": [event("ev_b", None, "12:00", "12:30"), event("ev_a", None, "13:30", "14:30"), event("touch", None, "14:00", "15:00"),
                   {"event_id": "gone", "user_id": "u", "start": "2026-03-02T12:00:00Z", "end": "2026-03-02T13:00:00Z", "status": "cancelled"},
                   {"event_id": "theirs", "user_id": "v", "start": "2026-03-02T12:00:00Z", "end": "2026-03-02T13:00:00Z", "status": "confirmed"}],
        "holds": [{"hold_id": "h_1", "user_id": "u", "start": "2026-03-02T13:00:00Z", "end": "2026-03-02T13:30:00Z", "expires_at": "2026-03-01T00:10:00Z", "status": "active"},
                  {"hold_id": "h_old", "user_id": "u", "start": "2026-03-02T13:00:00Z", "end": "2026-03-02T13:30:00Z", "expires_at": "2026-03-01T00:00:00Z", "status": "active"}],
        "external_busy": [{"start": "2026-03-02T12:30:00Z", "end": "2026-03-02T13:00:00Z"}],
        "exceptions": [{"exc_id": "ex_1", "user_id": "u", "date_local": "2026-03-02", "timezone": "UTC", "kind": "unavailable",
                        "start_local": "13:45", "end_local": "14:00"}],
    }));
    assert_eq!(
        why(&d, "12:00", "14:00"),
        json!({"bookable": false, "reasons": [
            {"code": "BUSY_EVENT", "event_id": "ev_a"},
            {"code": "BUSY_EVENT", "event_id": "ev_b"},
            {"code": "BUSY_EXTERNAL", "start": "2026-03-02T12:30:00Z", "end": "2026-03-02T13:00:00Z"},
            {"code": "BUSY_HOLD", "hold_id": "h_1", "expires_at": "2026-03-01T00:10:00Z"},
            {"code": "EXCEPTION", "exc_id": "ex_1"}]})
    );
}

#[test]
fn outside_hours_and_what_is_checked_without_a_governing_window() {
    // Runs past 17:00: outside hours; the start is governed, all else holds.
    assert_eq!(why(&doc(json!({})), "16:30", "17:30")["reasons"], json!([{"code": "OUTSIDE_HOURS"}]));
    // No window contains 08:10: only OUTSIDE_HOURS, not OFF_GRID or
    // MIN_DURATION (nothing governs the start).
    assert_eq!(why(&doc(json!({})), "08:10", "08:40")["reasons"], json!([{"code": "OUTSIDE_HOURS"}]));
    // An available exception replaces Monday's hours with 12:00–13:00:
    // 10:00 is outside them.
    let d = doc(json!({"exceptions": [{"user_id": "u", "date_local": "2026-03-02", "timezone": "UTC", "kind": "available", "start_local": "12:00", "end_local": "13:00"}]}));
    assert_eq!(why(&d, "10:00", "11:00")["reasons"], json!([{"code": "OUTSIDE_HOURS"}]));
    assert_eq!(why(&d, "12:00", "13:00")["bookable"], true);
}

#[test]
fn lead_time_booking_window_minimum_and_grid_carry_their_limits() {
    let late_now = doc(json!({"now": "2026-03-01T12:00:00Z"}));
    assert_eq!(why(&late_now, "10:00", "11:00")["reasons"], json!([{"code": "LEAD_TIME", "limit": "2026-03-02T12:00:00Z"}]));
    // Monday 03-16 10:00 is after now + 10 days = 03-11 00:00Z.
    assert_eq!(
        why(&doc(json!({})), "2026-03-16T10:00:00Z", "2026-03-16T11:00:00Z")["reasons"],
        json!([{"code": "BOOKING_WINDOW", "limit": "2026-03-11T00:00:00Z"}])
    );
    assert_eq!(
        why(&doc(json!({})), "10:10", "10:40")["reasons"],
        json!([{"code": "MIN_DURATION", "min_duration_min": 60}, {"code": "OFF_GRID", "step_min": 30}])
    );
}

#[test]
fn buffers_name_each_booking_or_external_row_and_busy_wins_over_buffer() {
    // Policy r: 30 before, 30 after. 13:00–14:00 widens to [12:30, 14:30):
    // ev_1 12:00–13:00 (role r, widened to 13:30) and the external
    // 14:00–14:15 conflict only through buffers; hold h_2 14:45–15:00 (no
    // role) is 45 minutes away from the span's end, beyond its 30.
    // ev_2 overlaps the span itself: BUSY_EVENT, not BUFFER.
    let d = doc(json!({
        "policies": [{"user_id": "u", "role_code": "r", "timezone": "UTC", "buffer_before_min": 30, "buffer_after_min": 30}],
        "events": [event("ev_1", Some("r"), "12:00", "13:00"), event("ev_2", Some("r"), "13:50", "14:00")],
        "holds": [{"hold_id": "h_2", "user_id": "u", "start": "2026-03-02T14:45:00Z", "end": "2026-03-02T15:00:00Z", "expires_at": "2026-03-02T00:00:00Z", "status": "active"}],
        "external_busy": [{"start": "2026-03-02T14:00:00Z", "end": "2026-03-02T14:15:00Z"}],
    }));
    assert_eq!(
        why(&d, "13:00", "14:00")["reasons"],
        json!([
            {"code": "BUFFER", "start": "2026-03-02T14:00:00Z", "end": "2026-03-02T14:15:00Z"},
            {"code": "BUFFER", "event_id": "ev_1"},
            {"code": "BUSY_EVENT", "event_id": "ev_2"}])
    );
    // The hold's own role's buffer reaches it: with h_2 as role r (30 before),
    // [14:15, 15:30) meets the span's widened [12:30, 14:30).
    let mut d = d;
    d["holds"][0]["role_code"] = "r".into();
    let reasons = why(&d, "13:00", "14:00")["reasons"].clone();
    assert!(reasons.as_array().unwrap().contains(&json!({"code": "BUFFER", "hold_id": "h_2"})), "{reasons}");
}

#[test]
fn day_and_week_limits_give_count_and_limit() {
    // One a day, two a week (UTC): ev_a Monday and ev_b Tuesday fill both
    // for a Monday span; a booking without role_code never counts.
    let d = doc(json!({
        "policies": [{"user_id": "u", "role_code": "r", "timezone": "UTC", "max_per_day": 1, "max_per_week": 2}],
        "events": [event("ev_a", Some("r"), "09:00", "09:30"), event("no_role", None, "10:00", "10:30"),
                   {"event_id": "ev_b", "user_id": "u", "role_code": "r", "start": "2026-03-03T09:00:00Z", "end": "2026-03-03T09:30:00Z", "status": "confirmed"}],
    }));
    assert_eq!(
        why(&d, "15:00", "16:00")["reasons"],
        json!([{"code": "DAY_LIMIT", "count": 1, "limit": 1}, {"code": "WEEK_LIMIT", "count": 2, "limit": 2}])
    );
    // Rescheduling ev_a: it is not counted (nor busy): bookable.
    let mut moving = d;
    moving["query"]["reschedule_event_id"] = "ev_a".into();
    assert_eq!(why(&moving, "09:00", "10:00"), json!({"bookable": true, "reasons": []}));
}

#[test]
fn spans_that_are_not_whole_minutes_or_do_not_end_after_they_start_are_refused() {
    let at = |s: &str| Instant::parse(s).unwrap();
    assert_eq!(span(at("2026-03-02T10:00:00Z"), at("2026-03-02T10:00:30Z")).unwrap_err().to_string(), "the span must last whole minutes, got 30 s");
    assert!(span(at("2026-03-02T10:00:00Z"), at("2026-03-02T10:00:00Z")).unwrap_err().to_string().contains("is not after start"));
    assert!(span(at("2026-03-02T10:00:00Z"), at("2026-05-02T10:00:00Z")).unwrap_err().to_string().contains("must be between 1 and 44640"));
}
