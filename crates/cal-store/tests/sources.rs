//! External ICS calendars: URL validation, idempotent connect, the per-user
//! limit, disconnect (cascade, outbox, version), ownership, resync, and the
//! URL never coming back out.

mod common;

use cal_store::outbox;
use cal_store::sources::{MAX_SOURCES_PER_USER, MAX_URL_CHARS};
use cal_store::{
    SourceStatus, StoreError, UrlProblem, ValidationProblem, connect_ics, disconnect_ics, list_ics, resync_ics,
};
use common::{TestDb, at};
use serde_json::Value;

const SECRET: &str = "s3cr3t-0d9f8a7b6c5e4d3c";

fn private_url() -> String {
    format!("https://calendar.example.com/calendar/ical/me%40example.com/private-{SECRET}/basic.ics")
}

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
async fn urls_are_validated_as_user_input() {
    let mut db = TestDb::new().await;
    let now = at("2026-03-02T09:00:00Z");
    let too_long = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS));
    let cases: Vec<(&str, String, ValidationProblem)> = vec![
        ("ftp", "ftp://example.com/cal.ics".into(), UrlProblem::Scheme { scheme: "ftp".into() }.into()),
        ("javascript", "javascript:alert(1)".into(), UrlProblem::Scheme { scheme: "javascript".into() }.into()),
        ("data", "data:text/calendar,BEGIN".into(), UrlProblem::Scheme { scheme: "data".into() }.into()),
        ("no host", "https://".into(), UrlProblem::NoHost.into()),
        ("no scheme", "example.com/cal.ics".into(), UrlProblem::NotAUrl.into()),
        ("empty", "   ".into(), ValidationProblem::Empty),
        ("too long", too_long.clone(), ValidationProblem::TooManyChars { len: too_long.len(), max: MAX_URL_CHARS }),
        ("credentials", "https://me:pw@example.com/cal.ics".into(), UrlProblem::Credentials.into()),
        ("user only", "https://me@example.com/cal.ics".into(), UrlProblem::Credentials.into()),
        ("localhost", "http://localhost:8080/cal.ics".into(), UrlProblem::PrivateHost.into()),
        ("loopback", "http://127.0.0.1/cal.ics".into(), UrlProblem::PrivateHost.into()),
        ("private", "https://10.1.2.3/cal.ics".into(), UrlProblem::PrivateHost.into()),
        ("metadata", "http://169.254.169.254/latest/meta-data".into(), UrlProblem::PrivateHost.into()),
        ("v6 loopback", "http://[::1]/cal.ics".into(), UrlProblem::PrivateHost.into()),
        ("v4-mapped", "http://[::ffff:127.0.0.1]/cal.ics".into(), UrlProblem::PrivateHost.into()),
        // The poller's policy, applied early (cal_core::url_guard): these
        // three were once accepted here and refused only by the poller.
        ("v4-compatible", "https://[::127.0.0.1]/cal.ics".into(), UrlProblem::PrivateHost.into()),
        ("nat64", "https://[64:ff9b::7f00:1]/cal.ics".into(), UrlProblem::PrivateHost.into()),
        ("multicast", "https://224.0.0.1/cal.ics".into(), UrlProblem::PrivateHost.into()),
        ("nat64 local use", "https://[64:ff9b:1::a00:1]/cal.ics".into(), UrlProblem::PrivateHost.into()),
        ("6to4 private", "https://[2002:c0a8:1::1]/cal.ics".into(), UrlProblem::PrivateHost.into()),
        ("teredo", "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/cal.ics".into(), UrlProblem::PrivateHost.into()),
        ("v6 multicast", "https://[ff02::1]/cal.ics".into(), UrlProblem::PrivateHost.into()),
        ("broadcast", "https://255.255.255.255/cal.ics".into(), UrlProblem::PrivateHost.into()),
        ("reserved", "https://240.0.0.1/cal.ics".into(), UrlProblem::PrivateHost.into()),
        ("cgnat", "https://100.64.1.1/cal.ics".into(), UrlProblem::PrivateHost.into()),
        ("documentation", "https://192.0.2.1/cal.ics".into(), UrlProblem::PrivateHost.into()),
        ("unique local", "https://[fd00::1]/cal.ics".into(), UrlProblem::PrivateHost.into()),
        ("site local", "https://[fec0::1]/cal.ics".into(), UrlProblem::PrivateHost.into()),
        ("hex loopback", "webcal://0x7f.1/cal.ics".into(), UrlProblem::PrivateHost.into()),
        ("mdns name", "https://printer.local/cal.ics".into(), UrlProblem::PrivateHost.into()),
    ];
    for (name, url, want) in cases {
        let err = connect_ics(&mut db.client, "u1", &url, None, now).await.expect_err(name);
        assert_eq!(err.error_type(), cal_core::ErrorType::Validation, "{name}: {err}");
        match &err {
            StoreError::Validation { field, problem } => {
                assert_eq!(field, "url", "{name}");
                assert_eq!(problem, &want, "{name}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    let err = connect_ics(&mut db.client, "u1", &format!("ftp://example.com/{SECRET}"), None, now).await.unwrap_err();
    assert!(!err.to_string().contains(SECRET), "an error never quotes the URL: {err}");
    assert_eq!(db.count("select count(*) from cal.external_source").await, 0, "nothing stored");
    assert_eq!(outbox::version(&db.client, "u1").await.unwrap(), 0, "a refusal leaves no trace");

    // Exactly at the limit is fine; webcal:// is stored as https://.
    let longest = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS - "https://example.com/".len()));
    connect_ics(&mut db.client, "u1", &longest, None, now).await.unwrap();
    let s = connect_ics(
        &mut db.client,
        "u1",
        &format!("WebCal://P01-Calendars.example.com/published/2/{SECRET}"),
        None,
        now,
    )
    .await
    .unwrap();
    assert_eq!(s.url_hint, "https://p01-calendars.example.com/…");
    let stored: String = db
        .client
        .query_one("select url from cal.external_source where source_id = $1", &[&s.source_id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, format!("https://p01-calendars.example.com/published/2/{SECRET}"));
    let hash_ok: bool = db
        .client
        .query_one(
            "select url_hash = sha256(convert_to(url, 'UTF8')) from cal.external_source where source_id = $1",
            &[&s.source_id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(hash_ok, "url_hash is the SHA-256 of the stored URL");

    let err =
        connect_ics(&mut db.client, "u1", "https://example.org/x.ics", Some(&"x".repeat(201)), now).await.unwrap_err();
    assert!(matches!(&err, StoreError::Validation { field, .. } if field == "label"), "{err:?}");
}

#[tokio::test]
async fn a_new_source_is_due_at_once_and_announced_without_its_url() {
    let mut db = TestDb::new().await;
    let now = at("2026-03-02T09:00:00Z");
    let s = connect_ics(&mut db.client, "u1", &private_url(), Some("  Google  "), now).await.unwrap();
    assert!(s.source_id.starts_with("src_"), "{}", s.source_id);
    assert_eq!(s.user_id, "u1");
    assert_eq!(s.label.as_deref(), Some("Google"), "trimmed");
    assert_eq!(s.url_hint, "https://calendar.example.com/…");
    assert_eq!(s.status, SourceStatus::Active);
    assert_eq!((s.next_poll_at, s.created_at), (now, now));
    assert_eq!((s.last_polled_at, s.last_success_at, s.last_error.clone()), (None, None, None));
    assert_eq!((s.consecutive_failures, s.warning_count), (0, 0));

    let rows = outbox_rows(&db, "u1").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, "cal.ics.source.connected");
    assert_eq!(
        rows[0].1,
        serde_json::json!({
            "source_id": s.source_id, "user_id": "u1",
            "host": "calendar.example.com", "version": 1,
        })
    );
    assert_eq!(outbox::version(&db.client, "u1").await.unwrap(), 1);
}

#[tokio::test]
async fn connecting_the_same_url_again_returns_the_existing_source() {
    let mut db = TestDb::new().await;
    let now = at("2026-03-02T09:00:00Z");
    let first = connect_ics(&mut db.client, "u1", &private_url(), Some("Google"), now).await.unwrap();
    let webcal = private_url().replacen("https://", "webcal://", 1);
    let again = connect_ics(&mut db.client, "u1", &format!("{webcal}#x"), Some("Other"), at("2026-03-03T09:00:00Z"))
        .await
        .unwrap();
    assert_eq!(again, first, "the same source, unchanged");
    assert_eq!(db.count("select count(*) from cal.external_source").await, 1);
    assert_eq!(outbox_rows(&db, "u1").await.len(), 1, "no second event");
    assert_eq!(outbox::version(&db.client, "u1").await.unwrap(), 1, "no second bump");

    // Another user may connect the same calendar.
    let theirs = connect_ics(&mut db.client, "u2", &private_url(), None, now).await.unwrap();
    assert_ne!(theirs.source_id, first.source_id);
}

#[tokio::test]
async fn the_per_user_limit_is_rate_limited() {
    let mut db = TestDb::new().await;
    let now = at("2026-03-02T09:00:00Z");
    let mut ids = Vec::new();
    for i in 0..MAX_SOURCES_PER_USER {
        ids.push(connect_ics(&mut db.client, "u1", &format!("https://example.com/{i}.ics"), None, now).await.unwrap());
    }
    let err = connect_ics(&mut db.client, "u1", "https://example.com/one-more.ics", None, now).await.unwrap_err();
    assert_eq!(err.error_type(), cal_core::ErrorType::RateLimited, "{err}");
    assert!(matches!(err, StoreError::Limit { max: MAX_SOURCES_PER_USER, .. }), "{err:?}");
    assert_eq!(db.count("select count(*) from cal.external_source").await, MAX_SOURCES_PER_USER);
    assert_eq!(outbox::version(&db.client, "u1").await.unwrap(), MAX_SOURCES_PER_USER, "the refusal rolled back");
    assert_eq!(outbox_rows(&db, "u1").await.len() as i64, MAX_SOURCES_PER_USER);

    // At the limit, a URL already connected is still answered; others are not limited.
    let again = connect_ics(&mut db.client, "u1", "https://example.com/0.ics", None, now).await.unwrap();
    assert_eq!(again.source_id, ids[0].source_id);
    connect_ics(&mut db.client, "u2", "https://example.com/one-more.ics", None, now).await.unwrap();

    // Freeing a place makes room.
    disconnect_ics(&mut db.client, "u1", &ids[3].source_id).await.unwrap();
    connect_ics(&mut db.client, "u1", "https://example.com/one-more.ics", None, now).await.unwrap();
}

#[tokio::test]
async fn disconnect_removes_imported_busy_time_and_writes_its_event() {
    let mut db = TestDb::new().await;
    let now = at("2026-03-02T09:00:00Z");
    let s = connect_ics(&mut db.client, "u1", &private_url(), Some("Google"), now).await.unwrap();
    for i in 0..3 {
        db.client
            .execute(
                "insert into cal.external_event (source_id, user_id, uid, start_at, end_at)
                 values ($1, 'u1', $2, now(), now() + interval '1 hour')",
                &[&s.source_id, &format!("uid{i}")],
            )
            .await
            .unwrap();
    }
    disconnect_ics(&mut db.client, "u1", &s.source_id).await.unwrap();
    assert_eq!(db.count("select count(*) from cal.external_source").await, 0);
    assert_eq!(db.count("select count(*) from cal.external_event").await, 0, "events cascade");
    let rows = outbox_rows(&db, "u1").await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].0, "cal.ics.source.disconnected");
    assert_eq!(
        rows[1].1,
        serde_json::json!({ "source_id": s.source_id, "user_id": "u1", "version": 2 })
    );
    assert_eq!(outbox::version(&db.client, "u1").await.unwrap(), 2, "busy time changed");

    let err = disconnect_ics(&mut db.client, "u1", &s.source_id).await.unwrap_err();
    assert_eq!(err.error_type(), cal_core::ErrorType::NotFound);
    assert_eq!(outbox::version(&db.client, "u1").await.unwrap(), 2, "a miss leaves no trace");
}

#[tokio::test]
async fn another_users_source_is_not_found() {
    let mut db = TestDb::new().await;
    let now = at("2026-03-02T09:00:00Z");
    let s = connect_ics(&mut db.client, "u1", &private_url(), None, now).await.unwrap();

    let gone = disconnect_ics(&mut db.client, "intruder", &s.source_id).await.unwrap_err();
    let missing = disconnect_ics(&mut db.client, "intruder", "src_does_not_exist").await.unwrap_err();
    assert_eq!(gone.error_type(), cal_core::ErrorType::NotFound);
    assert_eq!(
        gone.to_string().replace(&s.source_id, "ID"),
        missing.to_string().replace("src_does_not_exist", "ID"),
        "indistinguishable from a source that does not exist"
    );
    let err = resync_ics(&db.client, "intruder", &s.source_id, now).await.unwrap_err();
    assert_eq!(err.error_type(), cal_core::ErrorType::NotFound);
    assert!(list_ics(&db.client, "intruder").await.unwrap().is_empty());
    assert_eq!(outbox::version(&db.client, "intruder").await.unwrap(), 0);
    assert!(outbox_rows(&db, "intruder").await.is_empty());
    assert_eq!(list_ics(&db.client, "u1").await.unwrap(), vec![s], "untouched");
}

#[tokio::test]
async fn the_url_never_comes_back_out() {
    let mut db = TestDb::new().await;
    let now = at("2026-03-02T09:00:00Z");
    connect_ics(&mut db.client, "u1", &private_url(), Some("Google"), now).await.unwrap();
    connect_ics(&mut db.client, "u1", &format!("webcal://ical.example.net/feeds/{SECRET}-2?key={SECRET}"), None, now)
        .await
        .unwrap();
    let listed = list_ics(&db.client, "u1").await.unwrap();
    assert_eq!(listed.len(), 2);
    let json = serde_json::to_string(&listed).unwrap();
    assert!(!json.contains(SECRET), "{json}");
    assert!(!json.contains("/calendar/ical"), "no path at all: {json}");
    assert!(json.contains("\"url_hint\":\"https://calendar.example.com/…\""), "{json}");
    let debug = format!("{listed:?}");
    assert!(!debug.contains(SECRET), "{debug}");
    let payloads = db.count(&format!("select count(*) from cal.outbox where payload::text like '%{SECRET}%'")).await;
    assert_eq!(payloads, 0, "no event carries the URL");
}

#[tokio::test]
async fn resync_makes_a_source_due_and_resets_its_backoff() {
    let mut db = TestDb::new().await;
    let s = connect_ics(&mut db.client, "u1", &private_url(), None, at("2026-03-02T09:00:00Z")).await.unwrap();
    db.client
        .execute(
            "update cal.external_source
                set status = 'error', consecutive_failures = 4, next_poll_at = '2026-03-02T15:00:00Z',
                    last_polled_at = '2026-03-02T10:00:00Z', last_error = 'HTTP 503', etag = '\"v1\"',
                    last_modified = 'Mon, 02 Mar 2026 08:00:00 GMT', content_hash = sha256('x')
              where source_id = $1",
            &[&s.source_id],
        )
        .await
        .unwrap();
    let now = at("2026-03-02T11:00:00Z");
    let r = resync_ics(&db.client, "u1", &s.source_id, now).await.unwrap();
    assert_eq!(r.next_poll_at, now, "due now");
    assert_eq!(r.consecutive_failures, 0);
    assert_eq!(r.status, SourceStatus::Active);
    assert_eq!(r.last_polled_at, Some(at("2026-03-02T10:00:00Z")), "history kept");
    assert_eq!(r.last_error.as_deref(), Some("HTTP 503"), "shown until the next poll");
    let cleared = db
        .count(&format!(
            "select count(*) from cal.external_source
              where source_id = '{}' and etag is null and last_modified is null and content_hash is null",
            s.source_id
        ))
        .await;
    assert_eq!(cleared, 1, "the next poll fetches in full");
    let due = db.count("select count(*) from cal.external_source where next_poll_at <= '2026-03-02T11:00:00Z'").await;
    assert_eq!(due, 1);
    assert_eq!(list_ics(&db.client, "u1").await.unwrap(), vec![r]);
}
