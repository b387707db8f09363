//! The relay's failures against real Postgres, with the fake publisher (it
//! refuses a request over 256 KB as PutEvents does, and fails entries or
//! calls on demand): entries that can never be published are parked and
//! hold no one back, a transient failure holds back only its own user, a
//! stuck user cannot starve the others, and a failing bus is an error.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use cal_store::relay::fake::FakePublisher;
use cal_store::relay::{ENTRY_TOO_LARGE, parked_count, unpublished_count};
use cal_store::{RelayError, RelayOptions, RelayReport, relay_outbox};
use common::TestDb;
use serde_json::json;

fn opts() -> RelayOptions {
    RelayOptions { batch: 100, max_batches: 10, attempts: 3, backoff: Duration::from_millis(1) }
}

/// One outbox row of `user` in a transaction of its own; returns its event id.
async fn enqueue(db: &mut TestDb, user: &str) -> String {
    let tx = db.client.transaction().await.unwrap();
    let outbox_id = cal_store::outbox::enqueue(&tx, "cal.rule.updated", user, &json!({})).await.unwrap();
    let row = tx.query_one("select event_id::text from cal.outbox where outbox_id = $1", &[&outbox_id]).await.unwrap();
    tx.commit().await.unwrap();
    row.get(0)
}

async fn enqueue_n(db: &mut TestDb, user: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(enqueue(db, user).await);
    }
    ids
}

/// The accepted event ids of `user`, in the order accepted.
fn accepted_of(fake: &FakePublisher, user: &str) -> Vec<String> {
    fake.accepted().into_iter().filter(|e| e.user_id == user).map(|e| e.event_id).collect()
}

