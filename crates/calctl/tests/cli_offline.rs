//! `calctl slots --input` as outside checks drive it (CALCTL.md): stdout
//! JSON, exit codes, and one stderr line naming the field.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const SAMPLE: &str = include_str!("fixtures/calctl-sample.json");

fn calctl(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_calctl"))
        .args(args)
        .env_remove("DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("calctl runs");
    if let Some(text) = stdin {
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn sample_document_from_stdin_prints_slots_and_free_json() {
    let out = calctl(&["slots", "--input", "-"], Some(SAMPLE));
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let slots = v["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 121);
    assert_eq!(slots[0]["start"], "2026-03-02T14:00:00Z");
    assert_eq!(slots[0]["end"], "2026-03-02T15:00:00Z");
    assert_eq!(slots[0]["start_local"], "2026-03-02T09:00:00-05:00");
    // 10:00–11:00 EST is the confirmed event; the vacation day 03-10 has nothing.
    assert!(!slots.iter().any(|s| s["start"] == "2026-03-02T15:00:00Z"));
    assert!(!slots.iter().any(|s| s["start"].as_str().unwrap().starts_with("2026-03-10")));
    assert_eq!(v["free"][0], serde_json::json!({"start": "2026-03-02T14:00:00Z", "end": "2026-03-02T15:00:00Z"}));
}

#[test]
fn a_file_path_works_and_json_flag_changes_nothing() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/calctl-sample.json");
    let a = calctl(&["slots", "--input", path], None);
    let b = calctl(&["--json", "slots", "--input", path], None);
    assert!(a.status.success() && b.status.success());
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn bad_input_exits_2_with_the_field_path() {
    let bad = SAMPLE.replace("\"America/New_York\", \"min_duration_min\"", "\"Europe/Berlinn\", \"min_duration_min\"");
    assert_ne!(bad, SAMPLE);
    let out = calctl(&["slots", "--input", "-"], Some(&bad));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out).trim(), r#"calctl: weekly_rules[0].timezone: unknown zone "Europe/Berlinn""#);
    assert!(out.stdout.is_empty());

    let out = calctl(&["slots", "--input", "-"], Some("{\"now\": \n  oops}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));

    let out = calctl(&["slots", "--input", "/nonexistent/doc.json"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent/doc.json"));

    let out = calctl(&["slots", "--input", "-"], Some(&SAMPLE.replace("\"duration_min\": 60", "\"duration_min\": 30")));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("query.duration_min: 30 min is below"), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "one line");
}

#[test]
fn the_same_bounds_as_the_api_refuse_an_unbounded_query_at_once() {
    let doc: Value = serde_json::from_str(SAMPLE).unwrap();
    let with = |from: &str, to: &str, step: i64| {
        let mut d = doc.clone();
        d["query"]["from"] = from.into();
        d["query"]["to"] = to.into();
        d["query"]["step_min"] = step.into();
        d.to_string()
    };
    // 8,000 years: refused before any work, naming `query.to` and the limit.
    let out = calctl(&["slots", "--input", "-"], Some(&with("2026-03-02T00:00:00Z", "9999-12-31T00:00:00Z", 30)));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("query.to: the range may span at most 366 days"), "{}", stderr(&out));
    // A year at a 1-minute step: too many grid points, naming the step.
    let out = calctl(&["slots", "--input", "-"], Some(&with("2026-03-02T00:00:00Z", "2027-03-02T00:00:00Z", 1)));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("query.step_min: "), "{}", stderr(&out));
    // A year at 30 minutes is answered.
    let out = calctl(&["slots", "--input", "-"], Some(&with("2026-03-02T00:00:00Z", "2027-03-02T00:00:00Z", 30)));
    assert!(out.status.success(), "{}", stderr(&out));
}

fn write_temp(name: &str, body: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("calctl-ics-{}-{name}", std::process::id()));
    std::fs::write(&dir, body).unwrap();
    dir
}

#[test]
fn ics_expand_prints_sorted_json_lines_and_warns_with_line_numbers() {
    let body = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:b\r\nSUMMARY:Second\r\nDTSTART;TZID=Europe/Berlin:20260303T100000\r\nDTEND;TZID=Europe/Berlin:20260303T110000\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:a\r\nSUMMARY:First\r\nDTSTART;VALUE=DATE:20260302\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:c\r\nDTSTART:soon\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let path = write_temp("ok.ics", body);
    let out = calctl(&["ics", "expand", path.to_str().unwrap(), "--from", "2026-03-01T00:00:00Z", "--to", "2026-04-01T00:00:00Z", "--tz", "America/New_York"], None);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(
        stdout,
        "{\"start\":\"2026-03-02T05:00:00Z\",\"end\":\"2026-03-03T05:00:00Z\",\"uid\":\"a\",\"summary\":\"First\"}\n\
         {\"start\":\"2026-03-03T09:00:00Z\",\"end\":\"2026-03-03T10:00:00Z\",\"uid\":\"b\",\"summary\":\"Second\"}\n"
    );
    assert!(stderr(&out).contains("line 16: DTSTART \"soon\" cannot be read"), "{}", stderr(&out));
    std::fs::remove_file(path).ok();
}

#[test]
fn ics_expand_rejects_what_is_not_a_calendar_with_exit_3() {
    for (name, body, want) in [
        ("html.ics", &b"<!DOCTYPE html>\n<html>login</html>"[..], "line 1: not an iCalendar file"),
        ("empty.ics", &b""[..], "line 1: empty body"),
        ("cut.ics", &b"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\n"[..], "line 3: truncated"),
    ] {
        let path = write_temp(name, body);
        let out = calctl(&["ics", "expand", path.to_str().unwrap(), "--from", "2026-03-01T00:00:00Z", "--to", "2026-04-01T00:00:00Z"], None);
        assert_eq!(out.status.code(), Some(3), "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{name}: {}", stderr(&out));
        assert!(out.stdout.is_empty());
        std::fs::remove_file(path).ok();
    }
}

#[test]
fn explain_prints_one_line_of_json_with_every_reason() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/calctl-sample.json");
    let out = calctl(&["explain", "--input", path, "--start", "2026-03-02T15:00:00Z", "--end", "2026-03-02T16:00:00Z"], None);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "{\"bookable\":false,\"reasons\":[{\"code\":\"BUSY_EVENT\",\"event_id\":\"ev_1\"}]}\n");
    // A slot the sample offers is bookable; from stdin as well.
    let out = calctl(&["explain", "--input", "-", "--start", "2026-03-02T14:00:00Z", "--end", "2026-03-02T15:00:00Z"], Some(SAMPLE));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "{\"bookable\":true,\"reasons\":[]}\n");
    // The vacation day, 30 minutes at 14:10Z (09:10 EST), on a 15-minute step.
    let out = calctl(&["explain", "--input", "-", "--start", "2026-03-10T14:10:00Z", "--end", "2026-03-10T14:40:00Z", "--step-min", "15"], Some(SAMPLE));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["reasons"],
        serde_json::json!([{"code": "EXCEPTION", "exc_id": "ex_1"}, {"code": "MIN_DURATION", "min_duration_min": 60}, {"code": "OFF_GRID", "step_min": 15}])
    );
    // `--now` of the document counts: 2026-03-02 13:00Z is inside the 24 h lead.
    let v: Value = serde_json::from_slice(&calctl(&["explain", "--input", "-", "--start", "2026-03-02T14:00:00Z", "--end", "2026-03-02T15:00:00Z"],
        Some(&SAMPLE.replace("\"now\": \"2026-03-01T12:00:00Z\"", "\"now\": \"2026-03-01T15:00:00Z\""))).stdout).unwrap();
    assert_eq!(v["reasons"], serde_json::json!([{"code": "LEAD_TIME", "limit": "2026-03-02T15:00:00Z"}]));
}

