//! The `calctl slots --input` document (CALCTL.md): the JSON form of engine
//! input, read into domain types with errors that name the field's path.
//!
//! Field names are the DDL's column names. Unknown fields are ignored; `null`
//! counts as absent. Every row is validated, including inactive rules and rows
//! of other users, which the engine then filters out.

use serde_json::{Map, Value};

use crate::availability::{
    Exception, ExceptionInput, ExceptionKind, FieldError, RuleError, ValueProblem, WeeklyRule, WeeklyRuleInput,
};
use crate::feasibility::{
    Combine, EventBusy, EventStatus, FeasibilityError, HoldBusy, HoldStatus, ProviderCalendar, SlotQuery, SlotRange,
    StepMinutes,
};
use crate::policy::{BookingPolicy, BookingPolicyInput};
use crate::time::{Instant, Interval, TimeError};

/// What was wrong with one field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldProblem {
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("cannot be read: {0}")]
    Unreadable(String),
    #[error("is required")]
    Missing,
    #[error("must be {0}")]
    WrongType(&'static str),
    #[error("must be one of {allowed}, got {got:?}")]
    NotOneOf { allowed: &'static str, got: String },
    #[error(transparent)]
    Time(#[from] TimeError),
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error(transparent)]
    Query(#[from] FeasibilityError),
    #[error(transparent)]
    Span(#[from] crate::explain::SpanError),
    #[error("a second policy for user_id {user_id:?} and role_code {role_code:?}; the first is {first}")]
    RepeatedPolicy { user_id: String, role_code: String, first: String },
}

/// A refused input: the path of the field (e.g. `weekly_rules[0].timezone`)
/// and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct InputError {
    pub path: String,
    #[source]
    pub problem: FieldProblem,
}

impl InputError {
    pub fn new(path: impl Into<String>, problem: impl Into<FieldProblem>) -> Self {
        InputError { path: path.into(), problem: problem.into() }
    }
}

/// The fields of one JSON object of the document, with the path that leads
/// to it, so every refusal names the field (`weekly_rules[0].timezone`).
#[derive(Clone, Copy)]
pub struct JsonFields<'a> {
    path: &'a str,
    map: &'a Map<String, Value>,
}

impl<'a> JsonFields<'a> {
    /// `value` as an object at `path`.
    pub fn at(path: &'a str, value: &'a Value) -> Result<Self, InputError> {
        value.as_object().map(|map| JsonFields { path, map }).ok_or_else(|| InputError::new(path, FieldProblem::WrongType("an object")))
    }

    /// The path of field `key` ("key" at the top level).
    pub fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_owned() } else { format!("{}.{key}", self.path) }
    }

    fn err(&self, key: &str, problem: impl Into<FieldProblem>) -> InputError {
        InputError::new(self.path_of(key), problem)
    }

    /// A row's value refused by its domain type, at the field's path here.
    pub fn refused(&self, e: FieldError) -> InputError {
        let problem = match e.problem {
            ValueProblem::Time(t) => FieldProblem::Time(t),
            ValueProblem::Rule(r) => FieldProblem::Rule(r),
        };
        self.err(e.field, problem)
    }

    /// The field's value unless absent or null.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, InputError> {
        self.get(key).map(|v| v.as_str().ok_or_else(|| self.err(key, FieldProblem::WrongType("a string")))).transpose()
    }

    pub fn str(&self, key: &str) -> Result<&'a str, InputError> {
        self.opt_str(key)?.ok_or_else(|| self.err(key, FieldProblem::Missing))
    }

    pub fn opt_int(&self, key: &str) -> Result<Option<i64>, InputError> {
        self.get(key).map(|v| v.as_i64().ok_or_else(|| self.err(key, FieldProblem::WrongType("a whole number")))).transpose()
    }

    pub fn int(&self, key: &str) -> Result<i64, InputError> {
        self.opt_int(key)?.ok_or_else(|| self.err(key, FieldProblem::Missing))
    }

    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, InputError> {
        self.get(key).map(|v| v.as_bool().ok_or_else(|| self.err(key, FieldProblem::WrongType("true or false")))).transpose()
    }

    pub fn instant(&self, key: &str) -> Result<Instant, InputError> {
        Instant::parse(self.str(key)?).map_err(|e| self.err(key, e))
    }

    /// `[start, end)` from two instant fields; an empty one names `end`.
    pub fn interval(&self, start: &str, end: &str) -> Result<Interval, InputError> {
        Interval::new(self.instant(start)?, self.instant(end)?).map_err(|e| self.err(end, e))
    }

    /// Each element of the array `key` (absent = empty), read by `f` with
    /// its own path (`key[i]`).
    pub fn each<T>(&self, key: &str, mut f: impl FnMut(JsonFields<'_>) -> Result<T, InputError>) -> Result<Vec<T>, InputError> {
        let Some(value) = self.get(key) else { return Ok(Vec::new()) };
        let items = value.as_array().ok_or_else(|| self.err(key, FieldProblem::WrongType("an array")))?;
        let base = self.path_of(key);
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let path = format!("{base}[{i}]");
                f(JsonFields::at(&path, item)?)
            })
            .collect()
    }
}

