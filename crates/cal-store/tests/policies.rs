//! Booking policies on a real PostgreSQL (SEMANTICS.md §8): stored and
//! read back, loaded with the calendar, and enforced by hold creation under
//! the provider's lock, so concurrent requests never exceed a limit or
//! squeeze into a buffer. Every race is checked with SQL over the tables.

mod common;

use std::sync::Arc;

use cal_core::feasibility::{SlotQuery, SlotRange};
use cal_core::holds::{HoldKind, HoldRequest};
use cal_core::policy::{BookingPolicy, BookingPolicyInput};
use cal_core::{ErrorType, Instant, StepMinutes};
use cal_store::{HoldPolicy, HoldRecord, StoreError};
use common::{TestDb, at, rule};

const P: &str = "prov";
const ROLE: &str = "photographer";
const NOW: &str = "2026-03-01T00:00:00Z";

/// Available around the clock (UTC) for `ROLE` and `"model"`, 30 min
/// minimum, no lead time.
async fn provider(db: &mut TestDb) {
    for role in [ROLE, "model"] {
        cal_store::put_rule(&mut db.client, &rule(&format!("wr_{role}"), P, role, 127, "00:00", "00:00", "UTC", 30, 0, 60))
            .await
            .unwrap();
    }
}

fn policy(role: &str, before: i64, after: i64, per_day: Option<i64>, per_week: Option<i64>) -> BookingPolicy {
    BookingPolicy::try_from(BookingPolicyInput {
        user_id: P,
        role_code: role,
        timezone: "Europe/Berlin",
        buffer_before_min: Some(before),
        buffer_after_min: Some(after),
        max_per_day: per_day,
        max_per_week: per_week,
    })
    .unwrap()
}

fn request(role: &str, start: Instant, minutes: i64, key: &str) -> HoldRequest {
    cal_store::testing::checkout(P, role, start, start.plus_minutes(minutes), key)
}

fn refused(result: Result<HoldRecord, StoreError>) -> ErrorType {
    result.expect_err("refused").error_type()
}

#[tokio::test]
async fn a_policy_is_put_read_replaced_and_deleted_each_change_bumping_the_version_with_its_event() {
    let mut db = TestDb::new().await;
    let stored = cal_store::put_policy(&mut db.client, &policy(ROLE, 15, 30, Some(3), None)).await.unwrap();
    assert_eq!(stored, policy(ROLE, 15, 30, Some(3), None));
    cal_store::put_policy(&mut db.client, &policy("model", 0, 0, None, Some(5))).await.unwrap();
    cal_store::put_policy(&mut db.client, &policy(ROLE, 0, 10, None, None)).await.unwrap();
    let all = cal_store::get_policies(&db.client, P).await.unwrap();
    assert_eq!(all, vec![policy("model", 0, 0, None, Some(5)), policy(ROLE, 0, 10, None, None)]);
    assert!(cal_store::get_policies(&db.client, "nobody").await.unwrap().is_empty());

    cal_store::delete_policy(&mut db.client, P, "model").await.unwrap();
    let err = cal_store::delete_policy(&mut db.client, P, "model").await.unwrap_err();
    assert_eq!(err.error_type(), ErrorType::NotFound);
    assert_eq!(cal_store::get_policies(&db.client, P).await.unwrap(), vec![policy(ROLE, 0, 10, None, None)]);

    assert_eq!(cal_store::outbox::version(&db.client, P).await.unwrap(), 4, "a refused delete writes nothing");
    let rows = db
        .client
        .query("select event_type, payload from cal.outbox order by outbox_id", &[])
        .await
        .unwrap();
    let events: Vec<(String, String, i64)> = rows
        .iter()
        .map(|r| {
            let p: serde_json::Value = r.get(1);
            (r.get(0), p["operation"].as_str().unwrap().to_owned(), p["version"].as_i64().unwrap())
        })
        .collect();
    let want = [("put", 1), ("put", 2), ("put", 3), ("deleted", 4)];
    assert_eq!(events, want.map(|(o, v)| ("cal.policy.updated".to_owned(), o.to_owned(), v)).to_vec());
    let first: serde_json::Value = rows[0].get(1);
    assert_eq!(
        first["policy"],
        serde_json::json!({"user_id": P, "role_code": ROLE, "timezone": "Europe/Berlin", "buffer_before_min": 15,
                           "buffer_after_min": 30, "max_per_day": 3, "max_per_week": null})
    );
}

