//! Domain values in the GraphQL shapes of `infra/schema.graphql`
//! (camelCase fields, upper-case enum values, RFC 3339 UTC instants).

use cal_core::ics_out;
use cal_core::{CommonAnswer, EventStatus, HoldStatus, Instant, Interval, Slot, SlotAnswer, WeeklyRule};
use cal_store::sources::ExternalSource;
use cal_store::feeds::FeedToken;
use cal_store::{EventRecord, HoldRecord, StoredException};
use serde_json::{Value, json};

pub fn rule(r: &WeeklyRule) -> Value {
    json!({
        "ruleId": r.rule_id, "userId": r.user_id, "roleCode": r.role_code,
        "weekdayMask": r.weekday_mask.bits(), "startLocal": r.start_local.to_string(),
        "endLocal": r.end_local.to_string(), "timezone": r.timezone.name(),
        "minDurationMin": r.params.min_duration_min, "leadTimeHours": r.params.lead_time_hours,
        "bookingWindowDays": r.params.booking_window_days, "active": r.active,
    })
}

pub fn exception(s: &StoredException) -> Value {
    let e = &s.exception;
    json!({
        "excId": e.exc_id, "userId": e.user_id, "dateLocal": e.date_local.to_string(),
        "timezone": e.timezone.name(), "kind": e.kind.as_str().to_uppercase(),
        "startLocal": e.times.map(|(s, _)| s.to_string()), "endLocal": e.times.map(|(_, t)| t.to_string()),
        "note": s.note,
    })
}

fn slot(s: &Slot) -> Value {
    json!({"start": s.start, "end": s.end, "startLocal": s.start_local()})
}

fn free(f: &[Interval]) -> Vec<Value> {
    f.iter().map(|iv| json!({"start": iv.start(), "end": iv.end()})).collect()
}

/// A slot answer in the GraphQL `SlotPage` shape: what the API returns, and
/// what its cache stores (so a hit is served as it is).
pub fn slot_page(a: &SlotAnswer) -> Value {
    json!({"slots": a.slots.iter().map(slot).collect::<Vec<_>>(), "free": free(&a.free)})
}

pub fn common_page(a: &CommonAnswer) -> Value {
    let slots: Vec<Value> = a
        .slots
        .iter()
        .map(|c| json!({"start": c.slot.start, "end": c.slot.end, "startLocal": c.slot.start_local(), "providers": c.providers}))
        .collect();
    json!({"slots": slots, "free": free(&a.free)})
}

fn status_of_hold(s: HoldStatus) -> &'static str {
    match s {
        HoldStatus::Active => "ACTIVE",
        HoldStatus::Released => "RELEASED",
        HoldStatus::Converted => "CONVERTED",
        HoldStatus::Expired => "EXPIRED",
    }
}

/// A hold with its status at `now` (expired as soon as its time ran out).
pub fn hold(h: &HoldRecord, now: Instant) -> Value {
    json!({
        "holdId": h.hold_id, "userId": h.user_id, "roleCode": h.role_code, "customerId": h.customer_id,
        "start": h.start, "end": h.end, "kind": h.kind.as_str().to_uppercase(), "mode": h.mode.as_str().to_uppercase(),
        "status": status_of_hold(h.status_at(now)), "expiresAt": h.expires_at,
        "eventId": h.event_id, "convertedEventId": h.converted_event_id,
    })
}

pub fn event(e: &EventRecord) -> Value {
    json!({
        "eventId": e.event_id, "userId": e.user_id, "roleCode": e.role_code, "customerId": e.customer_id,
        "start": e.start, "end": e.end,
        "status": match e.status { EventStatus::Confirmed => "CONFIRMED", EventStatus::Cancelled => "CANCELLED" },
        "sequence": e.sequence, "icsUid": e.ics_uid, "timezone": e.timezone.name(),
    })
}

/// The e-mail attachment of an event (SEMANTICS.md §7).
pub fn ics(e: &EventRecord, now: Instant) -> Value {
    let invite = e.invite();
    json!({
        "eventId": e.event_id, "method": invite.method().as_str(),
        "filename": if invite.cancelled { "cancel.ics" } else { "invite.ics" },
        "contentType": format!("text/calendar; charset=utf-8; method={}", invite.method().as_str()),
        "ics": ics_out::attachment(&invite, now),
    })
}

pub fn source(s: &ExternalSource) -> Value {
    json!({
        "sourceId": s.source_id, "userId": s.user_id, "label": s.label, "urlHint": s.url_hint,
        "status": s.status, "lastSyncAt": s.last_success_at, "lastError": s.last_error,
        "nextPollAt": s.next_poll_at, "warningCount": s.warning_count,
    })
}

pub fn feed_url(base: &str, t: &FeedToken) -> Value {
    let base = base.trim_end_matches('/');
    json!({"feedId": t.feed_id, "url": format!("{base}/{}.ics", t.token)})
}

#[cfg(test)]
mod tests {
    use super::*;
    use cal_core::{Slot, Zone};

    #[test]
    fn a_cached_page_is_served_exactly_as_it_was_computed() {
        let at = |s: &str| Instant::parse(s).unwrap();
        let answer = SlotAnswer {
            slots: vec![Slot { start: at("2030-03-04T08:00:00Z"), end: at("2030-03-04T09:00:00Z"), zone: Zone::parse("Europe/Berlin").unwrap() }],
            free: vec![Interval::new(at("2030-03-04T08:00:00Z"), at("2030-03-04T16:00:00Z")).unwrap()],
        };
        // The cache stores the page's text; a hit parses it back, nothing more.
        let page = slot_page(&answer);
        let stored = page.to_string();
        assert_eq!(serde_json::from_str::<Value>(&stored).unwrap(), page);
        assert_eq!(page["slots"][0]["startLocal"], "2030-03-04T09:00:00+01:00");
    }
}
