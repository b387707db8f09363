//! What the fn-feed tests share: a fresh database per test (migrations
//! applied) behind real `Deps`, a clock the test moves, bookings made through
//! `cal_store` as the resolvers make them, the payloads of `events/feed/`, and
//! the two independent ICS readers every feed and attachment goes through.

#![allow(dead_code)] // each test binary uses a different part

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_lambda_events::http::HeaderMap;
use aws_lambda_events::lambda_function_urls::{LambdaFunctionUrlRequest, LambdaFunctionUrlResponse};
use cal_core::availability::{BookingParams, WeekdayMask, WeeklyRule};
use cal_core::holds::{HoldKind, HoldMode, HoldRequest, HoldRequestInput};
use cal_core::ics_in::{ImportLimits, import};
use cal_core::time::{Instant, LocalTime, Zone};
use cal_store::{EventRecord, FeedToken};
pub use cal_store::testing::TestDb;
use fn_feed::{Deps, FeedSettings, handle};
use serde_json::{Value, json};

// The clock every test starts at (bookings are made for the days after),
// the provider and role: the fixture every crate's tests share.
#[allow(unused_imports)]
pub use cal_store::testing::fixture::{NOW, PROVIDER, ROLE, at};

pub use cal_store::testing::Clock;

/// A fresh database with one provider available around the clock (UTC,
/// 30 min minimum, no lead time, 60-day window), the handler's `Deps`, the
/// clock, and the readers that check every calendar the test produces.
pub struct Fixture {
    pub db: TestDb,
    pub deps: Deps,
    pub clock: Clock,
    pub readers: Readers,
    keys: AtomicU32,
}

impl Fixture {
    pub async fn new() -> Fixture {
        Fixture::with_settings(FeedSettings::default()).await
    }

    pub async fn with_settings(feed: FeedSettings) -> Fixture {
        let mut db = TestDb::new().await;
        cal_store::put_rule(&mut db.client, &rule(PROVIDER)).await.unwrap();
        let clock = Clock::at(NOW);
        let c = clock.clone();
        let deps =
            Deps { pool: cal_store::pool_from_url(&db.url(), 4).expect("pool"), feed, clock: Arc::new(move || c.now()) };
        Fixture { db, deps, clock, readers: Readers::new(), keys: AtomicU32::new(0) }
    }

    pub async fn create_feed(&mut self, user: &str) -> FeedToken {
        cal_store::create_feed(&mut self.db.client, user, self.clock.now()).await.unwrap()
    }

    fn request(&self, start: &str, end: &str, kind: HoldKind, event_id: Option<&str>) -> HoldRequest {
        HoldRequest::new(HoldRequestInput {
            user_id: PROVIDER.into(),
            role_code: ROLE.into(),
            customer_id: Some("cust-ben".into()),
            start: at(start),
            end: at(end),
            kind: Some(kind),
            mode: Some(HoldMode::Instant),
            event_id: event_id.map(str::to_owned),
            ttl_min: None,
            step_min: None,
            idempotency_key: format!("key-{}", self.keys.fetch_add(1, Ordering::Relaxed)),
        })
        .unwrap()
    }

    /// A confirmed booking, made as the order service makes it: a checkout
    /// hold, then `order.booked`.
    pub async fn book(&mut self, start: &str, end: &str) -> EventRecord {
        let now = self.clock.now();
        let req = self.request(start, end, HoldKind::Checkout, None);
        let hold = cal_store::create_hold(&self.db.client, &req, now).await.unwrap();
        cal_store::confirm_hold(&mut self.db.client, &hold.hold_id, now).await.unwrap()
    }

    /// Moves `event` (a reschedule hold, then `order.rescheduled`).
    pub async fn reschedule(&mut self, event: &EventRecord, start: &str, end: &str) -> EventRecord {
        let now = self.clock.now();
        let req = self.request(start, end, HoldKind::Reschedule, Some(&event.event_id));
        let hold = cal_store::create_hold(&self.db.client, &req, now).await.unwrap();
        cal_store::reschedule_event(&mut self.db.client, &event.event_id, &hold.hold_id, now).await.unwrap()
    }

    /// Cancels `event` (`order.cancelled`).
    pub async fn cancel(&mut self, event: &EventRecord) -> EventRecord {
        cal_store::cancel_event(&mut self.db.client, &event.event_id, self.clock.now()).await.unwrap()
    }

    /// `events/feed/get.json` for `token`, with `If-None-Match: tag` if given.
    pub async fn get(&self, token: &str, if_none_match: Option<&str>) -> LambdaFunctionUrlResponse {
        let mut req = payload("get", &[("token", token)]);
        if let Some(tag) = if_none_match {
            req.headers.insert("if-none-match", tag.parse().unwrap());
        }
        handle(&self.deps, req).await
    }

