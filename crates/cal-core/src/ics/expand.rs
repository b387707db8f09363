//! A body's events as busy occurrences (RFC 5545 §3.8.5; SEMANTICS.md
//! §6): of the versions of each UID's master and overrides only the latest
//! (`versions`); each master's RRULE occurrences (expanded by `recur`, several
//! rules a union) and RDATEs, minus its EXDATEs, with the RECURRENCE-ID
//! overrides of its UID standing in for the occurrences they replace
//! (§3.8.4.4, RANGE=THISANDFUTURE included) unless EXDATE deleted them, then
//! cut to the window and [`ImportLimits`](super::import::ImportLimits).
//!
//! Each occurrence is placed with the point rule of its zone (§3.3.5); an
//! all-day one covers whole days of the provider's zone.

use std::collections::HashSet;

use chrono::{Duration, NaiveDate, NaiveDateTime, NaiveTime};

use super::import::{BusyOccurrence, Context};
use super::recur;
use super::rrule::RRule;
use super::values::{IcsDuration, When};
use super::versions::{self, Version};
use super::zones::TimeBase;
use crate::time::{Instant, Zone};

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
    /// Its calendar's `X-WR-TIMEZONE`: a recurring UTC DTSTART recurs on it.
    pub(super) wr_zone: Option<Zone>,
    /// Which version of its UID (and RECURRENCE-ID) this is.
    pub(super) version: Version,
    /// `None` for a single event, as most are: a body's events are all
    /// held until it ends, and this keeps each of them small.
    pub(super) recurrence: Option<Box<Recurrence>>,
}

/// What makes an event recur, or an override of one. Boxed slices: no
/// spare capacity is held until the calendar ends (a rule is large).
#[derive(Clone, Debug, Default)]
pub(super) struct Recurrence {
    /// Its RRULEs, a union (RFC 5545 §3.8.5.3).
    pub(super) rrules: Box<[RRule]>,
    pub(super) rdates: Box<[(When, Option<Length>)]>,
    pub(super) exdates: Box<[When]>,
    /// RECURRENCE-ID, and whether its RANGE is THISANDFUTURE.
    pub(super) recurrence_id: Option<(When, bool)>,
}

impl Recurrence {
    pub(super) fn is_empty(&self) -> bool {
        self.rrules.is_empty() && self.rdates.is_empty() && self.exdates.is_empty() && self.recurrence_id.is_none()
    }
}

impl Vevent {
    fn rrules(&self) -> &[RRule] {
        self.recurrence.as_deref().map_or(&[], |r| &r.rrules)
    }

    fn rdates(&self) -> &[(When, Option<Length>)] {
        self.recurrence.as_deref().map_or(&[], |r| &r.rdates)
    }

    fn exdates(&self) -> &[When] {
        self.recurrence.as_deref().map_or(&[], |r| &r.exdates)
    }

    fn recurrence_id(&self) -> Option<&(When, bool)> {
        self.recurrence.as_deref().and_then(|r| r.recurrence_id.as_ref())
    }

    /// An RRULE or RDATE makes it a series (its occurrences carry ids).
    fn recurring(&self) -> bool {
        !self.rrules().is_empty() || !self.rdates().is_empty()
    }
}

/// One master as its occurrences are made: the wall clock it recurs on and
/// what its EXDATEs take out.
struct Series {
    /// DTSTART is a DATE: RECURRENCE-IDs, EXDATEs and RDATEs match by
    /// calendar date, also when written as date-times (SEMANTICS.md §6).
    all_day: bool,
    /// DTSTART on the wall clock of the expansion, and that clock.
    start_local: NaiveDateTime,
    base: TimeBase,
    provider: Zone,
    /// EXDATE date-times (of a timed series), as instants.
    excluded: HashSet<Instant>,
    /// EXDATE dates: every occurrence on that date of the series' clock.
    excluded_dates: HashSet<NaiveDate>,
}

impl Series {
    /// The occurrence a RECURRENCE-ID or RDATE of this series names: its
    /// instant, or for an all-day series the start of its written date.
    fn occurrence_at(&self, w: &When) -> Instant {
        occurrence_at(w, self.all_day, self.provider)
    }

    /// Whether the master's EXDATEs take out the occurrence starting at `s`.
    fn excludes(&self, s: Instant) -> bool {
        if self.excluded_dates.is_empty() && self.excluded.is_empty() {
            return false;
        }
        if self.all_day {
            return self.excluded_dates.contains(&self.provider.date_at(s));
        }
        self.excluded.contains(&s) || self.excluded_dates.contains(&self.base.local_at(s).date())
    }
}

/// See [`Series::occurrence_at`]; an override without a master is timed.
fn occurrence_at(w: &When, all_day: bool, provider: Zone) -> Instant {
    if all_day { When::Date(w.date_as_written()).instant(provider) } else { w.instant(provider) }
}

/// An override with the occurrence it stands in for.
type StandIn<'e> = (Instant, &'e Vevent);

