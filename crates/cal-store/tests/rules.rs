//! Rules, exceptions and vacations: CRUD, outbox rows, versions, and rows
//! that no longer validate.

mod common;

use cal_core::availability::ExceptionKind;
use cal_store::outbox;
use cal_store::{
    StoreError, ValidationProblem, add_vacation, delete_exception, delete_rule, list_exceptions, list_rules, put_rule,
    upsert_exception,
};
use common::{TestDb, date, exception, rule, zone};
use serde_json::Value;

/// The outbox rows of a user, oldest first: (event_type, payload).
async fn outbox_rows(db: &TestDb, user: &str) -> Vec<(String, Value)> {
    db.client
        .query("select event_type, payload from cal.outbox where user_id = $1 order by outbox_id", &[&user])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn weekly_rules_put_list_update_delete() {
    let mut db = TestDb::new().await;
    let mut r = rule("", "u1", "photographer", 0b1_1111, "09:00", "17:00", "Europe/Berlin", 60, 24, 60);
    let stored = put_rule(&mut db.client, &r).await.unwrap();
    assert!(stored.rule_id.starts_with("wr_"), "a generated id: {}", stored.rule_id);
    r.rule_id = stored.rule_id.clone();
    assert_eq!(stored, r, "stored as given");

    let other = rule("wr_sat", "u1", "model", 0b10_0000, "10:00", "14:00", "America/New_York", 90, 12, 30);
    put_rule(&mut db.client, &other).await.unwrap();
    assert_eq!(
        list_rules(&db.client, "u1", None).await.unwrap(),
        vec![other.clone(), r.clone()],
        "ordered by role, id"
    );
    assert_eq!(list_rules(&db.client, "u1", Some("photographer")).await.unwrap(), vec![r.clone()]);
    assert!(list_rules(&db.client, "u2", None).await.unwrap().is_empty());

    // Update in place: same id, new hours, inactive.
    let mut changed = r.clone();
    changed.end_local = common::lt("18:30");
    changed.active = false;
    assert_eq!(put_rule(&mut db.client, &changed).await.unwrap(), changed);
    assert_eq!(list_rules(&db.client, "u1", Some("photographer")).await.unwrap(), vec![changed.clone()]);

    // A rule never changes hands: another user's id is "not found".
    let mut stolen = changed.clone();
    stolen.user_id = "intruder".into();
    assert!(matches!(put_rule(&mut db.client, &stolen).await, Err(StoreError::NotFound { entity: "weekly_rule", .. })));
    assert_eq!(list_rules(&db.client, "u1", Some("photographer")).await.unwrap(), vec![changed.clone()]);
    assert!(matches!(
        delete_rule(&mut db.client, "intruder", &changed.rule_id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(outbox::version(&db.client, "intruder").await.unwrap(), 0, "a refused change leaves no trace");
    assert!(outbox_rows(&db, "intruder").await.is_empty());

    delete_rule(&mut db.client, "u1", &changed.rule_id).await.unwrap();
    assert_eq!(list_rules(&db.client, "u1", None).await.unwrap(), vec![other]);
    assert!(matches!(delete_rule(&mut db.client, "u1", &changed.rule_id).await, Err(StoreError::NotFound { .. })));

    // Empty user ids are refused before anything is written.
    let mut nobody = r.clone();
    nobody.user_id = " ".into();
    assert!(
        matches!(put_rule(&mut db.client, &nobody).await, Err(StoreError::Validation { field, problem: ValidationProblem::Text(cal_core::text::TextError::Blank) }) if field == "user_id")
    );
}

#[tokio::test]
async fn every_change_writes_its_outbox_row_and_bumps_the_version() {
    let mut db = TestDb::new().await;
    let r = rule("wr_1", "u1", "photographer", 1, "09:00", "17:00", "UTC", 60, 24, 60);
    put_rule(&mut db.client, &r).await.unwrap();
    put_rule(&mut db.client, &r).await.unwrap();
    delete_rule(&mut db.client, "u1", "wr_1").await.unwrap();
    let e = exception("ex_1", "u1", "2026-03-04", "UTC", ExceptionKind::Available, Some(("10:00", "12:00")));
    upsert_exception(&mut db.client, &e, Some("long day")).await.unwrap();
    delete_exception(&mut db.client, "u1", "ex_1").await.unwrap();
    add_vacation(&mut db.client, "u1", date("2026-08-01"), date("2026-08-03"), zone("UTC"), None).await.unwrap();

    let rows = outbox_rows(&db, "u1").await;
    let summary: Vec<(&str, &str)> = rows.iter().map(|(t, p)| (t.as_str(), p["operation"].as_str().unwrap())).collect();
    assert_eq!(
        summary,
        [
            ("cal.rule.updated", "put"),
            ("cal.rule.updated", "put"),
            ("cal.rule.updated", "deleted"),
            ("cal.exception.upserted", "upserted"),
            ("cal.exception.upserted", "deleted"),
            ("cal.exception.upserted", "upserted"),
        ]
    );
    let versions: Vec<i64> = rows.iter().map(|(_, p)| p["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6], "each change bumps the provider's version once");
    assert_eq!(outbox::version(&db.client, "u1").await.unwrap(), 6);

    let rule_payload = &rows[0].1["rule"];
    assert_eq!(rule_payload["rule_id"], "wr_1");
    assert_eq!(rule_payload["weekday_mask"], 1);
    assert_eq!(rule_payload["start_local"], "09:00:00");
    assert_eq!(rule_payload["timezone"], "UTC");
    assert_eq!(rows[2].1["rule_id"], "wr_1");
    assert_eq!(rows[3].1["exceptions"][0]["exc_id"], "ex_1");
    assert!(rows[3].1["exceptions"][0].get("note").is_none(), "free text stays out of events");
    assert_eq!(rows[4].1["exceptions"][0]["exc_id"], "ex_1");
    let vacation = &rows[5].1;
    assert_eq!(vacation["exceptions"].as_array().unwrap().len(), 3);
    assert_eq!(vacation["vacation"]["from_date"], "2026-08-01");
    assert_eq!(db.count("select count(*) from cal.outbox where published_at is null").await, 6);
}

#[tokio::test]
async fn exceptions_upsert_list_delete() {
    let mut db = TestDb::new().await;
    let open = exception("", "u1", "2026-03-04", "Europe/Berlin", ExceptionKind::Available, Some(("12:00", "20:00")));
    let stored = upsert_exception(&mut db.client, &open, None).await.unwrap();
    assert!(stored.exception.exc_id.starts_with("ex_"));
    let off = exception("ex_off", "u1", "2026-03-05", "Europe/Berlin", ExceptionKind::Unavailable, None);
    upsert_exception(&mut db.client, &off, Some("dentist")).await.unwrap();
    let listed = list_exceptions(&db.client, "u1", None, None).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0], stored);
    assert_eq!(listed[1].exception, off);
    assert_eq!(listed[1].note.as_deref(), Some("dentist"));
    assert_eq!(list_exceptions(&db.client, "u1", Some(date("2026-03-05")), None).await.unwrap().len(), 1);
    assert_eq!(list_exceptions(&db.client, "u1", None, Some(date("2026-03-04"))).await.unwrap().len(), 1);

    // Upsert by id changes the row in place (here: the span becomes a day off
    // in the morning only).
    let mut morning = off.clone();
    morning.times = Some((common::lt("08:00"), common::lt("12:00")));
    assert_eq!(upsert_exception(&mut db.client, &morning, None).await.unwrap().exception, morning);
    assert_eq!(list_exceptions(&db.client, "u1", None, None).await.unwrap().len(), 2);

    // A second identical whole-day row is refused (and says which constraint).
    upsert_exception(&mut db.client, &off, None).await.unwrap();
    let mut twin = off.clone();
    twin.exc_id = "ex_twin".into();
    let err = upsert_exception(&mut db.client, &twin, None).await.unwrap_err();
    assert!(err.violates("exception_whole_day_off_uq"), "{err:?}");
    assert_eq!(err.error_type(), cal_core::ErrorType::Conflict);

    let mut stolen = off.clone();
    stolen.user_id = "u2".into();
    assert!(matches!(
        upsert_exception(&mut db.client, &stolen, None).await,
        Err(StoreError::NotFound { entity: "exception", .. })
    ));
    delete_exception(&mut db.client, "u1", "ex_off").await.unwrap();
    assert!(matches!(delete_exception(&mut db.client, "u1", "ex_off").await, Err(StoreError::NotFound { .. })));
    assert_eq!(list_exceptions(&db.client, "u1", None, None).await.unwrap(), vec![stored]);
}

#[tokio::test]
async fn vacation_writes_one_whole_day_per_date_without_duplicates() {
    let mut db = TestDb::new().await;
    let berlin = zone("Europe/Berlin");
    let v = add_vacation(&mut db.client, "u1", date("2026-07-30"), date("2026-08-02"), berlin, Some("summer"))
        .await
        .unwrap();
    let dates: Vec<String> = v.days.iter().map(|d| d.exception.date_local.to_string()).collect();
    assert_eq!(dates, ["2026-07-30", "2026-07-31", "2026-08-01", "2026-08-02"]);
    assert_eq!(v.created.len(), 4);
    for d in &v.days {
        assert_eq!(
            (d.exception.kind, d.exception.times, d.exception.timezone),
            (ExceptionKind::Unavailable, None, berlin)
        );
        assert_eq!(d.note.as_deref(), Some("summer"));
    }

    // Overlapping range: the four known dates are kept, two are added.
    let again = add_vacation(&mut db.client, "u1", date("2026-08-01"), date("2026-08-04"), berlin, None).await.unwrap();
    assert_eq!(again.days.len(), 4);
    assert_eq!(again.created.len(), 2);
    assert_eq!(again.days[0], v.days[2], "an existing day is returned as it was");
    assert_eq!(db.count("select count(*) from cal.exception where user_id = 'u1'").await, 6);

    // Entirely present: nothing changes, no event, no version bump.
    let version = outbox::version(&db.client, "u1").await.unwrap();
    let events = outbox_rows(&db, "u1").await.len();
    let same = add_vacation(&mut db.client, "u1", date("2026-07-30"), date("2026-08-04"), berlin, None).await.unwrap();
    assert_eq!((same.days.len(), same.created.len()), (6, 0));
    assert_eq!(outbox::version(&db.client, "u1").await.unwrap(), version);
    assert_eq!(outbox_rows(&db, "u1").await.len(), events);

    // The same dates in another zone are other days.
    let ny = add_vacation(&mut db.client, "u1", date("2026-08-01"), date("2026-08-01"), zone("America/New_York"), None)
        .await
        .unwrap();
    assert_eq!(ny.created.len(), 1);
}

#[tokio::test]
async fn vacation_ranges_are_checked_before_any_write() {
    let mut db = TestDb::new().await;
    let utc = zone("UTC");
    let backwards = add_vacation(&mut db.client, "u1", date("2026-08-02"), date("2026-08-01"), utc, None).await;
    assert!(
        matches!(&backwards, Err(StoreError::Validation { field, problem: ValidationProblem::BeforeStart { .. } }) if field == "to_date"),
        "{backwards:?}"
    );
    let too_long = add_vacation(&mut db.client, "u1", date("2026-01-01"), date("2027-01-02"), utc, None).await;
    assert!(
        matches!(&too_long, Err(StoreError::Validation { field, problem: ValidationProblem::TooLong { days: 367, max: 366 } }) if field == "to_date"),
        "{too_long:?}"
    );
    assert_eq!(db.count("select count(*) from cal.exception").await, 0);
    assert_eq!(db.count("select count(*) from cal.outbox").await, 0);
    assert_eq!(db.count("select count(*) from cal.provider_version").await, 0);
    // 366 days (a leap year) is the limit, and allowed.
    let year = add_vacation(&mut db.client, "u1", date("2028-01-01"), date("2028-12-31"), utc, None).await.unwrap();
    assert_eq!(year.created.len(), 366);
}

#[tokio::test]
async fn a_vacation_that_fails_mid_transaction_stores_nothing() {
    let mut db = TestDb::new().await;
    // An honest failure after the exception rows are written: the outbox
    // insert, the transaction's last write, is refused by a trigger (as a
    // full disk or a lost connection would refuse it).
    db.client
        .batch_execute(
            "create function test_refuse_outbox() returns trigger language plpgsql as $$
             declare written int;
             begin
               -- The transaction's own exception rows are visible here: the
               -- failure really happens after they were written.
               select count(*) into written from cal.exception where user_id = new.user_id;
               raise exception 'outbox unavailable after % exception rows', written;
             end $$;
             create trigger refuse_outbox before insert on cal.outbox
               for each row when (new.user_id = 'doomed') execute function test_refuse_outbox();",
        )
        .await
        .unwrap();
    add_vacation(&mut db.client, "lucky", date("2026-08-01"), date("2026-08-03"), zone("UTC"), None).await.unwrap();

    let err = add_vacation(&mut db.client, "doomed", date("2026-08-01"), date("2026-08-10"), zone("UTC"), None)
        .await
        .unwrap_err();
    let StoreError::Db(cause) = &err else { panic!("expected a database error, got {err:?}") };
    assert_eq!(cause.as_db_error().unwrap().message(), "outbox unavailable after 10 exception rows");
    assert_eq!(
        db.count("select count(*) from cal.exception where user_id = 'doomed'").await,
        0,
        "no day of the range is stored"
    );
    assert_eq!(db.count("select count(*) from cal.outbox where user_id = 'doomed'").await, 0);
    assert_eq!(outbox::version(&db.client, "doomed").await.unwrap(), 0);
    assert_eq!(db.count("select count(*) from cal.exception where user_id = 'lucky'").await, 3, "others are untouched");

    // Inside a caller's transaction the vacation is a savepoint: its failure
    // rolls back to it, and the caller's own earlier work can still commit.
    let mut tx = db.client.transaction().await.unwrap();
    tx.execute("insert into cal.provider_version (user_id, version) values ('caller', 41)", &[]).await.unwrap();
    assert!(add_vacation(&mut tx, "doomed", date("2026-08-01"), date("2026-08-02"), zone("UTC"), None).await.is_err());
    tx.commit().await.unwrap();
    assert_eq!(outbox::version(&db.client, "caller").await.unwrap(), 41);
    assert_eq!(db.count("select count(*) from cal.exception where user_id = 'doomed'").await, 0);
}

#[tokio::test]
async fn a_stored_row_that_no_longer_validates_names_table_id_and_column() {
    let db = TestDb::new().await;
    db.client
        .batch_execute(
            "insert into cal.weekly_rule (rule_id, user_id, role_code, weekday_mask, start_local, end_local, timezone)
             values ('wr_mars', 'u1', 'photographer', 1, '09:00', '17:00', 'Mars/Olympus_Mons');
             insert into cal.exception (exc_id, user_id, date_local, timezone, kind)
             values ('ex_gone', 'u2', '2026-03-04', 'Europe/Berlinn', 'unavailable');",
        )
        .await
        .unwrap();
    match list_rules(&db.client, "u1", None).await {
        Err(StoreError::InvalidRow { table: "cal.weekly_rule", id, column: "timezone", .. }) => {
            assert_eq!(id, "wr_mars")
        }
        other => panic!("expected InvalidRow, got {other:?}"),
    }
    match list_exceptions(&db.client, "u2", None, None).await {
        Err(e @ StoreError::InvalidRow { table: "cal.exception", column: "timezone", .. }) => {
            assert_eq!(e.to_string(), "stored row cal.exception \"ex_gone\" has an invalid timezone");
            let cause = std::error::Error::source(&e).unwrap().to_string();
            assert!(cause.contains("Europe/Berlinn"), "{cause}");
        }
        other => panic!("expected InvalidRow, got {other:?}"),
    }
}
