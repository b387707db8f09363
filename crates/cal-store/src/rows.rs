//! Rows → `cal_core` types.
//!
//! Every stored value goes through the same constructors as API input
//! (`Zone::parse`, `LocalTime::parse`, `WeekdayMask::new`, ...): a row the
//! engine could not accept from a client is not accepted from the database
//! either, and the error names the table, id and column.

use cal_core::availability::{
    BookingParams, Exception, ExceptionKind, FieldError, RuleError, ValueProblem, WeekdayMask, WeeklyRule,
};
use cal_core::feasibility::{EventBusy, EventStatus, HoldBusy, HoldStatus};
use cal_core::policy::{BookingPolicy, BookingPolicyInput};
use cal_core::time::{Instant, Interval, LocalTime, Zone};
use chrono::{DateTime, NaiveDate, Utc};
use tokio_postgres::Row;
use tokio_postgres::types::FromSql;

use crate::error::{RowProblem, StoreError};

/// Columns read by [`rule`]. Times are read as text so that `LocalTime::parse`
/// checks them exactly as it checks input.
pub const RULE_COLUMNS: &str = "rule_id, user_id, role_code, weekday_mask, \
     start_local::text as start_local, end_local::text as end_local, timezone, \
     min_duration_min, lead_time_hours, booking_window_days, active";

/// Columns read by [`exception`].
pub const EXCEPTION_COLUMNS: &str = "exc_id, user_id, date_local, timezone, kind, \
     start_local::text as start_local, end_local::text as end_local, note";

/// Columns read by [`event`].
pub const EVENT_COLUMNS: &str = "event_id, user_id, role_code, start_at, end_at, status";

/// Columns read by [`hold`].
pub const HOLD_COLUMNS: &str = "hold_id, user_id, role_code, start_at, end_at, expires_at, status";

/// Columns read by [`policy`].
pub const POLICY_COLUMNS: &str =
    "user_id, role_code, timezone, buffer_before_min, buffer_after_min, max_per_day, max_per_week";

/// Columns read by [`external_busy`].
pub const EXTERNAL_COLUMNS: &str = "source_id || '/' || uid || '/' || recurrence_id as id, start_at, end_at";
/// Columns of a `cal.synced_event` row as a read's busy row.
pub const SYNCED_COLUMNS: &str = "connection_id || '/' || calendar_id || '/' || item_id as id, start_at, end_at";

/// An exception with the note it was stored with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredException {
    /// The exception.
    pub exception: Exception,
    /// Free text (e.g. "vacation").
    pub note: Option<String>,
}

/// Reads columns of one row of `table`, naming the row in errors.
struct Reader<'a> {
    row: &'a Row,
    table: &'static str,
    id: String,
}

impl<'a> Reader<'a> {
    fn new(row: &'a Row, table: &'static str, id_column: &'static str) -> Result<Self, StoreError> {
        let id = row.try_get::<_, String>(id_column).map_err(|e| StoreError::InvalidRow {
            table,
            id: String::new(),
            column: id_column,
            problem: RowProblem::Decode(e),
        })?;
        Ok(Reader { row, table, id })
    }

    fn fail(&self, column: &'static str, problem: impl Into<RowProblem>) -> StoreError {
        StoreError::InvalidRow { table: self.table, id: self.id.clone(), column, problem: problem.into() }
    }

    fn get<T: FromSql<'a>>(&self, column: &'static str) -> Result<T, StoreError> {
        self.row.try_get(column).map_err(|e| self.fail(column, RowProblem::Decode(e)))
    }

    fn zone(&self, column: &'static str) -> Result<Zone, StoreError> {
        Zone::parse(&self.get::<String>(column)?).map_err(|e| self.fail(column, e))
    }

    fn opt_time(&self, column: &'static str) -> Result<Option<LocalTime>, StoreError> {
        self.get::<Option<String>>(column)?.map(|t| LocalTime::parse(&t).map_err(|e| self.fail(column, e))).transpose()
    }

    fn time(&self, column: &'static str) -> Result<LocalTime, StoreError> {
        LocalTime::parse(&self.get::<String>(column)?).map_err(|e| self.fail(column, e))
    }

    fn instant(&self, column: &'static str) -> Result<Instant, StoreError> {
        Ok(Instant::from_chrono(self.get::<DateTime<Utc>>(column)?))
    }

    /// `[start_at, end_at)`; whole seconds only, so sub-second rows can
    /// become empty: an error naming `end_at`.
    fn interval(&self) -> Result<Interval, StoreError> {
        Interval::new(self.instant("start_at")?, self.instant("end_at")?).map_err(|e| self.fail("end_at", e))
    }
}

