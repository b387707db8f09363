//! `fn-sync-worker`: runs two-way sync's jobs from the sync queue (SQS),
//! one message at a time (SEMANTICS.md §11).
//!
//! * **Pull**: reads a blocking calendar from its stored token (or in full)
//!   and applies the read in one transaction; a failure keeps the last good
//!   busy time and says why in the connection's status.
//! * **Push**: brings one of our bookings into the provider's booking
//!   calendar as the event row says now (written, moved, or removed),
//!   idempotently; a write that fails for good is parked.
//! * **Watch**: sets up or renews the calendar's push channel (Google) or
//!   subscription (Graph), then pulls once so nothing the switch-over missed
//!   is lost.
//!
//! Jobs name what to bring up to date, not what changed, so duplicated,
//! late and reordered messages are harmless; a pull that loses a race to
//! another pull of the same calendar is dropped by the store.

#![forbid(unsafe_code)]

#[cfg(feature = "testing")]
pub mod testing;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use cal_aws::{ConfigError, Env};
use cal_core::time::Instant;
use cal_store::StoreError;
use cal_store::sync::{self, ConnectionGrant, ConnectionStatus, FailureKind, PushPlan, Pulled, PulledItem};
use cal_sync::jobs::{JobQueue, NotifyEvent, QueueError, SyncJob, TokenVault, VaultError, proof_matches};
use cal_sync::{CalendarService, ItemState, Secret, ServiceKind, Services, SyncError, WatchRequest, engine, oauth, with_service};
use deadpool_postgres::Pool;

/// How the worker paces itself. Every field has an environment variable
/// ([`Settings::from_env`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Seconds between periodic pulls of a calendar, the net under lost
    /// notifications (`SYNC_PERIODIC_SECS`, 900).
    pub periodic_secs: i64,
    /// Seconds a watch is asked to live (`SYNC_WATCH_SECS`, 6 days: under
    /// Graph's limit for event subscriptions and Google's default week).
    pub watch_secs: i64,
    /// Days before now a full read starts (`SYNC_PAST_DAYS`, 1).
    pub past_days: i64,
    /// The longest `Retry-After` waited for inside one invocation, seconds
    /// (`SYNC_MAX_INLINE_WAIT_SECS`, 10); a longer one is left to the queue.
    pub max_inline_wait_secs: u64,
    /// Deliveries of one push after which a retryable failure is parked
    /// (`SYNC_MAX_PUSH_ATTEMPTS`, 5, as the queue's redrive policy).
    pub max_push_attempts: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { periodic_secs: 900, watch_secs: 6 * 86_400, past_days: 1, max_inline_wait_secs: 10, max_push_attempts: 5 }
    }
}

impl Settings {
    /// Reads it; a bad value is refused, naming the variable.
    pub fn from_env(env: &Env) -> Result<Settings, ConfigError> {
        let d = Settings::default();
        Ok(Settings {
            periodic_secs: env.in_range("SYNC_PERIODIC_SECS", d.periodic_secs, 60..=86_400)?,
            watch_secs: env.in_range("SYNC_WATCH_SECS", d.watch_secs, 3_600..=7 * 86_400)?,
            past_days: env.in_range("SYNC_PAST_DAYS", d.past_days, 0..=31)?,
            max_inline_wait_secs: env.in_range("SYNC_MAX_INLINE_WAIT_SECS", d.max_inline_wait_secs as i64, 0..=60)? as u64,
            max_push_attempts: env.in_range("SYNC_MAX_PUSH_ATTEMPTS", d.max_push_attempts, 1..=100)?,
        })
    }
}

/// The receivers' URLs, where the services send notifications.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiverUrls {
    /// Google's channel address (`GOOGLE_RECEIVER_URL`).
    pub google: String,
    /// Graph's `notificationUrl` and `lifecycleNotificationUrl`
    /// (`GRAPH_RECEIVER_URL`; one receiver tells them apart by body).
    pub graph: String,
}

impl ReceiverUrls {
    /// Reads `GOOGLE_RECEIVER_URL` and `GRAPH_RECEIVER_URL`.
    pub fn from_env(env: &Env) -> Result<ReceiverUrls, ConfigError> {
        Ok(ReceiverUrls { google: env.required("GOOGLE_RECEIVER_URL")?, graph: env.required("GRAPH_RECEIVER_URL")? })
    }
}

