//! One provider's calendar for a slot query, and the slot queries.
//!
//! [`load_calendar`] runs one statement ([`read_sql`]) whatever the number of
//! days, rules or rows: the cost of a query does not grow with the range,
//! and what it reads is one snapshot. Which rows are needed is decided here;
//! what they mean is decided by `cal_core` alone (no feasibility logic in
//! SQL).

use cal_core::feasibility::{Combine, CommonAnswer, Participant, ProviderCalendar, SlotAnswer, SlotQuery, SlotRange};
use cal_core::time::Instant;
use cal_core::{FeasibilityError, bookable_slots};

use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::db::Executor;
use crate::error::{StoreError, ValidationProblem};
use crate::rows::{
    self, EVENT_COLUMNS, EXCEPTION_COLUMNS, EXTERNAL_COLUMNS, HOLD_COLUMNS, POLICY_COLUMNS, RULE_COLUMNS, SYNCED_COLUMNS,
};

/// The padded range `[lo, hi)` a read covers, from parameters
/// `$1 user_id, $2 role_code, $3 from, $4 to, $5 duration_min (0: none)`.
///
/// Slots start before `to` but may run past it, up to the longest duration
/// the engine will consider: the larger of the requested duration, 60 min
/// (the default minimum) and the largest minimum of the role's active rules
/// (`cal_core::feasibility`'s horizon). Two more days on each side cover
/// exceptions, whose dates are local (UTC−12 … UTC+14) and whose windows may
/// run overnight into the next day.
///
/// The two days also cover booking policies (SEMANTICS.md §8) but for one
/// thing: buffers reach at most `2 × cal_core::policy::MAX_BUFFER_MIN` (a
/// booking's own buffer plus the slot's, a day each) past a booking, and a
/// local day (23 to 25 hours) around a start lies within a day of it, so
/// the day limit's count and every buffer are already read. An ISO week is
/// not: when the role's policy has a `max_per_week`, the role's own events
/// and holds (the only ones a limit counts) are read over `[clo, chi)`,
/// eight days around `[from, to)` (a local week is at most seven days and
/// an hour or so of daylight saving time); otherwise `[clo, chi)` is `[lo,
/// hi)`. The bounds are widened, not counted in SQL: the engine counts
/// starts by its own local days and weeks (one definition, cal-core's), and
/// the read stays one statement.
///
/// A `guard` (a `where` clause, or `""`) can leave `bounds` empty, and with
/// it every part of the statement built on it.
fn bounds_cte(guard: &str) -> String {
    format!(
        "padded as (
             select $3::timestamptz - interval '2 days' as lo,
                    $4::timestamptz + interval '2 days' + make_interval(mins => greatest($5::int, 60,
                        coalesce((select max(r.min_duration_min) from cal.weekly_rule r
                                  where r.user_id = $1::text and r.role_code = $2::text and r.active), 0))) as hi,
                    exists (select 1 from cal.booking_policy p
                            where p.user_id = $1::text and p.role_code = $2::text and p.max_per_week is not null) as weekly
         ), bounds as (
             select lo, hi,
                    case when weekly then least(lo, $3::timestamptz - interval '8 days') else lo end as clo,
                    case when weekly then greatest(hi, $4::timestamptz + interval '8 days') else hi end as chi
             from padded
             {guard}
         )"
    )
}

/// The columns of a read ([`read_sql`]), each with its type: every row has
/// them all, `row_kind` says which are its own (the others are null). A
/// column two kinds share (`start_local` of a rule and of an exception,
/// `kind` of an exception and of a hold) has one type and one meaning per
/// kind, so `rows` and `booking` read each kind's row by the very names
/// they read its table's rows with.
const READ_COLUMNS: [(&str, &str); 33] = [
    ("version", "int8"),
    ("rule_id", "text"),
    ("user_id", "text"),
    ("role_code", "text"),
    ("weekday_mask", "int4"),
    ("start_local", "text"),
    ("end_local", "text"),
    ("timezone", "text"),
    ("min_duration_min", "int4"),
    ("lead_time_hours", "int4"),
    ("booking_window_days", "int4"),
    ("active", "bool"),
    ("buffer_before_min", "int4"),
    ("buffer_after_min", "int4"),
    ("max_per_day", "int4"),
    ("max_per_week", "int4"),
    ("exc_id", "text"),
    ("date_local", "date"),
    ("note", "text"),
    ("hold_id", "text"),
    ("customer_id", "text"),
    ("start_at", "timestamptz"),
    ("end_at", "timestamptz"),
    ("kind", "text"),
    ("mode", "text"),
    ("status", "text"),
    ("expires_at", "timestamptz"),
    ("event_id", "text"),
    ("converted_event_id", "text"),
    ("idempotency_key", "text"),
    ("request_fingerprint", "text"),
    ("created_at", "timestamptz"),
    ("id", "text"),
];

