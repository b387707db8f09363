//! Holds and bookings, the pure half (SEMANTICS.md §5): hold requests and
//! their fingerprints, the hold state machine, the feasibility re-check a
//! booking transaction runs under its lock, and nearby alternatives for a
//! lost race. The store runs these inside one transaction.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::availability::Availability;
use crate::error::BookingError;
use crate::feasibility::{
    HoldStatus, ProviderCalendar, Slot, SlotQuery, SlotRange, StepMinutes, bookable_slots,
};
use crate::intervals;
use crate::time::{Instant, Interval};

/// Default time-to-live of an Instant Book (checkout) hold, minutes.
pub const DEFAULT_INSTANT_TTL_MIN: u32 = 10;
/// Default time-to-live of a Request-to-Book hold: the provider's day to answer.
pub const DEFAULT_REQUEST_TTL_MIN: u32 = 24 * 60;
/// Longest TTL of an instant hold: a checkout that takes longer starts over.
pub const MAX_INSTANT_TTL_MIN: u32 = 60;
/// Longest TTL of a request (or admin) hold: three days.
pub const MAX_REQUEST_TTL_MIN: u32 = 72 * 60;
/// How many alternatives a `CONFLICT` carries at most.
pub const MAX_ALTERNATIVES: usize = 3;

/// Why a hold exists.
///
/// Serde reads the stored spelling (`checkout`) and the GraphQL enum value
/// (`CHECKOUT`) alike.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HoldKind {
    /// A customer's checkout: must be a feasible slot.
    #[serde(alias = "CHECKOUT")]
    Checkout,
    /// Moving an existing event: feasible, ignoring the event's own time.
    #[serde(alias = "RESCHEDULE")]
    Reschedule,
    /// An operator's block: skips availability rules, never overlaps busy time.
    #[serde(alias = "ADMIN")]
    Admin,
}

impl HoldKind {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "checkout" => Some(HoldKind::Checkout),
            "reschedule" => Some(HoldKind::Reschedule),
            "admin" => Some(HoldKind::Admin),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            HoldKind::Checkout => "checkout",
            HoldKind::Reschedule => "reschedule",
            HoldKind::Admin => "admin",
        }
    }
}

/// How a hold becomes a booking: at once (Instant Book) or on the provider's
/// acceptance (Request-to-Book).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HoldMode {
    #[serde(alias = "INSTANT")]
    Instant,
    #[serde(alias = "REQUEST")]
    Request,
}

impl HoldMode {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "instant" => Some(HoldMode::Instant),
            "request" => Some(HoldMode::Request),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            HoldMode::Instant => "instant",
            HoldMode::Request => "request",
        }
    }

    /// Default TTL in minutes.
    pub const fn default_ttl_min(self) -> u32 {
        match self {
            HoldMode::Instant => DEFAULT_INSTANT_TTL_MIN,
            HoldMode::Request => DEFAULT_REQUEST_TTL_MIN,
        }
    }

    /// Largest TTL in minutes.
    pub const fn max_ttl_min(self) -> u32 {
        match self {
            HoldMode::Instant => MAX_INSTANT_TTL_MIN,
            HoldMode::Request => MAX_REQUEST_TTL_MIN,
        }
    }
}

impl fmt::Display for HoldKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated request for a hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldRequest {
    pub user_id: String,
    pub role_code: String,
    pub customer_id: Option<String>,
    pub interval: Interval,
    pub kind: HoldKind,
    pub mode: HoldMode,
    /// The event a reschedule hold moves (required for, and only for, reschedule).
    pub event_id: Option<String>,
    pub ttl_min: u32,
    /// Step grid the slot must start on (default 30, as for slot queries).
    pub step: StepMinutes,
    pub idempotency_key: String,
}

/// The fields of a hold request before validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldRequestInput {
    pub user_id: String,
    pub role_code: String,
    pub customer_id: Option<String>,
    pub start: Instant,
    pub end: Instant,
    pub kind: Option<HoldKind>,
    pub mode: Option<HoldMode>,
    pub event_id: Option<String>,
    pub ttl_min: Option<i64>,
    pub step_min: Option<i64>,
    pub idempotency_key: String,
}

