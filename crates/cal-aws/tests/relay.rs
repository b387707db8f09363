//! The outbox relay against real Postgres with the fake publisher: partial
//! failures, retries of only the failed entries, nothing dropped, order per
//! user, crash before publish, concurrent relays, the PutEvents limits; and
//! through the real SDK on moto: parking, and a bus that cannot be reached.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use cal_store::relay::fake::FakePublisher;
use cal_store::relay::unpublished_count;
use cal_aws::EventBridgePublisher;
use cal_aws::testing::moto;
use cal_store::{RelayError, RelayOptions, relay_outbox};
use cal_aws::testing::fixture::*;
use serde_json::json;

fn opts() -> RelayOptions {
    RelayOptions { batch: 100, max_batches: 10, attempts: 3, backoff: Duration::from_millis(1) }
}

/// Each user's accepted events are in outbox order.
fn assert_order_per_user(fake: &FakePublisher) {
    let mut last: HashMap<String, i64> = HashMap::new();
    for e in fake.accepted() {
        let prev = last.insert(e.user_id.clone(), e.outbox_id).unwrap_or(0);
        assert!(e.outbox_id > prev, "{}: outbox {} after {}", e.user_id, e.outbox_id, prev);
    }
}

#[tokio::test]
async fn partial_failure_retries_only_the_failed_entries() {
    let mut db = TestDb::new().await;
    let a = enqueue(&mut db, "prov-a", 12, json!({})).await;
    let b = enqueue(&mut db, "prov-b", 13, json!({})).await;
    let fake = FakePublisher::new();
    fake.fail_entry(&a[3], 2); // fails twice, third attempt succeeds
    let report = relay_outbox(&mut db.client, &fake, opts()).await.unwrap();
    assert_eq!(report.published, 25);
    assert_eq!((report.failed, report.deferred), (0, 0));
    let calls = fake.calls();
    assert!(calls.iter().all(|c| c.len() <= 10), "a put had more than 10 entries");
    // The retries carried the failed entry alone (its put had others).
    let retries: Vec<_> = calls.iter().filter(|c| c.contains(&a[3])).collect();
    assert_eq!(retries.len(), 3);
    assert_eq!(retries[0].len(), 2, "a[3] shared its first put with b[3]");
    assert_eq!(retries[1].as_slice(), [a[3].clone()]);
    assert_eq!(retries[2].as_slice(), [a[3].clone()]);
    // Never two entries of one user in a put.
    let user: HashMap<String, String> = fake.accepted().into_iter().map(|e| (e.event_id, e.user_id)).collect();
    for c in &calls {
        let users: HashSet<_> = c.iter().map(|id| &user[id]).collect();
        assert_eq!(users.len(), c.len(), "one entry per user per put");
    }
    let accepted: Vec<String> = fake.accepted().into_iter().map(|e| e.event_id).collect();
    assert_eq!(accepted.len(), 25, "each event accepted exactly once");
    assert_eq!(accepted.iter().collect::<HashSet<_>>(), a.iter().chain(&b).collect::<HashSet<_>>());
    assert_eq!(unpublished_count(&db.client).await.unwrap(), 0);
}

#[tokio::test]
async fn a_failing_entry_is_kept_and_holds_back_only_its_user() {
    let mut db = TestDb::new().await;
    let a = enqueue(&mut db, "prov-a", 5, json!({})).await;
    let b = enqueue(&mut db, "prov-b", 5, json!({})).await;
    let fake = FakePublisher::new();
    fake.fail_entry(&a[1], 3); // fails every attempt of this run
    let report = relay_outbox(&mut db.client, &fake, opts()).await.unwrap();
    assert_eq!(report.failed, 1);
    // a[0] and all of b went out; a[1] failed; a[2..] were held back.
    let accepted: HashSet<String> = fake.accepted().into_iter().map(|e| e.event_id).collect();
    assert!(accepted.contains(&a[0]) && b.iter().all(|id| accepted.contains(id)));
    assert!(a[1..].iter().all(|id| !accepted.contains(id)));
    assert_eq!(unpublished_count(&db.client).await.unwrap(), 4, "the failed row and its user's later rows wait");

    // The next run delivers the rest, in order; nothing was dropped.
    let report = relay_outbox(&mut db.client, &fake, opts()).await.unwrap();
    assert_eq!(report.published, 4);
    assert_eq!(unpublished_count(&db.client).await.unwrap(), 0);
    let all: Vec<String> = fake.accepted().into_iter().map(|e| e.event_id).collect();
    assert_eq!(all.len(), 10);
    assert_order_per_user(&fake);
}