#[test]
fn explain_refuses_like_slots_with_exit_2() {
    let run = |start: &str, end: &str, extra: &[&str], doc: &str| {
        let mut args = vec!["explain", "--input", "-", "--start", start, "--end", end];
        args.extend_from_slice(extra);
        calctl(&args, Some(doc))
    };
    for (out, want) in [
        (run("2026-03-02T14:00:00Z", "2026-03-02T14:30:30Z", &[], SAMPLE), "calctl: --end: the span must last whole minutes, got 1830 s"),
        (run("2026-03-02T14:00:00Z", "2026-03-02T13:00:00Z", &[], SAMPLE), "calctl: --end: end 2026-03-02T13:00:00Z is not after start 2026-03-02T14:00:00Z"),
        (run("monday", "2026-03-02T13:00:00Z", &[], SAMPLE), "calctl: --start: not an RFC 3339 instant: \"monday\" (expected e.g. \"2026-03-01T12:00:00Z\")"),
        (run("2026-03-02T14:00:00Z", "2026-03-02T15:00:00Z", &["--step-min", "0"], SAMPLE), "calctl: --step-min: must be between 1 and 1440 minutes, got 0"),
        (
            run("2026-03-02T14:00:00Z", "2026-03-02T15:00:00Z", &[], &SAMPLE.replace("\"America/New_York\", \"min_duration_min\"", "\"Europe/Berlinn\", \"min_duration_min\"")),
            r#"calctl: weekly_rules[0].timezone: unknown zone "Europe/Berlinn""#,
        ),
    ] {
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert_eq!(stderr(&out).trim(), want);
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn slots_read_policies_reschedules_and_parties() {
    let mut doc: Value = serde_json::from_str(SAMPLE).unwrap();
    doc["query"]["to"] = "2026-03-03T00:00:00Z".into();
    doc["events"][0]["role_code"] = "photographer".into();
    doc["policies"] = serde_json::json!([{"user_id": "u_1", "role_code": "photographer", "timezone": "America/New_York",
        "buffer_before_min": 30, "buffer_after_min": 0, "max_per_day": null, "max_per_week": null}]);
    let starts = |d: &Value| {
        let out = calctl(&["slots", "--input", "-"], Some(&d.to_string()));
        assert!(out.status.success(), "{}", stderr(&out));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["slots"].as_array().unwrap().iter().map(|s| s["start"].as_str().unwrap()[11..16].to_owned()).collect::<Vec<_>>()
    };
    // 30 minutes before every booking of the role. ev_1 15:00–16:00Z
    // widens to [14:30, 16:00); a slot [t, t+60) to [t−30, t+60). 14:00
    // (ending at ev_1's start) would leave ev_1 no time before it; 16:00
    // has none itself; the first after ev_1 is 16:30.
    assert_eq!(starts(&doc)[..3], ["16:30", "17:00", "17:30"]);
    doc["query"]["reschedule_event_id"] = "ev_1".into();
    assert_eq!(starts(&doc)[..3], ["14:00", "14:30", "15:00"]);

    // A second policy row for the pair names its own path.
    let mut twice = doc.clone();
    let p = twice["policies"][0].clone();
    twice["policies"].as_array_mut().unwrap().push(p);
    let out = calctl(&["slots", "--input", "-"], Some(&twice.to_string()));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out).trim(), "calctl: policies[1]: a second policy for user_id \"u_1\" and role_code \"photographer\"; the first is policies[0]");
    let mut bad = doc.clone();
    bad["policies"][0]["buffer_before_min"] = 2000.into();
    let out = calctl(&["slots", "--input", "-"], Some(&bad.to_string()));
    assert_eq!(stderr(&out).trim(), "calctl: policies[0].buffer_before_min: must be between 0 and 1440, got 2000");

    // parties: one group naming u_1 alone; each slot carries "parties".
    let mut party = doc;
    party["query"]["parties"] = serde_json::json!([{"any_of": [{"user_id": "u_1", "role_code": "photographer"}]}]);
    let out = calctl(&["slots", "--input", "-"], Some(&party.to_string()));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["slots"][0]["parties"], serde_json::json!([["u_1"]]));
    assert_eq!(v["slots"][0]["start_local"], "2026-03-02T09:00:00-05:00");
    assert!(v["free"].is_array());
}
