//! The pure half of holds: request validation, fingerprints, the state
//! machine and the re-check with alternatives (SEMANTICS.md §5).

use cal_core::holds::{self, Conversion, HoldKind, HoldMode, HoldRequest, HoldRequestInput};
use cal_core::{
    BookingError, BookingParams, ErrorType, EventBusy, EventStatus, HoldBusy, HoldStatus, Instant, Interval, LocalTime,
    ProviderCalendar, WeekdayMask, WeeklyRule, Zone,
};

fn at(s: &str) -> Instant {
    Instant::parse(s).unwrap()
}

fn input(start: &str, end: &str) -> HoldRequestInput {
    HoldRequestInput {
        user_id: "p".into(),
        role_code: "photographer".into(),
        customer_id: Some("c".into()),
        start: at(start),
        end: at(end),
        kind: None,
        mode: None,
        event_id: None,
        ttl_min: None,
        step_min: None,
        idempotency_key: "k1".into(),
    }
}

/// Weekdays 09:00–17:00 UTC, 60 min minimum, no lead time.
fn calendar() -> ProviderCalendar {
    ProviderCalendar {
        weekly_rules: vec![WeeklyRule {
            rule_id: "wr".into(),
            user_id: "p".into(),
            role_code: "photographer".into(),
            weekday_mask: WeekdayMask::new(31).unwrap(),
            start_local: LocalTime::parse("09:00").unwrap(),
            end_local: LocalTime::parse("17:00").unwrap(),
            timezone: Zone::UTC,
            params: BookingParams { min_duration_min: 60, lead_time_hours: 0, booking_window_days: 60 },
            active: true,
        }],
        ..ProviderCalendar::default()
    }
}

fn event(id: &str, start: &str, end: &str) -> EventBusy {
    EventBusy { event_id: id.into(), user_id: "p".into(), role_code: None, interval: Interval::new(at(start), at(end)).unwrap(), status: EventStatus::Confirmed }
}

const NOW: &str = "2026-03-01T12:00:00Z";

#[test]
fn defaults_and_limits_of_a_request() {
    let r = HoldRequest::new(input("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z")).unwrap();
    assert_eq!((r.kind, r.mode, r.ttl_min, r.minutes()), (HoldKind::Checkout, HoldMode::Instant, 10, 60));
    assert_eq!(r.expires_at(at(NOW)).rfc3339(), "2026-03-01T12:10:00Z");
    let mut i = input("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z");
    i.mode = Some(HoldMode::Request);
    assert_eq!(HoldRequest::new(i.clone()).unwrap().ttl_min, 24 * 60);
    i.ttl_min = Some(73 * 60);
    let err = HoldRequest::new(i).unwrap_err();
    assert_eq!(err.error_type(), ErrorType::Validation);
    assert!(err.to_string().starts_with("ttl_min: must be between 1 and 4320"), "{err}");

    let err = HoldRequest::new(input("2026-03-02T10:00:00Z", "2026-03-02T10:00:00Z")).unwrap_err();
    assert!(err.to_string().starts_with("end: "), "{err}");
    let err = HoldRequest::new(input("2026-03-02T10:00:00Z", "2026-03-02T10:59:30Z")).unwrap_err();
    assert!(err.to_string().contains("whole number of minutes"), "{err}");
    let mut i = input("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z");
    i.kind = Some(HoldKind::Reschedule);
    assert!(HoldRequest::new(i).unwrap_err().to_string().starts_with("event_id: "));
    let mut i = input("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z");
    i.idempotency_key = " ".into();
    assert!(HoldRequest::new(i).unwrap_err().to_string().starts_with("idempotency_key: "));
}

