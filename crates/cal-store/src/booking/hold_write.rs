//! The one conditional write of a hold (see `create_hold`): the record and
//! its ids made here, the statement chosen by its switches
//! ([`super::hold_sql`]), its outcome read back.

use cal_core::feasibility::HoldStatus;
use cal_core::holds::HoldRequest;
use cal_core::time::Instant;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::hold_sql::{HoldStatements, ProviderLock, WriteSwitches};
use super::policy::CustomerLimit;
use super::records::HoldRecord;
use crate::calendar::{CalendarParams, CalendarSnapshot};
use crate::db::Executor;
use crate::error::StoreError;

/// The write of a checked request, one statement: under the provider's lock
/// (tried, or queued for, as `locking` says), if its version is still
/// `version`, marks the `ran_out` holds expired (with their outbox rows),
/// inserts the hold with its outbox row and bumps the version; if the lock
/// was taken, it waits for its holder, so that what a loser reads next
/// shows the holder's work. With `loser_answer`, a write that finds the
/// version already moved brings the key and busy time over it with the
/// refusal. With a customer limit, it takes the customer's lock first and
/// writes only under the limit (see `hold_sql::write_sql`).
pub(super) async fn write_hold(
    db: &impl Executor,
    req: &HoldRequest,
    loser_answer: Option<&CalendarParams<'_>>,
    now: Instant,
    version: i64,
    ran_out: &[HoldRecord],
    locking: WriteLocking,
) -> Result<WriteOutcome, StoreError> {
    let created = HoldRecord {
        hold_id: format!("hld_{}", Uuid::new_v4().simple()),
        user_id: req.user_id.clone(),
        role_code: req.role_code.clone(),
        customer_id: req.customer_id.clone(),
        start: req.interval.start(),
        end: req.interval.end(),
        kind: req.kind,
        mode: req.mode,
        status: HoldStatus::Active,
        expires_at: req.expires_at(now),
        event_id: req.event_id.clone(),
        converted_event_id: None,
        idempotency_key: req.idempotency_key.clone(),
        request_fingerprint: req.fingerprint(),
        created_at: now,
    };
    let (start_at, end_at, expires_at, now_at) =
        (created.start.to_chrono(), created.end.to_chrono(), created.expires_at.to_chrono(), now.to_chrono());
    let ran_out_ids: Vec<&str> = ran_out.iter().map(|h| h.hold_id.as_str()).collect();
    let ran_out_payloads: Vec<serde_json::Value> =
        ran_out.iter().map(|h| HoldRecord { status: HoldStatus::Expired, ..h.clone() }.payload()).collect();
    // The outbox row's id, hyphenated (`$15::text::uuid`).
    let (payload, event_id) = (created.payload(), Uuid::new_v4().to_string());
    let (kind, mode) = (req.kind.as_str(), req.mode.as_str());
    let mut all: Vec<&(dyn ToSql + Sync)> = vec![
        &req.user_id,
        &req.role_code,
        &req.customer_id,
        &start_at,
        &end_at,
        &kind,
        &mode,
        &expires_at,
        &req.event_id,
        &req.idempotency_key,
        &created.request_fingerprint,
        &now_at,
        &version,
        &created.hold_id,
        &event_id,
        &payload,
    ];
    let mark_ran_out = !ran_out.is_empty();
    if mark_ran_out {
        all.extend_from_slice(&[&ran_out_ids, &ran_out_payloads]);
    }
    if let Some(params) = loser_answer {
        all.extend_from_slice(&params.range());
    }
    let limit = locking.customer_limit.map(|limit| (now.plus_secs(-limit.window_secs).to_chrono(), limit.max));
    if let Some((since, max)) = &limit {
        all.extend_from_slice(&[since, max]);
    }
    let switches = WriteSwitches {
        lock: if locking.queue_for_lock { ProviderLock::Queue } else { ProviderLock::Try },
        mark_ran_out,
        loser_answer: loser_answer.is_some(),
        customer_limit: limit.is_some(),
    };
    match db.query(HoldStatements::get().write(switches), &all).await {
        Ok(mut rows) => {
            let at = rows.iter().position(|r| r.get::<_, &str>("row_kind") == "w").expect("the outcome row");
            let outcome = rows.swap_remove(at);
            if let Some(version) = outcome.try_get::<_, Option<i64>>("new_version")? {
                return Ok(WriteOutcome::Created { hold: Box::new(HoldRecord::from_row(&outcome)?), version });
            }
            if let Some(limit) = locking.customer_limit
                && outcome.try_get::<_, Option<bool>>("allowed")? == Some(false)
            {
                return Ok(WriteOutcome::CustomerLimited(limit));
            }
            // Asked for an answer, and neither the lock nor a wait for it:
            // the version had moved, and the rest is the answer as of then.
            // (A write without an answer part returns no such rows: reading
            // its none as busy time would be an empty calendar.)
            let moved = loser_answer.is_some()
                && outcome.try_get::<_, Option<bool>>("got")? == Some(false)
                && outcome.try_get::<_, Option<bool>>("waited")? == Some(false);
            Ok(WriteOutcome::VersionMoved(if moved { Some(CalendarSnapshot::from_rows(rows)?) } else { None }))
        }
        // Lost all the same: the constraints fire only for a retry of this
        // request, or a writer that bypassed the lock; the key, then the
        // busy time, will say who.
        Err(e) => {
            let e = StoreError::from(e);
            if ["hold_no_overlap_ex", "hold_idempotency_uq"].iter().any(|c| e.violates(c)) { Ok(WriteOutcome::VersionMoved(None)) } else { Err(e) }
        }
    }
}

/// How [`write_hold`] locks: the provider's lock tried, or queued for if
/// `queue_for_lock`; before it, if `customer_limit`, the request's
/// customer's (whose holds it counts).
pub(super) struct WriteLocking {
    pub(super) queue_for_lock: bool,
    pub(super) customer_limit: Option<CustomerLimit>,
}

/// What [`write_hold`] did.
pub(super) enum WriteOutcome {
    /// Wrote the hold; the provider's version is now `version`.
    Created { hold: Box<HoldRecord>, version: i64 },
    /// Wrote nothing: the customer has reached the limit.
    CustomerLimited(CustomerLimit),
    /// Wrote nothing: another writer of the provider held its lock (this
    /// write waited for it to finish) or had changed the provider since the
    /// read (then, if the write was asked for a loser's answer, the key and
    /// busy time as of its statement's start). Also when the exclusion or
    /// key constraint fired: someone got there first all the same.
    VersionMoved(Option<CalendarSnapshot>),
}
