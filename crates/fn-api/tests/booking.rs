//! Bookings end to end through `fn_api::handle` on a real PostgreSQL
//! (SEMANTICS.md §5): Instant Book, Request-to-Book, reschedule and cancel
//! with their ICS, and every error type a client can meet, with its message.

mod common;

use cal_core::ErrorType;
use common::{Api, CUSTOMER, PROVIDER, ROLE, Who, assert_err, hold_args, starts};
use serde_json::{Value, json};

const MON: &str = "2030-03-04T00:00:00Z";
const TUE: &str = "2030-03-05T00:00:00Z";
const WED: &str = "2030-03-06T00:00:00Z";

fn slots_args(from: &str, to: &str) -> Value {
    json!({"input": {"userId": PROVIDER, "roleCode": ROLE, "from": from, "to": to, "durationMin": 60, "stepMin": 30}})
}

fn id(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_else(|| panic!("no {key} in {v}")).to_owned()
}

/// The alternatives of a CONFLICT, parsed from its message.
fn alternatives(message: &str) -> Vec<Value> {
    let (_, json) = message.split_once("alternatives: ").unwrap_or_else(|| panic!("no alternatives in {message:?}"));
    serde_json::from_str(json).unwrap_or_else(|e| panic!("alternatives are not JSON ({e}): {json}"))
}

#[tokio::test]
async fn instant_book_through_handle() {
    let api = Api::new().await;
    let page = api.ok(Who::Customer, "bookableSlots", slots_args(MON, TUE)).await;
    let offered = starts(&page);
    assert_eq!(offered.first().map(String::as_str), Some("2030-03-04T08:00:00Z"), "09:00 Berlin");
    assert!(offered.iter().any(|s| s == "2030-03-04T10:00:00Z"));

    // The customer holds 10:00–11:00Z; a retry with the same key is the same hold.
    let args = hold_args("2030-03-04T10:00:00Z", "2030-03-04T11:00:00Z", "basket-77-checkout");
    let hold = api.ok(Who::Customer, "createHold", args.clone()).await;
    let again = api.ok(Who::Customer, "createHold", args).await;
    assert_eq!(id(&again, "holdId"), id(&hold, "holdId"));
    assert_eq!((hold["status"].as_str(), hold["kind"].as_str(), hold["mode"].as_str()), (Some("ACTIVE"), Some("CHECKOUT"), Some("INSTANT")));
    assert_eq!((hold["customerId"].as_str(), hold["expiresAt"].as_str()), (Some(CUSTOMER), Some("2030-03-01T00:10:00Z")));
    assert_eq!(api.db.count("select count(*) from cal.hold").await, 1);

    // While held, nobody else is offered it.
    let held = starts(&api.ok(Who::OtherProvider, "bookableSlots", slots_args(MON, TUE)).await);
    for gone in ["2030-03-04T09:30:00Z", "2030-03-04T10:00:00Z", "2030-03-04T10:30:00Z"] {
        assert!(!held.contains(&gone.to_owned()), "{gone} overlaps the hold: {held:?}");
    }

    // The order service converts it on order.booked, twice (redelivery): one event.
    api.clock.advance_minutes(3);
    let hold_id = id(&hold, "holdId");
    let event = api.ok(Who::Service, "confirmHold", json!({"holdId": hold_id})).await;
    let redelivered = api.ok(Who::Service, "confirmHold", json!({"holdId": hold_id})).await;
    assert_eq!(redelivered, event);
    assert_eq!((event["status"].as_str(), event["sequence"].as_i64()), (Some("CONFIRMED"), Some(0)));
    assert_eq!((event["start"].as_str(), event["end"].as_str()), (Some("2030-03-04T10:00:00Z"), Some("2030-03-04T11:00:00Z")));
    assert_eq!((event["customerId"].as_str(), event["timezone"].as_str()), (Some(CUSTOMER), Some("Europe/Berlin")));
    assert_eq!(api.db.count("select count(*) from cal.event").await, 1);

    // The slot is gone for good, even after the hold's TTL.
    api.clock.advance_minutes(30);
    let after = starts(&api.ok(Who::Customer, "bookableSlots", slots_args(MON, TUE)).await);
    assert!(!after.contains(&"2030-03-04T10:00:00Z".to_owned()), "{after:?}");
    assert!(after.contains(&"2030-03-04T11:00:00Z".to_owned()), "{after:?}");
    let h = api.ok(Who::Customer, "hold", json!({"holdId": hold_id})).await;
    assert_eq!((h["status"].as_str(), h["convertedEventId"].as_str()), (Some("CONVERTED"), event["eventId"].as_str()));
    let e = api.ok(Who::Customer, "event", json!({"eventId": event["eventId"]})).await;
    assert_eq!(e, event);
}

