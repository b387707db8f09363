//! Weekly rules, exceptions and vacations (SEMANTICS.md §2).
//!
//! Inputs are `cal_core` types, valid by construction; only what those
//! cannot know (empty ids, date ranges) is checked here. Every change runs in
//! one (sub-)transaction that bumps the provider's version first and writes
//! its outbox row last, so a change and its event commit together or not at
//! all.

use cal_core::availability::{Exception, WeekdayMask, WeeklyRule};
use cal_core::time::Zone;
use chrono::NaiveDate;
use serde_json::{Value, json};

use crate::db::{Begin, Executor};
use crate::error::{StoreError, ValidationProblem};
use crate::outbox::{self, EXCEPTION_UPSERTED, RULE_UPDATED};
use crate::rows::{self, EXCEPTION_COLUMNS, RULE_COLUMNS, StoredException};

/// Longest vacation accepted, in days (both ends included).
pub const MAX_VACATION_DAYS: i64 = 366;
/// Weekly rules one provider may have (all roles): a week of split shifts
/// per role for several roles fits many times over, and every slot query
/// and rules list stays bounded.
pub const MAX_RULES_PER_USER: i64 = 100;
/// Most exceptions one list answers; more is a `VALIDATION` error asking
/// for a narrower date range (a list is never cut silently).
pub const MAX_EXCEPTIONS_PER_LIST: i64 = 1000;

/// An id (user, role, ...) as `cal_core::text::ID` allows it: the store's
/// own check, so a caller that skipped the API's (calctl) cannot store a
/// NUL or a 10 kB id either.
fn non_empty(field: &'static str, value: &str) -> Result<(), StoreError> {
    cal_core::text::ID.check(value).map_err(|e| StoreError::validation(field, e))
}

/// A provider's note, as `cal_core::text::NOTE` allows it.
fn note_text(note: Option<&str>) -> Result<(), StoreError> {
    note.map_or(Ok(()), |n| cal_core::text::NOTE.check(n).map_err(|e| StoreError::validation("note", e)))
}

/// The wire shape of a rule in event payloads: the DDL's column names, as in
/// `calctl slots --input`.
fn rule_json(r: &WeeklyRule) -> Value {
    json!({
        "rule_id": r.rule_id,
        "user_id": r.user_id,
        "role_code": r.role_code,
        "weekday_mask": r.weekday_mask.bits(),
        "start_local": r.start_local.to_string(),
        "end_local": r.end_local.to_string(),
        "timezone": r.timezone.name(),
        "min_duration_min": r.params.min_duration_min,
        "lead_time_hours": r.params.lead_time_hours,
        "booking_window_days": r.params.booking_window_days,
        "active": r.active,
    })
}

/// The wire shape of an exception in event payloads. The note is left out:
/// it is free text (consumers read it by `exc_id`), and a payload carries
/// ids and bounded fields only ([`outbox::MAX_ROW_BYTES`]).
fn exception_json(e: &StoredException) -> Value {
    let x = &e.exception;
    json!({
        "exc_id": x.exc_id,
        "user_id": x.user_id,
        "date_local": x.date_local.to_string(),
        "timezone": x.timezone.name(),
        "kind": x.kind.as_str(),
        "start_local": x.times.map(|t| t.0.to_string()),
        "end_local": x.times.map(|t| t.1.to_string()),
    })
}

