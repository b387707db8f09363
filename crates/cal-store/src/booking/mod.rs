//! Holds and bookings (SEMANTICS.md §5) as store-backed services: the
//! resolvers, the jobs and calctl all call these functions.
//!
//! Every write happens in one transaction that starts with a per-provider
//! advisory lock, so one provider's bookings happen one after another; the
//! exclusion constraints of `migrations/0002` are the backstop that makes an
//! overlap impossible to store even if this code were wrong. Under the lock
//! the change is re-checked, written with its outbox row and the provider's
//! new version, and committed; a refusal rolls back: nothing is stored.
//! Confirming, releasing, rescheduling and cancelling read and re-check under
//! the lock; creating a hold, the hot path, reads and checks first and lets
//! its one-statement write re-check by the provider's version (see
//! [`create_hold`]); with a process's calendar cache it can skip the read
//! ([`create_hold_cached`]). A customer's hold limit is counted by that same
//! write, under a per-customer lock it takes before the provider's
//! ([`HoldPolicy`]).
//!
//! One responsibility per file:
//!
//! * `records`: holds and events as stored, row conversions, lookups by id;
//! * `policy`: what a caller may do ([`HoldPolicy`], [`CustomerLimit`]);
//! * `hold_create`: creating a hold, the optimistic read-check-write;
//! * `hold_write`: its one conditional write statement, run;
//! * `hold_sql`: the statements it runs, generated (golden files under
//!   `tests/golden/sql/`);
//! * `convert`: confirm, accept, decline, release, reschedule, cancel;
//! * `reschedule_candidates`: where an event could move;
//! * `sweep`: the sweeper;
//!
//! When a hold's time has run out is decided by `cal_core` alone
//! (`HoldStatus::at`; in SQL, `hold_ran_out_sql`).

mod convert;
mod hold_create;
mod hold_sql;
mod hold_write;
mod policy;
mod records;
mod reschedule_candidates;
mod sweep;

pub use convert::{accept_request, cancel_event, confirm_hold, decline_request, release_hold, reschedule_event};
pub use hold_create::{create_hold, create_hold_cached};
pub use policy::{CustomerLimit, HoldPolicy};
pub use records::{EventRecord, HoldRecord, get_event, get_hold};
pub use reschedule_candidates::reschedule_candidates;
pub use sweep::sweep_expired_holds;

pub(crate) use records::EVENT_RECORD;

/// `cal.hold.created`
pub const HOLD_CREATED: &str = "cal.hold.created";
/// `cal.hold.expired`
pub const HOLD_EXPIRED: &str = "cal.hold.expired";
/// `cal.hold.released`
pub const HOLD_RELEASED: &str = "cal.hold.released";
/// `cal.event.confirmed`
pub const EVENT_CONFIRMED: &str = "cal.event.confirmed";
/// `cal.event.rescheduled`
pub const EVENT_RESCHEDULED: &str = "cal.event.rescheduled";
/// `cal.event.cancelled`
pub const EVENT_CANCELLED: &str = "cal.event.cancelled";

/// Every statement booking assembles in code, each combination of its
/// switches: `(file name, what it is, statement)`, for the golden files
/// (`crate::golden_sql`).
#[cfg(test)]
pub(crate) fn golden_statements() -> Vec<(String, String, String)> {
    use hold_sql::{ENSURE_VERSION_SQL, HoldStatements, WriteSwitches};
    let sql = HoldStatements::get();
    let mut all = vec![
        (
            "calendar_load",
            "A provider's calendar for a slot query (load_calendar): version, rules, exceptions, busy time.",
            crate::calendar::load_sql().to_owned(),
        ),
        (
            "hold_first_read",
            "A hold's first read: version, rules, exceptions, the hold of the key $6 and, unless there is one, the busy time.",
            sql.first_read.clone(),
        ),
        (
            "hold_loser_read",
            "A losing hold's read: the hold of the key $6 and, unless there is one, the busy time.",
            sql.loser_read.clone(),
        ),
        (
            "hold_version_and_key",
            "The provider's version and the hold of the key $2, in one snapshot (checks a cached calendar).",
            sql.version_and_key.clone(),
        ),
        ("hold_ensure_version", "Creates a provider's version row (version 0) if it has none.", ENSURE_VERSION_SQL.to_owned()),
        ("hold_sweep", "The sweeper: marks up to $2 holds that ran out by $1 expired.", sweep::sweep_sql()),
    ]
    .into_iter()
    .map(|(name, description, sql)| (name.to_owned(), description.to_owned(), sql))
    .collect::<Vec<_>>();
    all.extend(WriteSwitches::all().map(|s| (s.name(), s.description(), sql.write(s).to_owned())));
    all
}
