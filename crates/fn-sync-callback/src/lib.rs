//! `fn-sync-callback`: the OAuth redirect URI of Google and Microsoft, a
//! Function URL (`GET /?code&state` or `?error&state`).
//!
//! The signed `state` is the credential (cal_sync::oauth): it names the
//! provider and the service, lives ten minutes and is used once (its nonce
//! is recorded). The code is exchanged with the PKCE verifier only we can
//! derive; the refresh token is sealed (KMS envelope encryption, bound to
//! the connection) before it touches the database, and never logged or
//! shown. Then the account's calendars are listed and the first sync is
//! queued: a watch per blocking calendar (which pulls once it is set) and a
//! push of the provider's future bookings if a booking calendar is chosen.
//!
//! The browser is sent back to the web app with the outcome in the query
//! (`?sync=connected&connection=…`, or `?sync=error&reason=…`); without a
//! web app URL it gets a short page saying the same.

#![forbid(unsafe_code)]

use std::sync::Arc;

use aws_lambda_events::http::HeaderValue;
use aws_lambda_events::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, X_CONTENT_TYPE_OPTIONS};
use aws_lambda_events::lambda_function_urls::{LambdaFunctionUrlRequest, LambdaFunctionUrlResponse};
use cal_core::time::Instant;
use cal_store::StoreError;
use cal_store::sync::{self, NewConnection};
use cal_sync::jobs::{JobQueue, QueueError, SyncJob, TokenVault, VaultError};
use cal_sync::oauth::{self, StateError, StateKey};
use cal_sync::{CalendarService, Services, SyncError, with_service};
use deadpool_postgres::Pool;

/// Most future bookings pushed into a newly connected booking calendar.
pub const MAX_BACKFILL: i64 = 1000;

/// The callback's configuration from the environment, read once.
pub struct Config {
    /// `SYNC_QUEUE_URL`.
    pub queue_url: String,
    /// `TOKEN_KMS_KEY_ID`.
    pub kms_key_id: String,
    /// `WEB_APP_URL` (optional): where the browser goes afterwards.
    pub web_app_url: Option<String>,
}

impl Config {
    /// Reads it; a bad value is refused, naming the variable.
    pub fn from_env(env: &cal_aws::Env) -> Result<Config, cal_aws::ConfigError> {
        Ok(Config {
            queue_url: cal_aws::sync_config::sync_queue_url(env)?,
            kms_key_id: cal_aws::sync_config::token_kms_key_id(env)?,
            web_app_url: env.maybe("WEB_APP_URL")?,
        })
    }
}

/// What the callback needs.
pub struct Deps<G, M, V, Q> {
    pub pool: Pool,
    pub services: Services<G, M>,
    pub vault: V,
    pub queue: Q,
    pub state_key: StateKey,
    /// `WEB_APP_URL`: where the browser goes afterwards.
    pub web_app_url: Option<String>,
    pub clock: Arc<dyn Fn() -> Instant + Send + Sync>,
}

