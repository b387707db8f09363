//! The migration runner against a real PostgreSQL.

mod common;

use cal_store::{MIGRATIONS, StoreError, migrate};
use common::TestDb;

#[tokio::test]
async fn migrations_apply_once_are_recorded_and_rerun_is_a_no_op() {
    let mut db = TestDb::empty().await;
    let all: Vec<i32> = MIGRATIONS.iter().map(|m| m.version).collect();

    let first = migrate(&mut db.client).await.unwrap();
    assert_eq!(first.applied, all);
    assert!(first.already_applied.is_empty());

    let second = migrate(&mut db.client).await.unwrap();
    assert!(second.applied.is_empty(), "a re-run applies nothing");
    assert_eq!(second.already_applied, all);

    let rows = db
        .client
        .query("select version, name, checksum from public.cal_migrations order by version", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), MIGRATIONS.len());
    for (row, m) in rows.iter().zip(MIGRATIONS) {
        assert_eq!(row.get::<_, i32>(0), m.version);
        assert_eq!(row.get::<_, String>(1), m.name);
        assert_eq!(row.get::<_, String>(2).len(), 64, "a hex SHA-256");
    }
    // The schema is there: every table of the brief exists.
    for table in [
        "weekly_rule",
        "exception",
        "hold",
        "event",
        "external_source",
        "external_event",
        "ics_feed",
        "outbox",
        "provider_version",
    ] {
        let n = db
            .count(&format!(
                "select count(*) from information_schema.tables where table_schema = 'cal' and table_name = '{table}'"
            ))
            .await;
        assert_eq!(n, 1, "cal.{table} exists");
    }
}

#[tokio::test]
async fn concurrent_runs_apply_each_migration_exactly_once() {
    let db = TestDb::empty().await;
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(db.connect().await);
    }
    let [mut a, mut b, mut c, mut d] = <[_; 4]>::try_from(clients).ok().unwrap();
    let (ra, rb, rc, rd) = tokio::join!(migrate(&mut a), migrate(&mut b), migrate(&mut c), migrate(&mut d));
    let reports = [ra.unwrap(), rb.unwrap(), rc.unwrap(), rd.unwrap()];
    let mut applied: Vec<i32> = reports.iter().flat_map(|r| r.applied.clone()).collect();
    applied.sort();
    assert_eq!(applied, MIGRATIONS.iter().map(|m| m.version).collect::<Vec<_>>(), "each applied by exactly one runner");
    assert_eq!(db.count("select count(*) from public.cal_migrations").await, MIGRATIONS.len() as i64);
}

#[tokio::test]
async fn an_applied_migration_that_changed_is_an_error() {
    let mut db = TestDb::new().await;
    db.client.execute("update public.cal_migrations set checksum = 'edited' where version = 2", &[]).await.unwrap();
    match migrate(&mut db.client).await {
        Err(StoreError::MigrationChanged { version: 2, name, recorded, .. }) => {
            assert_eq!(name, MIGRATIONS[1].name);
            assert_eq!(recorded, "edited");
        }
        other => panic!("expected MigrationChanged for version 2, got {other:?}"),
    }
}