#[tokio::test]
async fn the_database_refuses_what_the_engine_would() {
    let db = TestDb::new().await;
    for (columns, values) in [
        ("buffer_before_min", "-1"),
        ("buffer_after_min", "1441"),
        ("max_per_day", "0"),
        ("max_per_week", "0"),
    ] {
        let sql = format!("insert into cal.booking_policy (user_id, role_code, timezone, {columns}) values ('u', 'r', 'UTC', {values})");
        let err = db.client.execute(&sql, &[]).await.unwrap_err();
        let constraint = err.as_db_error().and_then(|e| e.constraint()).map(str::to_owned);
        assert_eq!(constraint, Some(format!("booking_policy_{columns}_ck")), "{columns}: {err:?}");
    }
    db.client.execute("insert into cal.booking_policy (user_id, role_code, timezone) values ('u', 'r', 'UTC')", &[]).await.unwrap();
    let err = db.client.execute("insert into cal.booking_policy (user_id, role_code, timezone) values ('u', 'r', 'UTC')", &[]).await;
    assert_eq!(err.unwrap_err().as_db_error().and_then(|e| e.constraint()), Some("booking_policy_pk"));
}

/// The calendar a slot query loads brings every role's policy and the role
/// of every booking.
#[tokio::test]
async fn the_calendar_read_brings_policies_and_the_roles_of_bookings() {
    let mut db = TestDb::new().await;
    provider(&mut db).await;
    cal_store::put_policy(&mut db.client, &policy(ROLE, 0, 30, Some(2), None)).await.unwrap();
    cal_store::put_policy(&mut db.client, &policy("model", 60, 0, None, None)).await.unwrap();
    let now = at(NOW);
    cal_store::create_hold(&db.client, &request("model", at("2026-03-02T10:00:00Z"), 60, "m"), now).await.unwrap();
    let cal = cal_store::load_calendar(&db.client, P, ROLE, at("2026-03-02T00:00:00Z"), at("2026-03-03T00:00:00Z"), None)
        .await
        .unwrap();
    assert_eq!(cal.policies, vec![policy("model", 60, 0, None, None), policy(ROLE, 0, 30, Some(2), None)]);
    assert_eq!(cal.holds.iter().map(|h| h.role_code.as_deref()).collect::<Vec<_>>(), vec![Some("model")]);
    // A model booking at 10:00 with its hour before: no photographer slot
    // ending after 09:00 (nor, with the photographer's 30 min after, one
    // ending after 08:30) before 11:00; starts run up to `to`.
    let query = SlotQuery {
        user_id: P.into(),
        role_code: ROLE.into(),
        range: SlotRange::new(at("2026-03-02T07:00:00Z"), at("2026-03-02T12:00:00Z"), Some(60), StepMinutes::new(30).unwrap()).unwrap(),
    };
    let slots = cal_store::slots(&db.client, &query, now).await.unwrap();
    let starts: Vec<String> = slots.slots.iter().map(|s| s.start.rfc3339()).collect();
    assert_eq!(starts, ["2026-03-02T07:00:00Z", "2026-03-02T07:30:00Z", "2026-03-02T11:00:00Z", "2026-03-02T11:30:00Z"]);
}

