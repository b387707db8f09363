//! Errors of the booking services and their stable client-facing types.

use serde::Serialize;

use crate::feasibility::Slot;

/// The stable `errorType` a caller sees (AppSync, calctl, consumers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorType {
    Validation,
    NotFound,
    Forbidden,
    Conflict,
    HoldExpired,
    HoldReleased,
    IdempotencyMismatch,
    RateLimited,
    Internal,
}

impl ErrorType {
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorType::Validation => "VALIDATION",
            ErrorType::NotFound => "NOT_FOUND",
            ErrorType::Forbidden => "FORBIDDEN",
            ErrorType::Conflict => "CONFLICT",
            ErrorType::HoldExpired => "HOLD_EXPIRED",
            ErrorType::HoldReleased => "HOLD_RELEASED",
            ErrorType::IdempotencyMismatch => "IDEMPOTENCY_MISMATCH",
            ErrorType::RateLimited => "RATE_LIMITED",
            ErrorType::Internal => "INTERNAL",
        }
    }
}

/// A refusal by the booking rules. Messages are fit for a client: they name
/// the field or the record, never internals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookingError {
    #[error("{field}: {reason}")]
    Validation { field: &'static str, reason: String },
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error("the requested time is no longer available")]
    Conflict { alternatives: Vec<Slot> },
    /// Refused because the span is not inside the provider's availability
    /// (no weekly rule or available exception covers it, or an unavailable
    /// exception does): nobody took it, there is nothing to take. Still
    /// `CONFLICT` for callers; the alternatives are as for [`Self::Conflict`]
    /// and often empty (a provider with no rules has none).
    #[error("{user_id} has no availability as {role_code} at the requested time")]
    NoAvailability { user_id: String, role_code: String, alternatives: Vec<Slot> },
    #[error("hold {hold_id} has expired")]
    HoldExpired { hold_id: String },
    #[error("hold {hold_id} was released")]
    HoldReleased { hold_id: String },
    #[error("idempotency key {key:?} was used for a different request")]
    IdempotencyMismatch { key: String },
}

impl BookingError {
    /// The stable type for callers.
    pub fn error_type(&self) -> ErrorType {
        match self {
            BookingError::Validation { .. } => ErrorType::Validation,
            BookingError::NotFound { .. } => ErrorType::NotFound,
            BookingError::Conflict { .. } | BookingError::NoAvailability { .. } => ErrorType::Conflict,
            BookingError::HoldExpired { .. } => ErrorType::HoldExpired,
            BookingError::HoldReleased { .. } => ErrorType::HoldReleased,
            BookingError::IdempotencyMismatch { .. } => ErrorType::IdempotencyMismatch,
        }
    }

    /// The alternatives of a `CONFLICT`, of either kind.
    pub fn alternatives(&self) -> Option<&[Slot]> {
        match self {
            BookingError::Conflict { alternatives } | BookingError::NoAvailability { alternatives, .. } => Some(alternatives),
            _ => None,
        }
    }
}
