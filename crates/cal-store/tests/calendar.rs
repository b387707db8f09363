//! Loading a provider's calendar and DB-backed slots.
//!
//! The reference is `cal_core` on the same rows built in memory: the store
//! must load everything that matters and the engine must then say the same
//! thing — with a fixed number of statements, whatever the range.

mod common;


use cal_core::availability::{ExceptionKind, WeeklyRule};
use cal_core::feasibility::{
    Combine, EventBusy, EventStatus, HoldBusy, HoldStatus, Participant, ProviderCalendar, SlotQuery, SlotRange,
    StepMinutes,
};
use cal_core::time::{Instant, Interval};
use cal_store::demo::{DEMO_ROLE, DEMO_USER};
use cal_store::{StoreError, load_calendar, put_rule, seed_demo, upsert_exception};
use chrono::Duration;
use cal_store::testing::Counting;
use common::{TestDb, at, exception, insert_event, insert_external, insert_hold, iv, rule};

const P1: &str = "p1";
const P2: &str = "p2";
const ROLE: &str = "photographer";

fn event(id: &str, user: &str, interval: Interval, status: EventStatus) -> EventBusy {
    EventBusy { event_id: id.into(), user_id: user.into(), role_code: None, interval, status }
}

fn hold(id: &str, user: &str, interval: Interval, expires_at: Instant, status: HoldStatus) -> HoldBusy {
    HoldBusy { hold_id: id.into(), user_id: user.into(), role_code: None, interval, expires_at, status }
}

/// Writes `calendar` (rules and exceptions through the store's own API,
/// events, holds and external busy time through SQL) and returns it.
async fn store(db: &mut TestDb, calendar: &ProviderCalendar, external_user: &str) {
    for r in &calendar.weekly_rules {
        put_rule(&mut db.client, r).await.unwrap();
    }
    for e in &calendar.exceptions {
        upsert_exception(&mut db.client, e, None).await.unwrap();
    }
    for e in &calendar.events {
        insert_event(&db.client, &e.event_id, &e.user_id, e.interval, e.status.as_str()).await.unwrap();
    }
    for h in &calendar.holds {
        insert_hold(&db.client, &h.hold_id, &h.user_id, h.interval, h.expires_at, h.status.as_str()).await.unwrap();
    }
    insert_external(&db.client, &format!("src_{external_user}"), external_user, &calendar.external_busy).await;
}

