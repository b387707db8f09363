//! Holds and bookings on a real PostgreSQL (SEMANTICS.md §5): races on
//! separate connections, idempotent retries, expiry without a sweeper,
//! conversion, reschedule, cancel, the sweeper and the outbox.

mod common;

use std::sync::Arc;

use cal_core::holds::{HoldKind, HoldMode, HoldRequest};
use cal_core::{BookingError, ErrorType, EventStatus, HoldStatus, Instant};
use cal_store::{HoldPolicy, StoreError};
use common::{TestDb, at, rule};
use tokio_postgres::Client;

const P: &str = "prov";
const ROLE: &str = "photographer";
const NOW: &str = "2026-03-01T00:00:00Z";

/// A provider available around the clock (UTC), 30 min minimum, no lead time.
async fn provider(db: &mut TestDb) {
    cal_store::put_rule(&mut db.client, &rule("wr_all", P, ROLE, 127, "00:00", "00:00", "UTC", 30, 0, 60)).await.unwrap();
}

fn request(start: &str, end: &str, key: &str) -> HoldRequest {
    cal_store::testing::checkout(P, ROLE, at(start), at(end), key)
}

fn booking_error(e: StoreError) -> BookingError {
    match e {
        StoreError::Booking(b) => b,
        other => panic!("expected a booking refusal, got {other:?}"),
    }
}

/// Pairs of rows of one user that overlap among {active unexpired holds,
/// confirmed events}: must always be zero (SEMANTICS.md §5).
async fn overlaps(db: &Client, now: Instant) -> i64 {
    db.query_one(
        "with busy as (
            select user_id, 'h:' || hold_id as id, tstzrange(start_at, end_at, '[)') as r
              from cal.hold where status = 'active' and expires_at > $1
            union all
            select user_id, 'e:' || event_id, tstzrange(start_at, end_at, '[)')
              from cal.event where status = 'confirmed')
         select count(*) from busy a join busy b on a.user_id = b.user_id and a.id < b.id and a.r && b.r",
        &[&now.to_chrono()],
    )
    .await
    .unwrap()
    .get(0)
}

async fn outbox_types(db: &Client) -> Vec<String> {
    db.query("select event_type from cal.outbox order by outbox_id", &[]).await.unwrap().iter().map(|r| r.get(0)).collect()
}

