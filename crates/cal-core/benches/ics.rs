//! iCalendar import at scale, next to Python `icalendar` + `recurring-ical-events`.
//!
//! A deterministic 50,000-VEVENT calendar (a small LCG, no `rand`) spread over
//! 2026–2027: mostly single events, some WEEKLY/DAILY rules with COUNT or
//! UNTIL, some RECURRENCE-ID overrides of those, in Europe/Berlin,
//! America/New_York, a Windows TZID ("W. Europe Standard Time"), UTC `Z`,
//! floating and all-day DATE. It is written to a temp file so the Python side
//! (scripts/ics_bench.py) reads the very same bytes.
//!
//! Measured: `ics::import::import` over the year 2026 (median of RUNS), its peak
//! heap during import (a counting global allocator) against the file size
//! (target ≤ 5×), and Python parse + `between()` on the same window
//! (target: Rust ≥ 30× faster).
//!
//! `cargo bench -p cal-core --bench ics`; env: ICS_BENCH_PY_ROUNDS (default
//! 3), PYTHON (default python3), ICS_BENCH_SKIP_PY=1 to skip the Python side.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant as Clock;

use cal_core::ics::import::{self, ImportLimits};
use cal_core::{Instant, Zone};
use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};

const EVENTS: usize = 50_000;
const RUNS: usize = 5;
const FROM: &str = "2026-01-01T00:00:00Z";
const TO: &str = "2027-01-01T00:00:00Z";
const PROVIDER_ZONE: &str = "Europe/Berlin";
const MAX_MEMORY_RATIO: f64 = 5.0;
const MIN_SPEEDUP: f64 = 30.0;

