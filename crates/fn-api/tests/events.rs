//! Every payload in events/appsync answers as its file name promises when
//! it is sent the way `make invoke` sends it: as it is, to `fn_api::handle`,
//! on a fresh database seeded exactly as `calctl seed-demo` seeds it
//! (`cal_store::seed_demo` at the real clock), one database per payload so
//! that no payload depends on another having run first. The payloads, the
//! seed, the router and the schema cannot drift apart.

mod common;

use std::collections::BTreeSet;

use aws_lambda_events::appsync::AppSyncDirectResolverEvent;
use cal_core::{ErrorType, Instant};
use cal_store::demo::{DEMO_CUSTOMER, DEMO_PARTNER, DEMO_ROLE, DEMO_USER, DEMO_ZONE, sample};
use cal_store::testing::TestDb;
use common::{Clock, FEED_BASE, event_files, field_of, read_event_text};
use fn_api::{ApiError, Field};
use serde_json::Value;

/// What a file name promises: `<field>.json` and `<field>.iam-<caller>.json`
/// succeed; `<field>.<outcome>[-<detail>].json` fails with that errorType.
fn promised(file: &str) -> Result<(), ErrorType> {
    let Some((_, case)) = file.split_once('.') else { return Ok(()) };
    let outcome = case.split('-').next().unwrap();
    match outcome {
        "iam" => Ok(()),
        "conflict" => Err(ErrorType::Conflict),
        "forbidden" => Err(ErrorType::Forbidden),
        "no" if case == "no-identity" => Err(ErrorType::Forbidden),
        "validation" => Err(ErrorType::Validation),
        _ => panic!("events/appsync/{file}.json: the name promises no outcome this test knows (x.json, x.iam-*, x.conflict[-*], x.forbidden[-*], x.validation[-*], x.no-identity)"),
    }
}

/// `make invoke`'s clock: now, in whole seconds.
fn now() -> Instant {
    fn_api::system_clock()
}

/// A fresh database as `make invoke` leaves it (migrate, seed-demo at `now`)
/// and the `Deps` the function runs with, its clock at `now`.
async fn seeded(now: Instant) -> (TestDb, fn_api::Deps) {
    let mut db = TestDb::new().await;
    cal_store::seed_demo(&mut db.client, now).await.expect("seed-demo");
    let deps = common::deps_for(&db.url(), &Clock::at(&now.rfc3339()));
    (db, deps)
}

fn alternatives(e: &ApiError) -> Vec<Value> {
    let alts = e.message.split_once("; alternatives: ").unwrap_or_else(|| panic!("no alternatives in {e}")).1;
    serde_json::from_str(alts).expect("alternatives are JSON")
}

