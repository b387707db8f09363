//! Two-way sync with Google Calendar and Microsoft 365 (SEMANTICS.md §11):
//! the protocol clients and the pure rules around them. No SQL and no AWS
//! here: cal-store keeps what a sync learns, cal-aws encrypts the tokens,
//! and the `fn-sync-*` functions put the pieces together.
//!
//! * [`CalendarService`]: what the sync needs of a calendar service, one
//!   implementation per service ([`google::Google`], [`microsoft::Graph`]).
//! * [`oauth`]: authorization code with PKCE, the signed single-use `state`.
//! * [`engine`]: the incremental sync loop (sync token, paging, `410 Gone`
//!   → full resync) and the idempotent outbound write.
//! * [`secret`]: [`Secret`], a string that never prints.
//!
//! Every endpoint a client calls comes from [`Endpoints`], whose defaults are
//! the services' public URLs; tests point them at the protocol fakes of the
//! `sync-fakes` crate on 127.0.0.1.

#![forbid(unsafe_code)]

pub mod engine;
pub mod jobs;
pub mod google;
pub mod http;
pub mod microsoft;
pub mod oauth;
pub mod secret;
#[cfg(feature = "testing")]
pub mod testing;

use std::future::Future;
use std::time::Duration;

use cal_core::time::{Instant, Interval, Zone};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

pub use secret::Secret;

/// The calendar services we sync with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    #[serde(alias = "GOOGLE")]
    Google,
    #[serde(alias = "MICROSOFT")]
    Microsoft,
}

impl ServiceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Google => "google",
            ServiceKind::Microsoft => "microsoft",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "google" | "GOOGLE" => Some(ServiceKind::Google),
            "microsoft" | "MICROSOFT" => Some(ServiceKind::Microsoft),
            _ => None,
        }
    }
}

/// The two services' clients (production: [`google::Google`] and
/// [`microsoft::Graph`]; their URLs point at the fakes in tests). Code
/// written once over [`CalendarService`] reaches the right one through
/// [`with_service!`].
pub struct Services<G, M> {
    pub google: G,
    pub graph: M,
}

/// Runs `$body` with `$s` bound to the client of `$kind` in `$services`
/// (a [`Services`]): the one place where code written over
/// [`CalendarService`] meets the two services.
#[macro_export]
macro_rules! with_service {
    ($services:expr, $kind:expr, |$s:ident| $body:expr) => {
        match $kind {
            $crate::ServiceKind::Google => {
                let $s = &$services.google;
                $body
            }
            $crate::ServiceKind::Microsoft => {
                let $s = &$services.graph;
                $body
            }
        }
    };
}

/// Where a client sends its requests. The defaults are the services' public
/// endpoints; tests replace them with a fake's base URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// The browser goes here to consent (authorization endpoint).
    pub authorize: String,
    /// Code exchange and refresh (token endpoint).
    pub token: String,
    /// Grant revocation; `None` where the service has no such endpoint.
    pub revoke: Option<String>,
    /// The API root, without a trailing slash
    /// (`https://www.googleapis.com/calendar/v3`, `https://graph.microsoft.com/v1.0`).
    pub api: String,
}

/// The OAuth client of one service: its id and secret (from Secrets
/// Manager) and the redirect URI registered for the callback function.
#[derive(Clone, Debug)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: Secret,
    pub redirect_uri: String,
}

/// Tokens of one grant. The refresh token is stored encrypted; the access
/// token lives only in memory.
#[derive(Clone, Debug)]
pub struct Tokens {
    pub access_token: Secret,
    /// Absent when a refresh answer does not rotate it: keep the old one.
    pub refresh_token: Option<Secret>,
    pub expires_at: Instant,
    /// Scopes granted, as the token endpoint reported them.
    pub scope: Option<String>,
}

/// Who granted access: the service's stable account id and a display name
/// (an e-mail address where the service gives one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub subject: String,
    pub display: String,
}

/// One calendar of the connected account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RemoteCalendar {
    pub id: String,
    pub name: String,
    pub primary: bool,
    /// Whether we may write events into it (a booking target).
    pub writable: bool,
    /// Its IANA zone, where the service says.
    pub time_zone: Option<String>,
}

