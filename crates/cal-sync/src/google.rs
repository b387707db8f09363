//! Google Calendar API v3 ([`Google`]) and its push notifications
//! ([`notification`]), written from the discovery document
//! `calendar.v3.json` and Google's sync, push and error guides.
//!
//! * Consent asks for two scopes: `calendar.calendarlist.readonly` (which
//!   calendars there are, and the account: the primary calendar's id is
//!   its address) and `calendar.events` (read busy time, write bookings,
//!   watch). No `openid`/`email`, no full `calendar` scope.
//! * A sync lists `singleEvents=true`: Google expands series into instances,
//!   moved and cancelled instances included, so no recurrence rule is
//!   evaluated here.
//! * A full read sends `timeMin` only. Increments (`syncToken`) cannot be
//!   windowed and return every change; a `timeMax` on the full read would
//!   freeze the window's end at the full read's time, and an event created
//!   before it beyond that end would never be seen as the horizon slides.
//!   Items beyond the horizon are therefore kept; the caller clips.
//! * A booking's event gets a client-chosen id derived from our event id
//!   ([`remote_event_id`]), so a create retried after a lost answer meets
//!   `409` and updates the one item instead of making a second.

use std::time::Duration;

use cal_core::time::{Instant, Interval};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::http::{self, classify};
use crate::{
    Account, BusySpan, CalendarService, ClientCredentials, Cursor, Endpoints, ItemState, NextPage, OutboundEvent, RemoteCalendar,
    RemoteItem, Secret, ServiceKind, SyncError, SyncPage, Tokens, Watch, WatchRequest,
};

/// The scopes asked for, space-separated as the authorization endpoint
/// takes them.
pub const SCOPES: &str = "https://www.googleapis.com/auth/calendar.calendarlist.readonly https://www.googleapis.com/auth/calendar.events";

/// The private extended property that carries our event id.
pub const EVENT_ID_PROPERTY: &str = "calEventId";

/// Items asked for per page (Google's default; at most 2500).
pub const PAGE_SIZE: u32 = 250;

/// How long one request may take before it counts as a transient failure.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The Google Calendar client.
#[derive(Clone, Debug)]
pub struct Google {
    http: reqwest::Client,
    endpoints: Endpoints,
    credentials: ClientCredentials,
}

impl Google {
    pub fn new(endpoints: Endpoints, credentials: ClientCredentials) -> Self {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .expect("a reqwest client with rustls builds");
        Google { http, endpoints, credentials }
    }

    /// Google's public endpoints.
    pub fn public_endpoints() -> Endpoints {
        Endpoints {
            authorize: "https://accounts.google.com/o/oauth2/v2/auth".into(),
            token: "https://oauth2.googleapis.com/token".into(),
            revoke: Some("https://oauth2.googleapis.com/revoke".into()),
            api: "https://www.googleapis.com/calendar/v3".into(),
        }
    }