/// Beyond the outcome class: that each payload did what its name says.
/// Payloads without an entry are checked for their class only.
fn check_details(file: &str, result: &Result<Value, ApiError>, now: Instant) {
    let after = |minutes: i64| now.plus_minutes(minutes).rfc3339();
    let (v, e) = match result {
        Ok(v) => (v, None),
        Err(e) => (&Value::Null, Some(e)),
    };
    match file {
        "weeklyRules" => {
            let ids: Vec<&str> = v.as_array().unwrap().iter().map(|r| r["ruleId"].as_str().unwrap()).collect();
            assert_eq!(ids, [sample::SATURDAY_RULE, "wr_demo_weekdays"], "{v}");
            assert_eq!((v[1]["timezone"].as_str(), v[1]["weekdayMask"].as_i64()), (Some(DEMO_ZONE), Some(31)));
        }
        "exceptions" => {
            assert_eq!(v.as_array().unwrap().len(), 1, "only the sample week's: {v}");
            assert_eq!((v[0]["excId"].as_str(), v[0]["kind"].as_str()), (Some(sample::EXCEPTION), Some("UNAVAILABLE")));
            assert_eq!((v[0]["startLocal"].as_str(), v[0]["note"].as_str()), (None, Some("Trade fair")));
        }
        "bookableSlots" => {
            assert_eq!(v["slots"][0]["start"], "2030-03-04T08:00:00Z", "{v}");
            assert_eq!(v["slots"][0]["startLocal"], "2030-03-04T09:00:00+01:00");
            let starts = common::starts(v);
            // The sample hold (09–10Z), request (11–12Z) and event (13–14Z) are busy.
            for busy in ["2030-03-04T08:30:00Z", "2030-03-04T09:00:00Z", "2030-03-04T11:00:00Z", "2030-03-04T13:00:00Z"] {
                assert!(!starts.iter().any(|s| s == busy), "{busy} is busy: {starts:?}");
            }
            assert!(starts.iter().any(|s| s == "2030-03-04T10:00:00Z"), "{starts:?}");
        }
        "commonSlots" => {
            let slot = v["slots"].as_array().unwrap().iter().find(|s| s["start"] == "2030-03-04T14:00:00Z").expect("14:00Z is free for both");
            let providers: BTreeSet<&str> = slot["providers"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
            assert_eq!(providers, BTreeSet::from([DEMO_USER, DEMO_PARTNER]));
            // The partner starts at 10:00 Berlin (09:00Z): 08:00Z is not common.
            assert!(!common::starts(v).iter().any(|s| s == "2030-03-04T08:00:00Z"), "{v}");
        }
        "rescheduleCandidates" => {
            let starts = common::starts(v);
            assert_eq!(starts.first().map(String::as_str), Some("2030-03-05T08:00:00Z"), "{v}");
            // The event's length; the sample reschedule hold (13–14Z) is busy.
            assert_eq!(v["slots"][0]["end"], "2030-03-05T09:00:00Z");
            assert!(!starts.iter().any(|s| s == "2030-03-05T13:00:00Z"), "{starts:?}");
        }
        "hold" => {
            assert_eq!((v["holdId"].as_str(), v["status"].as_str()), (Some(sample::CHECKOUT_HOLD), Some("ACTIVE")), "{v}");
            assert_eq!((v["kind"].as_str(), v["mode"].as_str()), (Some("CHECKOUT"), Some("INSTANT")));
            assert_eq!((v["customerId"].as_str(), v["expiresAt"].as_str()), (Some(DEMO_CUSTOMER), Some(after(60).as_str())));
        }
        "event" | "eventIcs" => {
            let uid = format!("{}@cal", sample::EVENT);
            if file == "event" {
                assert_eq!((v["eventId"].as_str(), v["status"].as_str()), (Some(sample::EVENT), Some("CONFIRMED")), "{v}");
                assert_eq!((v["icsUid"].as_str(), v["timezone"].as_str()), (Some(uid.as_str()), Some(DEMO_ZONE)));
            } else {
                assert_eq!((v["method"].as_str(), v["filename"].as_str()), (Some("REQUEST"), Some("invite.ics")));
                assert!(v["ics"].as_str().unwrap().contains(&format!("UID:{uid}\r\n")), "{v}");
            }
        }
        "externalCalendars" => {
            assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
            assert_eq!((v[0]["sourceId"].as_str(), v[0]["urlHint"].as_str()), (Some(sample::SOURCE), Some("https://calendar.google.com/…")));
            assert!(!v.to_string().contains("private-0123"), "the URL is a secret: {v}");
        }
        "putWeeklyRule" => {
            assert!(v["ruleId"].as_str().unwrap().starts_with("wr_"), "{v}");
            assert_eq!((v["userId"].as_str(), v["roleCode"].as_str()), (Some(DEMO_USER), Some(DEMO_ROLE)));
        }
        "deleteWeeklyRule" | "deleteException" | "disconnectIcs" | "revokeFeed" => {
            assert_eq!(v, &Value::Bool(true), "there was something to remove");
        }
        "copyWeekday" => {
            assert_eq!(v.as_array().unwrap().len(), 1, "only the rule covering Monday: {v}");
            assert_eq!((v[0]["ruleId"].as_str(), v[0]["weekdayMask"].as_i64()), (Some("wr_demo_weekdays"), Some(0b011_1111)));
        }
        "addVacation" => {
            let dates: Vec<&str> = v.as_array().unwrap().iter().map(|e| e["dateLocal"].as_str().unwrap()).collect();
            assert_eq!(dates, ["2030-04-15", "2030-04-16", "2030-04-17", "2030-04-18", "2030-04-19"]);
        }
        "createHold" => {
            assert_eq!((v["start"].as_str(), v["end"].as_str()), (Some("2030-03-04T08:00:00Z"), Some("2030-03-04T09:00:00Z")), "{v}");
            assert_eq!((v["customerId"].as_str(), v["status"].as_str()), (Some(DEMO_CUSTOMER), Some("ACTIVE")));
        }
        "releaseHold" | "declineRequest" => {
            let id = if file == "releaseHold" { sample::CHECKOUT_HOLD } else { sample::REQUEST_HOLD };
            assert_eq!((v["holdId"].as_str(), v["status"].as_str()), (Some(id), Some("RELEASED")), "{v}");
        }
        "confirmHold" | "confirmHold.iam-order-service" => {
            assert_eq!((v["status"].as_str(), v["start"].as_str()), (Some("CONFIRMED"), Some("2030-03-04T09:00:00Z")), "{v}");
            assert_eq!(v["customerId"], DEMO_CUSTOMER);
        }
        "requestBooking" => {
            assert_eq!((v["mode"].as_str(), v["status"].as_str()), (Some("REQUEST"), Some("ACTIVE")), "{v}");
            assert_eq!(v["expiresAt"], after(24 * 60), "24 h to answer");
        }
        "acceptRequest" => {
            assert_eq!((v["status"].as_str(), v["start"].as_str()), (Some("CONFIRMED"), Some("2030-03-04T11:00:00Z")), "{v}");
        }
        "rescheduleEvent" => {
            assert_eq!((v["eventId"].as_str(), v["start"].as_str()), (Some(sample::EVENT), Some("2030-03-05T13:00:00Z")), "{v}");
            assert_eq!(v["sequence"], 1);
        }
        "cancelEvent" | "cancelEvent.iam-order-service" => {
            assert_eq!((v["status"].as_str(), v["sequence"].as_i64()), (Some("CANCELLED"), Some(1)), "{v}");
        }
        "connectIcs" => {
            assert_eq!((v["urlHint"].as_str(), v["status"].as_str()), (Some("https://p57-caldav.icloud.com/…"), Some("active")), "{v}");
            assert!(!v.to_string().contains("MTIzNDU2"), "the URL is a secret: {v}");
        }
        "resyncIcs" => {
            assert_eq!((v["sourceId"].as_str(), v["nextPollAt"].as_str()), (Some(sample::SOURCE), Some(after(0).as_str())), "{v}");
            assert!(!v.to_string().contains(sample::SOURCE_URL));
        }
        "calendarConnections" => {
            assert_eq!((v[0]["connectionId"].as_str(), v[0]["status"].as_str()), (Some(sample::CONNECTION), Some("CONNECTED")), "{v}");
            assert_eq!(v[0]["calendars"][0]["calendarId"].as_str(), Some(sample::SYNC_CALENDAR), "{v}");
        }
        "startCalendarConnect" => {
            let url = v["authorizationUrl"].as_str().unwrap();
            assert!(url.contains("code_challenge_method=S256") && url.contains("state="), "{url}");
            assert_eq!(v["expiresAt"].as_str(), Some(after(10).as_str()));
        }
        "setSyncedCalendar" => {
            let c = &v["calendars"][0];
            assert_eq!((c["blocks"].as_bool(), c["receivesBookings"].as_bool()), (Some(true), Some(true)), "{v}");
        }
        "resyncCalendarConnection" => assert_eq!(v["connectionId"].as_str(), Some(sample::CONNECTION), "{v}"),
        "createFeed" | "rotateFeed" => {
            let url = v["url"].as_str().unwrap();
            let token = url.strip_prefix(&format!("{FEED_BASE}/")).and_then(|t| t.strip_suffix(".ics")).expect(url);
            assert!(token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()), "{url}");
        }
        "bookingPolicies" => {
            assert_eq!((v[0]["roleCode"].as_str(), v[0]["maxPerWeek"].as_i64()), (Some("photographer"), Some(40)), "{v}");
        }
        "putBookingPolicy" => {
            let got = (v["bufferBeforeMin"].as_i64(), v["bufferAfterMin"].as_i64(), v["maxPerDay"].as_i64(), v["maxPerWeek"].as_i64());
            assert_eq!(got, (Some(15), Some(30), Some(4), Some(15)), "{v}");
        }
        "putWeeklyRule.validation-timezone" => {
            let e = e.unwrap();
            assert!(e.message.starts_with("input.timezone: ") && e.message.contains("Europe/Berlinn"), "{e}");
        }
        "createHold.conflict" => {
            let e = e.unwrap();
            assert!(e.message.starts_with("the requested time is no longer available; "), "{e}");
            assert!((1..=3).contains(&alternatives(e).len()), "{e}");
        }
        "createHold.conflict-no-availability" => {
            // The day off: says so, and offers the Tuesday after it.
            let e = e.unwrap();
            assert!(e.message.starts_with("demo_provider has no availability as photographer at the requested time; "), "{e}");
            assert!(alternatives(e).iter().all(|a| a["start"].as_str().unwrap().starts_with("2030-03-12")), "{e}");
            assert!(!alternatives(e).is_empty(), "{e}");
        }
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_payload_answers_as_its_name_promises_on_the_seeded_demo() {
    let files = event_files();
    assert!(files.len() >= Field::ALL.len(), "{files:?}");
    let mut tasks = tokio::task::JoinSet::new();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(6));
    for file in files.clone() {
        let gate = gate.clone();
        tasks.spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let now = now();
            let (_db, deps) = seeded(now).await;
            // As the file is: no placeholder to fill, nothing to edit.
            let event: Value = serde_json::from_str(&read_event_text(&file)).unwrap();
            let result = fn_api::handle(&deps, event).await;
            let failure = match (promised(&file), &result) {
                (Ok(()), Ok(Value::Null)) => Some("expected a value, got null".to_owned()),
                (Ok(()), Ok(_)) => None,
                (Err(kind), Err(e)) if e.kind == kind => None,
                (want, got) => Some(format!("expected {:?}, got {got:?}", want.map_err(ErrorType::as_str))),
            };
            if failure.is_none() {
                check_details(&file, &result, now);
            }
            failure.map(|f| format!("{file}.json: {f}"))
        });
    }
    let mut failures = Vec::new();
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(f) => failures.extend(f),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    failures.sort();
    assert!(failures.is_empty(), "{} of {} payloads broke their promise:\n{}", failures.len(), files.len(), failures.join("\n"));
}