/// Provider p1: several rules (two zones, overnight, inactive, another role),
/// 20 exceptions spread over 60 days in three zones plus some far outside,
/// events and holds of every status, external busy time; and rows of p2.
fn p1_calendar() -> ProviderCalendar {
    let mut inactive = rule("wr_inactive", P1, ROLE, 64, "10:00", "12:00", "Europe/Berlin", 60, 24, 90);
    inactive.active = false;
    let weekly_rules: Vec<WeeklyRule> = vec![
        rule("wr_week", P1, ROLE, 0b1_1111, "09:00", "17:00", "Europe/Berlin", 60, 24, 90),
        rule("wr_sat", P1, ROLE, 0b10_0000, "10:00", "14:00", "Europe/Berlin", 90, 48, 90),
        rule("wr_fri_night", P1, ROLE, 0b1_0000, "22:00", "02:00", "Europe/Berlin", 120, 24, 90),
        rule("wr_ny", P1, ROLE, 0b1, "18:00", "20:00", "America/New_York", 30, 12, 90),
        inactive,
        rule("wr_model", P1, "model", 127, "00:00", "00:00", "UTC", 15, 0, 90),
        rule("wr_p2", P2, ROLE, 127, "08:00", "12:00", "Europe/Berlin", 60, 24, 90),
    ];
    let mut exceptions = Vec::new();
    let first = common::date("2026-03-03");
    for i in 0..20i64 {
        let d = (first + Duration::days(3 * i)).to_string();
        let id = format!("ex_{i:02}");
        exceptions.push(match i % 4 {
            0 => exception(&id, P1, &d, "Europe/Berlin", ExceptionKind::Available, Some(("12:00", "20:00"))),
            1 => exception(&id, P1, &d, "Europe/Berlin", ExceptionKind::Unavailable, Some(("13:00", "14:00"))),
            2 => exception(&id, P1, &d, "Europe/Berlin", ExceptionKind::Unavailable, None),
            _ => exception(&id, P1, &d, "Asia/Tokyo", ExceptionKind::Unavailable, Some(("17:00", "19:00"))),
        });
    }
    // Far outside the range: must not be loaded, must not matter.
    exceptions.push(exception("ex_far_past", P1, "2026-01-10", "Europe/Berlin", ExceptionKind::Unavailable, None));
    exceptions.push(exception("ex_far_future", P1, "2026-07-01", "Europe/Berlin", ExceptionKind::Available, None));
    // Dated two days before `from` (2026-03-02T00:00Z), yet it reaches into
    // the range: overnight in UTC−12, 2026-03-01T11:00Z to 2026-03-02T10:00Z,
    // taking Monday morning out of the free time.
    exceptions.push(exception(
        "ex_gmt12",
        P1,
        "2026-02-28",
        "Etc/GMT+12",
        ExceptionKind::Unavailable,
        Some(("23:00", "22:00")),
    ));
    // On `from`'s date in UTC+14: 2026-03-01T18:00Z to 22:00Z, before the range.
    exceptions.push(exception(
        "ex_kiritimati",
        P1,
        "2026-03-02",
        "Pacific/Kiritimati",
        ExceptionKind::Available,
        Some(("08:00", "12:00")),
    ));
    exceptions.push(exception("ex_p2", P2, "2026-03-04", "Europe/Berlin", ExceptionKind::Unavailable, None));

    let far = at("2026-12-31T00:00:00Z");
    let events = vec![
        event("ev_in1", P1, iv("2026-03-03T10:00:00Z", "2026-03-03T11:00:00Z"), EventStatus::Confirmed),
        event("ev_in2", P1, iv("2026-04-15T08:00:00Z", "2026-04-15T09:30:00Z"), EventStatus::Confirmed),
        event("ev_edge", P1, iv("2026-04-30T22:00:00Z", "2026-05-01T01:00:00Z"), EventStatus::Confirmed),
        event("ev_cancelled", P1, iv("2026-03-10T09:00:00Z", "2026-03-10T10:00:00Z"), EventStatus::Cancelled),
        event("ev_far", P1, iv("2026-09-01T09:00:00Z", "2026-09-01T10:00:00Z"), EventStatus::Confirmed),
        event("ev_before", P1, iv("2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z"), EventStatus::Confirmed),
        event("ev_p2", P2, iv("2026-03-03T09:00:00Z", "2026-03-03T10:00:00Z"), EventStatus::Confirmed),
    ];
    let holds = vec![
        hold("hld_active", P1, iv("2026-03-05T09:00:00Z", "2026-03-05T10:00:00Z"), far, HoldStatus::Active),
        // Active but past its expiry at `now`: loaded, yet free time.
        hold(
            "hld_expired",
            P1,
            iv("2026-03-06T09:00:00Z", "2026-03-06T12:00:00Z"),
            at("2026-03-01T00:00:00Z"),
            HoldStatus::Active,
        ),
        hold("hld_released", P1, iv("2026-03-09T09:00:00Z", "2026-03-09T12:00:00Z"), far, HoldStatus::Released),
        hold("hld_converted", P1, iv("2026-03-11T09:00:00Z", "2026-03-11T12:00:00Z"), far, HoldStatus::Converted),
        hold("hld_far", P1, iv("2026-08-03T09:00:00Z", "2026-08-03T10:00:00Z"), far, HoldStatus::Active),
        hold("hld_p2", P2, iv("2026-03-05T09:00:00Z", "2026-03-05T10:00:00Z"), far, HoldStatus::Active),
    ];
    let external_busy =
        vec![iv("2026-03-12T12:00:00Z", "2026-03-12T15:00:00Z"), iv("2026-10-01T09:00:00Z", "2026-10-01T17:00:00Z")];
    ProviderCalendar { weekly_rules, exceptions, events, holds, external_busy, policies: Vec::new() }
}

