//! The arguments of every field, as typed serde structs (strings as
//! `cal_core::text` kinds, enums as cal-core's own), and their conversion
//! into domain values; every refusal names the argument's path.

use cal_core::holds::{HoldKind, HoldMode, HoldRequest, HoldRequestInput};
use cal_core::text::{Id, Label, Note, UrlText};
use cal_core::availability::{ExceptionInput, WeeklyRuleInput};
use cal_core::{Combine, Exception, ExceptionKind, Instant, StepMinutes, WeeklyRule};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{ApiError, Caller};

/// The arguments as `T`; a refusal names the argument's path
/// (`input.userId: must not contain control characters …`).
pub(crate) fn args<T: DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "arguments".to_owned() } else { path };
        ApiError::validation(&field, e.into_inner())
    })
}

pub(crate) fn instant(field: &str, text: &str) -> Result<Instant, ApiError> {
    Instant::parse(text).map_err(|e| ApiError::validation(field, e))
}

pub(crate) fn step(field: &str, v: Option<i64>) -> Result<StepMinutes, ApiError> {
    v.map_or(Ok(StepMinutes::default()), |s| StepMinutes::new(s).map_err(|e| ApiError::validation(field, e)))
}

/// The `userId` argument of a call on a provider's own calendar, once the
/// caller may manage that calendar (the provider, or an admin).
pub(crate) fn managed<'a>(caller: &Caller, user_id: &'a Option<Id>) -> Result<&'a str, ApiError> {
    let user_id = IdArgs::get("userId", user_id)?;
    require(caller.may_manage(user_id))?;
    Ok(user_id)
}

