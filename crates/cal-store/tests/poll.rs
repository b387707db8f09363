//! The poller's store side: claiming due sources (order, lease, paused,
//! concurrent claims), the provider's zone and horizon, the diff a success
//! applies (only what changed; version bumped only for busy-time changes),
//! what a failure keeps (every row) and sets (backoff, error, outbox), and
//! the URL never leaving through an outbox payload or `last_error`.

mod common;

use std::collections::HashSet;

use cal_core::ics_in::BusyOccurrence;
use cal_core::time::{Instant, Interval};
use cal_store::poll::{
    CHANGED_INTERVAL_SECS, DEFAULT_HORIZON_DAYS, FAILURE_BASE_SECS, LEASE_SECS, MAX_UNCHANGED_INTERVAL_SECS,
    POLL_ERROR, POLL_OK, failure_backoff_secs,
};
use cal_store::{
    PollSuccess, StoreError, connect_ics, due_sources, outbox, put_rule, record_failure, record_success,
    source_for_poll,
};
use common::{TestDb, at, rule};
use serde_json::Value;

const SECRET: &str = "private-7f3e9c1b2a";

fn url(n: usize) -> String {
    format!("https://calendar.example.com/ical/{n}/{SECRET}/basic.ics")
}

async fn connect(db: &mut TestDb, user: &str, n: usize, now: Instant) -> String {
    connect_ics(&mut db.client, user, &url(n), None, now).await.unwrap().source_id
}

fn occ(uid: &str, start: &str, end: &str, rid: Option<&str>, summary: &str) -> BusyOccurrence {
    BusyOccurrence {
        start: at(start),
        end: at(end),
        uid: uid.into(),
        summary: summary.into(),
        recurrence_id: rid.map(at),
    }
}

fn horizon(now: Instant) -> Interval {
    Interval::new(now, now.plus_secs(62 * 86_400)).unwrap()
}

fn success(now: Instant, busy: Option<Vec<BusyOccurrence>>) -> PollSuccess {
    PollSuccess {
        etag: Some("\"v1\"".into()),
        last_modified: Some("Mon, 02 Mar 2026 08:00:00 GMT".into()),
        content_hash: Some([7; 32]),
        busy,
        warnings: 2,
        horizon: horizon(now),
    }
}

/// `(uid, recurrence_id, start, end, summary)` of a source, sorted.
async fn rows(db: &TestDb, source: &str) -> Vec<(String, String, String, String, Option<String>)> {
    db.client
        .query(
            "select uid, recurrence_id, start_at, end_at, summary from cal.external_event
              where source_id = $1 order by uid, recurrence_id",
            &[&source],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let t = |i| Instant::from_chrono(r.get(i)).rfc3339();
            (r.get(0), r.get(1), t(2), t(3), r.get(4))
        })
        .collect()
}

async fn outbox_rows(db: &TestDb, event_type: &str) -> Vec<Value> {
    db.client
        .query("select payload from cal.outbox where event_type = $1 order by outbox_id", &[&event_type])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn source_state(db: &TestDb, source: &str) -> Value {
    db.client
        .query_one(
            "select jsonb_build_object('status', status, 'etag', etag, 'last_modified', last_modified,
                    'content_hash', encode(content_hash, 'hex'), 'last_polled_at', last_polled_at,
                    'last_success_at', last_success_at, 'next_poll_at', next_poll_at,
                    'consecutive_failures', consecutive_failures, 'last_error', last_error,
                    'warning_count', warning_count)
               from cal.external_source where source_id = $1",
            &[&source],
        )
        .await
        .unwrap()
        .get(0)
}