#[test]
fn fingerprint_covers_the_request_but_not_the_key() {
    let a = HoldRequest::new(input("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z")).unwrap();
    let mut same = input("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z");
    same.idempotency_key = "another".into();
    assert_eq!(a.fingerprint(), HoldRequest::new(same).unwrap().fingerprint());
    assert_eq!(a.fingerprint().len(), 64);
    let later = HoldRequest::new(input("2026-03-02T10:30:00Z", "2026-03-02T11:30:00Z")).unwrap();
    assert_ne!(a.fingerprint(), later.fingerprint());
    let mut other_customer = input("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z");
    other_customer.customer_id = Some("c2".into());
    assert_ne!(a.fingerprint(), HoldRequest::new(other_customer).unwrap().fingerprint());
}

#[test]
fn conversion_follows_the_state_machine() {
    let now = at(NOW);
    let later = now.plus_secs(60);
    assert_eq!(holds::conversion("h", HoldStatus::Active, later, now), Ok(Conversion::Proceed));
    assert_eq!(holds::conversion("h", HoldStatus::Converted, later, now), Ok(Conversion::AlreadyConverted));
    // Expiring exactly now is expired, sweeper or not.
    assert_eq!(holds::conversion("h", HoldStatus::Active, now, now).unwrap_err().error_type(), ErrorType::HoldExpired);
    assert_eq!(holds::conversion("h", HoldStatus::Expired, later, now).unwrap_err().error_type(), ErrorType::HoldExpired);
    assert_eq!(holds::conversion("h", HoldStatus::Released, later, now).unwrap_err().error_type(), ErrorType::HoldReleased);
    assert_eq!(holds::release("h", HoldStatus::Active, later, now), Ok(true));
    assert_eq!(holds::release("h", HoldStatus::Released, later, now), Ok(false));
    assert_eq!(holds::release("h", HoldStatus::Converted, later, now).unwrap_err().error_type(), ErrorType::Validation);
}

#[test]
fn checkout_must_be_a_feasible_slot_and_a_loser_gets_nearby_alternatives() {
    let mut cal = calendar();
    cal.events.push(event("ev1", "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"));
    let free = HoldRequest::new(input("2026-03-02T12:00:00Z", "2026-03-02T13:00:00Z")).unwrap();
    assert_eq!(holds::check_hold(&free, &cal, at(NOW)), Ok(()));
    let off_grid = HoldRequest::new(input("2026-03-02T12:10:00Z", "2026-03-02T13:10:00Z")).unwrap();
    assert!(matches!(holds::check_hold(&off_grid, &cal, at(NOW)), Err(BookingError::Conflict { .. })));

    let taken = HoldRequest::new(input("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z")).unwrap();
    let Err(BookingError::Conflict { alternatives }) = holds::check_hold(&taken, &cal, at(NOW)) else { panic!("conflict expected") };
    let starts: Vec<String> = alternatives.iter().map(|s| s.start.rfc3339()).collect();
    assert_eq!(starts, ["2026-03-02T09:00:00Z", "2026-03-02T11:00:00Z", "2026-03-02T11:30:00Z"]);

    // A duration under the minimum is a validation error, not a conflict.
    let short = HoldRequest::new(input("2026-03-02T12:00:00Z", "2026-03-02T12:30:00Z")).unwrap();
    assert_eq!(holds::check_hold(&short, &cal, at(NOW)).unwrap_err().error_type(), ErrorType::Validation);
}

#[test]
fn an_active_hold_blocks_until_it_expires() {
    let mut cal = calendar();
    let other = Interval::new(at("2026-03-02T12:00:00Z"), at("2026-03-02T13:00:00Z")).unwrap();
    cal.holds.push(HoldBusy { hold_id: "h0".into(), user_id: "p".into(), role_code: None, interval: other, expires_at: at("2026-03-01T12:10:00Z"), status: HoldStatus::Active });
    let req = HoldRequest::new(input("2026-03-02T12:00:00Z", "2026-03-02T13:00:00Z")).unwrap();
    assert!(matches!(holds::check_hold(&req, &cal, at(NOW)), Err(BookingError::Conflict { .. })));
    assert_eq!(holds::check_hold(&req, &cal, at("2026-03-01T12:10:00Z")), Ok(()), "expired at now: free before any sweep");
}