/// Parses JSON text, reporting syntax errors with their line and column.
pub fn parse_json(text: &str) -> Result<Value, InputError> {
    serde_json::from_str(text).map_err(|e| InputError::new("input", FieldProblem::Json(e.to_string())))
}

/// A weekly rule row; the values are checked by `WeeklyRule::try_from`.
pub fn weekly_rule(o: JsonFields<'_>) -> Result<WeeklyRule, InputError> {
    let input = WeeklyRuleInput {
        min_duration_min: o.opt_int("min_duration_min")?,
        lead_time_hours: o.opt_int("lead_time_hours")?,
        booking_window_days: o.opt_int("booking_window_days")?,
        rule_id: o.opt_str("rule_id")?,
        user_id: o.str("user_id")?,
        role_code: o.str("role_code")?,
        weekday_mask: o.int("weekday_mask")?,
        start_local: o.str("start_local")?,
        end_local: o.str("end_local")?,
        timezone: o.str("timezone")?,
        active: o.opt_bool("active")?,
    };
    WeeklyRule::try_from(input).map_err(|e| o.refused(e))
}

/// An exception row; the values are checked by `Exception::try_from`.
pub fn exception(o: JsonFields<'_>) -> Result<Exception, InputError> {
    let kind = ExceptionKind::parse(o.str("kind")?).map_err(|e| o.err("kind", e))?;
    let input = ExceptionInput {
        kind,
        date_local: o.str("date_local")?,
        start_local: o.opt_str("start_local")?,
        end_local: o.opt_str("end_local")?,
        exc_id: o.opt_str("exc_id")?,
        user_id: o.str("user_id")?,
        timezone: o.str("timezone")?,
    };
    Exception::try_from(input).map_err(|e| o.refused(e))
}

/// A booked event row.
pub fn event(o: JsonFields<'_>) -> Result<EventBusy, InputError> {
    let status = o.str("status")?;
    Ok(EventBusy {
        event_id: o.opt_str("event_id")?.unwrap_or_default().to_owned(),
        user_id: o.str("user_id")?.to_owned(),
        role_code: o.opt_str("role_code")?.map(str::to_owned),
        interval: o.interval("start", "end")?,
        status: EventStatus::parse(status)
            .ok_or_else(|| o.err("status", FieldProblem::NotOneOf { allowed: "confirmed, cancelled", got: status.into() }))?,
    })
}

/// A hold row.
pub fn hold(o: JsonFields<'_>) -> Result<HoldBusy, InputError> {
    let status = o.str("status")?;
    Ok(HoldBusy {
        hold_id: o.opt_str("hold_id")?.unwrap_or_default().to_owned(),
        user_id: o.str("user_id")?.to_owned(),
        role_code: o.opt_str("role_code")?.map(str::to_owned),
        interval: o.interval("start", "end")?,
        expires_at: o.instant("expires_at")?,
        status: HoldStatus::parse(status).ok_or_else(|| {
            o.err("status", FieldProblem::NotOneOf { allowed: "active, released, converted, expired", got: status.into() })
        })?,
    })
}

/// A booking policy row (SEMANTICS.md §8); the values are checked by
/// `BookingPolicy::try_from`.
pub fn policy(o: JsonFields<'_>) -> Result<BookingPolicy, InputError> {
    let input = BookingPolicyInput {
        user_id: o.str("user_id")?,
        role_code: o.str("role_code")?,
        timezone: o.str("timezone")?,
        buffer_before_min: o.opt_int("buffer_before_min")?,
        buffer_after_min: o.opt_int("buffer_after_min")?,
        max_per_day: o.opt_int("max_per_day")?,
        max_per_week: o.opt_int("max_per_week")?,
    };
    BookingPolicy::try_from(input).map_err(|e| o.refused(e))
}