/// The worker's configuration from the environment, read once.
pub struct Config {
    pub settings: Settings,
    pub receivers: ReceiverUrls,
    /// `SYNC_QUEUE_URL`.
    pub queue_url: String,
    /// `TOKEN_KMS_KEY_ID`.
    pub kms_key_id: String,
    /// `DB_POOL_SIZE`.
    pub pool_size: usize,
}

impl Config {
    /// Reads it; a bad value is refused, naming the variable.
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        Ok(Config {
            settings: Settings::from_env(env)?,
            receivers: ReceiverUrls::from_env(env)?,
            queue_url: cal_aws::sync_config::sync_queue_url(env)?,
            kms_key_id: cal_aws::sync_config::token_kms_key_id(env)?,
            pool_size: cal_aws::config::db_pool_size(env)?,
        })
    }
}

/// What a job needs. `G` and `M` are the Google and Graph clients (the
/// fakes' URLs in tests), `V` the token vault, `Q` the sync queue.
pub struct Deps<G, M, V, Q> {
    pub pool: Pool,
    pub services: Services<G, M>,
    pub vault: V,
    pub queue: Q,
    pub receivers: ReceiverUrls,
    pub settings: Settings,
    pub clock: Arc<dyn Fn() -> Instant + Send + Sync>,
    /// Access tokens of this process, by connection, with their expiry:
    /// a warm worker does not refresh for every job.
    access: Mutex<HashMap<String, (Secret, Instant)>>,
}