fn now() -> Instant {
    at("2026-03-01T12:00:00Z")
}

fn range(from: &str, to: &str, duration: Option<i64>, step: i64) -> SlotRange {
    SlotRange::new(at(from), at(to), duration, StepMinutes::new(step).unwrap()).unwrap()
}

fn ids<T>(items: &[T], id: impl Fn(&T) -> &str) -> Vec<String> {
    let mut v: Vec<String> = items.iter().map(|x| id(x).to_owned()).collect();
    v.sort();
    v
}

#[tokio::test]
async fn load_calendar_is_one_statement_whatever_the_range_and_loads_what_matters() {
    let mut db = TestDb::new().await;
    let counting = Counting::new(&db.client);
    let (from, to) = (at("2026-03-02T00:00:00Z"), at("2026-05-01T00:00:00Z"));

    let empty = load_calendar(&counting, P1, ROLE, from, to, None).await.unwrap();
    assert_eq!(empty, ProviderCalendar::default());
    assert_eq!(counting.take(), 1);

    let memory = p1_calendar();
    store(&mut db, &memory, P1).await;
    let counting = Counting::new(&db.client);

    // One day or sixty: the same one statement.
    load_calendar(&counting, P1, ROLE, from, from.plus_secs(86_400), None).await.unwrap();
    assert_eq!(counting.take(), 1);
    let loaded = load_calendar(&counting, P1, ROLE, from, to, None).await.unwrap();
    assert_eq!(counting.take(), 1);

    assert_eq!(
        ids(&loaded.weekly_rules, |r| &r.rule_id),
        ["wr_fri_night", "wr_inactive", "wr_ny", "wr_sat", "wr_week"],
        "the role's rules, inactive ones included; not other roles or users"
    );
    for r in &loaded.weekly_rules {
        assert_eq!(Some(r), memory.weekly_rules.iter().find(|m| m.rule_id == r.rule_id), "read back as written");
    }
    let mut expected_exceptions: Vec<String> = (0..20).map(|i| format!("ex_{i:02}")).collect();
    expected_exceptions.extend(["ex_gmt12".into(), "ex_kiritimati".into()]);
    expected_exceptions.sort();
    assert_eq!(ids(&loaded.exceptions, |e| &e.exc_id), expected_exceptions);
    assert_eq!(ids(&loaded.events, |e| &e.event_id), ["ev_edge", "ev_in1", "ev_in2"]);
    assert_eq!(ids(&loaded.holds, |h| &h.hold_id), ["hld_active", "hld_expired"]);
    assert_eq!(loaded.external_busy, [memory.external_busy[0]]);

    // The engine on the loaded rows says what it says on everything in memory.
    for (duration, step) in [(None, 30), (Some(120), 30), (Some(60), 15), (Some(30), 60)] {
        let query = SlotQuery {
            user_id: P1.into(),
            role_code: ROLE.into(),
            range: SlotRange::new(from, to, duration, StepMinutes::new(step).unwrap()).unwrap(),
        };
        let reference = cal_core::bookable_slots(&query, &memory, now()).unwrap();
        let from_db = cal_store::slots(&counting, &query, now()).await.unwrap();
        assert_eq!(counting.take(), 1);
        assert_eq!(from_db, reference, "duration {duration:?}, step {step}");
        // Not a comparison of two empty answers. (30 min fits only the New
        // York evenings, whose minimum is 30 min: a handful of slots.)
        let expected_at_least = if duration == Some(30) { 5 } else { 100 };
        assert!(reference.slots.len() >= expected_at_least, "{duration:?}: only {} slots", reference.slots.len());
    }
}

