//! Human-readable renderings (without `--json`).

use std::collections::BTreeMap;
use std::fmt::Write;

use cal_core::{Instant, Interval, Slot, SlotAnswer, Zone};
use chrono::NaiveDate;

/// A week view: one line per local day of the range, with the free ranges
/// and the bookable slot starts in `zone` (the provider's zone).
pub fn week_view(title: &str, zone: Zone, from: Instant, to: Instant, answer: &SlotAnswer) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{title}");
    let _ = writeln!(out, "times in {zone}; {} bookable slots, {} free ranges", answer.slots.len(), answer.free.len());
    if from >= to {
        return out;
    }
    let mut days: BTreeMap<NaiveDate, (Vec<String>, Vec<&Slot>)> = BTreeMap::new();
    let (first, last) = (zone.date_at(from), zone.date_at(to.plus_secs(-1)));
    let mut d = first;
    while d <= last {
        days.entry(d).or_default();
        d = d.succ_opt().expect("dates in range");
    }
    for free in &answer.free {
        for (day, text) in split_by_day(zone, *free) {
            days.entry(day).or_default().0.push(text);
        }
    }
    for slot in &answer.slots {
        days.entry(zone.date_at(slot.start)).or_default().1.push(slot);
    }
    for (day, (free, slots)) in days {
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", day.format("%a %Y-%m-%d"));
        let free = if free.is_empty() { "—".to_owned() } else { free.join(", ") };
        let _ = writeln!(out, "  {:<18}{free}", "free");
        if slots.is_empty() {
            let _ = writeln!(out, "  {:<18}none", "slots");
            continue;
        }
        let starts: Vec<String> = slots.iter().map(|s| hhmm(zone, s.start)).collect();
        let minutes = (slots[0].end.unix() - slots[0].start.unix()) / 60;
        for (i, chunk) in starts.chunks(12).enumerate() {
            let label = if i == 0 { format!("slots  ({minutes} min)") } else { String::new() };
            let _ = writeln!(out, "  {label:<18}{}", chunk.join(" "));
        }
    }
    out
}

fn hhmm(zone: Zone, t: Instant) -> String {
    zone.local_at(t).format("%H:%M").to_string()
}

/// Pieces of a free range per local day, as `HH:MM–HH:MM`.
fn split_by_day(zone: Zone, iv: Interval) -> Vec<(NaiveDate, String)> {
    let mut out = Vec::new();
    let mut start = iv.start();
    while start < iv.end() {
        let day = zone.date_at(start);
        let day_end = zone.day(day).map_or(iv.end(), |d| d.end()).min(iv.end());
        // A range running to the next local midnight reads 24:00, not 00:00.
        let end_text = if zone.date_at(day_end) != day { "24:00".to_owned() } else { hhmm(zone, day_end) };
        out.push((day, format!("{}–{}", hhmm(zone, start), end_text)));
        if day_end <= start {
            break;
        }
        start = day_end;
    }
    out
}

/// A hold as a small table: id and effective status at `now`, its time in
/// UTC and in `zone`, expiry and what it is tied to.
pub fn hold(h: &cal_store::HoldRecord, zone: Zone, now: Instant) -> String {
    let mut out = String::new();
    let status = h.status_at(now);
    let note = if status == h.status { String::new() } else { format!(" (stored as {})", h.status.as_str()) };
    let _ = writeln!(out, "{:<9}{}  {}{note}  ({}, {})", "hold", h.hold_id, status.as_str(), h.kind, h.mode.as_str());
    let customer = h.customer_id.as_deref().map(|c| format!("  customer {c}")).unwrap_or_default();
    let _ = writeln!(out, "{:<9}{} · {}{customer}", "user", h.user_id, h.role_code);
    times(&mut out, zone, h.start, h.end);
    let _ = writeln!(out, "{:<9}{}  ({})", "expires", h.expires_at, zone.render(h.expires_at));
    if let Some(e) = &h.event_id {
        let _ = writeln!(out, "{:<9}{e} (the event it moves)", "event");
    }
    if let Some(e) = &h.converted_event_id {
        let _ = writeln!(out, "{:<9}{e}", "booked");
    }
    let _ = writeln!(out, "{:<9}{}", "key", h.idempotency_key);
    out
}

/// An event as a small table: id, status, sequence, UID, its time in UTC and
/// in the event's zone.
pub fn event(e: &cal_store::EventRecord) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<9}{}  {}  sequence {}", "event", e.event_id, e.status.as_str(), e.sequence);
    let _ = writeln!(out, "{:<9}{}", "uid", e.ics_uid);
    let customer = e.customer_id.as_deref().map(|c| format!("  customer {c}")).unwrap_or_default();
    let _ = writeln!(out, "{:<9}{} · {}{customer}", "user", e.user_id, e.role_code);
    times(&mut out, e.timezone, e.start, e.end);
    if let Some(h) = &e.hold_id {
        let _ = writeln!(out, "{:<9}{h}", "hold");
    }
    out
}

fn times(out: &mut String, zone: Zone, start: Instant, end: Instant) {
    let _ = writeln!(out, "{:<9}{start} – {end}", "utc");
    let _ = writeln!(out, "{:<9}{} – {}  {zone}", "local", zone.render(start), zone.render(end));
}
