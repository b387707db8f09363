//! Two-way sync latency, end to end on one machine: a fresh database on the
//! PostgreSQL of `DATABASE_URL`, the protocol fakes of Google Calendar and
//! Microsoft Graph, our receivers over HTTP on 127.0.0.1, an in-memory
//! stand-in for the SQS queue, and the worker running concurrently in a
//! task that long-polls the queue and calls the Lambda handler with
//! batches of up to ten records, as Lambda's SQS event source does (the
//! rig of `fn_sync_worker::testing`, which the tests use too).
//!
//! (a) Remote change → bookable slots: from the mutation in the fake
//!     calendar (an event added over an open slot, or deleted again) to the
//!     moment `cal_store::slots` no longer offers (again offers) that slot,
//!     polled every millisecond or so on a connection of its own. The path
//!     is the fake's notification POSTed to the receiver, the receiver's job
//!     on the queue, the poller's batch, the worker's check of the
//!     notification's proof, its incremental read of the fake calendar and
//!     the transaction that writes the busy rows. Google's fake sends its
//!     notifications by itself; Graph's sends them when told, which the
//!     bench does right after the mutation (inside the timed span).
//!     Target: p95 ≤ 5 s.
//! (b) Booking → remote calendar: from `confirm_hold` (the hold is made
//!     before the clock starts) and the push job queued as the bus's rule
//!     would queue it, to the event existing in the fake calendar with our
//!     event id on it.
//!
//! Run: `cargo bench -p fn-sync-worker --bench sync [-- --changes 200 --bookings 100 --service google|microsoft|both]`.

use std::time::{Duration, Instant as Timer};

use cal_core::holds::HoldKind;
use cal_core::time::Interval;
use cal_store::sync::{self, CalendarUse};
use cal_store::testing::fixture::PROVIDER;
use cal_sync::jobs::SyncJob;
use cal_sync::{ServiceKind, google, microsoft};
use chrono::NaiveDate;
use fn_sync_worker::testing::{Rig, hold_request, monday, span};
use serde_json::json;
use sync_fakes::microsoft::NewEvent;

/// The longest any one change may take before the bench gives up.
const GIVE_UP: Duration = Duration::from_secs(30);

struct Options {
    changes: usize,
    bookings: usize,
    services: Vec<ServiceKind>,
}

impl Options {
    fn from_args() -> Options {
        let mut o = Options { changes: 200, bookings: 100, services: vec![ServiceKind::Google, ServiceKind::Microsoft] };
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut i = 0;
        while i < args.len() {
            let value = args.get(i + 1).map(String::as_str).unwrap_or("");
            let count = || value.parse::<usize>().ok().filter(|&v| v > 0).unwrap_or_else(|| panic!("{} takes a positive number", args[i]));
            // `cargo bench` passes --bench; anything unknown is ignored the same way.
            match args[i].as_str() {
                "--changes" => o.changes = count(),
                "--bookings" => o.bookings = count(),
                "--service" => {
                    o.services = match value {
                        "both" => vec![ServiceKind::Google, ServiceKind::Microsoft],
                        other => vec![ServiceKind::parse(other).expect("--service google, microsoft or both")],
                    }
                }
                _ => {
                    i += 1;
                    continue;
                }
            }
            i += 2;
        }
        o
    }
}

/// The calendar bookings and test events go to.
fn calendar(rig: &Rig, service: ServiceKind) -> String {
    match service {
        ServiceKind::Google => sync_fakes::google::ACCOUNT.into(),
        ServiceKind::Microsoft => rig.graph.default_calendar(),
    }
}

/// Adds an event over `iv` to the fake calendar (and, for Graph, sends its
/// notification); returns its id.
async fn add(rig: &Rig, service: ServiceKind, iv: Interval) -> String {
    let cal = calendar(rig, service);
    match service {
        ServiceKind::Google => rig.google.create(
            &cal,
            json!({"summary": "busy", "start": {"dateTime": iv.start().rfc3339()}, "end": {"dateTime": iv.end().rfc3339()}}),
        ),
        ServiceKind::Microsoft => {
            let id = rig.graph.add_event(&cal, NewEvent::timed(&iv.start().rfc3339(), &iv.end().rfc3339()));
            rig.graph.deliver_notifications().await;
            id
        }
    }
}

async fn delete(rig: &Rig, service: ServiceKind, id: &str) {
    match service {
        ServiceKind::Google => rig.google.delete(&calendar(rig, service), id),
        ServiceKind::Microsoft => {
            rig.graph.delete_event(id);
            rig.graph.deliver_notifications().await;
        }
    }
}

