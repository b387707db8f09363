//! [`FakeGoogle`]: Google's OAuth endpoints and Calendar API v3 as an
//! in-memory HTTP server, written from the discovery document
//! (`calendar.v3.json`) and Google's OAuth, sync, push and error guides.
//!
//! What it does as Google does:
//! * OAuth: `/o/oauth2/v2/auth` redirects with a code (the user consents at
//!   once); `/token` exchanges it only with the right client, redirect URI
//!   and a PKCE verifier whose S256 matches; refresh tokens; access tokens
//!   that expire on the fake's clock (then `401`); `/revoke` ends the grant
//!   (then `401` and `invalid_grant`). Scopes are checked per method as the
//!   discovery document lists them.
//! * `calendarList.list/get` with paging and `minAccessRole`.
//! * `events.insert/get/patch/update/delete` with ids, etags, `updated`,
//!   `sequence`, status, transparency, attendees, extended properties and
//!   recurrence; client-chosen ids checked against the Event.id rules,
//!   `409 duplicate` for an id that exists (deleted ones too); a deleted
//!   event stays `cancelled` and is restored by writing `status: confirmed`.
//! * `events.list` with `singleEvents=true` only (the fake expands series;
//!   see [`recur`] for which rules), `timeMin`/`timeMax`, `showDeleted`,
//!   `maxResults`, `pageToken` (the rest of the query must be repeated),
//!   `syncToken` (changes since, deleted items `cancelled`; refused with
//!   `timeMin`/`timeMax`; `410` once invalidated).
//! * `events.watch` and `channels.stop`; notifications are POSTed to the
//!   channel's address with the documented `X-Goog-*` headers: `sync` first,
//!   then `exists` on each change of the calendar.
//!
//! Where it is simpler than Google, on purpose: one account; all-day items
//! are compared with `timeMin`/`timeMax` at UTC midnight; channel addresses
//! may be `http://` (tests listen on 127.0.0.1); a notification is tried
//! once; a series without `COUNT`/`UNTIL` is expanded to
//! [`recur::MAX_INSTANCES`] instances.

pub mod recur;
mod store;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use self::store::{ApiError, Calendar, Stamp, is_cancelled};
use crate::server::{FakeRequest, FakeResponse, FakeServer};

/// The OAuth client the fake knows.
pub const CLIENT_ID: &str = "fake-client.apps.googleusercontent.com";
pub const CLIENT_SECRET: &str = "fake-client-secret";
/// The one redirect URI registered for [`CLIENT_ID`].
pub const REDIRECT_URI: &str = "https://app.example/oauth/google/callback";
/// The account: also its primary calendar's id.
pub const ACCOUNT: &str = "ana@example.com";
/// Seconds an access token lives (Google answers `expires_in: 3599`).
pub const ACCESS_TOKEN_SECS: i64 = 3599;
/// The longest channel the fake grants, from its clock (a fake choice).
pub const MAX_CHANNEL_SECS: i64 = 7 * 86_400;

const PATH_AUTHORIZE: &str = "/o/oauth2/v2/auth";
const PATH_TOKEN: &str = "/token";
const PATH_REVOKE: &str = "/revoke";
const PATH_API: &str = "/calendar/v3";

const SCOPE_ROOT: &str = "https://www.googleapis.com/auth/";
/// Scopes that may read the calendar list (calendarList.list in the
/// discovery document).
const CALENDAR_LIST_SCOPES: &[&str] = &["calendar", "calendar.calendarlist", "calendar.calendarlist.readonly", "calendar.readonly"];
/// Scopes that may list and watch events (events.list, events.watch).
const EVENTS_READ_SCOPES: &[&str] = &[
    "calendar",
    "calendar.app.created",
    "calendar.events",
    "calendar.events.freebusy",
    "calendar.events.owned",
    "calendar.events.owned.readonly",
    "calendar.events.public.readonly",
    "calendar.events.readonly",
    "calendar.readonly",
];
/// Scopes that may write events (events.insert/patch/update/delete).
const EVENTS_WRITE_SCOPES: &[&str] = &["calendar", "calendar.app.created", "calendar.events", "calendar.events.owned"];

/// A fault the next API calls answer with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `429 Too Many Requests` with this `Retry-After` value.
    TooManyRequests { retry_after: String },
    /// `403` `rateLimitExceeded` (no `Retry-After`, as Google sends it).
    RateLimitExceeded,
    /// `403` `userRateLimitExceeded`.
    UserRateLimitExceeded,
    /// `403` `forbidden`.
    Forbidden,
    /// `401` `authError`, whatever the token.
    Unauthorized,
    /// `500` `backendError`.
    ServerError,
    /// The request is carried out, but the answer is lost: `503` instead.
    LostAnswer,
}

