//! Idempotency records for mutating handlers, with the semantics of AWS
//! Lambda Powertools' idempotency utility:
//!
//! * a record per idempotency key: `status` `INPROGRESS` or `COMPLETED`, the
//!   SHA-256 of the request payload, the response once completed;
//! * `expires_at` (epoch seconds, the table's TTL attribute) ends the record;
//!   `in_progress_expires_at` (epoch milliseconds) is when an `INPROGRESS`
//!   record is considered abandoned: the invocation's deadline, taken from
//!   the Lambda's remaining time, so a crashed invocation does not block
//!   retries for the whole TTL;
//! * the record is claimed with a conditional put — the key does not exist,
//!   or the record expired, or it is an abandoned `INPROGRESS` — that returns
//!   the existing item (`ALL_OLD`) when it fails, so the loser learns why in
//!   the same round trip;
//! * a different payload under the same key is `IDEMPOTENCY_MISMATCH`, a
//!   completed one returns the stored response, a live in-progress one is
//!   `IDEMPOTENCY_IN_PROGRESS`;
//! * when the handler fails the record is deleted, so a retry can run.

use std::future::Future;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use cal_core::ErrorType;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::cache::{KEY_ATTRIBUTE, TTL_ATTRIBUTE, number, string};
use crate::error::AwsError;

const STATUS_IN_PROGRESS: &str = "INPROGRESS";
const STATUS_COMPLETED: &str = "COMPLETED";

/// What a claim found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The record is ours (`INPROGRESS`): run the handler.
    Claimed,
    /// The same request completed before: its response.
    Completed(Value),
}

/// Why a request may not run now.
#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    /// The key was used with a different payload.
    #[error("this idempotency key was already used with a different request")]
    Mismatch,
    /// The same request is running elsewhere; retry later.
    #[error("the same request is already in progress")]
    InProgress,
    /// The store failed.
    #[error("idempotency store unavailable")]
    Store(#[source] AwsError),
}

impl IdempotencyError {
    /// The stable error type for callers.
    pub fn error_type(&self) -> ErrorType {
        match self {
            IdempotencyError::Mismatch => ErrorType::IdempotencyMismatch,
            IdempotencyError::InProgress => ErrorType::IdempotencyInProgress,
            IdempotencyError::Store(_) => ErrorType::Internal,
        }
    }
}

/// The times of a claim, epoch based.
#[derive(Clone, Copy, Debug)]
pub struct ClaimTimes {
    /// Now, epoch milliseconds.
    pub now_ms: i64,
    /// When an in-progress record is abandoned, epoch milliseconds.
    pub in_progress_until_ms: i64,
    /// When the record expires, epoch seconds.
    pub expires_at: i64,
}

/// Keeps idempotency records: one capability.
pub trait IdempotencyStore: Sync {
    /// Claims `key` for a request with `payload_hash` (see the module doc).
    fn claim(&self, key: &str, payload_hash: &str, times: ClaimTimes)
    -> impl Future<Output = Result<Claim, IdempotencyError>> + Send;
    /// Stores the response of a claimed key and marks it `COMPLETED`.
    fn complete(&self, key: &str, payload_hash: &str, response: &Value, expires_at: i64)
    -> impl Future<Output = Result<(), AwsError>> + Send;
    /// Deletes the record (the handler failed: let a retry run).
    fn release(&self, key: &str) -> impl Future<Output = Result<(), AwsError>> + Send;
}

/// [`IdempotencyStore`] on a DynamoDB table (`id` string key, TTL on
/// `expires_at`).
#[derive(Clone, Debug)]
pub struct DynamoIdempotencyStore {
    client: Client,
    table: String,
}

impl DynamoIdempotencyStore {
    /// Records in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoIdempotencyStore { client, table: table.into() }
    }
}