/// The time a remote item takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusySpan {
    /// A timed event.
    Timed(Interval),
    /// An all-day event: local dates `[start, end)`, blocking whole days in
    /// the provider's zone (§11).
    AllDay { start: NaiveDate, end: NaiveDate },
}

impl BusySpan {
    /// The instants it blocks for a provider in `zone` (`None`: nothing,
    /// e.g. an all-day span whose end is not after its start).
    pub fn interval(self, zone: Zone) -> Option<Interval> {
        match self {
            BusySpan::Timed(iv) => Some(iv),
            BusySpan::AllDay { start, end } => {
                let first = zone.day(start)?;
                let last = zone.day(end.pred_opt()?)?;
                Interval::non_empty(first.start(), last.end())
            }
        }
    }
}

/// What one remote item (an event, or one instance of a series) is now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemState {
    /// It blocks this span.
    Blocks(BusySpan),
    /// It exists but blocks nothing: cancelled, transparent / `showAs: free`,
    /// or declined by the calendar's owner.
    Free,
    /// It was deleted (Google `status: cancelled` in an incremental list,
    /// Graph `@removed`).
    Removed,
}

/// One item of a sync page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteItem {
    /// The service's id of the item (for a series, of the single instance).
    pub id: String,
    pub state: ItemState,
    /// Our event id, when the item is one we wrote (read from the private
    /// extended property): never counted as external busy (§11).
    pub ours: Option<String>,
}

/// Where a sync continues from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cursor {
    /// A full read of the items overlapping `[from, to)` (the booking
    /// horizon); its last page gives a token for later increments.
    Full { from: Instant, to: Instant },
    /// An increment from a stored token (Google `syncToken`, Graph
    /// `@odata.deltaLink`).
    Token(String),
    /// The next page of the read in progress (Google `pageToken`, Graph
    /// `@odata.nextLink`).
    Page(String),
}

/// One page of items and what follows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncPage {
    pub items: Vec<RemoteItem>,
    pub next: NextPage,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextPage {
    /// More pages of this read.
    More(String),
    /// The read is complete; this token starts the next increment.
    Done(String),
}

/// One of our confirmed bookings as written to the provider's calendar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboundEvent {
    /// Our event id: the private extended property, and the seed of the
    /// idempotent create (Google's client-chosen `id`, Graph's
    /// `transactionId`).
    pub event_id: String,
    pub start: Instant,
    pub end: Instant,
    pub title: String,
    pub description: String,
}

/// A push channel (Google `events.watch`) or subscription (Graph) to set up.
#[derive(Clone, Debug)]
pub struct WatchRequest {
    /// Our id of the channel (Google: the channel `id` we choose).
    pub channel_id: String,
    /// Sent back with every notification (Google channel `token`, Graph
    /// `clientState`); only its hash is stored.
    pub secret: Secret,
    /// The receiver's URL.
    pub address: String,
    /// Graph's `lifecycleNotificationUrl` (ignored by Google).
    pub lifecycle_address: Option<String>,
    /// Asked-for expiry; the service may grant less.
    pub expires_at: Instant,
}

/// A channel or subscription as the service granted it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Watch {
    /// Google: our channel id; Graph: the subscription id.
    pub id: String,
    /// Google: the `resourceId` needed to stop it; Graph: none.
    pub resource_id: Option<String>,
    pub expires_at: Instant,
}

/// Why a call to a service failed, by what the caller should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// The grant is gone or expired for good (`invalid_grant`, `401` after
    /// a refresh, `403` for revoked access): the provider must reconnect.
    #[error("the calendar service refused our access: {0}")]
    Reauth(String),
    /// The API refused the access token (`401`): expired early or revoked.
    /// The caller refreshes it once and retries; a refresh answering
    /// `invalid_grant` is [`SyncError::Reauth`], and so is a second `401`
    /// with a fresh token.
    #[error("the access token was refused: {0}")]
    Unauthorized(String),
    /// The sync token is no longer valid (`410 Gone`, Graph
    /// `syncStateNotFound`): read everything again.
    #[error("the sync token expired; a full sync is needed")]
    Gone,
    /// Rate limited (`429`, Google `403 rateLimitExceeded`): try again after.
    #[error("rate limited; retry after {0:?}")]
    RateLimited(Duration),
    /// A fault that may pass (`5xx`, a timeout, a refused connection).
    #[error("the calendar service failed: {0}")]
    Transient(String),
    /// A request the service will never accept as it is.
    #[error("the calendar service refused the request: {0}")]
    Permanent(String),
    /// The item does not exist (a delete or update of something gone).
    #[error("not found")]
    NotFound,
}