/// A channel as the fake keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelView {
    pub id: String,
    pub resource_id: String,
    pub calendar_id: String,
    pub address: String,
    pub token: Option<String>,
    /// Unix milliseconds.
    pub expiration_ms: i64,
    pub stopped: bool,
}

/// One notification the fake sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub channel_id: String,
    pub state: String,
    pub message_number: u64,
    /// The receiver's status, `None` if it could not be reached.
    pub status: Option<u16>,
}

struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    scope: String,
    offline: bool,
    expires: i64,
    used: bool,
}

struct Grant {
    scope: String,
    revoked: bool,
}

struct Access {
    grant: usize,
    expires: i64,
}

struct Page {
    calendar: String,
    query: Vec<(String, String)>,
    items: Vec<Value>,
    offset: usize,
    sync_token: String,
}

struct Channel {
    view: ChannelView,
    messages: u64,
}

struct Outgoing {
    address: String,
    headers: Vec<(&'static str, String)>,
    channel_id: String,
    state: String,
    number: u64,
}

struct State {
    base: String,
    now: i64,
    counter: u64,
    codes: HashMap<String, Code>,
    grants: Vec<Grant>,
    refresh_tokens: HashMap<String, usize>,
    access_tokens: HashMap<String, Access>,
    calendars: Vec<Calendar>,
    page_size: Option<usize>,
    pages: HashMap<String, Page>,
    faults: VecDeque<Fault>,
    channels: Vec<Channel>,
    queued: usize,
    deliveries: Vec<Delivery>,
    outbox: mpsc::UnboundedSender<Outgoing>,
}

/// The fake Google, serving on 127.0.0.1 until dropped.
pub struct FakeGoogle {
    server: FakeServer,
    state: Arc<Mutex<State>>,
    sender: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGoogle {
    fn drop(&mut self) {
        self.sender.abort();
    }
}

impl FakeGoogle {
    /// A fake with [`ACCOUNT`]'s primary calendar (owner, `Europe/Berlin`),
    /// its clock at the real time.
    pub async fn start() -> FakeGoogle {
        let (outbox, inbox) = mpsc::unbounded_channel();
        let state = Arc::new(Mutex::new(State {
            base: String::new(),
            now: Utc::now().timestamp(),
            counter: 0,
            codes: HashMap::new(),
            grants: Vec::new(),
            refresh_tokens: HashMap::new(),
            access_tokens: HashMap::new(),
            calendars: Vec::new(),
            page_size: None,
            pages: HashMap::new(),
            faults: VecDeque::new(),
            channels: Vec::new(),
            queued: 0,
            deliveries: Vec::new(),
            outbox,
        }));
        let handler_state = state.clone();
        let server = FakeServer::start(move |request| {
            let state = handler_state.clone();
            async move { handle(&state, &request) }
        })
        .await;
        let sender = tokio::spawn(deliver(inbox, state.clone()));
        let fake = FakeGoogle { server, state, sender };
        fake.lock().base = fake.server.base_url();
        fake.add_calendar(ACCOUNT, ACCOUNT, "owner", "Europe/Berlin");
        fake.lock().calendars[0].primary = true;
        fake
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("fake google state")
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn authorize_url(&self) -> String {
        format!("{}{PATH_AUTHORIZE}", self.base_url())
    }

    pub fn token_url(&self) -> String {
        format!("{}{PATH_TOKEN}", self.base_url())
    }

    pub fn revoke_url(&self) -> String {
        format!("{}{PATH_REVOKE}", self.base_url())
    }

    pub fn api_url(&self) -> String {
        format!("{}{PATH_API}", self.base_url())
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<FakeRequest> {
        self.server.requests()
    }

    /// The fake's clock (unix seconds): token and channel expiry.
    pub fn now(&self) -> i64 {
        self.lock().now
    }

    pub fn advance(&self, secs: i64) {
        self.lock().now += secs;
    }

    /// Another calendar on the account's list. `access_role`: `owner`,
    /// `writer`, `reader` or `freeBusyReader`.
    pub fn add_calendar(&self, id: &str, summary: &str, access_role: &str, time_zone: &str) {
        let mut s = self.lock();
        let resource_id = format!("res{}", next(&mut s));
        s.calendars.push(Calendar::new(id, summary, access_role, time_zone, false, resource_id));
    }

    /// Grants a code as if the user consented, without the redirect (the
    /// same as following [`FakeGoogle::authorize_url`]).
    pub fn grant_code(&self, code_challenge: &str, scope: &str) -> String {
        let mut s = self.lock();
        new_code(&mut s, CLIENT_ID, REDIRECT_URI, code_challenge, scope, true)
    }

    /// An access token for `scope` (a grant made directly, for tests that
    /// are not about OAuth).
    pub fn access_token(&self, scope: &str) -> String {
        let mut s = self.lock();
        s.grants.push(Grant { scope: scope.into(), revoked: false });
        let grant = s.grants.len() - 1;
        new_access(&mut s, grant)
    }

    /// The user removes the app's access in their account: every grant ends.
    pub fn revoke_all(&self) {
        for g in &mut self.lock().grants {
            g.revoked = true;
        }
    }

    /// Pages hold at most `n` items, whatever `maxResults` asks.
    pub fn set_page_size(&self, n: usize) {
        self.lock().page_size = Some(n.max(1));
    }

    /// The next `n` API calls answer with `fault`.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut s = self.lock();
        s.faults.extend(std::iter::repeat_n(fault, n));
    }

    /// Every sync token issued so far for `calendar_id` is answered `410`.
    pub fn invalidate_sync_tokens(&self, calendar_id: &str) {
        let mut s = self.lock();
        calendar_mut(&mut s, calendar_id).generation += 1;
    }

    /// Creates an event as the user would in Google Calendar; its id.
    pub fn create(&self, calendar_id: &str, event: Value) -> String {
        self.edit(calendar_id, |cal, stamp, auto| cal.insert(event, stamp, auto)).get("id").and_then(Value::as_str).expect("id").to_owned()
    }

    /// Changes an event or one instance of a series (moving, cancelling,
    /// declining, making transparent: any Event fields).
    pub fn patch(&self, calendar_id: &str, id: &str, patch: Value) -> Value {
        self.edit(calendar_id, |cal, stamp, _| cal.patch(id, &patch, stamp))
    }

    /// Deletes an event or one instance of a series.
    pub fn delete(&self, calendar_id: &str, id: &str) {
        self.edit(calendar_id, |cal, stamp, _| cal.delete(id, stamp).map(|()| Value::Null));
    }

    fn edit(&self, calendar_id: &str, f: impl FnOnce(&mut Calendar, &Stamp, String) -> Result<Value, ApiError>) -> Value {
        let mut s = self.lock();
        let (stamp, auto) = stamp(&mut s);
        let index = calendar_index(&s, calendar_id).unwrap_or_else(|| panic!("no calendar {calendar_id:?}"));
        let out = f(&mut s.calendars[index], &stamp, auto).unwrap_or_else(|e| panic!("{}: {}", e.status, e.message));
        changed(&mut s, index);
        out
    }

    /// The event or instance as `events.get` answers it.
    pub fn event(&self, calendar_id: &str, id: &str) -> Option<Value> {
        let mut s = self.lock();
        calendar_mut(&mut s, calendar_id).get(id)
    }

    /// What a user sees: every listed item (instances expanded) that is
    /// not cancelled.
    pub fn visible(&self, calendar_id: &str) -> Vec<Value> {
        let mut s = self.lock();
        calendar_mut(&mut s, calendar_id).rows.values().filter(|r| !is_cancelled(&r.event)).map(|r| r.event.clone()).collect()
    }

    /// The visible items whose private extended property `key` is `value`.
    pub fn visible_with_property(&self, calendar_id: &str, key: &str, value: &str) -> Vec<Value> {
        self.visible(calendar_id)
            .into_iter()
            .filter(|e| e.pointer(&format!("/extendedProperties/private/{key}")).and_then(Value::as_str) == Some(value))
            .collect()
    }

    pub fn channels(&self) -> Vec<ChannelView> {
        self.lock().channels.iter().map(|c| c.view.clone()).collect()
    }

    /// Notifications sent so far (after [`FakeGoogle::settle`], all queued).
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.lock().deliveries.clone()
    }

