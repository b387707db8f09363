//! What a hostile caller or a careless client can send, and what it gets:
//! a `VALIDATION` or `FORBIDDEN` that names the field, nothing stored, and
//! never `INTERNAL` (which pages someone). docs/decisions.md, "Limits" and
//! "Authorization", lists the rules these tests hold the API to.

mod common;

use cal_core::ErrorType;
use common::{Api, CUSTOMER, PROVIDER, ROLE, Who, assert_err, hold_args};
use serde_json::{Value, json};

/// A refusal of `kind` whose message starts with `field`.
fn refused(result: Result<Value, fn_api::ApiError>, kind: ErrorType, field: &str) -> String {
    let e = assert_err(result, kind);
    assert!(e.message.starts_with(&format!("{field}: ")), "expected the message to name {field}: {}", e.message);
    assert!(e.message.chars().count() < 400, "a refusal never echoes a long input: {} chars", e.message.chars().count());
    e.message
}

fn slot_query(from: &str, to: &str, step: i64) -> Value {
    json!({"input": {"userId": PROVIDER, "roleCode": ROLE, "from": from, "to": to, "stepMin": step}})
}

#[tokio::test]
async fn a_customer_or_a_user_in_no_group_cannot_publish_rules_even_for_themselves() {
    let api = Api::new().await;
    let rule = |user: &str| {
        json!({"userId": user, "input": {"roleCode": ROLE, "weekdayMask": 31, "startLocal": "09:00",
                                          "endLocal": "17:00", "timezone": "Europe/Berlin"}})
    };
    let before = api.outbox_len().await;
    assert_err(api.call_as(Who::Customer, "putWeeklyRule", rule(CUSTOMER)).await, ErrorType::Forbidden);
    // prov-ana's own calendar, but signed in without the provider group.
    assert_err(api.call_as(Who::NoGroup, "putWeeklyRule", rule(PROVIDER)).await, ErrorType::Forbidden);
    assert_err(api.call_as(Who::NoGroup, "createFeed", json!({"userId": PROVIDER})).await, ErrorType::Forbidden);
    assert_eq!(api.outbox_len().await, before, "a refused call wrote an outbox row");
    assert_eq!(api.db.count("select count(*) from cal.weekly_rule where user_id = 'cust-ben'").await, 0);
    // The provider, in the provider group, may.
    api.ok(Who::Provider, "putWeeklyRule", rule(PROVIDER)).await;
}

#[tokio::test]
async fn an_iam_principal_off_the_allow_list_can_neither_rotate_a_feed_nor_confirm_a_hold() {
    let (api, fx) = Api::with_fixture().await;
    let before = api.outbox_len().await;
    let e = assert_err(api.call_as(Who::ForeignService, "rotateFeed", json!({"userId": PROVIDER})).await, ErrorType::Forbidden);
    assert!(!e.message.contains("https://"), "no feed URL to a refused caller: {}", e.message);
    assert_err(api.call_as(Who::ForeignService, "confirmHold", json!({"holdId": fx.hold_id})).await, ErrorType::Forbidden);
    assert_eq!(api.outbox_len().await, before);
    assert_eq!(api.db.count("select count(*) from cal.hold where status = 'converted'").await, 1, "only the fixture's booking");
    // The allow-listed role, under any session name, is the order service.
    let mut event = common::request(Who::Service, "confirmHold", json!({"holdId": fx.hold_id}));
    event["identity"]["userArn"] = json!("arn:aws:sts::123456789012:assumed-role/order-service/another-session");
    assert_eq!(api.call(event).await.unwrap()["status"], "CONFIRMED");
}

#[tokio::test]
async fn a_malformed_identity_is_forbidden_in_plain_words() {
    let api = Api::new().await;
    for identity in [json!({}), json!("ana"), json!([]), json!({"sub": ""}), json!({"userArn": 7})] {
        let mut event = common::request(Who::Provider, "weeklyRules", json!({"userId": PROVIDER}));
        event["identity"] = identity.clone();
        let e = assert_err(api.call(event).await, ErrorType::Forbidden);
        assert_eq!(e.message, "not allowed for this caller", "{identity}");
    }
}

