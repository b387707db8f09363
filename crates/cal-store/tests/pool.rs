//! The pool and its clients and transactions run every store function.

mod common;

use cal_core::availability::ExceptionKind;
use cal_store::{
    ConfigProblem, StoreError, add_vacation, list_exceptions, list_rules, migrate, pool_from_url, put_rule,
    upsert_exception,
};
use common::{TestDb, date, exception, rule, url_for, zone};

#[tokio::test]
async fn a_pooled_client_and_its_transactions_run_the_store() {
    let db = TestDb::empty().await;
    let pool = pool_from_url(&url_for(&db.name), 2).unwrap();
    let mut client = pool.get().await.unwrap();
    assert_eq!(migrate(&mut client).await.unwrap().applied.len(), cal_store::MIGRATIONS.len());

    put_rule(&mut client, &rule("wr_1", "u1", "photographer", 1, "09:00", "17:00", "UTC", 60, 24, 60)).await.unwrap();
    {
        // Several changes in one caller transaction: savepoints inside it.
        let mut tx = client.transaction().await.unwrap();
        add_vacation(&mut tx, "u1", date("2026-08-01"), date("2026-08-02"), zone("UTC"), None).await.unwrap();
        let e = exception("ex_1", "u1", "2026-08-05", "UTC", ExceptionKind::Available, Some(("10:00", "12:00")));
        upsert_exception(&mut tx, &e, None).await.unwrap();
        // Not committed: dropped, so rolled back.
    }
    assert!(list_exceptions(&client, "u1", None, None).await.unwrap().is_empty());
    {
        let mut tx = client.transaction().await.unwrap();
        add_vacation(&mut tx, "u1", date("2026-08-01"), date("2026-08-02"), zone("UTC"), None).await.unwrap();
        tx.commit().await.unwrap();
    }
    assert_eq!(list_exceptions(&client, "u1", None, None).await.unwrap().len(), 2);
    assert_eq!(list_rules(&client, "u1", None).await.unwrap().len(), 1);
    drop(client);
    drop(pool);
}

#[tokio::test]
async fn a_bad_url_is_a_config_error_that_does_not_repeat_it() {
    let err = pool_from_url("postgres://user:s3cret@host:notaport/db", 1).unwrap_err();
    assert!(matches!(err, StoreError::Config { var: "DATABASE_URL", problem: ConfigProblem::Invalid(_) }), "{err:?}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

/// `plan_cache_mode` and `statement_timeout` as a connection sees them.
async fn settings(client: &tokio_postgres::Client) -> (String, String) {
    let row = client.query_one("select current_setting('plan_cache_mode'), current_setting('statement_timeout')", &[]).await.unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn connections_plan_each_statement_once_and_keep_the_options_of_their_url() {
    let db = TestDb::empty().await;
    let url = url_for(&db.name);
    let generic = ("force_generic_plan".to_owned(), "0".to_owned());

    let pool = pool_from_url(&url, 1).unwrap();
    assert_eq!(settings(&pool.get().await.unwrap()).await, generic);
    assert_eq!(settings(&cal_store::connect(&url).await.unwrap()).await, generic);

    // Options of the URL's own are kept, and win over the store's.
    let sep = if url.contains('?') { '&' } else { '?' };
    let own = format!("{url}{sep}options=-c%20statement_timeout%3D4321");
    let pool = pool_from_url(&own, 1).unwrap();
    assert_eq!(settings(&pool.get().await.unwrap()).await, ("force_generic_plan".to_owned(), "4321ms".to_owned()));
    let auto = format!("{url}{sep}options=-c%20plan_cache_mode%3Dauto");
    assert_eq!(settings(&cal_store::connect(&auto).await.unwrap()).await, ("auto".to_owned(), "0".to_owned()));
}
