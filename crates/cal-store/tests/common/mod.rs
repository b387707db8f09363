//! A fresh database per test on the server of `DATABASE_URL`.
//!
//! `make test` starts a throwaway PostgreSQL and sets `DATABASE_URL`; any
//! server the URL's user may create databases on works. Each test gets its
//! own database (migrations applied), dropped when the test ends, pass or
//! fail, so tests run in parallel without seeing each other.

#![allow(dead_code)] // each test binary uses a different part

use cal_core::availability::{BookingParams, Exception, ExceptionKind, WeekdayMask, WeeklyRule};
use cal_core::time::{Instant, Interval, LocalTime, Zone};
use chrono::NaiveDate;

pub use cal_store::testing::TestDb;
use tokio_postgres::Client;

pub fn at(s: &str) -> Instant {
    Instant::parse(s).unwrap()
}

pub fn iv(a: &str, b: &str) -> Interval {
    Interval::new(at(a), at(b)).unwrap()
}

pub fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

pub fn zone(s: &str) -> Zone {
    Zone::parse(s).unwrap()
}

pub fn lt(s: &str) -> LocalTime {
    LocalTime::parse(s).unwrap()
}

#[allow(clippy::too_many_arguments)]
pub fn rule(
    id: &str,
    user: &str,
    role: &str,
    mask: i64,
    s: &str,
    e: &str,
    tz: &str,
    min_dur: i64,
    lead: i64,
    window: i64,
) -> WeeklyRule {
    WeeklyRule {
        rule_id: id.into(),
        user_id: user.into(),
        role_code: role.into(),
        weekday_mask: WeekdayMask::new(mask).unwrap(),
        start_local: lt(s),
        end_local: lt(e),
        timezone: zone(tz),
        params: BookingParams::new(Some(min_dur), Some(lead), Some(window)).unwrap(),
        active: true,
    }
}

pub fn exception(
    id: &str,
    user: &str,
    d: &str,
    tz: &str,
    kind: ExceptionKind,
    times: Option<(&str, &str)>,
) -> Exception {
    Exception {
        exc_id: id.into(),
        user_id: user.into(),
        date_local: date(d),
        timezone: zone(tz),
        kind,
        times: times.map(|(s, e)| (lt(s), lt(e))),
    }
}

/// Inserts a confirmed or cancelled event directly (the booking code is a
/// later issue).
pub async fn insert_event(
    db: &Client,
    id: &str,
    user: &str,
    interval: Interval,
    status: &str,
) -> Result<u64, tokio_postgres::Error> {
    db.execute(
        "insert into cal.event (event_id, user_id, role_code, start_at, end_at, status, ics_uid, timezone)
         values ($1, $2, 'photographer', $3, $4, $5, $1 || '@test', 'UTC')",
        &[&id, &user, &interval.start().to_chrono(), &interval.end().to_chrono(), &status],
    )
    .await
}

/// Inserts a checkout hold directly.
pub async fn insert_hold(
    db: &Client,
    id: &str,
    user: &str,
    interval: Interval,
    expires_at: Instant,
    status: &str,
) -> Result<u64, tokio_postgres::Error> {
    let converted = (status == "converted").then(|| format!("ev_for_{id}"));
    if let Some(ev) = &converted {
        insert_event(db, ev, user, interval, "cancelled").await?;
    }
    db.execute(
        "insert into cal.hold (hold_id, user_id, role_code, start_at, end_at, kind, mode, status, expires_at,
                               idempotency_key, request_fingerprint, converted_event_id)
         values ($1, $2, 'photographer', $3, $4, 'checkout', 'instant', $5, $6, 'key_' || $1, 'fp', $7)",
        &[
            &id,
            &user,
            &interval.start().to_chrono(),
            &interval.end().to_chrono(),
            &status,
            &expires_at.to_chrono(),
            &converted,
        ],
    )
    .await
}

/// Inserts an external source and busy occurrences.
pub async fn insert_external(db: &Client, source: &str, user: &str, busy: &[Interval]) {
    db.execute(
        "insert into cal.external_source (source_id, user_id, url, url_hash)
         values ($1, $2, 'https://example.invalid/' || $1 || '.ics', sha256(convert_to($1, 'UTF8')))",
        &[&source, &user],
    )
    .await
    .unwrap();
    for (i, b) in busy.iter().enumerate() {
        db.execute(
            "insert into cal.external_event (source_id, user_id, uid, start_at, end_at, summary)
             values ($1, $2, $3, $4, $5, 'busy')",
            &[&source, &user, &format!("uid{i}"), &b.start().to_chrono(), &b.end().to_chrono()],
        )
        .await
        .unwrap();
    }
}

/// `DATABASE_URL` pointing at the database `name` (URL or key=value form).
pub fn url_for(name: &str) -> String {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL is set");
    if let Some(scheme_end) = url.find("://") {
        let (base, query) = match url.find('?') {
            Some(q) => (&url[..q], &url[q..]),
            None => (url.as_str(), ""),
        };
        let authority_end = base[scheme_end + 3..].find('/').map_or(base.len(), |i| scheme_end + 3 + i);
        format!("{}/{name}{query}", &base[..authority_end])
    } else {
        format!("{url} dbname={name}")
    }
}
