//! `fn-sync-receiver`: where Google (channel notifications) and Microsoft
//! Graph (change and lifecycle notifications) tell us a provider's calendar
//! changed. One binary, two Function URLs (`SYNC_SERVICE`).
//!
//! A receiver answers fast and does no sync itself: it checks that the
//! notification names a channel / subscription of ours and carries its
//! secret (Google's channel token, Graph's `clientState`; only their
//! SHA-256 is stored), then puts a job on the sync queue. A notification
//! that fails the check changes nothing. Its content is never believed
//! beyond "this calendar may have changed": the worker reads the calendar.

#![forbid(unsafe_code)]

use aws_lambda_events::http::HeaderValue;
use aws_lambda_events::http::header::{CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use aws_lambda_events::lambda_function_urls::{LambdaFunctionUrlRequest, LambdaFunctionUrlResponse};
use cal_aws::{ConfigError, Env};
use cal_store::StoreError;
use cal_store::sync::{self, WatchOwner};
use cal_sync::google::{self, ResourceState};
use cal_sync::jobs::{JobQueue, SyncJob};
use cal_sync::microsoft::{self, LifecycleEvent, NotificationKind};
use cal_sync::{ServiceKind, oauth};
use deadpool_postgres::Pool;

/// Which service this receiver listens to (`SYNC_SERVICE`: `google` or
/// `microsoft`).
pub fn service_from_env(env: &Env) -> Result<ServiceKind, ConfigError> {
    env.parse_with("SYNC_SERVICE", ServiceKind::Google, |v| ServiceKind::parse(v).ok_or_else(|| "google or microsoft".to_owned()))
}

/// What a receiver needs.
pub struct Deps<Q> {
    pub pool: Pool,
    pub queue: Q,
    pub service: ServiceKind,
}

/// What became of one request, for the log and the tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// Jobs put on the queue.
    pub queued: Vec<SyncJob>,
    /// Notifications refused as forged (wrong or missing secret).
    pub forged: usize,
    /// Notifications for a channel we do not (or no longer) know.
    pub unknown: usize,
}

/// Handles one request to the receiver's Function URL: the answer, and a
/// log line of what was done (never a secret).
pub async fn handle<Q: JobQueue>(deps: &Deps<Q>, req: LambdaFunctionUrlRequest) -> LambdaFunctionUrlResponse {
    let (response, received) = receive(deps, &req).await;
    let response = response.unwrap_or_else(|e| {
        tracing::error!(error = %cal_core::error::ErrorChain(&e), "notification not handled; the service will retry");
        answer(503, None)
    });
    tracing::info!(
        service = deps.service.as_str(),
        status = response.status_code,
        queued = received.queued.len(),
        forged = received.forged,
        unknown = received.unknown,
        "notification"
    );
    response
}

/// [`handle`] without the log line, also returning what was done.
pub async fn receive<Q: JobQueue>(deps: &Deps<Q>, req: &LambdaFunctionUrlRequest) -> (Result<LambdaFunctionUrlResponse, ReceiveError>, Received) {
    let mut received = Received::default();
    let response = match deps.service {
        ServiceKind::Google => google_notification(deps, req, &mut received).await,
        ServiceKind::Microsoft => graph_notifications(deps, req, &mut received).await,
    };
    (response, received)
}

/// The store or the queue failed: the service is asked to retry (`503`).
#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] cal_sync::jobs::QueueError),
}

fn answer(status: i64, text: Option<String>) -> LambdaFunctionUrlResponse {
    let mut r = LambdaFunctionUrlResponse::default();
    r.status_code = status;
    r.headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if text.is_some() {
        r.headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    }
    r.body = text;
    r.is_base64_encoded = false;
    r
}