/// The `policies` array: at most one row per `(user_id, role_code)`; a
/// repeat is refused at its own path (`policies[2]`).
pub fn policies(o: JsonFields<'_>) -> Result<Vec<BookingPolicy>, InputError> {
    let policies = o.each("policies", policy)?;
    if let Some((first, repeat)) = BookingPolicy::first_repeat(&policies) {
        let key = o.path_of("policies");
        let p = &policies[repeat];
        let problem = FieldProblem::RepeatedPolicy {
            user_id: p.user_id.clone(),
            role_code: p.role_code.clone(),
            first: format!("{key}[{first}]"),
        };
        return Err(InputError::new(format!("{key}[{repeat}]"), problem));
    }
    Ok(policies)
}

/// Reads the calendar arrays of a document (all optional).
pub fn calendar(o: JsonFields<'_>) -> Result<ProviderCalendar, InputError> {
    Ok(ProviderCalendar {
        weekly_rules: o.each("weekly_rules", weekly_rule)?,
        exceptions: o.each("exceptions", exception)?,
        events: o.each("events", event)?,
        holds: o.each("holds", hold)?,
        external_busy: o.each("external_busy", |b| b.interval("start", "end"))?,
        policies: policies(o)?,
    })
}

/// The time range part of a query object.
pub fn slot_range(q: JsonFields<'_>) -> Result<SlotRange, InputError> {
    let step = match q.opt_int("step_min")? {
        Some(s) => StepMinutes::new(s).map_err(|e| q.err("step_min", e))?,
        None => StepMinutes::default(),
    };
    SlotRange::new(q.instant("from")?, q.instant("to")?, q.opt_int("duration_min")?, step).map_err(|e| q.err(e.field(), e))
}

/// Who a document asks about: one provider, or several combined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    One(SlotQuery),
    Many { mode: Combine, providers: Vec<(String, String)>, range: SlotRange },
    /// A party query (SEMANTICS.md §9): groups of `(user_id, role_code)`.
    Parties { groups: Vec<(Combine, Vec<(String, String)>)>, range: SlotRange },
}

/// A non-empty array of `{"user_id", "role_code"}` at `key`.
fn providers(o: JsonFields<'_>, key: &str) -> Result<Vec<(String, String)>, InputError> {
    let providers = o.each(key, |p| Ok((p.str("user_id")?.to_owned(), p.str("role_code")?.to_owned())))?;
    if providers.is_empty() {
        return Err(o.err(key, FieldProblem::WrongType("a non-empty array of {user_id, role_code}")));
    }
    Ok(providers)
}

/// One group of `query.parties`: exactly one of `all_of` or `any_of`.
fn party_group(g: JsonFields<'_>) -> Result<(Combine, Vec<(String, String)>), InputError> {
    match (g.get("all_of").is_some(), g.get("any_of").is_some()) {
        (true, false) => Ok((Combine::AllOf, providers(g, "all_of")?)),
        (false, true) => Ok((Combine::AnyOf, providers(g, "any_of")?)),
        _ => Err(InputError::new(g.path, FieldProblem::WrongType("an object with exactly one of \"all_of\" or \"any_of\""))),
    }
}

/// A whole `calctl slots --input` document. A query's
/// `reschedule_event_id` is already applied: that event is not in
/// `calendar` (not busy, buffered or counted, §8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotsDocument {
    pub now: Instant,
    pub subject: Subject,
    pub calendar: ProviderCalendar,
}