#[tokio::test]
async fn a_hundred_concurrent_requests_for_overlapping_slots_have_exactly_one_winner() {
    let mut db = TestDb::new().await;
    provider(&mut db).await;
    let now = at(NOW);
    let mut tasks = Vec::new();
    for i in 0..100 {
        let conn = db.connect().await;
        // Every request contains 10:00–10:30: 09:00–10:30, 09:30–11:00 or
        // 10:00–11:30 (touching would not count as overlapping).
        let start = at("2026-03-02T09:00:00Z").plus_minutes(30 * (i % 3));
        let end = start.plus_minutes(90);
        let req = request(&start.rfc3339(), &end.rfc3339(), &format!("key-{i}"));
        tasks.push(tokio::spawn(async move {
            cal_store::create_hold(&conn, &req, now).await
        }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(e) => match booking_error(e) {
                BookingError::Conflict { alternatives } => {
                    assert!(!alternatives.is_empty() && alternatives.len() <= 3, "{alternatives:?}")
                }
                other => panic!("a loser must get CONFLICT, got {other:?}"),
            },
        }
    }
    assert_eq!(won, 1);
    assert_eq!(db.count("select count(*) from cal.hold").await, 1);
    assert_eq!(overlaps(&db.client, now).await, 0);
    assert_eq!(outbox_types(&db.client).await.iter().filter(|t| *t == "cal.hold.created").count(), 1);
}

#[tokio::test]
async fn retries_with_one_key_from_many_tasks_create_one_hold() {
    let mut db = TestDb::new().await;
    provider(&mut db).await;
    let now = at(NOW);
    let req = request("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z", "retry-key");
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let conn = db.connect().await;
        let req = req.clone();
        tasks.push(tokio::spawn(async move {
            cal_store::create_hold(&conn, &req, now).await.unwrap().hold_id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every retry returns the one hold");
    assert_eq!(db.count("select count(*) from cal.hold").await, 1);

    // The same key for another request is refused and stores nothing.
    let other = request("2026-03-02T12:00:00Z", "2026-03-02T13:00:00Z", "retry-key");
    let err = booking_error(cal_store::create_hold(&db.client, &other, now).await.unwrap_err());
    assert_eq!(err.error_type(), ErrorType::IdempotencyMismatch);
    assert_eq!(db.count("select count(*) from cal.hold").await, 1);
}

#[tokio::test]
async fn an_expired_hold_is_free_before_any_sweep_and_is_never_resurrected() {
    let mut db = TestDb::new().await;
    provider(&mut db).await;
    let now = at(NOW);
    let first = cal_store::create_hold(&db.client, &request("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z", "a"), now)
        .await
        .unwrap();
    assert_eq!(first.expires_at, now.plus_minutes(10));

    // Nine minutes later the slot is taken; ten minutes later it is free.
    let b = request("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z", "b");
    let err = booking_error(cal_store::create_hold(&db.client, &b, now.plus_minutes(9)).await.unwrap_err());
    assert_eq!(err.error_type(), ErrorType::Conflict);
    let second = cal_store::create_hold(&db.client, &b, now.plus_minutes(10)).await.unwrap();
    assert_ne!(second.hold_id, first.hold_id);

    // The first hold was marked expired in that transaction, with its event.
    let first_now = cal_store::get_hold(&db.client, &first.hold_id).await.unwrap();
    assert_eq!(first_now.status, HoldStatus::Expired);
    assert_eq!(outbox_types(&db.client).await[1..], ["cal.hold.created", "cal.hold.expired", "cal.hold.created"]);
    // Each outbox row carries the hold as stored (the created payload is
    // built before the insert, with the id the store made for it), less the
    // idempotency key: the caller's free text stays out of events.
    let payloads: Vec<serde_json::Value> = db
        .client
        .query("select payload from cal.outbox where event_type like 'cal.hold.%' order by outbox_id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let json = |h: &cal_store::HoldRecord| {
        let mut v = serde_json::to_value(h).unwrap();
        v.as_object_mut().unwrap().remove("idempotency_key");
        v
    };
    assert_eq!(payloads, [json(&first), json(&first_now), json(&second)]);
    assert!(payloads.iter().all(|p| p.get("idempotency_key").is_none() && p["hold_id"].is_string()));

    // A retry of the first request returns the expired hold, not a new one.
    let retry = cal_store::create_hold(&db.client, &request("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z", "a"), now.plus_minutes(11))
        .await
        .unwrap();
    assert_eq!((retry.hold_id.as_str(), retry.status), (first.hold_id.as_str(), HoldStatus::Expired));
    assert_eq!(overlaps(&db.client, now.plus_minutes(11)).await, 0);
}

#[tokio::test]
async fn converting_an_expired_or_released_hold_fails_and_stores_nothing() {
    let mut db = TestDb::new().await;
    provider(&mut db).await;
    let now = at(NOW);
    let hold = cal_store::create_hold(&db.client, &request("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z", "a"), now)
        .await
        .unwrap();
    let outbox_before = db.count("select count(*) from cal.outbox").await;
    let err = booking_error(cal_store::confirm_hold(&mut db.client, &hold.hold_id, now.plus_minutes(10)).await.unwrap_err());
    assert_eq!(err.error_type(), ErrorType::HoldExpired);
    assert_eq!(db.count("select count(*) from cal.event").await, 0);
    assert_eq!(db.count("select count(*) from cal.outbox").await, outbox_before);
    assert_eq!(cal_store::get_hold(&db.client, &hold.hold_id).await.unwrap().status, HoldStatus::Active, "unchanged");

    let other = cal_store::create_hold(&db.client, &request("2026-03-02T12:00:00Z", "2026-03-02T13:00:00Z", "b"), now)
        .await
        .unwrap();
    cal_store::release_hold(&mut db.client, &other.hold_id, now).await.unwrap();
    let err = booking_error(cal_store::confirm_hold(&mut db.client, &other.hold_id, now).await.unwrap_err());
    assert_eq!(err.error_type(), ErrorType::HoldReleased);
    assert_eq!(db.count("select count(*) from cal.event").await, 0);
}

#[tokio::test]
async fn instant_book_converts_once_and_the_slot_is_gone() {
    let mut db = TestDb::new().await;
    provider(&mut db).await;
    let now = at(NOW);
    let hold = cal_store::create_hold(&db.client, &request("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z", "a"), now)
        .await
        .unwrap();
    let event = cal_store::confirm_hold(&mut db.client, &hold.hold_id, now.plus_minutes(1)).await.unwrap();
    assert_eq!((event.status, event.sequence, event.hold_id.as_deref()), (EventStatus::Confirmed, 0, Some(hold.hold_id.as_str())));
    assert_eq!(event.ics_uid, format!("{}@cal", event.event_id));
    // Converting again (a redelivered order.booked) returns the same event.
    let again = cal_store::confirm_hold(&mut db.client, &hold.hold_id, now.plus_minutes(30))
        .await
        .unwrap();
    assert_eq!(again.event_id, event.event_id);
    assert_eq!(db.count("select count(*) from cal.event").await, 1);
    // Long after the hold's TTL, the booked time stays busy.
    let late = request("2026-03-02T10:30:00Z", "2026-03-02T11:30:00Z", "late");
    let err = booking_error(cal_store::create_hold(&db.client, &late, now.plus_minutes(60)).await.unwrap_err());
    assert_eq!(err.error_type(), ErrorType::Conflict);
    assert_eq!(outbox_types(&db.client).await[1..], ["cal.hold.created", "cal.event.confirmed"]);
}

#[tokio::test]
async fn request_to_book_accept_and_decline() {
    let mut db = TestDb::new().await;
    provider(&mut db).await;
    let now = at(NOW);
    let mut r = request("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z", "req-1");
    r.mode = HoldMode::Request;
    r.ttl_min = 24 * 60;
    let accepted = cal_store::create_hold(&db.client, &r, now).await.unwrap();
    // Still held twenty hours later; accepted into an event.
    let event = cal_store::accept_request(&mut db.client, &accepted.hold_id, now.plus_minutes(20 * 60)).await.unwrap();
    assert_eq!(event.status, EventStatus::Confirmed);

    let mut r = request("2026-03-02T12:00:00Z", "2026-03-02T13:00:00Z", "req-2");
    r.mode = HoldMode::Request;
    r.ttl_min = 24 * 60;
    let declined = cal_store::create_hold(&db.client, &r, now).await.unwrap();
    let released = cal_store::decline_request(&mut db.client, &declined.hold_id, now).await.unwrap();
    assert_eq!(released.status, HoldStatus::Released);
    // Declining again changes nothing; the time is free for someone else.
    cal_store::decline_request(&mut db.client, &declined.hold_id, now).await.unwrap();
    cal_store::create_hold(&db.client, &request("2026-03-02T12:00:00Z", "2026-03-02T13:00:00Z", "c"), now).await.unwrap();
    // An instant hold is not a request.
    let instant = cal_store::create_hold(&db.client, &request("2026-03-02T14:00:00Z", "2026-03-02T15:00:00Z", "d"), now).await.unwrap();
    let err = cal_store::accept_request(&mut db.client, &instant.hold_id, now).await.unwrap_err();
    assert!(matches!(&err, StoreError::Validation { field, .. } if field == "hold_id"), "{err:?}");
    assert_eq!(err.error_type(), ErrorType::Validation);
    assert_eq!(
        outbox_types(&db.client).await[1..],
        ["cal.hold.created", "cal.event.confirmed", "cal.hold.created", "cal.hold.released", "cal.hold.created", "cal.hold.created"]
    );
}

#[tokio::test]
async fn reschedule_keeps_the_uid_bumps_the_sequence_and_frees_the_old_time_then_cancel_frees_it_all() {
    let mut db = TestDb::new().await;
    provider(&mut db).await;
    let now = at(NOW);
    let hold = cal_store::create_hold(&db.client, &request("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z", "a"), now).await.unwrap();
    let event = cal_store::confirm_hold(&mut db.client, &hold.hold_id, now).await.unwrap();

    // Move it half an hour later: it overlaps its own current time, which is fine.
    let mut r = request("2026-03-02T10:30:00Z", "2026-03-02T11:30:00Z", "move-1");
    r.kind = HoldKind::Reschedule;
    r.event_id = Some(event.event_id.clone());
    let move_hold = cal_store::create_hold(&db.client, &r, now).await.unwrap();
    let moved = cal_store::reschedule_event(&mut db.client, &event.event_id, &move_hold.hold_id, now).await.unwrap();
    assert_eq!((moved.event_id.as_str(), moved.ics_uid.as_str(), moved.sequence), (event.event_id.as_str(), event.ics_uid.as_str(), 1));
    assert_eq!((moved.start.rfc3339(), moved.end.rfc3339()), ("2026-03-02T10:30:00Z".into(), "2026-03-02T11:30:00Z".into()));
    // Redelivery: the same event, sequence still 1.
    let again = cal_store::reschedule_event(&mut db.client, &event.event_id, &move_hold.hold_id, now).await.unwrap();
    assert_eq!(again.sequence, 1);
    // 10:00–10:30 is free again.
    cal_store::create_hold(&db.client, &{
        let mut r = request("2026-03-02T09:30:00Z", "2026-03-02T10:30:00Z", "b");
        r.ttl_min = 60;
        r
    }, now)
    .await
    .unwrap();

    let cancelled = cal_store::cancel_event(&mut db.client, &event.event_id, now).await.unwrap();
    assert_eq!((cancelled.status, cancelled.sequence), (EventStatus::Cancelled, 2));
    let again = cal_store::cancel_event(&mut db.client, &event.event_id, now).await.unwrap();
    assert_eq!(again.sequence, 2, "a redelivered cancel changes nothing");
    cal_store::create_hold(&db.client, &request("2026-03-02T10:30:00Z", "2026-03-02T11:30:00Z", "c"), now).await.unwrap();
    assert_eq!(
        outbox_types(&db.client).await[1..],
        [
            "cal.hold.created",
            "cal.event.confirmed",
            "cal.hold.created",
            "cal.event.rescheduled",
            "cal.hold.created",
            "cal.event.cancelled",
            "cal.hold.created"
        ]
    );
    assert_eq!(overlaps(&db.client, now).await, 0);
}

#[tokio::test]
async fn mixed_concurrent_holds_conversions_reschedules_and_cancels_never_overlap() {
    let mut db = TestDb::new().await;
    provider(&mut db).await;
    let now = at(NOW);
    // Ten booked events to move and cancel, one per hour.
    let mut events = Vec::new();
    for h in 0..10 {
        let start = at("2026-03-02T08:00:00Z").plus_minutes(60 * h);
        let req = request(&start.rfc3339(), &start.plus_minutes(60).rfc3339(), &format!("seed-{h}"));
        let hold = cal_store::create_hold(&db.client, &req, now).await.unwrap();
        events.push(cal_store::confirm_hold(&mut db.client, &hold.hold_id, now).await.unwrap().event_id);
    }
    let events = Arc::new(events);
    let mut tasks = Vec::new();
    for i in 0..80usize {
        let mut conn = db.connect().await;
        let events = Arc::clone(&events);
        tasks.push(tokio::spawn(async move {
            let start = at("2026-03-02T07:00:00Z").plus_minutes(30 * (i as i64 % 26));
            let end = start.plus_minutes(60);
            let event_id = &events[i % events.len()];
            let result: Result<(), StoreError> = async {
                match i % 4 {
                    0 => {
                        let h = cal_store::create_hold(&conn, &request(&start.rfc3339(), &end.rfc3339(), &format!("k{i}")), now).await?;
                        cal_store::confirm_hold(&mut conn, &h.hold_id, now).await.map(|_| ())
                    }
                    1 => {
                        let mut r = request(&start.rfc3339(), &end.rfc3339(), &format!("m{i}"));
                        r.kind = HoldKind::Reschedule;
                        r.event_id = Some(event_id.clone());
                        let h = cal_store::create_hold(&conn, &r, now).await?;
                        cal_store::reschedule_event(&mut conn, event_id, &h.hold_id, now).await.map(|_| ())
                    }
                    2 => cal_store::cancel_event(&mut conn, event_id, now).await.map(|_| ()),
                    _ => cal_store::create_hold(&conn, &request(&start.rfc3339(), &end.rfc3339(), &format!("h{i}")), now).await.map(|_| ()),
                }
            }
            .await;
            match result {
                Ok(()) => true,
                // CONFLICT, a cancelled event (VALIDATION), … : refused cleanly.
                Err(StoreError::Booking(_) | StoreError::Validation { .. } | StoreError::NotFound { .. }) => false,
                Err(other) => panic!("unexpected failure: {other:?}"),
            }
        }));
    }
    let mut succeeded = 0;
    for t in tasks {
        succeeded += usize::from(t.await.unwrap());
    }
    assert!(succeeded > 10, "the mix must do real work, {succeeded} succeeded");
    assert_eq!(overlaps(&db.client, now).await, 0);
    // Every committed change left exactly one outbox row.
    let changes = db.count("select count(*) from cal.hold").await // created
        + db.count("select count(*) from cal.hold where status = 'converted'").await // confirmed or rescheduled
        + db.count("select count(*) from cal.event where status = 'cancelled'").await
        + 1; // the rule
    assert_eq!(db.count("select count(*) from cal.outbox").await, changes);
}

#[tokio::test]
async fn admin_holds_skip_rules_but_not_bookings() {
    let mut db = TestDb::new().await;
    cal_store::put_rule(&mut db.client, &rule("wr", P, ROLE, 1, "09:00", "17:00", "UTC", 60, 24, 60)).await.unwrap();
    let now = at(NOW);
    let mut admin = request("2026-03-01T20:00:00Z", "2026-03-01T21:15:00Z", "adm");
    admin.kind = HoldKind::Admin;
    // Sunday evening, inside the lead time, outside every rule: fine for an admin.
    let h = cal_store::create_hold(&db.client, &admin, now).await.unwrap();
    let mut over = request("2026-03-01T21:00:00Z", "2026-03-01T22:00:00Z", "adm2");
    over.kind = HoldKind::Admin;
    let err = booking_error(cal_store::create_hold(&db.client, &over, now).await.unwrap_err());
    assert_eq!(err.error_type(), ErrorType::Conflict);
    cal_store::confirm_hold(&mut db.client, &h.hold_id, now).await.unwrap();
    assert_eq!(overlaps(&db.client, now).await, 0);
}

#[tokio::test]
async fn the_sweeper_marks_each_expired_hold_once_even_when_run_twice_at_once() {
    let mut db = TestDb::new().await;
    provider(&mut db).await;
    let now = at(NOW);
    for i in 0..25 {
        let start = at("2026-03-02T00:00:00Z").plus_minutes(60 * i);
        cal_store::create_hold(&db.client, &request(&start.rfc3339(), &start.plus_minutes(60).rfc3339(), &format!("k{i}")), now)
            .await
            .unwrap();
    }
    let later = now.plus_minutes(10);
    let (mut a, mut b) = (db.connect().await, db.connect().await);
    let (ra, rb) = tokio::join!(cal_store::sweep_expired_holds(&mut a, later, 10), cal_store::sweep_expired_holds(&mut b, later, 10));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert!(ra.len() <= 10 && rb.len() <= 10);
    let mut swept: Vec<String> = ra.iter().chain(&rb).map(|h| h.hold_id.clone()).collect();
    let rest = cal_store::sweep_expired_holds(&mut db.client, later, 100).await.unwrap();
    swept.extend(rest.iter().map(|h| h.hold_id.clone()));
    swept.sort();
    swept.dedup();
    assert_eq!(swept.len(), 25, "every hold swept exactly once");
    assert!(cal_store::sweep_expired_holds(&mut db.client, later, 100).await.unwrap().is_empty());
    assert_eq!(db.count("select count(*) from cal.outbox where event_type = 'cal.hold.expired'").await, 25);
    assert_eq!(db.count("select count(*) from cal.hold where status = 'active'").await, 0);
}

/// The write re-checks: a rule change that commits while a hold request
/// waits between its read and its write (here: the rule is being deleted in
/// an open transaction, which holds the provider's version row) makes the
/// request look again and refuse; nothing is stored.
#[tokio::test]
async fn a_rule_change_committed_while_a_hold_waits_is_seen_by_its_write() {
    let mut db = TestDb::new().await;
    provider(&mut db).await;
    let mut other = db.connect().await;
    let mut tx = other.transaction().await.unwrap();
    cal_store::delete_rule(&mut tx, P, "wr_all").await.unwrap();

    let client = db.connect().await;
    let task = tokio::spawn(async move {
        cal_store::create_hold(&client, &request("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z", "k"), at(NOW)).await
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!task.is_finished(), "the write waits for the provider's writer");
    tx.commit().await.unwrap();
    let err = booking_error(task.await.unwrap().unwrap_err());
    assert_eq!(err.error_type(), ErrorType::Conflict, "{err:?}");
    assert_eq!(db.count("select count(*) from cal.hold").await, 0);
    assert_eq!(db.count("select count(*) from cal.outbox where event_type like 'cal.hold.%'").await, 0);
}

/// A provider whose rules were written without the store (no version row
/// yet) still books: the version row is created at version 0, then bumped.
#[tokio::test]
async fn a_provider_without_a_version_row_gets_one() {
    let mut db = TestDb::new().await;
    provider(&mut db).await;
    db.client.batch_execute("delete from cal.provider_version").await.unwrap();
    let hold = cal_store::create_hold(&db.client, &request("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z", "k"), at(NOW))
        .await
        .unwrap();
    assert_eq!(hold.status, HoldStatus::Active);
    assert_eq!(cal_store::outbox::version(&db.client, P).await.unwrap(), 1);
}

// ---- create_hold_cached: a process's calendar cache --------------------

fn conflict_alternatives(result: Result<cal_store::HoldRecord, StoreError>) -> Vec<cal_core::Slot> {
    match booking_error(result.unwrap_err()) {
        BookingError::Conflict { alternatives } => alternatives,
        other => panic!("expected CONFLICT, got {other:?}"),
    }
}

/// After one hold has read the provider's calendar, the next hold on it is
/// one statement (the write), and stores what an uncached hold stores.
#[tokio::test]
async fn a_provider_booked_a_moment_ago_is_booked_in_one_statement() {
    let mut db = TestDb::new().await;
    provider(&mut db).await;
    let (now, cache) = (at(NOW), cal_store::CalendarCache::default());
    let counting = cal_store::testing::Counting::new(&db.client);
    let first = request("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z", "a");
    cal_store::create_hold_cached(&counting, &cache, &first, &HoldPolicy::TRUSTED, now).await.unwrap();
    assert_eq!(counting.take(), 2, "a first hold reads (one statement), then writes");
    assert_eq!(cache.len(), 1);

    let second = request("2026-03-04T10:00:00Z", "2026-03-04T11:00:00Z", "b");
    let hold = cal_store::create_hold_cached(&counting, &cache, &second, &HoldPolicy::TRUSTED, now).await.unwrap();
    assert_eq!(counting.take(), 1, "the next is the write alone");
    assert_eq!(cal_store::get_hold(&db.client, &hold.hold_id).await.unwrap(), hold);
    assert_eq!(cal_store::outbox::version(&db.client, P).await.unwrap(), 3, "rule, then two holds");

    // A request the cache refuses is answered after one statement shows the
    // cache current: the same alternatives as from fresh reads.
    let taken = request("2026-03-04T10:30:00Z", "2026-03-04T11:30:00Z", "c");
    let cached = conflict_alternatives(cal_store::create_hold_cached(&counting, &cache, &taken, &HoldPolicy::TRUSTED, now).await);
    assert_eq!(counting.take(), 1);
    assert_eq!(cached, conflict_alternatives(cal_store::create_hold(&db.client, &taken, now).await));
    assert_eq!(db.count("select count(*) from cal.hold").await, 2);
}

/// Whatever another process changed since the cache read the provider, a
/// cached request gets the answer fresh reads give: the write refuses a
/// moved version, and a refusal is believed only once confirmed.
#[tokio::test]
async fn a_cache_behind_the_database_gives_the_answers_of_fresh_reads() {
    let mut db = TestDb::new().await;
    provider(&mut db).await;
    let (now, cache) = (at(NOW), cal_store::CalendarCache::default());
    let mine = db.connect().await;
    let other = db.connect().await;
    let mine_first =
        cal_store::create_hold_cached(&mine, &cache, &request("2026-03-02T08:00:00Z", "2026-03-02T09:00:00Z", "a"), &HoldPolicy::TRUSTED, now).await.unwrap();

    // Another process holds 10:00–11:00; the cache does not know.
    let theirs = cal_store::create_hold(&other, &request("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z", "x"), now).await.unwrap();
    // The write refuses the moved version; one read answers.
    let clash = request("2026-03-02T10:30:00Z", "2026-03-02T11:30:00Z", "b");
    let counting = cal_store::testing::Counting::new(&mine);
    let cached = conflict_alternatives(cal_store::create_hold_cached(&counting, &cache, &clash, &HoldPolicy::TRUSTED, now).await);
    assert_eq!(counting.take(), 2);
    assert_eq!(cached, conflict_alternatives(cal_store::create_hold(&other, &clash, now).await));

    // It releases both holds, this process's among them, which the cache
    // (read again by the next hold) shows: their time is free.
    let mut other = other;
    cal_store::create_hold_cached(&mine, &cache, &request("2026-03-02T07:00:00Z", "2026-03-02T08:00:00Z", "d"), &HoldPolicy::TRUSTED, now).await.unwrap();
    for hold in [&theirs.hold_id, &mine_first.hold_id] {
        cal_store::release_hold(&mut other, hold, now).await.unwrap();
    }
    let again = request("2026-03-02T08:00:00Z", "2026-03-02T09:00:00Z", "e");
    let free = cal_store::create_hold_cached(&mine, &cache, &again, &HoldPolicy::TRUSTED, now).await.unwrap();
    assert_eq!((free.start, free.status), (at("2026-03-02T08:00:00Z"), HoldStatus::Active));

    // It deletes the rule: the cache still shows it, the write refuses, and
    // fresh reads refuse the request (no availability left).
    cal_store::delete_rule(&mut other, P, "wr_all").await.unwrap();
    let late = request("2026-03-03T10:00:00Z", "2026-03-03T11:00:00Z", "c");
    let err = booking_error(cal_store::create_hold_cached(&mine, &cache, &late, &HoldPolicy::TRUSTED, now).await.unwrap_err());
    assert_eq!(err.error_type(), ErrorType::Conflict, "{err:?}");
    assert_eq!(db.count("select count(*) from cal.hold where idempotency_key = 'c'").await, 0);
    assert_eq!(overlaps(&db.client, now).await, 0);
}

/// Runs another process's hold right after the first statement through it:
/// a hold's read, then the other hold, then the hold's write.
struct HoldBetween<'a> {
    inner: &'a Client,
    other: &'a Client,
    between: std::sync::Mutex<Option<HoldRequest>>,
}

impl cal_store::Executor for HoldBetween<'_> {
    fn prepare<'a>(
        &'a self,
        sql: &'a str,
    ) -> impl std::future::Future<Output = Result<tokio_postgres::Statement, tokio_postgres::Error>> + Send + 'a {
        self.inner.prepare(sql)
    }

    async fn query_prepared<'a>(
        &'a self,
        statement: &'a tokio_postgres::Statement,
        params: &'a [&'a (dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
        let rows = self.inner.query_prepared(statement, params).await;
        let between = self.between.lock().unwrap().take();
        if let Some(req) = between {
            cal_store::create_hold(self.other, &req, at(NOW)).await.expect("the other hold");
        }
        rows
    }

    fn execute_prepared<'a>(
        &'a self,
        statement: &'a tokio_postgres::Statement,
        params: &'a [&'a (dyn tokio_postgres::types::ToSql + Sync)],
    ) -> impl std::future::Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'a {
        self.inner.execute_prepared(statement, params)
    }

    fn batch_execute<'a>(&'a self, sql: &'a str) -> impl std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send + 'a {
        self.inner.batch_execute(sql)
    }
}