/// Twenty concurrent requests on distinct free slots of one local day with
/// `max_per_day = 2` store exactly two, with and without a shared cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_holds_on_one_day_never_exceed_its_limit() {
    for cached in [false, true] {
        let mut db = TestDb::new().await;
        provider(&mut db).await;
        cal_store::put_policy(&mut db.client, &policy(ROLE, 0, 0, Some(2), None)).await.unwrap();
        let (now, cache) = (at(NOW), Arc::new(cal_store::CalendarCache::default()));
        let mut tasks = Vec::new();
        for i in 0..20 {
            let (conn, cache) = (db.connect().await, cache.clone());
            // 00:00Z to 19:00Z: 01:00 to 20:00 in Berlin, one local day.
            let req = request(ROLE, at("2026-03-02T00:00:00Z").plus_minutes(60 * i), 60, &format!("k{i}"));
            tasks.push(tokio::spawn(async move {
                if cached {
                    cal_store::create_hold_cached(&conn, &cache, &req, &HoldPolicy::TRUSTED, now).await
                } else {
                    cal_store::create_hold(&conn, &req, now).await
                }
            }));
        }
        let mut won = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(_) => won += 1,
                Err(e) => assert_eq!(e.error_type(), ErrorType::Conflict, "{e:?}"),
            }
        }
        assert_eq!(won, 2, "cached: {cached}");
        let per_day = db
            .count(
                "select coalesce(max(n), 0) from (select count(*) as n from cal.hold
                  where status = 'active' and role_code = 'photographer'
                  group by (start_at at time zone 'Europe/Berlin')::date) d",
            )
            .await;
        assert_eq!(per_day, 2, "cached: {cached}");
        // The next local day is free again; an admin hold skips the limit.
        cal_store::create_hold(&db.client, &request(ROLE, at("2026-03-02T23:00:00Z"), 60, "next-day"), now).await.unwrap();
        let mut admin = request(ROLE, at("2026-03-02T21:00:00Z"), 60, "admin");
        admin.kind = HoldKind::Admin;
        cal_store::create_hold(&db.client, &admin, now).await.unwrap();
    }
}

/// With 30 minutes after each booking, concurrent requests for back-to-back
/// hours never store two within 30 minutes of each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_holds_on_back_to_back_slots_never_squeeze_into_a_buffer() {
    let mut db = TestDb::new().await;
    provider(&mut db).await;
    cal_store::put_policy(&mut db.client, &policy(ROLE, 0, 30, None, None)).await.unwrap();
    let now = at(NOW);
    let mut tasks = Vec::new();
    for i in 0..24 {
        let conn = db.connect().await;
        // Twelve back-to-back hours, each asked for twice.
        let req = request(ROLE, at("2026-03-02T08:00:00Z").plus_minutes(60 * (i % 12)), 60, &format!("k{i}"));
        tasks.push(tokio::spawn(async move { cal_store::create_hold(&conn, &req, now).await }));
    }
    let mut won = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => won += 1,
            Err(e) => assert_eq!(e.error_type(), ErrorType::Conflict, "{e:?}"),
        }
    }
    // Each winner blocks at most its two neighbours (the hour before, whose
    // buffer would reach into it, and the hour after): whatever order the
    // requests arrive in, at least a third of the twelve hours are held, and
    // at most every other one.
    assert!((4..=6).contains(&won), "between a third and a half of the hours: {won}");
    let squeezed = db
        .count(
            "select count(*) from cal.hold a join cal.hold b on a.hold_id < b.hold_id
              where a.status = 'active' and b.status = 'active'
                and tstzrange(a.start_at, a.end_at + interval '30 minutes', '[)')
                 && tstzrange(b.start_at, b.end_at + interval '30 minutes', '[)')",
        )
        .await;
    assert_eq!(squeezed, 0);
    assert_eq!(db.count("select count(*) from cal.hold").await, won);
}

