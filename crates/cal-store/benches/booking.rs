//! Bookings against a real PostgreSQL (`DATABASE_URL`; a fresh database is
//! created on that server and dropped at the end). A plain timed binary, not
//! criterion: each measurement is a few thousand transactions over real
//! connections, and the race is one shot per round by design.
//!
//! Holds are made two ways: `create_hold_cached` with one `CalendarCache`
//! (as the API function makes them: a process that booked a provider a
//! moment ago writes its next hold in one round trip) and `create_hold`
//! without one (as calctl does, and as a process seeing the provider for the
//! first time: a read, then the write).
//!
//! (a) Hold throughput on distinct slots (no contention between requests),
//!     sequentially over one connection and over N concurrent connections,
//!     next to two single-row INSERT loops on the same database through the
//!     same client API: into a scratch table without constraints, and of the
//!     very rows a hold stores into `cal.hold` (its exclusion constraint and
//!     indexes, but no lock, check, version or outbox). Target: holds/s ≥
//!     0.5 × inserts/s.
//! (b) A race: R tasks, each on its own connection, create a hold for the same
//!     slot at the same moment, several rounds; once with one cache shared by
//!     the tasks (one process serving them all), once without. Target: p99
//!     latency ≤ 50 ms, and exactly one winner per round (the others get
//!     `CONFLICT`). Then once more without a cache, the R tasks sharing a
//!     pool of N connections (the wait for one is timed): what a cap on the
//!     database's sessions would give.
//!
//! (c) Where one uncontended `create_hold` spends its time: a bare round
//!     trip, the calendar load and the pure check timed one by one, next to
//!     the whole (two statements: the read, then the write), for
//!     reading (a) and (b).
//!
//! Run: `cargo bench -p cal-store --bench booking [-- --holds 2000 --connections 16 --race 200 --rounds 5]`
//! against a throwaway server (`eval "$(scripts/pg.sh start DIR)"`, which
//! allows 300 connections; the race needs R + 3).

use std::sync::Arc;
use std::time::{Duration, Instant as Timer};

use cal_core::availability::{BookingParams, WeekdayMask, WeeklyRule};
use cal_core::holds::check_hold;
use cal_core::{BookingError, HoldRequest, Instant, LocalTime, Zone};
use cal_store::{CalendarCache, HoldPolicy, StoreError};
use cal_store::testing::TestDb;
use tokio::sync::Barrier;
use cal_store::Executor;
use deadpool_postgres::Client;

const ROLE: &str = "photographer";
/// Rules open 06:00–22:00 UTC every day: 16 hourly slots a day.
const SLOTS_PER_DAY: u64 = 16;
const FIRST_HOUR: u64 = 6;
/// Holds each race connection makes before the race, each way (see the
/// warm-up): one, as a Lambda instance that has served one request.
const WARM_HOLDS: u64 = 1;

struct Options {
    holds: usize,
    connections: usize,
    race: usize,
    rounds: usize,
}

impl Options {
    fn from_args() -> Options {
        let mut o = Options { holds: 2_000, connections: 16, race: 200, rounds: 5 };
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut i = 0;
        while i < args.len() {
            // `cargo bench` passes --bench; anything unknown is ignored the same way.
            let value = || args.get(i + 1).and_then(|v| v.parse::<usize>().ok()).filter(|&v| v > 0);
            let slot = match args[i].as_str() {
                "--holds" => Some(&mut o.holds),
                "--connections" => Some(&mut o.connections),
                "--race" => Some(&mut o.race),
                "--rounds" => Some(&mut o.rounds),
                _ => None,
            };
            if let Some(slot) = slot {
                *slot = value().unwrap_or_else(|| panic!("{} takes a positive number", args[i]));
                i += 1;
            }
            i += 1;
        }
        o
    }
}

fn now() -> Instant {
    Instant::parse("2026-03-01T00:00:00Z").unwrap()
}