/// Inserts `rule`, or updates the rule with its id. An empty `rule_id` gets a
/// new `wr_…` id. A rule id of another user is [`StoreError::NotFound`]: a
/// rule never changes hands. Returns the rule as stored.
pub async fn put_rule(db: &mut impl Begin, rule: &WeeklyRule) -> Result<WeeklyRule, StoreError> {
    non_empty("user_id", &rule.user_id)?;
    non_empty("role_code", &rule.role_code)?;
    let tx = db.begin().await?;
    // The version row is locked from here on: the count below cannot race.
    let version = outbox::bump_version(&tx, &rule.user_id).await?;
    let others: i64 = tx
        .query("select count(*) from cal.weekly_rule where user_id = $1 and rule_id <> $2", &[&rule.user_id, &rule.rule_id])
        .await?[0]
        .get(0);
    if others >= MAX_RULES_PER_USER {
        return Err(StoreError::Limit { what: "weekly rules", max: MAX_RULES_PER_USER });
    }
    let sql = format!(
        "insert into cal.weekly_rule as r (rule_id, user_id, role_code, weekday_mask, start_local, end_local, timezone,
                                           min_duration_min, lead_time_hours, booking_window_days, active)
         values (coalesce(nullif($1, ''), 'wr_' || replace(gen_random_uuid()::text, '-', '')),
                 $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         on conflict (rule_id) do update set
             role_code = excluded.role_code, weekday_mask = excluded.weekday_mask,
             start_local = excluded.start_local, end_local = excluded.end_local, timezone = excluded.timezone,
             min_duration_min = excluded.min_duration_min, lead_time_hours = excluded.lead_time_hours,
             booking_window_days = excluded.booking_window_days, active = excluded.active, updated_at = now()
           where r.user_id = excluded.user_id
         returning {RULE_COLUMNS}"
    );
    let p = &rule.params;
    let rows = tx
        .query(
            &sql,
            &[
                &rule.rule_id,
                &rule.user_id,
                &rule.role_code,
                &i32::from(rule.weekday_mask.bits()),
                &rule.start_local.naive(),
                &rule.end_local.naive(),
                &rule.timezone.name(),
                &(p.min_duration_min as i32),
                &(p.lead_time_hours as i32),
                &(p.booking_window_days as i32),
                &rule.active,
            ],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Err(StoreError::NotFound { entity: "weekly_rule", id: rule.rule_id.clone() });
    };
    let stored = rows::rule(row)?;
    let payload = json!({
        "operation": "put",
        "user_id": stored.user_id,
        "role_code": stored.role_code,
        "rule_id": stored.rule_id,
        "version": version,
        "rule": rule_json(&stored),
    });
    outbox::enqueue(&tx, RULE_UPDATED, &stored.user_id, &payload).await?;
    tx.commit().await?;
    Ok(stored)
}

/// The rules of `user_id` (of one role, or all), active or not, ordered by
/// role and id.
pub async fn list_rules(
    db: &impl Executor,
    user_id: &str,
    role_code: Option<&str>,
) -> Result<Vec<WeeklyRule>, StoreError> {
    let sql = format!(
        "select {RULE_COLUMNS} from cal.weekly_rule
         where user_id = $1 and ($2::text is null or role_code = $2)
         order by role_code, rule_id"
    );
    db.query(&sql, &[&user_id, &role_code]).await?.iter().map(rows::rule).collect()
}

/// Copies a day's hours to other weekdays: every active rule of
/// `(user_id, role_code)` whose mask includes a day of `from` also covers
/// the days of `to`, in one transaction (one `cal.rule.updated` per rule
/// changed, as [`put_rule`] writes it). Returns the rules changed.
pub async fn copy_weekday(
    db: &mut impl Begin,
    user_id: &str,
    role_code: &str,
    from: WeekdayMask,
    to: WeekdayMask,
) -> Result<Vec<WeeklyRule>, StoreError> {
    non_empty("user_id", user_id)?;
    non_empty("role_code", role_code)?;
    let mut tx = db.begin().await?;
    let rules = list_rules(&tx, user_id, Some(role_code)).await?;
    let mut changed = Vec::new();
    for mut rule in rules.into_iter().filter(|r| r.active && r.weekday_mask.bits() & from.bits() != 0) {
        // Both masks are valid, so their union is too.
        rule.weekday_mask = WeekdayMask::new(i64::from(rule.weekday_mask.bits() | to.bits())).map_err(|e| StoreError::validation("to_weekdays", e))?;
        changed.push(put_rule(&mut tx, &rule).await?);
    }
    tx.commit().await?;
    Ok(changed)
}