    /// `{api}/seg/seg/...`, each segment percent-encoded (calendar ids hold
    /// `@` and `#`).
    fn api_url(&self, segments: &[&str]) -> Result<url::Url, SyncError> {
        let mut url = url::Url::parse(&self.endpoints.api)
            .map_err(|e| SyncError::Permanent(format!("bad API endpoint {:?}: {e}", self.endpoints.api)))?;
        url.path_segments_mut()
            .map_err(|()| SyncError::Permanent(format!("bad API endpoint {:?}", self.endpoints.api)))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer, SyncError> {
        let response = request.send().await.map_err(|e| http::transport(&e))?;
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = response.text().await.map_err(|e| http::transport(&e))?;
        Ok(Answer { status, body, retry_after })
    }

    /// An API call with the access token; a success answer's JSON body.
    async fn api(&self, request: reqwest::RequestBuilder, access: &Secret) -> Result<Value, SyncError> {
        let answer = self.send(request.bearer_auth(access.expose())).await?;
        answer.ok()?;
        if answer.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&answer.body).map_err(|e| SyncError::Transient(format!("{}: unreadable answer: {e}", answer.status)))
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<Tokens, SyncError> {
        let answer = self.send(self.http.post(&self.endpoints.token).form(form)).await?;
        if answer.status == 401 {
            // invalid_client: our client id or secret is wrong, which no
            // reconnect of the provider can mend.
            return Err(SyncError::Permanent(format!("token endpoint refused our client: {}", answer.body)));
        }
        answer.ok()?;
        let token: TokenAnswer =
            serde_json::from_str(&answer.body).map_err(|e| SyncError::Transient(format!("unreadable token answer: {e}")))?;
        Ok(Tokens {
            access_token: Secret::new(token.access_token),
            refresh_token: token.refresh_token.map(Secret::new),
            expires_at: now().plus_secs(token.expires_in.unwrap_or(3600)),
            scope: token.scope,
        })
    }

    async fn patch_event(&self, access: &Secret, calendar_id: &str, remote_id: &str, event: &OutboundEvent) -> Result<String, SyncError> {
        let url = self.api_url(&["calendars", calendar_id, "events", remote_id])?;
        let body = event_body(event);
        let answer = self.api(self.http.patch(url).query(&[("sendUpdates", "none")]).json(&body), access).await?;
        Ok(answer.get("id").and_then(Value::as_str).unwrap_or(remote_id).to_owned())
    }

    async fn stop_channel(&self, access: &Secret, watch: &Watch) -> Result<(), SyncError> {
        let resource_id = watch
            .resource_id
            .as_deref()
            .ok_or_else(|| SyncError::Permanent(format!("channel {} has no resourceId to stop it with", watch.id)))?;
        let url = self.api_url(&["channels", "stop"])?;
        match self.api(self.http.post(url).json(&json!({"id": watch.id, "resourceId": resource_id})), access).await {
            Ok(_) | Err(SyncError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

struct Answer {
    status: u16,
    body: String,
    retry_after: Option<String>,
}

impl Answer {
    fn ok(&self) -> Result<(), SyncError> {
        if (200..300).contains(&self.status) {
            return Ok(());
        }
        let wait = http::retry_after(self.retry_after.as_deref(), now());
        Err(classify(self.status, &self.body, wait))
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<i64>,
    refresh_token: Option<String>,
    scope: Option<String>,
}

fn now() -> Instant {
    Instant::from_chrono(chrono::Utc::now())
}

impl CalendarService for Google {
    fn kind(&self) -> ServiceKind {
        ServiceKind::Google
    }

    fn with_redirect_uri(&self, redirect_uri: &str) -> Self {
        let mut client = self.clone();
        client.credentials.redirect_uri = redirect_uri.to_owned();
        client
    }

    fn authorization_url(&self, state: &str, code_challenge: &str) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.credentials.client_id)
            .append_pair("redirect_uri", &self.credentials.redirect_uri)
            .append_pair("scope", SCOPES)
            // A refresh token, and again on a reconnect (Google sends one
            // only with consent).
            .append_pair("access_type", "offline")
            .append_pair("prompt", "consent")
            .append_pair("include_granted_scopes", "true")
            .append_pair("state", state)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256")
            .finish();
        format!("{}?{query}", self.endpoints.authorize)
    }

    async fn exchange_code(&self, code: &str, verifier: &Secret) -> Result<Tokens, SyncError> {
        let c = &self.credentials;
        self.token_request(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier.expose()),
            ("client_id", &c.client_id),
            ("client_secret", c.client_secret.expose()),
            ("redirect_uri", &c.redirect_uri),
        ])
        .await
    }

    async fn refresh(&self, refresh_token: &Secret) -> Result<Tokens, SyncError> {
        let c = &self.credentials;
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose()),
            ("client_id", &c.client_id),
            ("client_secret", c.client_secret.expose()),
        ])
        .await
    }

    async fn revoke(&self, refresh_token: &Secret) -> Result<(), SyncError> {
        let Some(endpoint) = &self.endpoints.revoke else { return Ok(()) };
        let answer = self.send(self.http.post(endpoint).form(&[("token", refresh_token.expose())])).await?;
        // `invalid_token`: already revoked or expired, which is what we want.
        if answer.status == 400 && answer.body.contains("invalid_token") {
            return Ok(());
        }
        answer.ok()
    }

    /// The primary calendar's id, which is the account's address: the only
    /// account id the calendar scopes give (no `openid` asked for). Stable
    /// but for a Workspace admin renaming the user, after which a reconnect
    /// looks like another account.
    async fn account(&self, access: &Secret) -> Result<Account, SyncError> {
        let url = self.api_url(&["users", "me", "calendarList", "primary"])?;
        let entry = self.api(self.http.get(url), access).await?;
        let id = entry.get("id").and_then(Value::as_str).ok_or_else(|| SyncError::Transient("the primary calendar has no id".into()))?;
        Ok(Account { subject: id.to_owned(), display: id.to_owned() })
    }

    /// Calendars whose events we can read (`minAccessRole=reader`: a
    /// free/busy-only calendar cannot be listed); writable where the role
    /// is `writer` or `owner`.
    async fn calendars(&self, access: &Secret) -> Result<Vec<RemoteCalendar>, SyncError> {
        let mut calendars = Vec::new();
        let mut page: Option<String> = None;
        for _ in 0..crate::engine::MAX_PAGES {
            let url = self.api_url(&["users", "me", "calendarList"])?;
            let mut query = vec![("minAccessRole", "reader".to_owned()), ("maxResults", PAGE_SIZE.to_string())];
            if let Some(p) = &page {
                query.push(("pageToken", p.clone()));
            }
            let list: CalendarList = from_value(self.api(self.http.get(url).query(&query), access).await?)?;
            calendars.extend(list.items.into_iter().filter(|e| !e.deleted).map(|e| RemoteCalendar {
                name: e.summary_override.or(e.summary).unwrap_or_else(|| e.id.clone()),
                writable: matches!(e.access_role.as_deref(), Some("writer" | "owner")),
                primary: e.primary,
                time_zone: e.time_zone,
                id: e.id,
            }));
            match list.next_page_token {
                Some(next) => page = Some(next),
                None => return Ok(calendars),
            }
        }
        Err(SyncError::Permanent("calendarList pages without end".into()))
    }

    async fn sync_page(&self, access: &Secret, calendar_id: &str, cursor: &Cursor) -> Result<SyncPage, SyncError> {
        // Every page of one read repeats the read's query (Google's paging
        // rule), so a `Page` cursor is that query with its pageToken.
        let query: Vec<(String, String)> = match cursor {
            Cursor::Full { from, to: _ } => base_query(&[("timeMin", from.rfc3339())]),
            Cursor::Token(token) => base_query(&[("syncToken", token.clone())]),
            Cursor::Page(page) => url::form_urlencoded::parse(page.as_bytes()).into_owned().collect(),
        };
        let url = self.api_url(&["calendars", calendar_id, "events"])?;
        let list: Events = from_value(self.api(self.http.get(url).query(&query), access).await?)?;
        let items = list.items.iter().map(remote_item).collect();
        let next = match (list.next_page_token, list.next_sync_token) {
            (Some(page), _) => {
                let mut next = url::form_urlencoded::Serializer::new(String::new());
                next.extend_pairs(query.iter().filter(|(k, _)| k != "pageToken"));
                next.append_pair("pageToken", &page);
                NextPage::More(next.finish())
            }
            (None, Some(token)) => NextPage::Done(token),
            // Google gives no token to a query it cannot increment: asking
            // again will not help.
            (None, None) => return Err(SyncError::Permanent("a last page without nextSyncToken".into())),
        };
        Ok(SyncPage { items, next })
    }

    async fn put_event(
        &self,
        access: &Secret,
        calendar_id: &str,
        remote_id: Option<&str>,
        event: &OutboundEvent,
    ) -> Result<String, SyncError> {
        if let Some(remote_id) = remote_id {
            return self.patch_event(access, calendar_id, remote_id, event).await;
        }
        let id = remote_event_id(&event.event_id);
        let mut body = event_body(event);
        body["id"] = json!(id);
        let url = self.api_url(&["calendars", calendar_id, "events"])?;
        let answer = self.send(self.http.post(url).query(&[("sendUpdates", "none")]).bearer_auth(access.expose()).json(&body)).await?;
        if answer.status == 409 {
            // The id exists: our own earlier create whose answer was lost,
            // or our booking deleted remotely (ids are never reused): make
            // it ours again as it should be.
            return self.patch_event(access, calendar_id, &id, event).await;
        }
        answer.ok()?;
        Ok(id)
    }

    async fn delete_event(&self, access: &Secret, calendar_id: &str, remote_id: &str) -> Result<(), SyncError> {
        let url = self.api_url(&["calendars", calendar_id, "events", remote_id])?;
        match self.api(self.http.delete(url).query(&[("sendUpdates", "none")]), access).await {
            // 410: already deleted.
            Ok(_) | Err(SyncError::NotFound | SyncError::Gone) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn watch(&self, access: &Secret, calendar_id: &str, request: &WatchRequest) -> Result<Watch, SyncError> {
        let url = self.api_url(&["calendars", calendar_id, "events", "watch"])?;
        let body = json!({
            "id": request.channel_id,
            "type": "web_hook",
            "address": request.address,
            "token": request.secret.expose(),
            "expiration": (request.expires_at.unix() * 1000).to_string(),
        });
        let channel: Channel = from_value(self.api(self.http.post(url).json(&body), access).await?)?;
        let expires_at = match channel.expiration.as_deref().map(str::parse::<i64>) {
            Some(Ok(ms)) => Instant::from_unix(ms.div_euclid(1000)),
            _ => request.expires_at,
        };
        Ok(Watch { id: channel.id, resource_id: Some(channel.resource_id), expires_at })
    }

    /// A new channel first, then the old one stopped: both deliver for a
    /// moment, none is missed. A failure to stop the old one is logged, not
    /// returned: the new channel works, and the old one expires by itself.
    async fn renew(&self, access: &Secret, calendar_id: &str, old: &Watch, request: &WatchRequest) -> Result<Watch, SyncError> {
        let new = self.watch(access, calendar_id, request).await?;
        if let Err(e) = self.stop_channel(access, old).await {
            tracing::warn!(channel = %old.id, error = %e, "the renewed channel was not stopped; it will expire");
        }
        Ok(new)
    }

    async fn unwatch(&self, access: &Secret, watch: &Watch) -> Result<(), SyncError> {
        self.stop_channel(access, watch).await
    }
}

fn base_query(extra: &[(&str, String)]) -> Vec<(String, String)> {
    let mut query = vec![("singleEvents".to_owned(), "true".to_owned()), ("maxResults".to_owned(), PAGE_SIZE.to_string())];
    query.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), v.clone())));
    query
}