/// One `union all` branch of a read: `select {lead} '{kind}' as row_kind,
/// ...` with [`READ_COLUMNS`] in order, each the expression `columns` gives
/// it (a list like `rows::RULE_COLUMNS`: `name` or `expression as name`) or
/// null, then `rest` (`from ...`). The first branch (`typed`) casts its
/// nulls and names its columns; the others follow its types and names.
/// `lead` is columns of a statement's own before them (`""` for a read).
pub(crate) fn union_branch(lead: &str, kind: &str, columns: &str, rest: &str, typed: bool) -> String {
    let given: Vec<(&str, &str)> = columns
        .split(',')
        .map(|item| {
            let item = item.trim();
            match item.rsplit_once(" as ") {
                Some((expr, name)) => (name.trim(), expr.trim()),
                None => (item, item),
            }
        })
        .collect();
    for (name, _) in &given {
        assert!(READ_COLUMNS.iter().any(|(c, _)| c == name), "a read has no column {name}");
    }
    let exprs: Vec<String> = READ_COLUMNS
        .iter()
        .map(|&(column, ty)| {
            let expr = given.iter().find(|(name, _)| *name == column).map(|(_, expr)| *expr);
            match (expr, typed) {
                (Some(expr), true) => format!("({expr})::{ty} as {column}"),
                (Some(expr), false) => expr.to_owned(),
                (None, true) => format!("null::{ty} as {column}"),
                (None, false) => "null".to_owned(),
            }
        })
        .collect();
    format!("select {lead} '{kind}'{} {} {rest}", if typed { " as row_kind," } else { "," }, exprs.join(", "))
}

/// The order of a read's rows: by kind, then rules by id, exceptions by
/// date, busy time by start, policies by role.
const READ_ORDER: &str = "order by row_kind, rule_id, date_local, exc_id, start_at, end_at, event_id, hold_id, id, role_code";

/// What a read ([`read_sql`]) returns.
#[derive(Clone, Copy)]
pub(crate) struct ReadShape {
    /// The hold of the idempotency key `$6`, and the busy time only if
    /// there is none.
    pub(crate) keyed: bool,
    /// Rules and exceptions (without them, busy time and policies only).
    pub(crate) rules: bool,
}

/// A read but for its first row, to build a statement on: the `bounds`
/// CTE and the `union all` branches after the first, each with `lead`
/// ([`union_branch`]). Every row of them also needs `gate` (a condition; `true`
/// for a plain read).
pub(crate) struct ReadParts {
    bounds: String,
    branches: Vec<String>,
}