    /// Waits until every queued notification was sent (at most 5 s).
    pub async fn settle(&self) {
        for _ in 0..500 {
            {
                let s = self.lock();
                if s.deliveries.len() >= s.queued {
                    return;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("notifications still queued after 5 s");
    }
}

fn next(s: &mut State) -> u64 {
    s.counter += 1;
    s.counter
}

fn rfc3339_ms(t: i64) -> String {
    DateTime::from_timestamp(t, 0).expect("time in range").format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn stamp(s: &mut State) -> (Stamp, String) {
    let n = next(s);
    // Server ids: base32hex, as Google's own are.
    let auto = format!("fake{n:08}");
    (Stamp { now: rfc3339_ms(s.now), etag: format!("\"{n}\""), organizer: ACCOUNT.into() }, auto)
}

fn calendar_index(s: &State, id: &str) -> Option<usize> {
    if id == "primary" {
        return s.calendars.iter().position(|c| c.primary);
    }
    s.calendars.iter().position(|c| c.id == id)
}

fn calendar_mut<'a>(s: &'a mut State, id: &str) -> &'a mut Calendar {
    let i = calendar_index(s, id).unwrap_or_else(|| panic!("no calendar {id:?}"));
    &mut s.calendars[i]
}

fn new_code(s: &mut State, client_id: &str, redirect_uri: &str, challenge: &str, scope: &str, offline: bool) -> String {
    let code = format!("4/fake-code-{}", next(s));
    let expires = s.now + 600;
    s.codes.insert(
        code.clone(),
        Code {
            client_id: client_id.into(),
            redirect_uri: redirect_uri.into(),
            challenge: challenge.into(),
            scope: scope.into(),
            offline,
            expires,
            used: false,
        },
    );
    code
}

fn new_access(s: &mut State, grant: usize) -> String {
    let token = format!("ya29.fake-{}", next(s));
    let expires = s.now + ACCESS_TOKEN_SECS;
    s.access_tokens.insert(token.clone(), Access { grant, expires });
    token
}

/// After a change to calendar `index`: recompute its items, and if any
/// changed, queue an `exists` notification on each of its live channels.
fn changed(s: &mut State, index: usize) {
    if !s.calendars[index].refresh() {
        return;
    }
    let resource_id = s.calendars[index].resource_id.clone();
    let now_ms = s.now * 1000;
    let live: Vec<usize> = (0..s.channels.len())
        .filter(|&i| {
            let v = &s.channels[i].view;
            v.resource_id == resource_id && !v.stopped && v.expiration_ms > now_ms
        })
        .collect();
    for i in live {
        notify(s, i, "exists");
    }
}

fn notify(s: &mut State, channel: usize, state: &str) {
    let c = &mut s.channels[channel];
    c.messages += 1;
    let v = &c.view;
    let expiration =
        DateTime::from_timestamp(v.expiration_ms.div_euclid(1000), 0).expect("in range").format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let mut headers = vec![
        ("X-Goog-Channel-ID", v.id.clone()),
        ("X-Goog-Channel-Expiration", expiration),
        ("X-Goog-Resource-ID", v.resource_id.clone()),
        ("X-Goog-Resource-URI", format!("{}{PATH_API}/calendars/{}/events?alt=json", s.base, v.calendar_id)),
        ("X-Goog-Resource-State", state.to_owned()),
        ("X-Goog-Message-Number", c.messages.to_string()),
    ];
    if let Some(token) = &v.token {
        headers.push(("X-Goog-Channel-Token", token.clone()));
    }
    let out = Outgoing { address: v.address.clone(), headers, channel_id: v.id.clone(), state: state.into(), number: c.messages };
    s.queued += 1;
    // The receiving task lives as long as the fake.
    let _ = s.outbox.send(out);
}

/// Sends queued notifications one at a time, in order.
async fn deliver(mut inbox: mpsc::UnboundedReceiver<Outgoing>, state: Arc<Mutex<State>>) {
    let client = reqwest::Client::new();
    while let Some(out) = inbox.recv().await {
        let mut request = client.post(&out.address);
        for (name, value) in &out.headers {
            request = request.header(*name, value);
        }
        let status = request.send().await.ok().map(|r| r.status().as_u16());
        state.lock().expect("fake google state").deliveries.push(Delivery {
            channel_id: out.channel_id,
            state: out.state,
            message_number: out.number,
            status,
        });
    }
}

fn error(status: u16, reason: &str, message: &str) -> FakeResponse {
    let domain = match reason {
        "rateLimitExceeded" | "userRateLimitExceeded" => "usageLimits",
        "authError" | "insufficientPermissions" | "forbidden" | "backendError" => "global",
        _ => "calendar",
    };
    FakeResponse::json(
        status,
        &json!({"error": {"errors": [{"domain": domain, "reason": reason, "message": message}], "code": status, "message": message}}),
    )
}

fn api_error(e: ApiError) -> FakeResponse {
    error(e.status, e.reason, &e.message)
}

fn oauth_error(status: u16, code: &str, description: &str) -> FakeResponse {
    FakeResponse::json(status, &json!({"error": code, "error_description": description}))
}

fn handle(state: &Mutex<State>, r: &FakeRequest) -> FakeResponse {
    let mut s = state.lock().expect("fake google state");
    match (r.method.as_str(), r.path.as_str()) {
        ("GET", PATH_AUTHORIZE) => authorize(&mut s, r),
        ("POST", PATH_TOKEN) => token(&mut s, r),
        ("POST", PATH_REVOKE) => revoke(&mut s, r),
        (_, path) if path.starts_with(PATH_API) => {
            let fault = s.faults.pop_front();
            if let Some(answer) = fault.as_ref().and_then(fault_answer) {
                return answer;
            }
            let segments: Vec<String> = path[PATH_API.len()..]
                .split('/')
                .filter(|p| !p.is_empty())
                .map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned())
                .collect();
            let answer = api(&mut s, r, &segments.iter().map(String::as_str).collect::<Vec<_>>());
            if fault == Some(Fault::LostAnswer) {
                return error(503, "backendError", "The service is currently unavailable.");
            }
            answer
        }
        _ => error(404, "notFound", "Not Found"),
    }
}

fn fault_answer(fault: &Fault) -> Option<FakeResponse> {
    Some(match fault {
        Fault::TooManyRequests { retry_after } => {
            error(429, "rateLimitExceeded", "Rate Limit Exceeded").with_header("retry-after", retry_after)
        }
        Fault::RateLimitExceeded => error(403, "rateLimitExceeded", "Rate Limit Exceeded"),
        Fault::UserRateLimitExceeded => error(403, "userRateLimitExceeded", "User Rate Limit Exceeded"),
        Fault::Forbidden => error(403, "forbidden", "Forbidden"),
        Fault::Unauthorized => error(401, "authError", "Invalid Credentials"),
        Fault::ServerError => error(500, "backendError", "Backend Error"),
        Fault::LostAnswer => return None,
    })
}

fn authorize(s: &mut State, r: &FakeRequest) -> FakeResponse {
    let p = |k: &str| r.param(k).unwrap_or("");
    if p("client_id") != CLIENT_ID {
        return FakeResponse::json(401, &json!({"error": "invalid_client", "error_description": "The OAuth client was not found."}));
    }
    if p("redirect_uri") != REDIRECT_URI {
        return oauth_error(400, "redirect_uri_mismatch", "redirect_uri does not match a registered one");
    }
    if p("response_type") != "code" {
        return oauth_error(400, "unsupported_response_type", "response_type must be code");
    }
    // This fake takes S256 only (Google also takes plain).
    if p("code_challenge_method") != "S256" || p("code_challenge").len() != 43 {
        return oauth_error(400, "invalid_request", "code_challenge with code_challenge_method=S256 is required");
    }
    let scope = p("scope");
    let known = |sc: &str| matches!(sc, "openid" | "email" | "profile") || sc.strip_prefix(SCOPE_ROOT).is_some();
    if scope.is_empty() || !scope.split(' ').all(known) {
        return oauth_error(400, "invalid_scope", "Some requested scopes were invalid.");
    }
    let code = new_code(s, CLIENT_ID, REDIRECT_URI, p("code_challenge"), scope, p("access_type") == "offline");
    let mut location = url::Url::parse(REDIRECT_URI).expect("redirect URI");
    location.query_pairs_mut().append_pair("state", p("state")).append_pair("code", &code).append_pair("scope", scope);
    FakeResponse::empty(302).with_header("location", location.as_str())
}

fn token(s: &mut State, r: &FakeRequest) -> FakeResponse {
    let form: HashMap<String, String> = r.form().into_iter().collect();
    let f = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if f("client_id") != CLIENT_ID || f("client_secret") != CLIENT_SECRET {
        return oauth_error(401, "invalid_client", "Unauthorized");
    }
    match f("grant_type") {
        "authorization_code" => {
            let now = s.now;
            let Some(code) = s.codes.get_mut(f("code")) else { return oauth_error(400, "invalid_grant", "Malformed auth code.") };
            if code.used || code.expires <= now || code.client_id != f("client_id") {
                return oauth_error(400, "invalid_grant", "Bad Request");
            }
            if code.redirect_uri != f("redirect_uri") {
                return oauth_error(400, "redirect_uri_mismatch", "Bad Request");
            }
            let verifier = f("code_verifier");
            if verifier.is_empty() {
                return oauth_error(400, "invalid_grant", "Missing code verifier.");
            }
            let valid = (43..=128).contains(&verifier.len()) && verifier.chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c));
            if !valid || URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != code.challenge {
                return oauth_error(400, "invalid_grant", "Invalid code verifier.");
            }
            code.used = true;
            let (scope, offline) = (code.scope.clone(), code.offline);
            s.grants.push(Grant { scope: scope.clone(), revoked: false });
            let grant = s.grants.len() - 1;
            let access = new_access(s, grant);
            let mut body = json!({"access_token": access, "expires_in": ACCESS_TOKEN_SECS, "scope": scope, "token_type": "Bearer"});
            if offline {
                let refresh = format!("1//fake-refresh-{}", next(s));
                s.refresh_tokens.insert(refresh.clone(), grant);
                body["refresh_token"] = json!(refresh);
            }
            FakeResponse::json(200, &body)
        }
        "refresh_token" => {
            let grant = match s.refresh_tokens.get(f("refresh_token")) {
                Some(&g) if !s.grants[g].revoked => g,
                _ => return oauth_error(400, "invalid_grant", "Token has been expired or revoked."),
            };
            let access = new_access(s, grant);
            let scope = s.grants[grant].scope.clone();
            FakeResponse::json(
                200,
                &json!({"access_token": access, "expires_in": ACCESS_TOKEN_SECS, "scope": scope, "token_type": "Bearer"}),
            )
        }
        _ => oauth_error(400, "unsupported_grant_type", "Invalid grant_type"),
    }
}

fn revoke(s: &mut State, r: &FakeRequest) -> FakeResponse {
    let form: HashMap<String, String> = r.form().into_iter().collect();
    let token = form.get("token").map(String::as_str).or_else(|| r.param("token")).unwrap_or("");
    let grant = s.refresh_tokens.get(token).copied().or_else(|| s.access_tokens.get(token).map(|a| a.grant));
    match grant {
        Some(g) if !s.grants[g].revoked => {
            s.grants[g].revoked = true;
            FakeResponse::json(200, &json!({}))
        }
        _ => oauth_error(400, "invalid_token", "Token expired or revoked"),
    }
}

/// The granted scope of a live access token, else a `401` answer.
fn authorized(s: &State, r: &FakeRequest) -> Result<String, FakeResponse> {
    let refused = || {
        error(401, "authError", "Invalid Credentials")
            .with_header("www-authenticate", "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"")
    };
    let access = r.bearer().and_then(|t| s.access_tokens.get(t)).ok_or_else(refused)?;
    let grant = &s.grants[access.grant];
    if grant.revoked || access.expires <= s.now {
        return Err(refused());
    }
    Ok(grant.scope.clone())
}

fn needs(scope: &str, allowed: &[&str]) -> Result<(), FakeResponse> {
    let granted = scope.split(' ').filter_map(|s| s.strip_prefix(SCOPE_ROOT)).any(|s| allowed.contains(&s));
    if granted { Ok(()) } else { Err(error(403, "insufficientPermissions", "Request had insufficient authentication scopes.")) }
}

fn api(s: &mut State, r: &FakeRequest, path: &[&str]) -> FakeResponse {
    let scope = match authorized(s, r) {
        Ok(scope) => scope,
        Err(answer) => return answer,
    };
    let result =
        match (r.method.as_str(), path) {
            ("GET", ["users", "me", "calendarList"]) => needs(&scope, CALENDAR_LIST_SCOPES).map(|()| calendar_list(s, r)),
            ("GET", ["users", "me", "calendarList", id]) => needs(&scope, CALENDAR_LIST_SCOPES).map(|()| match calendar_index(s, id) {
                Some(i) => FakeResponse::json(200, &list_entry(&s.calendars[i])),
                None => error(404, "notFound", "Not Found"),
            }),
            ("GET", ["calendars", cal, "events"]) => needs(&scope, EVENTS_READ_SCOPES).and_then(|()| events_list(s, r, cal)),
            ("POST", ["calendars", cal, "events", "watch"]) => needs(&scope, EVENTS_READ_SCOPES).and_then(|()| watch(s, r, cal)),
            ("POST", ["calendars", cal, "events"]) => needs(&scope, EVENTS_WRITE_SCOPES)
                .and_then(|()| write(s, cal, |c, st, auto| c.insert(r.json().unwrap_or(Value::Null), st, auto))),
            ("GET", ["calendars", cal, "events", id]) => needs(&scope, EVENTS_READ_SCOPES).and_then(|()| {
                let i = calendar_index(s, cal).ok_or_else(|| error(404, "notFound", "Not Found"))?;
                s.calendars[i].get(id).map(|e| FakeResponse::json(200, &e)).ok_or_else(|| error(404, "notFound", "Not Found"))
            }),
            ("PATCH", ["calendars", cal, "events", id]) => needs(&scope, EVENTS_WRITE_SCOPES)
                .and_then(|()| write(s, cal, |c, st, _| c.patch(id, &r.json().unwrap_or(Value::Null), st))),
            ("PUT", ["calendars", cal, "events", id]) => needs(&scope, EVENTS_WRITE_SCOPES)
                .and_then(|()| write(s, cal, |c, st, _| c.update(id, r.json().unwrap_or(Value::Null), st))),
            ("DELETE", ["calendars", cal, "events", id]) => needs(&scope, EVENTS_WRITE_SCOPES)
                .and_then(|()| write(s, cal, |c, st, _| c.delete(id, st).map(|()| Value::Null)))
                .map(|_| FakeResponse::empty(204)),
            ("POST", ["channels", "stop"]) => Ok(stop(s, r)),
            _ => Err(error(404, "notFound", "Not Found")),
        };
    result.unwrap_or_else(|answer| answer)
}

fn write(
    s: &mut State,
    cal: &str,
    f: impl FnOnce(&mut Calendar, &Stamp, String) -> Result<Value, ApiError>,
) -> Result<FakeResponse, FakeResponse> {
    let index = calendar_index(s, cal).ok_or_else(|| error(404, "notFound", "Not Found"))?;
    if !s.calendars[index].writable() {
        return Err(error(403, "requiredAccessLevel", "You need to have writer access to this calendar."));
    }
    let (stamp, auto) = stamp(s);
    let out = f(&mut s.calendars[index], &stamp, auto).map_err(api_error)?;
    changed(s, index);
    Ok(FakeResponse::json(200, &out))
}

fn list_entry(c: &Calendar) -> Value {
    let mut e = json!({
        "kind": "calendar#calendarListEntry",
        "etag": format!("\"{}\"", c.resource_id),
        "id": c.id,
        "summary": c.summary,
        "timeZone": c.time_zone,
        "accessRole": c.access_role,
        "defaultReminders": [],
    });
    if c.primary {
        e["primary"] = json!(true);
    }
    e
}

fn role_rank(role: &str) -> u8 {
    match role {
        "freeBusyReader" => 1,
        "reader" => 2,
        "writer" => 3,
        "owner" => 4,
        _ => 0,
    }
}

fn calendar_list(s: &mut State, r: &FakeRequest) -> FakeResponse {
    let min = r.param("minAccessRole").map(role_rank).unwrap_or(0);
    let size = page_size(s, r, 100, 250);
    let start: usize = match r.param("pageToken") {
        Some(t) => match t.strip_prefix("cl-").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => return error(400, "invalid", "Invalid page token."),
        },
        None => 0,
    };
    let all: Vec<Value> = s.calendars.iter().filter(|c| role_rank(&c.access_role) >= min).map(list_entry).collect();
    let page: Vec<Value> = all.iter().skip(start).take(size).cloned().collect();
    let mut body = json!({"kind": "calendar#calendarList", "etag": "\"list\"", "items": page});
    if start + size < all.len() {
        body["nextPageToken"] = json!(format!("cl-{}", start + size));
    } else {
        body["nextSyncToken"] = json!("cl-sync");
    }
    FakeResponse::json(200, &body)
}

fn page_size(s: &State, r: &FakeRequest, default: usize, max: usize) -> usize {
    let asked = r.param("maxResults").and_then(|m| m.parse().ok()).unwrap_or(default).clamp(1, max);
    s.page_size.map_or(asked, |n| asked.min(n))
}

fn sync_token(c: &Calendar) -> String {
    format!("st.{}.{}.{}", c.resource_id, c.generation, c.seq)
}

fn events_list(s: &mut State, r: &FakeRequest, cal: &str) -> Result<FakeResponse, FakeResponse> {
    let index = calendar_index(s, cal).ok_or_else(|| error(404, "notFound", "Not Found"))?;
    if role_rank(&s.calendars[index].access_role) < 2 {
        return Err(error(403, "forbidden", "Forbidden"));
    }
    if r.param("singleEvents") != Some("true") {
        return Err(error(400, "invalid", "This fake lists expanded instances only (singleEvents=true)."));
    }
    let size = page_size(s, r, 250, 2500);
    let query: Vec<(String, String)> = r.query.iter().filter(|(k, _)| k != "pageToken").cloned().collect();
    let page = match r.param("pageToken") {
        Some(token) => {
            let page = s.pages.remove(token).ok_or_else(|| error(400, "invalid", "Invalid page token."))?;
            if page.query != query || page.calendar != s.calendars[index].id {
                return Err(error(400, "invalid", "The page token belongs to another query."));
            }
            page
        }
        None => first_page(&s.calendars[index], r, query)?,
    };
    let c = &s.calendars[index];
    let items: Vec<Value> = page.items.iter().skip(page.offset).take(size).cloned().collect();
    let mut body = json!({
        "kind": "calendar#events",
        "etag": format!("\"{}\"", c.seq),
        "summary": c.summary,
        "updated": rfc3339_ms(s.now),
        "timeZone": c.time_zone,
        "accessRole": c.access_role,
        "defaultReminders": [],
        "items": items,
    });
    if page.offset + size < page.items.len() {
        let token = format!("pt-{}", next(s));
        body["nextPageToken"] = json!(token);
        s.pages.insert(token, Page { offset: page.offset + size, ..page });
    } else {
        body["nextSyncToken"] = json!(page.sync_token);
    }
    Ok(FakeResponse::json(200, &body))
}

/// The whole result of a list, fixed at its first page.
fn first_page(c: &Calendar, r: &FakeRequest, query: Vec<(String, String)>) -> Result<Page, FakeResponse> {
    let token = sync_token(c);
    let items: Vec<Value> = match r.param("syncToken") {
        Some(given) => {
            let restricted =
                ["timeMin", "timeMax", "iCalUID", "orderBy", "privateExtendedProperty", "q", "sharedExtendedProperty", "updatedMin"];
            if restricted.iter().any(|p| r.param(p).is_some()) || r.param("showDeleted") == Some("false") {
                return Err(error(400, "invalid", "Sync token cannot be used with other request restrictions."));
            }
            let since = given
                .strip_prefix(&format!("st.{}.{}.", c.resource_id, c.generation))
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| error(410, "fullSyncRequired", "Sync token is no longer valid, a full sync is required."))?;
            c.rows.values().filter(|row| row.seq > since).map(|row| row.event.clone()).collect()
        }
        None => {
            let bound = |name: &str| -> Result<Option<DateTime<Utc>>, FakeResponse> {
                r.param(name)
                    .map(|v| DateTime::parse_from_rfc3339(v).map(|t| t.with_timezone(&Utc)))
                    .transpose()
                    .map_err(|_| error(400, "invalid", &format!("Invalid {name}")))
            };
            let (min, max) = (bound("timeMin")?, bound("timeMax")?);
            if let (Some(a), Some(b)) = (min, max) {
                if b <= a {
                    return Err(error(400, "timeRangeEmpty", "The specified time range is empty."));
                }
            }
            if r.param("orderBy").is_some() {
                return Err(error(400, "invalid", "This fake keeps its own stable order (no orderBy)."));
            }
            let deleted = r.param("showDeleted") == Some("true");
            c.rows
                .values()
                .filter(|row| deleted || !is_cancelled(&row.event))
                .filter(|row| match c.span(&row.event) {
                    Some((start, end)) => min.is_none_or(|m| end > m) && max.is_none_or(|m| start < m),
                    None => true,
                })
                .map(|row| row.event.clone())
                .collect()
        }
    };
    Ok(Page { calendar: c.id.clone(), query, items, offset: 0, sync_token: token })
}

