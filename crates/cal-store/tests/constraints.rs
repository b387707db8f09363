//! The schema's own guarantees, exercised with plain SQL: they hold whatever
//! code writes the rows.

mod common;

use common::{TestDb, at, insert_event, insert_hold, iv};
use tokio_postgres::error::SqlState;

fn code(r: Result<u64, tokio_postgres::Error>) -> Option<SqlState> {
    r.err().and_then(|e| e.code().cloned())
}

fn constraint(r: Result<u64, tokio_postgres::Error>) -> String {
    let e = r.expect_err("the statement must be refused");
    e.as_db_error().and_then(|d| d.constraint()).unwrap_or_default().to_owned()
}

async fn rule(db: &TestDb, id: &str, mask: i32, start: &str, end: &str) -> Result<u64, tokio_postgres::Error> {
    db.client
        .execute(
            "insert into cal.weekly_rule (rule_id, user_id, role_code, weekday_mask, start_local, end_local, timezone)
             values ($1, 'u', 'photographer', $2, $3::text::time, $4::text::time, 'UTC')",
            &[&id, &mask, &start, &end],
        )
        .await
}

#[tokio::test]
async fn weekly_rule_checks() {
    let db = TestDb::new().await;
    assert_eq!(constraint(rule(&db, "wr_0", 0, "09:00", "17:00").await), "weekly_rule_weekday_mask_ck");
    assert_eq!(constraint(rule(&db, "wr_128", 128, "09:00", "17:00").await), "weekly_rule_weekday_mask_ck");
    assert_eq!(
        constraint(rule(&db, "wr_24", 1, "09:00", "24:00").await),
        "weekly_rule_end_local_ck",
        "24:00 is not a time of day here"
    );
    assert_eq!(constraint(rule(&db, "wr_frac", 1, "09:00:00.5", "17:00").await), "weekly_rule_start_local_ck");
    rule(&db, "wr_1", 1, "09:00", "17:00").await.expect("Monday only");
    rule(&db, "wr_127", 127, "22:00", "02:00").await.expect("every day, overnight");

    let bad_params = [
        ("min_duration_min", 0, "weekly_rule_min_duration_min_ck"),
        ("lead_time_hours", -1, "weekly_rule_lead_time_hours_ck"),
        ("booking_window_days", -1, "weekly_rule_booking_window_days_ck"),
    ];
    for (column, value, name) in bad_params {
        let r = db
            .client
            .execute(
                &format!(
                    "insert into cal.weekly_rule (rule_id, user_id, role_code, weekday_mask, start_local, end_local, timezone, {column})
                     values ('wr_{column}', 'u', 'r', 1, '09:00', '17:00', 'UTC', $1)"
                ),
                &[&value],
            )
            .await;
        assert_eq!(constraint(r), name);
    }
    // The seed DDL's defaults.
    let row = db
        .client
        .query_one("select min_duration_min, lead_time_hours, booking_window_days, active from cal.weekly_rule where rule_id = 'wr_1'", &[])
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, i32>(0), row.get::<_, i32>(1), row.get::<_, i32>(2), row.get::<_, bool>(3)),
        (60, 24, 60, true)
    );
}

#[tokio::test]
async fn exception_checks() {
    let db = TestDb::new().await;
    let insert = |id: &'static str, kind: &'static str, s: Option<&'static str>, e: Option<&'static str>| {
        let client = &db.client;
        async move {
            client
                .execute(
                    "insert into cal.exception (exc_id, user_id, date_local, timezone, kind, start_local, end_local)
                     values ($1, 'u', '2026-03-04', 'UTC', $2, $3::text::time, $4::text::time)",
                    &[&id, &kind, &s, &e],
                )
                .await
        }
    };
    assert_eq!(
        constraint(insert("ex_half1", "available", Some("09:00"), None).await),
        "exception_times_both_or_neither_ck"
    );
    assert_eq!(
        constraint(insert("ex_half2", "unavailable", None, Some("17:00")).await),
        "exception_times_both_or_neither_ck"
    );
    assert_eq!(code(insert("ex_kind", "maybe", None, None).await), Some(SqlState::CHECK_VIOLATION));
    insert("ex_ok1", "available", Some("09:00"), Some("17:00")).await.expect("both times");
    insert("ex_ok2", "unavailable", None, None).await.expect("whole day");
    assert_eq!(
        constraint(insert("ex_dup", "unavailable", None, None).await),
        "exception_whole_day_off_uq",
        "a second identical whole day off is redundant"
    );
    insert("ex_ok3", "unavailable", Some("12:00"), Some("13:00")).await.expect("a span on a day off is allowed");
}

