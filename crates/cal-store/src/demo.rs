//! A demo provider for local runs and walkthroughs.
//!
//! Two parts. The demo week is relative to the `now` passed in, so "next
//! week" always shows every feature: regular hours, a vacation, a day with
//! different hours, booked events and a hold (`make demo`). The sample week
//! is fixed ([`SAMPLE_WEEK`]): the bookings the `events/appsync` payloads
//! name by id, at the instants they name, so every payload answers as its
//! file name promises right after `calctl seed-demo` (`make invoke`). The
//! rules' booking window is the longest there is, so that week stays
//! bookable from now on until shortly before it begins.

use cal_core::availability::{BookingParams, Exception, ExceptionKind, MAX_BOOKING_WINDOW_DAYS, WeekdayMask, WeeklyRule};
use cal_core::holds::{HoldKind, HoldMode, HoldRequest, HoldRequestInput, MAX_INSTANT_TTL_MIN};
use cal_core::time::{Instant, Interval, LocalTime, Zone};
use cal_core::BookingPolicy;
use chrono::{Datelike, Duration, NaiveDate};

use crate::db::{Begin, Executor};
use crate::error::StoreError;
use crate::outbox;
use crate::policies::put_policy;
use crate::rules::{add_vacation, put_rule, upsert_exception};
use crate::sources::CalendarUrl;

/// The demo provider's user id.
pub const DEMO_USER: &str = "demo_provider";
/// The demo provider's role.
pub const DEMO_ROLE: &str = "photographer";
/// The demo provider's zone.
pub const DEMO_ZONE: &str = "Europe/Berlin";
/// Another provider, same role and zone, weekdays 10:00–18:00: the second
/// calendar of `commonSlots` and the "other provider" of the samples.
pub const DEMO_PARTNER: &str = "demo_partner";
/// The customer of the sample bookings.
pub const DEMO_CUSTOMER: &str = "demo_customer";

/// Monday of the fixed week the `events/appsync` samples are about (local
/// dates in [`DEMO_ZONE`]). It must stay more than a day ahead of the
/// clock (the lead time) and within [`MAX_BOOKING_WINDOW_DAYS`]; moving it
/// means moving the dates in `events/appsync` (fn-api's tests say when).
pub const SAMPLE_WEEK: &str = "2030-03-04";
/// The ids the samples name, all in the sample week.
pub mod sample {
    /// An active checkout hold of [`super::DEMO_CUSTOMER`], Monday 10:00–11:00.
    pub const CHECKOUT_HOLD: &str = "hld_demo_checkout";
    /// A pending Request-to-Book hold, Monday 12:00–13:00.
    pub const REQUEST_HOLD: &str = "hld_demo_request";
    /// A confirmed event with the customer, Monday 14:00–15:00.
    pub const EVENT: &str = "ev_demo_booked";
    /// A reschedule hold moving [`EVENT`] to Tuesday 14:00–15:00.
    pub const RESCHEDULE_HOLD: &str = "hld_demo_reschedule";
    /// A connected ICS calendar of the demo provider.
    pub const SOURCE: &str = "src_demo_google";
    /// Its private URL (a secret the API never returns).
    pub const SOURCE_URL: &str =
        "https://calendar.google.com/calendar/ical/demo.provider%40example.com/private-0123456789abcdef0123456789abcdef/basic.ics";
    /// A whole day off: Monday after the sample week, "Trade fair".
    pub const EXCEPTION: &str = "ex_demo_trade_fair";
    /// The demo provider's Saturday rule (`deleteWeeklyRule`).
    pub const SATURDAY_RULE: &str = "wr_demo_saturday";
    /// A Google Calendar connection of the demo provider (two-way sync).
    pub const CONNECTION: &str = "con_demo_google";
    /// Its one calendar (blocking time; not yet receiving bookings).
    pub const SYNC_CALENDAR: &str = "demo.provider@example.com";
}