/// The sample week is fixed while the clock moves: this fails well before
/// the payloads stop working, with what to do.
#[test]
fn the_sample_week_is_still_ahead_and_within_the_booking_window() {
    let monday = cal_store::demo::sample_week();
    let days_left = (monday - chrono::Utc::now().date_naive()).num_days();
    assert!(
        days_left > 60,
        "the events/appsync sample week ({monday}) is {days_left} days away; within a day of it the lead time \
         refuses every sample hold. Move SAMPLE_WEEK in crates/cal-store/src/demo.rs and every date in \
         events/appsync (and the fixture dates of crates/fn-api/tests) by the same number of weeks"
    );
    assert!(days_left < i64::from(cal_core::availability::MAX_BOOKING_WINDOW_DAYS), "beyond the longest booking window");
}

#[tokio::test]
async fn a_hold_where_the_provider_has_no_rules_says_so() {
    let now = now();
    let (_db, deps) = seeded(now).await;
    let mut event: Value = serde_json::from_str(&read_event_text("createHold")).unwrap();
    event["arguments"]["input"]["userId"] = "nobody_yet".into();
    event["info"]["variables"] = event["arguments"].clone();
    let e = fn_api::handle(&deps, event).await.unwrap_err();
    assert_eq!(e.kind, ErrorType::Conflict, "{e}");
    assert_eq!(e.message, "nobody_yet has no availability as photographer at the requested time; alternatives: []");
}

