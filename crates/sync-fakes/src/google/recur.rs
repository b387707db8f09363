//! The part of RFC 5545 recurrence the fake expands for `singleEvents=true`:
//! `RRULE` with `FREQ=DAILY|WEEKLY`, `INTERVAL`, `COUNT`, `UNTIL` and (weekly)
//! `BYDAY`, and `EXDATE`. Anything else is refused by name, never guessed.
//!
//! Occurrences are computed on local wall-clock time in the series' zone
//! (so a weekly 09:00 stays 09:00 across DST) and turned into instants.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// A series without `COUNT` or `UNTIL` is expanded to this many instances.
pub const MAX_INSTANCES: usize = 730;

/// The start of one occurrence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    Date(NaiveDate),
    At(DateTime<Utc>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Freq {
    Daily,
    Weekly,
}

struct Rule {
    freq: Freq,
    interval: u32,
    count: Option<usize>,
    until: Option<Until>,
    by_day: Vec<Weekday>,
}

#[derive(Clone, Copy)]
enum Until {
    Date(NaiveDate),
    At(DateTime<Utc>),
    Local(NaiveDateTime),
}

/// The occurrences of a series starting at `first` (a date for an all-day
/// series; else a local date-time in `zone`), per its `recurrence` lines.
pub fn expand(first: Start, zone: Tz, recurrence: &[String]) -> Result<Vec<Start>, String> {
    let mut rules = Vec::new();
    let mut exdates = Vec::new();
    for line in recurrence {
        let (head, value) = line.split_once(':').ok_or_else(|| format!("not a recurrence line: {line:?}"))?;
        let mut params = head.split(';');
        match params.next().unwrap_or("") {
            "RRULE" => rules.push(parse_rule(value)?),
            "EXDATE" => {
                let mut tz = zone;
                for p in params {
                    if let Some(name) = p.strip_prefix("TZID=") {
                        tz = name.parse().map_err(|_| format!("unknown TZID {name:?}"))?;
                    }
                }
                for v in value.split(',') {
                    exdates.push(parse_time(v, tz)?);
                }
            }
            other => return Err(format!("the fake does not expand {other} lines")),
        }
    }
    let [rule] = rules.as_slice() else { return Err("the fake expands exactly one RRULE per series".into()) };
    let (local_first, all_day) = match first {
        Start::Date(d) => (d.and_hms_opt(0, 0, 0).expect("midnight"), true),
        Start::At(t) => (t.with_timezone(&zone).naive_local(), false),
    };
    let to_start = |local: NaiveDateTime| -> Start { if all_day { Start::Date(local.date()) } else { Start::At(from_local(zone, local)) } };
    let mut out = Vec::new();
    for (generated, local) in candidates(rule, local_first).enumerate() {
        if rule.count.is_some_and(|c| generated >= c) || out.len() >= MAX_INSTANCES {
            break;
        }
        let start = to_start(local);
        let past_until = match (rule.until, start) {
            (None, _) => false,
            (Some(Until::Date(d)), _) => local.date() > d,
            (Some(Until::At(u)), Start::At(t)) => t > u,
            (Some(Until::At(u)), Start::Date(d)) => d > u.date_naive(),
            (Some(Until::Local(u)), _) => local > u,
        };
        if past_until {
            break;
        }
        if !exdates.iter().any(|x| same_occurrence(*x, start)) {
            out.push(start);
        }
    }
    Ok(out)
}

fn same_occurrence(exdate: Start, start: Start) -> bool {
    match (exdate, start) {
        (Start::At(a), Start::At(b)) => a == b,
        // An all-day series' EXDATE matches by date, also when written as
        // a date-time.
        (Start::Date(a), Start::Date(b)) => a == b,
        (Start::At(a), Start::Date(b)) => a.date_naive() == b,
        (Start::Date(_), Start::At(_)) => false,
    }
}

/// Candidate local starts in order, unbounded (the caller stops).
fn candidates(rule: &Rule, first: NaiveDateTime) -> impl Iterator<Item = NaiveDateTime> + '_ {
    let step = i64::from(rule.interval.max(1));
    let days: Vec<Weekday> = if rule.by_day.is_empty() { vec![first.weekday()] } else { rule.by_day.clone() };
    let week_start = first.date() - Duration::days(i64::from(first.weekday().num_days_from_monday()));
    (0i64..).flat_map(move |n| {
        let list: Vec<NaiveDateTime> = match rule.freq {
            Freq::Daily => vec![first + Duration::days(n * step)],
            Freq::Weekly => {
                let monday = week_start + Duration::weeks(n * step);
                let mut list: Vec<NaiveDateTime> = days
                    .iter()
                    .map(|d| (monday + Duration::days(i64::from(d.num_days_from_monday()))).and_time(first.time()))
                    .filter(|t| *t >= first)
                    .collect();
                list.sort();
                list
            }
        };
        list
    })
}

