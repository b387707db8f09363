//! The GraphQL fields of booking policies (SEMANTICS.md §8): a provider's
//! buffers and day/week limits per role, listed, set and deleted by the
//! provider (own) or an admin. Enforcing them is the slot engine's and the
//! hold's write's (`cal_store::create_hold`), not this module's.

use cal_core::BookingPolicy;
use cal_core::policy::BookingPolicyInput;
use cal_core::text::Id;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::args::{args, refused, require};
use crate::error::ApiError;
use crate::{Caller, Field};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserArgs {
    user_id: Id,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleArgs {
    user_id: Id,
    role_code: Id,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutArgs {
    user_id: Id,
    input: PolicyInputArgs,
}

/// `BookingPolicyInput` of the schema: values as their GraphQL types, checked
/// by cal-core's one policy check.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyInputArgs {
    role_code: Id,
    timezone: String,
    buffer_before_min: Option<i64>,
    buffer_after_min: Option<i64>,
    max_per_day: Option<i64>,
    max_per_week: Option<i64>,
}

/// The input as cal-core's one policy check (`BookingPolicy::try_from`)
/// reads it; a refusal names its argument (`input.bufferBeforeMin`).
fn booking_policy(user_id: &str, p: &PolicyInputArgs) -> Result<BookingPolicy, ApiError> {
    BookingPolicy::try_from(BookingPolicyInput {
        user_id,
        role_code: &p.role_code,
        timezone: &p.timezone,
        buffer_before_min: p.buffer_before_min,
        buffer_after_min: p.buffer_after_min,
        max_per_day: p.max_per_day,
        max_per_week: p.max_per_week,
    })
    .map_err(refused)
}

/// The GraphQL shape of a policy (`BookingPolicy`).
pub fn policy(p: &BookingPolicy) -> Value {
    json!({
        "userId": p.user_id, "roleCode": p.role_code, "timezone": p.timezone.name(),
        "bufferBeforeMin": p.buffer_before_min, "bufferAfterMin": p.buffer_after_min,
        "maxPerDay": p.max_per_day, "maxPerWeek": p.max_per_week,
    })
}

/// One of the policy fields.
pub(crate) async fn dispatch(caller: &Caller, field: Field, raw: Value, db: &mut deadpool_postgres::Object) -> Result<Value, ApiError> {
    match field {
        Field::BookingPolicies => {
            let a: UserArgs = args(raw)?;
            require(caller.may_manage(&a.user_id))?;
            let list = cal_store::get_policies(&***db, &a.user_id).await?;
            Ok(json!(list.iter().map(policy).collect::<Vec<_>>()))
        }
        Field::PutBookingPolicy => {
            let a: PutArgs = args(raw)?;
            require(caller.may_manage(&a.user_id))?;
            let p = booking_policy(&a.user_id, &a.input)?;
            let stored = cal_store::put_policy(&mut ***db, &p).await.map_err(|e| ApiError::from_store(e, "input."))?;
            Ok(policy(&stored))
        }
        Field::DeleteBookingPolicy => {
            let a: RoleArgs = args(raw)?;
            require(caller.may_manage(&a.user_id))?;
            cal_store::delete_policy(&mut ***db, &a.user_id, &a.role_code).await?;
            Ok(json!(true))
        }
        other => unreachable!("{other:?} is not a booking policy field"),
    }
}
