//! Versions of one event (SEMANTICS.md §6). Exporters that append instead of
//! replace write one component per edit, all with the same `UID` (and, for
//! an override, the same `RECURRENCE-ID`). Only the latest counts: the
//! highest `SEQUENCE` (RFC 5545 §3.8.7.4, missing = 0), then the latest
//! `DTSTAMP` (§3.8.7.2), then the latest `LAST-MODIFIED` (§3.8.7.3) — the
//! order RFC 5546 §2.1.5 gives for telling which revision is newer. A full
//! tie keeps every one of them: the cautious reading, more busy time.

use crate::time::Instant;

/// How new one version is. Ordered field by field, as the rule above: a
/// missing `DTSTAMP` or `LAST-MODIFIED` is older than any given one.
///
/// The times are unix seconds with [`Version::MISSING`] for "not given"
/// rather than `Option<Instant>`, which would make every imported event 16
/// bytes larger; no date a calendar can write is that far back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Version {
    sequence: i64,
    dtstamp: i64,
    last_modified: i64,
}

impl Version {
    const MISSING: i64 = i64::MIN;

    pub(super) fn new(sequence: i64, dtstamp: Option<Instant>, last_modified: Option<Instant>) -> Version {
        let secs = |t: Option<Instant>| t.map_or(Version::MISSING, Instant::unix);
        Version { sequence, dtstamp: secs(dtstamp), last_modified: secs(last_modified) }
    }
}

/// Keeps only the newest versions of each thing `items` speak of: sorted by
/// `thing` (stably, so equal ones keep their order), and of those naming the
/// same thing only the ones whose version is the highest.
pub(super) fn keep_latest<T, K: Ord>(items: &mut Vec<T>, thing: impl Fn(&T) -> K, version: impl Fn(&T) -> Version) {
    if items.len() < 2 {
        return;
    }
    items.sort_by(|a, b| thing(a).cmp(&thing(b)).then_with(|| version(b).cmp(&version(a))));
    items.dedup_by(|later, kept| thing(later) == thing(kept) && version(later) < version(kept));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(sequence: i64, dtstamp: Option<i64>, last_modified: Option<i64>) -> Version {
        Version::new(sequence, dtstamp.map(Instant::from_unix), last_modified.map(Instant::from_unix))
    }

    #[test]
    fn sequence_wins_then_dtstamp_then_last_modified_and_a_tie_keeps_all() {
        let latest = |mut items: Vec<Version>| {
            keep_latest(&mut items, |_| (), |x| *x);
            items
        };
        // A higher SEQUENCE wins over a later DTSTAMP.
        assert_eq!(latest(vec![v(0, Some(9), None), v(1, Some(1), None)]), [v(1, Some(1), None)]);
        // Same SEQUENCE: the later DTSTAMP; a missing one is the oldest.
        assert_eq!(latest(vec![v(2, Some(5), None), v(2, Some(7), None), v(2, None, Some(9))]), [v(2, Some(7), None)]);
        // Same DTSTAMP: the later LAST-MODIFIED.
        assert_eq!(latest(vec![v(0, Some(5), Some(3)), v(0, Some(5), Some(4))]), [v(0, Some(5), Some(4))]);
        // A full tie keeps both, in their order.
        assert_eq!(latest(vec![v(1, Some(5), None), v(0, None, None), v(1, Some(5), None)]), [v(1, Some(5), None); 2]);
    }

    #[test]
    fn each_thing_keeps_its_own_newest() {
        let mut items = vec![("b", v(0, None, None)), ("a", v(3, None, None)), ("b", v(2, None, None)), ("a", v(1, None, None))];
        keep_latest(&mut items, |(thing, _)| *thing, |(_, version)| *version);
        assert_eq!(items, [("a", v(3, None, None)), ("b", v(2, None, None))]);
    }
}
