//! The transactional outbox and the per-provider version counter.
//!
//! Both are written inside the caller's transaction: an event is published
//! only if the change it describes committed, and a cache keyed by the
//! version can never serve data older than a committed change.
//!
//! A payload carries ids and bounded fields (times, kinds, counts, a cut
//! error text), never free text a user typed (an exception's note, a
//! calendar's label, an idempotency key): a consumer that wants those reads
//! them by id. Every row is also bounded by the database:
//! [`MAX_ROW_BYTES`].

use serde_json::Value;

use crate::db::Executor;
use crate::error::StoreError;

/// A weekly rule was created, changed or deleted.
pub const RULE_UPDATED: &str = "cal.rule.updated";
/// A booking policy (SEMANTICS.md §8) was set or deleted.
pub const POLICY_UPDATED: &str = "cal.policy.updated";
/// Exceptions were created, changed or deleted (vacations included).
pub const EXCEPTION_UPSERTED: &str = "cal.exception.upserted";

/// The most a pending outbox row may hold: bytes of its event type, user id
/// and payload (as `jsonb` text). The check `outbox_size_ck`
/// (migrations/0005) refuses a larger row when it is written, so its
/// transaction fails instead of leaving an event no relay can send: a
/// quarter of the 256 KB PutEvents entry limit, which leaves room for the
/// detail's envelope and lets a put carry four such entries.
pub const MAX_ROW_BYTES: usize = 64 * 1024;

/// Appends a domain event; returns its `outbox_id` (the relay's order).
/// A row over [`MAX_ROW_BYTES`] is refused ([`StoreError::Constraint`]
/// `outbox_size_ck`).
pub async fn enqueue(db: &impl Executor, event_type: &str, user_id: &str, payload: &Value) -> Result<i64, StoreError> {
    let rows = db
        .query(
            "insert into cal.outbox (event_type, user_id, payload) values ($1, $2, $3) returning outbox_id",
            &[&event_type, &user_id, payload],
        )
        .await?;
    Ok(rows[0].get(0))
}

/// Increments `user_id`'s version and returns the new value (1 for a new
/// provider).
///
/// Call it first in a writing transaction: it locks the provider's counter
/// row, so one provider's writers run one after the other and their outbox
/// rows are numbered in commit order.
pub async fn bump_version(db: &impl Executor, user_id: &str) -> Result<i64, StoreError> {
    let rows = db.query(BUMP_VERSION_SQL, &[&user_id]).await?;
    Ok(rows[0].get(0))
}

/// [`bump_version`]'s statement (`$1` the user), for a caller that folds it
/// into a larger one.
pub(crate) const BUMP_VERSION_SQL: &str = "insert into cal.provider_version as pv (user_id, version) values ($1, 1)
     on conflict (user_id) do update set version = pv.version + 1, updated_at = now()
     returning version";

/// `user_id`'s current version (0 if nothing was ever written).
pub async fn version(db: &impl Executor, user_id: &str) -> Result<i64, StoreError> {
    let rows = db.query("select version from cal.provider_version where user_id = $1", &[&user_id]).await?;
    Ok(rows.first().map_or(0, |r| r.get(0)))
}
