//! RRULE expansion (SEMANTICS.md §6): every example of RFC 5545 §3.8.5.3,
//! compared occurrence by occurrence, plus limits and parse errors.
//!
//! The RFC's DTSTARTs are in America/New_York; expansion is in wall-clock
//! time, so each case gives DTSTART as a wall-clock time and the expected
//! list as wall-clock times. A UTC UNTIL is compared through New York.

use std::time::{Duration as StdDuration, Instant as StdInstant};

use cal_core::ics::rrule::{Expansion, Freq, Limits, RRule, RRuleError, Until, expand, expand_union};
use chrono::{Duration, NaiveDate, NaiveDateTime, TimeZone, Weekday};
use chrono_tz::America::New_York;

fn at(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%S").unwrap()
}

/// New York's wall clock → unix seconds: the earlier reading of a repeated
/// time, and a time skipped by DST read an hour later (the gap's length).
fn ny_to_utc(t: NaiveDateTime) -> i64 {
    New_York
        .from_local_datetime(&t)
        .earliest()
        .or_else(|| New_York.from_local_datetime(&(t + Duration::hours(1))).earliest())
        .unwrap()
        .timestamp()
}

const GENEROUS: Limits = Limits { max_occurrences: 10_000, max_iterations: 1_000_000 };

fn run_with(rule: &str, dtstart: &str, window_end: &str, limits: Limits) -> Expansion {
    let rule = RRule::parse(rule).unwrap_or_else(|e| panic!("{rule}: {e}"));
    expand(&rule, at(dtstart), at(window_end), &ny_to_utc, limits)
}

/// The occurrences as `YYYYMMDDTHHMMSS`; at most `first` (for rules without
/// an end), checking that a rule with an end was not cut short.
fn occurrences(rule: &str, dtstart: &str, first: usize) -> Vec<String> {
    let limits = Limits { max_occurrences: first, ..GENEROUS };
    let got = run_with(rule, dtstart, "21000101T000000", limits);
    got.occurrences.iter().map(|t| t.format("%Y%m%dT%H%M%S").to_string()).collect()
}

/// Expected dates (`YYYYMMDD`) at one time of day (`HHMMSS`).
fn on(time: &str, dates: &[&str]) -> Vec<String> {
    dates.iter().map(|d| format!("{d}T{time}")).collect()
}

fn check(rule: &str, dtstart: &str, expected: &[String]) {
    assert_eq!(occurrences(rule, dtstart, expected.len() + 50), expected, "{rule} from {dtstart}");
}

/// For rules without an end: the first `expected.len()` occurrences.
fn check_first(rule: &str, dtstart: &str, expected: &[String]) {
    assert_eq!(occurrences(rule, dtstart, expected.len()), expected, "{rule} from {dtstart}");
}

fn every_day(from: NaiveDate, to: NaiveDate, step: i64, time: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut d = from;
    while d <= to {
        out.push(format!("{}T{time}", d.format("%Y%m%d")));
        d += Duration::days(step);
    }
    out
}

fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

// ---------------------------------------------------------------- daily

#[test]
fn daily_for_10_occurrences() {
    check(
        "FREQ=DAILY;COUNT=10",
        "19970902T090000",
        &on(
            "090000",
            &[
                "19970902", "19970903", "19970904", "19970905", "19970906", "19970907", "19970908", "19970909",
                "19970910", "19970911",
            ],
        ),
    );
}

#[test]
fn daily_until_december_24_1997() {
    // UNTIL=19971224T000000Z is 1997-12-23 19:00 EST: Dec 23 09:00 is the last.
    let expected = every_day(ymd(1997, 9, 2), ymd(1997, 12, 23), 1, "090000");
    assert_eq!(expected.len(), 113);
    check("FREQ=DAILY;UNTIL=19971224T000000Z", "19970902T090000", &expected);
}

#[test]
fn every_other_day_forever() {
    let expected = every_day(ymd(1997, 9, 2), ymd(1997, 12, 31), 2, "090000");
    check_first("FREQ=DAILY;INTERVAL=2", "19970902T090000", &expected);
}

#[test]
fn every_10_days_5_occurrences() {
    check(
        "FREQ=DAILY;INTERVAL=10;COUNT=5",
        "19970902T090000",
        &on("090000", &["19970902", "19970912", "19970922", "19971002", "19971012"]),
    );
}

#[test]
fn every_day_in_january_for_3_years_both_forms() {
    let mut expected = Vec::new();
    for year in 1998..=2000 {
        expected.extend(every_day(ymd(year, 1, 1), ymd(year, 1, 31), 1, "090000"));
    }
    check("FREQ=YEARLY;UNTIL=20000131T140000Z;BYMONTH=1;BYDAY=SU,MO,TU,WE,TH,FR,SA", "19980101T090000", &expected);
    check("FREQ=DAILY;UNTIL=20000131T140000Z;BYMONTH=1", "19980101T090000", &expected);
}