/// A hold whose provider changed between its read and its write loses
/// with its answer in the write's own result: two statements in all, the
/// answer the one fresh reads give, nothing stored for it.
#[tokio::test]
async fn a_write_that_finds_the_version_moved_brings_the_answer() {
    let mut db = TestDb::new().await;
    provider(&mut db).await;
    let (mine, other) = (db.connect().await, db.connect().await);
    let theirs = request("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z", "x");
    let between = HoldBetween { inner: &mine, other: &other, between: std::sync::Mutex::new(Some(theirs)) };
    let counting = cal_store::testing::Counting::new(&between);
    let clash = request("2026-03-02T10:30:00Z", "2026-03-02T11:30:00Z", "b");
    let lost = conflict_alternatives(cal_store::create_hold(&counting, &clash, at(NOW)).await);
    assert_eq!(counting.take(), 2, "the read, then the write that refused");
    assert!(between.between.lock().unwrap().is_none(), "the other hold came between");
    assert_eq!(lost, conflict_alternatives(cal_store::create_hold(&other, &clash, at(NOW)).await));
    assert!(!lost.is_empty());
    assert_eq!(db.count("select count(*) from cal.hold where idempotency_key = 'b'").await, 0);

    // A change elsewhere: the answer finds the way free, and the hold is
    // written after a fresh read.
    let elsewhere = request("2026-03-03T10:00:00Z", "2026-03-03T11:00:00Z", "y");
    *between.between.lock().unwrap() = Some(elsewhere);
    let free = request("2026-03-02T14:00:00Z", "2026-03-02T15:00:00Z", "c");
    let hold = cal_store::create_hold(&counting, &free, at(NOW)).await.unwrap();
    assert_eq!(counting.take(), 4, "read, refused write, read, write");
    assert_eq!(cal_store::get_hold(&db.client, &hold.hold_id).await.unwrap(), hold);
    assert_eq!(overlaps(&db.client, at(NOW)).await, 0);
}