/// The sample week's Monday.
pub fn sample_week() -> NaiveDate {
    cal_core::time::parse_date(SAMPLE_WEEK).expect("SAMPLE_WEEK is a date")
}

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
    /// Monday of the sample week ([`SAMPLE_WEEK`]) and its bookings.
    pub sample_week: NaiveDate,
    /// The provider's version after seeding.
    pub version: i64,
}

fn t(text: &str) -> LocalTime {
    LocalTime::parse(text).expect("demo times are valid")
}

/// Replaces the demo providers' rules, exceptions, events, holds, ICS
/// sources and feed with a fresh demo laid out in the week after `now`
/// (Berlin time), plus the sample week's bookings. Idempotent: running it
/// again gives the same rows (relative to its `now`). One
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
    let users = [DEMO_USER, DEMO_PARTNER];
    tx.execute(
        "with h as (delete from cal.hold where user_id = any($1)),
              e as (delete from cal.event where user_id = any($1)),
              x as (delete from cal.exception where user_id = any($1)),
              s as (delete from cal.external_source where user_id = any($1)),
              f as (delete from cal.ics_feed where user_id = any($1)),
              c as (delete from cal.sync_connection where user_id = any($1)),
              p as (delete from cal.booking_policy where user_id = any($1))
         delete from cal.weekly_rule where user_id = any($1)",
        &[&&users[..]],
    )
    .await?;

    // The longest booking window: the sample week is bookable now.
    let window = i64::from(MAX_BOOKING_WINDOW_DAYS);
    let params = BookingParams::new(Some(60), Some(24), Some(window)).expect("demo parameters are in range");
    let rule = |id: &str, user: &str, mask: i64, s: &str, e: &str| WeeklyRule {
        rule_id: id.to_owned(),
        user_id: user.to_owned(),
        role_code: DEMO_ROLE.to_owned(),
        weekday_mask: WeekdayMask::new(mask).expect("demo masks are valid"),
        start_local: t(s),
        end_local: t(e),
        timezone: zone,
        params,
        active: true,
    };
    let mut rule_ids = Vec::new();
    for r in [
        rule("wr_demo_weekdays", DEMO_USER, 0b001_1111, "09:00", "17:00"),
        rule(sample::SATURDAY_RULE, DEMO_USER, 0b010_0000, "10:00", "14:00"),
    ] {
        rule_ids.push(put_rule(&mut tx, &r).await?.rule_id);
    }
    put_rule(&mut tx, &rule("wr_demo_partner_weekdays", DEMO_PARTNER, 0b001_1111, "10:00", "18:00")).await?;
    // A booking policy (`bookingPolicies`, `deleteBookingPolicy`): a week
    // limit no sample comes near, so every sample hold stays bookable.
    let policy = BookingPolicy {
        user_id: DEMO_USER.to_owned(),
        role_code: DEMO_ROLE.to_owned(),
        timezone: zone,
        buffer_before_min: 0,
        buffer_after_min: 0,
        max_per_day: None,
        max_per_week: Some(40),
    };
    put_policy(&mut tx, &policy).await?;

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
    seed_sample_week(&mut tx, zone, now).await?;
    outbox::bump_version(&tx, DEMO_PARTNER).await?;
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
        sample_week: sample_week(),
        version,
    })
}