/// A `cal.weekly_rule` row read with [`RULE_COLUMNS`].
pub fn rule(row: &Row) -> Result<WeeklyRule, StoreError> {
    let r = Reader::new(row, "cal.weekly_rule", "rule_id")?;
    let params = BookingParams::new(
        Some(r.get::<i32>("min_duration_min")?.into()),
        Some(r.get::<i32>("lead_time_hours")?.into()),
        Some(r.get::<i32>("booking_window_days")?.into()),
    )
    .map_err(|(column, e)| r.fail(column, e))?;
    Ok(WeeklyRule {
        rule_id: r.id.clone(),
        user_id: r.get("user_id")?,
        role_code: r.get("role_code")?,
        weekday_mask: WeekdayMask::new(r.get::<i32>("weekday_mask")?.into()).map_err(|e| r.fail("weekday_mask", e))?,
        start_local: r.time("start_local")?,
        end_local: r.time("end_local")?,
        timezone: r.zone("timezone")?,
        params,
        active: r.get("active")?,
    })
}

/// A `cal.exception` row read with [`EXCEPTION_COLUMNS`].
pub fn exception(row: &Row) -> Result<StoredException, StoreError> {
    let r = Reader::new(row, "cal.exception", "exc_id")?;
    let kind = ExceptionKind::parse(&r.get::<String>("kind")?).map_err(|e| r.fail("kind", e))?;
    let times = match (r.opt_time("start_local")?, r.opt_time("end_local")?) {
        (Some(s), Some(e)) => Some((s, e)),
        (None, None) => None,
        (Some(_), None) => return Err(r.fail("end_local", RuleError::HalfTimes)),
        (None, Some(_)) => return Err(r.fail("start_local", RuleError::HalfTimes)),
    };
    Ok(StoredException {
        exception: Exception {
            exc_id: r.id.clone(),
            user_id: r.get("user_id")?,
            date_local: r.get::<NaiveDate>("date_local")?,
            timezone: r.zone("timezone")?,
            kind,
            times,
        },
        note: r.get("note")?,
    })
}

/// A `cal.event` row read with [`EVENT_COLUMNS`].
pub fn event(row: &Row) -> Result<EventBusy, StoreError> {
    let r = Reader::new(row, "cal.event", "event_id")?;
    let status: String = r.get("status")?;
    Ok(EventBusy {
        event_id: r.id.clone(),
        user_id: r.get("user_id")?,
        // Its policy's buffers and limits apply to it (§8).
        role_code: Some(r.get("role_code")?),
        interval: r.interval()?,
        status: EventStatus::parse(&status).ok_or_else(|| {
            r.fail("status", RowProblem::NotOneOf { allowed: "confirmed, cancelled", got: status.clone() })
        })?,
    })
}

/// A `cal.hold` row read with [`HOLD_COLUMNS`].
pub fn hold(row: &Row) -> Result<HoldBusy, StoreError> {
    let r = Reader::new(row, "cal.hold", "hold_id")?;
    let status: String = r.get("status")?;
    Ok(HoldBusy {
        hold_id: r.id.clone(),
        user_id: r.get("user_id")?,
        role_code: Some(r.get("role_code")?),
        interval: r.interval()?,
        expires_at: r.instant("expires_at")?,
        status: HoldStatus::parse(&status).ok_or_else(|| {
            r.fail(
                "status",
                RowProblem::NotOneOf { allowed: "active, released, converted, expired", got: status.clone() },
            )
        })?,
    })
}

/// A `cal.booking_policy` row read with [`POLICY_COLUMNS`], checked by the
/// same `BookingPolicy::try_from` as an input; errors name the row by its
/// `role_code` (with the user, the key).
pub fn policy(row: &Row) -> Result<BookingPolicy, StoreError> {
    let r = Reader::new(row, "cal.booking_policy", "role_code")?;
    let user_id: String = r.get("user_id")?;
    let timezone: String = r.get("timezone")?;
    let int = |column: &'static str| r.get::<Option<i32>>(column).map(|v| v.map(i64::from));
    let input = BookingPolicyInput {
        user_id: &user_id,
        role_code: &r.id,
        timezone: &timezone,
        buffer_before_min: int("buffer_before_min")?,
        buffer_after_min: int("buffer_after_min")?,
        max_per_day: int("max_per_day")?,
        max_per_week: int("max_per_week")?,
    };
    BookingPolicy::try_from(input).map_err(|e| policy_column(&r, e))
}

/// The refusal of a stored policy: the check's field is the column's name.
fn policy_column(r: &Reader<'_>, e: FieldError) -> StoreError {
    match e.problem {
        ValueProblem::Time(p) => r.fail(e.field, p),
        ValueProblem::Rule(p) => r.fail(e.field, p),
    }
}

/// A `cal.external_event` row read with [`EXTERNAL_COLUMNS`]; its id is
/// `source_id/uid/recurrence_id`.
pub fn external_busy(row: &Row) -> Result<Interval, StoreError> {
    Reader::new(row, "cal.external_event", "id")?.interval()
}

/// A `cal.synced_event` row read with [`SYNCED_COLUMNS`]; its id is
/// `connection_id/calendar_id/item_id`.
pub fn synced_busy(row: &Row) -> Result<Interval, StoreError> {
    Reader::new(row, "cal.synced_event", "id")?.interval()
}