fn from_value<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, SyncError> {
    serde_json::from_value(value).map_err(|e| SyncError::Transient(format!("unreadable answer: {e}")))
}

/// The Event resource of our booking: busy, confirmed (which also undeletes
/// it), our id in a private extended property.
fn event_body(event: &OutboundEvent) -> Value {
    json!({
        "summary": event.title,
        "description": event.description,
        "start": {"dateTime": event.start.rfc3339()},
        "end": {"dateTime": event.end.rfc3339()},
        "status": "confirmed",
        "transparency": "opaque",
        "extendedProperties": {"private": {EVENT_ID_PROPERTY: event.event_id}},
    })
}

/// The id of our booking's Google event: base32hex (RFC 4648 §7, lower
/// case, no padding) of SHA-256 of our event id. 52 characters from
/// `a-v0-9`, which is what Event.id allows (5 to 1024 of them), whatever
/// our id looks like.
pub fn remote_event_id(event_id: &str) -> String {
    base32hex(&Sha256::digest(event_id.as_bytes()))
}

fn base32hex(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CalendarList {
    #[serde(default)]
    items: Vec<CalendarListEntry>,
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CalendarListEntry {
    id: String,
    summary: Option<String>,
    summary_override: Option<String>,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    deleted: bool,
    access_role: Option<String>,
    time_zone: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Events {
    #[serde(default)]
    items: Vec<Event>,
    next_page_token: Option<String>,
    next_sync_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Event {
    id: String,
    status: Option<String>,
    transparency: Option<String>,
    start: Option<EventTime>,
    end: Option<EventTime>,
    #[serde(default)]
    attendees: Vec<Attendee>,
    extended_properties: Option<ExtendedProperties>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventTime {
    date: Option<String>,
    date_time: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Attendee {
    #[serde(rename = "self", default)]
    is_self: bool,
    response_status: Option<String>,
}

#[derive(Deserialize)]
struct ExtendedProperties {
    #[serde(default)]
    private: std::collections::HashMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Channel {
    id: String,
    resource_id: String,
    expiration: Option<String>,
}

/// One listed event (an instance, with `singleEvents`) as the sync sees it.
fn remote_item(event: &Event) -> RemoteItem {
    let ours = event.extended_properties.as_ref().and_then(|p| p.private.get(EVENT_ID_PROPERTY)).cloned();
    RemoteItem { id: event.id.clone(), state: item_state(event), ours }
}

fn item_state(event: &Event) -> ItemState {
    if event.status.as_deref() == Some("cancelled") {
        return ItemState::Removed;
    }
    if event.transparency.as_deref() == Some("transparent") {
        return ItemState::Free;
    }
    if event.attendees.iter().any(|a| a.is_self && a.response_status.as_deref() == Some("declined")) {
        return ItemState::Free;
    }
    match busy_span(event) {
        Some(span) => ItemState::Blocks(span),
        None => {
            tracing::warn!(event = %event.id, "an event without a readable start and end blocks nothing");
            ItemState::Free
        }
    }
}

fn busy_span(event: &Event) -> Option<BusySpan> {
    let (start, end) = (event.start.as_ref()?, event.end.as_ref()?);
    if let (Some(s), Some(e)) = (&start.date_time, &end.date_time) {
        let span = Interval::non_empty(Instant::parse(s).ok()?, Instant::parse(e).ok()?)?;
        return Some(BusySpan::Timed(span));
    }
    let (s, e) = (start.date.as_deref()?, end.date.as_deref()?);
    let (start, end) = (NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?, NaiveDate::parse_from_str(e, "%Y-%m-%d").ok()?);
    (end > start).then_some(BusySpan::AllDay { start, end })
}

/// What a notification says of the watched calendar
/// (`X-Goog-Resource-State`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceState {
    /// The channel was just created: nothing changed.
    Sync,
    /// The events changed: pull the calendar.
    Exists,
    /// The resource is gone.
    NotExists,
}

/// One push notification, read from its headers (the body is empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoogleNotification {
    pub channel_id: String,
    /// The channel token we set (compare its hash with the stored one).
    pub token: Option<Secret>,
    pub resource_id: String,
    pub state: ResourceState,
    /// Increases per channel; the first (`sync`) message is 1.
    pub message_number: u64,
    pub expires_at: Option<Instant>,
}

/// Reads a notification's `X-Goog-*` headers through `header` (a lookup by
/// name that ignores case). `None`: not a well-formed Google notification
/// (a header missing or unreadable), to be answered with a 4xx and ignored.
pub fn notification<'h>(header: impl Fn(&str) -> Option<&'h str>) -> Option<GoogleNotification> {
    let state = match header("X-Goog-Resource-State")? {
        "sync" => ResourceState::Sync,
        "exists" => ResourceState::Exists,
        "not_exists" => ResourceState::NotExists,
        _ => return None,
    };
    // Optional, and informative only: an unreadable one is left out.
    let expires_at = header("X-Goog-Channel-Expiration")
        .and_then(|text| chrono::DateTime::parse_from_rfc2822(text).ok())
        .map(|t| Instant::from_chrono(t.to_utc()));
    Some(GoogleNotification {
        channel_id: header("X-Goog-Channel-ID").filter(|v| !v.is_empty())?.to_owned(),
        token: header("X-Goog-Channel-Token").map(Secret::new),
        resource_id: header("X-Goog-Resource-ID").filter(|v| !v.is_empty())?.to_owned(),
        state,
        message_number: header("X-Goog-Message-Number")?.trim().parse().ok()?,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32hex_is_rfc_4648s_in_lower_case() {
        // RFC 4648 §10 test vectors, padding dropped.
        for (input, output) in
            [("", ""), ("f", "co"), ("fo", "cpng"), ("foo", "cpnmu"), ("foob", "cpnmuog"), ("fooba", "cpnmuoj1"), ("foobar", "cpnmuoj1e8")]
        {
            assert_eq!(base32hex(input.as_bytes()), output);
        }
    }

    #[test]
    fn a_remote_id_follows_the_event_id_rules_and_is_stable() {
        let id = remote_event_id("ev_0001");
        assert_eq!(id.len(), 52);
        assert!(id.chars().all(|c| matches!(c, 'a'..='v' | '0'..='9')));
        assert_eq!(id, remote_event_id("ev_0001"));
        assert_ne!(id, remote_event_id("ev_0002"));
    }
}