impl ReadParts {
    pub(crate) fn new(shape: ReadShape, hold_record: &str, gate: &str, lead: &str) -> Self {
        let key = "from cal.hold where user_id = $1::text and idempotency_key = $6::text";
        let guard = if shape.keyed { format!("where {gate} and not exists (select 1 {key})") } else { format!("where {gate}") };
        let overlaps = "tstzrange(start_at, end_at, '[)') && tstzrange(lo, hi, '[)')";
        // The role's own bookings over the wider range its week limit counts
        // (see `bounds_cte`); the first test is the one the GiST index answers.
        let counted = "tstzrange(start_at, end_at, '[)') && tstzrange(clo, chi, '[)')
                   and (role_code = $2::text or tstzrange(start_at, end_at, '[)') && tstzrange(lo, hi, '[)'))";
        let mut branches = Vec::new();
        if shape.rules {
            let rules = format!("from cal.weekly_rule where user_id = $1::text and role_code = $2::text and {gate}");
            branches.push(union_branch(lead, "r", RULE_COLUMNS, &rules, false));
            branches.push(union_branch(
                lead,
                "c",
                EXCEPTION_COLUMNS,
                "from cal.exception, bounds where user_id = $1::text
                   and date_local between (lo at time zone 'UTC')::date and (hi at time zone 'UTC')::date",
                false,
            ));
        }
        // Every role's policy (a booking is buffered by its own role's),
        // in every read: a loser re-checks against the busy time *and* the
        // policies read afresh, so a policy changed since its first read
        // (or since a cached calendar was read) never decides its answer.
        let policies = format!("from cal.booking_policy where user_id = $1::text and {gate}");
        branches.push(union_branch(lead, "p", POLICY_COLUMNS, &policies, false));
        if shape.keyed {
            branches.push(union_branch(lead, "k", hold_record, &format!("{key} and {gate}"), false));
        }
        branches.push(union_branch(
            lead,
            "e",
            EVENT_COLUMNS,
            &format!("from cal.event, bounds where user_id = $1::text and status = 'confirmed' and {counted}"),
            false,
        ));
        branches.push(union_branch(
            lead,
            "h",
            hold_record,
            &format!("from cal.hold, bounds where user_id = $1::text and status = 'active' and {counted}"),
            false,
        ));
        branches.push(union_branch(
            lead,
            "x",
            EXTERNAL_COLUMNS,
            &format!("from cal.external_event, bounds where user_id = $1::text and {overlaps}"),
            false,
        ));
        branches.push(union_branch(
            lead,
            "s",
            SYNCED_COLUMNS,
            &format!("from cal.synced_event, bounds where user_id = $1::text and {overlaps}"),
            false,
        ));
        ReadParts { bounds: bounds_cte(&guard), branches }
    }

    /// The statement's end from its last CTEs on: `padded as (...), bounds as (...)`, then
    /// `first` (a typed [`union_branch`]), the other branches and their order.
    pub(crate) fn finish(&self, first: &str) -> String {
        format!(
            "{}
             {first}
             union all
             {}
             {READ_ORDER}",
            self.bounds,
            self.branches.join("\n         union all\n         ")
        )
    }
}

/// A calendar read in one statement (one snapshot, one round of executor
/// work) over `$1 user_id, $2 role_code, $3 from, $4 to, $5 duration_min`
/// (and `$6 idempotency_key` if keyed), rows told by `row_kind`:
///
/// * `v`: the provider's version (null: no row yet), always first and once;
/// * `r`: the role's weekly rules, active or not (`rows::RULE_COLUMNS`);
/// * `c`: the provider's exceptions dated within the padded range
///   (`rows::EXCEPTION_COLUMNS`);
/// * `p`: the provider's booking policies, every role's
///   (`rows::POLICY_COLUMNS`), with or without rules;
/// * `k`: the hold of the key (`hold_record`'s columns), if keyed;
/// * `e`: confirmed events, `h`: `active` holds (whole, `hold_record`'s
///   columns, so that a booking can mark the expired-but-unmarked ones
///   without reading them again), `x`: imported busy intervals (`id` is
///   `source_id/uid/recurrence_id`), `s`: synced busy items (`id` is
///   `connection_id/calendar_id/item_id`), all overlapping the padded range
///   (events and holds of the role `$2` the wider range of its week limit,
///   if it has one: see `bounds_cte`).
///
/// Keyed, a key that has a hold leaves out the busy time (and exceptions):
/// a hold of this very request that the busy time would show is the key's
/// row instead. The overlap tests use the expression of the exclusion
/// constraints, so the planner can answer them from those GiST indexes.
pub(crate) fn read_sql(shape: ReadShape, hold_record: &str) -> String {
    let version = union_branch("", "v", "(select version from cal.provider_version where user_id = $1::text) as version", "", true);
    format!("with {}", ReadParts::new(shape, hold_record, "true", "").finish(&version))
}

