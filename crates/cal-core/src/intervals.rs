//! Interval algebra over half-open `[start, end)` intervals.
//!
//! A "set" here is a `Vec<Interval>` sorted by start, pairwise disjoint and
//! not touching (touching intervals are merged: a slot may run across two
//! touching windows, SEMANTICS.md §2). [`merge`] makes one from any list; the
//! other operations take and return sets and run in linear time.

use crate::time::{Instant, Interval};

/// Sorts and merges overlapping or touching intervals into a set.
pub fn merge(mut items: Vec<Interval>) -> Vec<Interval> {
    items.sort_unstable();
    let mut out: Vec<Interval> = Vec::with_capacity(items.len());
    for iv in items {
        match out.last_mut() {
            Some(last) if iv.start() <= last.end() => {
                if iv.end() > last.end() {
                    *last = Interval::non_empty(last.start(), iv.end()).expect("extends a non-empty interval");
                }
            }
            _ => out.push(iv),
        }
    }
    out
}

/// `a − b` for two sets.
pub fn subtract(a: &[Interval], b: &[Interval]) -> Vec<Interval> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &iv in a {
        let mut cursor = iv.start();
        // Skip holes wholly before this interval; they cannot touch later ones either.
        while j < b.len() && b[j].end() <= cursor {
            j += 1;
        }
        let mut k = j;
        while k < b.len() && b[k].start() < iv.end() {
            if let Some(piece) = Interval::non_empty(cursor, b[k].start()) {
                out.push(piece);
            }
            cursor = cursor.max(b[k].end());
            k += 1;
        }
        if let Some(piece) = Interval::non_empty(cursor, iv.end()) {
            out.push(piece);
        }
    }
    out
}

/// `a ∩ b` for two sets.
pub fn intersect(a: &[Interval], b: &[Interval]) -> Vec<Interval> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        if let Some(piece) = Interval::non_empty(a[i].start().max(b[j].start()), a[i].end().min(b[j].end())) {
            out.push(piece);
        }
        if a[i].end() < b[j].end() {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// The set clipped to `[from, to)`.
pub fn clip(set: &[Interval], from: Instant, to: Instant) -> Vec<Interval> {
    let lo = set.partition_point(|iv| iv.end() <= from);
    set[lo..]
        .iter()
        .take_while(|iv| iv.start() < to)
        .filter_map(|iv| Interval::non_empty(iv.start().max(from), iv.end().min(to)))
        .collect()
}

/// The member of `set` containing `t`, if any (binary search).
pub fn containing(set: &[Interval], t: Instant) -> Option<Interval> {
    let idx = set.partition_point(|iv| iv.start() <= t);
    idx.checked_sub(1).map(|i| set[i]).filter(|iv| iv.contains(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(a: i64, b: i64) -> Interval {
        Interval::new(Instant::from_unix(a), Instant::from_unix(b)).unwrap()
    }

    #[test]
    fn merge_joins_touching_and_overlapping() {
        assert_eq!(merge(vec![iv(5, 7), iv(0, 2), iv(2, 3), iv(6, 9)]), vec![iv(0, 3), iv(5, 9)]);
        assert_eq!(merge(vec![iv(0, 10), iv(2, 3)]), vec![iv(0, 10)]);
    }

    #[test]
    fn subtract_cuts_holes() {
        let a = vec![iv(0, 10), iv(20, 30)];
        let b = vec![iv(2, 4), iv(8, 22), iv(25, 26), iv(29, 40)];
        assert_eq!(subtract(&a, &b), vec![iv(0, 2), iv(4, 8), iv(22, 25), iv(26, 29)]);
        assert_eq!(subtract(&a, &[]), a);
        assert_eq!(subtract(&a, &[iv(-5, 50)]), vec![]);
    }

    #[test]
    fn intersect_and_clip() {
        let a = vec![iv(0, 10), iv(20, 30)];
        assert_eq!(intersect(&a, &[iv(5, 25)]), vec![iv(5, 10), iv(20, 25)]);
        assert_eq!(clip(&a, Instant::from_unix(5), Instant::from_unix(21)), vec![iv(5, 10), iv(20, 21)]);
        assert_eq!(containing(&a, Instant::from_unix(10)), None, "half-open: the end is outside");
        assert_eq!(containing(&a, Instant::from_unix(20)), Some(iv(20, 30)));
    }
}
