//! Microsoft Graph (Outlook calendars of work, school and personal
//! Microsoft accounts): [`Graph`], and the pure helpers of the notification
//! receiver ([`validation_echo`], [`notifications`]).
//!
//! * Sign-in: the identity platform's v2 endpoints under `common` (any
//!   tenant and personal accounts), authorization code with PKCE S256,
//!   scopes [`SCOPES`]. Graph has no revocation of one refresh token, so
//!   [`Endpoints::revoke`] is `None` and [`CalendarService::revoke`] does
//!   nothing (see there).
//! * Reading: `calendarView/delta` of one calendar over the booking horizon,
//!   asking for UTC (`Prefer: outlook.timezone="UTC"`) and small pages. The
//!   items are single instances: the service expands series, moves and
//!   cancels their occurrences itself. A delta link keeps its full read's
//!   window, so that window reaches [`WINDOW_SLACK_DAYS`] past the horizon
//!   and the links carry its end ([`CalendarService::token_reaches`]).
//! * Our items: written with a single-value extended property holding our
//!   event id ([`EVENT_ID_PROPERTY`]) and a `transactionId` made from it
//!   ([`transaction_id`]). Delta cannot `$expand` extended properties, but
//!   it returns `transactionId` on every item that has one, so that is how
//!   a read recognises our items ([`ours`]).
//! * Writing: `PATCH /me/events/{id}`, or a create with the `transactionId`,
//!   which Graph answers with the event already made when a retry repeats it.
//! * Push: a subscription to `me/calendars/{id}/events`, at most
//!   [`MAX_SUBSCRIPTION_MINUTES`] long, renewed with a `PATCH`.

use std::time::Duration;

use cal_core::time::{Instant, Interval, Zone};
use cal_core::windows_zones::WINDOWS_ZONES;
use chrono::{NaiveDate, NaiveDateTime, Utc};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use crate::{
    Account, BusySpan, CalendarService, ClientCredentials, Cursor, Endpoints, ItemState, NextPage, OutboundEvent, RemoteCalendar,
    RemoteItem, Secret, ServiceKind, SyncError, SyncPage, Tokens, Watch, WatchRequest,
};

/// The least scopes that work: `offline_access` for a refresh token,
/// `Calendars.ReadWrite` to read busy time and write bookings, and
/// `User.Read` because `GET /me` (the account's stable id) needs it.
pub const SCOPES: &str = "offline_access User.Read Calendars.ReadWrite";

/// Our single-value extended property: a string in our own property set,
/// holding our event id.
pub const EVENT_ID_PROPERTY: &str = "String {5b0e7c1a-8f3d-4e2b-a6c9-1d4f7e2a9b30} Name calEventId";

/// What every `transactionId` we write starts with.
pub const TRANSACTION_PREFIX: &str = "calsync:";

/// The longest subscription Graph grants on Outlook events (without
/// resource data): 10,080 minutes, under 7 days.
pub const MAX_SUBSCRIPTION_MINUTES: i64 = 10_080;

/// How far past the booking horizon a full read looks, days. A delta link
/// keeps the window of the read that started it (`calendarView/delta` needs
/// an end), so the calendar is read in full again once the horizon passes
/// that window's end: about once a week, not at every pull.
pub const WINDOW_SLACK_DAYS: i64 = 7;

/// Where the window of a read ends (unix seconds), carried on its next and
/// delta links as a URL fragment: kept with the stored link, never sent.
const UNTIL_MARK: &str = "calsync-until=";

/// `link` with the end of its read's window, if known.
fn with_until(link: String, until: Option<i64>) -> String {
    match until {
        Some(t) => format!("{link}#{UNTIL_MARK}{t}"),
        None => link,
    }
}

/// The end of the window a link's read covers, if it carries one.
fn until_of(link: &str) -> Option<i64> {
    link.rsplit_once('#')?.1.strip_prefix(UNTIL_MARK)?.parse().ok()
}

/// Asked-for page size of a delta read (`Prefer: odata.maxpagesize`).
pub const PAGE_SIZE: u32 = 50;

