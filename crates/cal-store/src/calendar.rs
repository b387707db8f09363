//! One provider's calendar for a slot query, and the slot queries.
//!
//! [`load_calendar`] runs a fixed set of five statements, concurrently on one
//! connection (tokio-postgres pipelines them), whatever the number of days,
//! rules or rows: the cost of a query does not grow with the range. Which
//! rows are needed is decided here; what they mean is decided by `cal_core`
//! alone (no feasibility logic in SQL).

use cal_core::feasibility::{Combine, CommonAnswer, Participant, ProviderCalendar, SlotAnswer, SlotQuery, SlotRange};
use cal_core::time::Instant;
use cal_core::{FeasibilityError, bookable_slots};

use crate::db::Executor;
use crate::error::{StoreError, ValidationProblem};
use crate::rows::{self, EVENT_COLUMNS, EXCEPTION_COLUMNS, EXTERNAL_COLUMNS, HOLD_COLUMNS, RULE_COLUMNS};

/// The padded range `[lo, hi)` the loaders read, from parameters
/// `$1 user_id, $2 role_code, $3 from, $4 to, $5 duration_min (0: none)`.
///
/// Slots start before `to` but may run past it, up to the longest duration
/// the engine will consider: the larger of the requested duration, 60 min
/// (the default minimum) and the largest minimum of the role's active rules
/// (`cal_core::feasibility`'s horizon). Two more days on each side cover
/// exceptions, whose dates are local (UTC−12 … UTC+14) and whose windows may
/// run overnight into the next day.
macro_rules! bounds_cte {
    () => {
        "with bounds as (
            select $3::timestamptz - interval '2 days' as lo,
                   $4::timestamptz + interval '2 days' + make_interval(mins => greatest($5::int, 60,
                       coalesce((select max(r.min_duration_min) from cal.weekly_rule r
                                 where r.user_id = $1::text and r.role_code = $2::text and r.active), 0))) as hi
         ) "
    };
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
/// at the end). Always five statements.
pub async fn load_calendar(
    db: &impl Executor,
    user_id: &str,
    role_code: &str,
    from: Instant,
    to: Instant,
    duration_min: Option<u32>,
) -> Result<ProviderCalendar, StoreError> {
    if to < from {
        return Err(StoreError::validation("to", FeasibilityError::ToBeforeFrom { from, to }));
    }
    let (from_at, to_at) = (from.to_chrono(), to.to_chrono());
    let duration = duration_min.map_or(0, |d| i32::try_from(d).unwrap_or(i32::MAX));
    let padded: [&(dyn tokio_postgres::types::ToSql + Sync); 5] = [&user_id, &role_code, &from_at, &to_at, &duration];

    let rules_sql =
        format!("select {RULE_COLUMNS} from cal.weekly_rule where user_id = $1 and role_code = $2 order by rule_id");
    let exceptions_sql = format!(
        concat!(
            bounds_cte!(),
            "select {} from cal.exception, bounds
             where user_id = $1::text
               and date_local between (lo at time zone 'UTC')::date and (hi at time zone 'UTC')::date
             order by date_local, exc_id"
        ),
        EXCEPTION_COLUMNS
    );
    // The overlap tests use the same expression as the exclusion constraints,
    // so the planner can answer them from those GiST indexes.
    let events_sql = format!(
        concat!(
            bounds_cte!(),
            "select {} from cal.event, bounds
             where user_id = $1::text and status = 'confirmed'
               and tstzrange(start_at, end_at, '[)') && tstzrange(lo, hi, '[)')
             order by start_at, event_id"
        ),
        EVENT_COLUMNS
    );
    let holds_sql = format!(
        concat!(
            bounds_cte!(),
            "select {} from cal.hold, bounds
             where user_id = $1::text and status = 'active'
               and tstzrange(start_at, end_at, '[)') && tstzrange(lo, hi, '[)')
             order by start_at, hold_id"
        ),
        HOLD_COLUMNS
    );
    let external_sql = format!(
        concat!(
            bounds_cte!(),
            "select {} from cal.external_event, bounds
             where user_id = $1::text
               and tstzrange(start_at, end_at, '[)') && tstzrange(lo, hi, '[)')
             order by start_at, end_at"
        ),
        EXTERNAL_COLUMNS
    );

    let (rules, exceptions, events, holds, external) = tokio::try_join!(
        db.query(&rules_sql, &padded[..2]),
        db.query(&exceptions_sql, &padded),
        db.query(&events_sql, &padded),
        db.query(&holds_sql, &padded),
        db.query(&external_sql, &padded),
    )?;
    Ok(ProviderCalendar {
        weekly_rules: rules.iter().map(rows::rule).collect::<Result<_, _>>()?,
        exceptions: exceptions.iter().map(|r| rows::exception(r).map(|s| s.exception)).collect::<Result<_, _>>()?,
        events: events.iter().map(rows::event).collect::<Result<_, _>>()?,
        holds: holds.iter().map(rows::hold).collect::<Result<_, _>>()?,
        external_busy: external.iter().map(rows::external_busy).collect::<Result<_, _>>()?,
    })
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