impl HoldRequest {
    /// Validates a request; every refusal names its field.
    pub fn new(input: HoldRequestInput) -> Result<Self, BookingError> {
        let invalid = |field: &'static str, reason: String| BookingError::Validation { field, reason };
        let nonblank = |field: &'static str, v: &str| crate::text::ID.check(v).map_err(|e| invalid(field, e.to_string()));
        nonblank("user_id", &input.user_id)?;
        nonblank("role_code", &input.role_code)?;
        nonblank("idempotency_key", &input.idempotency_key)?;
        if let Some(customer) = &input.customer_id {
            nonblank("customer_id", customer)?;
        }
        if let Some(event) = &input.event_id {
            nonblank("event_id", event)?;
        }
        let interval = Interval::new(input.start, input.end).map_err(|e| invalid("end", e.to_string()))?;
        if interval.secs() % 60 != 0 {
            return Err(invalid("end", "a hold lasts a whole number of minutes".into()));
        }
        let kind = input.kind.unwrap_or(HoldKind::Checkout);
        let mode = input.mode.unwrap_or(HoldMode::Instant);
        match (kind, &input.event_id) {
            (HoldKind::Reschedule, None) => return Err(invalid("event_id", "a reschedule hold names the event it moves".into())),
            (HoldKind::Checkout | HoldKind::Admin, Some(_)) => {
                return Err(invalid("event_id", "only a reschedule hold names an event".into()));
            }
            _ => {}
        }
        let max = if kind == HoldKind::Admin { MAX_REQUEST_TTL_MIN } else { mode.max_ttl_min() };
        let ttl_min = match input.ttl_min {
            None => mode.default_ttl_min(),
            Some(t) if (1..=i64::from(max)).contains(&t) => t as u32,
            Some(t) => return Err(invalid("ttl_min", format!("must be between 1 and {max} minutes for a {} hold, got {t}", mode.as_str()))),
        };
        let step = match input.step_min {
            None => StepMinutes::default(),
            Some(s) => StepMinutes::new(s).map_err(|e| invalid("step_min", e.to_string()))?,
        };
        Ok(HoldRequest {
            user_id: input.user_id,
            role_code: input.role_code,
            customer_id: input.customer_id,
            interval,
            kind,
            mode,
            event_id: input.event_id,
            ttl_min,
            step,
            idempotency_key: input.idempotency_key,
        })
    }

    /// Minutes the hold lasts.
    pub fn minutes(&self) -> u32 {
        (self.interval.secs() / 60) as u32
    }

    /// When a hold created at `now` expires.
    pub fn expires_at(&self, now: Instant) -> Instant {
        now.plus_minutes(self.ttl_min.into())
    }

