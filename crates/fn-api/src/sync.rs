//! The GraphQL fields of two-way sync (SEMANTICS.md §11): start a connect,
//! list connections with their status, choose how a calendar is used,
//! resync, disconnect. The OAuth redirect itself is `fn-sync-callback`'s;
//! the reading and writing is `fn-sync-worker`'s.
//!
//! Nothing here returns or logs a token: a connection shows its account,
//! status, last sync and last error (which never holds a secret).

use std::sync::Arc;

use cal_core::ErrorType;
use cal_core::text::Id;
use cal_store::sync::{self, CalendarUse, Connection};
use cal_sync::google::Google;
use cal_sync::jobs::{AnyQueue, AnyVault, JobQueue, SyncJob};
use cal_sync::microsoft::Graph;
use cal_sync::oauth::{self, StateKey};
use cal_sync::{CalendarService, ServiceKind, Services, with_service};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::args::{args, require};
use crate::{Caller, Deps, Field};

/// Most future bookings pushed into a newly chosen booking calendar.
const MAX_BACKFILL: i64 = 1000;

/// What the sync fields need (all from `SYNC_*` configuration).
pub struct SyncDeps {
    /// Both services' clients; their redirect URI is `SYNC_CALLBACK_URL`.
    pub services: Services<Google, Graph>,
    /// Signs `state` (from the sync secret).
    pub state_key: StateKey,
    /// Opens a sealed refresh token to revoke it on disconnect (KMS).
    pub vault: Arc<dyn AnyVault>,
    /// The sync queue (SQS): resyncs, the first sync of a chosen calendar.
    pub queue: Arc<dyn AnyQueue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartArgs {
    user_id: Id,
    service: ServiceKind,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConnectionArgs {
    user_id: Id,
    connection_id: Id,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CalendarUseArgs {
    user_id: Id,
    connection_id: Id,
    calendar_id: String,
    blocks: bool,
    receives_bookings: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserArgs {
    user_id: Id,
}

/// The GraphQL shape of a connection.
pub fn connection(c: &Connection) -> Value {
    json!({
        "connectionId": c.connection_id, "userId": c.user_id,
        "service": c.service.as_str().to_ascii_uppercase(), "account": c.account,
        "status": c.status.as_str().to_ascii_uppercase(), "lastSyncAt": c.last_sync_at, "lastError": c.last_error,
        "calendars": c.calendars.iter().map(|k| json!({
            "calendarId": k.calendar_id, "name": k.name, "writable": k.writable, "blocks": k.blocks,
            "receivesBookings": k.receives_bookings, "lastSyncAt": k.last_sync_at, "lastError": k.last_error,
            "watchExpiresAt": k.watch_expires_at,
        })).collect::<Vec<_>>(),
    })
}

fn configured(deps: &Deps) -> Result<&SyncDeps, ApiError> {
    deps.sync.as_deref().ok_or_else(|| {
        tracing::error!("a calendar sync field was called, but SYNC_SECRETS_ARN is not configured");
        ApiError::new(ErrorType::Internal, "calendar sync is not configured")
    })
}

fn queue_failed(e: cal_sync::jobs::QueueError) -> ApiError {
    tracing::error!(error = %e, "sync queue refused a job");
    ApiError::new(ErrorType::Internal, "internal error")
}

/// One of the sync fields.
pub(crate) async fn dispatch(
    deps: &Deps,
    caller: &Caller,
    field: Field,
    raw: Value,
    db: &mut deadpool_postgres::Object,
) -> Result<Value, ApiError> {
    let now = (deps.clock)();
    match field {
        Field::CalendarConnections => {
            let a: UserArgs = args(raw)?;
            require(caller.may_manage(&a.user_id))?;
            let user_id: &str = &a.user_id;
            let list = sync::list_connections(&***db, user_id).await?;
            Ok(json!(list.iter().map(connection).collect::<Vec<_>>()))
        }
        Field::StartCalendarConnect => {
            let a: StartArgs = args(raw)?;
            require(caller.may_manage(&a.user_id))?;
            let user_id: &str = &a.user_id;
            let sync = configured(deps)?;
            let started = oauth::start(&sync.state_key, user_id, a.service, now);
            let url = with_service!(sync.services, a.service, |s| s.authorization_url(&started.state, &started.code_challenge));
            Ok(json!({ "authorizationUrl": url, "expiresAt": now.plus_secs(oauth::STATE_LIFETIME_SECS) }))
        }
        Field::SetSyncedCalendar => {
            let a: CalendarUseArgs = args(raw)?;
            require(caller.may_manage(&a.user_id))?;
            let user_id: &str = &a.user_id;
            let sync = configured(deps)?;
            let choice = CalendarUse { blocks: a.blocks, receives_bookings: a.receives_bookings };
            let before = owned(db, user_id, &a.connection_id).await?;
            let was = before.calendars.iter().find(|k| k.calendar_id == a.calendar_id);
            let c = sync::set_calendar_use(&mut *db, user_id, &a.connection_id, &a.calendar_id, choice).await?;
            let calendar = |id: &str| (a.connection_id.to_string(), id.to_owned());
            if a.blocks && !was.is_some_and(|k| k.blocks) {
                let (connection_id, calendar_id) = calendar(&a.calendar_id);
                sync.queue.send(&SyncJob::Watch { connection_id, calendar_id }).await.map_err(queue_failed)?;
            }
            if a.receives_bookings && !was.is_some_and(|k| k.receives_bookings) {
                for event_id in sync::future_bookings(&***db, user_id, now, MAX_BACKFILL).await? {
                    sync.queue.send(&SyncJob::Push { event_id }).await.map_err(queue_failed)?;
                }
            }
            Ok(connection(&c))
        }
        Field::ResyncCalendarConnection => {
            let a: ConnectionArgs = args(raw)?;
            require(caller.may_manage(&a.user_id))?;
            let user_id: &str = &a.user_id;
            let sync = configured(deps)?;
            for c in sync::request_resync(&***db, user_id, &a.connection_id).await? {
                sync.queue.send(&SyncJob::Resync { connection_id: c.connection_id, calendar_id: c.calendar_id }).await.map_err(queue_failed)?;
            }
            Ok(connection(&owned(db, user_id, &a.connection_id).await?))
        }
        Field::DisconnectCalendar => {
            let a: ConnectionArgs = args(raw)?;
            require(caller.may_manage(&a.user_id))?;
            let user_id: &str = &a.user_id;
            let sync = configured(deps)?;
            let gone = sync::disconnect(&mut *db, user_id, &a.connection_id).await?;
            // Tokens and busy time are gone already; revoking the grant and
            // stopping the watches is courtesy to the service, best effort.
            with_service!(sync.services, gone.service, |s| revoke(s, &*sync.vault, &a.connection_id, &gone).await);
            Ok(json!(true))
        }
        other => unreachable!("{other:?} is not a sync field"),
    }
}

/// `user_id`'s connection, or NOT_FOUND (another provider's looks absent).
async fn owned(db: &tokio_postgres::Client, user_id: &str, connection_id: &str) -> Result<Connection, ApiError> {
    match sync::get_connection(db, connection_id).await {
        Ok(c) if c.user_id == user_id => Ok(c),
        Ok(_) | Err(cal_store::StoreError::NotFound { .. }) => {
            Err(ApiError::new(ErrorType::NotFound, format!("calendar_connection {connection_id:?} not found")))
        }
        Err(e) => Err(e.into()),
    }
}

async fn revoke<S: CalendarService>(service: &S, vault: &dyn AnyVault, connection_id: &str, gone: &sync::Disconnected) {
    let Ok(refresh) = vault.open_boxed(connection_id, &gone.token).await else {
        tracing::warn!(connection_id, "disconnected; the sealed token did not open, so the grant was not revoked");
        return;
    };
    if let Ok(tokens) = service.refresh(&refresh).await {
        for watch in &gone.watches {
            if let Err(e) = service.unwatch(&tokens.access_token, watch).await {
                tracing::warn!(connection_id, error = %e, "disconnected; a watch was left to expire");
            }
        }
    }
    if let Err(e) = service.revoke(&refresh).await {
        tracing::warn!(connection_id, error = %e, "disconnected; revoking the grant failed");
    }
}