#[tokio::test]
async fn overlapping_active_holds_are_refused_by_the_database() {
    let db = TestDb::new().await;
    let far = at("2030-01-01T00:00:00Z");
    insert_hold(&db.client, "hld_a", "u", iv("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"), far, "active")
        .await
        .unwrap();
    let overlapping =
        insert_hold(&db.client, "hld_b", "u", iv("2026-03-02T10:30:00Z", "2026-03-02T11:30:00Z"), far, "active").await;
    assert_eq!(constraint(overlapping), "hold_no_overlap_ex");
    // Half-open: touching is not overlapping.
    insert_hold(&db.client, "hld_c", "u", iv("2026-03-02T11:00:00Z", "2026-03-02T12:00:00Z"), far, "active")
        .await
        .unwrap();
    // Another provider, or a hold no longer active, may overlap.
    insert_hold(&db.client, "hld_d", "other", iv("2026-03-02T10:30:00Z", "2026-03-02T11:30:00Z"), far, "active")
        .await
        .unwrap();
    for (id, status) in [("hld_e", "released"), ("hld_f", "expired"), ("hld_g", "converted")] {
        insert_hold(&db.client, id, "u", iv("2026-03-02T10:30:00Z", "2026-03-02T11:30:00Z"), far, status)
            .await
            .unwrap();
    }
    // Re-activating one of them is refused too.
    let r = db.client.execute("update cal.hold set status = 'active' where hold_id = 'hld_e'", &[]).await;
    assert_eq!(constraint(r), "hold_no_overlap_ex");
    // The same idempotency key twice for one user is refused.
    let r = db
        .client
        .execute(
            "insert into cal.hold (hold_id, user_id, role_code, start_at, end_at, kind, mode, expires_at, idempotency_key, request_fingerprint)
             values ('hld_h', 'u', 'photographer', '2026-04-01T10:00Z', '2026-04-01T11:00Z', 'checkout', 'instant', '2030-01-01Z', 'key_hld_a', 'fp')",
            &[],
        )
        .await;
    assert_eq!(constraint(r), "hold_idempotency_uq");
    // An empty interval is refused.
    let r = db
        .client
        .execute(
            "insert into cal.hold (hold_id, user_id, role_code, start_at, end_at, kind, mode, expires_at, idempotency_key, request_fingerprint)
             values ('hld_i', 'u', 'photographer', '2026-04-01T10:00Z', '2026-04-01T10:00Z', 'checkout', 'instant', '2030-01-01Z', 'k_i', 'fp')",
            &[],
        )
        .await;
    assert_eq!(constraint(r), "hold_interval_ck");
}

#[tokio::test]
async fn overlapping_confirmed_events_are_refused_a_cancelled_one_may_overlap() {
    let db = TestDb::new().await;
    insert_event(&db.client, "ev_a", "u", iv("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"), "confirmed")
        .await
        .unwrap();
    let r =
        insert_event(&db.client, "ev_b", "u", iv("2026-03-02T10:59:00Z", "2026-03-02T12:00:00Z"), "confirmed").await;
    assert_eq!(constraint(r), "event_no_overlap_ex");
    insert_event(&db.client, "ev_c", "u", iv("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"), "cancelled")
        .await
        .expect("cancelled may overlap");
    insert_event(&db.client, "ev_d", "u", iv("2026-03-02T11:00:00Z", "2026-03-02T12:00:00Z"), "confirmed")
        .await
        .expect("touching");
    insert_event(&db.client, "ev_e", "v", iv("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"), "confirmed")
        .await
        .expect("another user");
    // Cancelling frees the time; confirming over it again is refused.
    db.client.execute("update cal.event set status = 'cancelled' where event_id = 'ev_a'", &[]).await.unwrap();
    insert_event(&db.client, "ev_f", "u", iv("2026-03-02T10:30:00Z", "2026-03-02T11:00:00Z"), "confirmed")
        .await
        .unwrap();
    let r = db.client.execute("update cal.event set status = 'confirmed' where event_id = 'ev_c'", &[]).await;
    assert_eq!(constraint(r), "event_no_overlap_ex");
    // ICS UIDs are unique.
    let r = db
        .client
        .execute(
            "insert into cal.event (event_id, user_id, role_code, start_at, end_at, ics_uid, timezone)
             values ('ev_g', 'w', 'r', '2026-03-02T10:00Z', '2026-03-02T11:00Z', 'ev_a@test', 'UTC')",
            &[],
        )
        .await;
    assert_eq!(code(r), Some(SqlState::UNIQUE_VIOLATION));
}

#[tokio::test]
async fn outbox_ids_and_feed_hashes() {
    let db = TestDb::new().await;
    db.client
        .execute("insert into cal.outbox (event_type, user_id, payload) values ('cal.rule.updated', 'u', '{}')", &[])
        .await
        .unwrap();
    let row = db.client.query_one("select event_id::text, published_at is null from cal.outbox", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0).len(), 36, "a generated UUID");
    assert!(row.get::<_, bool>(1));
    let r = db
        .client
        .execute("insert into cal.outbox (event_type, user_id, payload) values ('Not An Event', 'u', '{}')", &[])
        .await;
    assert_eq!(code(r), Some(SqlState::CHECK_VIOLATION));
    // Only a 32-byte hash of a feed token fits.
    let r = db
        .client
        .execute(
            "insert into cal.ics_feed (feed_id, user_id, token_hash) values ('feed_1', 'u', 'plain-token'::bytea)",
            &[],
        )
        .await;
    assert_eq!(code(r), Some(SqlState::CHECK_VIOLATION));
    db.client
        .execute(
            "insert into cal.ics_feed (feed_id, user_id, token_hash) values ('feed_1', 'u', sha256('token'::bytea))",
            &[],
        )
        .await
        .unwrap();
    // Deleting a source deletes its busy data.
    common::insert_external(&db.client, "src_1", "u", &[iv("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z")]).await;
    db.client.execute("delete from cal.external_source where source_id = 'src_1'", &[]).await.unwrap();
    assert_eq!(db.count("select count(*) from cal.external_event").await, 0);
}