/// Deletes a rule of `user_id`; [`StoreError::NotFound`] if there is none.
pub async fn delete_rule(db: &mut impl Begin, user_id: &str, rule_id: &str) -> Result<(), StoreError> {
    let tx = db.begin().await?;
    let version = outbox::bump_version(&tx, user_id).await?;
    let rows = tx
        .query(
            "delete from cal.weekly_rule where rule_id = $1 and user_id = $2 returning role_code",
            &[&rule_id, &user_id],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Err(StoreError::NotFound { entity: "weekly_rule", id: rule_id.to_owned() });
    };
    let role_code: String = row.get(0);
    let payload = json!({
        "operation": "deleted",
        "user_id": user_id,
        "role_code": role_code,
        "rule_id": rule_id,
        "version": version,
        "rule": null,
    });
    outbox::enqueue(&tx, RULE_UPDATED, user_id, &payload).await?;
    tx.commit().await?;
    Ok(())
}

/// Inserts `exception`, or updates the exception with its id (empty
/// `exc_id`: a new `ex_…` id). Another user's id is [`StoreError::NotFound`];
/// a second whole-day `unavailable` row for the same date and zone violates
/// `exception_whole_day_off_uq` ([`StoreError::Constraint`]).
pub async fn upsert_exception(
    db: &mut impl Begin,
    exception: &Exception,
    note: Option<&str>,
) -> Result<StoredException, StoreError> {
    non_empty("user_id", &exception.user_id)?;
    note_text(note)?;
    let tx = db.begin().await?;
    let version = outbox::bump_version(&tx, &exception.user_id).await?;
    let sql = format!(
        "insert into cal.exception as x (exc_id, user_id, date_local, timezone, kind, start_local, end_local, note)
         values (coalesce(nullif($1, ''), 'ex_' || replace(gen_random_uuid()::text, '-', '')), $2, $3, $4, $5, $6, $7, $8)
         on conflict (exc_id) do update set
             date_local = excluded.date_local, timezone = excluded.timezone, kind = excluded.kind,
             start_local = excluded.start_local, end_local = excluded.end_local, note = excluded.note
           where x.user_id = excluded.user_id
         returning {EXCEPTION_COLUMNS}"
    );
    let rows = tx
        .query(
            &sql,
            &[
                &exception.exc_id,
                &exception.user_id,
                &exception.date_local,
                &exception.timezone.name(),
                &exception.kind.as_str(),
                &exception.times.map(|t| t.0.naive()),
                &exception.times.map(|t| t.1.naive()),
                &note,
            ],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Err(StoreError::NotFound { entity: "exception", id: exception.exc_id.clone() });
    };
    let stored = rows::exception(row)?;
    let payload = json!({
        "operation": "upserted",
        "user_id": exception.user_id,
        "version": version,
        "exceptions": [exception_json(&stored)],
    });
    outbox::enqueue(&tx, EXCEPTION_UPSERTED, &exception.user_id, &payload).await?;
    tx.commit().await?;
    Ok(stored)
}

/// The exceptions of `user_id` (any role) with `date_local` in
/// `[from, to]` (either end open when `None`), ordered by date and id.
pub async fn list_exceptions(
    db: &impl Executor,
    user_id: &str,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<Vec<StoredException>, StoreError> {
    let sql = format!(
        "select {EXCEPTION_COLUMNS} from cal.exception
         where user_id = $1 and ($2::date is null or date_local >= $2) and ($3::date is null or date_local <= $3)
         order by date_local, exc_id
         limit $4"
    );
    let rows = db.query(&sql, &[&user_id, &from, &to, &(MAX_EXCEPTIONS_PER_LIST + 1)]).await?;
    if rows.len() as i64 > MAX_EXCEPTIONS_PER_LIST {
        return Err(StoreError::validation("to_date", ValidationProblem::TooManyRows { max: MAX_EXCEPTIONS_PER_LIST }));
    }
    rows.iter().map(rows::exception).collect()
}

/// Deletes an exception of `user_id`; [`StoreError::NotFound`] if there is
/// none. Writes `cal.exception.upserted` with `"operation": "deleted"`.
pub async fn delete_exception(db: &mut impl Begin, user_id: &str, exc_id: &str) -> Result<(), StoreError> {
    let tx = db.begin().await?;
    let version = outbox::bump_version(&tx, user_id).await?;
    let rows = tx
        .query(
            "delete from cal.exception where exc_id = $1 and user_id = $2 returning date_local::text",
            &[&exc_id, &user_id],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Err(StoreError::NotFound { entity: "exception", id: exc_id.to_owned() });
    };
    let date_local: String = row.get(0);
    let payload = json!({
        "operation": "deleted",
        "user_id": user_id,
        "version": version,
        "exceptions": [{ "exc_id": exc_id, "date_local": date_local }],
    });
    outbox::enqueue(&tx, EXCEPTION_UPSERTED, user_id, &payload).await?;
    tx.commit().await?;
    Ok(())
}

/// The outcome of [`add_vacation`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vacation {
    /// One whole-day `unavailable` exception per date of the range, in date
    /// order: the new ones and those already present.
    pub days: Vec<StoredException>,
    /// Ids of the rows this call created (the others were already there).
    pub created: Vec<String>,
}