/// Constant-time equality of a presented secret's hash and the stored one.
fn secret_matches(presented: Option<&str>, stored_hash: &[u8]) -> bool {
    let Some(presented) = presented else { return false };
    let hash = oauth::secret_hash(presented);
    hash.len() == stored_hash.len() && hash.iter().zip(stored_hash).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

async fn owner<Q>(deps: &Deps<Q>, watch_id: &str) -> Result<Option<WatchOwner>, StoreError> {
    let db = deps.pool.get().await.map_err(StoreError::Pool)?;
    sync::watch_owner(&**db, watch_id).await
}

/// Google: one notification per request, in headers (the body is empty).
/// `200` for anything Google should not send again (including a channel we
/// no longer know, e.g. one just replaced: its `sync` message may even come
/// before we stored it); `400` for a request that is no notification;
/// `403` for a forged one.
async fn google_notification<Q: JobQueue>(
    deps: &Deps<Q>,
    req: &LambdaFunctionUrlRequest,
    received: &mut Received,
) -> Result<LambdaFunctionUrlResponse, ReceiveError> {
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    let Some(note) = google::notification(header) else { return Ok(answer(400, None)) };
    let Some(owner) = owner(deps, &note.channel_id).await? else {
        received.unknown += 1;
        return Ok(answer(200, None));
    };
    let resource_ok = owner.resource_id.as_deref().is_none_or(|r| r == note.resource_id);
    if !resource_ok || !secret_matches(note.token.as_ref().map(|t| t.expose()), &owner.secret_hash) {
        received.forged += 1;
        tracing::warn!(channel_id = %note.channel_id, "forged Google notification ignored");
        return Ok(answer(403, None));
    }
    if note.state != ResourceState::Sync {
        let job = SyncJob::Pull { connection_id: owner.connection_id, calendar_id: owner.calendar_id };
        deps.queue.send(&job).await?;
        received.queued.push(job);
    }
    Ok(answer(200, None))
}

/// Graph: the validation handshake (echo `validationToken` as text/plain),
/// or a batch of change and lifecycle notifications (`202`). Each is
/// believed only with its subscription's `clientState`.
async fn graph_notifications<Q: JobQueue>(
    deps: &Deps<Q>,
    req: &LambdaFunctionUrlRequest,
    received: &mut Received,
) -> Result<LambdaFunctionUrlResponse, ReceiveError> {
    if let Some(token) = req.raw_query_string.as_deref().and_then(microsoft::validation_echo) {
        return Ok(answer(200, Some(token)));
    }
    let body = match (&req.body, req.is_base64_encoded) {
        (Some(b), false) => b.clone().into_bytes(),
        (Some(b), true) => match base64_decode(b) {
            Some(bytes) => bytes,
            None => return Ok(answer(400, None)),
        },
        (None, _) => return Ok(answer(400, None)),
    };
    let Ok(list) = microsoft::notifications(&body) else { return Ok(answer(400, None)) };
    let mut jobs: Vec<SyncJob> = Vec::new();
    for note in list {
        let Some(owner) = owner(deps, &note.subscription_id).await? else {
            received.unknown += 1;
            continue;
        };
        if !note.client_state_matches(&owner.secret_hash) {
            received.forged += 1;
            tracing::warn!(subscription_id = %note.subscription_id, "forged Graph notification ignored");
            continue;
        }
        let (connection_id, calendar_id) = (owner.connection_id, owner.calendar_id);
        let job = match note.kind {
            NotificationKind::Change { .. } => SyncJob::Pull { connection_id, calendar_id },
            NotificationKind::Lifecycle(LifecycleEvent::Missed) => SyncJob::Resync { connection_id, calendar_id },
            // Renewing (a PATCH with a fresh token) reauthorizes; a removed
            // subscription is made anew by the same job, which then pulls.
            NotificationKind::Lifecycle(
                LifecycleEvent::ReauthorizationRequired | LifecycleEvent::SubscriptionRemoved | LifecycleEvent::Other(_),
            ) => SyncJob::Watch { connection_id, calendar_id },
        };
        if !jobs.contains(&job) {
            jobs.push(job);
        }
    }
    for job in jobs {
        deps.queue.send(&job).await?;
        received.queued.push(job);
    }
    Ok(answer(202, None))
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}