/// `sql` with each parameter `$n` renumbered `$map(n)`, so that a read's
/// parts can join a statement whose parameters are numbered otherwise.
pub(crate) fn renumber_params(sql: &str, map: impl Fn(usize) -> usize) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            let n: usize = rest[..digits].parse().expect("digits");
            out.push_str(&map(n).to_string());
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

/// The rows of a read ([`read_sql`]) sorted by kind: the version, the
/// calendar they make (rules, exceptions, busy time), and, kept as rows,
/// the busy rows and the key's hold.
pub(crate) struct CalendarSnapshot {
    pub(crate) version: Option<i64>,
    pub(crate) calendar: ProviderCalendar,
    pub(crate) busy: Vec<Row>,
    pub(crate) key: Vec<Row>,
}

impl CalendarSnapshot {
    pub(crate) fn from_rows(rows: Vec<Row>) -> Result<Self, StoreError> {
        let mut read = CalendarSnapshot { version: None, calendar: ProviderCalendar::default(), busy: Vec::with_capacity(rows.len()), key: Vec::new() };
        for row in rows {
            match row.try_get::<_, &str>("row_kind")? {
                "v" => read.version = row.try_get("version")?,
                "r" => read.calendar.weekly_rules.push(rows::rule(&row)?),
                "c" => read.calendar.exceptions.push(rows::exception(&row)?.exception),
                "p" => read.calendar.policies.push(rows::policy(&row)?),
                "k" => read.key.push(row),
                _ => read.busy.push(row),
            }
        }
        read_busy(&read.busy, &mut read.calendar)?;
        Ok(read)
    }
}

/// The parameters of a read: `$1 user_id, $2 role_code, $3 from, $4 to,
/// $5 duration_min (0: none)`.
pub(crate) struct CalendarParams<'a> {
    user_id: &'a str,
    role_code: &'a str,
    from: chrono::DateTime<chrono::Utc>,
    to: chrono::DateTime<chrono::Utc>,
    duration: i32,
}

impl<'a> CalendarParams<'a> {
    pub(crate) fn new(
        user_id: &'a str,
        role_code: &'a str,
        from: Instant,
        to: Instant,
        duration_min: Option<u32>,
    ) -> Result<Self, StoreError> {
        if to < from {
            return Err(StoreError::validation("to", FeasibilityError::ToBeforeFrom { from, to }));
        }
        let duration = duration_min.map_or(0, |d| i32::try_from(d).unwrap_or(i32::MAX));
        Ok(CalendarParams { user_id, role_code, from: from.to_chrono(), to: to.to_chrono(), duration })
    }

    /// `from, to, duration_min`: the read's `$3, $4, $5`.
    pub(crate) fn range(&self) -> [&(dyn ToSql + Sync); 3] {
        [&self.from, &self.to, &self.duration]
    }
}

/// Runs a read (`sql`, one of [`read_sql`]'s; keyed if `key` is given) over
/// `p`.
pub(crate) async fn read_snapshot(
    db: &impl Executor,
    sql: &str,
    p: &CalendarParams<'_>,
    key: Option<&String>,
) -> Result<CalendarSnapshot, StoreError> {
    let all: [&(dyn ToSql + Sync); 6] = [&p.user_id, &p.role_code, &p.from, &p.to, &p.duration, &key];
    let statement = db.prepare(sql).await?;
    CalendarSnapshot::from_rows(db.query_prepared(&statement, &all[..if key.is_some() { 6 } else { 5 }]).await?)
}

/// Sorts the busy rows of a read (`e`, `h`, `x`, `s`) into the calendar.
fn read_busy(rows: &[Row], calendar: &mut ProviderCalendar) -> Result<(), StoreError> {
    for row in rows {
        match row.try_get::<_, &str>("row_kind")? {
            "e" => calendar.events.push(rows::event(row)?),
            "h" => calendar.holds.push(rows::hold(row)?),
            "s" => calendar.external_busy.push(rows::synced_busy(row)?),
            _ => calendar.external_busy.push(rows::external_busy(row)?),
        }
    }
    Ok(())
}

