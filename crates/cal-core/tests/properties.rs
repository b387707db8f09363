//! Property tests over random rules, exceptions and busy time near real DST
//! transitions.
//!
//! Besides the invariants (no slot overlaps busy time, every slot lies in
//! availability, lead time and booking window hold, output sorted, unique and
//! identical on re-run), every answer is compared with a brute-force oracle
//! that reads SEMANTICS.md §4 literally, one minute at a time. All generated
//! times are whole minutes, so minute resolution is exact.

use cal_core::availability::{Availability, BookingParams};
use cal_core::explain;
use cal_core::{
    BookingPolicy, Combine, EventBusy, EventStatus, Exception, ExceptionKind, HoldBusy, HoldStatus, Instant, Interval, LocalTime,
    Participant, ProviderCalendar, SlotQuery, SlotRange, StepMinutes, WeekdayMask, WeeklyRule, Zone, bookable_slots,
    common_slots,
};
use chrono::{Duration, NaiveDate, NaiveDateTime, Timelike};
use proptest::prelude::*;

const ZONES: [&str; 8] = [
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "America/Santiago",
    "America/Havana",
    "UTC",
];

/// Ranges that start two days before a 2026 transition of one of the zones.
const BASES: [&str; 8] = [
    "2026-03-06T00:00:00Z", // New York, Havana spring forward (03-08)
    "2026-03-27T00:00:00Z", // Berlin spring forward (03-29)
    "2026-04-02T12:00:00Z", // Lord Howe, Chatham, Santiago fall back (04-04/05)
    "2026-09-04T00:00:00Z", // Santiago spring forward (09-06)
    "2026-09-24T12:00:00Z", // Chatham spring forward (09-27)
    "2026-10-01T12:00:00Z", // Lord Howe spring forward (10-04)
    "2026-10-23T00:00:00Z", // Berlin fall back (10-25)
    "2026-10-30T00:00:00Z", // New York, Havana fall back (11-01)
];

const USER: &str = "u";
const ROLE: &str = "r";

fn zone_strategy() -> impl Strategy<Value = Zone> {
    prop::sample::select(ZONES.to_vec()).prop_map(|z| Zone::parse(z).unwrap())
}

fn quarter_time() -> impl Strategy<Value = LocalTime> {
    (0u32..96).prop_map(|q| LocalTime::from_naive(chrono::NaiveTime::from_hms_opt(q / 4, (q % 4) * 15, 0).unwrap()))
}

fn params() -> impl Strategy<Value = BookingParams> {
    (prop::sample::select(vec![15u32, 30, 45, 60, 90]), prop::sample::select(vec![0u32, 0, 1, 5, 24, 48]), prop::sample::select(vec![0u32, 2, 4, 8, 60])).prop_map(|(d, l, w)| BookingParams {
        min_duration_min: d,
        lead_time_hours: l,
        booking_window_days: w,
    })
}

fn rule() -> impl Strategy<Value = WeeklyRule> {
    (1i64..=127, quarter_time(), quarter_time(), zone_strategy(), params(), prop::bool::weighted(0.9), prop::bool::weighted(0.9))
        .prop_map(|(mask, s, e, zone, params, active, ours)| WeeklyRule {
            rule_id: "wr".into(),
            user_id: if ours { USER } else { "other" }.into(),
            role_code: ROLE.into(),
            weekday_mask: WeekdayMask::new(mask).unwrap(),
            start_local: s,
            end_local: e,
            timezone: zone,
            params,
            active,
        })
}

fn exception(base: NaiveDate) -> impl Strategy<Value = Exception> {
    (0i64..6, zone_strategy(), prop::bool::ANY, prop::option::weighted(0.7, (quarter_time(), quarter_time()))).prop_map(
        move |(day, zone, available, times)| Exception {
            exc_id: "ex".into(),
            user_id: USER.into(),
            date_local: base + Duration::days(day),
            timezone: zone,
            kind: if available { ExceptionKind::Available } else { ExceptionKind::Unavailable },
            times,
        },
    )
}

fn span(base: Instant) -> impl Strategy<Value = Interval> {
    (0i64..(6 * 24 * 60), 1i64..240).prop_map(move |(m, len)| {
        Interval::new(base.plus_minutes(m), base.plus_minutes(m + len)).unwrap()
    })
}

