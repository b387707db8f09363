//! Errors of the booking services, their stable client-facing types, and
//! the one way a cause chain is printed ([`ErrorChain`]).

use std::error::Error as StdError;
use std::fmt;

use serde::Serialize;

use crate::feasibility::Slot;

/// The stable `errorType` a caller sees (AppSync, calctl, consumers).
///
/// Every error type of the workspace maps to one of these with an
/// `error_type()` method; nothing matches strings back into this enum.
/// The GraphQL ones are listed in `infra/schema.graphql`.
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
    /// The same request is running elsewhere; retrying later is safe. Seen
    /// by the event-driven Lambdas' callers (EventBridge), not by GraphQL.
    IdempotencyInProgress,
    RateLimited,
    /// A calendar file that is not iCalendar or is over a limit
    /// (SEMANTICS.md §6). `calctl` only: its `--json` error document.
    Rejected,
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
            ErrorType::IdempotencyInProgress => "IDEMPOTENCY_IN_PROGRESS",
            ErrorType::RateLimited => "RATE_LIMITED",
            ErrorType::Rejected => "REJECTED",
            ErrorType::Internal => "INTERNAL",
        }
    }
}

impl fmt::Display for ErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal by the booking rules. Messages are fit for a client: they name
/// the field or the record, never internals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookingError {
    /// Bad input. (A record that does not exist is the store's
    /// `StoreError::NotFound`: only a lookup can tell.)
    #[error("{field}: {reason}")]
    Validation { field: &'static str, reason: String },
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

/// An error and its causes (`source()`), outermost first.
pub fn sources<'a>(e: &'a (dyn StdError + 'static)) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(e), |&e| e.source())
}

/// Displays an error followed by its causes: `outer: cause: root cause`.
///
/// The one way a cause chain is printed (fn-api's `INTERNAL` log line,
/// calctl's stderr line), as zero2prod's `error_chain_fmt`. Causes carry
/// internals (database messages, constraint names): this is for logs and
/// operators, never for a client's message.
#[derive(Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn StdError + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in sources(self.0).enumerate() {
            if i > 0 {
                f.write_str(": ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("outer")]
        Wrapped(#[source] Middle),
        #[error(transparent)]
        Transparent(Middle),
    }

    #[derive(Debug, thiserror::Error)]
    #[error("middle")]
    struct Middle(#[source] std::io::Error);

    fn root() -> std::io::Error {
        std::io::Error::other("root")
    }

    #[test]
    fn a_chain_prints_every_cause_once_outermost_first() {
        let e = Outer::Wrapped(Middle(root()));
        assert_eq!(ErrorChain(&e).to_string(), "outer: middle: root");
        // transparent forwards Display and source(): the middle is not repeated.
        let e = Outer::Transparent(Middle(root()));
        assert_eq!(ErrorChain(&e).to_string(), "middle: root");
        assert_eq!(ErrorChain(&root()).to_string(), "root");
        assert_eq!(sources(&Outer::Wrapped(Middle(root()))).count(), 3);
    }

    #[test]
    fn the_wire_name_is_the_serde_name() {
        use ErrorType::*;
        let all = [Validation, NotFound, Forbidden, Conflict, HoldExpired, HoldReleased];
        let more = [IdempotencyMismatch, IdempotencyInProgress, RateLimited, Rejected, Internal];
        for t in all.into_iter().chain(more) {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str(), "{t:?}");
            assert_eq!(t.to_string(), t.as_str());
        }
    }
}