/// Retries of one request through a cache return its one hold, even when
/// the cache shows that very hold; another request with the key is refused.
#[tokio::test]
async fn retries_through_a_cache_return_the_one_hold() {
    let mut db = TestDb::new().await;
    provider(&mut db).await;
    let (now, cache) = (at(NOW), cal_store::CalendarCache::default());
    let req = request("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z", "k");
    let first = cal_store::create_hold_cached(&db.client, &cache, &req, &HoldPolicy::TRUSTED, now).await.unwrap();
    let again = cal_store::create_hold_cached(&db.client, &cache, &req, &HoldPolicy::TRUSTED, now).await.unwrap();
    assert_eq!(again, first);
    let other = request("2026-03-02T12:00:00Z", "2026-03-02T13:00:00Z", "k");
    let err = booking_error(cal_store::create_hold_cached(&db.client, &cache, &other, &HoldPolicy::TRUSTED, now).await.unwrap_err());
    assert_eq!(err.error_type(), ErrorType::IdempotencyMismatch);
    assert_eq!(db.count("select count(*) from cal.hold").await, 1);
}

/// A hold the cache shows as active but whose time ran out is not trusted to
/// the cache: the request reads, marks it expired (with its event) and books.
#[tokio::test]
async fn a_cache_showing_a_hold_that_ran_out_reads_afresh() {
    let mut db = TestDb::new().await;
    provider(&mut db).await;
    let (now, cache) = (at(NOW), cal_store::CalendarCache::default());
    let slot = ("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z");
    let first = cal_store::create_hold_cached(&db.client, &cache, &request(slot.0, slot.1, "a"), &HoldPolicy::TRUSTED, now).await.unwrap();
    let later = now.plus_minutes(10);
    let second = cal_store::create_hold_cached(&db.client, &cache, &request(slot.0, slot.1, "b"), &HoldPolicy::TRUSTED, later).await.unwrap();
    assert_eq!(second.status, HoldStatus::Active);
    assert_eq!(cal_store::get_hold(&db.client, &first.hold_id).await.unwrap().status, HoldStatus::Expired);
    assert_eq!(outbox_types(&db.client).await[1..], ["cal.hold.created", "cal.hold.expired", "cal.hold.created"]);
}

