//! Feasibility on a realistic, busy calendar.
//!
//! One provider: 60-day query, three weekly rules (weekdays, a short
//! Saturday, an overnight Sunday) in its zone with different minimum
//! durations, lead times and booking windows, 20 exceptions and 2,000 busy
//! intervals (confirmed and cancelled events, holds in every state, external
//! busy), 60-minute slots on a 30-minute step. The range crosses the spring
//! DST change. Targets (per query, one core): `bookable_slots` ≤ 200 µs,
//! `common_slots` over 10 providers ≤ 2 ms.
//!
//! Inputs are deterministic (a small LCG, no `rand`), so runs compare.

use std::hint::black_box;

use cal_core::{
    BookingParams, BookingPolicy, Combine, EventBusy, EventStatus, Exception, ExceptionKind, HoldBusy, HoldStatus, Instant, Interval,
    LocalTime, Participant, ProviderCalendar, SlotQuery, SlotRange, StepMinutes, WeekdayMask, WeeklyRule, Zone,
    bookable_slots, common_slots,
};
use chrono::{Duration, NaiveDate};
use criterion::{Criterion, criterion_group, criterion_main};

const ROLE: &str = "photographer";
const DAYS: i64 = 60;
const BUSY: usize = 2_000;
const EXCEPTIONS: usize = 20;

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

fn at(text: &str) -> Instant {
    Instant::parse(text).expect("valid instant")
}

fn local(text: &str) -> LocalTime {
    LocalTime::parse(text).expect("valid local time")
}

fn rule(user: &str, id: &str, mask: i64, start: &str, end: &str, zone: Zone, params: (i64, i64, i64)) -> WeeklyRule {
    WeeklyRule {
        rule_id: id.into(),
        user_id: user.into(),
        role_code: ROLE.into(),
        weekday_mask: WeekdayMask::new(mask).expect("valid mask"),
        start_local: local(start),
        end_local: local(end),
        timezone: zone,
        params: BookingParams::new(Some(params.0), Some(params.1), Some(params.2)).expect("valid params"),
        active: true,
    }
}

/// One provider's calendar over `DAYS` days from `first_day` (local dates
/// in `zone`), seeded so that providers differ.
fn provider(user: &str, zone: &str, seed: u64, first_day: NaiveDate, from: Instant, now: Instant) -> ProviderCalendar {
    let zone = Zone::parse(zone).expect("known zone");
    let mut rng = Lcg(seed);
    let weekly_rules = vec![
        // Mon–Fri 09:00–17:00: 30-minute minimum, a day's lead, 90 days ahead.
        rule(user, "wr_week", 0b001_1111, "09:00", "17:00", zone, (30, 24, 90)),
        // Sat 10:00–14:00: an hour's minimum, two days' lead, 45 days ahead.
        rule(user, "wr_sat", 0b010_0000, "10:00", "14:00", zone, (60, 48, 45)),
        // Sun 18:00–02:00 overnight: 90-minute minimum, so no 60-minute slot.
        rule(user, "wr_sun", 0b100_0000, "18:00", "02:00", zone, (90, 12, 60)),
    ];

    let exceptions = (0..EXCEPTIONS)
        .map(|i| {
            let date = first_day + Duration::days(rng.below(DAYS as u64) as i64);
            let (kind, times) = match i % 3 {
                // Extra or replacement hours on that date.
                0 => (ExceptionKind::Available, Some((local("07:00"), local("12:30")))),
                // A blocked span.
                1 => (ExceptionKind::Unavailable, Some((local("12:00"), local("15:30")))),
                // The whole day off.
                _ => (ExceptionKind::Unavailable, None),
            };
            Exception { exc_id: format!("ex_{i}"), user_id: user.into(), date_local: date, timezone: zone, kind, times }
        })
        .collect();

    // Busy intervals start on a 15-minute grid anywhere in the range and
    // last 15–90 minutes (short ones more often).
    const LENGTHS: [i64; 8] = [15, 15, 30, 30, 30, 45, 60, 90];
    let random_interval = |rng: &mut Lcg| {
        let start = from.plus_minutes(rng.below((DAYS * 24 * 4) as u64) as i64 * 15);
        let minutes = LENGTHS[rng.below(LENGTHS.len() as u64) as usize];
        Interval::new(start, start.plus_minutes(minutes)).expect("non-empty")
    };
    let (n_events, n_holds) = (BUSY * 45 / 100, BUSY * 25 / 100);
    let events = (0..n_events)
        .map(|i| EventBusy {
            event_id: format!("ev_{i}"),
            user_id: user.into(),
            role_code: Some(ROLE.into()),
            interval: random_interval(&mut rng),
            status: if rng.below(10) == 0 { EventStatus::Cancelled } else { EventStatus::Confirmed },
        })
        .collect();
    let holds = (0..n_holds)
        .map(|i| {
            let interval = random_interval(&mut rng);
            let (status, expires_at) = match rng.below(10) {
                0..=5 => (HoldStatus::Active, now.plus_minutes(15)),
                // Active but already expired at `now`: free, sweeper or not.
                6 => (HoldStatus::Active, now.plus_minutes(-1)),
                7 => (HoldStatus::Released, now.plus_minutes(15)),
                8 => (HoldStatus::Converted, now.plus_minutes(15)),
                _ => (HoldStatus::Expired, now.plus_minutes(-30)),
            };
            HoldBusy { hold_id: format!("hld_{i}"), user_id: user.into(), role_code: Some(ROLE.into()), interval, expires_at, status }
        })
        .collect();
    let external_busy = (0..BUSY - n_events - n_holds).map(|_| random_interval(&mut rng)).collect();

    ProviderCalendar { weekly_rules, exceptions, events, holds, external_busy, policies: Vec::new() }
}