fn parse_rule(value: &str) -> Result<Rule, String> {
    let mut rule = Rule { freq: Freq::Daily, interval: 1, count: None, until: None, by_day: Vec::new() };
    let mut freq = None;
    for part in value.split(';') {
        let (k, v) = part.split_once('=').ok_or_else(|| format!("bad RRULE part {part:?}"))?;
        match k {
            "FREQ" => {
                freq = Some(match v {
                    "DAILY" => Freq::Daily,
                    "WEEKLY" => Freq::Weekly,
                    other => return Err(format!("the fake does not expand FREQ={other}")),
                })
            }
            "INTERVAL" => rule.interval = v.parse().map_err(|_| format!("bad INTERVAL {v:?}"))?,
            "COUNT" => rule.count = Some(v.parse().map_err(|_| format!("bad COUNT {v:?}"))?),
            "UNTIL" => {
                rule.until = Some(match parse_time(v, Tz::UTC)? {
                    Start::Date(d) => Until::Date(d),
                    Start::At(t) if v.ends_with('Z') => Until::At(t),
                    Start::At(_) => Until::Local(parse_local(v)?),
                })
            }
            "BYDAY" => {
                for d in v.split(',') {
                    rule.by_day.push(match d {
                        "MO" => Weekday::Mon,
                        "TU" => Weekday::Tue,
                        "WE" => Weekday::Wed,
                        "TH" => Weekday::Thu,
                        "FR" => Weekday::Fri,
                        "SA" => Weekday::Sat,
                        "SU" => Weekday::Sun,
                        other => return Err(format!("the fake does not expand BYDAY={other}")),
                    });
                }
            }
            "WKST" if v == "MO" => {}
            other => return Err(format!("the fake does not expand RRULE part {other}")),
        }
    }
    rule.freq = freq.ok_or("an RRULE without FREQ")?;
    if rule.freq == Freq::Daily && !rule.by_day.is_empty() {
        return Err("the fake does not expand BYDAY on a DAILY rule".into());
    }
    Ok(rule)
}

/// `20260302`, `20260302T090000Z`, or `20260302T090000` (local in `zone`).
fn parse_time(v: &str, zone: Tz) -> Result<Start, String> {
    if v.len() == 8 {
        return NaiveDate::parse_from_str(v, "%Y%m%d").map(Start::Date).map_err(|_| format!("bad date {v:?}"));
    }
    let local = parse_local(v)?;
    Ok(Start::At(if v.ends_with('Z') { Utc.from_utc_datetime(&local) } else { from_local(zone, local) }))
}

fn parse_local(v: &str) -> Result<NaiveDateTime, String> {
    NaiveDateTime::parse_from_str(v.trim_end_matches('Z'), "%Y%m%dT%H%M%S").map_err(|_| format!("bad date-time {v:?}"))
}

/// A wall-clock time in `zone` as an instant: the earlier of a repeated
/// hour, and a time in a DST gap moved forward by the gap.
pub fn from_local(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&local).earliest() {
        Some(t) => t.with_timezone(&Utc),
        None => from_local(zone, local + Duration::hours(1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Start {
        Start::At(DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc))
    }

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn weekly_by_day_with_count_and_exdate_keeps_wall_clock_time_across_dst() {
        let zone: Tz = "Europe/Berlin".parse().unwrap();
        let got = expand(
            at("2026-03-23T09:00:00+01:00"),
            zone,
            &lines(&["RRULE:FREQ=WEEKLY;BYDAY=MO,WE;COUNT=4", "EXDATE;TZID=Europe/Berlin:20260325T090000"]),
        )
        .unwrap();
        // 25 March is excluded but still counted; summer time from 29 March.
        assert_eq!(got, vec![at("2026-03-23T08:00:00Z"), at("2026-03-30T07:00:00Z"), at("2026-04-01T07:00:00Z")]);
    }

    #[test]
    fn daily_until_and_all_day_series() {
        let got = expand(at("2026-03-01T10:00:00Z"), Tz::UTC, &lines(&["RRULE:FREQ=DAILY;INTERVAL=2;UNTIL=20260305T100000Z"])).unwrap();
        assert_eq!(got, vec![at("2026-03-01T10:00:00Z"), at("2026-03-03T10:00:00Z"), at("2026-03-05T10:00:00Z")]);
        let d = |s: &str| Start::Date(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap());
        let got = expand(d("2026-03-01"), Tz::UTC, &lines(&["RRULE:FREQ=DAILY;COUNT=3", "EXDATE;VALUE=DATE:20260302"])).unwrap();
        assert_eq!(got, vec![d("2026-03-01"), d("2026-03-03")]);
        assert_eq!(expand(d("2026-03-01"), Tz::UTC, &lines(&["RRULE:FREQ=DAILY"])).unwrap().len(), MAX_INSTANCES);
    }

    #[test]
    fn what_it_cannot_expand_is_refused_by_name() {
        let err = expand(at("2026-03-01T10:00:00Z"), Tz::UTC, &lines(&["RRULE:FREQ=MONTHLY"])).unwrap_err();
        assert!(err.contains("MONTHLY"), "{err}");
        let err = expand(at("2026-03-01T10:00:00Z"), Tz::UTC, &lines(&["RRULE:FREQ=DAILY", "RDATE:20260310T100000Z"])).unwrap_err();
        assert!(err.contains("RDATE"), "{err}");
    }
}
