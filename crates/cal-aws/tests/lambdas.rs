//! Each Lambda's handler with its events/ payload, end to end against real
//! Postgres and moto.

mod common;

use std::time::Duration;

use cal_aws::cache::{Source, cached_slots, near_term_queries};
use cal_aws::handlers::{self, OrderOptions, RebuildOptions, SweepOptions};
use cal_aws::testing::{create_table, moto};
use cal_aws::{DynamoCache, DynamoIdempotencyStore};
use cal_store::RelayOptions;
use common::*;

fn relay_opts() -> RelayOptions {
    RelayOptions { backoff: Duration::from_millis(10), ..RelayOptions::default() }
}

#[tokio::test]
async fn outbox_relay_publishes_the_fixture_events() {
    let (bus, publisher) = moto_bus().await;
    let mut db = TestDb::new().await;
    seed_fixture(&mut db).await;
    let outbox = db.count("select count(*) from cal.outbox").await as usize;
    let pool = pool(&db);
    let out = handlers::relay(&pool, &publisher, relay_opts(), event("relay/fn-outbox-relay.scheduled.json", None)).await.unwrap();
    assert_eq!(out["published"], outbox);
    let messages = bus.drain().await;
    assert_eq!(messages.len(), outbox);
    assert!(messages.iter().any(|m| m["detail-type"] == "cal.event.confirmed"));
}

#[tokio::test]
async fn hold_sweeper_expires_and_relays() {
    let (bus, publisher) = moto_bus().await;
    let mut db = TestDb::new().await;
    let fx = seed_fixture(&mut db).await;
    let pool = pool(&db);
    let later = at(NOW).plus_minutes(11); // checkout holds live 10 minutes
    let out = handlers::sweep(&pool, &publisher, SweepOptions { batch: 1, max_batches: 10 }, relay_opts(), later, event("sweeper/fn-hold-sweeper.scheduled.json", None))
        .await
        .unwrap();
    // The checkout hold and the reschedule hold expired (the converted one did not).
    assert_eq!(out["swept"], 2);
    assert_eq!(cal_store::get_hold(&db.client, &fx.hold_id).await.unwrap().status, cal_core::HoldStatus::Expired);
    let expired: Vec<_> = bus.drain().await.into_iter().filter(|m| m["detail-type"] == "cal.hold.expired").collect();
    assert_eq!(expired.len(), 2);
    assert_eq!(db.count("select count(*) from cal.outbox where published_at is null").await, 0);
}

#[tokio::test]
async fn relay_and_sweeper_fail_the_invocation_when_the_bus_fails() {
    let mut db = TestDb::new().await;
    seed_fixture(&mut db).await;
    let pool = pool(&db);
    let publisher = cal_store::relay::fake::FakePublisher::new();
    publisher.fail_calls(u32::MAX);
    let err = handlers::relay(&pool, &publisher, relay_opts(), event("relay/fn-outbox-relay.scheduled.json", None)).await.unwrap_err();
    assert_eq!(err.error_type(), cal_core::ErrorType::Internal);
    assert!(err.to_string().contains("the event bus failed"), "{err}");
    // The sweeper's expiries commit; its relay fails the invocation the same way.
    let later = at(NOW).plus_minutes(11);
    let sweep = SweepOptions { batch: 10, max_batches: 10 };
    let err = handlers::sweep(&pool, &publisher, sweep, relay_opts(), later, event("sweeper/fn-hold-sweeper.scheduled.json", None))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), cal_core::ErrorType::Internal);
    assert_eq!(db.count("select count(*) from cal.hold where status = 'expired'").await, 2);
}

#[tokio::test]
async fn the_sweeper_reports_what_it_parked() {
    let (bus, publisher) = moto_bus().await;
    let mut db = TestDb::new().await;
    seed_fixture(&mut db).await;
    db.outbox_row_from_before_the_bound("cal.exception.upserted", PROVIDER, &serde_json::json!({ "note": "n".repeat(300 * 1024) })).await;
    let outbox = db.count("select count(*) from cal.outbox").await;
    let pool = pool(&db);
    let out = handlers::sweep(&pool, &publisher, SweepOptions { batch: 10, max_batches: 10 }, relay_opts(), at(NOW), event("sweeper/fn-hold-sweeper.scheduled.json", None))
        .await
        .unwrap();
    assert_eq!(out["relay"]["parked"], 1);
    assert_eq!(out["relay"]["published"], outbox - 1);
    assert_eq!(bus.drain().await.len() as i64, outbox - 1);
}

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
        async move { handlers::order_event(pool, store, opts, now, now_ms, Duration::from_secs(30), ev).await }
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
    let err = handlers::order_event(&pool, &store, opts, now, now_ms, Duration::from_secs(30), bad).await.unwrap_err();
    assert_eq!(err.error_type(), cal_core::ErrorType::NotFound);
}

#[tokio::test]
async fn cache_rebuilder_warms_the_near_term_cache() {
    let sdk = moto().await;
    let table = create_table(&sdk, "feas").await;
    let cache = DynamoCache::new(aws_sdk_dynamodb::Client::new(&sdk), &table, 300);
    let mut db = TestDb::new().await;
    let fx = seed_fixture(&mut db).await;
    let pool = pool(&db);
    let now = at(NOW);
    let opts = RebuildOptions { days: 7 };
    let out = handlers::rebuild_cache(&pool, &cache, opts, now, event("cache-rebuilder/fn-cache-rebuilder.cal-rule-updated.json", None)).await.unwrap();
    assert_eq!((out["user_id"].as_str(), out["entries"].as_u64()), (Some(PROVIDER), Some(7)));
    // Reads of those windows now hit the cache.
    let monday = &near_term_queries(PROVIDER, ROLE, now, 7)[3];
    let (_, src) = cached_slots(&db.client, &cache, monday, now).await.unwrap();
    assert_eq!(src, Source::Cache);
    // An order event finds the provider through its hold.
    let out = handlers::rebuild_cache(&pool, &cache, opts, now, event("cache-rebuilder/fn-cache-rebuilder.order-booked.json", Some(&fx))).await.unwrap();
    assert_eq!(out["user_id"], PROVIDER);
}
