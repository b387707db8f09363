//! The AWS adapters against moto (local AWS) and a real PostgreSQL. A plain
//! timed binary, not criterion: every call crosses a network hop, and the
//! figures are medians of many calls.
//!
//! (a) Slots served from the DynamoDB feasibility cache (a warm entry at the
//!     current provider version: one version read in PostgreSQL plus one
//!     GetItem) vs computed by the engine (`cal_store::slots`: the calendar
//!     loaded from PostgreSQL, then the pure feasibility code). One provider,
//!     several weekly rules, ~200 confirmed events, a 60-day window. The two
//!     are timed alternately, so load on the machine hits both alike.
//! (b) Relay throughput: N outbox rows for U users, drained by
//!     `relay_outbox` with the `EventBridgePublisher` onto a custom bus
//!     (whose rule targets an SQS queue, as in the tests); events/s, then a
//!     check that every row has `published_at`. Then the same onto a bus
//!     without rules, to separate PutEvents from moto's routing to SQS.
//!
//! moto is a Python HTTP server: its latency is not DynamoDB's or
//! EventBridge's (real ones are typically a few ms per call within a region,
//! and PutEvents is throttled per account). Read (a) as "what the cache path
//! costs here", not as a production figure.
//!
//! Run (release profile), with both servers up:
//!
//! ```text
//! d=$(mktemp -d); eval "$(scripts/pg.sh start $d)"
//! m=$(mktemp -d); eval "$(scripts/moto.sh start $m)"
//! cargo bench -p cal-aws --bench aws [-- --calls 200 --events 2000 --users 50]
//! scripts/moto.sh stop $m; scripts/pg.sh stop $d
//! ```

use std::time::{Duration, Instant as Timer};

use aws_sdk_sqs::types::QueueAttributeName;
use cal_aws::cache::{CacheKey, Source, VersionedCache};
use cal_aws::testing::slots_through;
use cal_aws::testing::{BusWithQueue, create_table, moto, unique};
use cal_aws::{DynamoCache, EventBridgePublisher};
use cal_core::{BookingParams, Instant, LocalTime, SlotQuery, SlotRange, StepMinutes, WeekdayMask, WeeklyRule, Zone};
use cal_store::relay::unpublished_count;
use cal_store::testing::TestDb;
use cal_store::{RelayOptions, relay_outbox};

const NOW: &str = "2030-03-01T00:00:00Z";
const PROVIDER: &str = "prov-bench";
const ROLE: &str = "photographer";
const WINDOW_DAYS: i64 = 60;
const BUSY_EVENTS: i32 = 200;
const MOTO_NOTE: &str = "note: moto is a local Python HTTP server; its latency is not DynamoDB's/EventBridge's \
                         (figures show the cost of the code path here, not production latency)";

struct Options {
    calls: usize,
    events: usize,
    users: usize,
}

impl Options {
    fn from_args() -> Options {
        let mut o = Options { calls: 200, events: 2_000, users: 50 };
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut i = 0;
        while i < args.len() {
            // `cargo bench` passes --bench; anything unknown is ignored.
            let value = || args.get(i + 1).and_then(|v| v.parse::<usize>().ok()).filter(|&v| v > 0);
            let slot = match args[i].as_str() {
                "--calls" => Some(&mut o.calls),
                "--events" => Some(&mut o.events),
                "--users" => Some(&mut o.users),
                _ => None,
            };
            if let Some(slot) = slot {
                *slot = value().unwrap_or_else(|| panic!("{} takes a positive number", args[i]));
                i += 1;
            }
            i += 1;
        }
        o.calls = o.calls.max(100);
        o
    }
}

/// Both servers must be there; otherwise say how to start them and exit 1.
fn require_servers() {
    let mut missing = Vec::new();
    if !std::env::var("DATABASE_URL").is_ok_and(|v| !v.is_empty()) {
        missing.push("DATABASE_URL (PostgreSQL): d=$(mktemp -d); eval \"$(scripts/pg.sh start $d)\"   # stop: scripts/pg.sh stop $d");
    }
    if !std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| !v.is_empty()) {
        missing.push("AWS_ENDPOINT_URL (moto): m=$(mktemp -d); eval \"$(scripts/moto.sh start $m)\"   # stop: scripts/moto.sh stop $m");
    }
    if !missing.is_empty() {
        eprintln!("cal-aws bench: needs a PostgreSQL and a moto server. Missing:");
        for m in missing {
            eprintln!("  {m}");
        }
        eprintln!("then, in that shell: cargo bench -p cal-aws --bench aws");
        std::process::exit(1);
    }
}

fn at(s: &str) -> Instant {
    Instant::parse(s).unwrap()
}