impl IdempotencyStore for DynamoIdempotencyStore {
    async fn claim(&self, key: &str, payload_hash: &str, times: ClaimTimes) -> Result<Claim, IdempotencyError> {
        let now_s = times.now_ms.div_euclid(1000);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(KEY_ATTRIBUTE, AttributeValue::S(key.to_owned()))
            .item("status", AttributeValue::S(STATUS_IN_PROGRESS.into()))
            .item("payload_hash", AttributeValue::S(payload_hash.to_owned()))
            .item(TTL_ATTRIBUTE, AttributeValue::N(times.expires_at.to_string()))
            .item("in_progress_expires_at", AttributeValue::N(times.in_progress_until_ms.to_string()))
            .condition_expression(
                "attribute_not_exists(#id) OR #exp < :now OR (#status = :inprogress AND #ipexp < :now_ms)",
            )
            .expression_attribute_names("#id", KEY_ATTRIBUTE)
            .expression_attribute_names("#exp", TTL_ATTRIBUTE)
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#ipexp", "in_progress_expires_at")
            .expression_attribute_values(":now", AttributeValue::N(now_s.to_string()))
            .expression_attribute_values(":now_ms", AttributeValue::N(times.now_ms.to_string()))
            .expression_attribute_values(":inprogress", AttributeValue::S(STATUS_IN_PROGRESS.into()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let err = match result {
            Ok(_) => return Ok(Claim::Claimed),
            Err(e) => e,
        };
        let old = match err.as_service_error() {
            Some(PutItemError::ConditionalCheckFailedException(ccf)) => ccf.item().cloned(),
            _ => return Err(IdempotencyError::Store(AwsError::call("PutItem", &self.table, err))),
        };
        // ALL_OLD should carry the item; read it if a store left it out.
        let old = match old {
            Some(item) => item,
            None => self
                .client
                .get_item()
                .table_name(&self.table)
                .key(KEY_ATTRIBUTE, AttributeValue::S(key.to_owned()))
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| IdempotencyError::Store(AwsError::call("GetItem", &self.table, e)))?
                .item
                // Deleted in between (its handler failed): a retry may claim it.
                .ok_or(IdempotencyError::InProgress)?,
        };
        let corrupt = |attribute| {
            IdempotencyError::Store(AwsError::Corrupt { table: self.table.clone(), key: key.to_owned(), attribute })
        };
        if string(&old, "payload_hash").ok_or_else(|| corrupt("payload_hash"))? != payload_hash {
            return Err(IdempotencyError::Mismatch);
        }
        match string(&old, "status").as_deref() {
            Some(STATUS_COMPLETED) => {
                let text = string(&old, "response").ok_or_else(|| corrupt("response"))?;
                Ok(Claim::Completed(serde_json::from_str(&text).map_err(|_| corrupt("response"))?))
            }
            Some(STATUS_IN_PROGRESS) => {
                let _ = number(&old, "in_progress_expires_at");
                Err(IdempotencyError::InProgress)
            }
            _ => Err(corrupt("status")),
        }
    }

    async fn complete(&self, key: &str, payload_hash: &str, response: &Value, expires_at: i64) -> Result<(), AwsError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(KEY_ATTRIBUTE, AttributeValue::S(key.to_owned()))
            .item("status", AttributeValue::S(STATUS_COMPLETED.into()))
            .item("payload_hash", AttributeValue::S(payload_hash.to_owned()))
            .item("response", AttributeValue::S(response.to_string()))
            .item(TTL_ATTRIBUTE, AttributeValue::N(expires_at.to_string()))
            .send()
            .await
            .map_err(|e| AwsError::call("PutItem", &self.table, e))?;
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), AwsError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(KEY_ATTRIBUTE, AttributeValue::S(key.to_owned()))
            .send()
            .await
            .map_err(|e| AwsError::call("DeleteItem", &self.table, e))?;
        Ok(())
    }
}

/// SHA-256 (hex) of the payload's JSON text. serde_json's maps are sorted
/// by key (no `preserve_order`), so equal values hash equally whatever the
/// key order of the request.
pub fn payload_hash(payload: &Value) -> String {
    let digest = Sha256::digest(payload.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// How a guarded run went wrong.
#[derive(Debug, thiserror::Error)]
pub enum RunError<E: std::error::Error + 'static> {
    /// The request may not run (mismatch, in progress, store down).
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    /// The handler failed; its record was deleted.
    #[error(transparent)]
    Handler(E),
}

/// The settings of one guarded call.
#[derive(Clone, Copy, Debug)]
pub struct Idempotent {
    /// How long a completed record answers retries.
    pub expires_after: Duration,
    /// Now, epoch milliseconds.
    pub now_ms: i64,
    /// The invocation's remaining time (`deadline - now`).
    pub remaining: Duration,
}

impl Idempotent {
    /// Runs `handler` at most once per `key` and payload: claims the key,
    /// runs, stores the response; returns a completed request's stored
    /// response without running.
    pub async fn run<S, F, Fut, E>(&self, store: &S, key: &str, payload: &Value, handler: F) -> Result<Value, RunError<E>>
    where
        S: IdempotencyStore,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Value, E>>,
        E: std::error::Error + 'static,
    {
        let hash = payload_hash(payload);
        let expires_at = self.now_ms.div_euclid(1000) + self.expires_after.as_secs() as i64;
        let times = ClaimTimes {
            now_ms: self.now_ms,
            in_progress_until_ms: self.now_ms + self.remaining.as_millis() as i64,
            expires_at,
        };
        match store.claim(key, &hash, times).await? {
            Claim::Completed(response) => return Ok(response),
            Claim::Claimed => {}
        }
        match handler().await {
            Ok(response) => {
                // The work is done: if recording it fails, a retry re-runs
                // a handler that must itself be idempotent (ours are).
                if let Err(e) = store.complete(key, &hash, &response, expires_at).await {
                    tracing::warn!(error = %e, key, "idempotency record not completed");
                }
                Ok(response)
            }
            Err(e) => {
                if let Err(d) = store.release(key).await {
                    tracing::warn!(error = %d, key, "idempotency record not deleted; it expires with the invocation");
                }
                Err(RunError::Handler(e))
            }
        }
    }
}