fn watch(s: &mut State, r: &FakeRequest, cal: &str) -> Result<FakeResponse, FakeResponse> {
    let index = calendar_index(s, cal).ok_or_else(|| error(404, "notFound", "Not Found"))?;
    let body = r.json().unwrap_or(Value::Null);
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let id = text("id")
        .filter(|id| !id.is_empty() && id.len() <= 64)
        .ok_or_else(|| error(400, "required", "Channel id is required (at most 64 characters)."))?;
    if !matches!(text("type").as_deref(), Some("web_hook" | "webhook")) {
        return Err(error(400, "invalid", "Unknown channel type."));
    }
    let address = text("address")
        .filter(|a| url::Url::parse(a).is_ok_and(|u| matches!(u.scheme(), "https" | "http")))
        .ok_or_else(|| error(400, "invalid", "Invalid address."))?;
    if s.channels.iter().any(|c| c.view.id == id && !c.view.stopped) {
        return Err(error(400, "channelIdNotUnique", "Channel id not unique."));
    }
    let max = (s.now + MAX_CHANNEL_SECS) * 1000;
    let asked = match body.get("expiration") {
        Some(Value::String(v)) => v.parse::<i64>().ok(),
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    };
    let expiration_ms = asked.map_or(max, |a| a.min(max));
    let c = &s.calendars[index];
    let view = ChannelView {
        id: id.clone(),
        resource_id: c.resource_id.clone(),
        calendar_id: c.id.clone(),
        address,
        token: text("token"),
        expiration_ms,
        stopped: false,
    };
    let mut answer = json!({
        "kind": "api#channel",
        "id": id,
        "resourceId": view.resource_id,
        "resourceUri": format!("{}{PATH_API}/calendars/{}/events?alt=json", s.base, c.id),
        "expiration": expiration_ms.to_string(),
    });
    if let Some(t) = &view.token {
        answer["token"] = json!(t);
    }
    s.channels.push(Channel { view, messages: 0 });
    let channel = s.channels.len() - 1;
    notify(s, channel, "sync");
    Ok(FakeResponse::json(200, &answer))
}

fn stop(s: &mut State, r: &FakeRequest) -> FakeResponse {
    let body = r.json().unwrap_or(Value::Null);
    let (id, resource) = (body.get("id").and_then(Value::as_str), body.get("resourceId").and_then(Value::as_str));
    let found =
        s.channels.iter_mut().find(|c| Some(c.view.id.as_str()) == id && Some(c.view.resource_id.as_str()) == resource && !c.view.stopped);
    match found {
        Some(c) => {
            c.view.stopped = true;
            FakeResponse::empty(204)
        }
        None => error(404, "notFound", &format!("Channel '{}' not found for project 'fake'", id.unwrap_or(""))),
    }
}