#[tokio::test]
async fn request_to_book_declined_frees_the_time_and_accepted_books_it() {
    let api = Api::new().await;
    let args = hold_args("2030-03-04T12:00:00Z", "2030-03-04T13:00:00Z", "ask-ana-1");
    let request = api.ok(Who::Customer, "requestBooking", args).await;
    assert_eq!((request["mode"].as_str(), request["status"].as_str()), (Some("REQUEST"), Some("ACTIVE")));
    assert_eq!(request["expiresAt"], "2030-03-02T00:00:00Z", "24 h for the provider to answer");
    let hold_id = id(&request, "holdId");
    assert!(!starts(&api.ok(Who::Customer, "bookableSlots", slots_args(MON, TUE)).await).contains(&"2030-03-04T12:00:00Z".to_owned()));

    // Only the provider (or an admin) answers; the customer cannot accept their own request.
    assert_err(api.call_as(Who::Customer, "acceptRequest", json!({"holdId": hold_id})).await, ErrorType::Forbidden);
    // Another provider cannot even tell the request exists.
    assert_err(api.call_as(Who::OtherProvider, "declineRequest", json!({"holdId": hold_id})).await, ErrorType::NotFound);

    api.clock.advance_minutes(60 * 5);
    let declined = api.ok(Who::Provider, "declineRequest", json!({"holdId": hold_id})).await;
    assert_eq!((declined["holdId"].as_str(), declined["status"].as_str()), (Some(hold_id.as_str()), Some("RELEASED")));
    assert!(starts(&api.ok(Who::Customer, "bookableSlots", slots_args(MON, TUE)).await).contains(&"2030-03-04T12:00:00Z".to_owned()));
    let e = assert_err(api.call_as(Who::Service, "confirmHold", json!({"holdId": hold_id})).await, ErrorType::HoldReleased);
    assert_eq!(e.message, format!("hold {hold_id} was released"));
    assert_err(api.call_as(Who::Provider, "acceptRequest", json!({"holdId": hold_id})).await, ErrorType::HoldReleased);

    // A second request, accepted: it becomes the event.
    let again = api.ok(Who::Customer, "requestBooking", hold_args("2030-03-04T12:00:00Z", "2030-03-04T13:00:00Z", "ask-ana-2")).await;
    let event = api.ok(Who::Provider, "acceptRequest", json!({"holdId": again["holdId"]})).await;
    assert_eq!((event["status"].as_str(), event["start"].as_str()), (Some("CONFIRMED"), Some("2030-03-04T12:00:00Z")));

    // A checkout hold is no request: the provider cannot "accept" it.
    let checkout = api.ok(Who::Customer, "createHold", hold_args("2030-03-04T14:00:00Z", "2030-03-04T15:00:00Z", "buy")).await;
    let e = assert_err(api.call_as(Who::Provider, "acceptRequest", json!({"holdId": checkout["holdId"]})).await, ErrorType::Validation);
    assert!(e.message.contains("not a booking request"), "{e}");
}

