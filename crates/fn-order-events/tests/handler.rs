//! The order-events handler with its events/ payloads, end to end against
//! real Postgres and moto.

use std::time::Duration;

use cal_aws::DynamoIdempotencyStore;
use cal_aws::testing::fixture::*;
use cal_aws::testing::{create_table, moto};
use fn_order_events::{OrderOptions, order_event};

#[tokio::test]
async fn order_events_book_reschedule_cancel_idempotently() {
    let sdk = moto().await;
    let table = create_table(&sdk, "idem").await;
    let store = DynamoIdempotencyStore::new(aws_sdk_dynamodb::Client::new(&sdk), &table);
    let mut db = TestDb::new().await;
    let fx = seed_fixture(&mut db).await;
    let pool = pool(&db);
    let opts = OrderOptions { idempotency_ttl: Duration::from_secs(3600) };
    let now = at(NOW).plus_minutes(5);
    let now_ms = now.unix() * 1000;
    let run = |file: &'static str| {
        let ev = event(file, Some(&fx));
        let (pool, store) = (&pool, &store);
        async move { order_event(pool, store, opts, now, now_ms, Duration::from_secs(30), ev).await }
    };

    let booked = run("order-events/fn-order-events.booked.json").await.unwrap();
    assert_eq!(booked["event"]["status"], "confirmed");
    // Redelivery: the same answer, still one event for the hold.
    assert_eq!(run("order-events/fn-order-events.booked.json").await.unwrap(), booked);
    assert_eq!(db.count("select count(*) from cal.event where status = 'confirmed'").await, 2);

    let moved = run("order-events/fn-order-events.rescheduled.json").await.unwrap();
    assert_eq!(moved["event"]["start"], "2030-03-05T13:00:00Z");
    let cancelled = run("order-events/fn-order-events.cancelled.json").await.unwrap();
    assert_eq!(cancelled["event"]["status"], "cancelled");
    assert_eq!(run("order-events/fn-order-events.cancelled.json").await.unwrap(), cancelled);

    // A bad event is refused with a stable code and leaves no record behind.
    let mut bad = event("order-events/fn-order-events.booked.json", Some(&fx));
    bad["id"] = "another-id".into();
    bad["detail"]["hold_id"] = "hold_missing".into();
    let err = order_event(&pool, &store, opts, now, now_ms, Duration::from_secs(30), bad).await.unwrap_err();
    assert_eq!(err.error_type(), cal_core::ErrorType::NotFound);
}