/// How long one request may take before it counts as a transient failure.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The Microsoft Graph client.
#[derive(Clone, Debug)]
pub struct Graph {
    http: reqwest::Client,
    endpoints: Endpoints,
    credentials: ClientCredentials,
    page_size: u32,
}

impl Graph {
    /// The identity platform's v2 endpoints for any account (`common`) and
    /// the Graph v1.0 root. No revocation endpoint: see
    /// [`CalendarService::revoke`].
    pub fn public_endpoints() -> Endpoints {
        Endpoints {
            authorize: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize".into(),
            token: "https://login.microsoftonline.com/common/oauth2/v2.0/token".into(),
            revoke: None,
            api: "https://graph.microsoft.com/v1.0".into(),
        }
    }

    pub fn new(endpoints: Endpoints, credentials: ClientCredentials) -> Self {
        let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build().expect("the HTTP client builds");
        Graph { http, endpoints, credentials, page_size: PAGE_SIZE }
    }

    /// Asks for pages of at most `size` items (the service may send fewer).
    pub fn with_page_size(mut self, size: u32) -> Self {
        self.page_size = size.max(1);
        self
    }

    /// `{api}/seg/seg…`, each segment percent-encoded (ids hold `=`, `+`, `/`).
    fn api_url(&self, segments: &[&str]) -> Url {
        let mut url = Url::parse(&self.endpoints.api).expect("the API root is a URL");
        url.path_segments_mut().expect("the API root is a base").pop_if_empty().extend(segments);
        url
    }

    /// A stored `@odata.nextLink` / `@odata.deltaLink`: only ever followed
    /// below our API root, so the access token goes nowhere else.
    fn link(&self, link: &str) -> Result<Url, SyncError> {
        let root = self.endpoints.api.trim_end_matches('/');
        match link.strip_prefix(root) {
            Some(rest) if rest.starts_with('/') => {
                Url::parse(link).map_err(|_| SyncError::Permanent("a delta link that is not a URL".into()))
            }
            _ => Err(SyncError::Permanent("a delta link outside the Graph API root".into())),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<(u16, HeaderMap, Vec<u8>), SyncError> {
        let answer = request.send().await.map_err(|e| SyncError::Transient(format!("Graph unreachable: {e}")))?;
        let status = answer.status().as_u16();
        let headers = answer.headers().clone();
        let body = answer.bytes().await.map_err(|e| SyncError::Transient(format!("Graph answer cut off: {e}")))?;
        Ok((status, headers, body.to_vec()))
    }

    /// An API call with the access token; a 2xx answer's JSON body (`null`
    /// when empty), anything else as its [`SyncError`].
    async fn call(&self, access: &Secret, request: reqwest::RequestBuilder) -> Result<Value, SyncError> {
        let (status, headers, body) = self.send(request.bearer_auth(access.expose())).await?;
        if !(200..300).contains(&status) {
            return Err(api_error(status, &headers, &body));
        }
        if body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body)
            .map_err(|_| SyncError::Transient(format!("Graph answered {status} with a body that is not JSON")))
    }

    async fn token(&self, form: &[(&str, &str)]) -> Result<Tokens, SyncError> {
        let request = self.http.post(&self.endpoints.token).form(form);
        let (status, headers, body) = self.send(request).await?;
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if status != 200 {
            return Err(token_error(status, &headers, &json));
        }
        let text = |k: &str| json.get(k).and_then(Value::as_str).map(str::to_owned);
        let access = text("access_token").ok_or_else(|| SyncError::Transient("a token answer without access_token".into()))?;
        let lifetime = json.get("expires_in").and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok())).unwrap_or(3600);
        Ok(Tokens {
            access_token: Secret::new(access),
            refresh_token: text("refresh_token").map(Secret::new),
            expires_at: now().plus_secs(lifetime),
            scope: text("scope"),
        })
    }

    /// The expiry we ask for: `wanted`, cut to the documented maximum less a
    /// minute for the clocks' difference.
    fn capped_expiry(wanted: Instant) -> Instant {
        wanted.min(now().plus_minutes(MAX_SUBSCRIPTION_MINUTES - 1))
    }
}

fn now() -> Instant {
    Instant::from_chrono(Utc::now())
}