fn rule(user: &str) -> WeeklyRule {
    WeeklyRule {
        rule_id: format!("wr_{user}"),
        user_id: user.into(),
        role_code: ROLE.into(),
        weekday_mask: WeekdayMask::new(127).unwrap(),
        start_local: LocalTime::parse("06:00").unwrap(),
        end_local: LocalTime::parse("22:00").unwrap(),
        timezone: Zone::UTC,
        params: BookingParams::new(Some(60), Some(0), Some(365)).unwrap(),
        active: true,
    }
}

/// The `k`-th distinct hourly slot of a provider, from Monday 2026-03-02.
fn slot(k: u64) -> (Instant, Instant) {
    let day0 = Instant::parse("2026-03-02T00:00:00Z").unwrap();
    let start = day0.plus_secs(((k / SLOTS_PER_DAY) * 86_400 + (FIRST_HOUR + k % SLOTS_PER_DAY) * 3_600) as i64);
    (start, start.plus_secs(3_600))
}

fn request(user: &str, key: &str, (start, end): (Instant, Instant)) -> HoldRequest {
    cal_store::testing::checkout(user, ROLE, start, end, key)
}

async fn seed(db: &mut TestDb, users: impl Iterator<Item = String>) {
    for user in users {
        cal_store::put_rule(&mut db.client, &rule(&user)).await.expect("rule stored");
    }
}

