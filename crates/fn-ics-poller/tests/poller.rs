//! The poller against real HTTP servers on 127.0.0.1 (tests/server) and a
//! real PostgreSQL: conditional GET, hashing, the diff, rejections keeping
//! the last good data, byte and event limits, redirects, SSRF refusals,
//! timeouts, the task shapes — and the URL never leaking.
//!
//! Loopback is reachable only because these tests build their
//! [`FetchPolicy`] with `allow_loopback: true`; one test shows the
//! production policy refusing the very same server.

mod server;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cal_core::ics_in::ImportLimits;
use cal_core::time::Instant;
use cal_store::outbox;
use cal_store::testing::TestDb;
use fn_ics_poller::{
    Deps, FetchError, FetchPolicy, Fetched, Fetcher, PollOutcome, PollStatus, Refusal, handle, poll_by_id,
};
use serde_json::{Value, json};
use server::{Reply, Request, TestServer};

const SECRET: &str = "private-5ec7e7-d0n7-l34k";
const MAX_BYTES: usize = 64 * 1024;

fn at(s: &str) -> Instant {
    Instant::parse(s).unwrap()
}

fn now() -> Instant {
    at("2026-03-02T09:00:00Z")
}

fn test_policy() -> FetchPolicy {
    FetchPolicy {
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(3),
        max_redirects: 3,
        max_bytes: MAX_BYTES,
        allow_loopback: true,
    }
}

fn limits() -> ImportLimits {
    ImportLimits { max_bytes: MAX_BYTES, max_events: 50, ..ImportLimits::default() }
}

async fn setup_with(policy: FetchPolicy, limits: ImportLimits) -> (TestDb, Deps) {
    let db = TestDb::new().await;
    let pool = cal_store::pool_from_url(&db.url(), 4).unwrap();
    let deps = Deps { pool, fetcher: Fetcher::new(policy).unwrap(), limits, clock: Arc::new(now) };
    (db, deps)
}

async fn setup() -> (TestDb, Deps) {
    setup_with(test_policy(), limits()).await
}

/// A source pointing at `url`, due now. Inserted directly: `connect_ics`
/// (rightly) refuses loopback URLs.
async fn add_source(db: &TestDb, user: &str, url: &str) -> String {
    let id = format!("src_{}", db.count("select count(*) from cal.external_source").await + 1);
    db.client
        .execute(
            "insert into cal.external_source (source_id, user_id, url, url_hash, next_poll_at)
             values ($1, $2, $3, sha256(convert_to($3, 'UTF8')), $4)",
            &[&id, &user, &url, &now().to_chrono()],
        )
        .await
        .unwrap();
    id
}

fn secret_path() -> String {
    format!("/calendar/ical/{SECRET}/basic.ics?token={SECRET}")
}

fn event(uid: &str, start: &str, end: &str, summary: &str) -> String {
    format!(
        "BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260301T000000Z\r\nDTSTART:{start}\r\nDTEND:{end}\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\n"
    )
}

fn calendar(events: &[String]) -> String {
    format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//poller//EN\r\n{}END:VCALENDAR\r\n", events.concat())
}

fn weekly() -> String {
    "BEGIN:VEVENT\r\nUID:w@test\r\nDTSTAMP:20260301T000000Z\r\nDTSTART:20260303T080000Z\r\nDTEND:20260303T090000Z\r\nRRULE:FREQ=WEEKLY;COUNT=3\r\nSUMMARY:Weekly\r\nEND:VEVENT\r\n".into()
}

fn v1() -> String {
    calendar(&[
        event("a@test", "20260305T100000Z", "20260305T110000Z", "A"),
        event("b@test", "20260306T100000Z", "20260306T110000Z", "B"),
        weekly(),
    ])
}

fn v2() -> String {
    calendar(&[
        event("a@test", "20260305T120000Z", "20260305T130000Z", "A"), // moved
        event("c@test", "20260307T100000Z", "20260307T110000Z", "C"), // new; b is gone
        weekly(),
    ])
}