/// A hundred tasks sharing one cache (one process serving them all) race
/// for overlapping slots: one winner, every loser a CONFLICT with
/// alternatives, no overlap stored.
#[tokio::test]
async fn a_hundred_tasks_sharing_a_cache_race_with_exactly_one_winner() {
    let mut db = TestDb::new().await;
    provider(&mut db).await;
    let (now, cache) = (at(NOW), Arc::new(cal_store::CalendarCache::default()));
    let warm = request("2026-03-02T06:00:00Z", "2026-03-02T07:00:00Z", "warm");
    cal_store::create_hold_cached(&db.client, &cache, &warm, &HoldPolicy::TRUSTED, now).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (conn, cache) = (db.connect().await, cache.clone());
        let start = at("2026-03-02T09:00:00Z").plus_minutes(30 * (i % 3));
        let req = request(&start.rfc3339(), &start.plus_minutes(90).rfc3339(), &format!("key-{i}"));
        tasks.push(tokio::spawn(async move { cal_store::create_hold_cached(&conn, &cache, &req, &HoldPolicy::TRUSTED, now).await }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(e) => assert!((1..=3).contains(&conflict_alternatives(Err(e)).len())),
        }
    }
    assert_eq!(won, 1);
    assert_eq!(db.count("select count(*) from cal.hold").await, 2);
    assert_eq!(overlaps(&db.client, now).await, 0);
    assert_eq!(outbox_types(&db.client).await.iter().filter(|t| *t == "cal.hold.created").count(), 2);
}