// ---------------------------------------------------------------------------
// Peak heap: live bytes now, and the highest they reached since the last reset.

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(by: usize) {
    LIVE.fetch_sub(by, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size > layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// `f`'s result and the most heap it held at once beyond what was live before.
fn peak_heap<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = LIVE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let out = f();
    (out, PEAK.load(Ordering::SeqCst) - base)
}

// ---------------------------------------------------------------------------
// The calendar.

/// Knuth's MMIX LCG; the high bits are the usable ones.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy)]
enum Tz {
    Berlin,
    NewYork,
    Windows,
    Utc,
    Floating,
    AllDay,
}

const ZONES: [Tz; 6] = [Tz::Berlin, Tz::NewYork, Tz::Windows, Tz::Utc, Tz::Floating, Tz::AllDay];

impl Tz {
    /// `NAME` + `;params:value` of a date-time property.
    fn prop(self, name: &str, at: NaiveDateTime) -> String {
        match self {
            Tz::Berlin => format!("{name};TZID=Europe/Berlin:{}", at.format("%Y%m%dT%H%M%S")),
            Tz::NewYork => format!("{name};TZID=America/New_York:{}", at.format("%Y%m%dT%H%M%S")),
            Tz::Windows => format!("{name};TZID=W. Europe Standard Time:{}", at.format("%Y%m%dT%H%M%S")),
            Tz::Utc => format!("{name}:{}Z", at.format("%Y%m%dT%H%M%S")),
            Tz::Floating => format!("{name}:{}", at.format("%Y%m%dT%H%M%S")),
            Tz::AllDay => format!("{name};VALUE=DATE:{}", at.format("%Y%m%d")),
        }
    }
}

/// A recurring event an override may refer to.
struct Series {
    uid: String,
    tz: Tz,
    start: NaiveDateTime,
    step_days: i64,
    occurrences: i64,
}

fn line(out: &mut String, text: &str) {
    out.push_str(text);
    out.push_str("\r\n");
}

/// The calendar and how many events of each kind it holds.
fn calendar() -> (String, [usize; 3]) {
    let mut rng = Lcg(0x1c5_2026);
    let mut out = String::with_capacity(EVENTS * 240);
    let mut kinds = [0usize; 3]; // single, recurring, override
    let mut series: Vec<Series> = Vec::new();
    line(&mut out, "BEGIN:VCALENDAR");
    line(&mut out, "VERSION:2.0");
    line(&mut out, "PRODID:-//cal//ics bench//EN");
    line(&mut out, "CALSCALE:GREGORIAN");
    let first_day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    for i in 0..EVENTS {
        let roll = rng.below(100);
        line(&mut out, "BEGIN:VEVENT");
        if roll < 5 && !series.is_empty() {
            // An override: one occurrence of an earlier series, an hour later.
            let s = &series[rng.below(series.len() as u64) as usize];
            let k = rng.below(s.occurrences as u64) as i64;
            let original = s.start + Duration::days(k * s.step_days);
            let moved = match s.tz {
                Tz::AllDay => original + Duration::days(1),
                _ => original + Duration::hours(1),
            };
            let end = match s.tz {
                Tz::AllDay => moved + Duration::days(1),
                _ => moved + Duration::minutes(45),
            };
            line(&mut out, &format!("UID:{}", s.uid));
            line(&mut out, "DTSTAMP:20260101T000000Z");
            line(&mut out, &s.tz.prop("RECURRENCE-ID", original));
            line(&mut out, &s.tz.prop("DTSTART", moved));
            line(&mut out, &s.tz.prop("DTEND", end));
            line(&mut out, &format!("SUMMARY:Moved occurrence {k} of {}", s.uid));
            kinds[2] += 1;
        } else {
            let tz = ZONES[rng.below(ZONES.len() as u64) as usize];
            let day = first_day + Duration::days(rng.below(730) as i64);
            let start = match tz {
                Tz::AllDay => day.and_time(NaiveTime::MIN),
                _ => day.and_hms_opt(7 + rng.below(12) as u32, 15 * rng.below(4) as u32, 0).unwrap(),
            };
            let end = match tz {
                Tz::AllDay => start + Duration::days(1 + rng.below(2) as i64),
                _ => start + Duration::minutes(30 * (1 + rng.below(6) as i64)),
            };
            let uid = format!("ev-{i:05}-{:08x}@bench.example", rng.next() as u32);
            line(&mut out, &format!("UID:{uid}"));
            line(&mut out, "DTSTAMP:20260101T000000Z");
            line(&mut out, &tz.prop("DTSTART", start));
            line(&mut out, &tz.prop("DTEND", end));
            line(&mut out, &format!("SUMMARY:Event {i} with a customer"));
            if roll < 15 {
                let (freq, step_days) = if rng.below(2) == 0 { ("WEEKLY", 7) } else { ("DAILY", 1) };
                let n = 2 + rng.below(11) as i64;
                // UNTIL only where DTSTART is zoned (UTC form, RFC 5545): half
                // past the last occurrence's wall time read as UTC, which
                // keeps the last (≤ +5 h off) and drops the next (≥ 22 h on).
                let zoned = !matches!(tz, Tz::Floating | Tz::AllDay);
                if zoned && rng.below(2) == 0 {
                    let until = start + Duration::days((n - 1) * step_days) + Duration::hours(12);
                    line(&mut out, &format!("RRULE:FREQ={freq};UNTIL={}Z", until.format("%Y%m%dT%H%M%S")));
                } else {
                    line(&mut out, &format!("RRULE:FREQ={freq};COUNT={n}"));
                }
                series.push(Series { uid, tz, start, step_days, occurrences: n });
                kinds[1] += 1;
            } else {
                kinds[0] += 1;
            }
        }
        line(&mut out, "END:VEVENT");
    }
    line(&mut out, "END:VCALENDAR");
    (out, kinds)
}

// ---------------------------------------------------------------------------

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = xs.len();
    if n % 2 == 1 { xs[n / 2] } else { (xs[n / 2 - 1] + xs[n / 2]) / 2.0 }
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// (median seconds, occurrences, versions) from scripts/ics_bench.py, or why not.
fn python(path: &std::path::Path) -> Result<(f64, u64, String), String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("scripts/ics_bench.py");
    let py = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let rounds = std::env::var("ICS_BENCH_PY_ROUNDS").unwrap_or_else(|_| "3".into());
    let out = Command::new(&py)
        .arg(&script)
        .arg(path)
        .args([FROM, TO, rounds.as_str(), PROVIDER_ZONE])
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("{py} {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!("{} exited with {}", script.display(), out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value =
        serde_json::from_str(text.lines().last().unwrap_or("")).map_err(|e| format!("bad output {text:?}: {e}"))?;
    let secs = v["seconds"].as_f64().ok_or("no seconds")?;
    let count = v["occurrences"].as_u64().ok_or("no occurrences")?;
    let versions = format!(
        "icalendar {}, recurring-ical-events {}",
        v["icalendar"].as_str().unwrap_or("?"),
        v["recurring_ical_events"].as_str().unwrap_or("?")
    );
    Ok((secs, count, versions))
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
    // then there is nothing to do.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let zone = Zone::parse(PROVIDER_ZONE).unwrap();
    let from = Instant::parse(FROM).unwrap();
    let to = Instant::parse(TO).unwrap();
    let limits = ImportLimits {
        max_bytes: 64 * 1024 * 1024,
        max_events: EVENTS,
        max_occurrences: 1_000_000,
        max_iterations: ImportLimits::default().max_iterations,
    };

    let (body, kinds) = calendar();
    let body = body.into_bytes();
    let path = std::env::temp_dir().join(format!("cal-ics-bench-{}.ics", std::process::id()));
    std::fs::write(&path, &body).expect("write the temp calendar");
    println!(
        "ics: {EVENTS} VEVENTs ({} single, {} recurring, {} RECURRENCE-ID overrides), {} bytes ({:.2} MiB) at {}",
        kinds[0],
        kinds[1],
        kinds[2],
        body.len(),
        mib(body.len()),
        path.display()
    );

    // Warm-up, and the peak heap of one import (result included).
    let (first, peak) = peak_heap(|| import::import(&body, zone, from, to, limits).expect("import"));
    let busy = first.busy.len();
    let warnings = first.warnings.len();
    drop(first);

    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t0 = Clock::now();
        let out = import::import(black_box(&body), zone, from, to, limits).expect("import");
        times.push(t0.elapsed().as_secs_f64());
        black_box(out);
    }
    let rust = median(times.clone());
    let ratio = peak as f64 / body.len() as f64;
    let mut report = String::new();
    let _ = writeln!(report, "ics: window {FROM} .. {TO}, provider zone {PROVIDER_ZONE}");
    let _ = writeln!(
        report,
        "ics: rust import  median {:.1} ms of {RUNS} (min {:.1}, max {:.1}); {busy} busy occurrences, {warnings} warnings",
        rust * 1e3,
        times.iter().cloned().fold(f64::INFINITY, f64::min) * 1e3,
        times.iter().cloned().fold(0.0, f64::max) * 1e3,
    );
    let _ = writeln!(
        report,
        "ics: rust peak heap during import {} bytes ({:.2} MiB) = {ratio:.2}x the file (target <= {MAX_MEMORY_RATIO}x): {}",
        peak,
        mib(peak),
        if ratio <= MAX_MEMORY_RATIO { "ok" } else { "OVER" }
    );
    print!("{report}");

    if std::env::var("ICS_BENCH_SKIP_PY").is_ok_and(|v| v == "1") {
        println!("ics: python side skipped (ICS_BENCH_SKIP_PY=1)");
    } else {
        match python(&path) {
            Ok((py, count, versions)) => {
                let speedup = py / rust;
                println!("ics: python parse+between median {:.1} ms; {count} occurrences ({versions})", py * 1e3);
                println!(
                    "ics: rust {:.1} ms vs python {:.1} ms: {speedup:.1}x faster (target >= {MIN_SPEEDUP}x): {}",
                    rust * 1e3,
                    py * 1e3,
                    if speedup >= MIN_SPEEDUP { "ok" } else { "UNDER" }
                );
                if count != busy as u64 {
                    println!("ics: note: occurrence counts differ (rust {busy}, python {count})");
                }
            }
            Err(e) => println!("ics: python side failed: {e}"),
        }
    }
    let _ = std::fs::remove_file(&path);
}