async fn rows(db: &TestDb, source: &str) -> Vec<(String, String, String)> {
    db.client
        .query(
            "select uid, recurrence_id, start_at from cal.external_event where source_id = $1 order by uid, recurrence_id",
            &[&source],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), Instant::from_chrono(r.get(2)).rfc3339()))
        .collect()
}

/// Physical identity of every stored row: unchanged means not rewritten.
async fn fingerprint(db: &TestDb, source: &str) -> String {
    db.client
        .query_one(
            "select coalesce(string_agg(ctid::text || xmin::text, ',' order by uid, recurrence_id), '')
               from cal.external_event where source_id = $1",
            &[&source],
        )
        .await
        .unwrap()
        .get(0)
}

async fn state(db: &TestDb, source: &str) -> Value {
    db.client
        .query_one(
            "select jsonb_build_object('status', status, 'etag', etag, 'last_error', last_error,
                    'consecutive_failures', consecutive_failures, 'next_poll_at', next_poll_at,
                    'content_hash', encode(content_hash, 'hex'))
               from cal.external_source where source_id = $1",
            &[&source],
        )
        .await
        .unwrap()
        .get(0)
}

async fn outbox_types(db: &TestDb) -> Vec<String> {
    db.client
        .query("select event_type from cal.outbox order by outbox_id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The URL's secret appears nowhere the poller writes or answers.
async fn assert_no_secret(db: &TestDb, outcomes: &[&PollOutcome]) {
    let texts: Vec<String> = db
        .client
        .query(
            "select payload::text from cal.outbox
             union all select coalesce(last_error, '') from cal.external_source",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for t in &texts {
        assert!(!t.contains(SECRET), "the URL leaked into the database: {t}");
    }
    for o in outcomes {
        let j = serde_json::to_string(o).unwrap();
        assert!(!j.contains(SECRET), "the URL leaked into a task answer: {j}");
    }
}

async fn poll(deps: &Deps, source: &str, at: Instant) -> PollOutcome {
    poll_by_id(deps, source, at).await.unwrap()
}

fn counts(o: &PollOutcome) -> (PollStatus, u64, u64, u64) {
    (o.status, o.inserted, o.deleted, o.updated)
}

#[tokio::test]
async fn etag_304_and_a_changed_body_apply_only_the_diff() {
    let (db, deps) = setup().await;
    let current: Arc<Mutex<(String, String)>> = Arc::new(Mutex::new((v1(), "\"v1\"".into())));
    let shared = current.clone();
    let srv = TestServer::start(move |r: &Request| {
        let (body, etag) = shared.lock().unwrap().clone();
        if r.headers.get("if-none-match") == Some(&etag) {
            return Reply::status(304, &[("etag", &etag)]);
        }
        Reply::ok(body, &[("etag", &etag), ("content-type", "text/calendar")])
    })
    .await;
    let s = add_source(&db, "p1", &srv.url(&secret_path())).await;

    // First poll: everything is new.
    let first = poll(&deps, &s, now()).await;
    assert_eq!(counts(&first), (PollStatus::Ok, 5, 0, 0), "{first:?}");
    assert_eq!(rows(&db, &s).await.len(), 5, "a, b and three weekly occurrences");
    assert_eq!(state(&db, &s).await["etag"], "\"v1\"");
    assert!(!srv.requests()[0].headers.contains_key("if-none-match"), "nothing to validate yet");
    let version = outbox::version(&db.client, "p1").await.unwrap();
    assert!(version > 0);

    // Same day: a conditional GET, answered 304 — nothing written.
    let before = fingerprint(&db, &s).await;
    let events_before = outbox_types(&db).await;
    let second = poll(&deps, &s, now().plus_minutes(15)).await;
    assert_eq!(counts(&second), (PollStatus::Unchanged, 0, 0, 0), "{second:?}");
    assert_eq!(srv.requests()[1].headers.get("if-none-match").map(String::as_str), Some("\"v1\""));
    assert_eq!(fingerprint(&db, &s).await, before, "no row rewritten");
    assert_eq!(outbox_types(&db).await, events_before, "no event");
    assert_eq!(outbox::version(&db.client, "p1").await.unwrap(), version, "no version bump");

    // Changed: only the diff.
    *current.lock().unwrap() = (v2(), "\"v2\"".into());
    let third = poll(&deps, &s, now().plus_minutes(30)).await;
    assert_eq!(counts(&third), (PollStatus::Ok, 1, 1, 1), "{third:?}");
    let stored = rows(&db, &s).await;
    let uids: Vec<(&str, &str)> = stored.iter().map(|r| (r.0.as_str(), r.2.as_str())).collect();
    assert_eq!(
        uids,
        [
            ("a@test", "2026-03-05T12:00:00Z"),
            ("c@test", "2026-03-07T10:00:00Z"),
            ("w@test", "2026-03-03T08:00:00Z"),
            ("w@test", "2026-03-10T08:00:00Z"),
            ("w@test", "2026-03-17T08:00:00Z"),
        ]
    );
    assert_eq!(state(&db, &s).await["etag"], "\"v2\"");
    assert_eq!(outbox::version(&db.client, "p1").await.unwrap(), version + 1);
    let ok: Value = db
        .client
        .query_one(
            "select payload from cal.outbox where event_type = 'cal.ics.poll.ok' order by outbox_id desc limit 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!((ok["inserted"].as_u64(), ok["deleted"].as_u64(), ok["updated"].as_u64()), (Some(1), Some(1), Some(1)));
    assert_no_secret(&db, &[&first, &second, &third]).await;
}

#[tokio::test]
async fn without_validators_the_hash_says_unchanged() {
    let (db, deps) = setup().await;
    let srv = TestServer::start(|_: &Request| Reply::ok(v1(), &[])).await;
    let s = add_source(&db, "p1", &srv.url(&secret_path())).await;

    let first = poll(&deps, &s, now()).await;
    assert_eq!(counts(&first), (PollStatus::Ok, 5, 0, 0));
    let hash = state(&db, &s).await["content_hash"].clone();
    assert_eq!(hash.as_str().map(str::len), Some(64), "SHA-256 of the body stored");
    let before = fingerprint(&db, &s).await;
    let second = poll(&deps, &s, now().plus_minutes(15)).await;
    assert_eq!(counts(&second), (PollStatus::Unchanged, 0, 0, 0), "{second:?}");
    assert_eq!(fingerprint(&db, &s).await, before);
    let sent = &srv.requests()[1].headers;
    assert!(!sent.contains_key("if-none-match") && !sent.contains_key("if-modified-since"));

    // The next UTC day parses in full (the horizon moved), finding nothing new.
    let next_day = at("2026-03-03T06:00:00Z");
    let third = poll(&deps, &s, next_day).await;
    assert_eq!(counts(&third), (PollStatus::Ok, 0, 0, 0), "{third:?}");
    assert_eq!(fingerprint(&db, &s).await, before, "still nothing rewritten");
}

#[tokio::test]
async fn last_modified_is_sent_back_as_if_modified_since() {
    let (db, deps) = setup().await;
    let lm = "Mon, 02 Mar 2026 08:00:00 GMT";
    let srv = TestServer::start(move |r: &Request| {
        if r.headers.get("if-modified-since").map(String::as_str) == Some(lm) {
            return Reply::status(304, &[]);
        }
        Reply::ok(v1(), &[("last-modified", lm)])
    })
    .await;
    let s = add_source(&db, "p1", &srv.url(&secret_path())).await;
    assert_eq!(poll(&deps, &s, now()).await.status, PollStatus::Ok);
    assert_eq!(poll(&deps, &s, now().plus_minutes(15)).await.status, PollStatus::Unchanged);
}

#[tokio::test]
async fn an_html_body_is_rejected_and_the_last_good_data_stays() {
    let (db, deps) = setup().await;
    let html = Arc::new(Mutex::new(false));
    let flag = html.clone();
    let srv = TestServer::start(move |_: &Request| {
        if *flag.lock().unwrap() {
            Reply::ok("<!DOCTYPE html>\n<html><body>Sign in</body></html>", &[("content-type", "text/html")])
        } else {
            Reply::ok(v1(), &[])
        }
    })
    .await;
    let s = add_source(&db, "p1", &srv.url(&secret_path())).await;
    poll(&deps, &s, now()).await;
    let before = fingerprint(&db, &s).await;
    let version = outbox::version(&db.client, "p1").await.unwrap();

    *html.lock().unwrap() = true;
    let t = now().plus_minutes(15);
    let out = poll(&deps, &s, t).await;
    assert_eq!(out.status, PollStatus::Error);
    let error = out.error.clone().unwrap();
    assert!(error.contains("not an iCalendar file") && error.contains("line 1"), "{error}");
    assert_eq!(fingerprint(&db, &s).await, before, "every row kept");
    assert_eq!(outbox::version(&db.client, "p1").await.unwrap(), version);
    let st = state(&db, &s).await;
    assert_eq!((st["status"].as_str(), st["consecutive_failures"].as_i64()), (Some("error"), Some(1)));
    assert_eq!(st["last_error"].as_str(), Some(error.as_str()));
    let next = Instant::parse(st["next_poll_at"].as_str().unwrap()).unwrap();
    let wait = next.unix() - t.unix();
    assert!((270..=300).contains(&wait), "5 min less jitter: {wait}s");
    assert_eq!(outbox_types(&db).await.last().map(String::as_str), Some("cal.ics.poll.error"));
    assert_no_secret(&db, &[&out]).await;
}

#[tokio::test]
async fn limits_are_enforced_while_streaming_and_named() {
    let (db, deps) = setup().await;
    let srv = TestServer::start(|r: &Request| match r.path.as_str() {
        // No Content-Length: only counting while reading can stop it.
        p if p.starts_with("/endless") => Reply::Endless { chunk: vec![b'x'; 16 * 1024], max_chunks: 100_000 },
        p if p.starts_with("/declared") => Reply::ok(vec![b'x'; MAX_BYTES + 1], &[]),
        _ => Reply::ok(
            calendar(
                &(0..51)
                    .map(|i| event(&format!("e{i}"), "20260305T100000Z", "20260305T110000Z", "x"))
                    .collect::<Vec<_>>(),
            ),
            &[],
        ),
    })
    .await;
    let endless = add_source(&db, "p1", &srv.url(&format!("/endless/{SECRET}"))).await;
    let declared = add_source(&db, "p1", &srv.url(&format!("/declared/{SECRET}"))).await;
    let many = add_source(&db, "p1", &srv.url(&format!("/many/{SECRET}"))).await;

    // Stopped at the limit (the message says so), not at the timeout.
    let out = poll(&deps, &endless, now()).await;
    assert_eq!(out.status, PollStatus::Error);
    assert_eq!(out.error.as_deref(), Some("refused: the calendar is larger than the limit of 65536 bytes"));
    let out2 = poll(&deps, &declared, now()).await;
    assert_eq!(out2.error.as_deref(), Some("refused: the calendar is larger than the limit of 65536 bytes"));
    let out3 = poll(&deps, &many, now()).await;
    assert_eq!(out3.error.as_deref(), Some("calendar not imported: 51 events, over the limit of 50"));
    assert_eq!(db.count("select count(*) from cal.external_event").await, 0);
    assert_no_secret(&db, &[&out, &out2, &out3]).await;
}

#[tokio::test]
async fn redirects_are_counted_and_each_target_rechecked() {
    let (db, deps) = setup().await;
    let srv = Arc::new(Mutex::new(None::<String>));
    let base = srv.clone();
    let server = TestServer::start(move |r: &Request| {
        let base = base.lock().unwrap().clone().unwrap();
        let p = r.path.as_str();
        if let Some(n) =
            p.strip_prefix("/hop/").and_then(|rest| rest.split('/').next()).and_then(|n| n.parse::<u32>().ok())
        {
            return if n == 0 {
                Reply::ok(v1(), &[])
            } else {
                Reply::redirect(&format!("{base}/hop/{}/{SECRET}", n - 1))
            };
        }
        match p {
            p if p.starts_with("/to-metadata") => {
                Reply::redirect("http://169.254.169.254/latest/meta-data/iam/security-credentials/")
            }
            p if p.starts_with("/to-private") => Reply::redirect("http://10.0.0.1/internal.ics"),
            p if p.starts_with("/to-localhost") => {
                Reply::redirect(&format!("http://localhost:{}/hop/0/x", base.rsplit(':').next().unwrap()))
            }
            p if p.starts_with("/to-file") => Reply::redirect("file:///etc/passwd"),
            _ => Reply::status(404, &[]),
        }
    })
    .await;
    *srv.lock().unwrap() = Some(format!("http://{}", server.addr));

    let three = add_source(&db, "p1", &server.url(&format!("/hop/3/{SECRET}"))).await;
    let out = poll(&deps, &three, now()).await;
    assert_eq!(out.status, PollStatus::Ok, "three redirects are fine: {out:?}");

    let four = add_source(&db, "p1", &server.url(&format!("/hop/4/{SECRET}"))).await;
    let out4 = poll(&deps, &four, now()).await;
    assert_eq!(out4.error.as_deref(), Some("refused: more than 3 redirects"));
    let seen = server.requests().len();

    let mut outs = vec![out, out4];
    for (path, want) in [
        ("/to-metadata", "refused: the host 169.254.169.254 is (or resolves to) a local or private network address"),
        ("/to-private", "refused: the host 10.0.0.1 is (or resolves to) a local or private network address"),
        ("/to-localhost", "refused: the host localhost is local"),
        // reqwest does not follow a non-HTTP Location at all: the 302 is the answer.
        ("/to-file", "127.0.0.1 answered HTTP 302"),
    ] {
        let s = add_source(&db, "p1", &server.url(&format!("{path}/{SECRET}"))).await;
        let out = poll(&deps, &s, now()).await;
        assert_eq!(out.status, PollStatus::Error, "{path}");
        assert_eq!(out.error.as_deref(), Some(want), "{path}");
        outs.push(out);
    }
    assert_eq!(server.requests().len(), seen + 4, "each refused target was never requested");
    assert_no_secret(&db, &outs.iter().collect::<Vec<_>>()).await;
    // No Referer: it would carry the secret URL to the redirect's target.
    assert!(server.requests().iter().all(|r| !r.headers.contains_key("referer")));
}

#[tokio::test]
async fn the_production_policy_refuses_loopback() {
    let (db, deps) = setup_with(FetchPolicy::production(), limits()).await;
    let srv = TestServer::start(|_: &Request| Reply::ok(v1(), &[])).await;
    let s = add_source(&db, "p1", &srv.url(&secret_path())).await;
    let out = poll(&deps, &s, now()).await;
    assert_eq!(out.status, PollStatus::Error);
    assert_eq!(
        out.error.as_deref(),
        Some("refused: the host 127.0.0.1 is (or resolves to) a local or private network address")
    );
    for url in [
        format!("http://[::1]:{}/x", srv.addr.port()),
        format!("http://[::ffff:127.0.0.1]:{}/x", srv.addr.port()),
        format!("http://0x7f.1:{}/x", srv.addr.port()),
        format!("http://localhost:{}/x", srv.addr.port()),
        "http://169.254.169.254/latest/meta-data/".into(),
    ] {
        let err = deps.fetcher.fetch(&url, None).await.unwrap_err();
        assert!(
            matches!(err, FetchError::Refused(Refusal::PrivateAddress { .. } | Refusal::LocalName { .. })),
            "{url}: {err}"
        );
    }
    assert!(srv.requests().is_empty(), "the server was never reached");

    // A name (not an IP literal) that resolves to loopback goes through the
    // vetting resolver. The machine's own hostname does, on most machines.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_owned();
    let addrs: Vec<_> = match tokio::net::lookup_host((host.as_str(), 0)).await {
        Ok(a) => a.collect(),
        Err(_) => Vec::new(),
    };
    if host.is_empty() || addrs.is_empty() || !addrs.iter().all(|a| a.ip().is_loopback()) {
        eprintln!("skipped the resolver case: hostname {host:?} does not resolve to loopback only ({addrs:?})");
        return;
    }
    let url = format!("http://{host}:{}/x", srv.addr.port());
    let err = deps.fetcher.fetch(&url, None).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("refused: the host {host} is (or resolves to) a local or private network address")
    );
    assert!(srv.requests().is_empty());
    // With loopback allowed, the same name connects to the vetted address.
    let testing = Fetcher::new(test_policy()).unwrap();
    assert!(matches!(testing.fetch(&url, None).await.unwrap(), Fetched::Body { .. }));
    assert_eq!(srv.requests().len(), 1);
}

#[tokio::test]
async fn a_hanging_server_times_out() {
    let (db, deps) = setup().await;
    let srv = TestServer::start(|_: &Request| Reply::Hang).await;
    let s = add_source(&db, "p1", &srv.url(&secret_path())).await;
    let started = std::time::Instant::now();
    let out = poll(&deps, &s, now()).await;
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    assert_eq!(out.status, PollStatus::Error);
    assert_eq!(out.error.as_deref(), Some("127.0.0.1 did not answer in time"));
    assert_eq!(state(&db, &s).await["consecutive_failures"], 1);

    // An HTTP error status is an ordinary failure too.
    let srv2 = TestServer::start(|_: &Request| Reply::status(404, &[])).await;
    let s2 = add_source(&db, "p1", &srv2.url(&secret_path())).await;
    let out2 = poll(&deps, &s2, now()).await;
    assert_eq!(out2.error.as_deref(), Some("127.0.0.1 answered HTTP 404"));
    // And a refused connection.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let s3 = add_source(&db, "p1", &format!("http://127.0.0.1:{closed}/{SECRET}")).await;
    let out3 = poll(&deps, &s3, now()).await;
    assert_eq!(out3.error.as_deref(), Some("could not connect to 127.0.0.1"));
    assert_no_secret(&db, &[&out, &out2, &out3]).await;
}

#[tokio::test]
async fn the_handler_speaks_the_task_shapes() {
    let (db, deps) = setup().await;
    let srv = TestServer::start(|r: &Request| {
        if r.path.contains("html") { Reply::ok("<html></html>", &[]) } else { Reply::ok(v1(), &[("etag", "\"e\"")]) }
    })
    .await;
    let good = add_source(&db, "p1", &srv.url(&secret_path())).await;
    let bad = add_source(&db, "p2", &srv.url(&format!("/html/{SECRET}"))).await;

    let listed = handle(&deps, json!({"action": "list_due", "limit": 10})).await.unwrap();
    assert_eq!(listed, json!({"sources": [{"sourceId": good}, {"sourceId": bad}], "count": 2}));
    assert!(!listed.to_string().contains("http"), "ids only, never URLs");
    assert_eq!(
        handle(&deps, json!({"action": "list_due", "limit": 10})).await.unwrap(),
        json!({"sources": [], "count": 0}),
        "leased"
    );

    let ok = handle(&deps, json!({"action": "poll", "sourceId": good})).await.unwrap();
    assert_eq!(ok, json!({"sourceId": good, "status": "ok", "inserted": 5, "deleted": 0, "updated": 0, "warnings": 0}));
    let again = handle(&deps, json!({"action": "poll", "sourceId": good})).await.unwrap();
    assert_eq!(again["status"], "unchanged");
    let err = handle(&deps, json!({"action": "poll", "sourceId": bad})).await.unwrap();
    assert_eq!(err["status"], "error");
    assert!(
        err["error"].as_str().unwrap().starts_with("calendar not imported: line 1: not an iCalendar file"),
        "{err}"
    );
    let gone = handle(&deps, json!({"action": "poll", "sourceId": "src_gone"})).await.unwrap();
    assert_eq!(gone["status"], "skipped");

    for bad_task in [
        json!({"action": "poll"}),
        json!({"action": "explode"}),
        json!({"action": "poll", "sourceId": "x", "url": "y"}),
    ] {
        let e = handle(&deps, bad_task.clone()).await.unwrap_err();
        assert_eq!(e.error_type(), "INVALID_TASK", "{bad_task}");
    }
    assert_no_secret(&db, &[]).await;
}
