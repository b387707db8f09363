//! "An active hold past its expiry counts as expired" is written once, in
//! `cal_core` (`HoldStatus::at`), and said in SQL by
//! `cal_core::feasibility::hold_ran_out_sql`, which the sweeper and the
//! hold write are built with. Here Postgres and Rust are asked the same
//! question at the boundary (SEMANTICS.md §3: a hold that expires exactly
//! at `now` is free) and must agree.

mod common;

use cal_core::feasibility::{HoldStatus, hold_ran_out_sql};
use common::{TestDb, at};

#[tokio::test]
async fn postgres_and_cal_core_agree_when_a_hold_has_run_out() {
    let db = TestDb::empty().await;
    db.client
        .batch_execute("create temporary table h (hold_id text primary key, status text not null, expires_at timestamptz not null)")
        .await
        .unwrap();
    let now = at("2026-03-01T12:00:00Z");
    let statuses = [HoldStatus::Active, HoldStatus::Released, HoldStatus::Converted, HoldStatus::Expired];
    let mut cases = Vec::new();
    for status in statuses {
        for offset in [-1, 0, 1] {
            let expires_at = now.plus_secs(offset);
            let id = format!("{}{offset:+}", status.as_str());
            db.client
                .execute("insert into h values ($1, $2, $3)", &[&id, &status.as_str(), &expires_at.to_chrono()])
                .await
                .unwrap();
            cases.push((id, status, expires_at));
        }
    }
    let sql = format!("select hold_id from h where {} order by hold_id", hold_ran_out_sql("$1"));
    let in_sql: Vec<String> = db.client.query(&sql, &[&now.to_chrono()]).await.unwrap().iter().map(|r| r.get(0)).collect();
    let mut in_rust: Vec<String> =
        cases.iter().filter(|(_, status, expires_at)| status.ran_out_unmarked(*expires_at, now)).map(|(id, _, _)| id.clone()).collect();
    in_rust.sort();
    assert_eq!(in_sql, in_rust);
    // The boundary itself: expiring exactly at `now` has run out, a second later has not.
    assert_eq!(in_sql, ["active+0", "active-1"]);
    assert_eq!(HoldStatus::Active.at(now, now), HoldStatus::Expired);
}
