//! Typed errors of the store.
//!
//! Display texts are safe to show a client; the causes (`source()`) carry
//! the internals for the log. [`StoreError::error_type`] gives the stable
//! error type a binary maps a failure to.
//!
//! One variant per meaning: a refused input is always
//! [`StoreError::Validation`] (a booking rule's refusal included), a missing
//! record always [`StoreError::NotFound`], a stored row this code cannot
//! read always [`StoreError::InvalidRow`].

use cal_core::availability::RuleError;
use cal_core::{BookingError, ErrorType};
use cal_core::feasibility::FeasibilityError;
use cal_core::time::TimeError;
use chrono::NaiveDate;
use tokio_postgres::error::SqlState;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed or refused a statement for a reason other than a
    /// constraint (connection lost, syntax, serialization failure, ...).
    #[error("database error")]
    Db(#[source] tokio_postgres::Error),

    /// A statement violated a constraint, named as in `migrations/`
    /// (e.g. `hold_no_overlap_ex`).
    #[error("{kind} constraint {constraint:?} violated")]
    Constraint {
        /// What kind of constraint.
        kind: ConstraintKind,
        /// The constraint's name ("" if the server did not say).
        constraint: String,
        /// The server's error.
        #[source]
        source: tokio_postgres::Error,
    },

    /// No connection could be taken from the pool.
    #[error("no database connection available")]
    Pool(#[source] deadpool_postgres::PoolError),

    /// The pool could not be built.
    #[error("database pool could not be built")]
    PoolBuild(#[source] deadpool_postgres::BuildError),

    /// A configuration variable is missing or unusable. Its value is never
    /// part of the message (a database URL may hold a password).
    #[error("{var}: {problem}")]
    Config {
        /// The environment variable.
        var: &'static str,
        /// What is wrong with it.
        #[source]
        problem: ConfigProblem,
    },

    /// An input was refused before anything was written. A booking rule's
    /// refusal (`BookingError::Validation`) arrives here too, by `From`.
    #[error("{field}: {problem}")]
    Validation {
        /// Path of the offending field, e.g. `to_date` or `providers[1].duration_min`.
        field: String,
        /// What is wrong with it.
        #[source]
        problem: ValidationProblem,
    },

    /// The row does not exist (or belongs to another user, which callers must
    /// not be able to tell apart).
    #[error("{entity} {id:?} not found")]
    NotFound {
        /// The kind of row, e.g. `weekly_rule`, `hold`, `event`.
        entity: &'static str,
        /// Its id.
        id: String,
    },

    /// A stored row cannot be read as what this code wrote: a column that
    /// does not decode, a zone the tz database dropped, a status this code
    /// does not know. Our fault, never the caller's (`INTERNAL`).
    #[error("stored row {table} {id:?} has an invalid {column}")]
    InvalidRow {
        /// Qualified table name, e.g. `cal.weekly_rule`.
        table: &'static str,
        /// The row's id.
        id: String,
        /// The column that failed.
        column: &'static str,
        /// Why.
        #[source]
        problem: RowProblem,
    },

    /// A booking rule refused the request (`CONFLICT` with alternatives,
    /// `HOLD_EXPIRED`, `IDEMPOTENCY_MISMATCH`, ...). Nothing was stored.
    /// Never `BookingError::Validation`: `From` makes that a
    /// [`StoreError::Validation`], so a refused input has one shape.
    #[error(transparent)]
    Booking(BookingError),

    /// A per-user limit was reached (e.g. too many external calendars).
    /// Nothing was stored.
    #[error("limit reached: at most {max} {what} per provider")]
    Limit {
        /// What is limited, plural (e.g. `external calendars`).
        what: &'static str,
        /// The limit.
        max: i64,
    },

    /// A customer reached their hold limit ([`crate::booking::CustomerLimit`]),
    /// counted under a per-customer lock by the hold's own write. Nothing
    /// was stored.
    #[error("{limit}; try again later")]
    CustomerLimit {
        /// The limit reached.
        limit: crate::booking::CustomerLimit,
    },

    /// An applied migration differs from the embedded one: migrations are
    /// never edited once landed; add a new one instead.
    #[error(
        "migration {version} ({name}) was changed after it was applied (recorded checksum {recorded}, embedded {embedded})"
    )]
    MigrationChanged {
        /// Its version.
        version: i32,
        /// Its file name without `.sql`.
        name: &'static str,
        /// Checksum recorded when it was applied.
        recorded: String,
        /// Checksum of the embedded text.
        embedded: String,
    },
}