/// Blocks the local dates `from_date..=to_date` in `zone`: one whole-day
/// `unavailable` exception per date, all in one (sub-)transaction, so either
/// every date is stored or none is (SEMANTICS.md §2).
///
/// `to_date < from_date` and ranges over [`MAX_VACATION_DAYS`] are refused
/// before anything is written. A date that already has an identical
/// whole-day row (same zone) keeps it and gets no second one; if every date
/// does, nothing changes and no event is written.
pub async fn add_vacation(
    db: &mut impl Begin,
    user_id: &str,
    from_date: NaiveDate,
    to_date: NaiveDate,
    zone: Zone,
    note: Option<&str>,
) -> Result<Vacation, StoreError> {
    non_empty("user_id", user_id)?;
    note_text(note)?;
    if to_date < from_date {
        return Err(StoreError::validation("to_date", ValidationProblem::BeforeStart { from: from_date }));
    }
    let days = (to_date - from_date).num_days() + 1;
    if days > MAX_VACATION_DAYS {
        return Err(StoreError::validation("to_date", ValidationProblem::TooLong { days, max: MAX_VACATION_DAYS }));
    }

    let tx = db.begin().await?;
    let version = outbox::bump_version(&tx, user_id).await?;
    // One statement for all dates; the partial unique index is the arbiter
    // that skips dates already blocked in this zone.
    let created: Vec<String> = tx
        .query(
            "insert into cal.exception (exc_id, user_id, date_local, timezone, kind, note)
             select 'ex_' || replace(gen_random_uuid()::text, '-', ''), $1, d::date, $4, 'unavailable', $5
             from generate_series($2::date, $3::date, interval '1 day') as d
             on conflict (user_id, date_local, timezone) where kind = 'unavailable' and start_local is null
             do nothing
             returning exc_id",
            &[&user_id, &from_date, &to_date, &zone.name(), &note],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if created.is_empty() {
        // Nothing changed: undo the version bump rather than announce a
        // change that did not happen.
        let days = whole_days_off(&tx, user_id, from_date, to_date, zone).await?;
        tx.rollback().await?;
        return Ok(Vacation { days, created });
    }
    let days = whole_days_off(&tx, user_id, from_date, to_date, zone).await?;
    // Every new day is a whole-day `unavailable` exception in `zone`, which
    // `vacation` says once: per day only its id and date, so a year of them
    // stays well inside the payload bound.
    let new: Vec<Value> = days
        .iter()
        .filter(|d| created.contains(&d.exception.exc_id))
        .map(|d| json!({ "exc_id": d.exception.exc_id, "date_local": d.exception.date_local.to_string() }))
        .collect();
    let payload = json!({
        "operation": "upserted",
        "user_id": user_id,
        "version": version,
        "vacation": { "from_date": from_date.to_string(), "to_date": to_date.to_string(), "timezone": zone.name() },
        "exceptions": new,
    });
    outbox::enqueue(&tx, EXCEPTION_UPSERTED, user_id, &payload).await?;
    tx.commit().await?;
    Ok(Vacation { days, created })
}

async fn whole_days_off(
    db: &impl Executor,
    user_id: &str,
    from: NaiveDate,
    to: NaiveDate,
    zone: Zone,
) -> Result<Vec<StoredException>, StoreError> {
    let sql = format!(
        "select {EXCEPTION_COLUMNS} from cal.exception
         where user_id = $1 and date_local between $2 and $3 and timezone = $4
           and kind = 'unavailable' and start_local is null
         order by date_local"
    );
    db.query(&sql, &[&user_id, &from, &to, &zone.name()]).await?.iter().map(rows::exception).collect()
}
