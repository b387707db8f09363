//! The AppSync direct Lambda resolver for every field of
//! `infra/schema.graphql`.
//!
//! An event flows one way: decode the direct-resolver event → who is calling
//! ([`identity::Caller`]) → which field ([`Field`], an exhaustive router) →
//! its typed arguments → authorization → one call into `cal-store` /
//! `cal-core` → the GraphQL shape, or an [`ApiError`] with a stable type.

#![forbid(unsafe_code)]

pub mod config;
pub mod error;
pub mod identity;
pub mod out;
mod args;
pub mod policies;
pub mod sync;

use std::sync::Arc;

use cal_aws::CacheKey;
use cal_core::{ErrorType, Instant, SlotQuery, SlotRange, WeekdayMask, Zone};
use deadpool_postgres::Pool;
use serde::Deserialize;
use serde_json::{Value, json};

use args::*;
pub use config::Config;
pub use error::ApiError;
pub use identity::{Caller, Refusal, ServiceRoles};

/// Every field of the schema, each with exactly one handler in [`dispatch`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    WeeklyRules,
    Exceptions,
    BookableSlots,
    CommonSlots,
    RescheduleCandidates,
    Hold,
    Event,
    EventIcs,
    ExternalCalendars,
    PutWeeklyRule,
    DeleteWeeklyRule,
    CopyWeekday,
    UpsertException,
    DeleteException,
    AddVacation,
    CreateHold,
    ReleaseHold,
    ConfirmHold,
    RequestBooking,
    AcceptRequest,
    DeclineRequest,
    RescheduleEvent,
    CancelEvent,
    ConnectIcs,
    DisconnectIcs,
    ResyncIcs,
    CreateFeed,
    RotateFeed,
    RevokeFeed,
    CalendarConnections,
    StartCalendarConnect,
    SetSyncedCalendar,
    ResyncCalendarConnection,
    DisconnectCalendar,
    BookingPolicies,
    PutBookingPolicy,
    DeleteBookingPolicy,
}

impl Field {
    /// Every field, in schema order.
    pub const ALL: [Field; 37] = [
        Field::WeeklyRules,
        Field::Exceptions,
        Field::BookableSlots,
        Field::CommonSlots,
        Field::RescheduleCandidates,
        Field::Hold,
        Field::Event,
        Field::EventIcs,
        Field::ExternalCalendars,
        Field::PutWeeklyRule,
        Field::DeleteWeeklyRule,
        Field::CopyWeekday,
        Field::UpsertException,
        Field::DeleteException,
        Field::AddVacation,
        Field::CreateHold,
        Field::ReleaseHold,
        Field::ConfirmHold,
        Field::RequestBooking,
        Field::AcceptRequest,
        Field::DeclineRequest,
        Field::RescheduleEvent,
        Field::CancelEvent,
        Field::ConnectIcs,
        Field::DisconnectIcs,
        Field::ResyncIcs,
        Field::CreateFeed,
        Field::RotateFeed,
        Field::RevokeFeed,
        Field::CalendarConnections,
        Field::StartCalendarConnect,
        Field::SetSyncedCalendar,
        Field::ResyncCalendarConnection,
        Field::DisconnectCalendar,
        Field::BookingPolicies,
        Field::PutBookingPolicy,
        Field::DeleteBookingPolicy,
    ];