#[tokio::test]
async fn nul_characters_and_oversized_strings_are_refused_by_field_and_nothing_is_stored() {
    let (api, fx) = Api::with_fixture().await;
    let before = api.outbox_len().await;
    let big = "x".repeat(1 << 20);
    let cases: Vec<(Who, &str, Value, &str)> = vec![
        (Who::Customer, "createHold", hold_args("2030-03-04T08:00:00Z", "2030-03-04T09:00:00Z", "key\u{0}"), "input.idempotencyKey"),
        (Who::Customer, "createHold", {
            let mut a = hold_args("2030-03-04T08:00:00Z", "2030-03-04T09:00:00Z", "k");
            a["input"]["roleCode"] = json!(big);
            a
        }, "input.roleCode"),
        (Who::Customer, "createHold", {
            let mut a = hold_args("2030-03-04T08:00:00Z", "2030-03-04T09:00:00Z", "k");
            a["input"]["userId"] = json!("p".repeat(10_000));
            a
        }, "input.userId"),
        (Who::Customer, "hold", json!({"holdId": "h\u{0}"}), "holdId"),
        (Who::Customer, "bookableSlots", {
            let mut q = slot_query("2030-03-04T00:00:00Z", "2030-03-05T00:00:00Z", 30);
            q["input"]["userId"] = json!("prov\u{0}ana");
            q
        }, "input.userId"),
        (Who::Provider, "upsertException", json!({"userId": PROVIDER, "input": {"dateLocal": "2030-03-05",
            "timezone": "Europe/Berlin", "kind": "UNAVAILABLE", "note": big}}), "input.note"),
        (Who::Provider, "upsertException", json!({"userId": PROVIDER, "input": {"dateLocal": "2030-03-05",
            "timezone": "Europe/Berlin", "kind": "UNAVAILABLE", "note": "dentist\u{0}"}}), "input.note"),
        (Who::Provider, "addVacation", json!({"userId": PROVIDER, "input": {"fromDate": "2030-03-05",
            "toDate": "2030-03-06", "timezone": "Europe/Berlin", "note": "x".repeat(501)}}), "input.note"),
        (Who::Provider, "connectIcs", json!({"userId": PROVIDER, "url": "https://example.com/a.ics", "label": "a\u{0}"}), "label"),
        (Who::Provider, "connectIcs", json!({"userId": PROVIDER, "url": format!("https://example.com/{big}")}), "url"),
        (Who::Provider, "deleteException", json!({"userId": PROVIDER, "excId": "e\u{0}"}), "excId"),
        (Who::Provider, "putWeeklyRule", json!({"userId": PROVIDER, "input": {"roleCode": "r\u{0}", "weekdayMask": 31,
            "startLocal": "09:00", "endLocal": "17:00", "timezone": "Europe/Berlin"}}), "input.roleCode"),
        // A parsed value that quotes the input is cut short, not echoed.
        (Who::Provider, "putWeeklyRule", json!({"userId": PROVIDER, "input": {"roleCode": ROLE, "weekdayMask": 31,
            "startLocal": "09:00", "endLocal": "17:00", "timezone": big}}), "input.timezone"),
        (Who::Admin, "cancelEvent", json!({"eventId": format!("{}\u{0}", fx.event_id)}), "eventId"),
    ];
    for (who, field, args, path) in cases {
        refused(api.call_as(who, field, args).await, ErrorType::Validation, path);
    }
    assert_eq!(api.outbox_len().await, before, "a refused call wrote an outbox row");
    assert_eq!(api.db.count("select count(*) from cal.exception where note like 'x%'").await, 0);
}

#[tokio::test]
async fn slot_queries_are_bounded_before_any_work_is_done() {
    let api = Api::new().await;
    // Year 0001 to 9999: refused at once, naming `to` and the limit.
    let m = refused(
        api.call_as(Who::Customer, "bookableSlots", slot_query("0001-01-01T00:00:00Z", "9999-12-31T00:00:00Z", 30)).await,
        ErrorType::Validation,
        "input.to",
    );
    assert!(m.contains("366 days"), "{m}");
    // A year at a 1-minute step: too many grid points, naming the step.
    let m = refused(
        api.call_as(Who::Customer, "bookableSlots", slot_query("2030-03-01T00:00:00Z", "2031-03-01T00:00:00Z", 1)).await,
        ErrorType::Validation,
        "input.stepMin",
    );
    assert!(m.contains("105408"), "{m}");
    // A year at the default step is fine.
    api.ok(Who::Customer, "bookableSlots", slot_query("2030-03-01T00:00:00Z", "2031-03-01T00:00:00Z", 30)).await;
    // The same bounds for the candidates of a reschedule.
    let (api2, fx) = Api::with_fixture().await;
    refused(
        api2.call_as(Who::Customer, "rescheduleCandidates",
            json!({"eventId": fx.event_id, "from": "2030-03-01T00:00:00Z", "to": "2040-03-01T00:00:00Z"})).await,
        ErrorType::Validation,
        "to",
    );
    // Providers per commonSlots.
    let providers: Vec<Value> = (0..11).map(|i| json!({"userId": format!("p{i}"), "roleCode": ROLE})).collect();
    let common = json!({"input": {"mode": "ANY_OF", "providers": providers, "from": "2030-03-04T00:00:00Z", "to": "2030-03-05T00:00:00Z"}});
    let m = refused(api.call_as(Who::Customer, "commonSlots", common).await, ErrorType::Validation, "input.providers");
    assert!(m.contains("1 to 10"), "{m}");
}