// ---------------------------------------------------------------- weekly

#[test]
fn weekly_for_10_occurrences() {
    check(
        "FREQ=WEEKLY;COUNT=10",
        "19970902T090000",
        &on(
            "090000",
            &[
                "19970902", "19970909", "19970916", "19970923", "19970930", "19971007", "19971014", "19971021",
                "19971028", "19971104",
            ],
        ),
    );
}

#[test]
fn weekly_until_december_24_1997() {
    let expected = every_day(ymd(1997, 9, 2), ymd(1997, 12, 23), 7, "090000");
    assert_eq!(expected.len(), 17);
    check("FREQ=WEEKLY;UNTIL=19971224T000000Z", "19970902T090000", &expected);
}

#[test]
fn every_other_week_forever() {
    check_first(
        "FREQ=WEEKLY;INTERVAL=2;WKST=SU",
        "19970902T090000",
        &on(
            "090000",
            &[
                "19970902", "19970916", "19970930", "19971014", "19971028", "19971111", "19971125", "19971209",
                "19971223", "19980106", "19980120", "19980203", "19980217",
            ],
        ),
    );
}

#[test]
fn weekly_on_tuesday_and_thursday_for_five_weeks_both_forms() {
    let expected = on(
        "090000",
        &[
            "19970902", "19970904", "19970909", "19970911", "19970916", "19970918", "19970923", "19970925", "19970930",
            "19971002",
        ],
    );
    check("FREQ=WEEKLY;UNTIL=19971007T000000Z;WKST=SU;BYDAY=TU,TH", "19970902T090000", &expected);
    check("FREQ=WEEKLY;COUNT=10;WKST=SU;BYDAY=TU,TH", "19970902T090000", &expected);
}

#[test]
fn every_other_week_on_monday_wednesday_friday_until_december_24() {
    check(
        "FREQ=WEEKLY;INTERVAL=2;UNTIL=19971224T000000Z;WKST=SU;BYDAY=MO,WE,FR",
        "19970901T090000",
        &on(
            "090000",
            &[
                "19970901", "19970903", "19970905", "19970915", "19970917", "19970919", "19970929", "19971001",
                "19971003", "19971013", "19971015", "19971017", "19971027", "19971029", "19971031", "19971110",
                "19971112", "19971114", "19971124", "19971126", "19971128", "19971208", "19971210", "19971212",
                "19971222",
            ],
        ),
    );
}

#[test]
fn every_other_week_on_tuesday_and_thursday_for_8_occurrences() {
    check(
        "FREQ=WEEKLY;INTERVAL=2;COUNT=8;WKST=SU;BYDAY=TU,TH",
        "19970902T090000",
        &on(
            "090000",
            &["19970902", "19970904", "19970916", "19970918", "19970930", "19971002", "19971014", "19971016"],
        ),
    );
}

// ---------------------------------------------------------------- monthly

#[test]
fn monthly_on_the_first_friday_for_10_occurrences() {
    check(
        "FREQ=MONTHLY;COUNT=10;BYDAY=1FR",
        "19970905T090000",
        &on(
            "090000",
            &[
                "19970905", "19971003", "19971107", "19971205", "19980102", "19980206", "19980306", "19980403",
                "19980501", "19980605",
            ],
        ),
    );
}

#[test]
fn monthly_on_the_first_friday_until_december_24() {
    check(
        "FREQ=MONTHLY;UNTIL=19971224T000000Z;BYDAY=1FR",
        "19970905T090000",
        &on("090000", &["19970905", "19971003", "19971107", "19971205"]),
    );
}

#[test]
fn every_other_month_on_the_first_and_last_sunday_for_10_occurrences() {
    check(
        "FREQ=MONTHLY;INTERVAL=2;COUNT=10;BYDAY=1SU,-1SU",
        "19970907T090000",
        &on(
            "090000",
            &[
                "19970907", "19970928", "19971102", "19971130", "19980104", "19980125", "19980301", "19980329",
                "19980503", "19980531",
            ],
        ),
    );
}

#[test]
fn monthly_on_the_second_to_last_monday_for_6_months() {
    check(
        "FREQ=MONTHLY;COUNT=6;BYDAY=-2MO",
        "19970922T090000",
        &on("090000", &["19970922", "19971020", "19971117", "19971222", "19980119", "19980216"]),
    );
}

#[test]
fn monthly_on_the_third_to_last_day_forever() {
    check_first(
        "FREQ=MONTHLY;BYMONTHDAY=-3",
        "19970928T090000",
        &on("090000", &["19970928", "19971029", "19971128", "19971229", "19980129", "19980226"]),
    );
}

