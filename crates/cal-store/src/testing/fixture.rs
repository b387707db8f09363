//! The one fixture every crate's tests share: the provider `prov-ana`
//! (photographer, weekdays 09:00–17:00 in Europe/Berlin, 60-minute minimum,
//! 24 h lead time, 60-day window), her customer `cust-ben`, and a clock on
//! Friday 2030-03-01 before the fixture's Monday 2030-03-04.

use cal_core::holds::{HoldKind, HoldMode, HoldRequest, HoldRequestInput};
use cal_core::{BookingParams, Instant, LocalTime, WeekdayMask, WeeklyRule, Zone};

/// A Friday; the fixture's times are on Monday 2030-03-04.
pub const NOW: &str = "2030-03-01T00:00:00Z";
/// The fixture's provider.
pub const PROVIDER: &str = "prov-ana";
/// Another provider (weekdays 10:00–18:00 where a test seeds her).
pub const OTHER_PROVIDER: &str = "prov-cara";
/// The customer of the fixture's holds and events.
pub const CUSTOMER: &str = "cust-ben";
/// The role of every fixture rule.
pub const ROLE: &str = "photographer";
/// The zone of every fixture rule.
pub const ZONE: &str = "Europe/Berlin";

/// The instant of an RFC 3339 text.
pub fn at(s: &str) -> Instant {
    Instant::parse(s).unwrap()
}

/// An active photographer rule in Europe/Berlin with the fixture's
/// parameters (60-minute minimum, 24 h lead time, 60-day window).
pub fn rule(id: &str, user: &str, mask: i64, start: &str, end: &str) -> WeeklyRule {
    WeeklyRule {
        rule_id: id.into(),
        user_id: user.into(),
        role_code: ROLE.into(),
        weekday_mask: WeekdayMask::new(mask).unwrap(),
        start_local: LocalTime::parse(start).unwrap(),
        end_local: LocalTime::parse(end).unwrap(),
        timezone: Zone::parse(ZONE).unwrap(),
        params: BookingParams::new(Some(60), Some(24), Some(60)).unwrap(),
        active: true,
    }
}

/// A hold of `cust-ben` on `prov-ana`'s photographer calendar.
pub fn hold_request(start: &str, end: &str, kind: HoldKind, mode: HoldMode, event_id: Option<&str>, key: &str) -> HoldRequest {
    HoldRequest::new(HoldRequestInput {
        user_id: PROVIDER.into(),
        role_code: ROLE.into(),
        customer_id: Some(CUSTOMER.into()),
        start: at(start),
        end: at(end),
        kind: Some(kind),
        mode: Some(mode),
        event_id: event_id.map(str::to_owned),
        ttl_min: None,
        step_min: None,
        idempotency_key: key.into(),
    })
    .unwrap()
}