    /// SHA-256 over every field that shapes the hold (not the key itself):
    /// the same key with another fingerprint is `IDEMPOTENCY_MISMATCH`.
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::json!({
            "v": 1,
            "user_id": self.user_id,
            "role_code": self.role_code,
            "customer_id": self.customer_id,
            "start": self.interval.start(),
            "end": self.interval.end(),
            "kind": self.kind.as_str(),
            "mode": self.mode.as_str(),
            "event_id": self.event_id,
            "ttl_min": self.ttl_min,
            "step_min": self.step.get(),
        });
        let digest = Sha256::digest(canonical.to_string().as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What converting a hold does, decided from its state (§5 conversion).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conversion {
    /// Active and unexpired: create (or move) the event now.
    Proceed,
    /// Already converted: return the event it became (idempotent).
    AlreadyConverted,
}

/// The conversion decision for a hold in `status` expiring at `expires_at`.
pub fn conversion(hold_id: &str, status: HoldStatus, expires_at: Instant, now: Instant) -> Result<Conversion, BookingError> {
    // The status in effect: an active hold whose time ran out is expired.
    match status.at(expires_at, now) {
        HoldStatus::Active => Ok(Conversion::Proceed),
        HoldStatus::Expired => Err(BookingError::HoldExpired { hold_id: hold_id.to_owned() }),
        HoldStatus::Released => Err(BookingError::HoldReleased { hold_id: hold_id.to_owned() }),
        HoldStatus::Converted => Ok(Conversion::AlreadyConverted),
    }
}

/// Whether a hold may be released: active ones are, released ones already
/// are (idempotent); converted or expired ones cannot be.
pub fn release(hold_id: &str, status: HoldStatus, expires_at: Instant, now: Instant) -> Result<bool, BookingError> {
    match status.at(expires_at, now) {
        HoldStatus::Active => Ok(true),
        HoldStatus::Released => Ok(false),
        HoldStatus::Expired => Err(BookingError::HoldExpired { hold_id: hold_id.to_owned() }),
        HoldStatus::Converted => Err(BookingError::Validation {
            field: "hold_id",
            reason: format!("hold {hold_id} is already booked; cancel the event instead"),
        }),
    }
}

/// The re-check a booking transaction runs under the provider's lock, with
/// everything it loaded: a checkout or reschedule hold must be a feasible
/// slot (§4, duration included) and keep the provider's buffers and limits
/// for its role (§8); an admin hold skips all of that and must only not
/// overlap the provider's own bookings (confirmed events, active holds).
///
/// A reschedule ignores the event it moves: not busy, buffered or counted. Losing is `CONFLICT` with up to
/// three nearby slots of the same length: [`BookingError::NoAvailability`]
/// when the provider's rules and exceptions do not cover the span at all (a
/// provider without rules, a night, a day off), else
/// [`BookingError::Conflict`] (busy, a buffer, a limit, lead time, booking
/// window, off the grid).
pub fn check_hold(req: &HoldRequest, calendar: &ProviderCalendar, now: Instant) -> Result<(), BookingError> {
    let own = own_calendar(req, calendar);
    if req.kind == HoldKind::Admin {
        let clash = own.bookings(&req.user_id, now).any(|b| b.interval.overlaps(req.interval));
        return if clash { Err(BookingError::Conflict { alternatives: Vec::new() }) } else { Ok(()) };
    }
    let start = req.interval.start();
    let query = SlotQuery {
        user_id: req.user_id.clone(),
        role_code: req.role_code.clone(),
        range: SlotRange::new(start, start.plus_secs(1), Some(req.minutes().into()), req.step)
            .map_err(|e| BookingError::Validation { field: "end", reason: e.to_string() })?,
    };
    let answer = bookable_slots(&query, &own, now)
        .map_err(|e| BookingError::Validation { field: "end", reason: e.to_string() })?;
    if answer.slots.iter().any(|s| s.start == start && s.end == req.interval.end()) {
        return Ok(());
    }
    let alternatives = alternatives(req, &own, now);
    if !within_availability(req, &own) {
        return Err(BookingError::NoAvailability { user_id: req.user_id.clone(), role_code: req.role_code.clone(), alternatives });
    }
    Err(BookingError::Conflict { alternatives })
}

/// Whether the provider's availability (rules and exceptions, before any
/// busy time, lead time or booking window) covers the whole request.
fn within_availability(req: &HoldRequest, calendar: &ProviderCalendar) -> bool {
    let (start, end) = (req.interval.start(), req.interval.end());
    let avail = Availability::build(&req.user_id, &req.role_code, &calendar.weekly_rules, &calendar.exceptions, start, end);
    intervals::containing(&avail.available, start).is_some_and(|iv| iv.end() >= end)
}

/// The calendar as the request sees it: a reschedule does not conflict with
/// the event it moves, nor is it buffered or counted by it (§8).
fn own_calendar(req: &HoldRequest, calendar: &ProviderCalendar) -> ProviderCalendar {
    match (req.kind, &req.event_id) {
        (HoldKind::Reschedule, Some(event_id)) => calendar.without_event(event_id),
        _ => calendar.clone(),
    }
}

/// Up to three feasible slots of the request's length nearest its start
/// (within a day either side), in time order.
pub fn alternatives(req: &HoldRequest, calendar: &ProviderCalendar, now: Instant) -> Vec<Slot> {
    let start = req.interval.start();
    let Ok(range) = SlotRange::new(start.plus_secs(-86_400), start.plus_secs(86_400), Some(req.minutes().into()), req.step) else {
        return Vec::new();
    };
    let query = SlotQuery { user_id: req.user_id.clone(), role_code: req.role_code.clone(), range };
    let Ok(answer) = bookable_slots(&query, calendar, now) else { return Vec::new() };
    let mut near = answer.slots;
    near.sort_by_key(|s| ((s.start.unix() - start.unix()).abs(), s.start));
    near.truncate(MAX_ALTERNATIVES);
    near.sort();
    near
}
