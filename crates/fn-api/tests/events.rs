//! Every payload in events/appsync goes through `fn_api::handle` against a
//! fresh, seeded database with the outcome this table expects; the payloads,
//! the router and the schema cannot drift apart.

mod common;

use std::collections::BTreeSet;

use aws_lambda_events::appsync::AppSyncDirectResolverEvent;
use cal_core::ErrorType;
use common::{Api, CUSTOMER, FEED_BASE, Fixture, PROVIDER, ROLE, SEEDED_ICS_URL, event_files, field_of, read_event_text};
use fn_api::{ApiError, Field};
use serde_json::Value;

fn ok(file: &str, result: Result<Value, ApiError>) -> Value {
    result.unwrap_or_else(|e| panic!("{file}: expected Ok, got {e}"))
}

fn err(file: &str, result: Result<Value, ApiError>, kind: ErrorType) -> ApiError {
    match result {
        Ok(v) => panic!("{file}: expected {}, got Ok({v})", kind.as_str()),
        Err(e) => {
            assert_eq!(e.kind, kind, "{file}: {e}");
            e
        }
    }
}

/// What each payload must come back with.
fn check(file: &str, result: Result<Value, ApiError>, fx: &Fixture) {
    match file {
        "weeklyRules" => {
            let v = ok(file, result);
            let ids: Vec<&str> = v.as_array().unwrap().iter().map(|r| r["ruleId"].as_str().unwrap()).collect();
            assert_eq!(ids, ["wr_ana_saturday", "wr_ana_weekdays"], "{v}");
            assert_eq!(v[1]["timezone"], "Europe/Berlin");
            assert_eq!(v[1]["weekdayMask"], 31);
        }
        "exceptions" => {
            let v = ok(file, result);
            assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
            assert_eq!(v[0]["excId"], "ex_ana_2030_03_11");
            assert_eq!((v[0]["kind"].as_str(), v[0]["startLocal"].as_str()), (Some("UNAVAILABLE"), None));
            assert_eq!(v[0]["note"], "Trade fair");
        }
        "bookableSlots" => {
            let v = ok(file, result);
            assert_eq!(v["slots"][0]["start"], "2030-03-04T08:00:00Z", "{v}");
            assert_eq!(v["slots"][0]["end"], "2030-03-04T09:00:00Z");
            assert_eq!(v["slots"][0]["startLocal"], "2030-03-04T09:00:00+01:00");
            let starts = common::starts(&v);
            // The fixture's hold (09–10Z), request (11–12Z) and event (13–14Z) are busy.
            for busy in ["2030-03-04T08:30:00Z", "2030-03-04T09:00:00Z", "2030-03-04T11:00:00Z", "2030-03-04T13:00:00Z"] {
                assert!(!starts.iter().any(|s| s == busy), "{busy} is busy: {starts:?}");
            }
            assert!(starts.iter().any(|s| s == "2030-03-04T10:00:00Z"), "{starts:?}");
            assert!(!v["free"].as_array().unwrap().is_empty());
        }
        "commonSlots" => {
            let v = ok(file, result);
            let slot = v["slots"].as_array().unwrap().iter().find(|s| s["start"] == "2030-03-04T14:00:00Z").expect("14:00Z is free for both");
            let providers: BTreeSet<&str> = slot["providers"].as_array().unwrap().iter().map(|p| p.as_str().unwrap()).collect();
            assert_eq!(providers, BTreeSet::from([PROVIDER, "prov-cara"]));
            // Cara starts at 10:00 Berlin (09:00Z): Ana's 08:00Z is not common.
            assert!(!common::starts(&v).iter().any(|s| s == "2030-03-04T08:00:00Z"), "{v}");
        }
        "rescheduleCandidates" => {
            let v = ok(file, result);
            let starts = common::starts(&v);
            assert_eq!(starts.first().map(String::as_str), Some("2030-03-05T08:00:00Z"), "{v}");
            // The event's length; the reschedule hold of the fixture (13–14Z) is busy.
            assert_eq!(v["slots"][0]["end"], "2030-03-05T09:00:00Z");
            assert!(!starts.iter().any(|s| s == "2030-03-05T13:00:00Z"), "{starts:?}");
        }
        "hold" => {
            let v = ok(file, result);
            assert_eq!(v["holdId"], fx.hold_id.as_str());
            assert_eq!((v["status"].as_str(), v["kind"].as_str(), v["mode"].as_str()), (Some("ACTIVE"), Some("CHECKOUT"), Some("INSTANT")));
            assert_eq!(v["customerId"], CUSTOMER);
            assert_eq!(v["expiresAt"], "2030-03-01T00:10:00Z");
        }
        "event" => {
            let v = ok(file, result);
            assert_eq!(v["eventId"], fx.event_id.as_str());
            assert_eq!((v["status"].as_str(), v["sequence"].as_i64()), (Some("CONFIRMED"), Some(0)));
            assert_eq!(v["icsUid"], format!("{}@cal", fx.event_id));
            assert_eq!(v["timezone"], "Europe/Berlin");
        }
        "eventIcs" => {
            let v = ok(file, result);
            assert_eq!((v["method"].as_str(), v["filename"].as_str()), (Some("REQUEST"), Some("invite.ics")));
            assert_eq!(v["contentType"], "text/calendar; charset=utf-8; method=REQUEST");
            let ics = v["ics"].as_str().unwrap();
            assert!(ics.contains("METHOD:REQUEST\r\n") && ics.contains(&format!("UID:{}@cal\r\n", fx.event_id)), "{ics}");
        }
        "externalCalendars" => {
            let v = ok(file, result);
            assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
            assert_eq!(v[0]["sourceId"], fx.source_id.as_str());
            assert_eq!(v[0]["urlHint"], "https://calendar.google.com/…");
            assert!(!v.to_string().contains("private-9f8e"), "the URL is a secret: {v}");
        }
        "putWeeklyRule" => {
            let v = ok(file, result);
            assert!(v["ruleId"].as_str().unwrap().starts_with("wr_"), "{v}");
            assert_eq!((v["startLocal"].as_str(), v["endLocal"].as_str()), (Some("09:00:00"), Some("17:00:00")));
            assert_eq!(v["userId"], PROVIDER);
        }
        "deleteWeeklyRule" | "deleteException" | "disconnectIcs" | "revokeFeed" => {
            assert_eq!(ok(file, result), Value::Bool(true));
        }
        "copyWeekday" => {
            let v = ok(file, result);
            assert_eq!(v.as_array().unwrap().len(), 1, "only the rule covering Monday: {v}");
            assert_eq!((v[0]["ruleId"].as_str(), v[0]["weekdayMask"].as_i64()), (Some("wr_ana_weekdays"), Some(0b011_1111)));
        }
        "upsertException" => {
            let v = ok(file, result);
            assert!(v["excId"].as_str().unwrap().starts_with("ex_"));
            assert_eq!((v["kind"].as_str(), v["startLocal"].as_str(), v["endLocal"].as_str()), (Some("UNAVAILABLE"), Some("12:00:00"), Some("14:00:00")));
        }
        "addVacation" => {
            let v = ok(file, result);
            let dates: Vec<&str> = v.as_array().unwrap().iter().map(|e| e["dateLocal"].as_str().unwrap()).collect();
            assert_eq!(dates, ["2030-04-15", "2030-04-16", "2030-04-17", "2030-04-18", "2030-04-19"]);
        }
        "createHold" => {
            let v = ok(file, result);
            assert!(v["holdId"].as_str().unwrap().starts_with("hld_"));
            assert_eq!((v["start"].as_str(), v["end"].as_str()), (Some("2030-03-04T08:00:00Z"), Some("2030-03-04T09:00:00Z")));
            assert_eq!((v["customerId"].as_str(), v["status"].as_str()), (Some(CUSTOMER), Some("ACTIVE")));
        }
        "releaseHold" | "declineRequest" => {
            let v = ok(file, result);
            let id = if file == "releaseHold" { &fx.hold_id } else { &fx.request_hold_id };
            assert_eq!((v["holdId"].as_str(), v["status"].as_str()), (Some(id.as_str()), Some("RELEASED")), "{v}");
        }
        "confirmHold" | "confirmHold.iam-order-service" => {
            let v = ok(file, result);
            assert_eq!((v["status"].as_str(), v["sequence"].as_i64()), (Some("CONFIRMED"), Some(0)));
            assert_eq!((v["start"].as_str(), v["customerId"].as_str()), (Some("2030-03-04T09:00:00Z"), Some(CUSTOMER)));
        }
        "requestBooking" => {
            let v = ok(file, result);
            assert_eq!((v["mode"].as_str(), v["status"].as_str()), (Some("REQUEST"), Some("ACTIVE")));
            assert_eq!(v["expiresAt"], "2030-03-02T00:00:00Z", "24 h to answer");
        }
        "acceptRequest" => {
            let v = ok(file, result);
            assert_eq!((v["status"].as_str(), v["start"].as_str()), (Some("CONFIRMED"), Some("2030-03-04T11:00:00Z")));
        }
        "rescheduleEvent" => {
            let v = ok(file, result);
            assert_eq!(v["eventId"], fx.event_id.as_str());
            assert_eq!((v["start"].as_str(), v["sequence"].as_i64()), (Some("2030-03-05T13:00:00Z"), Some(1)));
            assert_eq!(v["icsUid"], format!("{}@cal", fx.event_id));
        }
        "cancelEvent" | "cancelEvent.iam-order-service" => {
            let v = ok(file, result);
            assert_eq!((v["status"].as_str(), v["sequence"].as_i64()), (Some("CANCELLED"), Some(1)));
        }
        "connectIcs" => {
            let v = ok(file, result);
            assert!(v["sourceId"].as_str().unwrap().starts_with("src_"));
            assert_eq!((v["urlHint"].as_str(), v["label"].as_str()), (Some("https://p57-caldav.icloud.com/…"), Some("iCloud (private)")));
            assert_eq!(v["status"], "active");
            assert!(!v.to_string().contains("MTIzNDU2"), "the URL is a secret: {v}");
        }
        "resyncIcs" => {
            let v = ok(file, result);
            assert_eq!((v["sourceId"].as_str(), v["nextPollAt"].as_str()), (Some(fx.source_id.as_str()), Some(common::NOW)));
            assert!(!v.to_string().contains(SEEDED_ICS_URL));
        }
        "createFeed" | "rotateFeed" => {
            let v = ok(file, result);
            let url = v["url"].as_str().unwrap();
            let token = url.strip_prefix(&format!("{FEED_BASE}/")).and_then(|t| t.strip_suffix(".ics")).expect(url);
            assert!(token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()), "{url}");
            assert!(v["feedId"].as_str().unwrap().starts_with("feed_"));
        }
        "putWeeklyRule.forbidden-other-provider"
        | "createHold.forbidden-customer-for-other"
        | "createHold.forbidden-admin-kind-by-customer"
        | "confirmHold.forbidden-customer"
        | "weeklyRules.no-identity" => {
            let e = err(file, result, ErrorType::Forbidden);
            assert_eq!(e.message, "not allowed for this caller");
        }
        "putWeeklyRule.validation-timezone" => {
            let e = err(file, result, ErrorType::Validation);
            assert!(e.message.starts_with("input.timezone: "), "{e}");
            assert!(e.message.contains("Europe/Berlinn"), "{e}");
        }
        "createHold.conflict" => {
            let e = err(file, result, ErrorType::Conflict);
            let alts = e.message.split_once("alternatives: ").expect("alternatives").1;
            let alts: Vec<Value> = serde_json::from_str(alts).expect("alternatives are JSON");
            assert!(!alts.is_empty() && alts.len() <= 3, "{alts:?}");
        }
        other => panic!("events/appsync/{other}.json has no expectation in tests/events.rs: add one"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_payload_goes_through_handle_with_the_expected_outcome() {
    let files = event_files();
    assert!(files.len() >= Field::ALL.len(), "{files:?}");
    let mut tasks = tokio::task::JoinSet::new();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(6));
    for file in files {
        let gate = gate.clone();
        tasks.spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let (api, fx) = Api::with_fixture().await;
            let result = api.call_file(&file, &fx).await;
            check(&file, result, &fx);
            file
        });
    }
    let mut done = 0;
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r {
            std::panic::resume_unwind(e.into_panic());
        }
        done += 1;
    }
    assert_eq!(done, event_files().len());
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
fn only_known_placeholders_appear_and_only_in_arguments() {
    let known = ["{{holdId}}", "{{requestHoldId}}", "{{eventId}}", "{{rescheduleHoldId}}", "{{sourceId}}"];
    for file in event_files() {
        let text = read_event_text(&file);
        let mut rest = text.as_str();
        while let Some(i) = rest.find("{{") {
            let end = rest[i..].find("}}").map(|j| i + j + 2).expect("closed placeholder");
            assert!(known.contains(&&rest[i..end]), "{file}.json: unknown placeholder {}", &rest[i..end]);
            rest = &rest[end..];
        }
        let raw: Value = serde_json::from_str(&text).unwrap();
        for key in ["identity", "request"] {
            assert!(!raw[key].to_string().contains("{{"), "{file}.json: placeholder in {key}");
        }
    }
    // Ana and the role are what the fixture seeds.
    let rule: Value = serde_json::from_str(&read_event_text("putWeeklyRule")).unwrap();
    assert_eq!((rule["arguments"]["userId"].as_str(), rule["arguments"]["input"]["roleCode"].as_str()), (Some(PROVIDER), Some(ROLE)));
}
