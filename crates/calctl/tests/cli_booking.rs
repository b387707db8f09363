//! Holds and bookings through the CLI (CALCTL.md, SEMANTICS.md §5), against
//! a fresh database per test: idempotent creation, the lost race with its
//! alternatives, conversion, reschedule, cancel, Request-to-Book, expiry, and
//! 20 processes racing for one provider's time.

use std::process::{Command, Output, Stdio};

use cal_core::availability::{BookingParams, WeekdayMask, WeeklyRule};
use cal_core::{LocalTime, Zone};
use cal_store::testing::TestDb;
use serde_json::Value;

/// Sunday noon UTC; the provider books Monday 2026-03-02 in New York (EST, -05:00).
const NOW: &str = "2026-03-01T12:00:00Z";
const USER: &str = "u_1";
const ROLE: &str = "photographer";

fn calctl(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_calctl")).args(args).env("DATABASE_URL", url).output().expect("calctl runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_ok(o: &Output) -> Value {
    assert!(o.status.success(), "calctl failed ({:?}): {}", o.status.code(), stderr(o));
    serde_json::from_slice(&o.stdout).expect("stdout is JSON")
}

/// Asserts the exit code and the one stderr line's `calctl: TYPE:` prefix.
fn fails(o: &Output, code: i32, error_type: &str) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.starts_with(&format!("calctl: {error_type}: ")), "{err}");
    err
}

/// A fresh database with `u_1` bookable every day 08:00–18:00 New York time.
async fn seeded() -> TestDb {
    let mut db = TestDb::new().await;
    let rule = WeeklyRule {
        rule_id: "wr_1".into(),
        user_id: USER.into(),
        role_code: ROLE.into(),
        weekday_mask: WeekdayMask::new(127).unwrap(),
        start_local: LocalTime::parse("08:00").unwrap(),
        end_local: LocalTime::parse("18:00").unwrap(),
        timezone: Zone::parse("America/New_York").unwrap(),
        params: BookingParams::new(Some(60), Some(1), Some(60)).unwrap(),
        active: true,
    };
    cal_store::put_rule(&mut db.client, &rule).await.expect("rule stored");
    db
}

/// `calctl --json hold create` for u_1, as a checkout hold unless `extra` says otherwise.
fn create_args<'a>(key: &'a str, start: &'a str, end: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--json", "hold", "create", "--user", USER, "--role", ROLE, "--start", start, "--end", end];
    if !extra.contains(&"--kind") {
        args.extend(["--kind", "checkout"]);
    }
    if !extra.contains(&"--now") {
        args.extend(["--now", NOW]);
    }
    args.extend(["--idempotency-key", key]);
    args.extend(extra);
    args
}

fn create(url: &str, key: &str, start: &str, end: &str, extra: &[&str]) -> Output {
    calctl(url, &create_args(key, start, end, extra))
}

/// Any two of {active unexpired holds, confirmed events} of u_1 that overlap.
const OVERLAPS: &str = "with busy as (
        select hold_id as id, start_at, end_at from cal.hold
         where user_id = 'u_1' and status = 'active' and expires_at > '2026-03-01T12:00:00Z'
        union all
        select event_id, start_at, end_at from cal.event where user_id = 'u_1' and status = 'confirmed')
    select count(*) from busy a join busy b
      on a.id < b.id and tstzrange(a.start_at, a.end_at, '[)') && tstzrange(b.start_at, b.end_at, '[)')";