impl StoreError {
    /// The stable error type for clients: `VALIDATION`, `NOT_FOUND`,
    /// `CONFLICT` (a unique or exclusion constraint: someone else got there
    /// first), `RATE_LIMITED` (a per-user limit), a booking rule's own type,
    /// or `INTERNAL`.
    pub fn error_type(&self) -> ErrorType {
        // No wildcard: a new variant must choose its type here.
        match self {
            StoreError::Validation { .. } => ErrorType::Validation,
            StoreError::NotFound { .. } => ErrorType::NotFound,
            StoreError::Booking(e) => e.error_type(),
            StoreError::Limit { .. } | StoreError::CustomerLimit { .. } => ErrorType::RateLimited,
            StoreError::Constraint { kind: ConstraintKind::Unique | ConstraintKind::Exclusion, .. } => {
                ErrorType::Conflict
            }
            StoreError::Constraint {
                kind: ConstraintKind::Check | ConstraintKind::ForeignKey | ConstraintKind::NotNull, ..
            }
            | StoreError::Db(_)
            | StoreError::Pool(_)
            | StoreError::PoolBuild(_)
            | StoreError::Config { .. }
            | StoreError::InvalidRow { .. }
            | StoreError::MigrationChanged { .. } => ErrorType::Internal,
        }
    }

    /// Whether this is a violation of the named constraint.
    pub fn violates(&self, name: &str) -> bool {
        matches!(self, StoreError::Constraint { constraint, .. } if constraint == name)
    }

    /// A stored value outside what this code writes (an unknown status, a
    /// missing id that should be there).
    pub(crate) fn corrupt(table: &'static str, id: &str, column: &'static str) -> Self {
        StoreError::InvalidRow { table, id: id.to_owned(), column, problem: RowProblem::Unexpected }
    }

    pub(crate) fn validation(field: impl Into<String>, problem: impl Into<ValidationProblem>) -> Self {
        StoreError::Validation { field: field.into(), problem: problem.into() }
    }
}

impl From<BookingError> for StoreError {
    /// A booking rule's refused input becomes the one validation shape, so
    /// callers (fn-api's field paths, calctl's flag names) handle one.
    fn from(e: BookingError) -> Self {
        match e {
            BookingError::Validation { field, reason } => {
                StoreError::Validation { field: field.to_owned(), problem: ValidationProblem::Booking(reason) }
            }
            other => StoreError::Booking(other),
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    /// Constraint violations keep their kind and name so callers can react
    /// (an exclusion violation on a hold is a `CONFLICT`, not a crash).
    fn from(e: tokio_postgres::Error) -> Self {
        let kind = match e.code() {
            Some(c) if *c == SqlState::UNIQUE_VIOLATION => Some(ConstraintKind::Unique),
            Some(c) if *c == SqlState::EXCLUSION_VIOLATION => Some(ConstraintKind::Exclusion),
            Some(c) if *c == SqlState::CHECK_VIOLATION => Some(ConstraintKind::Check),
            Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => Some(ConstraintKind::ForeignKey),
            Some(c) if *c == SqlState::NOT_NULL_VIOLATION => Some(ConstraintKind::NotNull),
            _ => None,
        };
        match kind {
            Some(kind) => {
                let constraint = e.as_db_error().and_then(|d| d.constraint()).unwrap_or_default().to_owned();
                StoreError::Constraint { kind, constraint, source: e }
            }
            None => StoreError::Db(e),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Pool(e)
    }
}

/// Kinds of constraint violation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstraintKind {
    /// `unique` / primary key.
    Unique,
    /// `exclude using gist` (overlapping time).
    Exclusion,
    /// `check`.
    Check,
    /// `references`.
    ForeignKey,
    /// `not null`.
    NotNull,
}

impl std::fmt::Display for ConstraintKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConstraintKind::Unique => "unique",
            ConstraintKind::Exclusion => "exclusion",
            ConstraintKind::Check => "check",
            ConstraintKind::ForeignKey => "foreign key",
            ConstraintKind::NotNull => "not null",
        })
    }
}

/// What is wrong with a configuration variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigProblem {
    /// Not set.
    #[error("is not set")]
    Missing,
    /// Not a PostgreSQL connection string.
    #[error("is not a valid PostgreSQL connection string")]
    Invalid(#[source] tokio_postgres::Error),
    /// Names a file of CA certificates that cannot be used.
    #[error("{0}")]
    CaBundle(String),
}

