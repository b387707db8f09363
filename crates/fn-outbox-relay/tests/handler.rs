//! The relay handler with its events/ payload, end to end against real
//! Postgres and moto.

use std::time::Duration;

use cal_aws::testing::fixture::*;
use cal_store::RelayOptions;
use fn_outbox_relay::relay;

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
    let out = relay(&pool, &publisher, relay_opts(), event("relay/fn-outbox-relay.scheduled.json", None)).await.unwrap();
    assert_eq!(out["published"], outbox);
    let messages = bus.drain().await;
    assert_eq!(messages.len(), outbox);
    assert!(messages.iter().any(|m| m["detail-type"] == "cal.event.confirmed"));
}
