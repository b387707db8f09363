//! The sweeper handler with its events/ payload, end to end against real
//! Postgres and moto; a failing bus fails it as it fails the relay.

use std::time::Duration;

use cal_aws::testing::fixture::*;
use cal_store::RelayOptions;
use fn_hold_sweeper::{SweepOptions, sweep};
use fn_outbox_relay::relay;

fn relay_opts() -> RelayOptions {
    RelayOptions { backoff: Duration::from_millis(10), ..RelayOptions::default() }
}

#[tokio::test]
async fn hold_sweeper_expires_and_relays() {
    let (bus, publisher) = moto_bus().await;
    let mut db = TestDb::new().await;
    let fx = seed_fixture(&mut db).await;
    let pool = pool(&db);
    let later = at(NOW).plus_minutes(11); // checkout holds live 10 minutes
    let out = sweep(&pool, &publisher, SweepOptions { batch: 1, max_batches: 10 }, relay_opts(), later, event("sweeper/fn-hold-sweeper.scheduled.json", None))
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
    let err = relay(&pool, &publisher, relay_opts(), event("relay/fn-outbox-relay.scheduled.json", None)).await.unwrap_err();
    assert_eq!(err.error_type(), cal_core::ErrorType::Internal);
    assert!(err.to_string().contains("the event bus failed"), "{err}");
    // The sweeper's expiries commit; its relay fails the invocation the same way.
    let later = at(NOW).plus_minutes(11);
    let opts = SweepOptions { batch: 10, max_batches: 10 };
    let err = sweep(&pool, &publisher, opts, relay_opts(), later, event("sweeper/fn-hold-sweeper.scheduled.json", None))
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
    let out = sweep(&pool, &publisher, SweepOptions { batch: 10, max_batches: 10 }, relay_opts(), at(NOW), event("sweeper/fn-hold-sweeper.scheduled.json", None))
        .await
        .unwrap();
    assert_eq!(out["relay"]["parked"], 1);
    assert_eq!(out["relay"]["published"], outbox - 1);
    assert_eq!(bus.drain().await.len() as i64, outbox - 1);
}