#[test]
fn every_payload_deserializes_as_an_appsync_direct_resolver_event() {
    for file in event_files() {
        let text = read_event_text(&file);
        let event: AppSyncDirectResolverEvent<Value, Value, Value> =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}.json: {e}"));
        let info = &event.info;
        assert_eq!(info.variables, event.arguments.clone().unwrap(), "{file}: variables carry the arguments");
        assert!(!info.selection_set_list.iter().any(|s| s.is_empty()), "{file}");
        assert_eq!(info.selection_set_list.is_empty(), info.selection_set_graphql.is_empty(), "{file}");
        assert!(event.request.headers.contains_key("host"), "{file}");
        let raw: Value = serde_json::from_str(&text).unwrap();
        for key in ["arguments", "identity", "source", "request", "prev", "info", "stash"] {
            assert!(raw.get(key).is_some(), "{file}.json lacks {key}");
        }
    }
}

#[test]
fn every_field_has_a_payload_and_every_payload_names_a_field() {
    let mut covered = BTreeSet::new();
    for file in event_files() {
        let event: Value = serde_json::from_str(&read_event_text(&file)).unwrap();
        let field = field_of(&event).unwrap_or_else(|| panic!("{file}.json names no field of the router: {}", event["info"]));
        // The file is named after its field: `<fieldName>.json` or `<fieldName>.<case>.json`.
        let stem = file.split('.').next().unwrap();
        assert_eq!(stem, field.name().1, "{file}.json is for {:?}", field.name());
        covered.insert(field.name().1);
    }
    let missing: Vec<&str> = Field::ALL.iter().map(|f| f.name().1).filter(|n| !covered.contains(n)).collect();
    assert!(missing.is_empty(), "fields without an events/appsync/<field>.json: {missing:?}");
    for f in Field::ALL {
        assert!(event_files().contains(&f.name().1.to_owned()), "events/appsync/{}.json is missing", f.name().1);
    }
}

#[test]
fn payloads_name_what_seed_demo_seeds_and_need_no_editing() {
    for file in event_files() {
        let text = read_event_text(&file);
        assert!(!text.contains("{{"), "{file}.json: a placeholder; name a seeded id (cal_store::demo::sample) instead");
    }
    let rule: Value = serde_json::from_str(&read_event_text("putWeeklyRule")).unwrap();
    assert_eq!((rule["arguments"]["userId"].as_str(), rule["arguments"]["input"]["roleCode"].as_str()), (Some(DEMO_USER), Some(DEMO_ROLE)));
}
