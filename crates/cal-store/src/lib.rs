//! Postgres store for the `cal` schema (Aurora PostgreSQL in production).
//!
//! * [`mod@migrate`]: the numbered SQL files of `migrations/`, embedded and
//!   applied in order.
//! * [`db`]: the two small traits every function here is written against —
//!   [`Executor`] (run a statement) and [`Begin`] (open a transaction, or a
//!   savepoint inside one) — and pool construction.
//! * [`rules`]: weekly rules, exceptions and vacations; every change writes
//!   its outbox row and bumps the provider's version in the same transaction.
//! * [`policies`]: booking policies (buffers, day and week limits), written
//!   like rules.
//! * [`calendar`]: one provider's [`cal_core::ProviderCalendar`] for a query,
//!   loaded in a fixed number of statements, and the slot queries on top.
//! * [`booking`]: holds and bookings (SEMANTICS.md §5), each one transaction
//!   under a per-provider lock, with the exclusion constraints as backstop.
//! * [`outbox`]: the transactional outbox and the per-provider version.
//! * [`sync`]: two-way sync's connections, synced busy time and written
//!   bookings (SEMANTICS.md §11).
//! * [`demo`]: a demo provider for local runs.
//!
//! Rows are converted into `cal_core` types on the way out; a stored row that
//! no longer validates is an error naming its table, id and column
//! ([`StoreError::InvalidRow`]), never a silent default.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod booking;
pub mod calendar;
pub mod db;
pub mod demo;
pub mod error;
pub mod feeds;
pub mod hold_cache;
pub mod migrate;
pub mod outbox;
pub mod policies;
pub mod poll;
pub mod relay;
pub mod rows;
pub mod rules;
pub mod sources;
pub mod sync;
pub mod tls;
#[cfg(test)]
mod golden_sql;
#[cfg(feature = "testing")]
pub mod testing;

pub use booking::{
    CustomerLimit, EventRecord, HoldPolicy, HoldRecord, accept_request, cancel_event, confirm_hold, create_hold, create_hold_cached,
    decline_request, get_event, get_hold, release_hold, reschedule_candidates, reschedule_event,
    sweep_expired_holds,
};
pub use calendar::{common_slots, load_calendar, slots};
pub use hold_cache::CalendarCache;
pub use db::{Begin, Executor, Tx, connect, pool_from_config, pool_from_env, pool_from_url};
pub use demo::{DemoSummary, seed_demo};
pub use error::{ConfigProblem, ConstraintKind, RowProblem, StoreError, ValidationProblem};
pub use feeds::{FeedOwner, FeedToken, create_feed, feed_for_token, revoke_feed, rotate_feed};
pub use migrate::{MIGRATIONS, Migration, MigrationReport, migrate};
pub use relay::{
    EntryFailure, EventPublisher, FailureKind, OutboundEvent, PublishError, RelayError, RelayOptions, RelayReport, relay_outbox,
};
pub use poll::{
    DueSource, FailureRecord, PollSuccess, SecretUrl, SuccessRecord, due_sources, record_failure, record_success,
    source_for_poll,
};
pub use policies::{delete_policy, get_policies, put_policy};
pub use rows::StoredException;
pub use rules::{
    Vacation, add_vacation, copy_weekday, delete_exception, delete_rule, list_exceptions, list_rules, put_rule,
    upsert_exception,
};
pub use sources::{
    CalendarUrl, ExternalSource, SourceStatus, UrlProblem, connect_ics, disconnect_ics, list_ics, resync_ics,
};

/// Result type of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