/// Loads what a slot query for `user_id`/`role_code` over `[from, to)` needs:
///
/// * every weekly rule of that user and role, active or not (each is
///   validated; the engine skips inactive ones);
/// * the user's exceptions (any role) dated within the padded range;
/// * the user's booking policies (every role: a booking is buffered by its
///   own role's policy);
/// * confirmed events and `active` holds overlapping it — expired holds
///   included, because whether a hold blocks depends on `now`, which the
///   engine is given;
/// * the busy intervals of the user's external calendars overlapping it.
///
/// `duration_min` is the requested slot length, if any (it widens the range
/// at the end). Always one statement: one round trip on a pooled connection
/// that ran it before.
pub async fn load_calendar(
    db: &impl Executor,
    user_id: &str,
    role_code: &str,
    from: Instant,
    to: Instant,
    duration_min: Option<u32>,
) -> Result<ProviderCalendar, StoreError> {
    let params = CalendarParams::new(user_id, role_code, from, to, duration_min)?;
    Ok(read_snapshot(db, load_sql(), &params, None).await?.calendar)
}

/// The statement of [`load_calendar`]: a [`read_sql`] without a key.
pub(crate) fn load_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| read_sql(ReadShape { keyed: false, rules: true }, HOLD_COLUMNS))
}

/// Bookable slots of one provider (SEMANTICS.md §4): [`load_calendar`] then
/// `cal_core::bookable_slots`. A refused query names its field (`to`,
/// `duration_min`, ...).
pub async fn slots(db: &impl Executor, query: &SlotQuery, now: Instant) -> Result<SlotAnswer, StoreError> {
    let r = &query.range;
    let calendar = load_calendar(db, &query.user_id, &query.role_code, r.from(), r.to(), r.duration_min()).await?;
    bookable_slots(query, &calendar, now).map_err(|e| StoreError::validation(e.field(), e))
}

/// Slots for several providers at once (`all_of` / `any_of`): each
/// `(user_id, role_code)`'s calendar is loaded with [`load_calendar`] (one
/// statement per provider), then `cal_core::common_slots` combines them. A
/// refusal names the provider by position, e.g. `providers[1].duration_min`.
pub async fn common_slots(
    db: &impl Executor,
    mode: Combine,
    providers: &[(&str, &str)],
    range: &SlotRange,
    now: Instant,
) -> Result<CommonAnswer, StoreError> {
    if providers.is_empty() {
        return Err(StoreError::validation("providers", ValidationProblem::Empty));
    }
    let mut calendars = Vec::with_capacity(providers.len());
    for (user_id, role_code) in providers {
        calendars.push(load_calendar(db, user_id, role_code, range.from(), range.to(), range.duration_min()).await?);
    }
    let participants: Vec<Participant<'_>> = providers
        .iter()
        .zip(&calendars)
        .map(|(&(user_id, role_code), calendar)| Participant { user_id, role_code, calendar })
        .collect();
    cal_core::common_slots(mode, &participants, range, now)
        .map_err(|e| StoreError::validation(e.path("providers"), e.source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renumber_maps_whole_parameter_numbers_only() {
        let sql = "where a = $1 and b = $10 and c = $3::int and d = '$' and e = $";
        assert_eq!(
            renumber_params(sql, |n| n + 16),
            "where a = $17 and b = $26 and c = $19::int and d = '$' and e = $"
        );
    }

    #[test]
    fn every_branch_has_every_column_in_order() {
        let typed = union_branch("", "r", RULE_COLUMNS, "from cal.weekly_rule", true);
        assert!(typed.starts_with("select  'r' as row_kind, null::int8 as version, (rule_id)::text as rule_id,"), "{typed}");
        let plain = union_branch("null,", "x", EXTERNAL_COLUMNS, "from cal.external_event", false);
        // After the lead, after row_kind, and between the columns.
        assert_eq!(plain.matches(", ").count(), 1 + READ_COLUMNS.len(), "{plain}");
        assert!(plain.ends_with("source_id || '/' || uid || '/' || recurrence_id from cal.external_event"), "{plain}");
    }

    #[test]
    #[should_panic(expected = "a read has no column nope")]
    fn a_column_a_read_lacks_is_refused_when_the_sql_is_built() {
        union_branch("", "r", "rule_id, nope", "", false);
    }
}