// ---- the per-customer limit and the caller's policy ---------------------

/// A customer's policy as the API gives it: at most `max` holds an hour,
/// reschedules of their own events only.
fn customer_policy(customer: &str, max: i64) -> HoldPolicy {
    HoldPolicy { customer_limit: Some(cal_store::CustomerLimit::per_hour(max)), on_behalf_of: Some(customer.into()) }
}

/// `request` for provider `user` (available around the clock) by customer `cust`.
fn request_of(user: &str, start: Instant, key: &str) -> HoldRequest {
    cal_store::testing::checkout(user, ROLE, start, start.plus_minutes(60), key)
}

fn rate_limited(result: Result<cal_store::HoldRecord, StoreError>) -> StoreError {
    let err = result.unwrap_err();
    assert_eq!(err.error_type(), ErrorType::RateLimited, "{err:?}");
    err
}

/// The limit is counted under the customer's lock by the write itself, so
/// many concurrent requests of one customer over many providers (whose
/// provider locks do not serialize them) store exactly the limit. Counting
/// before the write, as the API once did, stores more.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_holds_of_one_customer_over_many_providers_never_exceed_the_limit() {
    let mut db = TestDb::new().await;
    let providers: Vec<String> = (0..10).map(|i| format!("prov-{i}")).collect();
    for p in &providers {
        cal_store::put_rule(&mut db.client, &rule(&format!("wr_{p}"), p, ROLE, 127, "00:00", "00:00", "UTC", 30, 0, 60)).await.unwrap();
    }
    let now = at(NOW);
    let cache = Arc::new(cal_store::CalendarCache::default());
    let barrier = Arc::new(tokio::sync::Barrier::new(30));
    let mut tasks = Vec::new();
    for i in 0..30 {
        let conn = db.connect().await;
        let (cache, barrier) = (Arc::clone(&cache), Arc::clone(&barrier));
        // Three requests per provider, at different times: none conflicts.
        let req = request_of(&providers[i % 10], at("2026-03-02T08:00:00Z").plus_minutes(60 * (i as i64 / 10)), &format!("k{i}"));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            cal_store::create_hold_cached(&conn, &cache, &req, &customer_policy("cust", 5), now).await
        }));
    }
    let (mut won, mut limited) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(e) => {
                rate_limited(Err(e));
                limited += 1;
            }
        }
    }
    assert_eq!((won, limited), (5, 25));
    assert_eq!(db.count("select count(*) from cal.hold where customer_id = 'cust'").await, 5);
    assert_eq!(db.count("select count(*) from cal.outbox where event_type = 'cal.hold.created'").await, 5);
}