#[test]
fn monthly_on_the_2nd_and_15th_for_10_occurrences() {
    check(
        "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=2,15",
        "19970902T090000",
        &on(
            "090000",
            &[
                "19970902", "19970915", "19971002", "19971015", "19971102", "19971115", "19971202", "19971215",
                "19980102", "19980115",
            ],
        ),
    );
}

#[test]
fn monthly_on_the_first_and_last_day_for_10_occurrences() {
    check(
        "FREQ=MONTHLY;COUNT=10;BYMONTHDAY=1,-1",
        "19970930T090000",
        &on(
            "090000",
            &[
                "19970930", "19971001", "19971031", "19971101", "19971130", "19971201", "19971231", "19980101",
                "19980131", "19980201",
            ],
        ),
    );
}

#[test]
fn every_18_months_on_the_10th_to_15th_for_10_occurrences() {
    check(
        "FREQ=MONTHLY;INTERVAL=18;COUNT=10;BYMONTHDAY=10,11,12,13,14,15",
        "19970910T090000",
        &on(
            "090000",
            &[
                "19970910", "19970911", "19970912", "19970913", "19970914", "19970915", "19990310", "19990311",
                "19990312", "19990313",
            ],
        ),
    );
}

#[test]
fn every_tuesday_every_other_month() {
    check_first(
        "FREQ=MONTHLY;INTERVAL=2;BYDAY=TU",
        "19970902T090000",
        &on(
            "090000",
            &[
                "19970902", "19970909", "19970916", "19970923", "19970930", "19971104", "19971111", "19971118",
                "19971125", "19980106", "19980113", "19980120", "19980127", "19980303", "19980310", "19980317",
                "19980324", "19980331",
            ],
        ),
    );
}

// ---------------------------------------------------------------- yearly

#[test]
fn yearly_in_june_and_july_for_10_occurrences() {
    check(
        "FREQ=YEARLY;COUNT=10;BYMONTH=6,7",
        "19970610T090000",
        &on(
            "090000",
            &[
                "19970610", "19970710", "19980610", "19980710", "19990610", "19990710", "20000610", "20000710",
                "20010610", "20010710",
            ],
        ),
    );
}

#[test]
fn every_other_year_on_january_february_march_for_10_occurrences() {
    check(
        "FREQ=YEARLY;INTERVAL=2;COUNT=10;BYMONTH=1,2,3",
        "19970310T090000",
        &on(
            "090000",
            &[
                "19970310", "19990110", "19990210", "19990310", "20010110", "20010210", "20010310", "20030110",
                "20030210", "20030310",
            ],
        ),
    );
}

#[test]
fn every_third_year_on_the_1st_100th_and_200th_day_for_10_occurrences() {
    check(
        "FREQ=YEARLY;INTERVAL=3;COUNT=10;BYYEARDAY=1,100,200",
        "19970101T090000",
        &on(
            "090000",
            &[
                "19970101", "19970410", "19970719", "20000101", "20000409", "20000718", "20030101", "20030410",
                "20030719", "20060101",
            ],
        ),
    );
}

#[test]
fn every_20th_monday_of_the_year_forever() {
    check_first("FREQ=YEARLY;BYDAY=20MO", "19970519T090000", &on("090000", &["19970519", "19980518", "19990517"]));
}

#[test]
fn monday_of_week_number_20_forever() {
    check_first(
        "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO",
        "19970512T090000",
        &on("090000", &["19970512", "19980511", "19990517"]),
    );
}

#[test]
fn every_thursday_in_march_forever() {
    check_first(
        "FREQ=YEARLY;BYMONTH=3;BYDAY=TH",
        "19970313T090000",
        &on(
            "090000",
            &[
                "19970313", "19970320", "19970327", "19980305", "19980312", "19980319", "19980326", "19990304",
                "19990311", "19990318", "19990325",
            ],
        ),
    );
}

#[test]
fn every_thursday_only_in_june_july_august_forever() {
    check_first(
        "FREQ=YEARLY;BYDAY=TH;BYMONTH=6,7,8",
        "19970605T090000",
        &on(
            "090000",
            &[
                "19970605", "19970612", "19970619", "19970626", "19970703", "19970710", "19970717", "19970724",
                "19970731", "19970807", "19970814", "19970821", "19970828", "19980604", "19980611", "19980618",
                "19980625", "19980702", "19980709", "19980716", "19980723", "19980730", "19980806", "19980813",
                "19980820", "19980827", "19990603", "19990610", "19990617", "19990624", "19990701", "19990708",
                "19990715", "19990722", "19990729", "19990805", "19990812", "19990819", "19990826",
            ],
        ),
    );
}

#[test]
fn every_friday_the_13th_forever() {
    // The RFC excludes DTSTART with EXDATE; here it is the first occurrence.
    let got = occurrences("FREQ=MONTHLY;BYDAY=FR;BYMONTHDAY=13", "19970902T090000", 6);
    assert_eq!(got[0], "19970902T090000");
    assert_eq!(got[1..], on("090000", &["19980213", "19980313", "19981113", "19990813", "20001013"]));
}

