//! The feed body for a provider with 10,000 events: time (target ≤ 20 ms)
//! and allocations (target: one the size of the body, the body itself),
//! counted by a global allocator of this binary. Next to it, Python
//! icalendar building and serialising the same events
//! (scripts/ics-readers.sh bench-python). With DATABASE_URL, also the whole
//! handler against PostgreSQL: token, version, 10,000 rows, body; and a 304.
//!
//! `cargo bench -p fn-feed --bench feed` (release profile).

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant as Clock};

use cal_core::EventStatus;
use cal_core::ics_out::{self, EventInvite};
use cal_core::time::{Instant, Zone};
use cal_store::EventRecord;
use fn_feed::{Deps, FeedSettings, handle};

const EVENTS: usize = 10_000;
const ROUNDS: usize = 30;
const NOW: &str = "2030-03-01T00:00:00Z";
const PROVIDER: &str = "prov-bench";

/// Counts allocations (and growing reallocations) while `ON` is set, and
/// separately those of at least `THRESHOLD` bytes.
struct Counting;

static ON: AtomicUsize = AtomicUsize::new(0);
static ALL: AtomicUsize = AtomicUsize::new(0);
static LARGE: AtomicUsize = AtomicUsize::new(0);
static THRESHOLD: AtomicUsize = AtomicUsize::new(usize::MAX);

fn count(size: usize) {
    if ON.load(Ordering::Relaxed) == 1 {
        ALL.fetch_add(1, Ordering::Relaxed);
        if size >= THRESHOLD.load(Ordering::Relaxed) {
            LARGE.fetch_add(1, Ordering::Relaxed);
        }
    }
}

// SAFETY: every call is passed straight to the system allocator with the
// caller's arguments; counting touches only atomics and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            count(new_size);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` (all, and of at least `threshold` bytes).
fn allocations<T>(threshold: usize, f: impl FnOnce() -> T) -> (T, usize, usize) {
    THRESHOLD.store(threshold, Ordering::SeqCst);
    ALL.store(0, Ordering::SeqCst);
    LARGE.store(0, Ordering::SeqCst);
    ON.store(1, Ordering::SeqCst);
    let out = f();
    ON.store(0, Ordering::SeqCst);
    (out, ALL.load(Ordering::SeqCst), LARGE.load(Ordering::SeqCst))
}

/// 30-minute bookings every 55 minutes from 29 days back: 10,000 of them
/// reach ~353 days ahead, all inside the default horizon.
fn records(now: Instant) -> Vec<EventRecord> {
    let first = now.plus_minutes(-29 * 24 * 60);
    (0..EVENTS)
        .map(|i| {
            let id = format!("ev_{:032x}", (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835));
            let start = first.plus_minutes(55 * i as i64);
            EventRecord {
                ics_uid: format!("{id}@cal"),
                event_id: id,
                user_id: PROVIDER.into(),
                role_code: "photographer".into(),
                customer_id: Some(format!("cust-{i}")),
                hold_id: None,
                start,
                end: start.plus_minutes(30),
                status: EventStatus::Confirmed,
                sequence: (i % 3) as i32,
                summary: None,
                timezone: Zone::parse("Europe/Berlin").unwrap(),
                created_at: now,
                updated_at: now,
            }
        })
        .collect()
}

/// What the handler does once the rows are loaded.
fn generate(records: &[EventRecord], name: &str, stamp: Instant) -> String {
    let invites: Vec<EventInvite> = records.iter().map(|r| r.invite()).collect();
    ics_out::feed_body(name, &invites, stamp)
}

fn stats(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(samples[samples.len() / 2]), ms(samples[0]))
}

fn main() {
    // `cargo bench` passes `--bench`; filters are not supported here.
    let now = Instant::parse(NOW).unwrap();
    let settings = FeedSettings::default();
    let records = records(now);
    let body = generate(&records, &settings.calendar_name, now);
    let size = body.len();
    assert_eq!(body.matches("BEGIN:VEVENT\r\n").count(), EVENTS);

    let mut samples = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Clock::now();
        let b = generate(&records, &settings.calendar_name, now);
        samples.push(t.elapsed());
        assert_eq!(b.len(), size);
    }
    let (median, best) = stats(samples);
    let invites: Vec<EventInvite> = records.iter().map(|r| r.invite()).collect();
    let mut body_only = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Clock::now();
        std::hint::black_box(ics_out::feed_body(&settings.calendar_name, &invites, now));
        body_only.push(t.elapsed());
    }
    let (body_median, _) = stats(body_only);
    let (b, all, large) = allocations(size, || generate(&records, &settings.calendar_name, now));
    let capacity = b.capacity();
    drop(b);

    println!("fn-feed bench: {EVENTS} events, body {size} bytes (capacity {capacity})");
    println!(
        "rust feed generation (rows -> invites -> body): median {median:.2} ms, best {best:.2} ms over {ROUNDS} rounds \
         (target <= 20 ms: {}); body alone {body_median:.2} ms",
        if median <= 20.0 { "met" } else { "MISSED" }
    );
    println!("allocations >= body size: {large} (of {all} allocations in one generation)");

    python(&records, &settings.calendar_name, now);
    end_to_end(&settings);
}