/// Why an input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationProblem {
    /// An id or name was empty.
    #[error("must not be empty")]
    Empty,
    /// A date range ends before it starts.
    #[error("must not be before from_date {from}")]
    BeforeStart {
        /// The start of the range.
        from: NaiveDate,
    },
    /// A date range is longer than allowed.
    #[error("the range covers {days} days, more than the {max} allowed")]
    TooLong {
        /// Days in the range, both ends included.
        days: i64,
        /// The limit.
        max: i64,
    },
    /// A time value.
    #[error(transparent)]
    Time(#[from] TimeError),
    /// A rule value.
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// A slot query.
    #[error(transparent)]
    Query(#[from] FeasibilityError),
    /// A text longer than allowed.
    #[error("is {len} characters long, more than the {max} allowed")]
    TooManyChars {
        /// Its length in characters.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An external calendar's URL.
    #[error(transparent)]
    Url(#[from] crate::sources::UrlProblem),
    /// A list would be longer than one answer may be.
    #[error("more than {max} rows match: narrow the range")]
    TooManyRows {
        /// The most one answer holds.
        max: i64,
    },
    /// A string's length or characters (`cal_core::text`).
    #[error(transparent)]
    Text(#[from] cal_core::text::TextError),
    /// A booking rule's refusal (`BookingError::Validation`), which core
    /// already put in words fit for a client.
    #[error("{0}")]
    Booking(String),
}

/// Why a stored column was refused.
#[derive(Debug, thiserror::Error)]
pub enum RowProblem {
    /// The column could not be read as the expected type.
    #[error("cannot be read")]
    Decode(#[source] tokio_postgres::Error),
    /// A time value (zone, time of day, interval).
    #[error(transparent)]
    Time(#[from] TimeError),
    /// A rule value (mask, booking parameter, half times, kind).
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// A value outside its enumeration.
    #[error("must be one of {allowed}, got {got:?}")]
    NotOneOf {
        /// The allowed values.
        allowed: &'static str,
        /// The stored value.
        got: String,
    },
    /// A value this code never writes (a status it does not know, a
    /// missing reference, a hash of the wrong length).
    #[error("holds a value this code does not write")]
    Unexpected,
}

#[cfg(test)]
mod tests {
    use super::*;
    use cal_core::Slot;

    /// A real driver error: connection strings are parsed locally.
    fn pg_error() -> tokio_postgres::Error {
        "port=not-a-number".parse::<tokio_postgres::Config>().unwrap_err()
    }

    fn constraint(kind: ConstraintKind) -> StoreError {
        StoreError::Constraint { kind, constraint: "c".into(), source: pg_error() }
    }

    #[test]
    fn every_variant_maps_to_its_client_type() {
        let row = |problem| StoreError::InvalidRow { table: "cal.hold", id: "h1".into(), column: "status", problem };
        let cases: Vec<(StoreError, ErrorType)> = vec![
            (StoreError::from(pg_error()), ErrorType::Internal),
            (constraint(ConstraintKind::Unique), ErrorType::Conflict),
            (constraint(ConstraintKind::Exclusion), ErrorType::Conflict),
            (constraint(ConstraintKind::Check), ErrorType::Internal),
            (constraint(ConstraintKind::ForeignKey), ErrorType::Internal),
            (constraint(ConstraintKind::NotNull), ErrorType::Internal),
            (StoreError::Pool(deadpool_postgres::PoolError::Closed), ErrorType::Internal),
            (StoreError::PoolBuild(deadpool_postgres::BuildError::NoRuntimeSpecified), ErrorType::Internal),
            (StoreError::Config { var: "DATABASE_URL", problem: ConfigProblem::Missing }, ErrorType::Internal),
            (StoreError::validation("to_date", ValidationProblem::Empty), ErrorType::Validation),
            (StoreError::NotFound { entity: "hold", id: "h1".into() }, ErrorType::NotFound),
            (row(RowProblem::Unexpected), ErrorType::Internal),
            (StoreError::corrupt("cal.event", "e1", "status"), ErrorType::Internal),
            (StoreError::Booking(BookingError::Conflict { alternatives: Vec::<Slot>::new() }), ErrorType::Conflict),
            (
                StoreError::Booking(BookingError::NoAvailability {
                    user_id: "u".into(),
                    role_code: "r".into(),
                    alternatives: vec![],
                }),
                ErrorType::Conflict,
            ),
            (StoreError::Booking(BookingError::HoldExpired { hold_id: "h1".into() }), ErrorType::HoldExpired),
            (StoreError::Booking(BookingError::HoldReleased { hold_id: "h1".into() }), ErrorType::HoldReleased),
            (
                StoreError::Booking(BookingError::IdempotencyMismatch { key: "k".into() }),
                ErrorType::IdempotencyMismatch,
            ),
            (StoreError::Limit { what: "external calendars", max: 20 }, ErrorType::RateLimited),
            (
                StoreError::CustomerLimit { limit: crate::booking::CustomerLimit::per_hour(20) },
                ErrorType::RateLimited,
            ),
            (
                StoreError::MigrationChanged { version: 1, name: "init", recorded: "a".into(), embedded: "b".into() },
                ErrorType::Internal,
            ),
        ];
        for (e, expected) in cases {
            assert_eq!(e.error_type(), expected, "{e:?}");
        }
    }

    #[test]
    fn a_booking_rules_refused_input_is_the_one_validation_shape() {
        let e = StoreError::from(BookingError::Validation { field: "end", reason: "must be after start".into() });
        assert!(
            matches!(&e, StoreError::Validation { field, problem: ValidationProblem::Booking(r) }
                if field == "end" && r == "must be after start"),
            "{e:?}"
        );
        assert_eq!(e.to_string(), "end: must be after start", "the message a client saw before");
        assert_eq!(e.error_type(), ErrorType::Validation);
        // Other refusals keep their own variant and type.
        let e = StoreError::from(BookingError::HoldExpired { hold_id: "h1".into() });
        assert!(matches!(e, StoreError::Booking(BookingError::HoldExpired { .. })));
    }

    #[test]
    fn an_unreadable_row_names_table_id_and_column() {
        let e = StoreError::corrupt("cal.hold", "h1", "status");
        assert_eq!(e.to_string(), "stored row cal.hold \"h1\" has an invalid status");
        assert_eq!(cal_core::error::ErrorChain(&e).to_string(), "stored row cal.hold \"h1\" has an invalid status: holds a value this code does not write");
    }
}
