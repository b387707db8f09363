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
