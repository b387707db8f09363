//! One provider's calendar for a slot query, and the slot queries.
//!
//! [`load_calendar`] runs a fixed set of three statements, concurrently on one
//! connection (tokio-postgres pipelines them), whatever the number of days,
//! rules or rows: the cost of a query does not grow with the range. Which
//! rows are needed is decided here; what they mean is decided by `cal_core`
//! alone (no feasibility logic in SQL).

use cal_core::feasibility::{Combine, CommonAnswer, Participant, ProviderCalendar, SlotAnswer, SlotQuery, SlotRange};
use cal_core::time::Instant;
use cal_core::{FeasibilityError, bookable_slots};

use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use crate::db::Executor;
use crate::error::{StoreError, ValidationProblem};
use crate::rows::{self, EXCEPTION_COLUMNS, RULE_COLUMNS};

/// The padded range `[lo, hi)` the loaders read, from parameters
/// `$1 user_id, $2 role_code, $3 from, $4 to, $5 duration_min (0: none)`.
///
/// Slots start before `to` but may run past it, up to the longest duration
/// the engine will consider: the larger of the requested duration, 60 min
/// (the default minimum) and the largest minimum of the role's active rules
/// (`cal_core::feasibility`'s horizon). Two more days on each side cover
/// exceptions, whose dates are local (UTC−12 … UTC+14) and whose windows may
/// run overnight into the next day.
///
/// A `guard` (a `where` clause, or `""`) can leave `bounds` empty, and with
/// it every statement built on it.
macro_rules! bounds_cte {
    ($guard:literal) => {
        concat!(
            "with bounds as (
            select $3::timestamptz - interval '2 days' as lo,
                   $4::timestamptz + interval '2 days' + make_interval(mins => greatest($5::int, 60,
                       coalesce((select max(r.min_duration_min) from cal.weekly_rule r
                                 where r.user_id = $1::text and r.role_code = $2::text and r.active), 0))) as hi
            ",
            $guard,
            "
         ) "
        )
    };
}

/// Everything busy in one statement after `bounds` (one round of executor
/// work): each row is an event (`e`), a hold (`h`) or an imported busy
/// interval (`x`), told by `row_kind`, with the columns `rows::event`,
/// `rows::hold` and `rows::external_busy` read (the others null). The
/// columns are laid out as `row_kind`, a hold record's columns (those
/// `booking` reads a `cal.hold` row with), then `id`, so that a statement can
/// put a whole hold (`k`) before them ([`keyed_busy_sql`]); a hold's row is
/// whole too, so a booking can tell the expired-but-unmarked holds it must
/// mark (and announce) without reading them again. The overlap tests
/// use the same expression as the exclusion constraints, so the planner can
/// answer them from those GiST indexes.
macro_rules! busy_rows {
    () => {
        "select 'e' as row_kind, null::text as hold_id, user_id, null::text as role_code, null::text as customer_id,
                start_at, end_at, null::text as kind, null::text as mode, status, null::timestamptz as expires_at,
                event_id, null::text as converted_event_id, null::text as idempotency_key,
                null::text as request_fingerprint, null::timestamptz as created_at, null::text as id
         from cal.event, bounds
         where user_id = $1::text and status = 'confirmed'
           and tstzrange(start_at, end_at, '[)') && tstzrange(lo, hi, '[)')
         union all
         select 'h', hold_id, user_id, role_code, customer_id, start_at, end_at, kind, mode, status, expires_at,
                event_id, converted_event_id, idempotency_key, request_fingerprint, created_at, null
         from cal.hold, bounds
         where user_id = $1::text and status = 'active'
           and tstzrange(start_at, end_at, '[)') && tstzrange(lo, hi, '[)')
         union all
         select 'x', null, user_id, null, null, start_at, end_at, null, null, null, null,
                null, null, null, null, null, source_id || '/' || uid || '/' || recurrence_id
         from cal.external_event, bounds
         where user_id = $1::text
           and tstzrange(start_at, end_at, '[)') && tstzrange(lo, hi, '[)')
         order by row_kind, start_at, end_at, event_id, hold_id, id"
    };
}