/// A week limit counts bookings from the local Monday on, further back
/// than the two days every read is padded by.
#[tokio::test]
async fn a_week_limit_counts_the_whole_local_iso_week() {
    let mut db = TestDb::new().await;
    provider(&mut db).await;
    cal_store::put_policy(&mut db.client, &policy(ROLE, 0, 0, None, Some(2))).await.unwrap();
    let now = at(NOW);
    // Monday 2 March and Tuesday 3 March (Berlin).
    cal_store::create_hold(&db.client, &request(ROLE, at("2026-03-02T09:00:00Z"), 60, "mon"), now).await.unwrap();
    cal_store::create_hold(&db.client, &request(ROLE, at("2026-03-03T09:00:00Z"), 60, "tue"), now).await.unwrap();
    // Sunday 8 March 22:00 Berlin (21:00Z) is still that week: refused,
    // through the cache too; another role is not counted.
    let sunday = request(ROLE, at("2026-03-08T21:00:00Z"), 60, "sun");
    assert_eq!(refused(cal_store::create_hold(&db.client, &sunday, now).await), ErrorType::Conflict);
    let cache = cal_store::CalendarCache::default();
    assert_eq!(refused(cal_store::create_hold_cached(&db.client, &cache, &sunday, &HoldPolicy::TRUSTED, now).await), ErrorType::Conflict);
    cal_store::create_hold(&db.client, &request("model", at("2026-03-08T21:00:00Z"), 60, "model"), now).await.unwrap();
    // Sunday 23:30Z is Monday 00:30 in Berlin: the next week.
    cal_store::create_hold(&db.client, &request(ROLE, at("2026-03-08T23:30:00Z"), 60, "next-mon"), now).await.unwrap();
    let query = SlotQuery {
        user_id: P.into(),
        role_code: ROLE.into(),
        range: SlotRange::new(at("2026-03-07T00:00:00Z"), at("2026-03-08T22:00:00Z"), Some(60), StepMinutes::new(60).unwrap()).unwrap(),
    };
    assert!(cal_store::slots(&db.client, &query, now).await.unwrap().slots.is_empty(), "the week is full");
}

/// A reschedule neither counts nor buffers the event it moves; others do.
#[tokio::test]
async fn a_reschedule_is_not_limited_or_buffered_by_its_own_event() {
    let mut db = TestDb::new().await;
    provider(&mut db).await;
    cal_store::put_policy(&mut db.client, &policy(ROLE, 60, 60, Some(1), None)).await.unwrap();
    let now = at(NOW);
    let hold = cal_store::create_hold(&db.client, &request(ROLE, at("2026-03-02T10:00:00Z"), 60, "a"), now).await.unwrap();
    let event = cal_store::confirm_hold(&mut db.client, &hold.hold_id, now).await.unwrap();
    // A new booking that day: over the limit.
    let other = request(ROLE, at("2026-03-02T15:00:00Z"), 60, "b");
    assert_eq!(refused(cal_store::create_hold(&db.client, &other, now).await), ErrorType::Conflict);
    // Moving the event half an hour, into its own buffer, the same day: fine.
    let mut moving = request(ROLE, at("2026-03-02T10:30:00Z"), 60, "move");
    moving.kind = HoldKind::Reschedule;
    moving.event_id = Some(event.event_id.clone());
    let moved = cal_store::create_hold(&db.client, &moving, now).await.unwrap();
    let event = cal_store::reschedule_event(&mut db.client, &event.event_id, &moved.hold_id, now).await.unwrap();
    assert_eq!(event.start, at("2026-03-02T10:30:00Z"));
    assert_eq!(refused(cal_store::create_hold(&db.client, &request(ROLE, at("2026-03-02T15:00:00Z"), 60, "c"), now).await), ErrorType::Conflict);
}

/// A cached calendar's policy is never the last word: once the policy is
/// lifted, a request the cache would refuse is checked against the policies
/// read afresh, and booked.
#[tokio::test]
async fn a_policy_lifted_after_a_calendar_was_cached_no_longer_refuses() {
    let mut db = TestDb::new().await;
    provider(&mut db).await;
    cal_store::put_policy(&mut db.client, &policy(ROLE, 0, 0, Some(1), None)).await.unwrap();
    let (now, cache) = (at(NOW), cal_store::CalendarCache::default());
    let first = request(ROLE, at("2026-03-02T09:00:00Z"), 60, "first");
    cal_store::create_hold_cached(&db.client, &cache, &first, &HoldPolicy::TRUSTED, now).await.unwrap();
    let second = request(ROLE, at("2026-03-02T13:00:00Z"), 60, "second");
    assert_eq!(refused(cal_store::create_hold_cached(&db.client, &cache, &second, &HoldPolicy::TRUSTED, now).await), ErrorType::Conflict);
    cal_store::delete_policy(&mut db.client, P, ROLE).await.unwrap();
    cal_store::create_hold_cached(&db.client, &cache, &second, &HoldPolicy::TRUSTED, now).await.unwrap();
    assert_eq!(db.count("select count(*) from cal.hold where status = 'active'").await, 2);
}