/// `(parked_at is set, park_reason)` of an event.
async fn parking(db: &TestDb, event_id: &str) -> (bool, Option<String>) {
    let row = db
        .client
        .query_one("select parked_at is not null, park_reason from cal.outbox where event_id = $1::text::uuid", &[&event_id])
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// `(published, parked, failed, deferred)` of a report.
fn counts(r: &RelayReport) -> (usize, usize, usize, usize) {
    (r.published, r.parked, r.failed, r.deferred)
}

/// A database with `n` rows of `prov-a`, then `n` of `prov-b`, and a
/// publisher that accepts everything until told otherwise.
async fn two_users(n: usize) -> (TestDb, Vec<String>, Vec<String>, FakePublisher) {
    let mut db = TestDb::new().await;
    let a = enqueue_n(&mut db, "prov-a", n).await;
    let b = enqueue_n(&mut db, "prov-b", n).await;
    (db, a, b, FakePublisher::new())
}

#[tokio::test]
async fn an_oversized_row_is_parked_and_everyone_else_is_published_in_the_same_run() {
    let mut db = TestDb::new().await;
    let b0 = enqueue(&mut db, "prov-b").await;
    let a0 = enqueue(&mut db, "prov-a").await;
    // 300 KB: over the PutEvents entry limit (written before rows were bounded).
    let big = db.outbox_row_from_before_the_bound("cal.exception.upserted", "prov-a", &json!({ "note": "n".repeat(300 * 1024) })).await;
    let b1 = enqueue(&mut db, "prov-b").await;
    let a2 = enqueue(&mut db, "prov-a").await;
    let fake = FakePublisher::new();

    let r = relay_outbox(&mut db.client, &fake, opts()).await.unwrap();
    assert_eq!(counts(&r), (4, 1, 0, 0), "{r:?}");
    // Never sent (PutEvents would refuse the whole request); A's later row
    // went out after it, B's rows before and after it too.
    assert!(fake.calls().iter().all(|c| !c.contains(&big)));
    assert_eq!(accepted_of(&fake, "prov-a"), [a0, a2]);
    assert_eq!(accepted_of(&fake, "prov-b"), [b0, b1]);
    let (parked, reason) = parking(&db, &big).await;
    assert!(parked);
    assert!(reason.as_deref().unwrap().starts_with(&format!("{ENTRY_TOO_LARGE}: ")), "{reason:?}");
    assert_eq!((unpublished_count(&db.client).await.unwrap(), parked_count(&db.client).await.unwrap()), (0, 1));

    // Parked is final: later runs neither send it nor count it again.
    let r = relay_outbox(&mut db.client, &fake, opts()).await.unwrap();
    assert_eq!(counts(&r), (0, 0, 0, 0));
    assert_eq!(db.count("select count(*) from cal.outbox").await, 5, "parked rows are kept");
}

#[tokio::test]
async fn an_entry_the_bus_refuses_for_good_is_parked_without_retries() {
    let (mut db, a, b, fake) = two_users(3).await;
    fake.refuse_entry(&a[1], "MalformedDetail");

    let r = relay_outbox(&mut db.client, &fake, opts()).await.unwrap();
    assert_eq!(counts(&r), (5, 1, 0, 0), "{r:?}");
    assert_eq!(fake.calls().iter().filter(|c| c.contains(&a[1])).count(), 1, "a permanent refusal is not retried");
    assert_eq!(accepted_of(&fake, "prov-a"), [a[0].clone(), a[2].clone()]);
    assert_eq!(accepted_of(&fake, "prov-b"), b);
    assert_eq!(parking(&db, &a[1]).await, (true, Some("MalformedDetail: injected refusal".into())));
}

#[tokio::test]
async fn a_transient_failure_holds_back_only_its_user_until_it_clears() {
    let (mut db, a, b, fake) = two_users(4).await;
    fake.fail_entry(&a[1], 3); // every attempt of this run

    let r = relay_outbox(&mut db.client, &fake, opts()).await.unwrap();
    assert_eq!(counts(&r), (5, 0, 1, 2), "{r:?}");
    assert_eq!(accepted_of(&fake, "prov-a"), [a[0].clone()]);
    assert_eq!(accepted_of(&fake, "prov-b"), b);
    assert_eq!(parking(&db, &a[1]).await, (false, None), "a transient failure is never parked");

    // It clears: the next run sends the rest of A, in order.
    let r = relay_outbox(&mut db.client, &fake, opts()).await.unwrap();
    assert_eq!(counts(&r), (3, 0, 0, 0));
    assert_eq!(accepted_of(&fake, "prov-a"), a);
}

#[tokio::test]
async fn a_stuck_user_with_more_than_a_batch_of_rows_does_not_starve_the_others() {
    let mut db = TestDb::new().await;
    // The oldest rows are all A's, more than a batch of them; A's first
    // fails every time.
    let a = enqueue_n(&mut db, "prov-a", 25).await;
    let b = enqueue_n(&mut db, "prov-b", 5).await;
    let c = enqueue_n(&mut db, "prov-c", 5).await;
    let fake = FakePublisher::new();
    fake.fail_entry(&a[0], u32::MAX);
    let small = RelayOptions { batch: 10, ..opts() };

    for _ in 0..2 {
        let r = relay_outbox(&mut db.client, &fake, small).await.unwrap();
        // A's head failed, the other 9 of its batch waited; B and C went out
        // (on the second run there is nothing left for them).
        assert_eq!((r.failed, r.deferred), (1, 9), "{r:?}");
    }
    assert_eq!(accepted_of(&fake, "prov-b"), b);
    assert_eq!(accepted_of(&fake, "prov-c"), c);
    assert!(accepted_of(&fake, "prov-a").is_empty());
    assert_eq!(unpublished_count(&db.client).await.unwrap(), a.len() as i64);
}

#[tokio::test]
async fn a_bus_failure_is_an_error_after_committing_what_went_out() {
    let (mut db, a, b, fake) = two_users(3).await;
    fake.fail_calls_after(1, 3); // the first put goes through, then the bus is down

    match relay_outbox(&mut db.client, &fake, opts()).await {
        Err(RelayError::Bus { report: r, source }) => {
            // a[0] and b[0] went out; a[1] and b[1] were in the failing put;
            // the rest waited.
            assert_eq!(counts(&r), (2, 0, 2, 2), "{r:?}");
            assert!(source.message.contains("injected"), "{source}");
        }
        other => panic!("expected a bus error, got {other:?}"),
    }
    assert_eq!(unpublished_count(&db.client).await.unwrap(), 4, "the first put's rows were committed");

    // The bus is back: the rest goes out, in order, nothing twice.
    let r = relay_outbox(&mut db.client, &fake, opts()).await.unwrap();
    assert_eq!(r.published, 4);
    assert_eq!(accepted_of(&fake, "prov-a"), a);
    assert_eq!(accepted_of(&fake, "prov-b"), b);
}

#[tokio::test]
async fn an_entry_refused_for_the_callers_rights_is_a_bus_error_not_a_park() {
    let mut db = TestDb::new().await;
    let a = enqueue_n(&mut db, "prov-a", 2).await;
    let fake = FakePublisher::new();
    fake.refuse_entry(&a[0], "AccessDeniedException");
    let err = relay_outbox(&mut db.client, &fake, opts()).await.unwrap_err();
    assert!(matches!(&err, RelayError::Bus { .. }), "{err:?}");
    assert_eq!(counts(err.report()), (0, 0, 1, 1));
    assert!(err.to_string().contains("AccessDeniedException"), "{err}");
    assert_eq!((unpublished_count(&db.client).await.unwrap(), parked_count(&db.client).await.unwrap()), (2, 0));
}

#[tokio::test]
async fn puts_that_all_fail_in_a_row_are_a_bus_error() {
    let mut db = TestDb::new().await;
    // 35 users, each one row, every entry throttled: three puts of ten
    // refuse everything, and the run gives up on the bus.
    let mut ids = HashMap::new();
    for u in 0..35 {
        let user = format!("prov-{u:02}");
        ids.insert(user.clone(), enqueue(&mut db, &user).await);
    }
    let fake = FakePublisher::new();
    for id in ids.values() {
        fake.fail_entry(id, u32::MAX);
    }
    let err = relay_outbox(&mut db.client, &fake, opts()).await.unwrap_err();
    assert_eq!(counts(err.report()), (0, 0, 30, 5), "{err:?}");
    assert_eq!(fake.calls().len(), 9, "three puts, three attempts each");
}