#[tokio::test]
async fn at_the_limit_a_retry_is_answered_a_new_hold_refused_and_trusted_callers_exempt() {
    let mut db = TestDb::new().await;
    provider(&mut db).await;
    let now = at(NOW);
    let cache = cal_store::CalendarCache::default();
    let policy = customer_policy("cust", 3);
    let start = |h: i64| at("2026-03-02T08:00:00Z").plus_minutes(60 * h);
    let counting = cal_store::testing::Counting::new(&db.client);
    let mut made = Vec::new();
    for h in 0..3 {
        made.push(cal_store::create_hold_cached(&counting, &cache, &request_of(P, start(h), &format!("k{h}")), &policy, now).await.unwrap());
    }
    assert_eq!(counting.take(), 2 + 1 + 1, "the limit costs no statement: a read and a write, then a write each");
    let err = rate_limited(cal_store::create_hold_cached(&db.client, &cache, &request_of(P, start(3), "k3"), &policy, now).await);
    assert_eq!(err.to_string(), "at most 3 holds per hour; try again later");
    // Without the cache too (the read sees the key, the write the count).
    rate_limited(cal_store::create_hold_cached(&db.client, &cal_store::CalendarCache::default(), &request_of(P, start(3), "k3"), &policy, now).await);
    // A retry of a hold already made: the same hold, whether the cache
    // writes first (and is refused by the limit) or the read finds the key.
    let fresh = cal_store::CalendarCache::default();
    for c in [&cache, &fresh] {
        let again = cal_store::create_hold_cached(&db.client, c, &request_of(P, start(2), "k2"), &policy, now).await.unwrap();
        assert_eq!(again.hold_id, made[2].hold_id);
    }
    // The same key for another request is still a mismatch, not the limit.
    let err = booking_error(cal_store::create_hold_cached(&db.client, &cache, &request_of(P, start(5), "k2"), &policy, now).await.unwrap_err());
    assert_eq!(err.error_type(), ErrorType::IdempotencyMismatch);
    // Trusted callers (admins, operators) are not limited; their holds for
    // the customer count towards the customer's limit all the same.
    cal_store::create_hold_cached(&db.client, &cache, &request_of(P, start(4), "admin"), &HoldPolicy::TRUSTED, now).await.unwrap();
    cal_store::create_hold(&db.client, &request_of(P, start(6), "ops"), now).await.unwrap();
    // Another customer has a limit of their own.
    let mut other = request_of(P, start(7), "other");
    other.customer_id = Some("cust-2".into());
    cal_store::create_hold_cached(&db.client, &cache, &other, &customer_policy("cust-2", 3), now).await.unwrap();
    assert_eq!(db.count("select count(*) from cal.hold").await, 6);
    // An hour after the first three, room again, with the trusted ones counted.
    let later = now.plus_minutes(60);
    rate_limited(cal_store::create_hold_cached(&db.client, &cache, &request_of(P, start(8), "k8"), &policy, later.plus_secs(-1)).await);
    cal_store::create_hold_cached(&db.client, &cache, &request_of(P, start(8), "k8"), &policy, later.plus_secs(1)).await.unwrap();
}