#[tokio::test]
async fn reschedule_then_cancel_keeps_the_uid_and_counts_the_sequence() {
    let api = Api::new().await;
    let hold = api.ok(Who::Customer, "createHold", hold_args("2030-03-04T09:00:00Z", "2030-03-04T10:00:00Z", "book-1")).await;
    let event = api.ok(Who::Service, "confirmHold", json!({"holdId": hold["holdId"]})).await;
    let event_id = id(&event, "eventId");
    let uid = id(&event, "icsUid");

    // Candidates have the event's length and ignore its own time.
    let cands = api
        .ok(Who::Customer, "rescheduleCandidates", json!({"eventId": event_id, "from": MON, "to": WED, "stepMin": 30}))
        .await;
    let cand_starts = starts(&cands);
    assert!(cand_starts.contains(&"2030-03-04T09:00:00Z".to_owned()), "its own time is free to it: {cand_starts:?}");
    assert!(cand_starts.contains(&"2030-03-05T09:00:00Z".to_owned()), "{cand_starts:?}");
    assert!(cands["slots"].as_array().unwrap().iter().all(|s| {
        let (a, b) = (cal_core::Instant::parse(s["start"].as_str().unwrap()).unwrap(), cal_core::Instant::parse(s["end"].as_str().unwrap()).unwrap());
        b.unix() - a.unix() == 3600
    }));

    // The customer holds the new time; the order service moves the event.
    let mut args = hold_args("2030-03-05T09:00:00Z", "2030-03-05T10:00:00Z", "move-1");
    args["input"]["kind"] = json!("RESCHEDULE");
    args["input"]["eventId"] = json!(event_id);
    let move_hold = api.ok(Who::Customer, "createHold", args).await;
    assert_eq!((move_hold["kind"].as_str(), move_hold["eventId"].as_str()), (Some("RESCHEDULE"), Some(event_id.as_str())));
    let moved = api.ok(Who::Service, "rescheduleEvent", json!({"eventId": event_id, "holdId": move_hold["holdId"]})).await;
    assert_eq!((moved["eventId"].as_str(), moved["icsUid"].as_str()), (Some(event_id.as_str()), Some(uid.as_str())));
    assert_eq!((moved["start"].as_str(), moved["sequence"].as_i64()), (Some("2030-03-05T09:00:00Z"), Some(1)));
    let redelivered = api.ok(Who::Service, "rescheduleEvent", json!({"eventId": event_id, "holdId": move_hold["holdId"]})).await;
    assert_eq!(redelivered["sequence"], 1, "idempotent");
    // The old time is free again, the new one is not.
    let mon = starts(&api.ok(Who::Customer, "bookableSlots", slots_args(MON, TUE)).await);
    assert!(mon.contains(&"2030-03-04T09:00:00Z".to_owned()), "{mon:?}");
    let tue = starts(&api.ok(Who::Customer, "bookableSlots", slots_args(TUE, WED)).await);
    assert!(!tue.contains(&"2030-03-05T09:00:00Z".to_owned()), "{tue:?}");

    // The provider and the customer cannot cancel; an admin can, once.
    assert_err(api.call_as(Who::Provider, "cancelEvent", json!({"eventId": event_id})).await, ErrorType::Forbidden);
    assert_err(api.call_as(Who::Customer, "cancelEvent", json!({"eventId": event_id})).await, ErrorType::Forbidden);
    let cancelled = api.ok(Who::Admin, "cancelEvent", json!({"eventId": event_id})).await;
    assert_eq!((cancelled["status"].as_str(), cancelled["sequence"].as_i64()), (Some("CANCELLED"), Some(2)));
    assert_eq!(cancelled["icsUid"], uid.as_str());
    let twice = api.ok(Who::Service, "cancelEvent", json!({"eventId": event_id})).await;
    assert_eq!(twice["sequence"], 2, "cancelling again changes nothing");
    assert!(starts(&api.ok(Who::Customer, "bookableSlots", slots_args(TUE, WED)).await).contains(&"2030-03-05T09:00:00Z".to_owned()));

    // The attachment tells calendars to drop it: METHOD:CANCEL, same UID, SEQUENCE:2.
    let ics = api.ok(Who::Customer, "eventIcs", json!({"eventId": event_id})).await;
    assert_eq!((ics["method"].as_str(), ics["filename"].as_str()), (Some("CANCEL"), Some("cancel.ics")));
    assert_eq!(ics["contentType"], "text/calendar; charset=utf-8; method=CANCEL");
    let text = ics["ics"].as_str().unwrap();
    for line in ["METHOD:CANCEL", "SEQUENCE:2", &format!("UID:{uid}"), "STATUS:CANCELLED"] {
        assert!(text.split("\r\n").any(|l| l == line), "{line} missing in\n{text}");
    }
    // A cancelled event cannot be moved.
    let e = assert_err(
        api.call_as(Who::Customer, "rescheduleCandidates", json!({"eventId": event_id, "from": MON, "to": WED})).await,
        ErrorType::Validation,
    );
    assert!(e.message.contains("cancelled"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_overlapping_holds_have_one_winner_and_the_losers_get_alternatives() {
    let api = Api::new().await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let deps = api.deps.clone();
        // 09:00–10:00Z, 09:30–10:30Z, …: all contain 09:30–10:00Z.
        let (start, end) = if i % 2 == 0 {
            ("2030-03-04T09:00:00Z", "2030-03-04T10:00:00Z")
        } else {
            ("2030-03-04T09:30:00Z", "2030-03-04T10:30:00Z")
        };
        let event = common::request(Who::Customer, "createHold", hold_args(start, end, &format!("race-{i}")));
        tasks.push(tokio::spawn(async move { fn_api::handle(&deps, event).await }));
    }
    let (mut won, mut lost) = (Vec::new(), Vec::new());
    for t in tasks {
        match t.await.unwrap() {
            Ok(h) => won.push(h),
            Err(e) => lost.push(e),
        }
    }
    assert_eq!(won.len(), 1, "{won:?}");
    let winner = (&won[0]["start"], &won[0]["end"]);
    for e in &lost {
        assert_eq!(e.kind, ErrorType::Conflict, "{e}");
        assert!(e.message.starts_with("the requested time is no longer available; alternatives: "), "{e}");
        let alts = alternatives(&e.message);
        assert!((1..=3).contains(&alts.len()), "{alts:?}");
        for a in &alts {
            let (s, t) = (a["start"].as_str().unwrap(), a["end"].as_str().unwrap());
            assert!(a["start_local"].as_str().unwrap().ends_with("+01:00"), "{a}");
            let (s, t) = (cal_core::Instant::parse(s).unwrap(), cal_core::Instant::parse(t).unwrap());
            assert_eq!(t.unix() - s.unix(), 3600, "same length: {a}");
            let (ws, we) = (cal_core::Instant::parse(winner.0.as_str().unwrap()).unwrap(), cal_core::Instant::parse(winner.1.as_str().unwrap()).unwrap());
            assert!(t <= ws || s >= we, "an alternative overlaps the winner: {a}");
        }
    }
    assert_eq!(api.db.count("select count(*) from cal.hold").await, 1);

    // Each alternative can be held.
    let e = assert_err(
        api.call_as(Who::Customer, "createHold", hold_args(winner.0.as_str().unwrap(), winner.1.as_str().unwrap(), "late")).await,
        ErrorType::Conflict,
    );
    for (i, a) in alternatives(&e.message).iter().enumerate() {
        let args = hold_args(a["start"].as_str().unwrap(), a["end"].as_str().unwrap(), &format!("alt-{i}"));
        let h = api.call_as(Who::Admin, "createHold", args).await;
        assert!(h.is_ok(), "alternative {a} could not be held: {h:?}");
        // Free them again for the next one (alternatives may overlap each other).
        api.ok(Who::Admin, "releaseHold", json!({"holdId": h.unwrap()["holdId"]})).await;
    }
}

#[tokio::test]
async fn confirming_after_the_ttl_is_hold_expired() {
    let api = Api::new().await;
    let mut args = hold_args("2030-03-04T09:00:00Z", "2030-03-04T10:00:00Z", "slow-checkout");
    args["input"]["ttlMin"] = json!(15);
    let hold = api.ok(Who::Customer, "createHold", args.clone()).await;
    assert_eq!(hold["expiresAt"], "2030-03-01T00:15:00Z");
    api.clock.advance_minutes(15);
    let hold_id = id(&hold, "holdId");
    let e = assert_err(api.call_as(Who::Service, "confirmHold", json!({"holdId": hold_id})).await, ErrorType::HoldExpired);
    assert_eq!(e.message, format!("hold {hold_id} has expired"));
    assert_eq!(api.db.count("select count(*) from cal.event").await, 0);
    // It reads as expired before any sweep, the retry does not revive it, and the time is free.
    assert_eq!(api.ok(Who::Customer, "hold", json!({"holdId": hold_id})).await["status"], "EXPIRED");
    let retry = api.ok(Who::Customer, "createHold", args).await;
    assert_eq!((retry["holdId"].as_str(), retry["status"].as_str()), (Some(hold_id.as_str()), Some("EXPIRED")));
    assert!(starts(&api.ok(Who::Customer, "bookableSlots", slots_args(MON, TUE)).await).contains(&"2030-03-04T09:00:00Z".to_owned()));
    assert_err(api.call_as(Who::Customer, "releaseHold", json!({"holdId": hold_id})).await, ErrorType::HoldExpired);
}

#[tokio::test]
async fn one_key_for_two_different_requests_is_idempotency_mismatch() {
    let api = Api::new().await;
    api.ok(Who::Customer, "createHold", hold_args("2030-03-04T09:00:00Z", "2030-03-04T10:00:00Z", "key-1")).await;
    let e = assert_err(
        api.call_as(Who::Customer, "createHold", hold_args("2030-03-04T12:00:00Z", "2030-03-04T13:00:00Z", "key-1")).await,
        ErrorType::IdempotencyMismatch,
    );
    assert_eq!(e.message, "idempotency key \"key-1\" was used for a different request");
    assert_eq!(api.db.count("select count(*) from cal.hold").await, 1);
}

/// 24 one-hour slots Mon–Wed, 09:00–17:00 Berlin.
fn hour_slots() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for day in ["04", "05", "06"] {
        for h in 8..16 {
            out.push((format!("2030-03-{day}T{h:02}:00:00Z"), format!("2030-03-{day}T{:02}:00:00Z", h + 1)));
        }
    }
    out
}

#[tokio::test]
async fn the_twenty_first_hold_of_a_customer_in_an_hour_is_rate_limited() {
    let api = Api::new().await;
    let slots = hour_slots();
    for (i, (s, e)) in slots.iter().take(20).enumerate() {
        api.ok(Who::Customer, "createHold", hold_args(s, e, &format!("k{i}"))).await;
        api.clock.advance_minutes(1);
    }
    let (s, e) = &slots[20];
    let err = assert_err(api.call_as(Who::Customer, "createHold", hold_args(s, e, "k20")).await, ErrorType::RateLimited);
    assert_eq!(err.message, "at most 20 holds per hour; try again later");
    assert_err(api.call_as(Who::Customer, "requestBooking", hold_args(s, e, "r20")).await, ErrorType::RateLimited);
    assert_eq!(api.db.count("select count(*) from cal.hold").await, 20);
    // Another customer, and an admin acting for this one, are not limited by it.
    api.ok(Who::OtherCustomer, "createHold", hold_args(s, e, "dora-1")).await;
    let (s, e) = &slots[21];
    let mut for_ben = hold_args(s, e, "admin-for-ben");
    for_ben["input"]["customerId"] = json!(CUSTOMER);
    api.ok(Who::Admin, "createHold", for_ben).await;
    // An hour after the last of them (the admin's hold for Ben counts too), room again.
    api.clock.advance_minutes(61);
    let (s, e) = &slots[22];
    api.ok(Who::Customer, "createHold", hold_args(s, e, "k22")).await;
}

/// The hourly limit holds under concurrency: thirty requests of one
/// customer at once, over ten providers (whose own locks do not serialize
/// them), store exactly the limit. A count taken before the hold's write
/// let them all through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_holds_of_one_customer_over_ten_providers_store_exactly_the_limit() {
    let mut api = Api::new().await;
    api.deps.limits.holds_per_customer_per_hour = 5;
    let providers: Vec<String> = (0..10).map(|i| format!("prov-{i}")).collect();
    for p in &providers {
        cal_store::put_rule(&mut api.db.client, &common::rule(&format!("wr_{p}"), p, 0b001_1111, "09:00", "17:00")).await.unwrap();
    }
    let slots = hour_slots();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(30));
    let mut tasks = Vec::new();
    for i in 0..30 {
        let (deps, barrier) = (api.deps.clone(), std::sync::Arc::clone(&barrier));
        let (s, e) = &slots[i / 10];
        let args = json!({"input": {"userId": providers[i % 10], "roleCode": ROLE, "start": s, "end": e, "idempotencyKey": format!("k{i}")}});
        let event = common::request(Who::Customer, "createHold", args);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            fn_api::handle(&deps, event).await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(e) => {
                assert_eq!(e.kind, ErrorType::RateLimited, "{e}");
                assert_eq!(e.message, "at most 5 holds per hour; try again later");
            }
        }
    }
    assert_eq!(won, 5);
    assert_eq!(api.db.count("select count(*) from cal.hold where customer_id = 'cust-ben'").await, 5);
    // An admin is not limited.
    let mut for_ben = json!({"input": {"userId": providers[0], "roleCode": ROLE, "start": slots[5].0, "end": slots[5].1, "idempotencyKey": "admin"}});
    for_ben["input"]["customerId"] = json!(CUSTOMER);
    api.ok(Who::Admin, "createHold", for_ben).await;
}