#[test]
fn the_first_saturday_that_follows_the_first_sunday_of_the_month_forever() {
    check_first(
        "FREQ=MONTHLY;BYDAY=SA;BYMONTHDAY=7,8,9,10,11,12,13",
        "19970913T090000",
        &on(
            "090000",
            &[
                "19970913", "19971011", "19971108", "19971213", "19980110", "19980207", "19980307", "19980411",
                "19980509", "19980613",
            ],
        ),
    );
}

#[test]
fn us_presidential_election_day_every_4_years_forever() {
    check_first(
        "FREQ=YEARLY;INTERVAL=4;BYMONTH=11;BYDAY=TU;BYMONTHDAY=2,3,4,5,6,7,8",
        "19961105T090000",
        &on("090000", &["19961105", "20001107", "20041102"]),
    );
}

#[test]
fn the_third_tuesday_wednesday_or_thursday_of_the_month_for_3_months() {
    check(
        "FREQ=MONTHLY;COUNT=3;BYDAY=TU,WE,TH;BYSETPOS=3",
        "19970904T090000",
        &on("090000", &["19970904", "19971007", "19971106"]),
    );
}

#[test]
fn the_second_to_last_weekday_of_the_month() {
    check_first(
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-2",
        "19970929T090000",
        &on("090000", &["19970929", "19971030", "19971127", "19971230", "19980129", "19980226", "19980330"]),
    );
}

// ---------------------------------------------------------------- sub-daily

#[test]
fn every_3_hours_from_9_to_5_on_a_specific_day() {
    // RFC 5545 prints UNTIL=19970902T170000Z (13:00 EDT), which contradicts its
    // own list; erratum 3883 corrects it to 210000Z (17:00 EDT).
    let expected = vec!["19970902T090000".to_owned(), "19970902T120000".into(), "19970902T150000".into()];
    check("FREQ=HOURLY;INTERVAL=3;UNTIL=19970902T210000Z", "19970902T090000", &expected);
    check("FREQ=HOURLY;INTERVAL=3;UNTIL=19970902T170000Z", "19970902T090000", &expected[..2]);
}

#[test]
fn every_15_minutes_for_6_occurrences() {
    check(
        "FREQ=MINUTELY;INTERVAL=15;COUNT=6",
        "19970902T090000",
        &["090000", "091500", "093000", "094500", "100000", "101500"].map(|t| format!("19970902T{t}")),
    );
}

#[test]
fn every_hour_and_a_half_for_4_occurrences() {
    check(
        "FREQ=MINUTELY;INTERVAL=90;COUNT=4",
        "19970902T090000",
        &["090000", "103000", "120000", "133000"].map(|t| format!("19970902T{t}")),
    );
}

#[test]
fn every_20_minutes_from_9_to_16_40_every_day_both_forms() {
    let mut expected = Vec::new();
    for day in 2..=4 {
        for hour in 9..=16 {
            for minute in [0, 20, 40] {
                expected.push(format!("199709{day:02}T{hour:02}{minute:02}00"));
            }
        }
    }
    check_first("FREQ=DAILY;BYHOUR=9,10,11,12,13,14,15,16;BYMINUTE=0,20,40", "19970902T090000", &expected);
    check_first("FREQ=MINUTELY;INTERVAL=20;BYHOUR=9,10,11,12,13,14,15,16", "19970902T090000", &expected);
}

// ---------------------------------------------------------------- WKST, invalid dates

#[test]
fn wkst_changes_which_days_a_biweekly_rule_generates() {
    check(
        "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=MO",
        "19970805T090000",
        &on("090000", &["19970805", "19970810", "19970819", "19970824"]),
    );
    check(
        "FREQ=WEEKLY;INTERVAL=2;COUNT=4;BYDAY=TU,SU;WKST=SU",
        "19970805T090000",
        &on("090000", &["19970805", "19970817", "19970819", "19970831"]),
    );
}

#[test]
fn an_invalid_date_is_ignored() {
    check(
        "FREQ=MONTHLY;BYMONTHDAY=15,30;COUNT=5",
        "20070115T090000",
        &on("090000", &["20070115", "20070130", "20070215", "20070315", "20070330"]),
    );
}

// ---------------------------------------------------------------- beyond the RFC's list

#[test]
fn defaults_come_from_dtstart() {
    // MONTHLY on the 31st skips short months; YEARLY on Feb 29 only leap years.
    check_first(
        "FREQ=MONTHLY",
        "20260131T083000",
        &on("083000", &["20260131", "20260331", "20260531", "20260731", "20260831"]),
    );
    check_first("FREQ=YEARLY", "20240229T120000", &on("120000", &["20240229", "20280229", "20320229"]));
    // HOURLY keeps DTSTART's minute and second.
    check_first(
        "FREQ=HOURLY;INTERVAL=5",
        "20261231T221545",
        &["20261231T221545", "20270101T031545", "20270101T081545"].map(String::from),
    );
}