/// Our `transactionId` for a booking: the prefix and our event id, so a
/// retried create repeats it exactly and a read can tell the item is ours.
/// Event ids too long or too odd for that are hashed (and then only the
/// extended property recognises the item).
pub fn transaction_id(event_id: &str) -> String {
    let plain = event_id.len() <= 100 && event_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if plain {
        format!("{TRANSACTION_PREFIX}{event_id}")
    } else {
        let digest = Sha256::digest(event_id.as_bytes());
        let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        format!("calsync#{hex}")
    }
}

/// Our event id on an item: the extended property where the answer carries
/// it, else from the `transactionId` (delta answers never carry extended
/// properties).
pub fn ours(item: &Value) -> Option<String> {
    let property = item
        .get("singleValueExtendedProperties")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|p| p.get("id").and_then(Value::as_str).is_some_and(|id| id.eq_ignore_ascii_case(EVENT_ID_PROPERTY)))
        .and_then(|p| p.get("value").and_then(Value::as_str));
    property
        .or_else(|| item.get("transactionId").and_then(Value::as_str)?.strip_prefix(TRANSACTION_PREFIX))
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
}

/// Reads one item of a delta page. `None` for what is not an instance
/// (a series master) or whose times cannot be read.
pub fn remote_item(item: &Value) -> Option<RemoteItem> {
    let id = item.get("id").and_then(Value::as_str)?.to_owned();
    if item.get("@removed").is_some() {
        return Some(RemoteItem { id, state: ItemState::Removed, ours: None });
    }
    let text = |k: &str| item.get(k).and_then(Value::as_str);
    if text("type") == Some("seriesMaster") {
        return None;
    }
    let ours = ours(item);
    let flag = |k: &str| item.get(k).and_then(Value::as_bool).unwrap_or(false);
    let declined = item.pointer("/responseStatus/response").and_then(Value::as_str) == Some("declined");
    if flag("isCancelled") || text("showAs") == Some("free") || declined {
        return Some(RemoteItem { id, state: ItemState::Free, ours });
    }
    let (start, end) = (item.get("start")?, item.get("end")?);
    let state = if flag("isAllDay") {
        let day = |v: &Value| NaiveDate::parse_from_str(v.get("dateTime")?.as_str()?.get(..10)?, "%Y-%m-%d").ok();
        ItemState::Blocks(BusySpan::AllDay { start: day(start)?, end: day(end)? })
    } else {
        match Interval::non_empty(instant(start)?, instant(end)?) {
            Some(iv) => ItemState::Blocks(BusySpan::Timed(iv)),
            None => ItemState::Free,
        }
    };
    Some(RemoteItem { id, state, ours })
}

/// A `dateTimeTimeZone`: a wall-clock time and the zone it is read in
/// (UTC as asked for; an IANA or a Windows zone name otherwise).
fn instant(value: &Value) -> Option<Instant> {
    let text = value.get("dateTime")?.as_str()?;
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
        .ok()?;
    let zone = value.get("timeZone").and_then(Value::as_str).unwrap_or("UTC").trim();
    if zone.is_empty() || zone.eq_ignore_ascii_case("UTC") || zone == "tzone://Microsoft/Utc" {
        return Some(Instant::from_chrono(local.and_utc()));
    }
    let zone = Zone::parse(zone).ok().or_else(|| {
        let i = WINDOWS_ZONES.binary_search_by(|(windows, _)| (*windows).cmp(zone)).ok()?;
        Zone::parse(WINDOWS_ZONES[i].1).ok()
    })?;
    Some(zone.point(local))
}

/// The Graph error of an answer: `{"error": {"code", "message"}}`.
fn error_parts(body: &[u8]) -> (String, String) {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let field = |k: &str| json.pointer(&format!("/error/{k}")).and_then(Value::as_str).unwrap_or("").to_owned();
    (field("code"), field("message"))
}

/// `Retry-After`, if the answer has one, read as [`crate::http::retry_after`] does.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("retry-after")?.to_str().ok()?;
    Some(crate::http::retry_after(Some(value), cal_core::time::Instant::from_chrono(Utc::now())))
}