/// The bookings, calendar and feed the `events/appsync` samples name (see
/// [`sample`]), written as the booking paths would have left them: holds
/// with their requests' fingerprints and TTLs counted from `now` (an hour
/// for instant holds, a day for the request: seed again to renew them).
async fn seed_sample_week(tx: &mut impl Begin, zone: Zone, now: Instant) -> Result<(), StoreError> {
    let monday = sample_week();
    let at = |days: i64, s: &str, e: &str| {
        zone.span(monday + Duration::days(days), t(s), t(e)).expect("sample hours exist in Berlin")
    };
    let trade_fair = Exception {
        exc_id: sample::EXCEPTION.to_owned(),
        user_id: DEMO_USER.to_owned(),
        date_local: monday + Duration::days(7),
        timezone: zone,
        kind: ExceptionKind::Unavailable,
        times: None,
    };
    upsert_exception(tx, &trade_fair, Some("Trade fair")).await?;

    let booked = at(0, "14:00", "15:00");
    tx.execute(
        "insert into cal.event (event_id, user_id, role_code, customer_id, start_at, end_at, status, ics_uid, timezone)
         values ($1, $2, $3, $4, $5, $6, 'confirmed', $1 || '@cal', $7)",
        &[&sample::EVENT, &DEMO_USER, &DEMO_ROLE, &DEMO_CUSTOMER, &booked.start().to_chrono(), &booked.end().to_chrono(), &DEMO_ZONE],
    )
    .await?;
    let holds = [
        (sample::CHECKOUT_HOLD, at(0, "10:00", "11:00"), HoldKind::Checkout, HoldMode::Instant, None),
        (sample::REQUEST_HOLD, at(0, "12:00", "13:00"), HoldKind::Checkout, HoldMode::Request, None),
        (sample::RESCHEDULE_HOLD, at(1, "14:00", "15:00"), HoldKind::Reschedule, HoldMode::Instant, Some(sample::EVENT)),
    ];
    for (id, iv, kind, mode, event_id) in holds {
        let req = HoldRequest::new(HoldRequestInput {
            user_id: DEMO_USER.to_owned(),
            role_code: DEMO_ROLE.to_owned(),
            customer_id: Some(DEMO_CUSTOMER.to_owned()),
            start: iv.start(),
            end: iv.end(),
            kind: Some(kind),
            mode: Some(mode),
            event_id: event_id.map(str::to_owned),
            ttl_min: (mode == HoldMode::Instant).then_some(i64::from(MAX_INSTANT_TTL_MIN)),
            step_min: None,
            idempotency_key: format!("demo-seed-{id}"),
        })
        .expect("sample holds are valid requests");
        tx.execute(
            "insert into cal.hold (hold_id, user_id, role_code, customer_id, start_at, end_at, kind, mode, status,
                                   expires_at, event_id, idempotency_key, request_fingerprint)
             values ($1, $2, $3, $4, $5, $6, $7, $8, 'active', $9, $10, $11, $12)",
            &[
                &id,
                &req.user_id,
                &req.role_code,
                &req.customer_id,
                &iv.start().to_chrono(),
                &iv.end().to_chrono(),
                &kind.as_str(),
                &mode.as_str(),
                &req.expires_at(now).to_chrono(),
                &req.event_id,
                &req.idempotency_key,
                &req.fingerprint(),
            ],
        )
        .await?;
    }

    let url = CalendarUrl::parse(sample::SOURCE_URL).expect("the sample URL is a calendar URL");
    tx.execute(
        "insert into cal.external_source (source_id, user_id, url, url_hash, label, status, next_poll_at, created_at, updated_at)
         values ($1, $2, $3, $4, 'Google (work)', 'active', $5, $5, $5)",
        &[&sample::SOURCE, &DEMO_USER, &url.expose(), &&url.hash()[..], &now.to_chrono()],
    )
    .await?;
    crate::feeds::create_feed(tx, DEMO_USER, now).await?;

    // A Google connection as the OAuth callback leaves one. Its sealed token
    // is a placeholder that opens nowhere: the demo never reaches Google.
    let account = cal_sync::Account { subject: sample::SYNC_CALENDAR.into(), display: sample::SYNC_CALENDAR.into() };
    let calendars = [cal_sync::RemoteCalendar {
        id: sample::SYNC_CALENDAR.into(),
        name: "Demo Provider".into(),
        primary: true,
        writable: true,
        time_zone: Some(DEMO_ZONE.into()),
    }];
    let placeholder = cal_sync::jobs::Sealed { ciphertext: b"demo: not a token".to_vec(), nonce: vec![0; 12], wrapped_key: vec![0; 8] };
    let connection = crate::sync::NewConnection {
        user_id: DEMO_USER,
        service: cal_sync::ServiceKind::Google,
        account: &account,
        token: &placeholder,
        connection_id: sample::CONNECTION,
        scopes: None,
        calendars: &calendars,
    };
    crate::sync::save_connection(tx, &connection).await?;
    Ok(())
}