/// Buffers and limits for `user` as a photographer.
fn policy(user: &str, zone: &str) -> BookingPolicy {
    BookingPolicy {
        user_id: user.into(),
        role_code: ROLE.into(),
        timezone: Zone::parse(zone).expect("known zone"),
        buffer_before_min: 15,
        buffer_after_min: 10,
        max_per_day: Some(24),
        max_per_week: Some(140),
    }
}

/// Monday 2026-03-02 00:00 Berlin for 60 days: crosses 2026-03-29, when
/// Europe goes to summer time (and New York's 2026-03-08).
fn range() -> (NaiveDate, SlotRange, Instant) {
    let first_day = NaiveDate::from_ymd_opt(2026, 3, 2).expect("valid date");
    let from = at("2026-03-01T23:00:00Z");
    let to = from.plus_minutes(DAYS * 24 * 60);
    let now = at("2026-03-01T12:00:00Z");
    let range = SlotRange::new(from, to, Some(60), StepMinutes::new(30).expect("valid step")).expect("valid range");
    (first_day, range, now)
}

const TEN: [(&str, &str); 10] = [
    ("p_0", "Europe/Berlin"),
    ("p_1", "Europe/Berlin"),
    ("p_2", "Europe/Berlin"),
    ("p_3", "Europe/Berlin"),
    ("p_4", "Europe/Paris"),
    ("p_5", "Europe/Paris"),
    ("p_6", "Europe/London"),
    ("p_7", "Europe/London"),
    ("p_8", "Europe/Helsinki"),
    ("p_9", "America/New_York"),
];

fn benches(c: &mut Criterion) {
    let (first_day, range, now) = range();

    let one = provider("p_0", "Europe/Berlin", 1, first_day, range.from(), now);
    let query = SlotQuery { user_id: "p_0".into(), role_code: ROLE.into(), range };
    let answer = bookable_slots(&query, &one, now).expect("query accepted");
    eprintln!("one provider: {} slots, {} free ranges", answer.slots.len(), answer.free.len());
    c.bench_function("bookable_slots/1_provider_60d_2000_busy", |b| {
        b.iter(|| bookable_slots(black_box(&query), black_box(&one), black_box(now)))
    });

    // The same calendar under a policy for its role (SEMANTICS.md §8):
    // 15 minutes before and 10 after every booking, at most 24 bookings a
    // day and 140 a week (the calendar has about 18 a day, so some days
    // and weeks are full). Target: within 10 % of the case above.
    let with_policy = ProviderCalendar { policies: vec![policy("p_0", "Europe/Berlin")], ..one.clone() };
    let answer = bookable_slots(&query, &with_policy, now).expect("query accepted");
    eprintln!("one provider with a policy: {} slots, {} free ranges", answer.slots.len(), answer.free.len());
    c.bench_function("bookable_slots/1_provider_60d_2000_busy_policy", |b| {
        b.iter(|| bookable_slots(black_box(&query), black_box(&with_policy), black_box(now)))
    });

    let calendars: Vec<ProviderCalendar> = TEN
        .iter()
        .enumerate()
        .map(|(i, (user, zone))| provider(user, zone, 1 + i as u64 * 7_919, first_day, range.from(), now))
        .collect();
    let participants: Vec<Participant<'_>> = TEN
        .iter()
        .zip(&calendars)
        .map(|((user, _), calendar)| Participant { user_id: user, role_code: ROLE, calendar })
        .collect();
    for (mode, name) in [(Combine::AllOf, "all_of"), (Combine::AnyOf, "any_of")] {
        let answer = common_slots(mode, &participants, &range, now).expect("query accepted");
        eprintln!("{name} over 10: {} slots, {} free ranges", answer.slots.len(), answer.free.len());
        c.bench_function(&format!("common_slots/{name}_10_providers_60d_2000_busy"), |b| {
            b.iter(|| common_slots(black_box(mode), black_box(&participants), black_box(&range), black_box(now)))
        });
    }
}

criterion_group!(feasibility, benches);
criterion_main!(feasibility);