#[tokio::test]
async fn db_slots_equal_the_engine_on_the_same_rows() {
    let mut db = TestDb::new().await;
    let memory = p1_calendar();
    store(&mut db, &memory, P1).await;

    let query = |from: &str, to: &str, duration: Option<i64>| SlotQuery {
        user_id: P1.into(),
        role_code: ROLE.into(),
        range: range(from, to, duration, 30),
    };
    // Around the spring-forward weekends (US 2026-03-08, EU 2026-03-29), the
    // Kiritimati override, the range's last slots running past `to`, and an
    // empty range.
    let cases = [
        query("2026-03-02T00:00:00Z", "2026-03-09T00:00:00Z", None),
        query("2026-03-27T00:00:00Z", "2026-03-31T00:00:00Z", Some(90)),
        query("2026-04-30T00:00:00Z", "2026-05-01T00:00:00Z", Some(240)),
        query("2026-03-03T14:00:00Z", "2026-03-03T14:00:00Z", None),
    ];
    for q in &cases {
        let reference = cal_core::bookable_slots(q, &memory, now()).unwrap();
        assert_eq!(cal_store::slots(&db.client, q, now()).await.unwrap(), reference, "{:?}", q.range);
    }

    // Busy rows do their work: nothing overlaps a confirmed event or the
    // active hold; the expired hold's time is offered.
    let week = cal_store::slots(&db.client, &cases[0], now()).await.unwrap();
    for s in &week.slots {
        let slot = Interval::new(s.start, s.end).unwrap();
        assert!(!slot.overlaps(iv("2026-03-03T10:00:00Z", "2026-03-03T11:00:00Z")), "{slot:?} overlaps ev_in1");
        assert!(!slot.overlaps(iv("2026-03-05T09:00:00Z", "2026-03-05T10:00:00Z")), "{slot:?} overlaps hld_active");
    }
    assert!(week.slots.iter().any(|s| s.start == at("2026-03-06T09:00:00Z")), "an expired hold is free time");

    // A refused query names its field.
    let short = query("2026-03-02T00:00:00Z", "2026-03-09T00:00:00Z", Some(10));
    match cal_store::slots(&db.client, &short, now()).await {
        Err(StoreError::Validation { field, .. }) => assert_eq!(field, "duration_min"),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[tokio::test]
async fn common_slots_equal_the_engine_on_the_same_rows() {
    let mut db = TestDb::new().await;
    let p1 = p1_calendar();
    store(&mut db, &p1, P1).await;
    // p2's own rows are already in p1_calendar (rule, exception, event, hold);
    // give p2 external busy time of its own.
    let p2_busy = vec![iv("2026-03-04T07:00:00Z", "2026-03-04T09:00:00Z")];
    insert_external(&db.client, "src_p2", P2, &p2_busy).await;
    let p2 = ProviderCalendar { external_busy: p2_busy, ..p1.clone() };
    let p1_only = ProviderCalendar { external_busy: p1.external_busy.clone(), ..p1.clone() };

    let r = range("2026-03-02T00:00:00Z", "2026-03-16T00:00:00Z", None, 30);
    for mode in [Combine::AllOf, Combine::AnyOf] {
        let participants = [
            Participant { user_id: P1, role_code: ROLE, calendar: &p1_only },
            Participant { user_id: P2, role_code: ROLE, calendar: &p2 },
        ];
        let reference = cal_core::common_slots(mode, &participants, &r, now()).unwrap();
        let from_db = cal_store::common_slots(&db.client, mode, &[(P1, ROLE), (P2, ROLE)], &r, now()).await.unwrap();
        assert_eq!(from_db, reference, "{mode:?}");
        assert!(!reference.slots.is_empty(), "{mode:?} has slots");
    }
}

#[tokio::test]
async fn seed_demo_is_idempotent_and_shows_next_week() {
    let mut db = TestDb::new().await;
    // A Wednesday; next week starts Monday 2026-03-09.
    let now = at("2026-03-04T15:00:00Z");
    let first = seed_demo(&mut db.client, now).await.unwrap();
    async fn counts(db: &TestDb) -> Vec<i64> {
        let mut v = Vec::new();
        for t in ["weekly_rule", "exception", "event", "hold"] {
            v.push(db.count(&format!("select count(*) from cal.{t} where user_id = '{DEMO_USER}'")).await);
        }
        v
    }
    let after_first = counts(&db).await;
    assert_eq!(
        after_first,
        [2, 4, 3, 4],
        "2 rules; 2 vacation days, 1 override, the sample trade fair; 2 events + the sample's; 1 hold + the sample's 3"
    );
    let second = seed_demo(&mut db.client, now).await.unwrap();
    assert_eq!(counts(&db).await, after_first, "re-running replaces, never duplicates");
    assert_eq!(second.week_start, common::date("2026-03-09"));
    assert_eq!(
        (first.vacation, first.override_date, first.events.clone(), first.hold.clone()),
        (second.vacation, second.override_date, second.events.clone(), second.hold.clone())
    );
    assert!(second.version > first.version);

    let week = SlotQuery {
        user_id: DEMO_USER.into(),
        role_code: DEMO_ROLE.into(),
        range: range("2026-03-08T23:00:00Z", "2026-03-15T23:00:00Z", None, 30),
    };
    let answer = cal_store::slots(&db.client, &week, now).await.unwrap();
    let local = |s: &cal_core::Slot| s.start_local();
    let on = |day: &str| answer.slots.iter().filter(|s| local(s).starts_with(day)).map(local).collect::<Vec<_>>();
    assert!(on("2026-03-11").is_empty() && on("2026-03-12").is_empty(), "vacation Wednesday and Thursday");
    assert_eq!(
        on("2026-03-14").first().map(String::as_str),
        Some("2026-03-14T12:00:00+01:00"),
        "Saturday opens at 12:00, not 10:00"
    );
    assert_eq!(on("2026-03-14").last().map(String::as_str), Some("2026-03-14T17:00:00+01:00"), "and closes at 18:00");
    assert!(!on("2026-03-09").contains(&"2026-03-09T10:00:00+01:00".to_string()), "the Monday event is busy");
    assert!(
        on("2026-03-09").contains(&"2026-03-09T09:00:00+01:00".to_string())
            || on("2026-03-09").contains(&"2026-03-09T12:00:00+01:00".to_string())
    );
    assert!(!on("2026-03-10").contains(&"2026-03-10T13:00:00+01:00".to_string()), "the Tuesday hold is busy");
    assert!(on("2026-03-10").contains(&"2026-03-10T15:00:00+01:00".to_string()));
    assert!(!on("2026-03-13").is_empty(), "Friday is open around its event");
}

#[tokio::test]
async fn the_loaded_range_covers_slots_running_past_to() {
    let mut db = TestDb::new().await;
    // Whole days every day, and a 5-day booking asked for over one day: a
    // slot starting before `to` runs 5 days past it, so an event 4.5 days
    // after `to` must be loaded (the range is padded by the duration, not
    // only by 2 days).
    let retreat = rule("wr_retreat", "p3", "retreat", 127, "00:00", "00:00", "UTC", 60, 0, 90);
    put_rule(&mut db.client, &retreat).await.unwrap();
    let q = SlotQuery {
        user_id: "p3".into(),
        role_code: "retreat".into(),
        range: range("2026-03-16T00:00:00Z", "2026-03-17T00:00:00Z", Some(7200), 60),
    };

    let before = cal_store::slots(&db.client, &q, now()).await.unwrap();
    assert_eq!(before.slots.len(), 24, "free: every hour of the day");

    let late = iv("2026-03-21T12:00:00Z", "2026-03-21T13:00:00Z");
    insert_event(&db.client, "ev_late", "p3", late, "confirmed").await.unwrap();
    let memory = ProviderCalendar {
        weekly_rules: vec![retreat],
        events: vec![event("ev_late", "p3", late, EventStatus::Confirmed)],
        ..ProviderCalendar::default()
    };
    let reference = cal_core::bookable_slots(&q, &memory, now()).unwrap();
    assert_eq!(reference.slots.len(), 13, "only slots ending by the event's start (00:00 to 12:00)");
    assert_eq!(cal_store::slots(&db.client, &q, now()).await.unwrap(), reference);
}
