//! Booking policies (SEMANTICS.md §8): one row per `(user_id, role_code)`
//! in `cal.booking_policy`, buffers and day/week limits.
//!
//! Inputs are `cal_core::BookingPolicy`, valid by construction (checked by
//! its `TryFrom<BookingPolicyInput>`); only the ids are checked here. Like
//! every change to what a slot query or a hold's check reads, a change bumps
//! the provider's version first and writes its outbox row
//! (`cal.policy.updated`) last, in one (sub-)transaction: a hold checked
//! against the old policy then loses its write (`create_hold`) and is
//! checked again against the new one.

use cal_core::BookingPolicy;
use serde_json::{Value, json};

use crate::db::{Begin, Executor};
use crate::error::StoreError;
use crate::outbox::{self, POLICY_UPDATED};
use crate::rows::{self, POLICY_COLUMNS};

/// An id as `cal_core::text::ID` allows it (see `rules`).
fn id(field: &'static str, value: &str) -> Result<(), StoreError> {
    cal_core::text::ID.check(value).map_err(|e| StoreError::validation(field, e))
}

/// The wire shape of a policy in event payloads: the DDL's column names, as
/// in `calctl slots --input`'s `policies`.
pub fn policy_json(p: &BookingPolicy) -> Value {
    json!({
        "user_id": p.user_id,
        "role_code": p.role_code,
        "timezone": p.timezone.name(),
        "buffer_before_min": p.buffer_before_min,
        "buffer_after_min": p.buffer_after_min,
        "max_per_day": p.max_per_day,
        "max_per_week": p.max_per_week,
    })
}

/// Sets the policy of `(policy.user_id, policy.role_code)`, replacing the
/// one it had. Returns the policy as stored.
pub async fn put_policy(db: &mut impl Begin, policy: &BookingPolicy) -> Result<BookingPolicy, StoreError> {
    id("user_id", &policy.user_id)?;
    id("role_code", &policy.role_code)?;
    let tx = db.begin().await?;
    let version = outbox::bump_version(&tx, &policy.user_id).await?;
    let limit = |v: Option<u32>| v.map(|n| i32::try_from(n).unwrap_or(i32::MAX));
    let sql = format!(
        "insert into cal.booking_policy as p (user_id, role_code, timezone, buffer_before_min, buffer_after_min,
                                              max_per_day, max_per_week)
         values ($1, $2, $3, $4, $5, $6, $7)
         on conflict (user_id, role_code) do update set
             timezone = excluded.timezone, buffer_before_min = excluded.buffer_before_min,
             buffer_after_min = excluded.buffer_after_min, max_per_day = excluded.max_per_day,
             max_per_week = excluded.max_per_week, updated_at = now()
         returning {POLICY_COLUMNS}"
    );
    // Buffers are at most cal_core::policy::MAX_BUFFER_MIN: they fit.
    let (before, after) = (policy.buffer_before_min as i32, policy.buffer_after_min as i32);
    let rows = tx
        .query(
            &sql,
            &[
                &policy.user_id,
                &policy.role_code,
                &policy.timezone.name(),
                &before,
                &after,
                &limit(policy.max_per_day),
                &limit(policy.max_per_week),
            ],
        )
        .await?;
    let stored = rows::policy(&rows[0])?;
    let payload = json!({
        "operation": "put",
        "user_id": stored.user_id,
        "role_code": stored.role_code,
        "version": version,
        "policy": policy_json(&stored),
    });
    outbox::enqueue(&tx, POLICY_UPDATED, &stored.user_id, &payload).await?;
    tx.commit().await?;
    Ok(stored)
}

/// The policies of `user_id`, every role, ordered by role.
pub async fn get_policies(db: &impl Executor, user_id: &str) -> Result<Vec<BookingPolicy>, StoreError> {
    let sql = format!("select {POLICY_COLUMNS} from cal.booking_policy where user_id = $1 order by role_code");
    db.query(&sql, &[&user_id]).await?.iter().map(rows::policy).collect()
}

/// Deletes the policy of `(user_id, role_code)`: from then on that role has
/// no buffers and no limits. [`StoreError::NotFound`] if there is none
/// (nothing is written then).
pub async fn delete_policy(db: &mut impl Begin, user_id: &str, role_code: &str) -> Result<(), StoreError> {
    let tx = db.begin().await?;
    let version = outbox::bump_version(&tx, user_id).await?;
    let deleted = tx
        .execute("delete from cal.booking_policy where user_id = $1 and role_code = $2", &[&user_id, &role_code])
        .await?;
    if deleted == 0 {
        return Err(StoreError::NotFound { entity: "booking_policy", id: format!("{user_id}/{role_code}") });
    }
    let payload = json!({
        "operation": "deleted",
        "user_id": user_id,
        "role_code": role_code,
        "version": version,
        "policy": null,
    });
    outbox::enqueue(&tx, POLICY_UPDATED, user_id, &payload).await?;
    tx.commit().await?;
    Ok(())
}