#[test]
fn dtstart_is_first_and_counts_even_off_pattern() {
    // 2026-03-04 is a Wednesday; the rule only makes Mondays.
    check(
        "FREQ=WEEKLY;BYDAY=MO;COUNT=3",
        "20260304T100000",
        &["20260304T100000", "20260309T100000", "20260316T100000"].map(String::from),
    );
    // An UNTIL before DTSTART leaves DTSTART alone.
    check("FREQ=DAILY;UNTIL=20200101", "20260304T100000", &["20260304T100000".to_owned()]);
}

#[test]
fn until_as_date_and_as_floating_time_are_inclusive() {
    check(
        "FREQ=DAILY;UNTIL=20260306",
        "20260304T230000",
        &["20260304T230000", "20260305T230000", "20260306T230000"].map(String::from),
    );
    check(
        "FREQ=DAILY;UNTIL=20260306T230000",
        "20260304T230000",
        &["20260304T230000", "20260305T230000", "20260306T230000"].map(String::from),
    );
    check(
        "FREQ=DAILY;UNTIL=20260306T225959",
        "20260304T230000",
        &["20260304T230000", "20260305T230000"].map(String::from),
    );
}

#[test]
fn utc_until_across_a_dst_gap_keeps_later_wall_times_that_fall_before_it() {
    // America/New_York 2026-03-08: 02:00–03:00 does not exist. 02:00 and 02:30
    // read as 03:00 and 03:30 EDT (07:00Z, 07:30Z); 03:00 EDT is 07:00Z again.
    check(
        "FREQ=MINUTELY;INTERVAL=30;UNTIL=20260308T070000Z",
        "20260308T013000",
        &["20260308T013000", "20260308T020000", "20260308T030000"].map(String::from),
    );
}

#[test]
fn wall_clock_time_is_kept_across_dst() {
    // 09:00 every day stays 09:00 across America/New_York's 2026-11-01 change.
    check_first("FREQ=DAILY", "20261031T090000", &on("090000", &["20261031", "20261101", "20261102"]));
}

#[test]
fn bysetpos_picks_from_each_period_and_never_duplicates() {
    // Last working day of the month.
    check_first(
        "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
        "20260130T170000",
        &on("170000", &["20260130", "20260227", "20260331", "20260430"]),
    );
    // Positions 1 and -1 of a one-element set are one occurrence.
    check_first(
        "FREQ=MONTHLY;BYMONTHDAY=1;BYSETPOS=1,-1",
        "20260101T090000",
        &on("090000", &["20260101", "20260201", "20260301"]),
    );
    // BYSETPOS over times: the later of two meetings each day.
    check_first(
        "FREQ=DAILY;BYHOUR=9,17;BYSETPOS=-1",
        "20260101T090000",
        &["20260101T090000", "20260101T170000", "20260102T170000"].map(String::from),
    );
    // Positions past the set select nothing (and the window ends the search).
    let got = run_with("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=6,-6", "20260105T090000", "20300101T000000", GENEROUS);
    assert_eq!(got, Expansion { occurrences: vec![at("20260105T090000")], truncated: false });
}

#[test]
fn bysetpos_over_a_year_of_seconds_does_not_materialise_it() {
    let rule = "FREQ=YEARLY;BYMONTH=1,2,3,4,5,6,7,8,9,10,11,12;BYMONTHDAY=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23;BYMINUTE=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59;BYSECOND=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59;BYSETPOS=1,-1";
    let started = StdInstant::now();
    let got = occurrences(rule, "20260101T000000", 5);
    assert_eq!(got, ["20260101T000000", "20261231T235959", "20270101T000000", "20271231T235959", "20280101T000000"]);
    assert!(started.elapsed() < StdDuration::from_secs(1), "{:?}", started.elapsed());
}

#[test]
fn byweekno_counts_weeks_across_year_ends() {
    // ISO week 1 of 2026 starts Monday 2025-12-29; week 53 of 2026 exists
    // (2026-12-28 … 2027-01-03).
    check_first(
        "FREQ=YEARLY;BYWEEKNO=1;BYDAY=MO",
        "20251229T090000",
        &on("090000", &["20251229", "20270104", "20280103"]),
    );
    check_first(
        "FREQ=YEARLY;BYWEEKNO=53;BYDAY=MO,SU",
        "20261228T090000",
        &on("090000", &["20261228", "20270103", "20321227", "20330102"]),
    );
    check_first(
        "FREQ=YEARLY;BYWEEKNO=-1;BYDAY=FR",
        "20260101T090000",
        &on("090000", &["20260101", "20270101", "20271231"]),
    );
    // Without BYDAY the day of the week is DTSTART's (as BYMONTH takes DTSTART's day of the month).
    check_first("FREQ=YEARLY;BYWEEKNO=20", "20260513T090000", &on("090000", &["20260513", "20270519", "20280517"]));
}