    /// `(parentTypeName, fieldName)` as in the schema.
    pub const fn name(self) -> (&'static str, &'static str) {
        match self {
            Field::WeeklyRules => ("Query", "weeklyRules"),
            Field::Exceptions => ("Query", "exceptions"),
            Field::BookableSlots => ("Query", "bookableSlots"),
            Field::CommonSlots => ("Query", "commonSlots"),
            Field::RescheduleCandidates => ("Query", "rescheduleCandidates"),
            Field::Hold => ("Query", "hold"),
            Field::Event => ("Query", "event"),
            Field::EventIcs => ("Query", "eventIcs"),
            Field::ExternalCalendars => ("Query", "externalCalendars"),
            Field::PutWeeklyRule => ("Mutation", "putWeeklyRule"),
            Field::DeleteWeeklyRule => ("Mutation", "deleteWeeklyRule"),
            Field::CopyWeekday => ("Mutation", "copyWeekday"),
            Field::UpsertException => ("Mutation", "upsertException"),
            Field::DeleteException => ("Mutation", "deleteException"),
            Field::AddVacation => ("Mutation", "addVacation"),
            Field::CreateHold => ("Mutation", "createHold"),
            Field::ReleaseHold => ("Mutation", "releaseHold"),
            Field::ConfirmHold => ("Mutation", "confirmHold"),
            Field::RequestBooking => ("Mutation", "requestBooking"),
            Field::AcceptRequest => ("Mutation", "acceptRequest"),
            Field::DeclineRequest => ("Mutation", "declineRequest"),
            Field::RescheduleEvent => ("Mutation", "rescheduleEvent"),
            Field::CancelEvent => ("Mutation", "cancelEvent"),
            Field::ConnectIcs => ("Mutation", "connectIcs"),
            Field::DisconnectIcs => ("Mutation", "disconnectIcs"),
            Field::ResyncIcs => ("Mutation", "resyncIcs"),
            Field::CreateFeed => ("Mutation", "createFeed"),
            Field::RotateFeed => ("Mutation", "rotateFeed"),
            Field::RevokeFeed => ("Mutation", "revokeFeed"),
            Field::CalendarConnections => ("Query", "calendarConnections"),
            Field::StartCalendarConnect => ("Mutation", "startCalendarConnect"),
            Field::SetSyncedCalendar => ("Mutation", "setSyncedCalendar"),
            Field::ResyncCalendarConnection => ("Mutation", "resyncCalendarConnection"),
            Field::DisconnectCalendar => ("Mutation", "disconnectCalendar"),
            Field::BookingPolicies => ("Query", "bookingPolicies"),
            Field::PutBookingPolicy => ("Mutation", "putBookingPolicy"),
            Field::DeleteBookingPolicy => ("Mutation", "deleteBookingPolicy"),
        }
    }

    /// The field AppSync names, if the schema has it.
    pub fn parse(parent: &str, name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == (parent, name))
    }
}

/// Per-user limits (answered with `RATE_LIMITED`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Holds one customer may create in an hour.
    pub holds_per_customer_per_hour: i64,
}

/// Providers one `commonSlots` query may name: each is one calendar read,
/// and each adds its id to every slot of an `any_of` answer.
pub const MAX_COMMON_PROVIDERS: usize = 10;

impl Default for Limits {
    fn default() -> Self {
        Limits { holds_per_customer_per_hour: 20 }
    }
}

/// What every invocation borrows: built once at cold start.
#[derive(Clone)]
pub struct Deps {
    pub pool: Pool,
    /// Base of personal feed URLs, e.g. `https://feeds.example.com/feeds/`.
    pub feed_base_url: String,
    pub limits: Limits,
    /// The IAM roles trusted as services (`SERVICE_ROLE_ARNS`).
    pub services: ServiceRoles,
    /// The clock (injectable for tests).
    pub clock: Arc<dyn Fn() -> Instant + Send + Sync>,
    /// The DynamoDB caches, when configured: `bookableSlots` and
    /// `rescheduleCandidates` are served from them while the provider's
    /// version is unchanged.
    pub cache: Option<Arc<cal_aws::DynamoCache>>,
    /// Starts the ICS poll state machine when `resyncIcs` makes a source
    /// due; `None` (local runs) leaves it to the schedule.
    pub polls: Option<cal_aws::StepFunctionsPollStarter>,
    /// The calendars this instance's hold requests read or wrote a moment
    /// ago (`cal_store::create_hold_cached`): the next hold on such a
    /// provider is one round trip. Never trusted alone: the write is
    /// refused if the provider changed since.
    pub calendars: Arc<cal_store::CalendarCache>,
    /// Two-way sync's OAuth clients, state key, vault and queue; `None`
    /// (local runs without `SYNC_SECRETS_ARN`) makes the sync fields an
    /// internal error that says so.
    pub sync: Option<Arc<sync::SyncDeps>>,
}