#[derive(Debug, Clone)]
struct Case {
    query: SlotQuery,
    calendar: ProviderCalendar,
    now: Instant,
}

fn case() -> impl Strategy<Value = Case> {
    prop::sample::select(BASES.to_vec()).prop_flat_map(|b| {
        let base = Instant::parse(b).unwrap();
        let base_date = base.to_chrono().date_naive() - Duration::days(1);
        let events = prop::collection::vec((span(base), prop::bool::weighted(0.8)), 0..8).prop_map(|v| {
            v.into_iter()
                .map(|(interval, confirmed)| EventBusy {
                    event_id: "ev".into(),
                    user_id: USER.into(),
                    role_code: None,
                    interval,
                    status: if confirmed { EventStatus::Confirmed } else { EventStatus::Cancelled },
                })
                .collect::<Vec<_>>()
        });
        let holds = prop::collection::vec((span(base), -120i64..600, 0usize..4), 0..5).prop_map(move |v| {
            v.into_iter()
                .map(|(interval, expiry, status)| HoldBusy {
                    hold_id: "hld".into(),
                    user_id: USER.into(),
                    role_code: None,
                    interval,
                    expires_at: base.plus_minutes(expiry),
                    status: [HoldStatus::Active, HoldStatus::Active, HoldStatus::Released, HoldStatus::Expired][status],
                })
                .collect::<Vec<_>>()
        });
        (
            prop::collection::vec(rule(), 1..4),
            prop::collection::vec(exception(base_date), 0..5),
            events,
            holds,
            prop::collection::vec(span(base), 0..6),
            (0i64..(2 * 24 * 60), 0i64..(3 * 24 * 60)),
            prop::option::weighted(0.6, prop::sample::select(vec![15u32, 30, 45, 60, 90, 120])),
            prop::sample::select(vec![10i64, 15, 20, 30, 45, 60]),
            -(3 * 24 * 60i64)..(12 * 60),
        )
            .prop_map(move |(weekly_rules, exceptions, events, holds, external_busy, (from, len), duration, step, now)| {
                let from = base.plus_minutes(from);
                Case {
                    query: SlotQuery {
                        user_id: USER.into(),
                        role_code: ROLE.into(),
                        range: SlotRange::new(from, from.plus_minutes(len), duration.map(i64::from), StepMinutes::new(step).unwrap())
                            .unwrap(),
                    },
                    calendar: ProviderCalendar { weekly_rules, exceptions, events, holds, external_busy, policies: Vec::new() },
                    now: base.plus_minutes(now),
                }
            })
    })
}

fn local(zone: Zone, t: Instant) -> NaiveDateTime {
    zone.local_at(t)
}

