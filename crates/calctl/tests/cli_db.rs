//! calctl against a real database: migrate, seed-demo and slots, as
//! `make demo` runs them and as operators type them (CALCTL.md).

use std::process::{Command, Output};

use cal_store::testing::TestDb;
use serde_json::Value;

fn calctl(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_calctl")).args(args).env("DATABASE_URL", url).output().expect("calctl runs")
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "calctl failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[tokio::test]
async fn migrate_seed_and_query_slots_through_the_cli() {
    let db = TestDb::empty().await;
    let url = db.url();
    let first: Value = serde_json::from_str(&ok(&calctl(&url, &["migrate", "--json"]))).unwrap();
    let every: Vec<i32> = cal_store::MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(first["applied"], serde_json::json!(every));
    let again: Value = serde_json::from_str(&ok(&calctl(&url, &["--json", "migrate"]))).unwrap();
    assert_eq!(again["applied"], serde_json::json!([]), "migrate is idempotent");

    let seeded: Value = serde_json::from_str(&ok(&calctl(&url, &["seed-demo", "--json"]))).unwrap();
    let week_start = seeded["week_start"].as_str().unwrap().to_owned();
    let vacation = seeded["vacation"][0].as_str().unwrap().to_owned();

    // The week after the seed, in JSON: the vacation day has no slot, others do.
    let from = format!("{week_start}T00:00:00+01:00");
    let to_date = chrono::NaiveDate::parse_from_str(&week_start, "%Y-%m-%d").unwrap() + chrono::Duration::days(7);
    let to = format!("{to_date}T00:00:00+01:00");
    let json: Value = serde_json::from_str(&ok(&calctl(
        &url,
        &["slots", "--user", "demo_provider", "--role", "photographer", "--from", &from, "--to", &to, "--json"],
    )))
    .unwrap();
    let slots = json["slots"].as_array().unwrap();
    assert!(slots.len() > 20, "a working week of slots, got {}", slots.len());
    assert!(slots.iter().all(|s| !s["start_local"].as_str().unwrap().starts_with(&vacation)));
    assert!(slots.iter().all(|s| s["start_local"].as_str().unwrap().ends_with("+01:00")), "rendered in Berlin winter time");

    // The same without --json is the week view, in the provider's zone.
    let text = ok(&calctl(&url, &["slots", "--user", "demo_provider", "--role", "photographer", "--from", &from, "--to", &to]));
    assert!(text.contains("times in Europe/Berlin"), "{text}");
    assert_eq!(text.matches("\nMon ").count() + text.matches("\nTue ").count(), 2, "{text}");
    let vacation_day = chrono::NaiveDate::parse_from_str(&vacation, "%Y-%m-%d").unwrap().format("%a %Y-%m-%d").to_string();
    let day_block = text.split("\n\n").find(|b| b.starts_with(&vacation_day)).expect("the vacation day is listed");
    assert!(day_block.contains("—") && day_block.contains("none"), "{day_block}");

    // Bad input exits 2 naming the flag; no database is touched to say so.
    let bad = calctl(&url, &["slots", "--user", "u", "--role", "r", "--from", &to, "--to", &from]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--to"));
}

#[test]
fn without_a_database_url_the_error_says_how_to_give_one() {
    let out = Command::new(env!("CARGO_BIN_EXE_calctl")).arg("migrate").env_remove("DATABASE_URL").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DATABASE_URL"));
}

#[tokio::test]
async fn sync_connections_are_listed_shown_and_resynced_without_a_secret() {
    let db = TestDb::empty().await;
    let url = db.url();
    ok(&calctl(&url, &["migrate"]));
    ok(&calctl(&url, &["seed-demo"]));
    let id = cal_store::demo::sample::CONNECTION;
    let list: Value = serde_json::from_str(&ok(&calctl(&url, &["sync", "list", "--user", "demo_provider", "--json"]))).unwrap();
    assert_eq!(list[0]["connection_id"], id);
    assert_eq!((list[0]["service"].as_str(), list[0]["status"].as_str()), (Some("google"), Some("connected")));
    assert!(!list.to_string().contains("token") && !list.to_string().contains("not a token"), "{list}");
    let text = ok(&calctl(&url, &["sync", "show", id]));
    assert!(text.starts_with(&format!("{id}  google  demo.provider@example.com  connected")), "{text}");
    assert!(text.contains("blocks; no watch"), "{text}");
    let resync: Value = serde_json::from_str(&ok(&calctl(&url, &["sync", "resync", id, "--json"]))).unwrap();
    assert_eq!(resync["resync"], serde_json::json!([cal_store::demo::sample::SYNC_CALENDAR]));
    let missing = calctl(&url, &["sync", "show", "con_nope"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("con_nope"));
}