fn rule(id: &str, mask: i64, start: &str, end: &str) -> WeeklyRule {
    WeeklyRule {
        rule_id: id.into(),
        user_id: PROVIDER.into(),
        role_code: ROLE.into(),
        weekday_mask: WeekdayMask::new(mask).unwrap(),
        start_local: LocalTime::parse(start).unwrap(),
        end_local: LocalTime::parse(end).unwrap(),
        timezone: Zone::parse("Europe/Berlin").unwrap(),
        // 60 min, 24 h lead time, a 90-day window: the whole query is bookable.
        params: BookingParams::new(Some(60), Some(24), Some(90)).unwrap(),
        active: true,
    }
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn pct(v: &[Duration], p: f64) -> Duration {
    // `v` sorted.
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn summary(name: &str, v: &mut [Duration]) -> Duration {
    let m = median(v);
    println!(
        "  {name:<34} median {:>8.3} ms   p10 {:>8.3}   p90 {:>8.3}   ({} calls)",
        ms(m),
        ms(pct(v, 0.1)),
        ms(pct(v, 0.9)),
        v.len()
    );
    m
}

/// (a) Cache hit vs engine.
async fn cache_vs_engine(sdk: &aws_config::SdkConfig, calls: usize) {
    let mut db = TestDb::new().await;
    for r in [
        rule("wr_weekday_morning", 0b001_1111, "09:00", "12:00"),
        rule("wr_weekday_afternoon", 0b001_1111, "13:00", "18:00"),
        rule("wr_tue_thu_evening", 0b000_1010, "18:30", "21:00"),
        rule("wr_saturday", 0b010_0000, "10:00", "14:00"),
        rule("wr_sunday", 0b100_0000, "11:00", "15:00"),
    ] {
        cal_store::put_rule(&mut db.client, &r).await.unwrap();
    }
    let now = at(NOW);
    // 200 confirmed one-hour events, one every 7 h 12 min over the 60 days.
    db.client
        .execute(
            "insert into cal.event (event_id, user_id, role_code, start_at, end_at, status, ics_uid, timezone)
             select 'ev_' || md5(i::text), $1, $2,
                    $3::timestamptz + i * interval '7 hours 12 minutes',
                    $3::timestamptz + i * interval '7 hours 12 minutes' + interval '1 hour',
                    'confirmed', 'ev_' || md5(i::text) || '@cal', 'Europe/Berlin'
               from generate_series(0, $4::int - 1) i",
            &[&PROVIDER, &ROLE, &now.plus_minutes(24 * 60).to_chrono(), &BUSY_EVENTS],
        )
        .await
        .unwrap();
    // A write bumps the version as the store does, so the cache stamp is real.
    cal_store::outbox::bump_version(&db.client, PROVIDER).await.unwrap();

    let range = SlotRange::new(now, now.plus_secs(WINDOW_DAYS * 86_400), Some(60), StepMinutes::default()).unwrap();
    let query = SlotQuery { user_id: PROVIDER.into(), role_code: ROLE.into(), range };
    let table = create_table(sdk, "bench-feas").await;
    let cache = DynamoCache::new(aws_sdk_dynamodb::Client::new(sdk), &table, 3600);

    // Fill the cache, check the hit, warm both paths up.
    let (body, src) = slots_through(&db.client, &cache, &query, now).await;
    assert_eq!(src, Source::Engine, "the first read computes");
    let answer = cal_store::slots(&db.client, &query, now).await.unwrap();
    println!(
        "(a) slots, one provider: 5 weekly rules, {BUSY_EVENTS} busy events, {WINDOW_DAYS}-day window, 60-min slots: \
         {} slots, {} free intervals, cached body {} bytes",
        answer.slots.len(),
        answer.free.len(),
        body.len()
    );
    for _ in 0..10 {
        let (b, src) = slots_through(&db.client, &cache, &query, now).await;
        assert_eq!(src, Source::Cache, "a warm cache serves");
        assert_eq!(b, body);
        cal_store::slots(&db.client, &query, now).await.unwrap();
    }

    let key = CacheKey::slots(&query);
    let (mut hit, mut engine, mut engine_json, mut version, mut get) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut misses = 0;
    for _ in 0..calls {
        let t = Timer::now();
        let (_, src) = slots_through(&db.client, &cache, &query, now).await;
        hit.push(t.elapsed());
        if src != Source::Cache {
            misses += 1;
        }

        let t = Timer::now();
        std::hint::black_box(cal_store::slots(&db.client, &query, now).await.unwrap());
        engine.push(t.elapsed());

        // What a handler would do with an engine answer: serialize it.
        let t = Timer::now();
        let a = cal_store::slots(&db.client, &query, now).await.unwrap();
        std::hint::black_box(serde_json::to_string(&a).unwrap());
        engine_json.push(t.elapsed());
        std::hint::black_box(a);

        // The hit's two parts.
        let t = Timer::now();
        cal_store::outbox::version(&db.client, PROVIDER).await.unwrap();
        version.push(t.elapsed());
        let t = Timer::now();
        VersionedCache::get(&cache, &key).await.unwrap().unwrap();
        get.push(t.elapsed());
    }
    let cached = summary("slots through the cache (warm, hit)", &mut hit);
    let computed = summary("cal_store::slots (computed)", &mut engine);
    summary("cal_store::slots + to_string", &mut engine_json);
    println!("  of the hit:");
    summary("  version read (PostgreSQL)", &mut version);
    summary("  GetItem (moto DynamoDB)", &mut get);
    println!(
        "  ratio computed/cached = {:.2}x   (misses during timing: {misses})",
        computed.as_secs_f64() / cached.as_secs_f64()
    );
    println!("  {MOTO_NOTE}");
}

/// `events` outbox rows for `users` users in a fresh database.
async fn outbox_rows(events: usize, users: usize) -> TestDb {
    let db = TestDb::new().await;
    db.client
        .execute(
            "insert into cal.outbox (event_type, user_id, payload)
             select 'cal.rule.updated', 'prov-' || (i % $2::int), jsonb_build_object('seq', i, 'rule_id', 'wr_' || i)
               from generate_series(0, $1::int - 1) i",
            &[&(events as i32), &(users as i32)],
        )
        .await
        .unwrap();
    db
}

/// Runs the relay until the outbox is empty (or stops moving); prints the
/// rate and the `published_at` check.
async fn drain(db: &mut TestDb, publisher: &EventBridgePublisher, events: usize) {
    let opts = RelayOptions { batch: 100, max_batches: 10_000, attempts: 5, backoff: Duration::from_millis(10) };
    let t = Timer::now();
    let (mut published, mut failed, mut batches, mut runs) = (0, 0, 0, 0);
    loop {
        let report = relay_outbox(&mut db.client, publisher, opts).await.unwrap();
        runs += 1;
        published += report.published;
        failed += report.failed;
        batches += report.batches;
        if report.published == 0 || unpublished_count(&db.client).await.unwrap() == 0 || runs >= 50 {
            break;
        }
    }
    let elapsed = t.elapsed();
    println!(
        "  published {published} in {:.2} s = {:.0} events/s   ({runs} run(s), {batches} batches, {failed} entry failures)",
        elapsed.as_secs_f64(),
        published as f64 / elapsed.as_secs_f64()
    );
    let row = db
        .client
        .query_one("select count(*), count(published_at), count(*) filter (where published_at is null) from cal.outbox", &[])
        .await
        .unwrap();
    let (total, set, null): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    println!(
        "  published_at set on {set} of {total} rows ({null} null) -> {}",
        if set == total && total == events as i64 { "OK" } else { "NOT ALL PUBLISHED" }
    );
}

/// (b) Relay throughput onto the bus: with the tests' wiring (a rule
/// targeting SQS), then onto a bus without rules (PutEvents alone).
async fn relay_throughput(sdk: &aws_config::SdkConfig, events: usize, users: usize) {
    let ebr = aws_sdk_eventbridge::Client::new(sdk);

    println!("(b) relay: {events} outbox rows for {users} users -> EventBridgePublisher -> moto custom bus");
    println!(" bus with a rule (source = cal) targeting an SQS queue, as in the tests:");
    let mut db = outbox_rows(events, users).await;
    let bus = BusWithQueue::create(sdk, "cal").await;
    let publisher = EventBridgePublisher::new(ebr.clone(), &bus.bus, "cal");
    drain(&mut db, &publisher, events).await;
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let queued = sqs
        .get_queue_attributes()
        .queue_url(&bus.queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .ok()
        .and_then(|o| o.attributes)
        .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages).cloned())
        .unwrap_or_else(|| "?".into());
    println!("  messages the bus delivered to its SQS target: {queued}");
    drop(db);

    println!(" bus without rules (PutEvents alone, nothing routed):");
    let mut db = outbox_rows(events, users).await;
    let bare = unique("bench-bus");
    ebr.create_event_bus().name(&bare).send().await.expect("create bus");
    let publisher = EventBridgePublisher::new(ebr.clone(), &bare, "cal");
    drain(&mut db, &publisher, events).await;
    println!("  {MOTO_NOTE}; real PutEvents is also throttled per account/region");
}

fn main() {
    require_servers();
    let o = Options::from_args();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let sdk = moto().await;
        println!("cal-aws bench against moto at {} and PostgreSQL", std::env::var("AWS_ENDPOINT_URL").unwrap());
        cache_vs_engine(&sdk, o.calls).await;
        relay_throughput(&sdk, o.events, o.users).await;
    });
}