/// What a failed API answer means for the caller.
fn api_error(status: u16, headers: &HeaderMap, body: &[u8]) -> SyncError {
    let (code, message) = error_parts(body);
    let what = if code.is_empty() { format!("HTTP {status}") } else { format!("{status} {code}: {message}") };
    let gone = ["syncStateNotFound", "resyncRequired", "syncStateInvalid"];
    if status == 410 || gone.iter().any(|g| code.eq_ignore_ascii_case(g)) {
        return SyncError::Gone;
    }
    match status {
        429 => SyncError::RateLimited(retry_after(headers).unwrap_or(crate::http::DEFAULT_RETRY_AFTER)),
        503 | 509 => match retry_after(headers) {
            Some(wait) => SyncError::RateLimited(wait),
            None => SyncError::Transient(what),
        },
        401 => SyncError::Unauthorized(what),
        403 if ["ErrorAccessDenied", "Authorization_RequestDenied", "AccessDenied"].contains(&code.as_str()) => {
            SyncError::Reauth(what)
        }
        404 => SyncError::NotFound,
        408 | 500..=599 => SyncError::Transient(what),
        _ => SyncError::Permanent(what),
    }
}

/// What a failed token answer means: a grant that is gone is [`SyncError::Reauth`].
fn token_error(status: u16, headers: &HeaderMap, json: &Value) -> SyncError {
    let code = json.get("error").and_then(Value::as_str).unwrap_or("");
    let description = json.get("error_description").and_then(Value::as_str).unwrap_or("");
    // AADSTS descriptions carry trace and correlation ids on later lines.
    let what = format!("{code}: {}", description.lines().next().unwrap_or(""));
    match (status, code) {
        (_, "invalid_grant" | "interaction_required" | "consent_required" | "login_required") => SyncError::Reauth(what),
        (429, _) => SyncError::RateLimited(retry_after(headers).unwrap_or(crate::http::DEFAULT_RETRY_AFTER)),
        (500..=599, _) => SyncError::Transient(format!("token endpoint: HTTP {status} {what}")),
        _ => SyncError::Permanent(format!("token endpoint: HTTP {status} {what}")),
    }
}

/// A `dateTimeTimeZone` in UTC.
fn utc_time(t: Instant) -> Value {
    json!({ "dateTime": t.to_chrono().format("%Y-%m-%dT%H:%M:%S").to_string(), "timeZone": "UTC" })
}

fn subscription_watch(json: &Value, fallback_id: &str) -> Result<Watch, SyncError> {
    let id = json.get("id").and_then(Value::as_str).unwrap_or(fallback_id).to_owned();
    let expires = json
        .get("expirationDateTime")
        .and_then(Value::as_str)
        .and_then(|t| Instant::parse(t).ok())
        .ok_or_else(|| SyncError::Transient("a subscription answer without expirationDateTime".into()))?;
    Ok(Watch { id, resource_id: None, expires_at: expires })
}

impl CalendarService for Graph {
    fn kind(&self) -> ServiceKind {
        ServiceKind::Microsoft
    }

    fn with_redirect_uri(&self, redirect_uri: &str) -> Self {
        let mut client = self.clone();
        client.credentials.redirect_uri = redirect_uri.to_owned();
        client
    }

    fn authorization_url(&self, state: &str, code_challenge: &str) -> String {
        let mut url = Url::parse(&self.endpoints.authorize).expect("the authorization endpoint is a URL");
        url.query_pairs_mut()
            .append_pair("client_id", &self.credentials.client_id)
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", &self.credentials.redirect_uri)
            .append_pair("response_mode", "query")
            .append_pair("scope", SCOPES)
            .append_pair("state", state)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256");
        url.into()
    }

