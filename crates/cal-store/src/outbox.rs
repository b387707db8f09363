//! The transactional outbox and the per-provider version counter.
//!
//! Both are written inside the caller's transaction: an event is published
//! only if the change it describes committed, and a cache keyed by the
//! version can never serve data older than a committed change.

use serde_json::Value;

use crate::db::Executor;
use crate::error::StoreError;

/// A weekly rule was created, changed or deleted.
pub const RULE_UPDATED: &str = "cal.rule.updated";
/// Exceptions were created, changed or deleted (vacations included).
pub const EXCEPTION_UPSERTED: &str = "cal.exception.upserted";

/// Appends a domain event; returns its `outbox_id` (the relay's order).
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
