//! A demo provider for local runs and walkthroughs.
//!
//! Its dates are relative to the `now` passed in, so "next week" always
//! shows every feature: regular hours, a vacation, a day with different
//! hours, booked events and a hold.

use cal_core::availability::{BookingParams, Exception, ExceptionKind, WeekdayMask, WeeklyRule};
use cal_core::time::{Instant, Interval, LocalTime, Zone};
use chrono::{Datelike, Duration, NaiveDate};

use crate::db::{Begin, Executor};
use crate::error::StoreError;
use crate::outbox;
use crate::rules::{add_vacation, put_rule, upsert_exception};

/// The demo provider's user id.
pub const DEMO_USER: &str = "demo_provider";
/// The demo provider's role.
pub const DEMO_ROLE: &str = "photographer";
/// The demo provider's zone.
pub const DEMO_ZONE: &str = "Europe/Berlin";

/// What [`seed_demo`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoSummary {
    /// [`DEMO_USER`].
    pub user_id: String,
    /// [`DEMO_ROLE`].
    pub role_code: String,
    /// The provider's zone.
    pub timezone: Zone,
    /// Monday of next week (local), the week the demo is laid out in.
    pub week_start: NaiveDate,
    /// Weekly rules: Mon–Fri 09:00–17:00 and Sat 10:00–14:00.
    pub rule_ids: Vec<String>,
    /// Vacation: Wednesday and Thursday of next week.
    pub vacation: (NaiveDate, NaiveDate),
    /// Saturday of next week, open 12:00–18:00 instead of 10:00–14:00.
    pub override_date: NaiveDate,
    /// Confirmed events (Monday 10:00–12:00, Friday 14:00–15:30).
    pub events: Vec<(String, Interval)>,
    /// An active admin hold (Tuesday 13:00–14:30) and its interval; it
    /// expires when it begins.
    pub hold: (String, Interval),
    /// The provider's version after seeding.
    pub version: i64,
}

fn t(text: &str) -> LocalTime {
    LocalTime::parse(text).expect("demo times are valid")
}

/// Replaces the demo provider's rules, exceptions, events and holds with a
/// fresh demo laid out in the week after `now` (Berlin time). Idempotent:
/// running it again gives the same rows (relative to its `now`). One
/// (sub-)transaction.
pub async fn seed_demo(db: &mut impl Begin, now: Instant) -> Result<DemoSummary, StoreError> {
    let zone = Zone::parse(DEMO_ZONE).expect("a tz database zone");
    let today = zone.date_at(now);
    let week_start = today + Duration::days(7 - i64::from(today.weekday().num_days_from_monday()));
    let day = |n: i64| week_start + Duration::days(n);
    let span = |date: NaiveDate, s: &str, e: &str| zone.span(date, t(s), t(e)).expect("demo hours exist in Berlin");

    let mut tx = db.begin().await?;
    // One statement, so the foreign keys between holds and events (either
    // may point at the other) are checked only once both are gone.
    tx.execute(
        "with h as (delete from cal.hold where user_id = $1),
              e as (delete from cal.event where user_id = $1),
              x as (delete from cal.exception where user_id = $1)
         delete from cal.weekly_rule where user_id = $1",
        &[&DEMO_USER],
    )
    .await?;

    let params = BookingParams::new(Some(60), Some(24), Some(60)).expect("demo parameters are in range");
    let rule = |id: &str, mask: i64, s: &str, e: &str| WeeklyRule {
        rule_id: id.to_owned(),
        user_id: DEMO_USER.to_owned(),
        role_code: DEMO_ROLE.to_owned(),
        weekday_mask: WeekdayMask::new(mask).expect("demo masks are valid"),
        start_local: t(s),
        end_local: t(e),
        timezone: zone,
        params,
        active: true,
    };
    let mut rule_ids = Vec::new();
    for r in
        [rule("wr_demo_weekdays", 0b001_1111, "09:00", "17:00"), rule("wr_demo_saturday", 0b010_0000, "10:00", "14:00")]
    {
        rule_ids.push(put_rule(&mut tx, &r).await?.rule_id);
    }

    let vacation = (day(2), day(3));
    add_vacation(&mut tx, DEMO_USER, vacation.0, vacation.1, zone, Some("demo vacation")).await?;
    let override_date = day(5);
    let override_day = Exception {
        exc_id: "ex_demo_saturday_hours".to_owned(),
        user_id: DEMO_USER.to_owned(),
        date_local: override_date,
        timezone: zone,
        kind: ExceptionKind::Available,
        times: Some((t("12:00"), t("18:00"))),
    };
    upsert_exception(&mut tx, &override_day, Some("demo: different hours")).await?;

    let events = vec![
        ("ev_demo_monday".to_owned(), span(day(0), "10:00", "12:00")),
        ("ev_demo_friday".to_owned(), span(day(4), "14:00", "15:30")),
    ];
    for (id, iv) in &events {
        tx.execute(
            "insert into cal.event (event_id, user_id, role_code, start_at, end_at, status, ics_uid, summary, timezone)
             values ($1, $2, $3, $4, $5, 'confirmed', $1 || '@cal.demo', 'Demo booking', $6)",
            &[id, &DEMO_USER, &DEMO_ROLE, &iv.start().to_chrono(), &iv.end().to_chrono(), &DEMO_ZONE],
        )
        .await?;
    }
    let hold = ("hld_demo_tuesday".to_owned(), span(day(1), "13:00", "14:30"));
    tx.execute(
        "insert into cal.hold (hold_id, user_id, role_code, start_at, end_at, kind, mode, status, expires_at,
                               idempotency_key, request_fingerprint)
         values ($1, $2, $3, $4, $5, 'admin', 'instant', 'active', $4, 'demo-seed', 'demo-seed')",
        &[&hold.0, &DEMO_USER, &DEMO_ROLE, &hold.1.start().to_chrono(), &hold.1.end().to_chrono()],
    )
    .await?;
    let version = outbox::bump_version(&tx, DEMO_USER).await?;
    tx.commit().await?;

    Ok(DemoSummary {
        user_id: DEMO_USER.to_owned(),
        role_code: DEMO_ROLE.to_owned(),
        timezone: zone,
        week_start,
        rule_ids,
        vacation,
        override_date,
        events,
        hold,
        version,
    })
}
