//! One calendar's events as busy occurrences (RFC 5545 §3.8.5; SEMANTICS.md
//! §6): each master's RRULE occurrences (expanded by `recur`) and RDATEs,
//! minus its EXDATEs, with the RECURRENCE-ID overrides of its UID standing in
//! for the occurrences they replace (§3.8.4.4, RANGE=THISANDFUTURE included),
//! then cut to the window and [`ImportLimits`](super::import::ImportLimits).
//!
//! Each occurrence is placed with the point rule of its zone (§3.3.5); an
//! all-day one covers whole days of the provider's zone.

use std::collections::HashSet;

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};

use super::import::{BusyOccurrence, Context};
use super::recur;
use super::rrule::RRule;
use super::values::{IcsDuration, When};
use super::zones::TimeBase;
use crate::time::Instant;

/// What an occurrence looks like: its length and whether it blocks time.
#[derive(Clone, Debug)]
pub(super) enum Length {
    /// All-day: this many whole local days.
    Days(i64),
    /// Exact seconds (DTEND − DTSTART of the first instance).
    Exact(i64),
    /// A DURATION: nominal days plus exact seconds.
    Nominal(IcsDuration),
}

/// One VEVENT, read: what expansion needs and nothing more.
#[derive(Clone, Debug)]
pub(super) struct Vevent {
    pub(super) line: usize,
    pub(super) uid: String,
    pub(super) summary: String,
    pub(super) start: When,
    pub(super) length: Length,
    pub(super) blocks: bool,
    /// Its RRULEs, a union (RFC 5545 §3.8.5.3); boxed, as most events have
    /// none and a rule is large.
    pub(super) rrules: Box<[RRule]>,
    pub(super) rdates: Vec<(When, Option<Length>)>,
    pub(super) exdates: Vec<When>,
    pub(super) recurrence_id: Option<(When, bool)>,
}

impl Context {
    /// Expands this calendar's events: by UID (in UID order), its overrides
    /// as they stand, then its masters around them.
    pub(super) fn run(&mut self, events: Vec<Vevent>, out: &mut Vec<BusyOccurrence>) {
        // A stable sort keeps each UID's events in the order they were read.
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by(|&a, &b| events[a].uid.cmp(&events[b].uid));
        let (mut masters, mut overrides): (Vec<&Vevent>, Vec<&Vevent>) = (Vec::new(), Vec::new());
        for group in order.chunk_by(|&a, &b| events[a].uid == events[b].uid) {
            masters.clear();
            overrides.clear();
            for e in group.iter().map(|&i| &events[i]) {
                if e.recurrence_id.is_some() { overrides.push(e) } else { masters.push(e) }
            }
            for ov in &overrides {
                self.emit(ov, ov.start.instant(self.provider), &ov.length, ov.blocks, ov.recurrence_id.as_ref().map(|(w, _)| w.instant(self.provider)), out);
            }
            for master in &masters {
                self.expand_master(master, &overrides, out);
            }
            if out.len() > self.limits.max_occurrences {
                out.truncate(self.limits.max_occurrences);
                self.warn(self.cal_line, format!("more than {} busy occurrences; the rest were dropped", self.limits.max_occurrences));
                return;
            }
        }
    }