    async fn exchange_code(&self, code: &str, verifier: &Secret) -> Result<Tokens, SyncError> {
        let c = &self.credentials;
        self.token(&[
            ("client_id", &c.client_id),
            ("client_secret", c.client_secret.expose()),
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &c.redirect_uri),
            ("code_verifier", verifier.expose()),
            ("scope", SCOPES),
        ])
        .await
    }

    async fn refresh(&self, refresh_token: &Secret) -> Result<Tokens, SyncError> {
        let c = &self.credentials;
        self.token(&[
            ("client_id", &c.client_id),
            ("client_secret", c.client_secret.expose()),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
            ("scope", SCOPES),
        ])
        .await
    }

    /// A no-op. The identity platform has no endpoint that revokes one
    /// refresh token; `POST /me/revokeSignInSessions` would end every
    /// session of the user in every application (and needs more scopes),
    /// which a calendar disconnect must not do. The caller deletes the
    /// stored refresh token; the user withdraws the consent itself in the
    /// account's app settings, after which a refresh is `invalid_grant`.
    async fn revoke(&self, _refresh_token: &Secret) -> Result<(), SyncError> {
        Ok(())
    }

    async fn account(&self, access: &Secret) -> Result<Account, SyncError> {
        let mut url = self.api_url(&["me"]);
        url.query_pairs_mut().append_pair("$select", "id,userPrincipalName,mail,displayName");
        let me = self.call(access, self.http.get(url)).await?;
        let text = |k: &str| me.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
        let subject = text("id").ok_or_else(|| SyncError::Transient("/me answered without an id".into()))?;
        let display =
            text("mail").or_else(|| text("userPrincipalName")).or_else(|| text("displayName")).unwrap_or_else(|| subject.clone());
        Ok(Account { subject, display })
    }

    async fn calendars(&self, access: &Secret) -> Result<Vec<RemoteCalendar>, SyncError> {
        let mut url = self.api_url(&["me", "calendars"]);
        url.query_pairs_mut().append_pair("$select", "id,name,canEdit,isDefaultCalendar");
        let mut calendars = Vec::new();
        for _ in 0..crate::engine::MAX_PAGES {
            let page = self.call(access, self.http.get(url.clone())).await?;
            for c in page.get("value").and_then(Value::as_array).into_iter().flatten() {
                let Some(id) = c.get("id").and_then(Value::as_str) else {
                    continue;
                };
                let flag = |k: &str| c.get(k).and_then(Value::as_bool).unwrap_or(false);
                calendars.push(RemoteCalendar {
                    id: id.to_owned(),
                    name: c.get("name").and_then(Value::as_str).unwrap_or("").to_owned(),
                    primary: flag("isDefaultCalendar"),
                    writable: flag("canEdit"),
                    // Graph gives a calendar no zone (the mailbox settings
                    // have one, behind another scope).
                    time_zone: None,
                });
            }
            match page.get("@odata.nextLink").and_then(Value::as_str) {
                Some(next) => url = self.link(next)?,
                None => return Ok(calendars),
            }
        }
        Err(SyncError::Permanent("too many pages of calendars".into()))
    }

    async fn sync_page(&self, access: &Secret, calendar_id: &str, cursor: &Cursor) -> Result<SyncPage, SyncError> {
        let (mut url, until) = match cursor {
            Cursor::Full { from, to } => {
                let to = to.plus_secs(WINDOW_SLACK_DAYS * 86_400);
                let mut url = self.api_url(&["me", "calendars", calendar_id, "calendarView", "delta"]);
                url.query_pairs_mut().append_pair("startDateTime", &from.rfc3339()).append_pair("endDateTime", &to.rfc3339());
                (url, Some(to.unix()))
            }
            Cursor::Token(link) | Cursor::Page(link) => (self.link(link)?, until_of(link)),
        };
        url.set_fragment(None);
        let prefer = format!("outlook.timezone=\"UTC\", odata.maxpagesize={}", self.page_size);
        let page = self.call(access, self.http.get(url).header("Prefer", prefer)).await?;
        let mut items = Vec::new();
        for raw in page.get("value").and_then(Value::as_array).into_iter().flatten() {
            match remote_item(raw) {
                Some(item) => items.push(item),
                None => {
                    tracing::warn!(id = ?raw.get("id"), "Graph item skipped: not an instance, or its times unreadable")
                }
            }
        }
        let link = |k: &str| page.get(k).and_then(Value::as_str).map(str::to_owned);
        let next = match (link("@odata.nextLink"), link("@odata.deltaLink")) {
            (Some(next), _) => NextPage::More(with_until(next, until)),
            (None, Some(delta)) => NextPage::Done(with_until(delta, until)),
            (None, None) => {
                return Err(SyncError::Transient("a delta page without nextLink or deltaLink".into()));
            }
        };
        Ok(SyncPage { items, next })
    }

    /// A link stored before links carried their window's end does not
    /// reach: one full read marks the next.
    fn token_reaches(&self, token: &str, until: Instant) -> bool {
        until_of(token).is_some_and(|end| end >= until.unix())
    }

    async fn put_event(
        &self,
        access: &Secret,
        calendar_id: &str,
        remote_id: Option<&str>,
        event: &OutboundEvent,
    ) -> Result<String, SyncError> {
        let mut body = json!({
            "subject": event.title,
            "body": { "contentType": "text", "content": event.description },
            "start": utc_time(event.start),
            "end": utc_time(event.end),
            "isAllDay": false,
            "showAs": "busy",
            "singleValueExtendedProperties": [{ "id": EVENT_ID_PROPERTY, "value": event.event_id }],
        });
        let request = match remote_id {
            Some(id) => self.http.patch(self.api_url(&["me", "events", id])),
            None => {
                body["transactionId"] = json!(transaction_id(&event.event_id));
                self.http.post(self.api_url(&["me", "calendars", calendar_id, "events"]))
            }
        };
        let answer = self.call(access, request.json(&body)).await?;
        answer
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| SyncError::Transient("an event answer without id".into()))
    }

    async fn delete_event(&self, access: &Secret, _calendar_id: &str, remote_id: &str) -> Result<(), SyncError> {
        match self.call(access, self.http.delete(self.api_url(&["me", "events", remote_id]))).await {
            Ok(_) | Err(SyncError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn watch(&self, access: &Secret, calendar_id: &str, request: &WatchRequest) -> Result<Watch, SyncError> {
        if request.secret.expose().len() > 128 {
            return Err(SyncError::Permanent("clientState is longer than 128 characters".into()));
        }
        let mut body = json!({
            "changeType": "created,updated,deleted",
            "notificationUrl": request.address,
            "resource": format!("me/calendars/{calendar_id}/events"),
            "expirationDateTime": Self::capped_expiry(request.expires_at).rfc3339(),
            "clientState": request.secret.expose(),
        });
        if let Some(lifecycle) = &request.lifecycle_address {
            body["lifecycleNotificationUrl"] = json!(lifecycle);
        }
        let answer = self.call(access, self.http.post(self.api_url(&["subscriptions"])).json(&body)).await?;
        subscription_watch(&answer, "")
    }

    async fn renew(&self, access: &Secret, _calendar_id: &str, old: &Watch, request: &WatchRequest) -> Result<Watch, SyncError> {
        let body = json!({ "expirationDateTime": Self::capped_expiry(request.expires_at).rfc3339() });
        let answer = self.call(access, self.http.patch(self.api_url(&["subscriptions", &old.id])).json(&body)).await?;
        subscription_watch(&answer, &old.id)
    }

    async fn unwatch(&self, access: &Secret, watch: &Watch) -> Result<(), SyncError> {
        match self.call(access, self.http.delete(self.api_url(&["subscriptions", &watch.id]))).await {
            Ok(_) | Err(SyncError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

// ---------------------------------------------------------------------------
// The notification receiver's pure half.

/// The longest validation token we echo.
const MAX_VALIDATION_TOKEN: usize = 8 * 1024;

/// The validation handshake: when Graph creates a subscription it POSTs to
/// the notification (and lifecycle) URL with `?validationToken=…`; the
/// receiver must answer `200`, `Content-Type: text/plain`, the decoded token
/// as the body, within 10 seconds. `raw_query` is the query string as
/// received (still percent-encoded); `None` means this is no handshake.
pub fn validation_echo(raw_query: &str) -> Option<String> {
    url::form_urlencoded::parse(raw_query.trim_start_matches('?').as_bytes())
        .find(|(k, _)| k == "validationToken")
        .map(|(_, v)| v.into_owned())
        .filter(|t| !t.is_empty() && t.len() <= MAX_VALIDATION_TOKEN)
}

/// A Graph change type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeType {
    Created,
    Updated,
    Deleted,
    Other(String),
}

/// A lifecycle event: what the subscription needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LifecycleEvent {
    /// Renew (PATCH) or reauthorize the subscription soon, with a fresh
    /// access token, or notifications stop.
    ReauthorizationRequired,
    /// Some notifications were not delivered: sync the calendar.
    Missed,
    /// The subscription is gone: create a new one, then sync.
    SubscriptionRemoved,
    Other(String),
}

/// What one notification says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotificationKind {
    /// An event of the subscribed calendar changed (`resource` is its path,
    /// `Users/{id}/Events/{id}`); the sync reads the delta anyway.
    Change {
        change_type: ChangeType,
        resource: String,
    },
    Lifecycle(LifecycleEvent),
}

/// One notification of a receiver's POST body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GraphNotification {
    pub subscription_id: String,
    /// As sent; compare it with [`GraphNotification::client_state_matches`]
    /// before believing anything else in the notification.
    pub client_state: Option<String>,
    pub kind: NotificationKind,
}

impl GraphNotification {
    /// Whether the notification carries the subscription's secret, of which
    /// only the SHA-256 is stored ([`crate::oauth::secret_hash`]). A missing
    /// or wrong `clientState` is a forgery: the body came from someone who
    /// knows the receiver URL, not from Graph.
    pub fn client_state_matches(&self, stored_hash: &[u8]) -> bool {
        let Some(state) = &self.client_state else {
            return false;
        };
        // The same check the worker makes on a queued notification's proof.
        crate::jobs::proof_matches(&crate::jobs::proof(state), stored_hash)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    #[error("the notification body is not JSON")]
    NotJson,
    #[error("the notification body has no `value` list")]
    NoValue,
    #[error("notification {index}: no {field}")]
    Missing { index: usize, field: &'static str },
}

/// Parses a receiver's POST body (`{"value": [...]}`): change notifications
/// (`changeType`, `resource`) and lifecycle notifications (`lifecycleEvent`).
pub fn notifications(body: &[u8]) -> Result<Vec<GraphNotification>, NotificationError> {
    let json: Value = serde_json::from_slice(body).map_err(|_| NotificationError::NotJson)?;
    let list = json.get("value").and_then(Value::as_array).ok_or(NotificationError::NoValue)?;
    list.iter()
        .enumerate()
        .map(|(index, n)| {
            let text = |k: &str| n.get(k).and_then(Value::as_str).map(str::to_owned);
            let missing = |field| NotificationError::Missing { index, field };
            let subscription_id = text("subscriptionId").ok_or_else(|| missing("subscriptionId"))?;
            let kind = match text("lifecycleEvent") {
                Some(event) => NotificationKind::Lifecycle(match event.as_str() {
                    "reauthorizationRequired" => LifecycleEvent::ReauthorizationRequired,
                    "missed" => LifecycleEvent::Missed,
                    "subscriptionRemoved" => LifecycleEvent::SubscriptionRemoved,
                    _ => LifecycleEvent::Other(event),
                }),
                None => {
                    let change = text("changeType").ok_or_else(|| missing("changeType"))?;
                    NotificationKind::Change {
                        change_type: match change.as_str() {
                            "created" => ChangeType::Created,
                            "updated" => ChangeType::Updated,
                            "deleted" => ChangeType::Deleted,
                            _ => ChangeType::Other(change),
                        },
                        resource: text("resource").ok_or_else(|| missing("resource"))?,
                    }
                }
            };
            Ok(GraphNotification { subscription_id, client_state: text("clientState"), kind })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Instant {
        Instant::parse(s).unwrap()
    }

    #[test]
    fn times_are_read_in_utc_iana_or_windows_zones() {
        let t = |dt: &str, tz: &str| instant(&json!({ "dateTime": dt, "timeZone": tz }));
        assert_eq!(t("2026-03-01T09:00:00.0000000", "UTC"), Some(at("2026-03-01T09:00:00Z")));
        assert_eq!(t("2026-07-01T09:00:00.0000000", "Europe/Berlin"), Some(at("2026-07-01T07:00:00Z")));
        assert_eq!(t("2026-07-01T09:00:00.0000000", "W. Europe Standard Time"), Some(at("2026-07-01T07:00:00Z")));
        assert_eq!(t("2026-01-01T09:00:00", "Pacific Standard Time"), Some(at("2026-01-01T17:00:00Z")));
        assert_eq!(t("2026-01-01T09:00:00", "Nowhere Standard Time"), None);
        assert_eq!(t("yesterday", "UTC"), None);
    }

    #[test]
    fn the_transaction_id_carries_our_event_id_back() {
        let tid = transaction_id("ev_123");
        assert_eq!(tid, "calsync:ev_123");
        assert_eq!(ours(&json!({ "transactionId": tid })).as_deref(), Some("ev_123"));
        // Another application's transactionId is not ours.
        assert_eq!(ours(&json!({ "transactionId": "b0a8f2c4-1d2e" })), None);
        // The extended property wins where present.
        let both = json!({ "transactionId": "calsync:x", "singleValueExtendedProperties": [{ "id": EVENT_ID_PROPERTY, "value": "ev_9" }] });
        assert_eq!(ours(&both).as_deref(), Some("ev_9"));
        // An odd id is hashed: stable, bounded, not read back.
        let odd = transaction_id("a b/c");
        assert_eq!(odd, transaction_id("a b/c"));
        assert!(odd.starts_with("calsync#") && odd.len() == 40);
        assert_eq!(ours(&json!({ "transactionId": odd })), None);
    }

    #[test]
    fn api_errors_mean_what_the_caller_must_do() {
        let body = |code: &str| serde_json::to_vec(&json!({ "error": { "code": code, "message": "m" } })).unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(api_error(410, &h, &body("SyncStateNotFound")), SyncError::Gone);
        assert_eq!(api_error(400, &h, &body("syncStateNotFound")), SyncError::Gone);
        assert!(matches!(api_error(401, &h, &body("InvalidAuthenticationToken")), SyncError::Unauthorized(_)));
        assert!(matches!(api_error(403, &h, &body("ErrorAccessDenied")), SyncError::Reauth(_)));
        assert!(matches!(api_error(403, &h, &body("ErrorQuotaExceeded")), SyncError::Permanent(_)));
        assert_eq!(api_error(404, &h, &body("ErrorItemNotFound")), SyncError::NotFound);
        assert!(matches!(api_error(502, &h, b""), SyncError::Transient(_)));
        assert!(matches!(api_error(503, &h, b""), SyncError::Transient(_)));
        assert_eq!(api_error(429, &h, b""), SyncError::RateLimited(crate::http::DEFAULT_RETRY_AFTER));
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(api_error(429, &h, b""), SyncError::RateLimited(Duration::from_secs(7)));
        assert_eq!(api_error(503, &h, b""), SyncError::RateLimited(Duration::from_secs(7)));
    }

    #[test]
    fn a_link_carries_the_end_of_its_window() {
        let link = "https://graph.microsoft.com/v1.0/me/calendars/c/calendarView/delta?$deltatoken=x".to_owned();
        let marked = with_until(link.clone(), Some(1_900_000_000));
        assert_eq!(until_of(&marked), Some(1_900_000_000));
        assert_eq!(with_until(link.clone(), None), link);
        assert_eq!(until_of(&link), None);
        let graph = Graph::new(Graph::public_endpoints(), ClientCredentials {
            client_id: "c".into(),
            client_secret: Secret::new("s"),
            redirect_uri: "https://app.example/cb".into(),
        });
        assert!(graph.token_reaches(&marked, Instant::from_unix(1_900_000_000)));
        assert!(!graph.token_reaches(&marked, Instant::from_unix(1_900_000_001)));
        assert!(!graph.token_reaches(&link, Instant::from_unix(0)), "an unmarked link is read again in full");
    }

    #[test]
    fn the_validation_token_is_decoded_before_it_is_echoed() {
        assert_eq!(
            validation_echo("validationToken=Validation%3A%20Testing%20client").as_deref(),
            Some("Validation: Testing client")
        );
        assert_eq!(validation_echo("?a=1&validationToken=abc").as_deref(), Some("abc"));
        assert_eq!(validation_echo("a=1"), None);
        assert_eq!(validation_echo("validationToken="), None);
    }
}