/// Why a connect did not complete. The reason words are what the browser
/// sees (in the query): never a secret, never a code.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("state_invalid")]
    State(#[from] StateError),
    #[error("state_used")]
    StateUsed,
    #[error("denied")]
    Denied,
    #[error("no_code")]
    NoCode,
    #[error("no_offline_access")]
    NoRefreshToken,
    #[error("service")]
    Service(#[from] SyncError),
    #[error("unavailable")]
    Store(#[from] StoreError),
    #[error("unavailable")]
    Vault(#[from] VaultError),
    #[error("unavailable")]
    Queue(#[from] QueueError),
}

/// Handles the redirect.
pub async fn handle<G: CalendarService, M: CalendarService, V: TokenVault, Q: JobQueue>(
    deps: &Deps<G, M, V, Q>,
    req: LambdaFunctionUrlRequest,
) -> LambdaFunctionUrlResponse {
    let query: Vec<(String, String)> = req
        .raw_query_string
        .as_deref()
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let param = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    // The URI the consent was asked with: this function's own URL.
    let redirect_uri = format!("https://{}/", req.request_context.domain_name.as_deref().unwrap_or("localhost"));
    match connect(deps, &redirect_uri, param("state"), param("code"), param("error")).await {
        Ok(connection_id) => {
            tracing::info!(connection_id, "calendar connected");
            finish(deps.web_app_url.as_deref(), &[("sync", "connected"), ("connection", &connection_id)], "Your calendar is connected.")
        }
        Err(e) => {
            // The chain names causes (a service's error code), never secrets.
            tracing::warn!(error = %cal_core::error::ErrorChain(&e), "calendar connect failed");
            let reason = e.to_string();
            finish(deps.web_app_url.as_deref(), &[("sync", "error"), ("reason", &reason)], "Connecting your calendar did not work. Please start again.")
        }
    }
}

/// The consent's outcome, from the redirect's parameters; the connection's
/// id. `redirect_uri` must be the one the consent was asked with.
pub async fn connect<G: CalendarService, M: CalendarService, V: TokenVault, Q: JobQueue>(
    deps: &Deps<G, M, V, Q>,
    redirect_uri: &str,
    state: Option<&str>,
    code: Option<&str>,
    error: Option<&str>,
) -> Result<String, CallbackError> {
    let now = (deps.clock)();
    let state = oauth::verify(&deps.state_key, state.unwrap_or(""), now)?;
    let db = deps.pool.get().await.map_err(StoreError::Pool)?;
    if !sync::use_oauth_nonce(&**db, &state.nonce).await? {
        return Err(CallbackError::StateUsed);
    }
    if error.is_some() {
        return Err(CallbackError::Denied);
    }
    let code = code.filter(|c| !c.is_empty()).ok_or(CallbackError::NoCode)?;
    let verifier = oauth::verifier(&deps.state_key, &state.nonce);
    let (tokens, account, calendars) = with_service!(deps.services, state.service, |s| {
        let s = &s.with_redirect_uri(redirect_uri);
        let tokens = s.exchange_code(code, &verifier).await?;
        let account = s.account(&tokens.access_token).await?;
        let calendars = s.calendars(&tokens.access_token).await?;
        (tokens, account, calendars)
    });
    let refresh = tokens.refresh_token.ok_or(CallbackError::NoRefreshToken)?;
    let connection_id = match sync::connection_id_for(&**db, &state.user_id, state.service, &account.subject).await? {
        Some(id) => id,
        None => sync::new_connection_id(),
    };
    let sealed = deps.vault.seal(&connection_id, &refresh).await?;
    let mut db = db;
    let new = NewConnection {
        user_id: &state.user_id,
        service: state.service,
        account: &account,
        token: &sealed,
        connection_id: &connection_id,
        scopes: tokens.scope.as_deref(),
        calendars: &calendars,
    };
    let connection_id = sync::save_connection(&mut db, &new).await?;
    let connection = sync::get_connection(&**db, &connection_id).await?;
    for c in connection.calendars.iter().filter(|c| c.blocks) {
        deps.queue.send(&SyncJob::Watch { connection_id: connection_id.clone(), calendar_id: c.calendar_id.clone() }).await?;
    }
    if connection.calendars.iter().any(|c| c.receives_bookings) {
        for event_id in sync::future_bookings(&**db, &state.user_id, now, MAX_BACKFILL).await? {
            deps.queue.send(&SyncJob::Push { event_id }).await?;
        }
    }
    Ok(connection_id)
}

fn finish(web_app_url: Option<&str>, outcome: &[(&str, &str)], text: &str) -> LambdaFunctionUrlResponse {
    let mut r = LambdaFunctionUrlResponse::default();
    r.headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r.headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.is_base64_encoded = false;
    match web_app_url {
        Some(base) => {
            let query: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(outcome).finish();
            let sep = if base.contains('?') { '&' } else { '?' };
            r.status_code = 302;
            if let Ok(v) = HeaderValue::from_str(&format!("{base}{sep}{query}")) {
                r.headers.insert(LOCATION, v);
            }
        }
        None => {
            r.status_code = if outcome.iter().any(|(_, v)| *v == "error") { 400 } else { 200 };
            r.headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
            r.body = Some(format!("{text}\n"));
        }
    }
    r
}