#[test]
fn reschedule_ignores_the_moved_event_and_admin_skips_rules_but_not_bookings() {
    let mut cal = calendar();
    cal.events.push(event("ev1", "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"));
    let mut i = input("2026-03-02T10:30:00Z", "2026-03-02T11:30:00Z");
    i.kind = Some(HoldKind::Reschedule);
    i.event_id = Some("ev1".into());
    assert_eq!(holds::check_hold(&HoldRequest::new(i.clone()).unwrap(), &cal, at(NOW)), Ok(()));
    i.event_id = Some("ev-other".into());
    assert!(matches!(holds::check_hold(&HoldRequest::new(i).unwrap(), &cal, at(NOW)), Err(BookingError::Conflict { .. })));

    // Admin: a Sunday night outside every rule is fine; over a booking it is not.
    let mut i = input("2026-03-01T22:00:00Z", "2026-03-01T23:15:00Z");
    i.kind = Some(HoldKind::Admin);
    assert_eq!(holds::check_hold(&HoldRequest::new(i).unwrap(), &cal, at(NOW)), Ok(()));
    let mut i = input("2026-03-02T10:45:00Z", "2026-03-02T11:15:00Z");
    i.kind = Some(HoldKind::Admin);
    assert!(matches!(holds::check_hold(&HoldRequest::new(i).unwrap(), &cal, at(NOW)), Err(BookingError::Conflict { .. })));
}

#[test]
fn a_span_outside_the_providers_availability_says_so_instead_of_a_bare_conflict() {
    let no_availability = |result: Result<(), BookingError>| match result {
        Err(e @ BookingError::NoAvailability { .. }) => e,
        other => panic!("NoAvailability expected, got {other:?}"),
    };
    // A provider without a single rule: nothing to book, nothing nearby.
    let req = HoldRequest::new(input("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z")).unwrap();
    let e = no_availability(holds::check_hold(&req, &ProviderCalendar::default(), at(NOW)));
    assert_eq!(e.error_type(), ErrorType::Conflict, "still a CONFLICT for callers");
    assert_eq!(e.to_string(), "p has no availability as photographer at the requested time");
    assert_eq!(e.alternatives(), Some(&[][..]));

    // Outside the hours (a night, or running past closing): the nearby slots still come.
    let cal = calendar();
    for (start, end) in [("2026-03-02T20:00:00Z", "2026-03-02T21:00:00Z"), ("2026-03-02T16:30:00Z", "2026-03-02T17:30:00Z")] {
        let req = HoldRequest::new(input(start, end)).unwrap();
        let e = no_availability(holds::check_hold(&req, &cal, at(NOW)));
        assert!(!e.alternatives().unwrap().is_empty(), "{start}: {e:?}");
    }
    // A day off by exception is no availability either.
    let mut off = calendar();
    off.exceptions.push(cal_core::Exception {
        exc_id: "ex".into(),
        user_id: "p".into(),
        date_local: cal_core::time::parse_date("2026-03-02").unwrap(),
        timezone: Zone::UTC,
        kind: cal_core::ExceptionKind::Unavailable,
        times: None,
    });
    let req = HoldRequest::new(input("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z")).unwrap();
    no_availability(holds::check_hold(&req, &off, at(NOW)));

    // Inside the hours but taken, or too soon: the plain conflict.
    let mut taken = calendar();
    taken.events.push(event("ev1", "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"));
    assert!(matches!(holds::check_hold(&req, &taken, at(NOW)), Err(BookingError::Conflict { .. })));
    let mut soon = calendar();
    soon.weekly_rules[0].params.lead_time_hours = 48;
    assert!(matches!(holds::check_hold(&req, &soon, at(NOW)), Err(BookingError::Conflict { .. })));
}