pub(crate) fn require(allowed: bool) -> Result<(), ApiError> {
    if allowed { Ok(()) } else { Err(ApiError::forbidden()) }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserArgs {
    pub(crate) user_id: Id,
    pub(crate) role_code: Option<Id>,
    pub(crate) from_date: Option<String>,
    pub(crate) to_date: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IdArgs {
    pub(crate) user_id: Option<Id>,
    pub(crate) hold_id: Option<Id>,
    pub(crate) event_id: Option<Id>,
    pub(crate) rule_id: Option<Id>,
    pub(crate) exc_id: Option<Id>,
    pub(crate) source_id: Option<Id>,
}

impl IdArgs {
    pub(crate) fn get<'a>(field: &'static str, v: &'a Option<Id>) -> Result<&'a str, ApiError> {
        v.as_deref().ok_or_else(|| ApiError::validation(field, "is required"))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SlotQueryArgs {
    pub(crate) user_id: Id,
    pub(crate) role_code: Id,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) duration_min: Option<i64>,
    pub(crate) step_min: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProviderRefArgs {
    pub(crate) user_id: Id,
    pub(crate) role_code: Id,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CommonQueryArgs {
    pub(crate) mode: Combine,
    pub(crate) providers: Vec<ProviderRefArgs>,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) duration_min: Option<i64>,
    pub(crate) step_min: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RescheduleCandidatesArgs {
    pub(crate) event_id: Id,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) step_min: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RuleInputArgs {
    pub(crate) rule_id: Option<Id>,
    pub(crate) role_code: Id,
    pub(crate) weekday_mask: i64,
    pub(crate) start_local: String,
    pub(crate) end_local: String,
    pub(crate) timezone: String,
    pub(crate) min_duration_min: Option<i64>,
    pub(crate) lead_time_hours: Option<i64>,
    pub(crate) booking_window_days: Option<i64>,
    pub(crate) active: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExceptionInputArgs {
    pub(crate) exc_id: Option<Id>,
    pub(crate) date_local: String,
    pub(crate) timezone: String,
    pub(crate) kind: ExceptionKind,
    pub(crate) start_local: Option<String>,
    pub(crate) end_local: Option<String>,
    pub(crate) note: Option<Note>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VacationInputArgs {
    pub(crate) from_date: String,
    pub(crate) to_date: String,
    pub(crate) timezone: String,
    pub(crate) note: Option<Note>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct HoldInputArgs {
    pub(crate) user_id: Id,
    pub(crate) role_code: Id,
    pub(crate) start: String,
    pub(crate) end: String,
    pub(crate) kind: Option<HoldKind>,
    pub(crate) mode: Option<HoldMode>,
    pub(crate) event_id: Option<Id>,
    pub(crate) ttl_min: Option<i64>,
    pub(crate) step_min: Option<i64>,
    pub(crate) idempotency_key: Id,
    pub(crate) customer_id: Option<Id>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WithInput<T> {
    pub(crate) user_id: Option<Id>,
    pub(crate) input: T,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CopyWeekdayArgs {
    pub(crate) user_id: Id,
    pub(crate) role_code: Id,
    pub(crate) from_weekday: i64,
    pub(crate) to_weekdays: Vec<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConnectArgs {
    pub(crate) user_id: Id,
    pub(crate) url: UrlText,
    pub(crate) label: Option<Label>,
}

/// `duration_min` → `durationMin` for field paths in messages.
pub(crate) fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// A value refused by its domain type, at its argument path (`input.weekdayMask`).
pub(crate) fn refused(e: cal_core::availability::FieldError) -> ApiError {
    ApiError::validation(&format!("input.{}", camel(e.field)), e.problem)
}

/// The rule input as cal-core's one rule check (`WeeklyRule::try_from`) reads it.
pub(crate) fn weekly_rule(user_id: &str, r: RuleInputArgs) -> Result<WeeklyRule, ApiError> {
    WeeklyRule::try_from(WeeklyRuleInput {
        rule_id: r.rule_id.as_deref(),
        user_id,
        role_code: &r.role_code,
        weekday_mask: r.weekday_mask,
        start_local: &r.start_local,
        end_local: &r.end_local,
        timezone: &r.timezone,
        min_duration_min: r.min_duration_min,
        lead_time_hours: r.lead_time_hours,
        booking_window_days: r.booking_window_days,
        active: r.active,
    })
    .map_err(refused)
}

/// The exception input as cal-core's one exception check (`Exception::try_from`) reads it.
pub(crate) fn exception(user_id: &str, e: ExceptionInputArgs) -> Result<Exception, ApiError> {
    Exception::try_from(ExceptionInput {
        exc_id: e.exc_id.as_deref(),
        user_id,
        date_local: &e.date_local,
        timezone: &e.timezone,
        kind: e.kind,
        start_local: e.start_local.as_deref(),
        end_local: e.end_local.as_deref(),
    })
    .map_err(refused)
}

/// A hold request as the caller may make it: customers hold checkout or
/// request time for themselves (or move their own event); admin holds and
/// holds for others are for admins and services.
pub(crate) fn hold_request(caller: &Caller, h: HoldInputArgs, request_booking: bool) -> Result<HoldRequest, ApiError> {
    let kind = h.kind.unwrap_or(HoldKind::Checkout);
    let mode = match (h.mode, request_booking) {
        (Some(HoldMode::Instant), true) => return Err(ApiError::validation("input.mode", "requestBooking makes REQUEST holds")),
        (Some(mode), _) => mode,
        (None, false) => HoldMode::Instant,
        (None, true) => HoldMode::Request,
    };
    let customer_id = match (caller.is_admin(), h.customer_id.map(Id::into_string)) {
        (true, c) => c,
        (false, None) => caller.user_id().map(str::to_owned),
        (false, Some(c)) if Some(c.as_str()) == caller.user_id() => Some(c),
        (false, Some(_)) => return Err(ApiError::forbidden()),
    };
    if kind == HoldKind::Admin && !caller.is_admin() {
        return Err(ApiError::forbidden());
    }
    let input = HoldRequestInput {
        user_id: h.user_id.into(),
        role_code: h.role_code.into(),
        customer_id,
        start: instant("input.start", &h.start)?,
        end: instant("input.end", &h.end)?,
        kind: Some(kind),
        mode: Some(mode),
        event_id: h.event_id.map(Id::into_string),
        ttl_min: h.ttl_min,
        step_min: h.step_min,
        idempotency_key: h.idempotency_key.into(),
    };
    HoldRequest::new(input).map_err(|e| match e {
        cal_core::BookingError::Validation { field, reason } => ApiError::validation(&format!("input.{}", camel(field)), reason),
        other => other.into(),
    })
}