/// A reschedule hold reads its event once, in the store, and moves only an
/// event of the caller (its customer or its provider): another's event is
/// NOT_FOUND, as if it did not exist.
#[tokio::test]
async fn a_reschedule_hold_moves_only_the_callers_event() {
    let mut db = TestDb::new().await;
    provider(&mut db).await;
    let now = at(NOW);
    let hold = cal_store::create_hold(&db.client, &request("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z", "a"), now).await.unwrap();
    let event = cal_store::confirm_hold(&mut db.client, &hold.hold_id, now).await.unwrap();
    let cache = cal_store::CalendarCache::default();
    let move_by = |who: &str, key: &str| {
        let mut r = request("2026-03-02T12:00:00Z", "2026-03-02T13:00:00Z", key);
        r.kind = HoldKind::Reschedule;
        r.event_id = Some(event.event_id.clone());
        r.customer_id = Some(who.into());
        r
    };
    let err =
        cal_store::create_hold_cached(&db.client, &cache, &move_by("mallory", "m1"), &customer_policy("mallory", 20), now).await.unwrap_err();
    assert!(matches!(&err, StoreError::NotFound { entity: "event", id } if *id == event.event_id), "{err:?}");
    assert_eq!(db.count("select count(*) from cal.hold where kind = 'reschedule'").await, 0);
    // Its customer may, and so may its provider and a trusted caller.
    for (who, key, policy) in [
        ("cust", "c1", customer_policy("cust", 20)),
        (P, "p1", customer_policy(P, 20)),
        ("cust", "t1", HoldPolicy::TRUSTED),
    ] {
        let h = cal_store::create_hold_cached(&db.client, &cache, &move_by(who, key), &policy, now).await.unwrap();
        assert_eq!(h.event_id.as_deref(), Some(event.event_id.as_str()));
        cal_store::release_hold(&mut db.client, &h.hold_id, now).await.unwrap();
    }
}