impl Deps {
    fn now(&self) -> Instant {
        (self.clock)()
    }
}

/// The system clock, whole seconds.
pub fn system_clock() -> Instant {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    Instant::from_unix(secs)
}

/// Starts a poll for `source_id`, which `resync_ics` has just made due (and
/// committed). A failure is only logged: the source stays due, so the
/// state machine's next scheduled run (at most five minutes away) polls it;
/// failing the mutation would tell the provider their resync was lost when
/// it was not.
pub async fn start_poll_now(polls: &impl cal_aws::PollStarter, source_id: &str) {
    match polls.start_poll(source_id).await {
        Ok(execution) => tracing::info!(source_id, execution, "ICS poll started"),
        Err(e) => tracing::warn!(source_id, error = %e, "ICS poll not started; the schedule will poll the source"),
    }
}

/// The parts of a direct-resolver event we read. Parsed here rather than
/// with `aws_lambda_events`' type, whose identity enum turns a malformed
/// identity into a deserialization error (and a Cognito one into IAM).
#[derive(Deserialize)]
struct ResolverEvent {
    #[serde(default)]
    arguments: Option<Value>,
    #[serde(default)]
    identity: Option<Value>,
    info: ResolverInfo,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResolverInfo {
    parent_type_name: String,
    field_name: String,
}

/// Handles one direct-resolver event.
pub async fn handle(deps: &Deps, event: Value) -> Result<Value, ApiError> {
    let event: ResolverEvent =
        serde_json::from_value(event).map_err(|_| ApiError::validation("info", "not an AppSync resolver event"))?;
    let info = &event.info;
    let field = Field::parse(&info.parent_type_name, &info.field_name).ok_or_else(|| {
        ApiError::validation("info.fieldName", format!("unknown field {}.{}", info.parent_type_name, info.field_name))
    })?;
    let caller = Caller::from_identity(event.identity.as_ref(), &deps.services).map_err(|refusal| {
        if let Refusal::UnknownService(arn) = &refusal {
            // Worth an operator's look, but the caller's own doing: not an error of ours.
            tracing::warn!(field = ?field, arn = %arn, "IAM caller not on the service allow-list");
        }
        ApiError::forbidden()
    })?;
    let args = event.arguments.unwrap_or_else(|| json!({}));
    let result = dispatch(deps, &caller, field, args).await;
    if let Err(e) = &result {
        tracing::info!(field = ?field, caller = %caller.describe(), error_type = e.kind.as_str(), "refused");
    }
    result
}

/// What the function returns to AppSync for one event.
///
/// An answer, or a refusal the client caused (`VALIDATION`, `CONFLICT`,
/// `FORBIDDEN`, ...), is a normal return: `{"data": …}` or
/// `{"error": {"type", "message"}}`, which the resolvers' response mapping
/// template turns into the field's value or a GraphQL error with that
/// `errorType`. Only `INTERNAL` is a function error, so the function's
/// `Errors` metric (and its alarm) counts our failures, not lost races.
pub async fn respond(deps: &Deps, event: Value) -> Result<Value, ApiError> {
    match handle(deps, event).await {
        Ok(data) => Ok(json!({ "data": data })),
        Err(e) if e.kind == ErrorType::Internal => Err(e),
        Err(e) => Ok(json!({ "error": { "type": e.kind.as_str(), "message": e.message } })),
    }
}

async fn dispatch(deps: &Deps, caller: &Caller, field: Field, raw: Value) -> Result<Value, ApiError> {
    let now = deps.now();
    let mut db = deps.pool.get().await.map_err(|e| ApiError::from(cal_store::StoreError::Pool(e)))?;
    match field {
        Field::CalendarConnections
        | Field::StartCalendarConnect
        | Field::SetSyncedCalendar
        | Field::ResyncCalendarConnection
        | Field::DisconnectCalendar => {
            // Boxed: the sync fields' futures (two services' clients) would
            // otherwise make every resolver's future, and its stack, larger.
            Box::pin(sync::dispatch(deps, caller, field, raw, &mut db)).await
        }
        Field::BookingPolicies | Field::PutBookingPolicy | Field::DeleteBookingPolicy => {
            policies::dispatch(caller, field, raw, &mut db).await
        }
        Field::WeeklyRules => {
            let a: UserArgs = args(raw)?;
            require(caller.may_manage(&a.user_id))?;
            let rules = cal_store::list_rules(&**db, &a.user_id, a.role_code.as_deref()).await?;
            Ok(json!(rules.iter().map(out::rule).collect::<Vec<_>>()))
        }
        Field::Exceptions => {
            let a: UserArgs = args(raw)?;
            require(caller.may_manage(&a.user_id))?;
            let date = |f: &str, v: &Option<String>| {
                v.as_deref().map(|d| cal_core::time::parse_date(d).map_err(|e| ApiError::validation(f, e))).transpose()
            };
            let (from, to) = (date("fromDate", &a.from_date)?, date("toDate", &a.to_date)?);
            let list = cal_store::list_exceptions(&**db, &a.user_id, from, to).await?;
            Ok(json!(list.iter().map(out::exception).collect::<Vec<_>>()))
        }
        Field::BookableSlots => {
            let a: WithInput<SlotQueryArgs> = args(raw)?;
            let q = a.input;
            let range = SlotRange::new(instant("input.from", &q.from)?, instant("input.to", &q.to)?, q.duration_min, step("input.stepMin", q.step_min)?)
                .map_err(|e| ApiError::validation(&format!("input.{}", camel(e.field())), e))?;
            let query = SlotQuery { user_id: q.user_id.into(), role_code: q.role_code.into(), range };
            let user_id = query.user_id.clone();
            slot_page_through_cache(deps, &**db, CacheKey::slots(&query), &user_id, now, || async {
                Ok(out::slot_page(&cal_store::slots(&**db, &query, now).await.map_err(in_input)?))
            })
            .await
        }
        Field::CommonSlots => {
            let a: WithInput<CommonQueryArgs> = args(raw)?;
            let q = a.input;
            let mode = q.mode;
            if q.providers.is_empty() || q.providers.len() > MAX_COMMON_PROVIDERS {
                return Err(ApiError::validation("input.providers", format!("list 1 to {MAX_COMMON_PROVIDERS} providers")));
            }
            let range = SlotRange::new(instant("input.from", &q.from)?, instant("input.to", &q.to)?, q.duration_min, step("input.stepMin", q.step_min)?)
                .map_err(|e| ApiError::validation(&format!("input.{}", camel(e.field())), e))?;
            let providers: Vec<(&str, &str)> = q.providers.iter().map(|p| (p.user_id.as_str(), p.role_code.as_str())).collect();
            let answer = cal_store::common_slots(&**db, mode, &providers, &range, now).await.map_err(in_input)?;
            Ok(out::common_page(&answer))
        }
        Field::RescheduleCandidates => {
            let a: RescheduleCandidatesArgs = args(raw)?;
            let event = cal_store::get_event(&**db, &a.event_id).await?;
            visible(caller.may_see(&event.user_id, event.customer_id.as_deref()), "event", &a.event_id)?;
            let (from, to, step) = (instant("from", &a.from)?, instant("to", &a.to)?, step("stepMin", a.step_min)?);
            slot_page_through_cache(deps, &**db, CacheKey::reschedule(&a.event_id, from, to, step), &event.user_id, now, || async {
                Ok(out::slot_page(&cal_store::reschedule_candidates(&**db, &a.event_id, from, to, step, now).await?))
            })
            .await
        }
        Field::Hold => {
            let a: IdArgs = args(raw)?;
            let id = IdArgs::get("holdId", &a.hold_id)?;
            match cal_store::get_hold(&**db, id).await {
                Ok(h) if caller.may_see(&h.user_id, h.customer_id.as_deref()) => Ok(out::hold(&h, now)),
                // Someone else's hold looks like no hold at all.
                Ok(_) => Ok(Value::Null),
                Err(cal_store::StoreError::NotFound { .. }) => Ok(Value::Null),
                Err(e) => Err(e.into()),
            }
        }
        Field::Event => {
            let a: IdArgs = args(raw)?;
            let id = IdArgs::get("eventId", &a.event_id)?;
            match cal_store::get_event(&**db, id).await {
                Ok(e) if caller.may_see(&e.user_id, e.customer_id.as_deref()) => Ok(out::event(&e)),
                Ok(_) => Ok(Value::Null),
                Err(cal_store::StoreError::NotFound { .. }) => Ok(Value::Null),
                Err(e) => Err(e.into()),
            }
        }
        Field::EventIcs => {
            let a: IdArgs = args(raw)?;
            let id = IdArgs::get("eventId", &a.event_id)?;
            let event = cal_store::get_event(&**db, id).await?;
            visible(caller.may_see(&event.user_id, event.customer_id.as_deref()), "event", id)?;
            Ok(out::ics(&event, now))
        }
        Field::ExternalCalendars => {
            let a: UserArgs = args(raw)?;
            require(caller.may_manage(&a.user_id))?;
            let list = cal_store::sources::list_ics(&**db, &a.user_id).await?;
            Ok(json!(list.iter().map(out::source).collect::<Vec<_>>()))
        }
        Field::PutWeeklyRule => {
            let a: WithInput<RuleInputArgs> = args(raw)?;
            let user_id = managed(caller, &a.user_id)?;
            let rule = weekly_rule(user_id, a.input)?;
            let stored = cal_store::put_rule(&mut **db, &rule).await.map_err(in_input)?;
            Ok(out::rule(&stored))
        }
        Field::DeleteWeeklyRule => {
            let a: IdArgs = args(raw)?;
            let user_id = managed(caller, &a.user_id)?;
            cal_store::delete_rule(&mut **db, user_id, IdArgs::get("ruleId", &a.rule_id)?).await?;
            Ok(json!(true))
        }
        Field::CopyWeekday => {
            let a: CopyWeekdayArgs = args(raw)?;
            require(caller.may_manage(&a.user_id))?;
            let bit = |field: &str, d: i64| {
                if (1..=7).contains(&d) { Ok(1i64 << (d - 1)) } else { Err(ApiError::validation(field, format!("must be 1 (Monday) to 7 (Sunday), got {d}"))) }
            };
            let from = bit("fromWeekday", a.from_weekday)?;
            if a.to_weekdays.is_empty() {
                return Err(ApiError::validation("toWeekdays", "name at least one weekday"));
            }
            let mut to = 0;
            for (i, d) in a.to_weekdays.iter().enumerate() {
                to |= bit(&format!("toWeekdays[{i}]"), *d)?;
            }
            let mask = |field: &str, bits: i64| WeekdayMask::new(bits).map_err(|e| ApiError::validation(field, e));
            let (from, to) = (mask("fromWeekday", from)?, mask("toWeekdays", to)?);
            let changed = cal_store::copy_weekday(&mut **db, &a.user_id, &a.role_code, from, to).await?;
            Ok(json!(changed.iter().map(out::rule).collect::<Vec<_>>()))
        }
        Field::UpsertException => {
            let a: WithInput<ExceptionInputArgs> = args(raw)?;
            let user_id = managed(caller, &a.user_id)?;
            let note = a.input.note.clone();
            let exc = exception(user_id, a.input)?;
            let stored = cal_store::upsert_exception(&mut **db, &exc, note.as_deref()).await.map_err(in_input)?;
            Ok(out::exception(&stored))
        }
        Field::DeleteException => {
            let a: IdArgs = args(raw)?;
            let user_id = managed(caller, &a.user_id)?;
            cal_store::delete_exception(&mut **db, user_id, IdArgs::get("excId", &a.exc_id)?).await?;
            Ok(json!(true))
        }
        Field::AddVacation => {
            let a: WithInput<VacationInputArgs> = args(raw)?;
            let user_id = managed(caller, &a.user_id)?;
            let v = a.input;
            let date = |f: &str, d: &str| cal_core::time::parse_date(d).map_err(|e| ApiError::validation(f, e));
            let zone = Zone::parse(&v.timezone).map_err(|e| ApiError::validation("input.timezone", e))?;
            let vacation = cal_store::add_vacation(
                &mut **db,
                user_id,
                date("input.fromDate", &v.from_date)?,
                date("input.toDate", &v.to_date)?,
                zone,
                v.note.as_deref(),
            )
            .await
            .map_err(in_input)?;
            Ok(json!(vacation.days.iter().map(out::exception).collect::<Vec<_>>()))
        }
        Field::CreateHold | Field::RequestBooking => {
            let a: WithInput<HoldInputArgs> = args(raw)?;
            require(caller.may_book())?;
            let req = hold_request(caller, a.input, field == Field::RequestBooking)?;
            // The store checks both in the hold's own statements: the limit
            // under the customer's lock (RATE_LIMITED; a retry of a hold
            // already made is answered whatever the limit), and that a
            // rescheduled event is the caller's (else NOT_FOUND).
            // Admins and services are exempt from both.
            let policy = if caller.is_admin() {
                cal_store::HoldPolicy::TRUSTED
            } else {
                cal_store::HoldPolicy {
                    customer_limit: Some(cal_store::CustomerLimit::per_hour(deps.limits.holds_per_customer_per_hour)),
                    on_behalf_of: caller.user_id().map(str::to_owned),
                }
            };
            let hold = cal_store::create_hold_cached(&**db, &deps.calendars, &req, &policy, now).await.map_err(in_input)?;
            Ok(out::hold(&hold, now))
        }
        Field::ReleaseHold => {
            let a: IdArgs = args(raw)?;
            let id = IdArgs::get("holdId", &a.hold_id)?;
            let hold = cal_store::get_hold(&**db, id).await?;
            visible(caller.may_see(&hold.user_id, hold.customer_id.as_deref()), "hold", id)?;
            Ok(out::hold(&cal_store::release_hold(&mut **db, id, now).await?, now))
        }
        Field::ConfirmHold => {
            let a: IdArgs = args(raw)?;
            require(caller.is_admin())?;
            Ok(out::event(&cal_store::confirm_hold(&mut **db, IdArgs::get("holdId", &a.hold_id)?, now).await?))
        }
        Field::AcceptRequest | Field::DeclineRequest => {
            let a: IdArgs = args(raw)?;
            let id = IdArgs::get("holdId", &a.hold_id)?;
            let hold = cal_store::get_hold(&**db, id).await?;
            visible(caller.may_see(&hold.user_id, hold.customer_id.as_deref()), "hold", id)?;
            require(caller.may_manage(&hold.user_id))?;
            if field == Field::AcceptRequest {
                Ok(out::event(&cal_store::accept_request(&mut **db, id, now).await?))
            } else {
                Ok(out::hold(&cal_store::decline_request(&mut **db, id, now).await?, now))
            }
        }
        Field::RescheduleEvent => {
            let a: IdArgs = args(raw)?;
            require(caller.is_admin())?;
            let (event_id, hold_id) = (IdArgs::get("eventId", &a.event_id)?, IdArgs::get("holdId", &a.hold_id)?);
            Ok(out::event(&cal_store::reschedule_event(&mut **db, event_id, hold_id, now).await?))
        }
        Field::CancelEvent => {
            let a: IdArgs = args(raw)?;
            require(caller.is_admin())?;
            Ok(out::event(&cal_store::cancel_event(&mut **db, IdArgs::get("eventId", &a.event_id)?, now).await?))
        }
        Field::ConnectIcs => {
            let a: ConnectArgs = args(raw)?;
            require(caller.may_manage(&a.user_id))?;
            let source = cal_store::sources::connect_ics(&mut **db, &a.user_id, &a.url, a.label.as_deref(), now).await?;
            Ok(out::source(&source))
        }
        Field::DisconnectIcs => {
            let a: IdArgs = args(raw)?;
            let user_id = managed(caller, &a.user_id)?;
            cal_store::sources::disconnect_ics(&mut **db, user_id, IdArgs::get("sourceId", &a.source_id)?).await?;
            Ok(json!(true))
        }
        Field::ResyncIcs => {
            let a: IdArgs = args(raw)?;
            let user_id = managed(caller, &a.user_id)?;
            let source = cal_store::sources::resync_ics(&**db, user_id, IdArgs::get("sourceId", &a.source_id)?, now).await?;
            if let Some(polls) = &deps.polls {
                start_poll_now(polls, &source.source_id).await;
            }
            Ok(out::source(&source))
        }
        Field::CreateFeed | Field::RotateFeed => {
            let a: IdArgs = args(raw)?;
            let user_id = managed(caller, &a.user_id)?;
            let token = if field == Field::CreateFeed {
                cal_store::feeds::create_feed(&mut **db, user_id, now).await?
            } else {
                cal_store::feeds::rotate_feed(&mut **db, user_id, now).await?
            };
            Ok(out::feed_url(&deps.feed_base_url, &token))
        }
        Field::RevokeFeed => {
            let a: IdArgs = args(raw)?;
            let user_id = managed(caller, &a.user_id)?;
            // Whether a feed was on to turn off.
            Ok(json!(cal_store::feeds::revoke_feed(&mut **db, user_id, now).await?))
        }
    }
}

/// A `SlotPage` through the DynamoDB cache when one is configured: the
/// provider's version is read first, then a current entry is served as
/// stored, else `compute` runs and its page is stored. Without a cache,
/// `compute` alone.
async fn slot_page_through_cache<Fut>(
    deps: &Deps,
    db: &impl cal_store::Executor,
    key: CacheKey,
    provider: &str,
    now: Instant,
    compute: impl FnOnce() -> Fut,
) -> Result<Value, ApiError>
where
    Fut: std::future::Future<Output = Result<Value, ApiError>>,
{
    let Some(cache) = &deps.cache else { return compute().await };
    let version = cal_store::outbox::version(db, provider).await?;
    let (body, _source) = cal_aws::cache::read_through(cache.as_ref(), &key, version, now, || async {
        Ok::<_, ApiError>(compute().await?.to_string())
    })
    .await?;
    serde_json::from_str(&body).map_err(|e| {
        tracing::error!(error = %e, key = key.as_str(), "cached page unreadable");
        ApiError::new(ErrorType::Internal, "internal error")
    })
}

/// A store failure for a field whose arguments sit in `input`.
fn in_input(e: cal_store::StoreError) -> ApiError {
    ApiError::from_store(e, "input.")
}

/// A record the caller may not see answers like a missing one, so ids
/// cannot be probed.
fn visible(allowed: bool, what: &'static str, id: &str) -> Result<(), ApiError> {
    if allowed { Ok(()) } else { Err(ApiError::new(ErrorType::NotFound, format!("{what} {id} not found"))) }
}
