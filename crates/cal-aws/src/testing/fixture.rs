//! What the AWS and event-driven functions' tests share: a fresh database
//! per test, the provider fixture the events/ payloads name, outbox helpers.

use std::path::PathBuf;

use cal_core::holds::{HoldKind, HoldMode, HoldRequest};
use crate::EventBridgePublisher;
use crate::testing::{BusWithQueue, moto};
pub use cal_store::testing::TestDb;
use serde_json::{Value, json};

pub use cal_store::testing::fixture::{NOW, PROVIDER, ROLE, at, rule};

pub async fn seed_rules(db: &mut TestDb) {
    cal_store::put_rule(&mut db.client, &rule("wr_ana_weekdays", PROVIDER, 0b001_1111, "09:00", "17:00")).await.unwrap();
}

/// An instant-mode hold of the fixture (the shared fixture's, without the mode).
pub fn hold_request(start: &str, end: &str, kind: HoldKind, event_id: Option<&str>, key: &str) -> HoldRequest {
    cal_store::testing::fixture::hold_request(start, end, kind, HoldMode::Instant, event_id, key)
}

/// The ids the order-events payloads name by placeholder.
pub struct Fixture {
    /// `{{holdId}}`: an active checkout hold, Mon 09:00–10:00Z.
    pub hold_id: String,
    /// `{{eventId}}`: a confirmed booking, Mon 13:00–14:00Z.
    pub event_id: String,
    /// `{{rescheduleHoldId}}`: a reschedule hold moving it to Tue 13:00–14:00Z.
    pub reschedule_hold_id: String,
}

pub async fn seed_fixture(db: &mut TestDb) -> Fixture {
    seed_rules(db).await;
    let now = at(NOW);
    let hold = cal_store::create_hold(&db.client, &hold_request("2030-03-04T09:00:00Z", "2030-03-04T10:00:00Z", HoldKind::Checkout, None, "k-hold"), now)
        .await
        .unwrap();
    let booked = cal_store::create_hold(&db.client, &hold_request("2030-03-04T13:00:00Z", "2030-03-04T14:00:00Z", HoldKind::Checkout, None, "k-booked"), now)
        .await
        .unwrap();
    let event = cal_store::confirm_hold(&mut db.client, &booked.hold_id, now).await.unwrap();
    let resched = cal_store::create_hold(
        &db.client,
        &hold_request("2030-03-05T13:00:00Z", "2030-03-05T14:00:00Z", HoldKind::Reschedule, Some(&event.event_id), "k-resched"),
        now,
    )
    .await
    .unwrap();
    Fixture { hold_id: hold.hold_id, event_id: event.event_id, reschedule_hold_id: resched.hold_id }
}

/// `events/<path>` with the fixture's ids in place of the placeholders.
pub fn event(path: &str, fx: Option<&Fixture>) -> Value {
    let file = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events").join(path);
    let mut text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    if let Some(fx) = fx {
        text = text.replace("{{holdId}}", &fx.hold_id).replace("{{eventId}}", &fx.event_id).replace("{{rescheduleHoldId}}", &fx.reschedule_hold_id);
    }
    assert!(!text.contains("{{"), "{path}: a placeholder is left");
    serde_json::from_str(&text).unwrap()
}

/// Enqueues `n` events for `user`, each in its own transaction as the store
/// does (version bump first); returns their event ids in order.
pub async fn enqueue(db: &mut TestDb, user: &str, n: usize, payload: Value) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let tx = db.client.transaction().await.unwrap();
        cal_store::outbox::bump_version(&tx, user).await.unwrap();
        let mut p = payload.clone();
        p["seq"] = json!(i);
        let outbox_id = cal_store::outbox::enqueue(&tx, "cal.rule.updated", user, &p).await.unwrap();
        let row = tx.query_one("select event_id::text from cal.outbox where outbox_id = $1", &[&outbox_id]).await.unwrap();
        ids.push(row.get(0));
        tx.commit().await.unwrap();
    }
    ids
}

pub fn pool(db: &TestDb) -> deadpool_postgres::Pool {
    cal_store::pool_from_url(&db.url(), 4).unwrap()
}

/// A bus on moto whose deliveries a test can drain, and a publisher onto it
/// with source `cal`.
pub async fn moto_bus() -> (BusWithQueue, EventBridgePublisher) {
    let sdk = moto().await;
    let bus = BusWithQueue::create(&sdk, "cal").await;
    let publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&sdk), &bus.bus, "cal");
    (bus, publisher)
}
