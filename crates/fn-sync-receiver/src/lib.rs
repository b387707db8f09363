//! `fn-sync-receiver`: where Google (channel notifications) and Microsoft
//! Graph (change and lifecycle notifications, and the subscription
//! validation handshake) tell us a provider's calendar changed. One binary,
//! two Function URLs (`SYNC_SERVICE`).
//!
//! A receiver answers at once and holds nothing: no database, no key. It
//! reads the notification, hashes the secret it presents (Google's channel
//! token, Graph's `clientState`) and puts a [`SyncJob::Notify`] on the sync
//! queue; the worker believes it only if the hash is the stored one, so a
//! forged notification changes nothing. Its content is never believed
//! beyond "this calendar may have changed": the worker reads the calendar.

#![forbid(unsafe_code)]

use aws_lambda_events::http::HeaderValue;
use aws_lambda_events::http::header::{CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use aws_lambda_events::lambda_function_urls::{LambdaFunctionUrlRequest, LambdaFunctionUrlResponse};
use cal_aws::{ConfigError, Env};
use cal_sync::ServiceKind;
use cal_sync::google::{self, ResourceState};
use cal_sync::jobs::{JobQueue, NotifyEvent, QueueError, SyncJob, proof};
use cal_sync::microsoft::{self, LifecycleEvent, NotificationKind};

/// Which service this receiver listens to (`SYNC_SERVICE`: `google` or
/// `microsoft`; required).
pub fn service_from_env(env: &Env) -> Result<ServiceKind, ConfigError> {
    let text: String = env.required("SYNC_SERVICE")?;
    ServiceKind::parse(&text).ok_or_else(|| ConfigError::Invalid { name: "SYNC_SERVICE".into(), expected: "google or microsoft".into() })
}

/// What a receiver needs.
pub struct Deps<Q> {
    pub queue: Q,
    pub service: ServiceKind,
}

/// Handles one request to the receiver's Function URL. A queue that
/// refuses the job is a `503`, so the service delivers again.
pub async fn handle<Q: JobQueue>(deps: &Deps<Q>, req: LambdaFunctionUrlRequest) -> LambdaFunctionUrlResponse {
    let (response, queued) = match receive(deps, &req).await {
        Ok(done) => done,
        Err(e) => {
            tracing::error!(error = %e, "notification not queued; the service will deliver it again");
            (answer(503, None), 0)
        }
    };
    tracing::info!(service = deps.service.as_str(), status = response.status_code, queued, "notification");
    response
}

/// [`handle`] without the log line; also says how many jobs were queued.
pub async fn receive<Q: JobQueue>(deps: &Deps<Q>, req: &LambdaFunctionUrlRequest) -> Result<(LambdaFunctionUrlResponse, usize), QueueError> {
    let jobs = match deps.service {
        ServiceKind::Google => match google_job(req) {
            Ok(job) => job.into_iter().collect(),
            Err(status) => return Ok((answer(status, None), 0)),
        },
        ServiceKind::Microsoft => {
            if let Some(token) = req.raw_query_string.as_deref().and_then(microsoft::validation_echo) {
                return Ok((answer(200, Some(token)), 0));
            }
            match graph_jobs(req) {
                Ok(jobs) => jobs,
                Err(status) => return Ok((answer(status, None), 0)),
            }
        }
    };
    for job in &jobs {
        deps.queue.send(job).await?;
    }
    let status = if deps.service == ServiceKind::Microsoft { 202 } else { 200 };
    Ok((answer(status, None), jobs.len()))
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

/// Google: one notification per request, in headers (the body is empty).
/// The channel's first message (`sync`) says nothing changed: no job.
/// Not a notification at all: `400`.
fn google_job(req: &LambdaFunctionUrlRequest) -> Result<Option<SyncJob>, i64> {
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
    let note = google::notification(header).ok_or(400)?;
    if note.state == ResourceState::Sync {
        return Ok(None);
    }
    Ok(Some(SyncJob::Notify {
        watch_id: note.channel_id,
        proof: proof(note.token.as_ref().map_or("", |t| t.expose())),
        resource_id: Some(note.resource_id),
        event: NotifyEvent::Changed,
    }))
}

/// Graph: a batch of change and lifecycle notifications, one job per
/// subscription and meaning. Not a notification body: `400`.
fn graph_jobs(req: &LambdaFunctionUrlRequest) -> Result<Vec<SyncJob>, i64> {
    let body = match (&req.body, req.is_base64_encoded) {
        (Some(b), false) => b.clone().into_bytes(),
        (Some(b), true) => base64_decode(b).ok_or(400)?,
        (None, _) => return Err(400),
    };
    let list = microsoft::notifications(&body).map_err(|_| 400)?;
    let mut jobs: Vec<SyncJob> = Vec::new();
    for note in list {
        let event = match note.kind {
            NotificationKind::Change { .. } => NotifyEvent::Changed,
            NotificationKind::Lifecycle(LifecycleEvent::Missed) => NotifyEvent::Missed,
            // Renewing (a PATCH with a fresh token) reauthorizes; a removed
            // subscription is made anew by the same job, which then pulls.
            NotificationKind::Lifecycle(_) => NotifyEvent::Resubscribe,
        };
        let job = SyncJob::Notify {
            watch_id: note.subscription_id,
            proof: proof(note.client_state.as_deref().unwrap_or("")),
            resource_id: None,
            event,
        };
        if !jobs.contains(&job) {
            jobs.push(job);
        }
    }
    Ok(jobs)
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}
