//! Booking policies through the API (SEMANTICS.md §8): set, listed and
//! deleted by the provider, each refusal naming its field, and enforced by
//! the very next hold.

mod common;

use cal_core::ErrorType;
use common::{Api, PROVIDER, ROLE, Who, assert_err, hold_args};
use serde_json::json;

fn put(input: serde_json::Value) -> serde_json::Value {
    json!({"userId": PROVIDER, "input": input})
}

#[tokio::test]
async fn a_refused_policy_names_its_field_and_stores_nothing() {
    let api = Api::new().await;
    let before = api.outbox_len().await;
    for (input, field) in [
        (json!({"roleCode": ROLE, "timezone": "Europe/Berlinn"}), "input.timezone: "),
        (json!({"roleCode": ROLE, "timezone": "UTC", "bufferBeforeMin": -5}), "input.bufferBeforeMin: "),
        (json!({"roleCode": ROLE, "timezone": "UTC", "bufferAfterMin": 1441}), "input.bufferAfterMin: "),
        (json!({"roleCode": ROLE, "timezone": "UTC", "maxPerDay": 0}), "input.maxPerDay: "),
        (json!({"roleCode": ROLE, "timezone": "UTC", "maxPerWeek": -1}), "input.maxPerWeek: "),
        (json!({"roleCode": "", "timezone": "UTC"}), "input.roleCode: "),
    ] {
        let e = assert_err(api.call_as(Who::Provider, "putBookingPolicy", put(input)).await, ErrorType::Validation);
        assert!(e.message.starts_with(field), "{field}: {e}");
    }
    assert_eq!(api.outbox_len().await, before);
    assert_eq!(api.ok(Who::Provider, "bookingPolicies", json!({"userId": PROVIDER})).await, json!([]));
}

#[tokio::test]
async fn a_policy_set_by_the_provider_limits_the_next_hold_until_it_is_deleted() {
    let api = Api::new().await;
    let input = json!({"roleCode": ROLE, "timezone": "Europe/Berlin", "bufferAfterMin": 30, "maxPerDay": 2});
    let stored = api.ok(Who::Provider, "putBookingPolicy", put(input)).await;
    assert_eq!(
        stored,
        json!({"userId": PROVIDER, "roleCode": ROLE, "timezone": "Europe/Berlin", "bufferBeforeMin": 0,
               "bufferAfterMin": 30, "maxPerDay": 2, "maxPerWeek": null})
    );
    assert_eq!(api.ok(Who::Admin, "bookingPolicies", json!({"userId": PROVIDER})).await, json!([stored]));

    // Monday 4 March 2030 (Berlin, 09:00–17:00 = 08:00–16:00Z).
    api.ok(Who::Customer, "createHold", hold_args("2030-03-04T08:00:00Z", "2030-03-04T09:00:00Z", "a")).await;
    // Within the first booking's 30 minutes after: refused.
    let e = api.err(Who::Customer, "createHold", hold_args("2030-03-04T09:00:00Z", "2030-03-04T10:00:00Z", "b")).await;
    assert_eq!(e.kind, ErrorType::Conflict, "{e}");
    api.ok(Who::Customer, "createHold", hold_args("2030-03-04T09:30:00Z", "2030-03-04T10:30:00Z", "c")).await;
    // The day's two are taken.
    let e = api.err(Who::Customer, "createHold", hold_args("2030-03-04T13:00:00Z", "2030-03-04T14:00:00Z", "d")).await;
    assert_eq!(e.kind, ErrorType::Conflict, "{e}");

    let del = json!({"userId": PROVIDER, "roleCode": ROLE});
    assert_eq!(api.ok(Who::Provider, "deleteBookingPolicy", del.clone()).await, json!(true));
    assert_err(api.call_as(Who::Provider, "deleteBookingPolicy", del).await, ErrorType::NotFound);
    api.ok(Who::Customer, "createHold", hold_args("2030-03-04T13:00:00Z", "2030-03-04T14:00:00Z", "e")).await;
    let types = api.db.client.query("select event_type from cal.outbox where event_type = 'cal.policy.updated'", &[]).await.unwrap();
    assert_eq!(types.len(), 2);
}
