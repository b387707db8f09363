//! What outbox rows may carry: ids and bounded fields, never a user's free
//! text, and never more than `outbox::MAX_ROW_BYTES`, refused when written.

mod common;

use cal_core::availability::ExceptionKind;
use cal_store::outbox::{self, MAX_ROW_BYTES};
use cal_store::{StoreError, add_vacation, list_exceptions, upsert_exception};
use common::{TestDb, date, exception, zone};
use serde_json::{Value, json};

/// The newest outbox row of `user`: its payload and its size as the bound
/// counts it.
async fn newest_row(db: &TestDb, user: &str) -> (Value, usize) {
    let row = db
        .client
        .query_one(
            "select payload, octet_length(event_type) + octet_length(user_id) + octet_length(payload::text)
             from cal.outbox where user_id = $1 order by outbox_id desc limit 1",
            &[&user],
        )
        .await
        .unwrap();
    (row.get(0), row.get::<_, i32>(1) as usize)
}

#[tokio::test]
async fn a_300_kb_exception_note_is_refused_and_the_longest_note_stays_out_of_its_event() {
    let mut db = TestDb::new().await;
    let e = exception("ex_long", "u1", "2026-03-04", "UTC", ExceptionKind::Unavailable, None);
    // 300 KB is refused by the note's own limit (cal_core::text::NOTE), naming it.
    let huge = "n".repeat(300 * 1024);
    let refused = upsert_exception(&mut db.client, &e, Some(&huge)).await.unwrap_err();
    assert!(matches!(&refused, StoreError::Validation { field, .. } if field == "note"), "{refused:?}");
    assert!(list_exceptions(&db.client, "u1", None, None).await.unwrap().is_empty());
    let note = "n".repeat(cal_core::text::NOTE.max_chars);
    upsert_exception(&mut db.client, &e, Some(&note)).await.unwrap();
    // The note is kept where it belongs...
    let stored = list_exceptions(&db.client, "u1", None, None).await.unwrap();
    assert_eq!(stored[0].note.as_deref().map(str::len), Some(note.len()));
    // ...and the event names the exception instead of carrying it.
    let (payload, size) = newest_row(&db, "u1").await;
    assert_eq!(payload["exceptions"][0]["exc_id"], "ex_long");
    assert!(payload["exceptions"][0].get("note").is_none(), "{payload}");
    assert!(size < 1024, "{size} bytes");
}

#[tokio::test]
async fn a_year_of_vacation_with_the_longest_note_stays_within_the_bound() {
    let mut db = TestDb::new().await;
    let note = "n".repeat(cal_core::text::NOTE.max_chars);
    let v = add_vacation(&mut db.client, "u1", date("2027-01-01"), date("2027-12-31"), zone("Europe/Berlin"), Some(&note))
        .await
        .unwrap();
    assert_eq!(v.created.len(), 365);
    let (payload, size) = newest_row(&db, "u1").await;
    assert!(size <= MAX_ROW_BYTES / 2, "{size} bytes");
    let days = payload["exceptions"].as_array().unwrap();
    assert_eq!(days.len(), 365);
    assert_eq!(days[0], json!({ "exc_id": v.days[0].exception.exc_id, "date_local": "2027-01-01" }));
    assert_eq!(payload["vacation"]["timezone"], "Europe/Berlin");
}

#[tokio::test]
async fn an_oversized_row_is_refused_when_written_and_its_change_rolls_back() {
    let mut db = TestDb::new().await;
    // At the bound: accepted (the row's type and user count too).
    let tx = db.client.transaction().await.unwrap();
    let base = json!({ "blob": "" }).to_string().len() + 1; // jsonb text adds a space after ':'
    let fits = "x".repeat(MAX_ROW_BYTES - "cal.rule.updated".len() - "u1".len() - base);
    outbox::enqueue(&tx, "cal.rule.updated", "u1", &json!({ "blob": fits })).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(newest_row(&db, "u1").await.1, MAX_ROW_BYTES);

    // One byte more: refused, and the transaction's other writes with it.
    let tx = db.client.transaction().await.unwrap();
    outbox::bump_version(&tx, "u2").await.unwrap();
    let over = json!({ "blob": format!("{fits}x") });
    let err = outbox::enqueue(&tx, "cal.rule.updated", "u1", &over).await.unwrap_err();
    assert!(err.violates("outbox_size_ck"), "{err:?}");
    assert!(matches!(err, StoreError::Constraint { .. }));
    drop(tx);
    assert_eq!(outbox::version(&db.client, "u2").await.unwrap(), 0);
    assert_eq!(db.count("select count(*) from cal.outbox").await, 1);
}

#[tokio::test]
async fn a_row_over_the_bound_from_before_it_can_still_be_marked() {
    let db = TestDb::new().await;
    db.outbox_row_from_before_the_bound("cal.exception.upserted", "u1", &json!({ "note": "n".repeat(300 * 1024) })).await;
    // Marking it (parked here, as the relay does) passes the check...
    let n = db
        .client
        .execute("update cal.outbox set parked_at = now(), park_reason = 'EntryTooLarge: test'", &[])
        .await
        .unwrap();
    assert_eq!(n, 1);
    // ...and putting it back in the queue without trimming it does not.
    let err = db.client.execute("update cal.outbox set parked_at = null, park_reason = null", &[]).await.unwrap_err();
    assert!(StoreError::from(err).violates("outbox_size_ck"));
}