#[tokio::test]
async fn hold_confirm_reschedule_cancel_through_the_cli() {
    let db = seeded().await;
    let url = db.url();

    // Create; the same key and request again is the same hold.
    let hold = json_ok(&create(&url, "k1", "2026-03-02T14:00:00Z", "2026-03-02T15:00:00Z", &["--customer", "c_9"]));
    let hold_id = hold["hold_id"].as_str().unwrap().to_owned();
    assert!(hold_id.starts_with("hld_"), "{hold}");
    assert_eq!(hold["status"], "active");
    assert_eq!(hold["kind"], "checkout");
    assert_eq!(hold["mode"], "instant");
    assert_eq!(hold["expires_at"], "2026-03-01T12:10:00Z", "instant holds live 10 minutes");
    let again = json_ok(&create(&url, "k1", "2026-03-02T14:00:00Z", "2026-03-02T15:00:00Z", &["--customer", "c_9"]));
    assert_eq!(again["hold_id"], hold_id.as_str());

    // The same key for another request is refused; nothing is stored.
    let out = create(&url, "k1", "2026-03-02T15:00:00Z", "2026-03-02T16:00:00Z", &["--customer", "c_9"]);
    let err = fails(&out, 2, "IDEMPOTENCY_MISMATCH");
    assert!(err.contains("k1"), "{err}");

    // Another key over the held time loses with nearby alternatives, on the
    // stderr line and as the JSON error object on stdout.
    let out = create(&url, "k2", "2026-03-02T14:30:00Z", "2026-03-02T15:30:00Z", &[]);
    let err = fails(&out, 4, "CONFLICT");
    assert!(err.contains("; alternatives: 2026-03-02T"), "{err}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("a JSON error object on stdout");
    assert_eq!(doc["errorType"], "CONFLICT");
    assert!(doc["message"].as_str().unwrap().contains("no longer available"), "{doc}");
    let alternatives = doc["alternatives"].as_array().unwrap();
    assert!(!alternatives.is_empty() && alternatives.len() <= 3, "{doc}");
    for alt in alternatives {
        let (s, e) = (alt["start"].as_str().unwrap(), alt["end"].as_str().unwrap());
        assert!(err.contains(&format!("{s}–{e}")), "the stderr line lists {s}: {err}");
        assert!(e <= "2026-03-02T14:00:00Z" || s >= "2026-03-02T15:00:00Z", "{alt} overlaps the held time");
        assert!(alt["start_local"].as_str().unwrap().ends_with("-05:00"), "{alt}");
    }
    assert_eq!(db.count("select count(*) from cal.hold").await, 1);

    // Confirm: a confirmed event with sequence 0; again: the same event.
    let event = json_ok(&calctl(&url, &["--json", "hold", "confirm", &hold_id, "--now", NOW]));
    let event_id = event["event_id"].as_str().unwrap().to_owned();
    assert_eq!(event["status"], "confirmed");
    assert_eq!(event["sequence"], 0);
    assert_eq!(event["hold_id"], hold_id.as_str());
    assert_eq!(event["customer_id"], "c_9");
    assert_eq!(event["start"], "2026-03-02T14:00:00Z");
    assert_eq!(event["timezone"], "America/New_York");
    let ics_uid = event["ics_uid"].as_str().unwrap().to_owned();
    let again = json_ok(&calctl(&url, &["--json", "hold", "confirm", &hold_id, "--now", NOW]));
    assert_eq!(again["event_id"], event_id.as_str());
    assert_eq!(db.count("select count(*) from cal.event").await, 1);

    // A booked hold cannot be released (cancel the event instead).
    let out = calctl(&url, &["hold", "release", &hold_id, "--now", NOW]);
    let err = fails(&out, 2, "VALIDATION");
    assert!(err.contains(&hold_id), "{err}");

    // Reschedule: a reschedule hold for the event at 11:00 New York, then the move.
    let out = create(
        &url,
        "k3",
        "2026-03-02T16:00:00Z",
        "2026-03-02T17:00:00Z",
        &["--kind", "reschedule", "--event", &event_id],
    );
    let moving = json_ok(&out);
    assert_eq!(moving["kind"], "reschedule");
    assert_eq!(moving["event_id"], event_id.as_str());
    let moving_id = moving["hold_id"].as_str().unwrap().to_owned();
    let moved = json_ok(&calctl(&url, &["--json", "event", "reschedule", &event_id, "--hold", &moving_id, "--now", NOW]));
    assert_eq!(moved["event_id"], event_id.as_str());
    assert_eq!(moved["ics_uid"], ics_uid.as_str(), "the UID is kept");
    assert_eq!(moved["sequence"], 1);
    assert_eq!(moved["start"], "2026-03-02T16:00:00Z");
    assert_eq!(moved["end"], "2026-03-02T17:00:00Z");
    let again = json_ok(&calctl(&url, &["--json", "event", "reschedule", &event_id, "--hold", &moving_id, "--now", NOW]));
    assert_eq!(again["sequence"], 1, "a redelivered reschedule changes nothing");

    // The old time is free again; an unused hold there can be released, twice,
    // and a released hold cannot be booked.
    let freed = json_ok(&create(&url, "k4", "2026-03-02T14:00:00Z", "2026-03-02T15:00:00Z", &[]));
    let freed_id = freed["hold_id"].as_str().unwrap().to_owned();
    let released = json_ok(&calctl(&url, &["--json", "hold", "release", &freed_id, "--now", NOW]));
    assert_eq!(released["status"], "released");
    let again = json_ok(&calctl(&url, &["--json", "hold", "release", &freed_id, "--now", NOW]));
    assert_eq!(again["status"], "released");
    let out = calctl(&url, &["hold", "confirm", &freed_id, "--now", NOW]);
    fails(&out, 5, "HOLD_RELEASED");

    // Cancel: cancelled, sequence 2; again: unchanged, still exit 0.
    let cancelled = json_ok(&calctl(&url, &["--json", "event", "cancel", &event_id, "--now", NOW]));
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["sequence"], 2);
    assert_eq!(cancelled["ics_uid"], ics_uid.as_str());
    let out = calctl(&url, &["event", "cancel", &event_id, "--now", NOW]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&format!("{event_id}  cancelled  sequence 2")), "{text}");
    assert!(text.contains("2026-03-02T16:00:00Z – 2026-03-02T17:00:00Z"), "times in UTC: {text}");
    assert!(text.contains("2026-03-02T11:00:00-05:00 – 2026-03-02T12:00:00-05:00  America/New_York"), "and local: {text}");

    // Unknown ids are NOT_FOUND (exit 2).
    fails(&calctl(&url, &["hold", "confirm", "hld_nope"]), 2, "NOT_FOUND");
    fails(&calctl(&url, &["event", "cancel", "ev_nope"]), 2, "NOT_FOUND");
    assert_eq!(db.count(OVERLAPS).await, 0);
}