/// Reads a document: `now`, the `query` object (read by `query`), then the
/// calendar arrays, leaving out the event the query reschedules.
fn read_document<T>(text: &str, query: impl FnOnce(JsonFields<'_>) -> Result<T, InputError>) -> Result<(Instant, T, ProviderCalendar), InputError> {
    let value = parse_json(text)?;
    let doc = JsonFields::at("", &value)?;
    let now = doc.instant("now")?;
    let query_value = doc.get("query").ok_or_else(|| doc.err("query", FieldProblem::Missing))?;
    let q = JsonFields::at("query", query_value)?;
    let read = query(q)?;
    let reschedule = q.opt_str("reschedule_event_id")?;
    let calendar = calendar(doc)?;
    let calendar = match reschedule {
        Some(event_id) => calendar.without_event(event_id),
        None => calendar,
    };
    Ok((now, read, calendar))
}

/// Reads a `calctl slots --input` document (CALCTL.md). Besides the single
/// provider form, `query` may name `all_of` or `any_of`: an array of
/// `{"user_id", "role_code"}` whose rows are all in the document's arrays;
/// or `parties`, an array of `{"all_of": [...]}` / `{"any_of": [...]}`
/// groups. `parties` wins over `all_of`, which wins over `any_of`, which
/// wins over `user_id`.
pub fn slots_document(text: &str) -> Result<SlotsDocument, InputError> {
    let (now, subject, calendar) = read_document(text, |q| {
        let range = slot_range(q)?;
        if q.get("parties").is_some() {
            let groups = q.each("parties", party_group)?;
            if groups.is_empty() {
                return Err(q.err("parties", FieldProblem::WrongType("a non-empty array of groups")));
            }
            return Ok(Subject::Parties { groups, range });
        }
        let multi = [("all_of", Combine::AllOf), ("any_of", Combine::AnyOf)].into_iter().find(|(k, _)| q.get(k).is_some());
        Ok(match multi {
            Some((key, mode)) => Subject::Many { mode, providers: providers(q, key)?, range },
            None => Subject::One(SlotQuery {
                user_id: q.str("user_id")?.to_owned(),
                role_code: q.str("role_code")?.to_owned(),
                range,
            }),
        })
    })?;
    Ok(SlotsDocument { now, subject, calendar })
}

/// What `calctl explain` reads of a document: `now`, the query's
/// `user_id`, `role_code` (and `reschedule_event_id`, applied to the
/// calendar), and the calendar arrays; `from`, `to` and the rest of the
/// query are not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExplainDocument {
    pub now: Instant,
    pub user_id: String,
    pub role_code: String,
    pub calendar: ProviderCalendar,
}

/// Reads a document for `calctl explain` (CALCTL.md).
pub fn explain_document(text: &str) -> Result<ExplainDocument, InputError> {
    let (now, (user_id, role_code), calendar) =
        read_document(text, |q| Ok((q.str("user_id")?.to_owned(), q.str("role_code")?.to_owned())))?;
    Ok(ExplainDocument { now, user_id, role_code, calendar })
}

/// The engine's answer to a document: one provider's slots or common slots.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum DocumentAnswer {
    One(crate::feasibility::SlotAnswer),
    Many(crate::feasibility::CommonAnswer),
    Parties(crate::feasibility::PartyAnswer),
}

/// Runs the engine on a document; a refused duration names
/// `query.duration_min` (and, for several providers, which one).
pub fn answer(doc: &SlotsDocument) -> Result<DocumentAnswer, InputError> {
    match &doc.subject {
        Subject::One(query) => crate::feasibility::bookable_slots(query, &doc.calendar, doc.now)
            .map(DocumentAnswer::One)
            .map_err(|e| InputError::new(format!("query.{}", e.field()), e)),
        Subject::Many { mode, providers, range } => {
            let participants: Vec<crate::feasibility::Participant<'_>> = providers
                .iter()
                .map(|(user_id, role_code)| crate::feasibility::Participant { user_id, role_code, calendar: &doc.calendar })
                .collect();
            crate::feasibility::common_slots(*mode, &participants, range, doc.now)
                .map(DocumentAnswer::Many)
                .map_err(|e| InputError::new(format!("query.{}", e.path(mode.key())), e.source))
        }
        Subject::Parties { groups, range } => {
            let groups: Vec<crate::feasibility::PartyGroup<'_>> = groups
                .iter()
                .map(|(mode, members)| crate::feasibility::PartyGroup {
                    mode: *mode,
                    members: members
                        .iter()
                        .map(|(user_id, role_code)| crate::feasibility::Participant { user_id, role_code, calendar: &doc.calendar })
                        .collect(),
                })
                .collect();
            crate::feasibility::party_slots(&groups, range, doc.now)
                .map(DocumentAnswer::Parties)
                .map_err(|e| InputError::new(format!("query.{}", e.path("parties")), e.source))
        }
    }
}