/// Slots as SEMANTICS.md §4 words them, checked minute by minute.
/// `Err(minimum)` when the requested duration is below every window's minimum.
fn oracle(c: &Case) -> Result<Vec<(Instant, Instant, String)>, u32> {
    let r = &c.query.range;
    let avail = Availability::build(USER, ROLE, &c.calendar.weekly_rules, &c.calendar.exceptions, r.from(), r.to().plus_minutes(3 * 24 * 60));
    let unavailable: Vec<Interval> = c
        .calendar
        .exceptions
        .iter()
        .filter(|e| e.user_id == USER && e.kind == ExceptionKind::Unavailable)
        .filter_map(|e| e.interval())
        .collect();
    let mut busy: Vec<Interval> = c.calendar.external_busy.clone();
    busy.extend(c.calendar.events.iter().filter(|e| e.status == EventStatus::Confirmed).map(|e| e.interval));
    busy.extend(c.calendar.holds.iter().filter(|h| h.status == HoldStatus::Active && h.expires_at > c.now).map(|h| h.interval));
    let free_at = |m: Instant| {
        avail.windows.iter().any(|w| w.interval.contains(m))
            && !unavailable.iter().any(|u| u.contains(m))
            && !busy.iter().any(|b| b.contains(m))
    };

    let smallest = avail
        .windows
        .iter()
        .filter(|w| w.interval.start() < r.to() && r.from() < w.interval.end())
        .map(|w| w.params.min_duration_min)
        .min();
    if let (Some(d), Some(min)) = (r.duration_min(), smallest) {
        if d < min {
            return Err(min);
        }
    }

    let step = r.step().get();
    let mut out = Vec::new();
    let mut t = r.from();
    while t < r.to() {
        let containing: Vec<_> = avail.windows.iter().filter(|w| w.interval.contains(t)).collect();
        let aligned = containing.iter().find(|w| {
            let l = local(w.zone, t);
            l.second() == 0 && (l.hour() * 60 + l.minute()) % step == 0
        });
        if let Some(first) = aligned {
            let gov = containing.iter().map(|w| w.params).reduce(BookingParams::strictest).unwrap();
            let d = r.duration_min().unwrap_or(gov.min_duration_min);
            let lead_ok = t >= c.now.plus_secs(i64::from(gov.lead_time_hours) * 3600);
            let window_ok = t <= c.now.plus_secs(i64::from(gov.booking_window_days) * 86_400);
            let fits = (0..i64::from(d)).all(|m| free_at(t.plus_minutes(m)));
            if d >= gov.min_duration_min && lead_ok && window_ok && fits {
                out.push((t, t.plus_minutes(d.into()), first.zone.render(t)));
            }
        }
        t = t.plus_minutes(1);
    }
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn slots_match_the_brute_force_reading_of_the_spec(c in case()) {
        let got = bookable_slots(&c.query, &c.calendar, c.now);
        match oracle(&c) {
            Err(min) => {
                let err = got.expect_err("a duration under every minimum must be refused");
                prop_assert!(err.to_string().contains(&format!("{min} min")), "{err}");
            }
            Ok(want) => {
                let got = got.expect("valid query");
                let got: Vec<_> = got.slots.iter().map(|s| (s.start, s.end, s.start_local())).collect();
                prop_assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn slots_respect_the_invariants(c in case()) {
        let Ok(answer) = bookable_slots(&c.query, &c.calendar, c.now) else { return Ok(()) };
        let again = bookable_slots(&c.query, &c.calendar, c.now).unwrap();
        prop_assert_eq!(&answer, &again, "deterministic");
        let busy = c.calendar.busy(USER, c.now);
        let r = &c.query.range;
        let avail = Availability::build(USER, ROLE, &c.calendar.weekly_rules, &c.calendar.exceptions, r.from(), r.to().plus_minutes(3 * 24 * 60));
        for pair in answer.slots.windows(2) {
            prop_assert!(pair[0].start < pair[1].start, "sorted and unique by start");
        }
        for s in &answer.slots {
            let iv = Interval::new(s.start, s.end).unwrap();
            prop_assert!(!busy.iter().any(|b| b.overlaps(iv)), "slot {:?} overlaps busy time", s);
            prop_assert!(avail.available.iter().any(|a| a.start() <= s.start && s.end <= a.end()), "slot {:?} outside availability", s);
            prop_assert!(r.from() <= s.start && s.start < r.to());
            let gov = avail.windows_containing(s.start).map(|w| w.params).reduce(BookingParams::strictest).unwrap();
            prop_assert!(s.start >= c.now.plus_secs(i64::from(gov.lead_time_hours) * 3600), "lead time");
            prop_assert!(s.start <= c.now.plus_secs(i64::from(gov.booking_window_days) * 86_400), "booking window");
        }
        for f in &answer.free {
            prop_assert!(r.from() <= f.start() && f.end() <= r.to(), "free ranges are clipped to the query");
            prop_assert!(!busy.iter().any(|b| b.overlaps(*f)));
        }
    }

    #[test]
    fn all_of_and_any_of_agree_with_each_provider_alone(a in case(), b in case()) {
        // Two providers: `a`'s user and a copy of `b`'s calendar under another id.
        let mut cal_b = b.calendar.clone();
        for r in &mut cal_b.weekly_rules { if r.user_id == USER { r.user_id = "v".into(); } }
        for e in &mut cal_b.exceptions { e.user_id = "v".into(); }
        for e in &mut cal_b.events { e.user_id = "v".into(); }
        for h in &mut cal_b.holds { h.user_id = "v".into(); }
        let range = a.query.range;
        let qa = SlotQuery { user_id: USER.into(), role_code: ROLE.into(), range };
        let qb = SlotQuery { user_id: "v".into(), role_code: ROLE.into(), range };
        let (Ok(sa), Ok(sb)) = (bookable_slots(&qa, &a.calendar, a.now), bookable_slots(&qb, &cal_b, a.now)) else { return Ok(()) };
        let parts = [
            Participant { user_id: USER, role_code: ROLE, calendar: &a.calendar },
            Participant { user_id: "v", role_code: ROLE, calendar: &cal_b },
        ];
        let alone = [&sa.slots, &sb.slots];
        let all = common_slots(Combine::AllOf, &parts, &range, a.now).unwrap();
        for s in &all.slots {
            if range.duration_min().is_some() {
                for own in alone {
                    prop_assert!(own.iter().any(|o| o.start == s.slot.start && o.end == s.slot.end), "all_of slot {:?} not offered alone", s);
                }
            }
        }
        if range.duration_min().is_some() {
            // With a fixed duration, all_of is exactly the intersection.
            let inter: Vec<_> = sa.slots.iter().filter(|x| sb.slots.iter().any(|y| y.start == x.start)).map(|x| (x.start, x.end)).collect();
            let got: Vec<_> = all.slots.iter().map(|s| (s.slot.start, s.slot.end)).collect();
            prop_assert_eq!(got, inter);
        }
        let any = common_slots(Combine::AnyOf, &parts, &range, a.now).unwrap();
        let mut expected: Vec<(Instant, Instant, Vec<String>)> = Vec::new();
        for (who, own) in [(USER, &sa.slots), ("v", &sb.slots)] {
            for o in own.iter() {
                match expected.iter_mut().find(|e| e.0 == o.start && e.1 == o.end) {
                    Some(e) => e.2.push(who.into()),
                    None => expected.push((o.start, o.end, vec![who.into()])),
                }
            }
        }
        expected.sort();
        let got: Vec<_> = any.slots.iter().map(|s| (s.slot.start, s.slot.end, s.providers.clone())).collect();
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn window_edges_match_a_minute_search(zone in zone_strategy(), base in prop::sample::select(BASES.to_vec()), minutes in 0i64..(5 * 24 * 60)) {
        // The boundary rule by its definition: start = first instant whose
        // clock shows >= L; end = the instant after which the clock never
        // again shows < L.
        let t0 = Instant::parse(base).unwrap();
        let l = local(zone, t0.plus_minutes(minutes)) + Duration::minutes(minutes % 97);
        let naive = l.and_utc().timestamp();
        let search: Vec<Instant> = (-16 * 60..16 * 60).map(|m| Instant::from_unix(naive + m * 60)).collect();
        let first_at_or_after = search.iter().copied().find(|t| local(zone, *t) >= l).unwrap();
        let last_before = search.iter().copied().rfind(|t| local(zone, *t) < l).unwrap();
        prop_assert_eq!(zone.window_start(l), first_at_or_after, "start of {} in {}", l, zone);
        prop_assert_eq!(zone.window_end(l), last_before.plus_minutes(1), "end of {} in {}", l, zone);
    }
}

/// Guards the generators: if most cases produced no slots, the comparisons
/// above would pass without testing anything.
#[test]
fn generated_cases_mostly_offer_slots() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut with_slots, mut refused) = (0, 0);
    for _ in 0..300 {
        let c = case().new_tree(&mut runner).unwrap().current();
        match bookable_slots(&c.query, &c.calendar, c.now) {
            Ok(a) if !a.slots.is_empty() => with_slots += 1,
            Ok(_) => {}
            Err(_) => refused += 1,
        }
    }
    assert!(with_slots >= 90, "only {with_slots} of 300 generated cases offer slots");
    assert!(refused >= 10, "only {refused} of 300 cases exercise the duration refusal");
}

/// Policies for `ROLE` and for another role `x` of the same user, and a
/// role for each event and hold of `c` (§8), so that buffers and limits
/// take part.
fn with_policies() -> impl Strategy<Value = Case> {
    let buffers = || prop::sample::select(vec![0u32, 0, 15, 30, 60]);
    let policy = move |role: &'static str| {
        prop::option::weighted(0.7, (zone_strategy(), buffers(), buffers(), prop::option::weighted(0.5, 1u32..4), prop::option::weighted(0.5, 1u32..10)))
            .prop_map(move |p| {
                p.map(|(timezone, before, after, day, week)| BookingPolicy {
                    user_id: USER.into(),
                    role_code: role.into(),
                    timezone,
                    buffer_before_min: before,
                    buffer_after_min: after,
                    max_per_day: day,
                    max_per_week: week,
                })
            })
    };
    let roles = prop::collection::vec(prop::sample::select(vec![Some(ROLE), Some(ROLE), Some("x"), None]), 16);
    (case(), policy(ROLE), policy("x"), roles).prop_map(|(mut c, own, other, roles)| {
        c.calendar.policies = own.into_iter().chain(other).collect();
        let mut role = roles.into_iter().cycle();
        for e in &mut c.calendar.events {
            e.role_code = role.next().flatten().map(str::to_owned);
        }
        for h in &mut c.calendar.holds {
            h.role_code = role.next().flatten().map(str::to_owned);
        }
        c
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// SEMANTICS.md §10: `explain(...).bookable` is true exactly when the
    /// slot query with `duration = end − start` and the same step returns
    /// the span; reasons are given exactly when it is not.
    #[test]
    fn explain_is_bookable_exactly_when_the_slot_query_returns_the_span(
        c in with_policies(),
        minutes in prop::sample::select(vec![15u32, 30, 45, 60, 90, 120]),
        pick in 0usize..10_000,
        from_answer in prop::bool::ANY,
    ) {
        let r = c.query.range;
        let range = SlotRange::new(r.from(), r.to(), Some(minutes.into()), r.step()).unwrap();
        let query = SlotQuery { range, ..c.query.clone() };
        let answer = bookable_slots(&query, &c.calendar, c.now);
        let len = (r.to().unix() - r.from().unix()) / 60;
        prop_assume!(len > 0);
        // Half the time a start the query offers, else any minute of the range.
        let start = match &answer {
            Ok(a) if from_answer && !a.slots.is_empty() => a.slots[pick % a.slots.len()].start,
            _ => r.from().plus_minutes(pick as i64 % len),
        };
        let span = explain::span(start, start.plus_minutes(minutes.into())).unwrap();
        let got = explain::explain(USER, ROLE, span, r.step(), &c.calendar, c.now);
        prop_assert_eq!(got.bookable, got.reasons.is_empty());
        match answer {
            Ok(a) => {
                let returned = a.slots.iter().any(|s| s.start == span.start() && s.end == span.end());
                prop_assert_eq!(got.bookable, returned, "explain {:?} for {}", got.reasons, span.start());
            }
            Err(_) => {
                prop_assert!(!got.bookable);
                let governed = Availability::build(USER, ROLE, &c.calendar.weekly_rules, &c.calendar.exceptions, span.start(), span.end())
                    .windows_containing(span.start())
                    .next()
                    .is_some();
                let min_duration = got.reasons.iter().any(|x| matches!(x, explain::Reason::MinDuration { .. }));
                prop_assert_eq!(min_duration, governed, "a refused duration is MIN_DURATION where a window governs");
            }
        }
    }
}

/// Guards the generator of the explain property: policies must make
/// buffers and limits refuse some offered-looking starts, and many starts
/// taken from answers must be bookable.
#[test]
fn generated_policy_cases_exercise_buffers_and_limits() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut bookable, mut buffer, mut limit) = (0, 0, 0);
    for _ in 0..400 {
        let c = with_policies().new_tree(&mut runner).unwrap().current();
        let Ok(a) = bookable_slots(&c.query, &c.calendar, c.now) else { continue };
        let step = c.query.range.step();
        for s in a.slots.iter().take(3) {
            let got = explain::explain(USER, ROLE, Interval::new(s.start, s.end).unwrap(), step, &c.calendar, c.now);
            bookable += usize::from(got.bookable);
        }
        // The same starts without the policies, re-checked with them.
        let plain = ProviderCalendar { policies: Vec::new(), ..c.calendar.clone() };
        let Ok(p) = bookable_slots(&c.query, &plain, c.now) else { continue };
        for s in &p.slots {
            let got = explain::explain(USER, ROLE, Interval::new(s.start, s.end).unwrap(), step, &c.calendar, c.now);
            buffer += usize::from(got.reasons.iter().any(|r| matches!(r, explain::Reason::Buffer { .. })));
            limit += usize::from(got.reasons.iter().any(|r| matches!(r, explain::Reason::DayLimit { .. } | explain::Reason::WeekLimit { .. })));
        }
    }
    assert!(bookable >= 100, "only {bookable} bookable spans");
    assert!(buffer >= 20 && limit >= 20, "buffers refused {buffer}, limits {limit}");
}