impl Context {
    /// Expands the events of every VCALENDAR of the body: by UID (in UID
    /// order), the latest version of its master and of each override, the
    /// overrides as they stand, then the master around them.
    pub(super) fn run(&mut self, events: Vec<Vevent>, out: &mut Vec<BusyOccurrence>) {
        // A stable sort keeps each UID's events in the order they were read.
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by(|&a, &b| events[a].uid.cmp(&events[b].uid));
        // Reused from UID to UID.
        let (mut masters, mut overrides): (Vec<&Vevent>, Vec<&Vevent>) = (Vec::new(), Vec::new());
        let mut series: Vec<Series> = Vec::new();
        let mut stand_ins: Vec<StandIn<'_>> = Vec::new();
        for group in order.chunk_by(|&a, &b| events[a].uid == events[b].uid) {
            masters.clear();
            overrides.clear();
            for e in group.iter().map(|&i| &events[i]) {
                if e.recurrence_id().is_some() { overrides.push(e) } else { masters.push(e) }
            }
            versions::keep_latest(&mut masters, |_| (), |e| e.version);
            series.clear();
            series.extend(masters.iter().map(|m| self.series(m)));
            self.stand_ins(&series, &overrides, &mut stand_ins);
            for &(at, ov) in &stand_ins {
                self.emit(ov, ov.start.instant(self.provider), &ov.length, ov.blocks, Some(at), out);
            }
            for (master, s) in masters.iter().zip(&series) {
                self.expand_master(master, s, &stand_ins, out);
            }
            if out.len() > self.limits.max_occurrences {
                out.truncate(self.limits.max_occurrences);
                self.warn(self.cal_line, format!("more than {} busy occurrences; the rest were dropped", self.limits.max_occurrences));
                return;
            }
        }
    }

    /// The overrides that stand in for an occurrence, sorted by it: of the
    /// versions of one override the latest, and none that every master
    /// excludes with EXDATE (a deleted instance, SEMANTICS.md §6).
    fn stand_ins<'e>(&self, series: &[Series], overrides: &[&'e Vevent], into: &mut Vec<StandIn<'e>>) {
        into.clear();
        let all_day = series.first().is_some_and(|s| s.all_day);
        into.extend(overrides.iter().filter_map(|o| o.recurrence_id().map(|(w, _)| (occurrence_at(w, all_day, self.provider), *o))));
        versions::keep_latest(into, |(at, _)| *at, |(_, o)| o.version);
        into.retain(|(at, _)| series.is_empty() || !series.iter().all(|s| s.excludes(*at)));
    }

    fn series(&self, e: &Vevent) -> Series {
        let recurring = e.recurring();
        // Wall clock of the expansion: a recurring UTC DTSTART follows
        // X-WR-TIMEZONE when the calendar names one (Google).
        let (start_local, base) = match (&e.start, e.wr_zone) {
            (When::Local(l, TimeBase::Utc), Some(z)) if recurring => (z.local_at(TimeBase::Utc.point(*l)), TimeBase::Iana(z)),
            (When::Local(l, b), _) => (*l, b.clone()),
            (When::Date(d), _) => (d.and_time(NaiveTime::MIN), TimeBase::Iana(self.provider)),
        };
        let all_day = matches!(e.start, When::Date(_));
        let (mut excluded, mut excluded_dates) = (HashSet::new(), HashSet::new());
        for w in e.exdates() {
            match w {
                When::Local(..) if !all_day => excluded.insert(w.instant(self.provider)),
                _ => excluded_dates.insert(w.date_as_written()),
            };
        }
        Series { all_day, start_local, base, provider: self.provider, excluded, excluded_dates }
    }

    /// Every occurrence of a master (its RRULEs and RDATEs, RFC 5545
    /// §3.8.5.3), minus EXDATEs and the ones an override stands in for, with
    /// RANGE=THISANDFUTURE overrides applied to the occurrences they govern.
    fn expand_master(&mut self, e: &Vevent, series: &Series, stand_ins: &[StandIn<'_>], out: &mut Vec<BusyOccurrence>) {
        let recurring = e.recurring();
        let provider = self.provider;
        let place = |l: NaiveDateTime| if series.all_day { When::Date(l.date()).instant(provider) } else { series.base.point(l) };

        let mut starts: Vec<(Instant, Option<Length>)> = Vec::new();
        if e.rrules().is_empty() {
            starts.push((place(series.start_local), None));
        } else {
            // Occurrences far past the window are not needed: stop a day
            // past its end on this wall clock (zones differ by < 1 day).
            let window_end = series.base.local_at(self.to) + Duration::days(2);
            let to_utc = |l: NaiveDateTime| place(l).unix();
            let limits = recur::Limits { max_occurrences: self.limits.max_occurrences, max_iterations: self.limits.max_iterations };
            let exp = recur::expand_union(e.rrules(), series.start_local, window_end, &to_utc, limits);
            if exp.truncated {
                self.warn(e.line, format!("recurrence of {:?} stopped at a limit; later occurrences are not imported", e.uid));
            }
            starts.extend(exp.occurrences.into_iter().map(|l| (place(l), None)));
        }
        for (w, len) in e.rdates() {
            // A PERIOD keeps its own start; a date or date-time names an occurrence.
            let at = if len.is_some() { w.instant(provider) } else { series.occurrence_at(w) };
            starts.push((at, len.clone()));
        }
        let future: Vec<&StandIn<'_>> = stand_ins.iter().filter(|(_, o)| matches!(o.recurrence_id(), Some((_, true)))).collect();

        starts.sort_by_key(|(s, _)| *s);
        starts.dedup_by_key(|(s, _)| *s);
        for (s, len) in starts {
            if series.excludes(s) {
                continue;
            }
            if stand_ins.binary_search_by_key(&s, |(at, _)| *at).is_ok() {
                continue; // the override stands in its place
            }
            match future.iter().rev().find(|(at, _)| *at <= s) {
                Some((at, ov)) => {
                    let shift = ov.start.instant(provider).unix() - at.unix();
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