#[test]
fn yearly_expansion_agrees_with_daily_limits() {
    // The same day filters used as expansions (YEARLY/MONTHLY/WEEKLY) and as
    // limits (DAILY) must select the same days.
    let parts = [
        "BYMONTH=2,8;BYMONTHDAY=1,-1,13,29",
        "BYDAY=FR,MO;BYMONTHDAY=13,-1",
        "BYYEARDAY=1,-1,60,-306",
        "BYWEEKNO=1,-1,53;BYDAY=MO,TU,WE,TH,FR,SA,SU",
        "BYMONTH=3;BYDAY=SA,SU",
    ];
    for p in parts {
        for coarse in ["YEARLY", "MONTHLY", "WEEKLY;BYDAY=MO,TU,WE,TH,FR,SA,SU"] {
            if coarse.starts_with("WEEKLY") && p.contains("BYDAY") {
                continue;
            }
            let a = run_with(&format!("FREQ={coarse};{p}"), "19991231T000000", "20091231T000000", GENEROUS);
            let b = run_with(&format!("FREQ=DAILY;{p}"), "19991231T000000", "20091231T000000", GENEROUS);
            assert_eq!(a, b, "{coarse} vs DAILY with {p}");
            assert!(a.occurrences.len() > 10, "{p}");
        }
    }
}

// ---------------------------------------------------------------- limits

#[test]
fn secondly_without_end_stops_at_max_occurrences() {
    let limits = Limits { max_occurrences: 1_000, max_iterations: 1_000_000 };
    let got = run_with("FREQ=SECONDLY", "20260101T000000", "99991231T235959", limits);
    assert!(got.truncated);
    assert_eq!(got.occurrences.len(), 1_000);
    assert_eq!(got.occurrences[999], at("20260101T001639"));
}

#[test]
fn a_rule_that_matches_nothing_stops_at_max_iterations() {
    let limits = Limits { max_occurrences: 1_000, max_iterations: 1_000 };
    for rule in [
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=MONTHLY;BYDAY=6MO",
        "FREQ=SECONDLY;BYSECOND=60",
        "FREQ=MINUTELY;BYSECOND=60",
        "FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31",
        "FREQ=HOURLY;BYYEARDAY=366;BYMONTH=1",
        "FREQ=WEEKLY;BYSETPOS=8;BYDAY=MO,TU",
    ] {
        let started = StdInstant::now();
        let got = run_with(rule, "20260101T090000", "99991231T235959", limits);
        assert!(got.truncated, "{rule}");
        assert_eq!(got.occurrences, [at("20260101T090000")], "{rule}");
        assert!(started.elapsed() < StdDuration::from_secs(2), "{rule}: {:?}", started.elapsed());
    }
}

#[test]
fn a_rule_that_matches_nothing_stops_at_the_window_without_truncation() {
    // Whole months and days that cannot match are skipped, not walked second
    // by second: two years cost a few hundred iterations.
    let limits = Limits { max_occurrences: 1_000, max_iterations: 2_000 };
    for rule in [
        "FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=MINUTELY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
    ] {
        let got = run_with(rule, "20260101T090000", "20280101T000000", limits);
        assert!(!got.truncated, "{rule}");
        assert_eq!(got.occurrences, [at("20260101T090000")], "{rule}");
    }
    // Sparse sub-daily rules step over hours and minutes they cannot use.
    let got = run_with(
        "FREQ=SECONDLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0;BYSECOND=0,30",
        "20260105T090000",
        "20280101T000000",
        limits,
    );
    assert!(!got.truncated);
    assert_eq!(got.occurrences.len(), 2 * 104);
}

#[test]
fn window_end_stops_expansion_inclusively() {
    let got = run_with("FREQ=WEEKLY;BYDAY=MO,TH", "20260105T090000", "20260115T090000", GENEROUS);
    assert!(!got.truncated);
    assert_eq!(got.occurrences, ["20260105T090000", "20260108T090000", "20260112T090000", "20260115T090000"].map(at));
    let before = run_with("FREQ=WEEKLY", "20260105T090000", "20260101T000000", GENEROUS);
    assert_eq!(before.occurrences, []);
}

#[test]
fn a_weekly_rule_over_two_years_expands_in_microseconds() {
    let rule = RRule::parse("FREQ=WEEKLY;INTERVAL=1;BYDAY=MO,WE,FR;WKST=MO").unwrap();
    let started = StdInstant::now();
    let mut total = 0;
    for _ in 0..100 {
        let got = expand(&rule, at("20260105T090000"), at("20280105T090000"), &ny_to_utc, GENEROUS);
        total += got.occurrences.len();
    }
    let each = started.elapsed() / 100;
    // 104 whole weeks, then Monday 2028-01-03 and Wednesday 2028-01-05 09:00.
    assert_eq!(total, 100 * (3 * 104 + 2));
    // Generous for debug builds on a loaded machine; release is ~10 µs.
    assert!(each < StdDuration::from_millis(5), "{each:?}");
}