    /// Asserts `response` is a feed of exactly `expected` (in this order),
    /// reads it back with our own importer to exactly their busy intervals,
    /// and queues it for the independent readers. Returns the ETag.
    pub fn expect_feed(&mut self, name: &str, response: &LambdaFunctionUrlResponse, expected: &[&EventRecord]) -> String {
        assert_eq!(response.status_code, 200, "{name}: {response:?}");
        assert_eq!(header(&response.headers, "content-type"), Some("text/calendar; charset=utf-8"));
        assert_eq!(header(&response.headers, "cache-control"), Some("private, max-age=300"));
        let tag = header(&response.headers, "etag").expect("an ETag").to_owned();
        let body = response.body.as_deref().expect("a body");
        assert_eq!(body.matches("BEGIN:VEVENT\r\n").count(), expected.len(), "{name}:\n{body}");

        let horizon = self.deps.feed.horizon(self.clock.now());
        let imported = import(body.as_bytes(), Zone::parse("UTC").unwrap(), horizon.from, horizon.to, ImportLimits::default())
            .unwrap_or_else(|e| panic!("{name}: our importer rejects the feed: {e}"));
        assert!(imported.warnings.is_empty(), "{name}: {:?}", imported.warnings);
        assert_eq!(imported.events, expected.len());
        let busy: Vec<(Instant, Instant, &str)> = imported.busy.iter().map(|b| (b.start, b.end, b.uid.as_str())).collect();
        let mut want: Vec<(Instant, Instant, &str)> = expected.iter().map(|e| (e.start, e.end, e.ics_uid.as_str())).collect();
        want.sort();
        assert_eq!(busy, want, "{name}: busy time read back from the feed");

        self.readers.add(name, body, Some("PUBLISH"), Some(&self.deps.feed.calendar_name), expected);
        tag
    }

    /// The e-mail attachment of `event` now, queued for the readers.
    pub fn attachment(&mut self, name: &str, event: &EventRecord) -> String {
        let text = cal_core::ics_out::attachment(&event.invite(), self.clock.now());
        let method = if event.status == cal_core::EventStatus::Cancelled { "CANCEL" } else { "REQUEST" };
        self.readers.add(name, &text, Some(method), None, &[event]);
        text
    }
}

/// Available every day, all day (UTC), 30 min minimum, no lead, 60-day window.
pub fn rule(user: &str) -> WeeklyRule {
    WeeklyRule {
        rule_id: format!("wr_{user}"),
        user_id: user.into(),
        role_code: ROLE.into(),
        weekday_mask: WeekdayMask::new(127).unwrap(),
        start_local: LocalTime::parse("00:00").unwrap(),
        end_local: LocalTime::parse("00:00").unwrap(),
        timezone: Zone::parse("UTC").unwrap(),
        params: BookingParams::new(Some(30), Some(0), Some(60)).unwrap(),
        active: true,
    }
}

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/feed")
}

/// Names (without `.json`) of every payload in events/feed, sorted.
pub fn event_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(events_dir())
        .expect("events/feed exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// `events/feed/NAME.json` with `{{placeholder}}`s replaced (values are
/// JSON-escaped: an ETag holds quotes), as the runtime would deserialize it.
pub fn payload(name: &str, values: &[(&str, &str)]) -> LambdaFunctionUrlRequest {
    let path = events_dir().join(format!("{name}.json"));
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for (key, value) in values {
        let escaped = serde_json::to_string(value).unwrap();
        text = text.replace(&format!("{{{{{key}}}}}"), &escaped[1..escaped.len() - 1]);
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}.json is not a Function URL request: {e}"))
}

/// Every calendar a test produced, written to a directory of its own and
/// checked by both independent readers (scripts/ics-readers.sh: Python
/// `icalendar`, Node `ical.js`). Skipped only when `CAL_SKIP_READERS=1`,
/// and then loudly; a fixture dropped with unchecked files fails the test.
pub struct Readers {
    dir: PathBuf,
    files: Vec<Value>,
}

static READER_DIRS: AtomicU32 = AtomicU32::new(0);

impl Readers {
    fn new() -> Readers {
        let dir = std::env::temp_dir().join(format!(
            "fn-feed-ics-{}-{}",
            std::process::id(),
            READER_DIRS.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Readers { dir, files: Vec::new() }
    }

    /// Writes `text` as NAME.ics and records what the readers must find.
    pub fn add(&mut self, name: &str, text: &str, method: Option<&str>, calname: Option<&str>, events: &[&EventRecord]) {
        let path = self.dir.join(format!("{:02}-{name}.ics", self.files.len()));
        std::fs::write(&path, text).unwrap();
        let events: Vec<Value> = events
            .iter()
            .map(|e| {
                json!({
                    "uid": e.ics_uid,
                    "sequence": e.sequence,
                    "start": e.start.rfc3339(),
                    "end": e.end.rfc3339(),
                    "status": if e.status == cal_core::EventStatus::Cancelled { "CANCELLED" } else { "CONFIRMED" },
                })
            })
            .collect();
        self.files.push(json!({ "path": path, "method": method, "calname": calname, "events": events }));
    }

    /// Runs both readers over everything added so far.
    pub fn check(&mut self) {
        let files = std::mem::take(&mut self.files);
        assert!(!files.is_empty(), "nothing for the readers to check");
        if std::env::var("CAL_SKIP_READERS").as_deref() == Ok("1") {
            eprintln!("ics-readers: SKIPPED for {} calendars (CAL_SKIP_READERS=1): not validated", files.len());
            let _ = std::fs::remove_dir_all(&self.dir);
            return;
        }
        let manifest = self.dir.join("manifest.json");
        std::fs::write(&manifest, serde_json::to_vec_pretty(&json!({ "files": files })).unwrap()).unwrap();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/ics-readers.sh");
        let out = Command::new(&script)
            .arg("check")
            .arg(&manifest)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprint!("{stdout}");
        assert!(
            out.status.success(),
            "the independent readers disagree with {} (files kept in {}):\n{stdout}{stderr}\n\
             (set CAL_SKIP_READERS=1 only where Python and Node cannot be installed)",
            manifest.display(),
            self.dir.display()
        );
        // Both readers said so, each once per file set.
        assert_eq!(stdout.matches(": ok").count(), 2, "{stdout}");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Readers {
    fn drop(&mut self) {
        if !self.files.is_empty() && !std::thread::panicking() {
            panic!("{} calendars were produced but never given to the readers: call readers.check()", self.files.len());
        }
    }
}
