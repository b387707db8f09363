//! Time zones of a calendar's times (RFC 5545 §3.2.19 TZID, §3.3.5,
//! §3.6.5 VTIMEZONE; SEMANTICS.md §6): which wall clock a DATE-TIME is read
//! on, and how that wall clock becomes an instant.
//!
//! A TZID is tried as an IANA name, then after a `/vendor/…/` prefix
//! (Mozilla), then as a Windows name (Outlook, via [`WINDOWS_ZONES`]), then
//! as the calendar's own VTIMEZONE; what none of these knows is read as
//! floating, with one warning per TZID. Floating times follow Google's
//! `X-WR-TIMEZONE` when the calendar names a known zone, else the provider's.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{Duration, NaiveDateTime, NaiveTime};

use super::import::Warning;
use super::lexer::{Component, ContentLine};
use super::recur;
use super::rrule::RRule;
use super::values::{When, parse_date, parse_local, parse_offset};
use crate::time::{Instant, Zone};
use crate::windows_zones::WINDOWS_ZONES;

/// A custom VTIMEZONE: its transitions, computed for the years needed.
#[derive(Debug)]
pub(super) struct CustomZone {
    /// `(instant, offset_from, offset_to)` sorted by instant.
    transitions: Vec<(i64, i32, i32)>,
    /// Offset before the first transition.
    initial: i32,
}

impl CustomZone {
    fn offset_at(&self, t: i64) -> i32 {
        let i = self.transitions.partition_point(|(at, _, _)| *at <= t);
        if i == 0 { self.initial } else { self.transitions[i - 1].2 }
    }

    /// RFC 5545 §3.3.5 point rule over the VTIMEZONE's own transitions.
    fn point(&self, local: NaiveDateTime) -> i64 {
        let l = local.and_utc().timestamp();
        let mut offsets: Vec<i32> = self.transitions.iter().flat_map(|(_, a, b)| [*a, *b]).collect();
        offsets.push(self.initial);
        offsets.sort_unstable();
        offsets.dedup();
        let valid = offsets.iter().map(|o| l - i64::from(*o)).filter(|t| i64::from(self.offset_at(*t)) == l - t).min();
        if let Some(t) = valid {
            return t;
        }
        // In a gap: the offset before the jump.
        for (at, from, to) in &self.transitions {
            if to > from && l >= at + i64::from(*from) && l < at + i64::from(*to) {
                return l - i64::from(*from);
            }
        }
        l - i64::from(self.initial)
    }
}

/// How a wall-clock time becomes an instant.
#[derive(Clone, Debug)]
pub(super) enum TimeBase {
    Utc,
    Iana(Zone),
    Custom(Arc<CustomZone>),
}

impl TimeBase {
    pub(super) fn point(&self, local: NaiveDateTime) -> Instant {
        match self {
            TimeBase::Utc => Instant::from_unix(local.and_utc().timestamp()),
            TimeBase::Iana(z) => z.point(local),
            TimeBase::Custom(c) => Instant::from_unix(c.point(local)),
        }
    }

    pub(super) fn local_at(&self, t: Instant) -> NaiveDateTime {
        match self {
            TimeBase::Utc => t.to_chrono().naive_utc(),
            TimeBase::Iana(z) => z.local_at(t),
            TimeBase::Custom(c) => (t.to_chrono() + Duration::seconds(c.offset_at(t.unix()).into())).naive_utc(),
        }
    }
}

/// An IANA zone for a TZID: exact, after a `/…/` vendor prefix, or a Windows name.
fn known_zone(tzid: &str) -> Option<Zone> {
    let tzid = tzid.trim().trim_matches('"');
    if let Ok(z) = Zone::parse(tzid) {
        return Some(z);
    }
    // Lightning / Mozilla write "/mozilla.org/20050126_1/Europe/Berlin".
    if tzid.starts_with('/') {
        let parts: Vec<&str> = tzid.trim_start_matches('/').split('/').collect();
        for i in 0..parts.len() {
            if let Ok(z) = Zone::parse(&parts[i..].join("/")) {
                return Some(z);
            }
        }
    }
    WINDOWS_ZONES
        .binary_search_by(|(win, _)| (*win).cmp(tzid))
        .ok()
        .and_then(|i| Zone::parse(WINDOWS_ZONES[i].1).ok())
}

/// One VCALENDAR's zones: how its TZIDs and floating times are read.
pub(super) struct Zones {
    provider: Zone,
    floating: TimeBase,
    /// `X-WR-TIMEZONE`: a recurring UTC DTSTART is expanded on this wall clock.
    pub(super) wr_zone: Option<Zone>,
    customs: HashMap<String, Arc<CustomZone>>,
    unknown_tzids: HashSet<String>,
}