    /// Every occurrence of a master, minus EXDATEs and overridden ones, with
    /// RANGE=THISANDFUTURE overrides applied to the occurrences they govern.
    fn expand_master(&mut self, e: &Vevent, overrides: &[&Vevent], out: &mut Vec<BusyOccurrence>) {
        let recurring = !e.rrules.is_empty() || !e.rdates.is_empty();
        // Wall clock of the expansion: a recurring UTC DTSTART follows
        // X-WR-TIMEZONE when the calendar names one (Google).
        let (start_local, base) = match (&e.start, self.zones.wr_zone) {
            (When::Local(l, TimeBase::Utc), Some(z)) if recurring => (z.local_at(TimeBase::Utc.point(*l)), TimeBase::Iana(z)),
            (When::Local(l, b), _) => (*l, b.clone()),
            (When::Date(d), _) => (d.and_time(NaiveTime::MIN), TimeBase::Iana(self.provider)),
        };
        let all_day = matches!(e.start, When::Date(_));
        let provider = self.provider;
        let place = |l: NaiveDateTime| if all_day { When::Date(l.date()).instant(provider) } else { base.point(l) };

        let mut starts: Vec<(Instant, Option<Length>)> = Vec::new();
        if e.rrules.is_empty() {
            starts.push((place(start_local), None));
        } else {
            // Occurrences far past the window are not needed: stop a day
            // past its end on this wall clock (zones differ by < 1 day).
            let window_end = base.local_at(self.to) + Duration::days(2);
            let to_utc = |l: NaiveDateTime| place(l).unix();
            let limits = recur::Limits { max_occurrences: self.limits.max_occurrences, max_iterations: self.limits.max_iterations };
            let exp = recur::expand_union(&e.rrules, start_local, window_end, &to_utc, limits);
            if exp.truncated {
                self.warn(e.line, format!("recurrence of {:?} stopped at a limit; later occurrences are not imported", e.uid));
            }
            starts.extend(exp.occurrences.into_iter().map(|l| (place(l), None)));
        }
        for (w, len) in &e.rdates {
            starts.push((w.instant(self.provider), len.clone()));
        }
        let excluded: HashSet<Instant> = e.exdates.iter().map(|w| w.instant(self.provider)).collect();
        let excluded_dates: HashSet<NaiveDate> =
            e.exdates.iter().filter_map(|w| if let When::Date(d) = w { Some(*d) } else { None }).collect();
        let single: HashSet<Instant> = overrides.iter().filter_map(|o| o.recurrence_id.as_ref().map(|(w, _)| w.instant(self.provider))).collect();
        let mut future: Vec<(Instant, &Vevent)> = overrides
            .iter()
            .filter_map(|o| match &o.recurrence_id {
                Some((w, true)) => Some((w.instant(self.provider), *o)),
                _ => None,
            })
            .collect();
        future.sort_by_key(|(at, _)| *at);

        starts.sort_by_key(|(s, _)| *s);
        starts.dedup_by_key(|(s, _)| *s);
        for (s, len) in starts {
            let local_date = self.provider.date_at(s);
            if excluded.contains(&s) || (!all_day && excluded_dates.contains(&base.local_at(s).date())) || (all_day && excluded_dates.contains(&local_date)) {
                continue;
            }
            if single.contains(&s) {
                continue; // the override stands in its place
            }
            match future.iter().rev().find(|(at, _)| *at <= s) {
                Some((at, ov)) => {
                    let shift = ov.start.instant(self.provider).unix() - at.unix();
                    self.emit(e, s.plus_secs(shift), &ov.length, ov.blocks, Some(s), out);
                }
                None => {
                    let len = len.unwrap_or_else(|| e.length.clone());
                    self.emit(e, s, &len, e.blocks, recurring.then_some(s), out);
                }
            }
        }
    }

    /// Adds one occurrence if it blocks time and overlaps the window.
    fn emit(&self, e: &Vevent, start: Instant, length: &Length, blocks: bool, recurrence_id: Option<Instant>, out: &mut Vec<BusyOccurrence>) {
        if !blocks {
            return;
        }
        let (start, end) = match length {
            Length::Days(n) => {
                let first = self.provider.date_at(start);
                let last = first + Duration::days(n - 1);
                match (self.provider.day(first), self.provider.day(last)) {
                    (Some(a), Some(b)) => (a.start(), b.end()),
                    _ => return,
                }
            }
            Length::Exact(secs) => (start, start.plus_secs(*secs)),
            Length::Nominal(d) => {
                let base = match &e.start {
                    When::Local(_, b) => b.clone(),
                    When::Date(_) => TimeBase::Iana(self.provider),
                };
                let local_end = base.local_at(start) + Duration::days(d.days);
                (start, base.point(local_end).plus_secs(d.secs))
            }
        };
        if end <= start || end <= self.from || start >= self.to {
            return;
        }
        out.push(BusyOccurrence { start, end, uid: e.uid.clone(), summary: e.summary.clone(), recurrence_id });
    }
}