/// Whether our booking `event_id` is in the fake calendar.
fn written(rig: &Rig, service: ServiceKind, event_id: &str) -> bool {
    let cal = calendar(rig, service);
    match service {
        ServiceKind::Google => !rig.google.visible_with_property(&cal, google::EVENT_ID_PROPERTY, event_id).is_empty(),
        ServiceKind::Microsoft => {
            rig.graph.events(&cal).iter().any(|e| e.extended.get(microsoft::EVENT_ID_PROPERTY).is_some_and(|v| v == event_id))
        }
    }
}

/// Waits until `done` holds, checking about every millisecond.
async fn until<F: AsyncFnMut() -> bool>(what: &str, mut done: F) {
    let started = Timer::now();
    while !done().await {
        assert!(started.elapsed() < GIVE_UP, "{what}: not seen within {GIVE_UP:?}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// (a): `n` changes, alternately an event over an open slot and its deletion.
async fn remote_changes(rig: &Rig, service: ServiceKind, n: usize) -> Vec<Duration> {
    let first = monday(rig.clock.now());
    let mut times = Vec::with_capacity(n);
    let mut open: Option<(String, NaiveDate, Interval)> = None;
    for i in 0..n {
        let t0 = Timer::now();
        match open.take() {
            None => {
                // A week of days, ten hours (08–18) each.
                let k = i / 2;
                let (day, hour) = (first + chrono::Duration::days((k % 7) as i64), 8 + (k / 7 % 10) as u32);
                let iv = span(day, hour, hour + 1);
                let id = add(rig, service, iv).await;
                until("the slot taken", async || !rig.slot_starts(day).await.contains(&iv.start())).await;
                open = Some((id, day, iv));
            }
            Some((id, day, iv)) => {
                delete(rig, service, &id).await;
                until("the slot free again", async || rig.slot_starts(day).await.contains(&iv.start())).await;
            }
        }
        times.push(t0.elapsed());
    }
    times
}

/// (b): `n` bookings, each confirmed and pushed, until it is in the fake calendar.
async fn bookings(rig: &mut Rig, service: ServiceKind, n: usize) -> Vec<Duration> {
    // The weeks after (a)'s: ten hourly slots a day.
    let first = monday(rig.clock.now()) + chrono::Duration::days(7);
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let iv = span(first + chrono::Duration::days((i / 10) as i64), 8 + (i % 10) as u32, 9 + (i % 10) as u32);
        let now = rig.clock.now();
        let hold = cal_store::create_hold(&rig.db.client, &hold_request(HoldKind::Checkout, iv, None, &format!("b{i}")), now).await.unwrap();
        let t0 = Timer::now();
        let event = cal_store::confirm_hold(&mut rig.db.client, &hold.hold_id, now).await.unwrap();
        rig.queue.push(SyncJob::Push { event_id: event.event_id.clone() });
        until("the booking in the remote calendar", async || written(rig, service, &event.event_id)).await;
        times.push(t0.elapsed());
    }
    times
}

struct Row {
    service: ServiceKind,
    what: &'static str,
    times: Vec<Duration>,
}

/// The nearest-rank percentile of sorted times, in milliseconds.
fn percentile(sorted: &[Duration], p: usize) -> f64 {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1].as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let options = Options::from_args();
    let mut rows = Vec::new();
    for &service in &options.services {
        let mut rig = Rig::new().await;
        let id = rig.connect(service).await;
        let cal = calendar(&rig, service);
        sync::set_calendar_use(&mut rig.db.client, PROVIDER, &id, &cal, CalendarUse { blocks: true, receives_bookings: true }).await.unwrap();
        // The first watch and full read, before the clock starts.
        rig.settle().await;
        let poller = rig.poll();
        eprintln!("sync bench: {} — {} remote changes, {} bookings", service.as_str(), options.changes, options.bookings);
        rows.push(Row { service, what: "remote change -> slots", times: remote_changes(&rig, service, options.changes).await });
        rows.push(Row { service, what: "booking -> remote calendar", times: bookings(&mut rig, service, options.bookings).await });
        drop(poller);
    }

    println!();
    println!("two-way sync: fake -> HTTP -> receiver -> queue -> worker (SQS-style poller) -> PostgreSQL");
    println!("{:<10} {:<28} {:>5} {:>9} {:>9} {:>9}", "service", "measure", "n", "p50 ms", "p95 ms", "max ms");
    let mut slow = false;
    for row in &mut rows {
        row.times.sort();
        let (p50, p95, max) = (percentile(&row.times, 50), percentile(&row.times, 95), percentile(&row.times, 100));
        println!("{:<10} {:<28} {:>5} {:>9.1} {:>9.1} {:>9.1}", row.service.as_str(), row.what, row.times.len(), p50, p95, max);
        slow |= row.what.starts_with("remote") && p95 > 5_000.0;
    }
    println!("target: remote change -> slots p95 <= 5000 ms: {}", if slow { "MISSED" } else { "met" });
}