fn ts(v: &Value) -> Instant {
    Instant::parse(v.as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn due_sources_claims_oldest_first_and_leases_them() {
    let mut db = TestDb::new().await;
    let t0 = at("2026-03-02T09:00:00Z");
    let a = connect(&mut db, "u1", 1, t0).await;
    let b = connect(&mut db, "u1", 2, t0.plus_minutes(1)).await;
    let c = connect(&mut db, "u2", 3, t0.plus_minutes(2)).await;
    let paused = connect(&mut db, "u2", 4, t0).await;
    let later = connect(&mut db, "u3", 5, t0.plus_minutes(60)).await;
    db.client
        .execute("update cal.external_source set status = 'paused' where source_id = $1", &[&paused])
        .await
        .unwrap();
    db.client.execute("update cal.external_source set status = 'error' where source_id = $1", &[&c]).await.unwrap();

    let now = t0.plus_minutes(5);
    let first = due_sources(&db.client, now, 2).await.unwrap();
    let ids: Vec<&str> = first.iter().map(|s| s.source_id.as_str()).collect();
    assert_eq!(ids, [a.as_str(), b.as_str()], "longest overdue first, bounded");
    assert_eq!(first[0].url.expose(), url(1), "the real URL, for the poller");
    assert!(!format!("{:?}", first[0]).contains(SECRET), "Debug shows the host only: {:?}", first[0]);
    let rest = due_sources(&db.client, now, 10).await.unwrap();
    let ids: Vec<&str> = rest.iter().map(|s| s.source_id.as_str()).collect();
    assert_eq!(ids, [c.as_str()], "claimed ones are leased, paused and not-yet-due ones are not due; error ones are");
    assert!(due_sources(&db.client, now, 10).await.unwrap().is_empty());
    let state = source_state(&db, &a).await;
    assert_eq!(ts(&state["next_poll_at"]), now.plus_secs(LEASE_SECS));

    // The lease ends: due again.
    let again = due_sources(&db.client, now.plus_secs(LEASE_SECS), 10).await.unwrap();
    let ids: HashSet<String> = again.into_iter().map(|s| s.source_id).collect();
    assert_eq!(ids, HashSet::from([a.clone(), b.clone(), c.clone()]));
    let _ = later;
}

#[tokio::test]
async fn concurrent_claims_never_return_the_same_source() {
    let mut db = TestDb::new().await;
    let t0 = at("2026-03-02T09:00:00Z");
    let mut all = HashSet::new();
    for n in 0..60 {
        let user = format!("u{}", n / 10);
        all.insert(connect(&mut db, &user, n, t0).await);
    }
    let now = t0.plus_minutes(1);
    let mut clients = Vec::new();
    for _ in 0..6 {
        clients.push(db.connect().await);
    }
    // Six claimers, each claiming small batches until nothing is left.
    let claims = clients.iter().map(|c| async move {
        let mut got = Vec::new();
        loop {
            let batch = due_sources(c, now, 4).await.unwrap();
            if batch.is_empty() {
                return got;
            }
            got.extend(batch.into_iter().map(|s| s.source_id));
        }
    });
    let results = futures_join_all(claims.collect()).await;
    let mut seen = HashSet::new();
    for id in results.into_iter().flatten() {
        assert!(seen.insert(id.clone()), "{id} claimed twice");
    }
    assert_eq!(seen, all, "every due source claimed exactly once");
}

/// `join_all` without a futures dependency: spawn-free, polled together.
async fn futures_join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    out.into_iter().map(Option::unwrap).collect()
}

#[tokio::test]
async fn provider_zone_and_horizon_come_from_active_rules() {
    let mut db = TestDb::new().await;
    let now = at("2026-03-02T09:00:00Z");
    let none = connect(&mut db, "nobody", 1, now).await;
    let s = connect(&mut db, "p1", 2, now).await;
    put_rule(&mut db.client, &rule("wr_1", "p1", "photographer", 31, "09:00", "17:00", "Europe/Berlin", 60, 24, 90))
        .await
        .unwrap();
    put_rule(&mut db.client, &rule("wr_2", "p1", "model", 31, "09:00", "17:00", "America/New_York", 60, 24, 30))
        .await
        .unwrap();
    let got = source_for_poll(&db.client, &none).await.unwrap().unwrap();
    assert_eq!(got.provider_zone.name(), "UTC");
    assert_eq!(got.horizon_days, DEFAULT_HORIZON_DAYS);
    let got = source_for_poll(&db.client, &s).await.unwrap().unwrap();
    assert_eq!(got.provider_zone.name(), "Europe/Berlin", "the first active rule's zone");
    assert_eq!(got.horizon_days, 90, "the longest booking window");
    db.client.execute("update cal.weekly_rule set active = false where rule_id = 'wr_1'", &[]).await.unwrap();
    let got = source_for_poll(&db.client, &s).await.unwrap().unwrap();
    assert_eq!(got.provider_zone.name(), "America/New_York");
    assert_eq!(got.horizon_days, 30);

    db.client.execute("update cal.external_source set status = 'paused' where source_id = $1", &[&s]).await.unwrap();
    assert!(source_for_poll(&db.client, &s).await.unwrap().is_none(), "paused: not polled");
    assert!(source_for_poll(&db.client, "src_missing").await.unwrap().is_none());
}

#[tokio::test]
async fn success_applies_only_the_diff() {
    let mut db = TestDb::new().await;
    let now = at("2026-03-02T09:00:00Z");
    let s = connect(&mut db, "p1", 1, now).await;
    let v0 = outbox::version(&db.client, "p1").await.unwrap();

    let v1 = vec![
        occ("a@x", "2026-03-05T10:00:00Z", "2026-03-05T11:00:00Z", None, "A"),
        occ("b@x", "2026-03-06T10:00:00Z", "2026-03-06T11:00:00Z", None, "B"),
        occ("w@x", "2026-03-03T08:00:00Z", "2026-03-03T09:00:00Z", Some("2026-03-03T08:00:00Z"), "W"),
        occ("w@x", "2026-03-10T08:00:00Z", "2026-03-10T09:00:00Z", Some("2026-03-10T08:00:00Z"), "W"),
    ];
    let r = record_success(&mut db.client, &s, now, success(now, Some(v1))).await.unwrap();
    assert_eq!((r.inserted, r.deleted, r.updated, r.pruned), (4, 0, 0, 0));
    assert!(r.busy_changed);
    assert_eq!(r.next_poll_at, now.plus_secs(CHANGED_INTERVAL_SECS));
    assert_eq!(r.version, Some(v0 + 1));
    assert_eq!(outbox::version(&db.client, "p1").await.unwrap(), v0 + 1);
    let stored = rows(&db, &s).await;
    assert_eq!(stored.len(), 4);
    assert_eq!(
        stored[0],
        ("a@x".into(), "".into(), "2026-03-05T10:00:00Z".into(), "2026-03-05T11:00:00Z".into(), Some("A".into()))
    );
    assert_eq!(stored[2].1, "2026-03-03T08:00:00Z", "recurrence_id in RFC 3339 UTC");
    let state = source_state(&db, &s).await;
    assert_eq!(state["etag"], "\"v1\"");
    assert_eq!(state["content_hash"], "07".repeat(32));
    assert_eq!(state["warning_count"], 2);
    assert_eq!(state["status"], "active");
    let ok = outbox_rows(&db, POLL_OK).await;
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0]["inserted"], 4);
    assert_eq!(ok[0]["source_id"], s.as_str());
    assert_eq!(ok[0]["user_id"], "p1");

    // a moves (update), b goes (delete), c comes (insert), w's second
    // occurrence is moved by an override (update, same key); its first stays.
    let t1 = now.plus_minutes(15);
    let v2 = vec![
        occ("a@x", "2026-03-05T12:00:00Z", "2026-03-05T13:00:00Z", None, "A"),
        occ("c@x", "2026-03-07T10:00:00Z", "2026-03-07T11:00:00Z", None, "C"),
        occ("w@x", "2026-03-03T08:00:00Z", "2026-03-03T09:00:00Z", Some("2026-03-03T08:00:00Z"), "W"),
        occ("w@x", "2026-03-11T08:00:00Z", "2026-03-11T09:00:00Z", Some("2026-03-10T08:00:00Z"), "W moved"),
    ];
    // Rows untouched by the diff keep their physical row (no delete + insert).
    let ctid_before: String = db
        .client
        .query_one(
            "select ctid::text from cal.external_event where uid = 'w@x' and recurrence_id = '2026-03-03T08:00:00Z'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let r = record_success(&mut db.client, &s, t1, success(t1, Some(v2))).await.unwrap();
    assert_eq!((r.inserted, r.deleted, r.updated, r.pruned), (1, 1, 2, 0));
    assert_eq!(r.version, Some(v0 + 2));
    let ctid_after: String = db
        .client
        .query_one(
            "select ctid::text from cal.external_event where uid = 'w@x' and recurrence_id = '2026-03-03T08:00:00Z'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(ctid_before, ctid_after, "an unchanged occurrence is not rewritten");
    let stored = rows(&db, &s).await;
    let uids: Vec<(&str, &str, &str)> = stored.iter().map(|r| (r.0.as_str(), r.1.as_str(), r.2.as_str())).collect();
    assert_eq!(
        uids,
        [
            ("a@x", "", "2026-03-05T12:00:00Z"),
            ("c@x", "", "2026-03-07T10:00:00Z"),
            ("w@x", "2026-03-03T08:00:00Z", "2026-03-03T08:00:00Z"),
            ("w@x", "2026-03-10T08:00:00Z", "2026-03-11T08:00:00Z"),
        ]
    );

    // The same occurrences again, only a summary changed: an update and an
    // event, but busy time is the same, so no version bump.
    let t2 = t1.plus_minutes(15);
    let v3 = vec![
        occ("a@x", "2026-03-05T12:00:00Z", "2026-03-05T13:00:00Z", None, "A renamed"),
        occ("c@x", "2026-03-07T10:00:00Z", "2026-03-07T11:00:00Z", None, "C"),
        occ("w@x", "2026-03-03T08:00:00Z", "2026-03-03T09:00:00Z", Some("2026-03-03T08:00:00Z"), "W"),
        occ("w@x", "2026-03-11T08:00:00Z", "2026-03-11T09:00:00Z", Some("2026-03-10T08:00:00Z"), "W moved"),
    ];
    let r = record_success(&mut db.client, &s, t2, success(t2, Some(v3.clone()))).await.unwrap();
    assert_eq!((r.inserted, r.deleted, r.updated, r.busy_changed, r.version), (0, 0, 1, false, None));
    assert_eq!(outbox::version(&db.client, "p1").await.unwrap(), v0 + 2);

    // Identical: nothing written but the poll state, no event; the interval
    // doubles from the previous one.
    let t3 = t2.plus_secs(CHANGED_INTERVAL_SECS);
    let events_before = outbox_rows(&db, POLL_OK).await.len();
    let r = record_success(&mut db.client, &s, t3, success(t3, Some(v3))).await.unwrap();
    assert_eq!((r.inserted, r.deleted, r.updated, r.busy_changed), (0, 0, 0, false));
    assert_eq!(r.next_poll_at, t3.plus_secs(2 * CHANGED_INTERVAL_SECS));
    assert_eq!(outbox_rows(&db, POLL_OK).await.len(), events_before, "an unchanged poll is not an event");

    // The horizon moves past w's first occurrence: pruned, not a change.
    let t4 = at("2026-03-04T00:00:00Z");
    let v4 = vec![
        occ("a@x", "2026-03-05T12:00:00Z", "2026-03-05T13:00:00Z", None, "A renamed"),
        occ("c@x", "2026-03-07T10:00:00Z", "2026-03-07T11:00:00Z", None, "C"),
        occ("w@x", "2026-03-11T08:00:00Z", "2026-03-11T09:00:00Z", Some("2026-03-10T08:00:00Z"), "W moved"),
    ];
    let r = record_success(&mut db.client, &s, t4, success(t4, Some(v4))).await.unwrap();
    assert_eq!((r.inserted, r.deleted, r.updated, r.pruned, r.busy_changed), (0, 0, 0, 1, false));
    assert_eq!(rows(&db, &s).await.len(), 3);
    assert_eq!(r.next_poll_at, t4.plus_secs(MAX_UNCHANGED_INTERVAL_SECS), "backs off, capped");

    // Unchanged (304 / same hash): rows stay, the stored warning count too.
    let t5 = t4.plus_minutes(30);
    let mut unchanged = success(t5, None);
    unchanged.warnings = 99;
    let r = record_success(&mut db.client, &s, t5, unchanged).await.unwrap();
    assert_eq!((r.inserted, r.deleted, r.updated, r.busy_changed), (0, 0, 0, false));
    assert_eq!(rows(&db, &s).await.len(), 3);
    assert_eq!(source_state(&db, &s).await["warning_count"], 2);
}

#[tokio::test]
async fn failure_keeps_the_last_good_data_and_backs_off() {
    let mut db = TestDb::new().await;
    let now = at("2026-03-02T09:00:00Z");
    let s = connect(&mut db, "p1", 1, now).await;
    let busy = vec![occ("a@x", "2026-03-05T10:00:00Z", "2026-03-05T11:00:00Z", None, "A")];
    record_success(&mut db.client, &s, now, success(now, Some(busy))).await.unwrap();
    let version = outbox::version(&db.client, "p1").await.unwrap();
    let before = rows(&db, &s).await;

    // An error text that (wrongly) quotes the URL still stores none of it.
    let mut t = now.plus_minutes(15);
    for n in 1..=3 {
        let f = record_failure(&mut db.client, &s, t, &format!("could not fetch {}: HTTP 500", url(1))).await.unwrap();
        assert_eq!(f.consecutive_failures, n);
        assert_eq!(f.next_poll_at, t.plus_secs(failure_backoff_secs(&s, n)));
        let full = FAILURE_BASE_SECS << (n - 1);
        let wait = f.next_poll_at.unix() - t.unix();
        assert!(wait <= full && wait >= full - full / 10, "failure {n}: {wait}s");
        assert!(!f.last_error.contains(SECRET), "{}", f.last_error);
        t = f.next_poll_at;
    }
    assert_eq!(rows(&db, &s).await, before, "busy time never looks free because of an error");
    assert_eq!(outbox::version(&db.client, "p1").await.unwrap(), version, "busy time did not change");
    let state = source_state(&db, &s).await;
    assert_eq!(state["status"], "error");
    assert_eq!(state["consecutive_failures"], 3);
    assert_eq!(state["etag"], "\"v1\"", "validators of the last good poll stay");
    let error = state["last_error"].as_str().unwrap();
    assert!(error.contains("HTTP 500") && error.contains("calendar.example.com") && !error.contains(SECRET), "{error}");
    let errors = outbox_rows(&db, POLL_ERROR).await;
    assert_eq!(errors.len(), 3);
    assert_eq!(errors[2]["consecutive_failures"], 3);
    assert_eq!(errors[2]["source_id"], s.as_str());

    // A long streak is capped at a day.
    db.client
        .execute("update cal.external_source set consecutive_failures = 30 where source_id = $1", &[&s])
        .await
        .unwrap();
    let f = record_failure(&mut db.client, &s, t, "HTTP 503").await.unwrap();
    assert!(f.next_poll_at.unix() - t.unix() <= 24 * 3600);

    // Recovery: status back to active, counter reset, a poll.ok event.
    let t2 = f.next_poll_at;
    record_success(&mut db.client, &s, t2, success(t2, None)).await.unwrap();
    let state = source_state(&db, &s).await;
    assert_eq!((state["status"].as_str(), state["consecutive_failures"].as_i64()), (Some("active"), Some(0)));
    assert_eq!(state["last_error"], Value::Null);
    let ok = outbox_rows(&db, POLL_OK).await;
    assert_eq!(ok.last().unwrap()["recovered"], true);

    // A source disconnected meanwhile.
    let err = record_failure(&mut db.client, "src_gone", t2, "x").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    let err = record_success(&mut db.client, "src_gone", t2, success(t2, None)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");

    // Nothing the poller wrote carries the URL.
    let all: Vec<String> =
        db.client.query("select payload::text from cal.outbox", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    assert!(all.iter().all(|p| !p.contains(SECRET)), "{all:?}");
}

#[tokio::test]
async fn duplicate_uids_and_long_uids_are_kept_apart() {
    let mut db = TestDb::new().await;
    let now = at("2026-03-02T09:00:00Z");
    let s = connect(&mut db, "p1", 1, now).await;
    let long = "x".repeat(5000);
    let busy = vec![
        occ("dup@x", "2026-03-05T10:00:00Z", "2026-03-05T11:00:00Z", None, "one"),
        occ("dup@x", "2026-03-05T12:00:00Z", "2026-03-05T13:00:00Z", None, "two"),
        occ(&long, "2026-03-06T10:00:00Z", "2026-03-06T11:00:00Z", None, "long"),
    ];
    let r = record_success(&mut db.client, &s, now, success(now, Some(busy.clone()))).await.unwrap();
    assert_eq!(r.inserted, 3);
    let stored = rows(&db, &s).await;
    assert_eq!(stored[0].1, "");
    assert_eq!(stored[1].1, "#2");
    assert!(stored[2].0.starts_with("sha256:"));
    let r = record_success(&mut db.client, &s, now.plus_minutes(15), success(now.plus_minutes(15), Some(busy)))
        .await
        .unwrap();
    assert_eq!((r.inserted, r.deleted, r.updated), (0, 0, 0), "stable keys across identical polls");
}