#[tokio::test]
async fn a_crash_before_publishing_delivers_on_the_next_run() {
    let mut db = TestDb::new().await;
    let ids = enqueue(&mut db, "prov-a", 7, json!({})).await;
    // The changes committed; the relay's puts all fail (as if it died
    // before publishing): nothing is marked, and the run is an error.
    let fake = FakePublisher::new();
    fake.fail_calls(3);
    let err = relay_outbox(&mut db.client, &fake, opts()).await.unwrap_err();
    assert!(matches!(err, RelayError::Bus { .. }), "{err:?}");
    assert_eq!(err.report().published, 0);
    assert_eq!(unpublished_count(&db.client).await.unwrap(), 7);
    // A relay that never ran at all: same state. The next run delivers all.
    let report = relay_outbox(&mut db.client, &fake, opts()).await.unwrap();
    assert_eq!(report.published, 7);
    let accepted: Vec<String> = fake.accepted().into_iter().map(|e| e.event_id).collect();
    assert_eq!(accepted, ids);
    // And once published, never again.
    assert_eq!(relay_outbox(&mut db.client, &fake, opts()).await.unwrap().published, 0);
    assert_eq!(fake.accepted().len(), 7);
}

#[tokio::test]
async fn concurrent_relays_publish_each_row_once_in_order_per_user() {
    let mut db = TestDb::new().await;
    for u in ["prov-a", "prov-b", "prov-c"] {
        enqueue(&mut db, u, 20, json!({})).await;
    }
    let fake = FakePublisher::new();
    let (mut c1, mut c2) = (db.connect().await, db.connect().await);
    let small = RelayOptions { batch: 7, max_batches: 50, ..opts() };
    for _ in 0..20 {
        let (r1, r2) = tokio::join!(relay_outbox(&mut c1, &fake, small), relay_outbox(&mut c2, &fake, small));
        r1.unwrap();
        r2.unwrap();
        if unpublished_count(&db.client).await.unwrap() == 0 {
            break;
        }
    }
    assert_eq!(unpublished_count(&db.client).await.unwrap(), 0);
    let accepted: Vec<String> = fake.accepted().into_iter().map(|e| e.event_id).collect();
    assert_eq!(accepted.len(), 60, "no row published twice");
    assert_eq!(accepted.iter().collect::<HashSet<_>>().len(), 60);
    assert_order_per_user(&fake);
}

#[tokio::test]
async fn puts_stay_within_256_kb() {
    let mut db = TestDb::new().await;
    let big = "x".repeat(60 * 1024);
    for u in ["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9"] {
        enqueue(&mut db, u, 1, json!({ "blob": big })).await;
    }
    let fake = FakePublisher::new();
    let report = relay_outbox(&mut db.client, &fake, opts()).await.unwrap();
    assert_eq!(report.published, 9);
    // ~60 KB each: at most four per put (the fake asserts the byte limit).
    assert!(fake.calls().iter().all(|c| c.len() <= 4));
    assert_eq!(fake.calls().len(), 3, "{:?}", fake.calls().iter().map(Vec::len).collect::<Vec<_>>());
}

#[tokio::test]
async fn on_eventbridge_an_oversized_row_is_parked_and_the_rest_delivered() {
    let (bus, publisher) = moto_bus().await;
    let mut db = TestDb::new().await;
    let mut ids = enqueue(&mut db, "prov-a", 2, json!({})).await;
    // moto would take 300 KB (EventBridge would not): the relay's own
    // check is what keeps it off the bus.
    let big = db.outbox_row_from_before_the_bound("cal.exception.upserted", "prov-a", &json!({ "note": "n".repeat(300 * 1024) })).await;
    ids.extend(enqueue(&mut db, "prov-b", 2, json!({})).await);
    ids.extend(enqueue(&mut db, "prov-a", 1, json!({})).await);
    let report = relay_outbox(&mut db.client, &publisher, opts()).await.unwrap();
    assert_eq!((report.published, report.parked, report.failed, report.deferred), (5, 1, 0, 0), "{report:?}");
    let delivered: HashSet<String> =
        bus.drain().await.iter().map(|m| m["detail"]["event_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(delivered, ids.iter().cloned().collect::<HashSet<_>>());
    assert!(!delivered.contains(&big));
    assert_eq!(db.count("select count(*) from cal.outbox where parked_at is not null and park_reason like 'EntryTooLarge:%'").await, 1);
}

#[tokio::test]
async fn an_event_bus_that_cannot_be_reached_is_an_error() {
    let sdk = moto().await;
    // Nothing listens on port 9 of loopback: every put fails as a whole.
    let conf = aws_sdk_eventbridge::config::Builder::from(&sdk).endpoint_url("http://127.0.0.1:9").build();
    let publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::from_conf(conf), "no-bus", "cal");
    let mut db = TestDb::new().await;
    enqueue(&mut db, "prov-a", 2, json!({})).await;
    let err = relay_outbox(&mut db.client, &publisher, opts()).await.unwrap_err();
    assert!(matches!(&err, RelayError::Bus { source, .. } if source.message.contains("PutEvents on no-bus")), "{err:?}");
    assert_eq!((err.report().published, err.report().failed, err.report().deferred), (0, 1, 1));
    assert_eq!(unpublished_count(&db.client).await.unwrap(), 2);
}