impl Zones {
    /// The zones of a calendar with this `X-WR-TIMEZONE` and these
    /// VTIMEZONEs, custom ones computed up to a year past `to`. What cannot
    /// be used is reported in `warnings`.
    pub(super) fn new(wr_timezone: Option<ContentLine<'_>>, vtimezones: &[Component<'_>], provider: Zone, to: Instant, warnings: &mut Vec<Warning>) -> Self {
        let wr_zone = wr_timezone.and_then(|p| {
            let z = known_zone(&p.value);
            if z.is_none() {
                warnings.push(Warning { line: p.line, message: format!("X-WR-TIMEZONE {:?} is not a known zone; ignored", p.value.trim()) });
            }
            z
        });
        let floating = TimeBase::Iana(wr_zone.unwrap_or(provider));
        let mut zones = Zones { provider, floating, wr_zone, customs: HashMap::new(), unknown_tzids: HashSet::new() };
        for tz in vtimezones {
            if let Some(tzid) = tz.prop("TZID").map(|p| p.value.trim().trim_matches('"').to_owned()) {
                if let Some(zone) = Zones::custom_zone(tz, to, warnings) {
                    zones.customs.insert(tzid, Arc::new(zone));
                }
            }
        }
        zones
    }

    /// a year past the window.
    fn custom_zone(tz: &Component, to: Instant, warnings: &mut Vec<Warning>) -> Option<CustomZone> {
        let horizon = to.to_chrono().naive_utc() + Duration::days(400);
        let mut transitions = Vec::new();
        for obs in tz.children.iter().filter(|c| c.name == "STANDARD" || c.name == "DAYLIGHT") {
            let offset = |name: &str| obs.prop(name).and_then(|p| parse_offset(&p.value));
            let (Some(from), Some(to), Some(start)) =
                (offset("TZOFFSETFROM"), offset("TZOFFSETTO"), obs.prop("DTSTART").and_then(|p| onset(&p.value)))
            else {
                warn(warnings, obs.line, format!("{} observance without a readable DTSTART/TZOFFSETFROM/TZOFFSETTO; ignored", obs.name));
                continue;
            };
            let mut rules = Vec::new();
            for p in obs.props("RRULE") {
                match RRule::parse(&p.value) {
                    Ok(rule) => rules.push(rule),
                    Err(e) => warn(warnings, p.line, format!("RRULE in VTIMEZONE: {e}; ignored")),
                }
            }
            let mut onsets = vec![start];
            if !rules.is_empty() {
                let to_utc = |l: NaiveDateTime| l.and_utc().timestamp() - i64::from(from);
                let limits = recur::Limits { max_occurrences: 2_000, max_iterations: 20_000 };
                onsets = recur::expand_union(&rules, start, horizon, &to_utc, limits).occurrences;
            }
            for p in obs.props("RDATE") {
                onsets.extend(p.value.split(',').filter_map(onset));
            }
            for at in onsets {
                transitions.push((at.and_utc().timestamp() - i64::from(from), from, to));
            }
        }
        if transitions.is_empty() {
            warn(warnings, tz.line, "VTIMEZONE without usable observances; its TZID is read as floating");
            return None;
        }
        transitions.sort_unstable();
        transitions.dedup_by_key(|t| t.0);
        let initial = transitions[0].1;
        Some(CustomZone { transitions, initial })
    }

    /// The zone of a property's TZID parameter (or UTC / floating).
    fn base_for(&mut self, prop: &ContentLine, warnings: &mut Vec<Warning>) -> TimeBase {
        if prop.value.trim().ends_with(['Z', 'z']) {
            return TimeBase::Utc;
        }
        let Some(tzid) = prop.param("TZID").map(|t| t.trim().trim_matches('"').to_owned()) else { return self.floating.clone() };
        if let Some(z) = known_zone(&tzid) {
            return TimeBase::Iana(z);
        }
        if let Some(c) = self.customs.get(&tzid) {
            return TimeBase::Custom(Arc::clone(c));
        }
        if self.unknown_tzids.insert(tzid.clone()) {
            warn(warnings, prop.line, format!("TZID {tzid:?} is neither IANA, Windows nor defined by a VTIMEZONE; read as floating ({})", self.provider));
        }
        self.floating.clone()
    }

    /// A DATE or DATE-TIME value of `prop` (one of possibly several).
    pub(super) fn when(&mut self, prop: &ContentLine, value: &str, warnings: &mut Vec<Warning>) -> Option<When> {
        let is_date = prop.param("VALUE").is_some_and(|v| v.eq_ignore_ascii_case("DATE")) || value.trim().len() == 8;
        if is_date {
            return parse_date(value).map(When::Date);
        }
        let v = value.trim();
        let local = parse_local(v.trim_end_matches(['Z', 'z']))?;
        if v.ends_with(['Z', 'z']) {
            return Some(When::Local(local, TimeBase::Utc));
        }
        Some(When::Local(local, self.base_for(prop, warnings)))
    }
}

/// When an observance begins (RFC 5545 §3.6.5: its DTSTART and RDATEs, local
/// time on the TZOFFSETFROM clock). Written as a DATE it begins at that
/// date's midnight (SEMANTICS.md §6), as a DATE-TIME at that time.
fn onset(value: &str) -> Option<NaiveDateTime> {
    parse_local(value).or_else(|| parse_date(value).map(|d| d.and_time(NaiveTime::MIN)))
}

fn warn(warnings: &mut Vec<Warning>, line: usize, message: impl Into<String>) {
    warnings.push(Warning { line, message: message.into() });
}