/// A hold request's read of busy time and its key in one statement: the
/// hold of `$1`'s idempotency key `$6` (`row_kind` `k`, its columns the hold
/// record `hold_columns` names) and, only if there is none, the busy rows of
/// [`CalendarSql::busy`]. One snapshot for both: a hold of this very request
/// that the busy time would show is the key's row instead.
pub(crate) fn keyed_busy_sql(hold_columns: &str) -> String {
    format!(
        concat!(
            bounds_cte!(
                "where not exists (select 1 from cal.hold k where k.user_id = $1::text and k.idempotency_key = $6::text)"
            ),
            "select 'k' as row_kind, {}, null::text as id
             from cal.hold where user_id = $1::text and idempotency_key = $6::text
             union all
             ",
            busy_rows!()
        ),
        hold_columns
    )
}

/// The rows of a keyed busy read ([`keyed_busy_sql`]): busy time, and the
/// key's hold row if there is one (then no busy time).
pub(crate) struct KeyedBusy {
    pub(crate) busy: Vec<Row>,
    pub(crate) key: Vec<Row>,
}

impl KeyedBusy {
    fn split(rows: Vec<Row>) -> Result<Self, StoreError> {
        let mut out = KeyedBusy { busy: Vec::with_capacity(rows.len()), key: Vec::new() };
        for row in rows {
            if row.try_get::<_, &str>("row_kind")? == "k" {
                out.key.push(row);
            } else {
                out.busy.push(row);
            }
        }
        Ok(out)
    }
}

/// The statements of a calendar load, built once per process.
struct CalendarSql {
    rules: String,
    /// The rules after the provider's `version` (on every row; one row of
    /// nulls but the version if there is no rule): a hold request reads the
    /// version first, in the same statement as the rules.
    versioned_rules: String,
    exceptions: String,
    busy: String,
}

fn calendar_sql() -> &'static CalendarSql {
    static SQL: std::sync::OnceLock<CalendarSql> = std::sync::OnceLock::new();
    SQL.get_or_init(|| CalendarSql {
        rules: format!("select {RULE_COLUMNS} from cal.weekly_rule where user_id = $1 and role_code = $2 order by rule_id"),
        versioned_rules: format!(
            "select (select version from cal.provider_version where user_id = $1::text) as version, r.*
             from (select 1) as one left join (
                 select {RULE_COLUMNS} from cal.weekly_rule where user_id = $1::text and role_code = $2::text
             ) as r on true
             order by r.rule_id"
        ),
        exceptions: format!(
            concat!(
                bounds_cte!(""),
                "select {} from cal.exception, bounds
                 where user_id = $1::text
                   and date_local between (lo at time zone 'UTC')::date and (hi at time zone 'UTC')::date
                 order by date_local, exc_id"
            ),
            EXCEPTION_COLUMNS
        ),
        busy: concat!(bounds_cte!(""), busy_rows!()).to_owned(),
    })
}

/// The parameters of a calendar load: `$1 user_id, $2 role_code, $3 from,
/// $4 to, $5 duration_min (0: none)`.
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

    fn all(&self) -> [&(dyn ToSql + Sync); 5] {
        [&self.user_id, &self.role_code, &self.from, &self.to, &self.duration]
    }

    /// These and `$6 idempotency_key`, for [`keyed_busy_sql`].
    fn with_key<'k>(&'k self, key: &'k String) -> [&'k (dyn ToSql + Sync); 6] {
        [&self.user_id, &self.role_code, &self.from, &self.to, &self.duration, key]
    }
}

/// The three statements of a calendar load, prepared on one connection, so
/// that a caller can run them in a pipeline after statements of its own
/// (a lock first, then the reads it guards).
pub(crate) struct CalendarStatements {
    rules: Statement,
    exceptions: Statement,
    busy: Statement,
}

impl CalendarStatements {
    /// Prepares (or takes from the connection's cache) the three statements.
    pub(crate) async fn prepare(db: &impl Executor) -> Result<Self, StoreError> {
        let sql = calendar_sql();
        Self::prepare_with(db, &sql.rules, &sql.busy).await
    }

    /// The same for a hold request: the provider's version with the rules,
    /// and a keyed busy read ([`keyed_busy_sql`]) for the third.
    pub(crate) async fn prepare_keyed(db: &impl Executor, keyed_busy: &str) -> Result<Self, StoreError> {
        Self::prepare_with(db, &calendar_sql().versioned_rules, keyed_busy).await
    }

    async fn prepare_with(db: &impl Executor, rules: &str, busy: &str) -> Result<Self, StoreError> {
        let (rules, exceptions, busy) =
            tokio::try_join!(db.prepare(rules), db.prepare(&calendar_sql().exceptions), db.prepare(busy))?;
        Ok(CalendarStatements { rules, exceptions, busy })
    }