impl SyncError {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SyncError::RateLimited(_) | SyncError::Transient(_))
    }
}

/// What the sync needs of a calendar service. Every call that reaches the
/// API takes a current access token; refreshing it is the caller's job
/// ([`CalendarService::refresh`]).
pub trait CalendarService: Send + Sync {
    fn kind(&self) -> ServiceKind;

    /// The same client with another redirect URI (the callback learns its
    /// own URL from the request: a template cannot hand a function its own
    /// Function URL).
    fn with_redirect_uri(&self, redirect_uri: &str) -> Self
    where
        Self: Sized;

    /// The consent URL the provider's browser is sent to (authorization
    /// code with PKCE, S256), asking for the least scopes that work.
    fn authorization_url(&self, state: &str, code_challenge: &str) -> String;

    /// Exchanges an authorization code (with its PKCE verifier).
    fn exchange_code(&self, code: &str, verifier: &Secret) -> impl Future<Output = Result<Tokens, SyncError>> + Send;

    /// A new access token from the refresh token.
    fn refresh(&self, refresh_token: &Secret) -> impl Future<Output = Result<Tokens, SyncError>> + Send;

    /// Revokes the grant where the service can (a no-op otherwise).
    fn revoke(&self, refresh_token: &Secret) -> impl Future<Output = Result<(), SyncError>> + Send;

    /// Who granted access.
    fn account(&self, access: &Secret) -> impl Future<Output = Result<Account, SyncError>> + Send;

    /// The account's calendars.
    fn calendars(&self, access: &Secret) -> impl Future<Output = Result<Vec<RemoteCalendar>, SyncError>> + Send;

    /// One page of a calendar's items, expanded into single instances.
    fn sync_page(&self, access: &Secret, calendar_id: &str, cursor: &Cursor)
    -> impl Future<Output = Result<SyncPage, SyncError>> + Send;

    /// Whether an increment from `token` still sees every item that starts
    /// before `until` (the booking horizon's end). Google's sync tokens are
    /// not windowed; a Graph delta link keeps the window of the full read
    /// that started it, and when the horizon outgrows it the engine reads
    /// in full again.
    fn token_reaches(&self, token: &str, until: Instant) -> bool {
        let _ = (token, until);
        true
    }

    /// Creates or updates our booking: with `remote_id` an update of that
    /// item, else an idempotent create (a retry never makes a second item).
    /// Returns the item's id.
    fn put_event(&self, access: &Secret, calendar_id: &str, remote_id: Option<&str>, event: &OutboundEvent)
    -> impl Future<Output = Result<String, SyncError>> + Send;

    /// Deletes our booking's item; an item already gone is success.
    fn delete_event(&self, access: &Secret, calendar_id: &str, remote_id: &str) -> impl Future<Output = Result<(), SyncError>> + Send;

    /// Starts push notifications for a calendar's events.
    fn watch(&self, access: &Secret, calendar_id: &str, request: &WatchRequest) -> impl Future<Output = Result<Watch, SyncError>> + Send;

    /// Extends or replaces `old` before it expires. Google: a new channel
    /// (`request`) then `channels.stop` of the old one, so the two overlap;
    /// Graph: a PATCH of the subscription's expiry.
    fn renew(&self, access: &Secret, calendar_id: &str, old: &Watch, request: &WatchRequest)
    -> impl Future<Output = Result<Watch, SyncError>> + Send;

    /// Stops a channel or deletes a subscription; one already gone is success.
    fn unwatch(&self, access: &Secret, watch: &Watch) -> impl Future<Output = Result<(), SyncError>> + Send;
}