/// Why a job did not finish. A retryable one goes back to the queue.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a calendar service failed and the job will be retried: {0}")]
    Retry(SyncError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl<G: CalendarService, M: CalendarService, V: TokenVault, Q: JobQueue> Deps<G, M, V, Q> {
    pub fn new(
        pool: Pool,
        services: Services<G, M>,
        vault: V,
        queue: Q,
        receivers: ReceiverUrls,
        settings: Settings,
        clock: Arc<dyn Fn() -> Instant + Send + Sync>,
    ) -> Self {
        Deps { pool, services, vault, queue, receivers, settings, clock, access: Mutex::new(HashMap::new()) }
    }

    fn now(&self) -> Instant {
        (self.clock)()
    }

    /// Runs one job. `deliveries` is how often the queue has handed it out
    /// (SQS `ApproximateReceiveCount`).
    pub async fn run(&self, job: &SyncJob, deliveries: i64) -> Result<(), JobError> {
        match job {
            SyncJob::Pull { connection_id, calendar_id } => self.pull(connection_id, calendar_id, false).await,
            SyncJob::Resync { connection_id, calendar_id } => self.pull(connection_id, calendar_id, true).await,
            SyncJob::Push { event_id } => self.push(event_id, deliveries).await,
            SyncJob::Watch { connection_id, calendar_id } => self.watch(connection_id, calendar_id).await,
            SyncJob::Notify { watch_id, proof, resource_id, event } => {
                self.notified(watch_id, proof, resource_id.as_deref(), *event).await
            }
        }
    }

    /// A notification a receiver passed on: believed only if its proof is
    /// the hash of the stored secret (and, for Google, it names the stored
    /// resource), then run as the job it means. One for a channel we do not
    /// know (stopped, replaced, or its calendar no longer blocks) is dropped.
    async fn notified(&self, watch_id: &str, proof: &str, resource_id: Option<&str>, event: NotifyEvent) -> Result<(), JobError> {
        let Some(owner) = sync::watch_owner(&**self.db().await?, watch_id).await? else {
            tracing::info!(watch_id, "notification for an unknown channel dropped");
            return Ok(());
        };
        let resource_ok = match (resource_id, owner.resource_id.as_deref()) {
            (Some(given), Some(stored)) => given == stored,
            _ => true,
        };
        if !resource_ok || !proof_matches(proof, &owner.secret_hash) {
            tracing::warn!(watch_id, "forged notification dropped");
            return Ok(());
        }
        let (connection_id, calendar_id) = (owner.connection_id.as_str(), owner.calendar_id.as_str());
        match event {
            NotifyEvent::Changed => self.pull(connection_id, calendar_id, false).await,
            NotifyEvent::Missed => self.pull(connection_id, calendar_id, true).await,
            NotifyEvent::Resubscribe => self.watch(connection_id, calendar_id).await,
        }
    }

    async fn db(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(StoreError::Pool)
    }

    /// The connection, unless it is gone (disconnected: the job is moot).
    async fn grant(&self, connection_id: &str) -> Result<Option<ConnectionGrant>, StoreError> {
        match sync::grant(&**self.db().await?, connection_id).await {
            Ok(g) => Ok(Some(g)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A current access token: this process's, or a fresh one from the
    /// refresh token (a rotated refresh token is sealed and stored).
    async fn access<S: CalendarService>(&self, service: &S, grant: &ConnectionGrant) -> Result<Secret, SyncError> {
        let id = &grant.connection.connection_id;
        let now = self.now();
        if let Some((token, expires)) = self.access.lock().expect("access tokens").get(id)
            && *expires > now.plus_secs(60)
        {
            return Ok(token.clone());
        }
        let refresh = self.vault.open(id, &grant.token).await.map_err(vault_failure)?;
        let tokens = retrying(&self.settings, || service.refresh(&refresh)).await?;
        if let Some(rotated) = tokens.refresh_token.as_ref().filter(|r| **r != refresh) {
            let sealed = self.vault.seal(id, rotated).await.map_err(vault_failure)?;
            let db = self.db().await.map_err(|e| SyncError::Transient(e.to_string()))?;
            sync::replace_token(&**db, id, &sealed).await.map_err(|e| SyncError::Transient(e.to_string()))?;
        }
        self.access.lock().expect("access tokens").insert(id.clone(), (tokens.access_token.clone(), tokens.expires_at));
        Ok(tokens.access_token)
    }

    /// Runs `call` with an access token. One the service refuses (`401`:
    /// expired early or revoked) is dropped and the call tried once more
    /// with a fresh one; a refused refresh, or a fresh token refused too,
    /// means the grant is gone ([`SyncError::Reauth`]).
    async fn authorized<S, T, F, Fut>(&self, service: &S, grant: &ConnectionGrant, call: F) -> Result<T, SyncError>
    where
        S: CalendarService,
        F: Fn(Secret) -> Fut,
        Fut: Future<Output = Result<T, SyncError>>,
    {
        let token = self.access(service, grant).await?;
        match retrying(&self.settings, || call(token.clone())).await {
            Err(SyncError::Unauthorized(_)) => {
                self.access.lock().expect("access tokens").remove(&grant.connection.connection_id);
                let token = self.access(service, grant).await?;
                match retrying(&self.settings, || call(token.clone())).await {
                    // A fresh token refused too: the grant is gone.
                    Err(SyncError::Unauthorized(why)) => Err(SyncError::Reauth(why)),
                    other => other,
                }
            }
            other => other,
        }
    }

    async fn pull(&self, connection_id: &str, calendar_id: &str, full: bool) -> Result<(), JobError> {
        let Some(grant) = self.grant(connection_id).await? else { return Ok(()) };
        if grant.connection.status == ConnectionStatus::NeedsReauth {
            return Ok(());
        }
        let state = sync::pull_state(&**self.db().await?, connection_id, calendar_id).await?;
        if !state.blocks {
            return Ok(());
        }
        let now = self.now();
        let horizon = (now.plus_secs(-self.settings.past_days * 86_400), now.plus_secs(i64::from(state.horizon_days) * 86_400));
        let token = if full { None } else { state.sync_token.as_deref() };
        let read = with_service!(self.services, grant.connection.service, |s| {
            self.authorized(s, &grant, |access| async move { engine::sync_calendar(s, &access, calendar_id, token, horizon).await })
                .await
        });
        let run = match read {
            Ok(run) => run,
            Err(e) => return self.pull_failed(connection_id, Some(calendar_id), e).await,
        };
        let items = run
            .items
            .into_iter()
            .map(|i| PulledItem {
                busy: match i.state {
                    ItemState::Blocks(span) => span.interval(state.zone),
                    ItemState::Free | ItemState::Removed => None,
                },
                item_id: i.id,
                ours: i.ours,
            })
            .collect();
        let pulled = Pulled { started_from: state.sync_token, items, token: run.token, full: run.full };
        let next = now.plus_secs(self.settings.periodic_secs);
        let applied = sync::apply_pull(&mut self.db().await?, connection_id, calendar_id, &pulled, next).await?;
        tracing::info!(connection_id, calendar_id, full = pulled.full, applied = applied.applied, changed = applied.changed, "calendar pulled");
        for event_id in applied.restore {
            self.queue.send(&SyncJob::Push { event_id }).await?;
        }
        Ok(())
    }

    /// Records a failed pull; the calendar keeps its busy time. The job is
    /// done either way: the periodic pull (at the recorded retry time, or
    /// after `Retry-After`) tries again, and a grant that is gone waits for
    /// the provider to connect again.
    async fn pull_failed(&self, connection_id: &str, calendar_id: Option<&str>, e: SyncError) -> Result<(), JobError> {
        let now = self.now();
        let (kind, retry_at) = match &e {
            SyncError::Reauth(_) => (FailureKind::Reauth, now.plus_secs(self.settings.periodic_secs)),
            SyncError::RateLimited(wait) => (FailureKind::Other, now.plus_secs(wait.as_secs().max(1) as i64)),
            _ => (FailureKind::Other, now.plus_secs(60)),
        };
        tracing::warn!(connection_id, calendar_id, error = %e, "sync failed; last good busy time kept");
        if kind == FailureKind::Reauth {
            cal_aws::emit_metric(&cal_aws::metrics::function_name("fn-sync-worker"), "SyncReauthRequired", 1);
        }
        sync::record_pull_failure(&mut self.db().await?, connection_id, calendar_id, kind, &e.to_string(), retry_at).await?;
        Ok(())
    }

    async fn push(&self, event_id: &str, deliveries: i64) -> Result<(), JobError> {
        let plan = match sync::push_plan(&**self.db().await?, event_id).await {
            Err(StoreError::NotFound { .. }) => return Ok(()),
            other => other?,
        };
        let (connection_id, calendar_id) = match &plan {
            PushPlan::Nothing => return Ok(()),
            PushPlan::Put { connection_id, calendar_id, .. } | PushPlan::Delete { connection_id, calendar_id, .. } => {
                (connection_id.as_str(), calendar_id.as_str())
            }
        };
        let Some(grant) = self.grant(connection_id).await? else { return Ok(()) };
        let db = self.db().await?;
        if grant.connection.status == ConnectionStatus::NeedsReauth {
            // Pushed again when the provider connects again.
            sync::record_push_failure(&**db, event_id, connection_id, calendar_id, "the connection needs a new consent", false).await?;
            return Ok(());
        }
        let written = with_service!(self.services, grant.connection.service, |s| {
            self.authorized(s, &grant, |access| {
                let plan = &plan;
                async move {
                    match plan {
                        PushPlan::Put { item_id, event, sequence, .. } => {
                            let item = engine::write_booking(s, &access, calendar_id, item_id.as_deref(), event).await?;
                            Ok((item, *sequence, false))
                        }
                        PushPlan::Delete { item_id, event, sequence, .. } => {
                            // A create whose answer was lost: find its item first.
                            let item = match item_id {
                                Some(i) => i.clone(),
                                None => s.put_event(&access, calendar_id, None, event).await?,
                            };
                            s.delete_event(&access, calendar_id, &item).await?;
                            Ok((item, *sequence, true))
                        }
                        PushPlan::Nothing => unreachable!("handled above"),
                    }
                }
            })
            .await
        });
        match written {
            Ok((item, sequence, removed)) => {
                sync::record_push(&**db, event_id, connection_id, calendar_id, Some(&item), sequence, removed).await?;
                tracing::info!(event_id, connection_id, removed, "booking pushed");
                Ok(())
            }
            Err(SyncError::Reauth(why)) => {
                sync::record_push_failure(&**db, event_id, connection_id, calendar_id, &why, false).await?;
                drop(db);
                self.pull_failed(connection_id, None, SyncError::Reauth(why)).await
            }
            Err(e) if e.is_retryable() && deliveries < self.settings.max_push_attempts => {
                sync::record_push_failure(&**db, event_id, connection_id, calendar_id, &e.to_string(), false).await?;
                Err(JobError::Retry(e))
            }
            Err(e) => {
                tracing::error!(event_id, connection_id, error = %e, "booking push failed for good; parked");
                sync::record_push_failure(&**db, event_id, connection_id, calendar_id, &e.to_string(), true).await?;
                cal_aws::emit_metric(&cal_aws::metrics::function_name("fn-sync-worker"), "SyncWriteParked", 1);
                Ok(())
            }
        }
    }

    async fn watch(&self, connection_id: &str, calendar_id: &str) -> Result<(), JobError> {
        let Some(grant) = self.grant(connection_id).await? else { return Ok(()) };
        if grant.connection.status == ConnectionStatus::NeedsReauth {
            return Ok(());
        }
        let old = sync::current_watch(&**self.db().await?, connection_id, calendar_id).await?;
        let service = grant.connection.service;
        let request = WatchRequest {
            channel_id: format!("ch_{}", uuid::Uuid::new_v4().simple()),
            secret: oauth::random_secret(),
            address: match service {
                ServiceKind::Google => self.receivers.google.clone(),
                ServiceKind::Microsoft => self.receivers.graph.clone(),
            },
            lifecycle_address: (service == ServiceKind::Microsoft).then(|| self.receivers.graph.clone()),
            expires_at: self.now().plus_secs(self.settings.watch_secs),
        };
        let granted = with_service!(self.services, service, |s| {
            self.authorized(s, &grant, |access| {
                let (old, request) = (&old, &request);
                async move {
                    match old {
                        Some(old) => match s.renew(&access, calendar_id, old, request).await {
                            Err(SyncError::NotFound) => s.watch(&access, calendar_id, request).await,
                            other => other,
                        },
                        None => s.watch(&access, calendar_id, request).await,
                    }
                }
            })
            .await
        });
        let granted = match granted {
            Ok(w) => w,
            Err(e) => return self.pull_failed(connection_id, Some(calendar_id), e).await,
        };
        let kept_secret = old.as_ref().is_some_and(|o| o.id == granted.id);
        let hash = (!kept_secret).then(|| oauth::secret_hash(request.secret.expose()));
        sync::record_watch(&**self.db().await?, connection_id, calendar_id, &granted, hash.as_deref()).await?;
        tracing::info!(connection_id, calendar_id, expires_at = %granted.expires_at, renewed = old.is_some(), "watch set");
        // Whatever changed while no channel was recognised is read now.
        self.queue.send(&SyncJob::Pull { connection_id: connection_id.into(), calendar_id: calendar_id.into() }).await?;
        Ok(())
    }

    /// The Lambda handler: each SQS record is one job; a record whose job
    /// must be retried is reported as a batch item failure (the queue hands
    /// it out again, and after its redrive count to the DLQ). A record that
    /// is not a job is logged and dropped: retrying cannot mend it.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut failures = Vec::new();
        for record in event.records {
            let id = record.message_id.clone().unwrap_or_default();
            let deliveries = record.attributes.get("ApproximateReceiveCount").and_then(|v| v.parse().ok()).unwrap_or(1);
            let job: SyncJob = match record.body.as_deref().map(serde_json::from_str) {
                Some(Ok(job)) => job,
                _ => {
                    tracing::error!(message_id = %id, "not a sync job; dropped");
                    continue;
                }
            };
            if let Err(e) = self.run(&job, deliveries).await {
                tracing::warn!(message_id = %id, ?job, error = %cal_core::error::ErrorChain(&e), "job failed; retried");
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                failures.push(failure);
            }
        }
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = failures;
        response
    }
}

/// A vault failure as a sync failure: a token that does not open is as good
/// as revoked; a key service that fails may pass.
fn vault_failure(e: VaultError) -> SyncError {
    match e {
        VaultError::Corrupt => SyncError::Reauth(e.to_string()),
        VaultError::Kms(_) => SyncError::Transient(e.to_string()),
    }
}

/// Runs `call`, waiting out a short `Retry-After` (at most
/// `max_inline_wait_secs`, three times) and a transient fault (twice, one
/// second apart) inside the invocation; anything longer goes back to the
/// caller (and the queue).
async fn retrying<T, F, Fut>(settings: &Settings, call: F) -> Result<T, SyncError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, SyncError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match call().await {
            Err(SyncError::RateLimited(wait)) if attempt <= 3 && wait.as_secs() <= settings.max_inline_wait_secs => {
                tokio::time::sleep(wait).await;
            }
            Err(SyncError::Transient(_)) if attempt <= 2 => tokio::time::sleep(Duration::from_secs(1)).await,
            other => return other,
        }
    }
}
