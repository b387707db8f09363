//! Typed errors of the store.
//!
//! Display texts are safe to show a client; the causes (`source()`) carry
//! the internals for the log. [`StoreError::code`] gives the stable error
//! type a binary maps a failure to.

use cal_core::availability::RuleError;
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

    /// An input was refused before anything was written.
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
        /// The kind of row, e.g. `weekly_rule`.
        entity: &'static str,
        /// Its id.
        id: String,
    },

    /// A stored row no longer validates (e.g. a zone the tz database dropped).
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
    #[error(transparent)]
    Booking(#[from] cal_core::BookingError),

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

    /// A stored value no longer reads as its type (a status the code does
    /// not know, a zone the tz database dropped).
    #[error("stored row {table} {id:?} has an unreadable {column}")]
    Corrupt {
        /// Qualified table name.
        table: &'static str,
        /// The row's id.
        id: String,
        /// The column.
        column: &'static str,
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
    /// first), `RATE_LIMITED` (a per-user limit) or `INTERNAL`.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Validation { .. } => "VALIDATION",
            StoreError::Booking(e) => e.error_type().as_str(),
            StoreError::NotFound { .. } => "NOT_FOUND",
            StoreError::Limit { .. } | StoreError::CustomerLimit { .. } => "RATE_LIMITED",
            StoreError::Constraint { kind: ConstraintKind::Unique | ConstraintKind::Exclusion, .. } => "CONFLICT",
            _ => "INTERNAL",
        }
    }

    /// Whether this is a violation of the named constraint.
    pub fn violates(&self, name: &str) -> bool {
        matches!(self, StoreError::Constraint { constraint, .. } if constraint == name)
    }

    pub(crate) fn corrupt(table: &'static str, id: &str, column: &'static str) -> Self {
        StoreError::Corrupt { table, id: id.to_owned(), column }
    }

    pub(crate) fn validation(field: impl Into<String>, problem: impl Into<ValidationProblem>) -> Self {
        StoreError::Validation { field: field.into(), problem: problem.into() }
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
}
