//! One period's recurrence set (RFC 5545 §3.3.10): its matching days crossed
//! with its times of day, offered in order, or only the positions BYSETPOS
//! picks. The times are indexed arithmetically, never stored, so BYSETPOS
//! over a year of seconds costs as much as over a year of days.

use std::ops::ControlFlow;

use chrono::{NaiveDate, NaiveTime};

use super::plan::Plan;
use super::sink::Sink;

impl Plan {
    /// Offers one period's set — `days` × `times`, in order — after BYSETPOS.
    pub(super) fn emit(
        &self,
        days: &[NaiveDate],
        times: &TimeSet<'_>,
        picks: &mut Vec<usize>,
        sink: &mut Sink<'_>,
    ) -> ControlFlow<()> {
        let per_day = times.len();
        if days.is_empty() || per_day == 0 {
            return ControlFlow::Continue(());
        }
        let at = |i: usize| days[i / per_day].and_time(times.get(i % per_day));
        if self.set_pos.is_empty() {
            let first_day = self.dtstart.date();
            for (d, day) in days.iter().enumerate() {
                // Whole days before DTSTART cannot be occurrences.
                if *day < first_day {
                    continue;
                }
                for i in 0..per_day {
                    sink.offer(at(d * per_day + i))?;
                }
            }
            return ControlFlow::Continue(());
        }
        // §3.3.10 BYSETPOS: "the nth occurrence within the set of recurrence
        // instances specified by the rule" in this interval, negative from its
        // end. Positions outside the set select nothing.
        let size = days.len() * per_day;
        picks.clear();
        picks.extend(self.set_pos.iter().filter_map(|&p| {
            let k = p.unsigned_abs() as usize;
            if k == 0 || k > size {
                None
            } else if p > 0 {
                Some(k - 1)
            } else {
                Some(size - k)
            }
        }));
        picks.sort_unstable();
        picks.dedup();
        for &i in picks.iter() {
            sink.offer(at(i))?;
        }
        ControlFlow::Continue(())
    }
}

/// The times of day of one day of a period: the product hours × minutes ×
/// seconds, each sorted, so index order is time order and nothing is stored.
pub(super) struct TimeSet<'a> {
    pub(super) hours: &'a [u8],
    pub(super) minutes: &'a [u8],
    pub(super) seconds: &'a [u8],
}

impl TimeSet<'_> {
    fn len(&self) -> usize {
        self.hours.len() * self.minutes.len() * self.seconds.len()
    }

    fn get(&self, i: usize) -> NaiveTime {
        let (m, s) = (self.minutes.len(), self.seconds.len());
        let (h, mi, se) = (self.hours[i / (m * s)], self.minutes[(i / s) % m], self.seconds[i % s]);
        NaiveTime::from_hms_opt(u32::from(h), u32::from(mi), u32::from(se)).unwrap_or(NaiveTime::MIN)
    }
}