// ---------------------------------------------------------------- parsing

#[test]
fn parses_every_part() {
    let rule = RRule::parse(
        "freq=yearly;Interval=2;until=20261231T235959z;BYSECOND=0,60;BYMINUTE=5;BYHOUR=9,17;BYDAY=1mo,-1FR,+2TU,SU;\
         BYMONTHDAY=-31,1;BYYEARDAY=-366,100;BYWEEKNO=-53,1;BYMONTH=1,12;BYSETPOS=-1,366;WKST=su;",
    )
    .unwrap();
    assert_eq!(rule.freq, Freq::Yearly);
    assert_eq!(rule.interval, 2);
    assert_eq!(rule.count, None);
    assert_eq!(rule.until, Some(Until::Utc(at("20261231T235959").and_utc().timestamp())));
    assert_eq!(rule.by_second, [0, 60]);
    assert_eq!(rule.by_minute, [5]);
    assert_eq!(rule.by_hour, [9, 17]);
    assert_eq!(
        rule.by_day,
        [(Some(1), Weekday::Mon), (Some(-1), Weekday::Fri), (Some(2), Weekday::Tue), (None, Weekday::Sun)]
    );
    assert_eq!(rule.by_month_day, [-31, 1]);
    assert_eq!(rule.by_year_day, [-366, 100]);
    assert_eq!(rule.by_week_no, [-53, 1]);
    assert_eq!(rule.by_month, [1, 12]);
    assert_eq!(rule.by_set_pos, [-1, 366]);
    assert_eq!(rule.wkst, Weekday::Sun);

    assert_eq!(
        RRule::parse("FREQ=DAILY;UNTIL=20261231").unwrap().until,
        Some(Until::Date(NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()))
    );
    assert_eq!(
        RRule::parse("FREQ=DAILY;UNTIL=20261231T120000").unwrap().until,
        Some(Until::Floating(at("20261231T120000")))
    );
    assert_eq!(RRule::parse("RRULE:FREQ=DAILY;COUNT=3").unwrap().count, Some(3));
    assert_eq!(RRule::parse("FREQ=DAILY;RSCALE=GREGORIAN;SKIP=OMIT").unwrap(), RRule::new(Freq::Daily));
}

#[test]
fn parse_errors_name_the_part_and_value() {
    let err = |s: &str| RRule::parse(s).unwrap_err();
    let msg = |s: &str| err(s).to_string();
    assert_eq!(msg("FREQ=MONTHLY;BYMONTHDAY=32"), "BYMONTHDAY: 32 is not in -31..=-1 or 1..=31");
    assert_eq!(msg("FREQ=MONTHLY;BYMONTHDAY=0"), "BYMONTHDAY: 0 is not in -31..=-1 or 1..=31");
    assert_eq!(msg("FREQ=DAILY;FOO=1"), "unknown rule part \"FOO\"");
    assert_eq!(err("FREQ=DAILY;FOO=1"), RRuleError::UnknownPart { name: "FOO".into() });
    assert_eq!(msg("FREQ=DAILY;freq=WEEKLY"), "FREQ is given more than once");
    assert_eq!(msg("FREQ=DAILY;COUNT=3;UNTIL=20260101"), "COUNT and UNTIL must not both be given");
    assert_eq!(msg("FREQ=DAILY;INTERVAL=0"), "INTERVAL: 0 is not a whole number from 1 to 4294967295");
    assert_eq!(msg("FREQ=DAILY;COUNT=-1"), "COUNT: -1 is not a whole number from 1 to 4294967295");
    assert_eq!(msg("COUNT=3"), "FREQ is required");
    assert_eq!(msg(""), "RRULE is empty");
    assert_eq!(msg("FREQ=FORTNIGHTLY").split(':').next(), Some("FREQ"));
    assert_eq!(msg("FREQ=DAILY;BYHOUR=24"), "BYHOUR: 24 is not in 0..=23");
    assert_eq!(msg("FREQ=DAILY;BYMINUTE=60"), "BYMINUTE: 60 is not in 0..=59");
    assert_eq!(msg("FREQ=DAILY;BYSECOND=61"), "BYSECOND: 61 is not in 0..=60");
    assert_eq!(msg("FREQ=DAILY;BYMONTH=13"), "BYMONTH: 13 is not in 1..=12");
    assert_eq!(msg("FREQ=YEARLY;BYYEARDAY=367"), "BYYEARDAY: 367 is not in -366..=-1 or 1..=366");
    assert_eq!(msg("FREQ=YEARLY;BYWEEKNO=54"), "BYWEEKNO: 54 is not in -53..=-1 or 1..=53");
    assert_eq!(msg("FREQ=YEARLY;BYSETPOS=0"), "BYSETPOS: 0 is not in -366..=-1 or 1..=366");
    assert!(msg("FREQ=MONTHLY;BYDAY=0MO").starts_with("BYDAY: 0MO is not a weekday"));
    assert!(msg("FREQ=MONTHLY;BYDAY=54MO").starts_with("BYDAY: 54MO is not"));
    assert!(msg("FREQ=MONTHLY;BYDAY=MO,XX").starts_with("BYDAY: XX is not"));
    assert!(msg("FREQ=MONTHLY;BYDAY=").starts_with("BYDAY:  is not"));
    assert!(msg("FREQ=DAILY;WKST=MONDAY").starts_with("WKST: MONDAY is not"));
    assert!(msg("FREQ=DAILY;UNTIL=20260230").starts_with("UNTIL: 20260230 is not"));
    assert!(msg("FREQ=DAILY;UNTIL=20260101T250000Z").starts_with("UNTIL:"));
    assert!(msg("FREQ=DAILY;UNTIL=20260101T1200").starts_with("UNTIL:"));
    assert_eq!(msg("FREQ=DAILY;;COUNT=2"), "\"\" is not NAME=VALUE");
    assert_eq!(msg("FREQ"), "\"FREQ\" is not NAME=VALUE");
    assert_eq!(msg("FREQ=DAILY;RSCALE=HEBREW"), "RSCALE=HEBREW is not supported");
    // Echoed text is clipped.
    assert!(msg(&format!("FREQ=DAILY;{}=1", "X".repeat(500))).len() < 80);
}

