//! `calctl ics expand` on real-world-shaped calendars (tests/fixtures/ics):
//! each `NAME.ics` must print exactly `NAME.expected.jsonl` (intervals worked
//! out by hand; see crates/cal-core/tests/ics_import.rs), and each
//! `malformed-*.ics` must exit 3 naming its line, never panic.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ics")
}

fn expand(file: &Path, tz: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_calctl"))
        .args(["ics", "expand", file.to_str().unwrap(), "--from", "2026-01-01T00:00:00Z", "--to", "2027-01-01T00:00:00Z", "--tz", tz])
        .output()
        .unwrap()
}

#[test]
fn every_fixture_expands_to_exactly_its_expected_intervals() {
    let mut checked = 0;
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !name.ends_with(".ics") || name.starts_with("malformed-") {
            continue;
        }
        // Floating and all-day times in the provider's zone.
        let tz = if name.contains("new-york") { "America/New_York" } else { "UTC" };
        let out = expand(&path, tz);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let expected = std::fs::read_to_string(path.with_extension("expected.jsonl")).unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), expected, "{name}");
        assert!(!expected.is_empty(), "{name} expects no busy time: a fixture that tests nothing");
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} fixtures found");
}

#[test]
fn malformed_fixtures_exit_3_with_their_line() {
    for (name, line) in [("malformed-html.ics", 1), ("malformed-truncated.ics", 5), ("malformed-binary.ics", 3)] {
        let out = expand(&fixtures().join(name), "UTC");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{name}: {stderr}");
        assert!(stderr.contains(&format!("calctl: line {line}: ")), "{name}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}