    /// Runs the three, pipelined in this order, and reads the calendar.
    pub(crate) async fn load(&self, db: &impl Executor, p: &CalendarParams<'_>) -> Result<ProviderCalendar, StoreError> {
        Ok(self.load_with(db, &p.all()).await?.0)
    }

    /// [`Self::load`] for statements prepared keyed, with `key`: the
    /// calendar, its busy rows with the key's hold row (if any; then no busy
    /// time), and the provider's version read before them (`None`: no
    /// version row yet).
    pub(crate) async fn load_keyed(
        &self,
        db: &impl Executor,
        p: &CalendarParams<'_>,
        key: &String,
    ) -> Result<(ProviderCalendar, KeyedBusy, Option<i64>), StoreError> {
        self.load_with(db, &p.with_key(key)).await
    }

    async fn load_with(
        &self,
        db: &impl Executor,
        all: &[&(dyn ToSql + Sync)],
    ) -> Result<(ProviderCalendar, KeyedBusy, Option<i64>), StoreError> {
        let (rules, exceptions, busy) = tokio::try_join!(
            biased;
            db.query_prepared(&self.rules, &all[..2]),
            db.query_prepared(&self.exceptions, &all[..5]),
            db.query_prepared(&self.busy, all),
        )?;
        // Versioned rules: the version on every row, and a row of nulls
        // rather than none when there is no rule.
        let version = match rules.first() {
            Some(row) if row.columns().first().is_some_and(|c| c.name() == "version") => row.try_get("version")?,
            _ => None,
        };
        let rules = rules.iter().filter(|r| !matches!(r.try_get::<_, Option<&str>>("rule_id"), Ok(None)));
        let mut calendar = ProviderCalendar {
            weekly_rules: rules.map(rows::rule).collect::<Result<_, _>>()?,
            exceptions: exceptions.iter().map(|r| rows::exception(r).map(|s| s.exception)).collect::<Result<_, _>>()?,
            ..ProviderCalendar::default()
        };
        let keyed = KeyedBusy::split(busy)?;
        read_busy(&keyed.busy, &mut calendar)?;
        Ok((calendar, keyed, version))
    }
}

/// Runs a keyed busy read ([`keyed_busy_sql`], as `keyed_busy`) over `p`
/// for `key`.
pub(crate) async fn read_keyed(
    db: &impl Executor,
    keyed_busy: &str,
    p: &CalendarParams<'_>,
    key: &String,
) -> Result<KeyedBusy, StoreError> {
    let statement = db.prepare(keyed_busy).await?;
    KeyedBusy::split(db.query_prepared(&statement, &p.with_key(key)).await?)
}

/// Replaces the busy time of a loaded calendar (events, holds and imported
/// busy time) with the busy rows of [`keyed_busy_sql`].
pub(crate) fn replace_busy(rows: &[Row], calendar: &mut ProviderCalendar) -> Result<(), StoreError> {
    calendar.events.clear();
    calendar.holds.clear();
    calendar.external_busy.clear();
    read_busy(rows, calendar)
}

/// Sorts the rows of [`CalendarSql::busy`] into the calendar.
fn read_busy(rows: &[Row], calendar: &mut ProviderCalendar) -> Result<(), StoreError> {
    for row in rows {
        match row.try_get::<_, &str>("row_kind")? {
            "e" => calendar.events.push(rows::event(row)?),
            "h" => calendar.holds.push(rows::hold(row)?),
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
/// * confirmed events and `active` holds overlapping it — expired holds
///   included, because whether a hold blocks depends on `now`, which the
///   engine is given;
/// * the busy intervals of the user's external calendars overlapping it.
///
/// `duration_min` is the requested slot length, if any (it widens the range
/// at the end). Always three statements, pipelined: one round trip on a
/// pooled connection that ran them before.
pub async fn load_calendar(
    db: &impl Executor,
    user_id: &str,
    role_code: &str,
    from: Instant,
    to: Instant,
    duration_min: Option<u32>,
) -> Result<ProviderCalendar, StoreError> {
    let params = CalendarParams::new(user_id, role_code, from, to, duration_min)?;
    CalendarStatements::prepare(db).await?.load(db, &params).await
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
/// `(user_id, role_code)`'s calendar is loaded with [`load_calendar`] (five
/// statements per provider), then `cal_core::common_slots` combines them. A
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
        .map_err(|e| StoreError::validation(format!("providers[{}].{}", e.index, e.source.field()), e.source))
}