#[test]
fn byday_lists_are_a_union_of_plain_and_ordinal_days() {
    // §3.3.10: each BYDAY entry adds days. The first Monday and every Friday.
    check_first(
        "FREQ=MONTHLY;BYDAY=1MO,FR",
        "20260302T090000",
        &on("090000", &["20260302", "20260306", "20260313", "20260320", "20260327", "20260403", "20260406"]),
    );
    // Ordinals count within the month when YEARLY has BYMONTH: Thanksgiving.
    check_first(
        "FREQ=YEARLY;BYMONTH=11;BYDAY=4TH",
        "20261126T120000",
        &on("120000", &["20261126", "20271125", "20281123"]),
    );
    // An ordinal is meaningless for WEEKLY (the RFC forbids it): read as the day.
    check_first("FREQ=WEEKLY;BYDAY=1MO", "20260302T090000", &on("090000", &["20260302", "20260309", "20260316"]));
}

#[test]
fn bysetpos_of_a_weekly_rule_counts_the_whole_first_week() {
    // The set of DTSTART's (Monday-started) week is Mon 1998-03-09 and Wed
    // 03-11; position 1 is the Monday, before DTSTART, so that week adds
    // nothing. (python-dateutil starts the first set at DTSTART: Wed 11.)
    check_first(
        "FREQ=WEEKLY;BYDAY=MO,WE;BYSETPOS=1",
        "19980310T090000",
        &on("090000", &["19980310", "19980316", "19980323"]),
    );
}

#[test]
fn several_rules_are_a_union_with_dtstart_once_and_the_earliest_kept_at_the_limit() {
    // RFC 5545 §3.8.5.3: the set is every start any rule generates. Each rule
    // keeps its own COUNT, DTSTART included in each; shared starts count once.
    let rules = [RRule::parse("FREQ=DAILY;COUNT=3").unwrap(), RRule::parse("FREQ=WEEKLY;BYDAY=MO,WE;COUNT=3").unwrap()];
    let union = |limits| expand_union(&rules, at("20250106T100000"), at("21000101T000000"), &ny_to_utc, limits);
    let got = union(GENEROUS);
    assert_eq!(got.occurrences, [at("20250106T100000"), at("20250107T100000"), at("20250108T100000"), at("20250113T100000")]);
    assert!(!got.truncated);
    // Two allowed: the first two of the union, said to be cut short.
    let cut = union(Limits { max_occurrences: 2, ..GENEROUS });
    assert_eq!((cut.occurrences, cut.truncated), (vec![at("20250106T100000"), at("20250107T100000")], true));
    // No rule: DTSTART alone; one rule: exactly what `expand` gives.
    assert_eq!(expand_union(&[], at("20250106T100000"), at("21000101T000000"), &ny_to_utc, GENEROUS).occurrences, [at("20250106T100000")]);
    let one = expand_union(&rules[..1], at("20250106T100000"), at("21000101T000000"), &ny_to_utc, GENEROUS);
    assert_eq!(one, expand(&rules[0], at("20250106T100000"), at("21000101T000000"), &ny_to_utc, GENEROUS));
}
