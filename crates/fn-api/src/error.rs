//! Failures as the client sees them: a stable `errorType` and a safe message.

use cal_core::error::ErrorChain;
use cal_core::{BookingError, ErrorType};
use cal_store::StoreError;
use lambda_runtime::Diagnostic;

/// Longest problem text a `VALIDATION` message carries.
const MAX_PROBLEM_CHARS: usize = 300;

/// An error on its way to AppSync. Internals never reach `message`: they are
/// logged where the error is made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", kind.as_str())]
pub struct ApiError {
    pub kind: ErrorType,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorType, message: impl Into<String>) -> Self {
        ApiError { kind, message: message.into() }
    }

    /// Bad input; `field` is the argument's path. A problem that quotes the
    /// input (an unknown zone, an unknown field name) is cut short, so a
    /// megabyte argument never comes back in full.
    pub fn validation(field: &str, problem: impl std::fmt::Display) -> Self {
        let mut problem = problem.to_string();
        if let Some((cut, _)) = problem.char_indices().nth(MAX_PROBLEM_CHARS) {
            problem.truncate(cut);
            problem.push('…');
        }
        ApiError::new(ErrorType::Validation, format!("{field}: {problem}"))
    }

    pub fn forbidden() -> Self {
        ApiError::new(ErrorType::Forbidden, "not allowed for this caller")
    }
}

impl ApiError {
    /// A store failure whose validation field is an argument of the GraphQL
    /// field: named by its path there (`to_date` → `input.toDate` with prefix
    /// `input.`), so every message starts with the path the client sent.
    pub fn from_store(e: StoreError, prefix: &str) -> Self {
        match e {
            StoreError::Validation { field, problem } => ApiError::validation(&format!("{prefix}{}", crate::camel(&field)), problem),
            other => other.into(),
        }
    }
}

impl From<BookingError> for ApiError {
    fn from(e: BookingError) -> Self {
        let kind = e.error_type();
        match e {
            // A Lambda error cannot carry data to the client (AppSync keeps
            // only errorType and message), so the alternatives travel in the
            // message as a JSON array after a fixed marker.
            BookingError::Validation { field, reason } => ApiError::validation(&crate::camel(field), reason),
            // Either refusal: its own sentence, then the same marker.
            BookingError::Conflict { .. } | BookingError::NoAvailability { .. } => {
                let alts = serde_json::to_string(e.alternatives().unwrap_or_default()).unwrap_or_else(|_| "[]".into());
                ApiError::new(kind, format!("{e}; alternatives: {alts}"))
            }
            other => ApiError::new(kind, other.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Booking(b) => b.into(),
            StoreError::Validation { field, problem } => ApiError::validation(&crate::camel(&field), problem),
            other => match other.error_type() {
                // The chain (database messages, constraint names) is for our
                // logs only.
                ErrorType::Internal => {
                    tracing::error!(error = %ErrorChain(&other), "internal failure");
                    ApiError::new(ErrorType::Internal, "internal error")
                }
                kind => ApiError::new(kind, other.to_string()),
            },
        }
    }
}

impl From<ApiError> for Diagnostic {
    fn from(e: ApiError) -> Self {
        Diagnostic { error_type: e.kind.as_str().to_owned(), error_message: e.message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_booking_rules_refusal_and_the_stores_own_get_the_same_path() {
        let from_rule = StoreError::from(BookingError::Validation { field: "hold_id", reason: "is required".into() });
        assert_eq!(ApiError::from_store(from_rule, "input."), ApiError::new(ErrorType::Validation, "input.holdId: is required"));
        let own = StoreError::Validation { field: "to_date".into(), problem: cal_store::ValidationProblem::Empty };
        assert_eq!(ApiError::from(own), ApiError::new(ErrorType::Validation, "toDate: must not be empty"));
    }

    #[test]
    fn a_typed_store_failure_keeps_its_type_and_an_internal_one_says_nothing() {
        let gone = StoreError::NotFound { entity: "hold", id: "hld_1".into() };
        assert_eq!(ApiError::from(gone), ApiError::new(ErrorType::NotFound, "hold \"hld_1\" not found"));
        let limit = StoreError::Limit { what: "external calendars", max: 20 };
        assert_eq!(ApiError::from(limit).kind, ErrorType::RateLimited);
        let unreadable = StoreError::InvalidRow {
            table: "cal.hold",
            id: "hld_1".into(),
            column: "status",
            problem: cal_store::RowProblem::Unexpected,
        };
        assert_eq!(ApiError::from(unreadable), ApiError::new(ErrorType::Internal, "internal error"));
    }
}