/// `holds` holds over `providers` providers named `{prefix}{p}`, provider `p`
/// served by connection `p % clients.len()`; returns holds per second.
async fn hold_throughput(
    clients: Vec<Client>,
    cache: Option<Arc<CalendarCache>>,
    prefix: &str,
    providers: usize,
    holds: usize,
) -> f64 {
    let n = clients.len();
    let started = Timer::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(c, client)| {
            let (prefix, cache) = (prefix.to_owned(), cache.clone());
            tokio::spawn(async move {
                // Hold h goes to provider h % providers, as its (h / providers)-th slot.
                for h in (0..holds).filter(|h| (h % providers) % n == c) {
                    let user = format!("{prefix}{}", h % providers);
                    let req = request(&user, &format!("k{h}"), slot((h / providers) as u64));
                    hold(&client, cache.as_deref(), &req).await.expect("a distinct slot is free");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    holds as f64 / started.elapsed().as_secs_f64()
}

/// `create_hold_cached` with `cache`, else `create_hold`.
async fn hold(client: &Client, cache: Option<&CalendarCache>, req: &HoldRequest) -> Result<cal_store::HoldRecord, StoreError> {
    match cache {
        Some(cache) => cal_store::create_hold_cached(client, cache, req, &HoldPolicy::TRUSTED, now()).await,
        None => cal_store::create_hold(client, req, now()).await,
    }
}

/// The same number of single-row INSERTs (autocommit, through the same
/// `Executor::execute` and statement cache the store uses): into a scratch
/// table without constraints (`prefix` None), or of the very rows
/// `create_hold` stores into `cal.hold`, with its constraints and indexes,
/// for providers `{prefix}{p}` and slots as [`hold_throughput`] spreads them
/// (what storing a hold costs with no lock, check, version or outbox).
/// Returns inserts per second.
async fn insert_throughput(clients: Vec<Client>, hold_rows: Option<(&str, usize)>, rows: usize) -> f64 {
    let n = clients.len();
    let started = Timer::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(c, client)| {
            let hold_rows = hold_rows.map(|(prefix, providers)| (prefix.to_owned(), providers));
            tokio::spawn(async move {
                for h in (0..rows).filter(|h| h % n == c) {
                    let inserted = match &hold_rows {
                        None => {
                            let (start, end) = slot(h as u64);
                            Executor::execute(
                                &client,
                                "insert into bench_scratch (user_id, start_at, end_at, note) values ($1, $2, $3, $4)",
                                &[&format!("u{h}"), &start.to_chrono(), &end.to_chrono(), &"scratch"],
                            )
                            .await
                        }
                        Some((prefix, providers)) => {
                            let (start, end) = slot((h / providers) as u64);
                            let (user, now) = (format!("{prefix}{}", h % providers), now().to_chrono());
                            Executor::execute(
                                &client,
                                "insert into cal.hold (hold_id, user_id, role_code, customer_id, start_at, end_at, kind, mode,
                                                       status, expires_at, event_id, idempotency_key, request_fingerprint,
                                                       created_at, updated_at)
                                 values ($1, $2, $3, $4, $5, $6, $7, $8, 'active', $9, $10, $11, $12, $13, $13)",
                                &[
                                    &format!("hld_{prefix}{h:027}"),
                                    &user,
                                    &ROLE,
                                    &"c_bench",
                                    &start.to_chrono(),
                                    &end.to_chrono(),
                                    &"checkout",
                                    &"instant",
                                    &(now + chrono::Duration::minutes(15)),
                                    &None::<String>,
                                    &format!("k{h}"),
                                    &"fingerprint",
                                    &now,
                                ],
                            )
                            .await
                        }
                    };
                    inserted.expect("insert");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    rows as f64 / started.elapsed().as_secs_f64()
}

/// `n` pooled connections (the Lambdas' path: each keeps a cache of the
/// statements it prepared).
async fn connections(db: &TestDb, n: usize) -> Vec<Client> {
    let pool = cal_store::pool_from_config(db.config.clone(), n).expect("a pool");
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(pool.get().await.expect("a pooled connection"));
    }
    out
}

/// Mean time of each step of an uncontended `create_hold`, 200 samples each.
async fn breakdown(db: &mut TestDb) {
    const N: usize = 200;
    let user = "steps_p".to_owned();
    seed(db, std::iter::once(user.clone())).await;
    let client = connections(db, 1).await.pop().unwrap();
    let reqs: Vec<HoldRequest> = (0..N).map(|k| request(&user, &format!("s{k}"), slot(k as u64))).collect();
    let mean = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1_000.0 / N as f64);

    let t = Timer::now();
    for _ in 0..N {
        Executor::query(&client, "select 1", &[]).await.unwrap();
    }
    let round_trip = t.elapsed();

    let t = Timer::now();
    let mut calendars = Vec::with_capacity(N);
    for r in &reqs {
        let (s, e) = (r.interval.start(), r.interval.end());
        calendars.push(cal_store::load_calendar(&client, &user, ROLE, s, e, Some(r.minutes())).await.unwrap());
    }
    let load = t.elapsed();

    let t = Timer::now();
    for (r, c) in reqs.iter().zip(&calendars) {
        check_hold(r, c, now()).expect("free");
    }
    let check = t.elapsed();

    // A request for a taken slot: the re-check fails and builds alternatives.
    let taken = request(&user, "taken", slot(0));
    cal_store::create_hold(&client, &taken, now()).await.unwrap();
    let (s, e) = (taken.interval.start(), taken.interval.end());
    let busy = cal_store::load_calendar(&client, &user, ROLE, s, e, Some(taken.minutes())).await.unwrap();
    let t = Timer::now();
    for _ in 0..N {
        assert!(check_hold(&taken, &busy, now()).is_err());
    }
    let refuse = t.elapsed();

    let t = Timer::now();
    for r in reqs.iter().skip(1) {
        cal_store::create_hold(&client, r, now()).await.unwrap();
    }
    let full = t.elapsed() * N as u32 / (N as u32 - 1);

    // The same holds on a provider of their own, through a cache: the first
    // reads the calendar, and those after it are one round trip each (but
    // the first past the week the cache read, which reads again).
    let cached_user = "steps_c".to_owned();
    seed(db, std::iter::once(cached_user.clone())).await;
    let cache = CalendarCache::default();
    let reqs: Vec<HoldRequest> = (0..N).map(|k| request(&cached_user, &format!("c{k}"), slot(k as u64))).collect();
    cal_store::create_hold_cached(&client, &cache, &reqs[0], &HoldPolicy::TRUSTED, now()).await.unwrap();
    let t = Timer::now();
    for r in reqs.iter().skip(1) {
        cal_store::create_hold_cached(&client, &cache, r, &HoldPolicy::TRUSTED, now()).await.unwrap();
    }
    let cached = t.elapsed() * N as u32 / (N as u32 - 1);

    println!();
    println!("(c) one uncontended create_hold, step by step (mean of {N}, one connection)");
    println!("    {:<48} {:>8}", "step", "ms");
    println!("    {:<48} {:>8}", "one round trip (select 1)", mean(round_trip));
    println!("    {:<48} {:>8}", "load_calendar (one statement)", mean(load));
    println!("    {:<48} {:>8}", "check_hold, free slot (cal-core, CPU)", mean(check));
    println!("    {:<48} {:>8}", "check_hold, taken slot + alternatives (CPU)", mean(refuse));
    println!("    {:<48} {:>8}", "create_hold, whole", mean(full));
    println!("    {:<48} {:>8}", "create_hold_cached, whole", mean(cached));
}

/// What the machine had spent at one moment, to tell what a race cost: the
/// CPU time of this process and of the race's backends (if the server runs
/// on this machine); the autovacuum and autoanalyze runs of the `cal` tables
/// so far (each run invalidates the plans of every statement reading its
/// table, which each connection then plans again); and, if the server
/// loads `pg_stat_statements` with `track_planning` on, the statements of
/// this database run and planned so far.
struct Usage {
    at: Timer,
    bench_ns: u64,
    backends_ns: Option<u64>,
    autovacuums: i64,
    statements: Option<(i64, i64)>,
}

/// CPU time of a process or thread so far, from its `schedstat` (ns).
fn cpu_ns(dir: &std::path::Path) -> Option<u64> {
    std::fs::read_to_string(dir.join("schedstat")).ok()?.split_whitespace().next()?.parse().ok()
}

impl Usage {
    async fn now(db: &TestDb, backends: &[i32]) -> Usage {
        let threads = std::fs::read_dir("/proc/self/task").map(|d| d.filter_map(|t| cpu_ns(&t.ok()?.path())).sum());
        // A backend's pid names a process of this machine only if the server
        // runs here (and the process is PostgreSQL's).
        let local = db.config.get_hosts().iter().all(|h| match h {
            tokio_postgres::config::Host::Tcp(host) => ["127.0.0.1", "localhost", "::1"].contains(&host.as_str()),
            _ => true,
        });
        let backends_ns = local
            .then(|| {
                backends.iter().try_fold(0u64, |sum, pid| {
                    let dir = std::path::PathBuf::from(format!("/proc/{pid}"));
                    let comm = std::fs::read_to_string(dir.join("comm")).ok()?;
                    (comm.trim() == "postgres").then_some(())?;
                    Some(sum + cpu_ns(&dir)?)
                })
            })
            .flatten();
        let autovacuums = db
            .count("select coalesce(sum(autovacuum_count + autoanalyze_count), 0)::int8 from pg_stat_user_tables where schemaname = 'cal'")
            .await;
        let statements = db
            .client
            .query_one(
                "select coalesce(sum(plans), 0)::int8, coalesce(sum(calls), 0)::int8 from pg_stat_statements
                 where dbid = (select oid from pg_database where datname = current_database())
                   and query not like '%pg_stat_statements%'
                 having current_setting('pg_stat_statements.track_planning', true) = 'on'",
                &[],
            )
            .await
            .ok()
            .map(|r| (r.get(0), r.get(1)));
        Usage { at: Timer::now(), bench_ns: threads.unwrap_or(0), backends_ns, autovacuums, statements }
    }

    /// What was spent from `self` to `later`, as a line of a race's report,
    /// with the autovacuum runs since `since`.
    fn report(&self, later: &Usage, backends: usize, since: &Usage) -> String {
        let ms = |ns: u64| format!("{:.0} ms", ns as f64 / 1e6);
        let server = match (self.backends_ns, later.backends_ns) {
            (Some(a), Some(b)) => format!("{} of CPU in its {backends} backends, ", ms(b - a)),
            _ => String::new(),
        };
        let planned = match (self.statements, later.statements) {
            (Some((p0, c0)), Some((p1, c1))) => format!("; {} of its {} statements planned", p1 - p0, c1 - c0),
            _ => String::new(),
        };
        format!(
            "    the rounds took {:.0} ms: {server}{} of CPU in the bench{planned}\n    autovacuum runs on cal tables since the warm-up's last pass: {}",
            (later.at - self.at).as_secs_f64() * 1e3,
            ms(later.bench_ns - self.bench_ns),
            later.autovacuums - since.autovacuums,
        )
    }
}

/// The backend pid of each connection.
async fn backend_pids(clients: &[Client]) -> Vec<i32> {
    let mut pids = Vec::with_capacity(clients.len());
    for c in clients {
        pids.push(Executor::query(c, "select pg_backend_pid()", &[]).await.unwrap()[0].get(0));
    }
    pids
}

enum Outcome {
    Won,
    Conflict,
    Failed(String),
}

impl Outcome {
    fn of(result: Result<cal_store::HoldRecord, StoreError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Won,
            Err(StoreError::Booking(BookingError::Conflict { .. })) => Outcome::Conflict,
            Err(e) => Outcome::Failed(format!("{}: {e}", e.error_type())),
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1_000.0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    if std::env::var_os("DATABASE_URL").is_none() {
        eprintln!(
            "booking bench: set DATABASE_URL to a server where the user may CREATE DATABASE, e.g. \
             eval \"$(scripts/pg.sh start \"$(mktemp -d)\")\""
        );
        std::process::exit(2);
    }
    let o = Options::from_args();
    let mut db = TestDb::new().await;
    let version: String = db.client.query_one("show server_version", &[]).await.unwrap().get(0);
    let max_conn: String = db.client.query_one("show max_connections", &[]).await.unwrap().get(0);
    let max_conn: usize = max_conn.parse().unwrap_or(100);
    // TestDb's own connection, the admin connection and a margin.
    let race = o.race.min(max_conn.saturating_sub(5));
    println!("booking bench · PostgreSQL {version} · max_connections {max_conn} · database {}", db.name);
    // Counts of statements run and planned, if the server tracks them
    // (`shared_preload_libraries = pg_stat_statements`,
    // `pg_stat_statements.track_planning = on`; not on the throwaway server:
    // the counting itself contends in a race).
    let _ = db.client.batch_execute("create extension if not exists pg_stat_statements").await;
    if race < o.race {
        println!("note: the server allows {max_conn} connections: the race runs {race} tasks, not {}", o.race);
    }

    // (a) Throughput on distinct slots: single-row INSERTs, then holds
    // through one process's calendar cache (as the API function makes
    // them), then holds without it (as calctl does), on providers of their own.
    let providers = 100.min(o.holds);
    db.client
        .batch_execute(
            "create table bench_scratch (id bigserial primary key, user_id text not null,
                                         start_at timestamptz not null, end_at timestamptz not null, note text)",
        )
        .await
        .unwrap();
    let mut rows = Vec::new();
    for (mode, n) in [("sequential", 1), ("concurrent", o.connections)] {
        let (cached, plain, rows_only) = (format!("{mode}_c_"), format!("{mode}_p_"), format!("{mode}_i_"));
        seed(&mut db, (0..providers).map(|p| format!("{cached}{p}"))).await;
        seed(&mut db, (0..providers).map(|p| format!("{plain}{p}"))).await;
        db.client.batch_execute("truncate bench_scratch").await.unwrap();
        let inserts = insert_throughput(connections(&db, n).await, None, o.holds).await;
        let hold_rows = insert_throughput(connections(&db, n).await, Some((&rows_only, providers)), o.holds).await;
        let cache = Arc::new(CalendarCache::default());
        let with_cache = hold_throughput(connections(&db, n).await, Some(cache), &cached, providers, o.holds).await;
        let without = hold_throughput(connections(&db, n).await, None, &plain, providers, o.holds).await;
        rows.push((mode, n, inserts, hold_rows, with_cache, without));
    }
    let stored = db.count("select count(*) from cal.hold where status = 'active'").await;
    assert_eq!(stored, 6 * o.holds as i64, "every hold on a distinct slot was stored");

    println!();
    println!("(a) hold creation on distinct slots: {} holds over {providers} providers, per second", o.holds);
    println!("    INSERT scratch: a single-row INSERT into a table without constraints");
    println!("    INSERT hold row: the row a hold stores, INSERTed into cal.hold (its constraints and indexes;");
    println!("                     no lock, check, version or outbox)");
    println!("    cached: create_hold_cached, one calendar cache (as the API function); plain: create_hold");
    println!(
        "    {:<12} {:>5} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "mode", "conns", "INSERT", "INSERT", "cached", "ratio to", "plain", "ratio to"
    );
    println!(
        "    {:<12} {:>5} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "", "", "scratch", "hold row", "holds", "scr/row", "holds", "scr/row"
    );
    for (mode, n, inserts, hold_rows, with_cache, without) in rows {
        let r = |h: f64| format!("{:.2}/{:.2}", h / inserts, h / hold_rows);
        println!(
            "    {mode:<12} {n:>5} {inserts:>10.0} {hold_rows:>10.0} {with_cache:>9.0} {:>9} {without:>9.0} {:>9}",
            r(with_cache),
            r(without)
        );
    }
    println!("    target: holds ≥ 0.50 × a plain single-row INSERT");

    // (c) One uncontended hold, step by step, on a provider of its own.
    breakdown(&mut db).await;

    // (b) The race: every task on its own connection, all for one slot;
    // first through one calendar cache shared by the tasks (one process
    // serving them all), then without (as many processes would, each with
    // no entry for the provider: two round trips).
    let races = [("cached", "race_cached", true), ("plain", "race_plain", false)];
    seed(&mut db, races.iter().map(|r| r.1.to_owned())).await;
    seed(&mut db, (0..race).map(|t| format!("warm_{t}"))).await;
    let clients = connections(&db, race).await;
    let pids = backend_pids(&clients).await;
    let cache = Arc::new(CalendarCache::default());
    let barrier = Arc::new(Barrier::new(race));
    let (warmed, analyzed) = (Arc::new(Barrier::new(race + 1)), Arc::new(Barrier::new(race + 1)));
    // Before and after each race's rounds, this task takes the usage so
    // far between two waits on `mark`.
    let mark = Arc::new(Barrier::new(race + 1));
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(t, client)| {
            let (barrier, rounds, cache) = (barrier.clone(), o.rounds, cache.clone());
            let (warmed, analyzed, mark) = (warmed.clone(), analyzed.clone(), mark.clone());
            tokio::spawn(async move {
                // Warm the connection like a Lambda's that has served a
                // request or two: its statements prepared and planned once
                // (the store's connections plan generically: see
                // `cal_store::pool_from_config`). Holds on a provider of its
                // own (one per task), then a refused request.
                // Then, once the statistics are fresh (see below), as many
                // again: a fresh ANALYZE replans every cached statement.
                let own = format!("warm_{t}");
                for pass in 0..2 {
                    if pass == 1 {
                        warmed.wait().await;
                        analyzed.wait().await;
                    }
                    // Holds with and without the cache, then requests the
                    // cache refuses (checked against fresh busy time).
                    let base = pass * 2 * WARM_HOLDS;
                    for k in base..base + 2 * WARM_HOLDS {
                        let with = (k - base >= WARM_HOLDS).then_some(&*cache);
                        let req = request(&own, &format!("w{k}"), slot(k));
                        hold(&client, with, &req).await.expect("a warm-up hold");
                    }
                    for k in 0..WARM_HOLDS {
                        let req = request(&own, &format!("x{pass}-{k}"), slot(base + WARM_HOLDS));
                        let refused = hold(&client, Some(&cache), &req).await;
                        assert!(matches!(refused, Err(StoreError::Booking(BookingError::Conflict { .. }))), "{refused:?}");
                    }
                }
                let mut results = Vec::with_capacity(2 * rounds);
                for (_, user, cached) in races {
                    let cache = cached.then_some(&*cache);
                    // Everyone done with the last race first.
                    barrier.wait().await;
                    // A request at night, refused: the provider read once.
                    let night = (slot(0).0.plus_secs(-5 * 3_600), slot(0).0.plus_secs(-4 * 3_600));
                    let _ = hold(&client, cache, &request(user, &format!("warm{t}"), night)).await;
                    for _ in 0..2 {
                        mark.wait().await;
                    }
                    for round in 0..rounds {
                        // Each round races for a slot of its own day.
                        let req = request(user, &format!("r{round}-t{t}"), slot(round as u64 * SLOTS_PER_DAY + 4));
                        barrier.wait().await;
                        let started = Timer::now();
                        let result = hold(&client, cache, &req).await;
                        let took = started.elapsed();
                        results.push((took, Outcome::of(result)));
                    }
                    for _ in 0..2 {
                        mark.wait().await;
                    }
                }
                // The connection is closed only after every task is done: a
                // backend exiting costs CPU the last round would be timed with.
                (results, client)
            })
        })
        .collect();
    // Fresh statistics before the race, as autovacuum would soon make them
    // (the warm-up wrote thousands of rows): an ANALYZE during the race
    // would replan every cached statement of 200 connections at once.
    warmed.wait().await;
    db.client.batch_execute("analyze").await.unwrap();
    analyzed.wait().await;
    // An autovacuum from here on can invalidate plans the races then make again.
    let since = Usage::now(&db, &pids).await;
    let mut usage = Vec::with_capacity(races.len());
    for _ in races {
        let mut ends = Vec::with_capacity(2);
        for _ in 0..2 {
            mark.wait().await;
            ends.push(Usage::now(&db, &pids).await);
            mark.wait().await;
        }
        usage.push(ends);
    }
    let mut per_round: Vec<Vec<(Duration, Outcome)>> = (0..2 * o.rounds).map(|_| Vec::new()).collect();
    let mut open = Vec::with_capacity(race);
    for t in tasks {
        let (results, client) = t.await.unwrap();
        open.push(client);
        for (round, r) in results.into_iter().enumerate() {
            per_round[round].push(r);
        }
    }

    let mut one_winner_each = true;
    for (k, (name, user, _)) in races.iter().enumerate() {
        let rounds = &per_round[k * o.rounds..(k + 1) * o.rounds];
        println!();
        println!("(b) race, {name}: {race} tasks on {race} connections for one slot, {} rounds", o.rounds);
        one_winner_each &= report_race(rounds, race);
        println!("{}", usage[k][0].report(&usage[k][1], race, &since));
        let active = db.count(&format!("select count(*) from cal.hold where user_id = '{user}' and status = 'active'")).await;
        println!("    active holds of the raced provider: {active} (rounds: {})", o.rounds);
        one_winner_each &= active == o.rounds as i64;
    }
    // (b) again, plain, but the requests share a pool of `connections`
    // connections (a server process's pool, or Lambdas behind a proxy that
    // caps the database's connections): each waits for a connection first,
    // and that wait is timed with it.
    let (pooled, used) = pooled_race(&mut db, race, o.connections, o.rounds).await;
    println!();
    println!("(b) race, plain, pooled: {race} tasks over {} pooled connections for one slot, {} rounds", o.connections, o.rounds);
    one_winner_each &= report_race(&pooled, race);
    println!("{}", used[0].report(&used[1], o.connections, &used[0]));
    let active = db.count("select count(*) from cal.hold where user_id = 'race_pooled' and status = 'active'").await;
    println!("    active holds of the raced provider: {active} (rounds: {})", o.rounds);
    one_winner_each &= active == o.rounds as i64;
    drop(open);
    // Drop the database before exiting (process::exit skips destructors).
    drop(db);
    if !one_winner_each {
        eprintln!("booking bench: a race did not have exactly one winner per round");
        std::process::exit(1);
    }
}

/// The race of (b) for `create_hold` with `race` tasks sharing a pool of
/// `size` connections, warmed first (each connection's statements prepared
/// and planned); per round, each task's time from the start (its wait for a
/// connection included) and outcome; and the usage before and after the
/// rounds.
async fn pooled_race(db: &mut TestDb, race: usize, size: usize, rounds: usize) -> (Vec<Vec<(Duration, Outcome)>>, [Usage; 2]) {
    let user = "race_pooled";
    seed(db, std::iter::once(user.to_owned())).await;
    seed(db, (0..size).map(|c| format!("pool_warm_{c}"))).await;
    let pool = cal_store::pool_from_config(db.config.clone(), size).expect("a pool");
    let warm: Vec<_> = (0..size)
        .map(|c| {
            let pool = pool.clone();
            tokio::spawn(async move {
                // Hold every connection at once, so each is warmed.
                let client = pool.get().await.expect("a pooled connection");
                let own = format!("pool_warm_{c}");
                for k in 0..2 * WARM_HOLDS {
                    hold(&client, None, &request(&own, &format!("w{k}"), slot(k))).await.expect("a warm-up hold");
                }
                for k in 0..WARM_HOLDS {
                    let refused = hold(&client, None, &request(&own, &format!("x{k}"), slot(0))).await;
                    assert!(matches!(refused, Err(StoreError::Booking(BookingError::Conflict { .. }))), "{refused:?}");
                }
                client
            })
        })
        .collect();
    let mut clients = Vec::with_capacity(size);
    for t in warm {
        clients.push(t.await.unwrap());
    }
    let pids = backend_pids(&clients).await;
    drop(clients);
    let before = Usage::now(db, &pids).await;
    let mut per_round = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let barrier = Arc::new(Barrier::new(race));
        let tasks: Vec<_> = (0..race)
            .map(|t| {
                let (pool, barrier) = (pool.clone(), barrier.clone());
                let req = request(user, &format!("r{round}-t{t}"), slot(round as u64 * SLOTS_PER_DAY + 4));
                tokio::spawn(async move {
                    barrier.wait().await;
                    let started = Timer::now();
                    let client = pool.get().await.expect("a pooled connection");
                    let result = hold(&client, None, &req).await;
                    (started.elapsed(), Outcome::of(result))
                })
            })
            .collect();
        let mut results = Vec::with_capacity(race);
        for t in tasks {
            results.push(t.await.unwrap());
        }
        per_round.push(results);
    }
    let after = Usage::now(db, &pids).await;
    (per_round, [before, after])
}

/// Prints a race's rounds and their percentiles; whether each round had
/// exactly one winner and `race - 1` conflicts.
fn report_race(per_round: &[Vec<(Duration, Outcome)>], race: usize) -> bool {
    println!("    {:<6} {:>7} {:>9} {:>6} {:>8} {:>8} {:>8}", "round", "winners", "conflicts", "errors", "p50 ms", "p99 ms", "max ms");
    let mut all = Vec::new();
    let mut one_winner_each = true;
    for (round, results) in per_round.iter().enumerate() {
        let won = results.iter().filter(|(_, o)| matches!(o, Outcome::Won)).count();
        let lost = results.iter().filter(|(_, o)| matches!(o, Outcome::Conflict)).count();
        let failed: Vec<&String> = results.iter().filter_map(|(_, o)| if let Outcome::Failed(e) = o { Some(e) } else { None }).collect();
        one_winner_each &= won == 1 && lost == race - 1;
        let mut lat: Vec<Duration> = results.iter().map(|(d, _)| *d).collect();
        lat.sort();
        all.extend(lat.iter().copied());
        println!(
            "    {round:<6} {won:>7} {lost:>9} {:>6} {:>8} {:>8} {:>8}",
            failed.len(),
            ms(percentile(&lat, 50.0)),
            ms(percentile(&lat, 99.0)),
            ms(*lat.last().unwrap_or(&Duration::ZERO))
        );
        if let Some(first) = failed.first() {
            println!("           first error: {first}");
        }
    }
    all.sort();
    let p99 = percentile(&all, 99.0);
    println!(
        "    {:<6} {:>7} {:>9} {:>6} {:>8} {:>8} {:>8}",
        "all",
        "",
        "",
        "",
        ms(percentile(&all, 50.0)),
        ms(p99),
        ms(*all.last().unwrap_or(&Duration::ZERO))
    );
    println!(
        "    exactly one winner per round: {}; p99 ≤ 50 ms: {}",
        if one_winner_each { "yes" } else { "NO" },
        if p99 <= Duration::from_millis(50) { "met" } else { "missed" }
    );
    one_winner_each
}