/// Python icalendar on the same events, through the readers' harness.
fn python(records: &[EventRecord], name: &str, stamp: Instant) {
    if std::env::var("CAL_SKIP_READERS").as_deref() == Ok("1") {
        println!("python icalendar: SKIPPED (CAL_SKIP_READERS=1)");
        return;
    }
    let events: Vec<serde_json::Value> = records
        .iter()
        .map(|r| {
            let i = r.invite();
            serde_json::json!({
                "uid": i.uid, "sequence": i.sequence, "start": i.start.rfc3339(), "end": i.end.rfc3339(),
                "summary": i.summary, "status": "CONFIRMED",
            })
        })
        .collect();
    let file = std::env::temp_dir().join(format!("fn-feed-bench-{}.json", std::process::id()));
    let data = serde_json::json!({ "calname": name, "dtstamp": stamp.rfc3339(), "events": events });
    std::fs::write(&file, serde_json::to_vec(&data).unwrap()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/ics-readers.sh");
    let out = Command::new(script).arg("bench-python").arg(&file).arg("3").output().expect("run scripts/ics-readers.sh");
    let _ = std::fs::remove_file(&file);
    print!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(out.status.success(), "python bench failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

/// The whole handler against PostgreSQL (DATABASE_URL), if there is one.
fn end_to_end(settings: &FeedSettings) {
    if std::env::var("DATABASE_URL").is_err() {
        println!("end to end: SKIPPED (DATABASE_URL not set)");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let mut db = cal_store::testing::TestDb::new().await;
        let now = Instant::parse(NOW).unwrap();
        db.client
            .execute(
                "insert into cal.event (event_id, user_id, role_code, start_at, end_at, status, sequence, ics_uid, timezone)
                 select 'ev_' || md5(i::text), $1, 'photographer',
                        $2::timestamptz + i * interval '55 minutes',
                        $2::timestamptz + i * interval '55 minutes' + interval '30 minutes',
                        'confirmed', i % 3, 'ev_' || md5(i::text) || '@cal', 'Europe/Berlin'
                   from generate_series(0, $3::int - 1) i",
                &[&PROVIDER, &now.plus_minutes(-29 * 24 * 60).to_chrono(), &(EVENTS as i32)],
            )
            .await
            .unwrap();
        let feed = cal_store::create_feed(&mut db.client, PROVIDER, now).await.unwrap();
        let deps = Deps {
            pool: cal_store::pool_from_url(&db.url(), 2).unwrap(),
            feed: settings.clone(),
            clock: Arc::new(move || now),
        };
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/feed/get.json");
        let text = std::fs::read_to_string(path).unwrap().replace("{{token}}", &feed.token);
        let request: aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest =
            serde_json::from_str(&text).unwrap();

        let first = handle(&deps, request.clone()).await;
        let size = first.body.as_ref().map_or(0, String::len);
        assert_eq!(first.status_code, 200);
        let tag = first.headers["etag"].clone();
        let mut full = Vec::new();
        let mut not_modified = Vec::new();
        for _ in 0..10 {
            let t = Clock::now();
            let r = handle(&deps, request.clone()).await;
            full.push(t.elapsed());
            assert_eq!(r.status_code, 200);
            let mut conditional = request.clone();
            conditional.headers.insert("if-none-match", tag.clone());
            let t = Clock::now();
            let r = handle(&deps, conditional).await;
            not_modified.push(t.elapsed());
            assert_eq!(r.status_code, 304);
        }
        let (full_median, _) = stats(full);
        let (nm_median, _) = stats(not_modified);
        println!(
            "end to end on PostgreSQL: 200 with {EVENTS} events ({size} bytes) median {full_median:.1} ms; \
             304 median {nm_median:.2} ms"
        );
    });
}