#[tokio::test]
async fn an_answer_with_more_slots_than_one_response_may_hold_is_refused_naming_the_range() {
    let api = Api::new().await;
    // Around the clock, every day, 5-minute grid, 5-minute slots: 288 a day.
    let always = json!({"userId": "prov-247", "input": {"roleCode": ROLE, "weekdayMask": 127, "startLocal": "00:00",
        "endLocal": "00:00", "timezone": "UTC", "minDurationMin": 5, "leadTimeHours": 0, "bookingWindowDays": 365}});
    api.ok(Who::Admin, "putWeeklyRule", always).await;
    let q = |to: &str| json!({"input": {"userId": "prov-247", "roleCode": ROLE, "from": "2030-03-02T00:00:00Z", "to": to, "stepMin": 5}});
    // 34 days: 9,792 slots, within the limit of 10,000.
    let page = api.ok(Who::Customer, "bookableSlots", q("2030-04-05T00:00:00Z")).await;
    assert_eq!(page["slots"].as_array().unwrap().len(), 34 * 288);
    // 35 days: 10,080.
    let m = refused(api.call_as(Who::Customer, "bookableSlots", q("2030-04-06T00:00:00Z")).await, ErrorType::Validation, "input.to");
    assert!(m.contains("10000 slots"), "{m}");
}

#[tokio::test]
async fn lists_are_bounded_rules_by_count_exceptions_by_answer() {
    let api = Api::new().await;
    // Vacations of 366 days are the most one call writes; four of them
    // give the provider more exceptions than one list answers.
    for (from, to) in [("2030-01-01", "2030-12-31"), ("2031-01-01", "2031-12-31"), ("2032-01-01", "2032-12-31")] {
        api.ok(Who::Provider, "addVacation", json!({"userId": PROVIDER, "input": {"fromDate": from, "toDate": to, "timezone": "Europe/Berlin"}})).await;
    }
    let m = refused(api.call_as(Who::Provider, "exceptions", json!({"userId": PROVIDER})).await, ErrorType::Validation, "toDate");
    assert!(m.contains("1000"), "{m}");
    let year = api.ok(Who::Provider, "exceptions", json!({"userId": PROVIDER, "fromDate": "2031-01-01", "toDate": "2031-12-31"})).await;
    assert_eq!(year.as_array().unwrap().len(), 365);
    refused(
        api.call_as(Who::Provider, "addVacation", json!({"userId": PROVIDER, "input": {"fromDate": "2033-01-01", "toDate": "2034-01-02", "timezone": "Europe/Berlin"}})).await,
        ErrorType::Validation,
        "input.toDate",
    );

    // Weekly rules: at most 100 per provider (the fixture has 2 of Ana's).
    for i in 0..98 {
        let rule = json!({"userId": PROVIDER, "input": {"roleCode": format!("role{i}"), "weekdayMask": 1, "startLocal": "09:00",
            "endLocal": "10:00", "timezone": "Europe/Berlin"}});
        api.ok(Who::Provider, "putWeeklyRule", rule).await;
    }
    let one_more = json!({"userId": PROVIDER, "input": {"roleCode": "role-extra", "weekdayMask": 1, "startLocal": "09:00",
        "endLocal": "10:00", "timezone": "Europe/Berlin"}});
    let e = assert_err(api.call_as(Who::Provider, "putWeeklyRule", one_more).await, ErrorType::RateLimited);
    assert!(e.message.contains("100 weekly rules"), "{}", e.message);
    // Changing an existing rule is not a new one.
    let rules = api.ok(Who::Provider, "weeklyRules", json!({"userId": PROVIDER, "roleCode": "role0"})).await;
    let mut change = json!({"userId": PROVIDER, "input": {"ruleId": rules[0]["ruleId"], "roleCode": "role0", "weekdayMask": 3,
        "startLocal": "09:00", "endLocal": "10:00", "timezone": "Europe/Berlin"}});
    assert_eq!(api.ok(Who::Provider, "putWeeklyRule", change.clone()).await["weekdayMask"], 3);
    change["input"]["weekdayMask"] = json!(7);
    api.ok(Who::Provider, "putWeeklyRule", change).await;
}