/// Retries with the same key return the same hold (schema: CreateHoldInput.idempotencyKey),
/// also when the customer is at the hourly limit: the retry creates nothing.
#[tokio::test]
async fn a_retry_at_the_hourly_limit_returns_the_same_hold() {
    let api = Api::new().await;
    let slots = hour_slots();
    let mut last = Value::Null;
    for (i, (s, e)) in slots.iter().take(20).enumerate() {
        last = api.ok(Who::Customer, "createHold", hold_args(s, e, &format!("k{i}"))).await;
    }
    let (s, e) = &slots[19];
    let retry = api.call_as(Who::Customer, "createHold", hold_args(s, e, "k19")).await;
    assert_eq!(retry.map(|h| h["holdId"].clone()), Ok(last["holdId"].clone()), "the 20th hold's retry (its response was lost)");
}

#[tokio::test]
async fn validation_messages_start_with_the_fields_path() {
    let api = Api::new().await;
    let rule = |tz: &str| {
        json!({"userId": PROVIDER, "input": {"roleCode": ROLE, "weekdayMask": 31, "startLocal": "09:00", "endLocal": "17:00", "timezone": tz}})
    };
    let mut cases: Vec<(Who, &str, Value, &str)> = vec![
        (Who::Provider, "putWeeklyRule", rule("Europe/Berlinn"), "input.timezone: "),
        (Who::Provider, "putWeeklyRule", json!({"userId": PROVIDER, "input": {"roleCode": ROLE, "weekdayMask": 0, "startLocal": "09:00", "endLocal": "17:00", "timezone": "UTC"}}), "input.weekdayMask: "),
        (Who::Provider, "putWeeklyRule", json!({"userId": PROVIDER, "input": {"roleCode": ROLE, "weekdayMask": 31, "startLocal": "9am", "endLocal": "17:00", "timezone": "UTC"}}), "input.startLocal: "),
        (Who::Provider, "putWeeklyRule", json!({"userId": PROVIDER, "input": {"roleCode": ROLE, "weekdayMask": 31, "startLocal": "09:00", "endLocal": "17:00", "timezone": "UTC", "minDurationMin": 0}}), "input.minDurationMin: "),
        (Who::Provider, "exceptions", json!({"userId": PROVIDER, "fromDate": "2030-13-01"}), "fromDate: "),
        (Who::Provider, "upsertException", json!({"userId": PROVIDER, "input": {"dateLocal": "2030-03-05", "timezone": "Europe/Berlin", "kind": "HOLIDAY"}}), "input.kind: "),
        (Who::Provider, "upsertException", json!({"userId": PROVIDER, "input": {"dateLocal": "2030-03-05", "timezone": "Europe/Berlin", "kind": "AVAILABLE", "startLocal": "08:00"}}), "input.endLocal: "),
        (Who::Provider, "addVacation", json!({"userId": PROVIDER, "input": {"fromDate": "2030-04-15", "toDate": "2030-04-19", "timezone": "Mars/Olympus"}}), "input.timezone: "),
        (Who::Provider, "copyWeekday", json!({"userId": PROVIDER, "roleCode": ROLE, "fromWeekday": 1, "toWeekdays": [2, 8]}), "toWeekdays[1]: "),
        (Who::Provider, "copyWeekday", json!({"userId": PROVIDER, "roleCode": ROLE, "fromWeekday": 0, "toWeekdays": [2]}), "fromWeekday: "),
        (Who::Customer, "bookableSlots", json!({"input": {"userId": PROVIDER, "roleCode": ROLE, "from": "2030-03-04 00:00", "to": TUE}}), "input.from: "),
        (Who::Customer, "bookableSlots", json!({"input": {"userId": PROVIDER, "roleCode": ROLE, "from": TUE, "to": MON}}), "input.to: "),
        (Who::Customer, "bookableSlots", json!({"input": {"userId": PROVIDER, "roleCode": ROLE, "from": MON, "to": TUE, "stepMin": 0}}), "input.stepMin: "),
        (Who::Customer, "commonSlots", json!({"input": {"mode": "BOTH", "providers": [{"userId": PROVIDER, "roleCode": ROLE}], "from": MON, "to": TUE}}), "input.mode: "),
        (Who::Customer, "commonSlots", json!({"input": {"mode": "ANY_OF", "providers": [], "from": MON, "to": TUE}}), "input.providers: "),
        (Who::Customer, "createHold", hold_args("2030-03-04T10:00:00Z", "2030-03-04T09:00:00Z", "v1"), "input.end: "),
        (Who::Customer, "createHold", hold_args("2030-03-04T09:00:00Z", "2030-03-04T10:00:00Z", ""), "input.idempotencyKey: "),
        (Who::Customer, "createHold", hold_args("tomorrow", "2030-03-04T10:00:00Z", "v2"), "input.start: "),
        (Who::Customer, "hold", json!({"holdId": ""}), "holdId: "),
        (Who::Admin, "rescheduleEvent", json!({"eventId": "ev_x"}), "holdId: "),
        (Who::Provider, "weeklyRules", json!({"roleCode": ROLE}), "arguments: "),
    ];
    let mut ttl = hold_args("2030-03-04T09:00:00Z", "2030-03-04T10:00:00Z", "v3");
    ttl["input"]["ttlMin"] = json!(0);
    cases.push((Who::Customer, "createHold", ttl, "input.ttlMin: "));
    let mut kind = hold_args("2030-03-04T09:00:00Z", "2030-03-04T10:00:00Z", "v4");
    kind["input"]["kind"] = json!("VIP");
    cases.push((Who::Customer, "createHold", kind, "input.kind: "));
    let mut resched = hold_args("2030-03-04T09:00:00Z", "2030-03-04T10:00:00Z", "v5");
    resched["input"]["kind"] = json!("RESCHEDULE");
    cases.push((Who::Customer, "createHold", resched, "input.eventId: "));
    let mut mode = hold_args("2030-03-04T09:00:00Z", "2030-03-04T10:00:00Z", "v6");
    mode["input"]["mode"] = json!("INSTANT");
    cases.push((Who::Customer, "requestBooking", mode, "input.mode: "));

    let before = api.outbox_len().await;
    let mut failures = Vec::new();
    for (who, field, args, prefix) in cases {
        match api.call_as(who, field, args.clone()).await {
            Err(e) if e.kind == ErrorType::Validation && e.message.starts_with(prefix) => {}
            other => failures.push(format!("{field} {args}: expected VALIDATION starting {prefix:?}, got {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(api.outbox_len().await, before, "refused input writes nothing");
    let e = api.err(Who::Provider, "putWeeklyRule", rule("Europe/Berlinn")).await;
    assert!(e.message.contains("Europe/Berlinn"), "names the bad value: {e}");
}

/// `durationMin` out of range is reported on `input.durationMin`, not on `stepMin`.
#[tokio::test]
async fn validation_of_duration_min_names_input_duration_min() {
    let api = Api::new().await;
    let args = json!({"input": {"userId": PROVIDER, "roleCode": ROLE, "from": MON, "to": TUE, "durationMin": 0}});
    let e = api.err(Who::Customer, "bookableSlots", args).await;
    assert_eq!(e.kind, ErrorType::Validation);
    assert!(e.message.starts_with("input.durationMin: "), "{e}");
}

/// A vacation that ends before it starts is reported on `input.toDate` (the
/// argument's path), not on the store's `to_date`.
#[tokio::test]
async fn validation_of_a_reversed_vacation_names_input_to_date() {
    let api = Api::new().await;
    let args = json!({"userId": PROVIDER, "input": {"fromDate": "2030-04-19", "toDate": "2030-04-15", "timezone": "Europe/Berlin"}});
    let e = api.err(Who::Provider, "addVacation", args).await;
    assert_eq!(e.kind, ErrorType::Validation);
    assert!(e.message.starts_with("input.toDate: "), "{e}");
}

#[tokio::test]
async fn not_found_for_ids_that_do_not_exist() {
    let api = Api::new().await;
    for (who, field, args) in [
        (Who::Service, "confirmHold", json!({"holdId": "hld_nope"})),
        (Who::Customer, "releaseHold", json!({"holdId": "hld_nope"})),
        (Who::Customer, "eventIcs", json!({"eventId": "ev_nope"})),
        (Who::Admin, "cancelEvent", json!({"eventId": "ev_nope"})),
        (Who::Provider, "deleteWeeklyRule", json!({"userId": PROVIDER, "ruleId": "wr_nope"})),
        (Who::Provider, "deleteException", json!({"userId": PROVIDER, "excId": "ex_nope"})),
        (Who::Provider, "resyncIcs", json!({"userId": PROVIDER, "sourceId": "src_nope"})),
        (Who::Provider, "rotateFeed", json!({"userId": PROVIDER})),
    ] {
        let e = assert_err(api.call_as(who, field, args).await, ErrorType::NotFound);
        assert!(!e.message.is_empty(), "{field}");
    }
    // hold and event answer null for an unknown id.
    assert_eq!(api.ok(Who::Customer, "hold", json!({"holdId": "hld_nope"})).await, Value::Null);
    assert_eq!(api.ok(Who::Customer, "event", json!({"eventId": "ev_nope"})).await, Value::Null);
    // Ana's rule is not Cara's to delete, even as "her own" user: NOT_FOUND.
    let e = api.err(Who::Admin, "deleteWeeklyRule", json!({"userId": "prov-cara", "ruleId": "wr_ana_weekdays"})).await;
    assert_eq!(e.kind, ErrorType::NotFound);
}

#[tokio::test]
async fn internal_errors_say_internal_error_and_nothing_more() {
    // A pool pointed at a database that no longer exists.
    let db = common::TestDb::new().await;
    let url = db.url();
    drop(db);
    let clock = common::Clock::at(common::NOW);
    let deps = common::deps_for(&url, &clock);
    for (who, field, args) in [
        (Who::Provider, "weeklyRules", json!({"userId": PROVIDER})),
        (Who::Customer, "createHold", hold_args("2030-03-04T09:00:00Z", "2030-03-04T10:00:00Z", "k")),
        (Who::Service, "confirmHold", json!({"holdId": "hld_1"})),
    ] {
        let e = fn_api::handle(&deps, common::request(who, field, args)).await.unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (ErrorType::Internal, "internal error"), "{field}");
    }

    // A statement that fails inside the database (its table is gone).
    let api = Api::new().await;
    api.db.client.batch_execute("drop table cal.hold cascade").await.unwrap();
    let e = api.err(Who::Customer, "createHold", hold_args("2030-03-04T09:00:00Z", "2030-03-04T10:00:00Z", "k")).await;
    assert_eq!((e.kind, e.message.as_str()), (ErrorType::Internal, "internal error"));
    let shown = format!("{e} {e:?}");
    for leak in ["cal.hold", "relation", "does not exist", "SQL", "postgres"] {
        assert!(!shown.contains(leak), "leaks {leak:?}: {shown}");
    }
}