#[tokio::test]
async fn request_to_book_expiry_and_bad_input() {
    let db = seeded().await;
    let url = db.url();

    // Request-to-Book: a day to answer; the provider accepts two hours later.
    let out = create(&url, "r1", "2026-03-02T14:00:00Z", "2026-03-02T15:00:00Z", &["--mode", "request"]);
    let request = json_ok(&out);
    assert_eq!(request["mode"], "request");
    assert_eq!(request["expires_at"], "2026-03-02T12:00:00Z");
    let request_id = request["hold_id"].as_str().unwrap();
    let event = json_ok(&calctl(&url, &["--json", "hold", "confirm", request_id, "--now", "2026-03-01T14:00:00Z"]));
    assert_eq!(event["status"], "confirmed");
    assert_eq!(event["sequence"], 0);

    // A checkout hold not booked within its 10 minutes has expired.
    let out = create(&url, "x1", "2026-03-02T17:00:00Z", "2026-03-02T18:00:00Z", &["--ttl-min", "5"]);
    let hold = json_ok(&out);
    assert_eq!(hold["expires_at"], "2026-03-01T12:05:00Z");
    let hold_id = hold["hold_id"].as_str().unwrap();
    let out = calctl(&url, &["--json", "hold", "confirm", hold_id, "--now", "2026-03-01T12:30:00Z"]);
    let err = fails(&out, 5, "HOLD_EXPIRED");
    assert!(err.contains(hold_id), "{err}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["errorType"], "HOLD_EXPIRED");
    assert!(doc.get("alternatives").is_none(), "{doc}");
    // A retry with its key returns it as it is: expired, never revived.
    let late = ["--ttl-min", "5", "--now", "2026-03-01T12:30:00Z"];
    let retry = json_ok(&create(&url, "x1", "2026-03-02T17:00:00Z", "2026-03-02T18:00:00Z", &late));
    assert_eq!(retry["hold_id"], hold_id);
    assert_eq!(retry["status"], "expired");
    // Its time is free for someone else.
    json_ok(&create(&url, "x2", "2026-03-02T17:00:00Z", "2026-03-02T18:00:00Z", &["--now", "2026-03-01T12:30:00Z"]));

    // The readable form: id, status, UTC and New York times.
    let out = calctl(
        &url,
        &["hold", "create", "--user", USER, "--role", ROLE, "--start", "2026-03-03T14:00:00Z", "--end", "2026-03-03T15:00:00Z"]
            .into_iter()
            .chain(["--kind", "admin", "--idempotency-key", "a1", "--now", NOW])
            .collect::<Vec<_>>(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("hold     hld_") && text.contains("  active  (admin, instant)"), "{text}");
    assert!(text.contains("2026-03-03T09:00:00-05:00 – 2026-03-03T10:00:00-05:00  America/New_York"), "{text}");

    // Bad input exits 2 naming the flag, before any database work.
    let cases: [(&[&str], &str); 5] = [
        (&["--mode", "request", "--ttl-min", "5000"], "--ttl-min"),
        (&["--kind", "reschedule"], "--event"),
        (&["--event", "ev_1"], "--event"),
        (&["--step-min", "0"], "--step-min"),
        (&["--now", "yesterday"], "--now"),
    ];
    for (extra, flag) in cases {
        let out = create(&url, "b1", "2026-03-02T20:00:00Z", "2026-03-02T21:00:00Z", extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(flag), "{extra:?}: {}", stderr(&out));
    }
    let out = create(&url, "b2", "2026-03-02T21:00:00Z", "2026-03-02T20:00:00Z", &[]);
    assert!(fails(&out, 2, "VALIDATION").contains("--end"));
    let out = create(&url, "b3", "2026-03-02 20:00", "2026-03-02T21:00:00Z", &[]);
    assert!(fails(&out, 2, "VALIDATION").contains("--start"));
    // Outside the provider's hours: a checkout hold is not a feasible slot.
    fails(&create(&url, "b4", "2026-03-02T02:00:00Z", "2026-03-02T03:00:00Z", &[]), 4, "CONFLICT");
    assert_eq!(db.count("select count(*) from cal.hold where idempotency_key like 'b%'").await, 0);
    assert_eq!(db.count(OVERLAPS).await, 0);
}

#[tokio::test]
async fn twenty_processes_race_for_one_hour_and_exactly_one_wins() {
    let db = seeded().await;
    let url = db.url();
    // Every request overlaps every other: 09:00–10:00 or 09:30–10:30 New York.
    let keys: Vec<String> = (0..20).map(|i| format!("race-{i}")).collect();
    let children: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let (start, end) = if i % 2 == 0 {
                ("2026-03-02T14:00:00Z", "2026-03-02T15:00:00Z")
            } else {
                ("2026-03-02T14:30:00Z", "2026-03-02T15:30:00Z")
            };
            Command::new(env!("CARGO_BIN_EXE_calctl"))
                .args(create_args(key, start, end, &[]))
                .env("DATABASE_URL", &url)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("calctl starts")
        })
        .collect();
    let outputs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();

    let winners: Vec<&Output> = outputs.iter().filter(|o| o.status.success()).collect();
    assert_eq!(winners.len(), 1, "exactly one wins: {:?}", outputs.iter().map(|o| o.status.code()).collect::<Vec<_>>());
    for lost in outputs.iter().filter(|o| !o.status.success()) {
        let err = fails(lost, 4, "CONFLICT");
        assert!(err.contains("alternatives: 2026-"), "{err}");
    }
    let won = json_ok(winners[0]);
    let won_id = won["hold_id"].as_str().unwrap();

    assert_eq!(db.count("select count(*) from cal.hold where user_id = 'u_1' and status = 'active'").await, 1);
    assert_eq!(db.count(OVERLAPS).await, 0, "no two active holds / confirmed events of u_1 overlap");
    // The winner books it; still nothing overlaps.
    json_ok(&calctl(&url, &["--json", "hold", "confirm", won_id, "--now", NOW]));
    assert_eq!(db.count(OVERLAPS).await, 0);
    assert_eq!(db.count("select count(*) from cal.event where user_id = 'u_1' and status = 'confirmed'").await, 1);
}