#[tokio::test]
async fn refusals_are_answers_and_only_internal_failures_are_function_errors() {
    let (api, _fx) = Api::with_fixture().await;
    // A lost race: the fixture's checkout hold holds Mon 09:00–10:00Z.
    let taken = common::request(Who::Customer, "createHold", hold_args("2030-03-04T09:00:00Z", "2030-03-04T10:00:00Z", "late"));
    let answer = fn_api::respond(&api.deps, taken).await.expect("a CONFLICT is an answer, not a function error");
    assert_eq!(answer["error"]["type"], "CONFLICT");
    assert!(answer["error"]["message"].as_str().unwrap().contains("alternatives: ["), "{answer}");
    assert!(answer.get("data").is_none());
    let forbidden = common::request(Who::Nobody, "weeklyRules", json!({"userId": PROVIDER}));
    assert_eq!(fn_api::respond(&api.deps, forbidden).await.unwrap()["error"]["type"], "FORBIDDEN");
    let ok = common::request(Who::Provider, "weeklyRules", json!({"userId": PROVIDER}));
    let answer = fn_api::respond(&api.deps, ok).await.unwrap();
    assert_eq!(answer["data"].as_array().map(Vec::len), Some(2), "{answer}");

    // A database that cannot be reached is ours to fix: a function error.
    let mut deps = api.deps.clone();
    deps.pool = cal_store::pool_from_url("postgres://nobody@127.0.0.1:1/none", 1).unwrap();
    let e = fn_api::respond(&deps, common::request(Who::Provider, "weeklyRules", json!({"userId": PROVIDER}))).await.unwrap_err();
    assert_eq!((e.kind, e.message.as_str()), (ErrorType::Internal, "internal error"));
}

#[tokio::test]
async fn an_enum_value_outside_the_schema_is_refused_naming_its_field() {
    let api = Api::new().await;
    let mut hold = hold_args("2030-03-04T08:00:00Z", "2030-03-04T09:00:00Z", "k");
    hold["input"]["kind"] = json!("EVERYTHING");
    let m = refused(api.call_as(Who::Customer, "createHold", hold).await, ErrorType::Validation, "input.kind");
    assert!(m.contains("unknown variant"), "{m}");
    let mut request = hold_args("2030-03-04T08:00:00Z", "2030-03-04T09:00:00Z", "k2");
    request["input"]["mode"] = json!("INSTANT");
    refused(api.call_as(Who::Customer, "requestBooking", request).await, ErrorType::Validation, "input.mode");
    let exc = json!({"userId": PROVIDER, "input": {"dateLocal": "2030-03-05", "timezone": "Europe/Berlin", "kind": "MAYBE"}});
    refused(api.call_as(Who::Provider, "upsertException", exc).await, ErrorType::Validation, "input.kind");
    let common = json!({"input": {"mode": "SOME_OF", "providers": [{"userId": PROVIDER, "roleCode": ROLE}],
                                  "from": "2030-03-04T00:00:00Z", "to": "2030-03-05T00:00:00Z"}});
    refused(api.call_as(Who::Customer, "commonSlots", common).await, ErrorType::Validation, "input.mode");
    // The schema's own values still read.
    let mut ok = hold_args("2030-03-04T08:00:00Z", "2030-03-04T09:00:00Z", "k3");
    ok["input"]["kind"] = json!("CHECKOUT");
    ok["input"]["mode"] = json!("REQUEST");
    let held = api.ok(Who::Customer, "createHold", ok).await;
    assert_eq!((held["kind"].as_str(), held["mode"].as_str()), (Some("CHECKOUT"), Some("REQUEST")));
}

#[tokio::test]
async fn an_exception_with_one_time_names_the_missing_one() {
    let api = Api::new().await;
    let only_start = json!({"userId": PROVIDER, "input": {"dateLocal": "2030-03-05", "timezone": "Europe/Berlin",
        "kind": "UNAVAILABLE", "startLocal": "12:00"}});
    let m = refused(api.call_as(Who::Provider, "upsertException", only_start).await, ErrorType::Validation, "input.endLocal");
    assert!(m.contains("both"), "{m}");
    let only_end = json!({"userId": PROVIDER, "input": {"dateLocal": "2030-03-05", "timezone": "Europe/Berlin",
        "kind": "UNAVAILABLE", "endLocal": "14:00"}});
    refused(api.call_as(Who::Provider, "upsertException", only_end).await, ErrorType::Validation, "input.startLocal");
}
