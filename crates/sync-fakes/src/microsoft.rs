//! [`FakeGraph`]: the parts of the Microsoft identity platform (v2 token
//! endpoint under `common`) and of Microsoft Graph v1.0 that calendar sync
//! uses, as one HTTP server on 127.0.0.1.
//!
//! What it keeps honest, from the published docs:
//! * sign-in: `/authorize` redirects with a code; the token endpoint checks
//!   the client, the redirect URI, single use of the code and the PKCE S256
//!   verifier; refresh rotates the refresh token; a withdrawn consent makes
//!   refresh `400 invalid_grant` and the API `401 InvalidAuthenticationToken`.
//! * `calendarView/delta` of one calendar: single instances (series
//!   expanded on the server, with moved and cancelled occurrences), paged by
//!   `Prefer: odata.maxpagesize`, `@odata.nextLink` then `@odata.deltaLink`;
//!   an increment lists what changed since that link and `@removed` for what
//!   left the view; `$expand` is refused (extended properties cannot be read
//!   through delta); a forgotten sync state is `410 syncStateNotFound`.
//! * events: ids, `changeKey`, `lastModifiedDateTime`, `transactionId`
//!   (a create that repeats a live event's `transactionId` answers `201`
//!   with that event and makes none), single-value extended properties
//!   (read back with `$expand`).
//! * subscriptions: the validation handshake on both URLs (`200`,
//!   `text/plain`, the decoded token, within 10 s, else no subscription),
//!   the 10,080-minute maximum on create and renew, change notifications
//!   with `clientState`, lifecycle notifications on demand.
//!
//! Simplifications: every time is UTC (answers are always in UTC, the
//! zone asked for with `Prefer: outlook.timezone="UTC"`; other zones in a
//! request body are refused); recurrence is daily or weekly with a count,
//! an end date or no end; plain `http://` notification URLs are accepted
//! (Graph wants https).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc, Weekday};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::server::{FakeRequest, FakeResponse, FakeServer};

/// The OAuth client the fake knows.
pub const CLIENT_ID: &str = "00000000-fake-graph-client";
pub const CLIENT_SECRET: &str = "fake-graph-client-secret";
pub const REDIRECT_URI: &str = "https://app.example/oauth/microsoft/callback";

/// The longest subscription on Outlook events, in minutes.
pub const MAX_SUBSCRIPTION_MINUTES: i64 = 10_080;

/// Page size of a delta read when the request asks for none.
const DEFAULT_PAGE: usize = 10;

const USER_ID: &str = "6e8f0c9a-7b1d-4c2e-9f3a-5d4b2a1c0e9f";
const TENANT_ID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// How an event repeats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recurrence {
    Daily {
        interval: u32,
        range: Range,
    },
    /// Weeks start on Sunday (Graph's default `firstDayOfWeek`).
    Weekly {
        interval: u32,
        days: Vec<Weekday>,
        range: Range,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Range {
    /// `numbered`: this many occurrences, cancelled ones included.
    Count(u32),
    /// `endDate`: occurrences on or before this date.
    Until(NaiveDate),
    NoEnd,
}

/// A changed occurrence of a series, keyed by its original start date.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exception {
    Moved { start: NaiveDateTime, end: NaiveDateTime },
    Cancelled,
}

/// An event as the fake stores it (times are UTC wall-clock times).
#[derive(Clone, Debug)]
pub struct FakeEvent {
    pub id: String,
    pub calendar_id: String,
    pub subject: String,
    pub body: String,
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
    pub is_all_day: bool,
    /// A meeting its organizer cancelled, still in the attendee's calendar.
    pub is_cancelled: bool,
    /// `free`, `tentative`, `busy`, `oof`, `workingElsewhere`, `unknown`.
    pub show_as: String,
    /// The owner's `responseStatus.response`: `none`, `organizer`,
    /// `accepted`, `tentativelyAccepted`, `declined`, `notResponded`.
    pub response: String,
    pub recurrence: Option<Recurrence>,
    pub exceptions: BTreeMap<NaiveDate, Exception>,
    /// Single-value extended properties by id.
    pub extended: BTreeMap<String, String>,
    pub transaction_id: Option<String>,
    pub change_key: String,
    pub last_modified: DateTime<Utc>,
    /// Bumped by every change; an instance's version is its event's.
    version: u64,
}

impl FakeEvent {
    fn new(id: String, calendar_id: &str, new: NewEvent) -> Self {
        FakeEvent {
            id,
            calendar_id: calendar_id.into(),
            subject: new.subject,
            body: String::new(),
            start: new.start,
            end: new.end,
            is_all_day: new.is_all_day,
            is_cancelled: new.is_cancelled,
            show_as: new.show_as,
            response: new.response,
            recurrence: new.recurrence,
            exceptions: BTreeMap::new(),
            extended: BTreeMap::new(),
            transaction_id: None,
            change_key: String::new(),
            last_modified: Utc::now(),
            version: 0,
        }
    }
}

/// A new event for [`FakeGraph::add_event`].
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub subject: String,
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
    pub is_all_day: bool,
    pub is_cancelled: bool,
    pub show_as: String,
    pub response: String,
    pub recurrence: Option<Recurrence>,
}

fn wall(rfc3339: &str) -> NaiveDateTime {
    DateTime::parse_from_rfc3339(rfc3339).expect("an RFC 3339 instant").naive_utc()
}

impl NewEvent {
    /// A timed event between two RFC 3339 instants.
    pub fn timed(start: &str, end: &str) -> Self {
        NewEvent {
            subject: "Busy".into(),
            start: wall(start),
            end: wall(end),
            is_all_day: false,
            is_cancelled: false,
            show_as: "busy".into(),
            response: "organizer".into(),
            recurrence: None,
        }
    }

    /// An all-day event over the dates `[start, end)`.
    pub fn all_day(start: NaiveDate, end: NaiveDate) -> Self {
        let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).expect("midnight");
        NewEvent {
            is_all_day: true,
            start: midnight(start),
            end: midnight(end),
            ..NewEvent::timed("2000-01-01T00:00:00Z", "2000-01-01T00:00:00Z")
        }
    }

    pub fn subject(mut self, subject: &str) -> Self {
        self.subject = subject.into();
        self
    }

    pub fn show_as(mut self, show_as: &str) -> Self {
        self.show_as = show_as.into();
        self
    }

    pub fn response(mut self, response: &str) -> Self {
        self.response = response.into();
        self
    }

    pub fn cancelled(mut self) -> Self {
        self.is_cancelled = true;
        self
    }

    pub fn repeating(mut self, recurrence: Recurrence) -> Self {
        self.recurrence = Some(recurrence);
        self
    }
}

/// A subscription as granted.
#[derive(Clone, Debug)]
pub struct FakeSubscription {
    pub id: String,
    pub resource: String,
    /// The calendar it watches; `None` for `/me/events` (every calendar).
    pub calendar_id: Option<String>,
    pub change_types: Vec<String>,
    pub notification_url: String,
    pub lifecycle_url: Option<String>,
    pub client_state: Option<String>,
    pub expires: DateTime<Utc>,
}

/// A fault for the next API request (not the token endpoint).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `429 Too Many Requests` with `Retry-After` seconds.
    Throttle { retry_after: u64 },
    /// `503 Service Unavailable` with `Retry-After` seconds.
    Unavailable { retry_after: u64 },
    /// `500 Internal Server Error`.
    ServerError,
    /// `401 InvalidAuthenticationToken`.
    Unauthorized,
    /// `403 ErrorAccessDenied`.
    AccessDenied,
}

/// One validation handshake the fake made before creating a subscription:
/// the URL it POSTed `?validationToken=…` to and what came back.
#[derive(Clone, Debug)]
pub struct Handshake {
    pub url: String,
    /// The token as sent (decoded).
    pub token: String,
    /// The receiver's status, `None` when it could not be reached in time.
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub body: Option<String>,
}

impl Handshake {
    /// What Graph accepts: `200`, `text/plain`, the decoded token as the body.
    pub fn echoed(&self) -> bool {
        let plain = self.content_type.as_deref().is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("text/plain"));
        self.status == Some(200) && plain && self.body.as_deref() == Some(self.token.as_str())
    }
}

/// One delivery of a notification body.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub url: String,
    pub body: Value,
    /// The receiver's status, `None` when it could not be reached.
    pub status: Option<u16>,
}

struct Code {
    challenge: String,
    redirect_uri: String,
    scope: String,
    used: bool,
}

/// A read in progress: the pages left and what the client will know at
/// its end.
struct Round {
    calendar_id: String,
    window: (NaiveDateTime, NaiveDateTime),
    items: VecDeque<Value>,
    known: HashMap<String, u64>,
}

/// What a delta link stands for: the view and the instances (with their
/// versions) the client had when it got the link.
#[derive(Clone)]
struct SyncState {
    calendar_id: String,
    window: (NaiveDateTime, NaiveDateTime),
    known: HashMap<String, u64>,
}

#[derive(Default)]
struct State {
    base: String,
    codes: HashMap<String, Code>,
    refresh_tokens: HashMap<String, String>,
    access_tokens: HashMap<String, DateTime<Utc>>,
    consent_withdrawn: bool,
    calendars: Vec<(String, String, bool, bool)>,
    events: Vec<FakeEvent>,
    seq: u64,
    rounds: HashMap<String, Round>,
    sync_states: HashMap<String, SyncState>,
    subscriptions: Vec<FakeSubscription>,
    handshakes: Vec<Handshake>,
    outbox: Vec<(String, Value)>,
    faults: VecDeque<Fault>,
    lose_next_create: bool,
    max_page: Option<usize>,
    validation_timeout: Duration,
}

impl State {
    fn next(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}{:06}", self.seq)
    }

    fn touch(&mut self, index: usize) {
        self.seq += 1;
        let seq = self.seq;
        let e = &mut self.events[index];
        e.version = seq;
        e.change_key = format!("ck{seq:06}");
        e.last_modified = Utc::now();
    }

    /// Stores a new event and tells the subscribers; returns it as stored.
    fn insert(&mut self, event: FakeEvent) -> FakeEvent {
        self.events.push(event);
        let i = self.events.len() - 1;
        self.touch(i);
        let e = self.events[i].clone();
        self.notify(&e, "created");
        e
    }

    /// Queues the change notifications of a change to `event`.
    fn notify(&mut self, event: &FakeEvent, change: &str) {
        let resource = format!("Users/{USER_ID}/Events/{}", event.id);
        let targets: Vec<FakeSubscription> = self
            .subscriptions
            .iter()
            .filter(|s| s.calendar_id.as_ref().is_none_or(|c| *c == event.calendar_id))
            .filter(|s| s.change_types.iter().any(|t| t == change))
            .cloned()
            .collect();
        for s in targets {
            let body = json!({ "value": [{
                "subscriptionId": s.id,
                "subscriptionExpirationDateTime": s.expires.to_rfc3339(),
                "changeType": change,
                "resource": resource,
                "resourceData": {
                    "@odata.type": "#Microsoft.Graph.Event",
                    "@odata.id": resource,
                    "@odata.etag": format!("W/\"{}\"", event.change_key),
                    "id": event.id,
                },
                "clientState": s.client_state,
                "tenantId": TENANT_ID,
            }]});
            self.outbox.push((s.notification_url.clone(), body));
        }
    }

    fn calendar_editable(&self, id: &str) -> Option<bool> {
        self.calendars.iter().find(|c| c.0 == id).map(|c| c.2)
    }
}

/// The fake; stops when dropped.
pub struct FakeGraph {
    server: FakeServer,
    state: Arc<Mutex<State>>,
    http: reqwest::Client,
}

impl FakeGraph {
    /// Starts with one user and a default, writable calendar.
    pub async fn start() -> FakeGraph {
        let state = Arc::new(Mutex::new(State { validation_timeout: Duration::from_secs(10), ..State::default() }));
        let http = reqwest::Client::new();
        let (s, h) = (state.clone(), http.clone());
        let server = FakeServer::start(move |req| handle(s.clone(), h.clone(), req)).await;
        {
            let mut st = state.lock().expect("state");
            st.base = server.base_url();
            st.calendars.push(("cal-default".into(), "Calendar".into(), true, true));
        }
        FakeGraph { server, state, http }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("state")
    }

    pub fn base_url(&self) -> String {
        self.server.base_url()
    }

    pub fn authorize_url(&self) -> String {
        format!("{}/common/oauth2/v2.0/authorize", self.base_url())
    }

    pub fn token_url(&self) -> String {
        format!("{}/common/oauth2/v2.0/token", self.base_url())
    }

    /// The API root, like `https://graph.microsoft.com/v1.0`.
    pub fn api_url(&self) -> String {
        format!("{}/v1.0", self.base_url())
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<FakeRequest> {
        self.server.requests()
    }

    /// The default calendar's id.
    pub fn default_calendar(&self) -> String {
        "cal-default".into()
    }

    /// A code as if the user had consented in a browser that was sent to
    /// `/authorize` with this PKCE challenge.
    pub fn issue_code(&self, code_challenge: &str) -> String {
        let mut st = self.state();
        let code = st.next("code-");
        st.codes.insert(
            code.clone(),
            Code { challenge: code_challenge.into(), redirect_uri: REDIRECT_URI.into(), scope: String::new(), used: false },
        );
        code
    }

    /// Every access token issued so far expires now.
    pub fn expire_access_tokens(&self) {
        let past = Utc::now() - chrono::Duration::seconds(1);
        self.state().access_tokens.values_mut().for_each(|t| *t = past);
    }

    /// The user withdraws the consent: refreshes fail with `invalid_grant`
    /// and access tokens are refused.
    pub fn withdraw_consent(&self) {
        self.state().consent_withdrawn = true;
    }

    pub fn add_calendar(&self, name: &str, can_edit: bool) -> String {
        let mut st = self.state();
        let id = st.next("cal-");
        st.calendars.push((id.clone(), name.into(), can_edit, false));
        id
    }

    /// Adds an event as another client would; subscribers are told.
    pub fn add_event(&self, calendar_id: &str, new: NewEvent) -> String {
        let mut st = self.state();
        let id = st.next("AAMkevt");
        let event = FakeEvent::new(id.clone(), calendar_id, new);
        st.insert(event);
        id
    }

    /// Changes an event as another client would; subscribers are told.
    pub fn update_event(&self, id: &str, change: impl FnOnce(&mut FakeEvent)) {
        let mut st = self.state();
        let i = st.events.iter().position(|e| e.id == id).expect("no such event");
        change(&mut st.events[i]);
        st.touch(i);
        let e = st.events[i].clone();
        st.notify(&e, "updated");
    }

    /// Moves one occurrence of a series (by its original date).
    pub fn move_occurrence(&self, series_id: &str, original: NaiveDate, start: &str, end: &str) {
        let (start, end) = (wall(start), wall(end));
        self.update_event(series_id, |e| {
            e.exceptions.insert(original, Exception::Moved { start, end });
        });
    }

    /// Cancels one occurrence of a series (by its original date).
    pub fn cancel_occurrence(&self, series_id: &str, original: NaiveDate) {
        self.update_event(series_id, |e| {
            e.exceptions.insert(original, Exception::Cancelled);
        });
    }

    /// Deletes an event as another client would; subscribers are told.
    pub fn delete_event(&self, id: &str) {
        let mut st = self.state();
        let i = st.events.iter().position(|e| e.id == id).expect("no such event");
        let e = st.events.remove(i);
        st.notify(&e, "deleted");
    }

    pub fn event(&self, id: &str) -> Option<FakeEvent> {
        self.state().events.iter().find(|e| e.id == id).cloned()
    }

    pub fn events(&self, calendar_id: &str) -> Vec<FakeEvent> {
        self.state().events.iter().filter(|e| e.calendar_id == calendar_id).cloned().collect()
    }

    /// The next API request fails with `fault` (several queue up in order).
    pub fn inject(&self, fault: Fault) {
        self.state().faults.push_back(fault);
    }

    /// The next create is made, but its answer is lost (`504`).
    pub fn lose_next_create(&self) {
        self.state().lose_next_create = true;
    }

    /// Forgets every sync state: delta and next links answer
    /// `410 syncStateNotFound`.
    pub fn forget_sync_states(&self) {
        let mut st = self.state();
        st.sync_states.clear();
        st.rounds.clear();
    }

    /// Pages of at most `n` items whatever the client asks for.
    pub fn set_max_page_size(&self, n: usize) {
        self.state().max_page = Some(n.max(1));
    }

    /// How long a receiver may take to answer the validation handshake.
    pub fn set_validation_timeout(&self, timeout: Duration) {
        self.state().validation_timeout = timeout;
    }

    pub fn subscriptions(&self) -> Vec<FakeSubscription> {
        self.state().subscriptions.clone()
    }

    /// Every validation handshake so far, in order.
    pub fn handshakes(&self) -> Vec<Handshake> {
        self.state().handshakes.clone()
    }

    /// POSTs every queued change notification to its receiver.
    pub async fn deliver_notifications(&self) -> Vec<Delivery> {
        let outbox = std::mem::take(&mut self.state().outbox);
        let mut done = Vec::new();
        for (url, body) in outbox {
            let status = self.http.post(&url).json(&body).send().await.ok().map(|r| r.status().as_u16());
            done.push(Delivery { url, body, status });
        }
        done
    }

    /// POSTs a lifecycle notification (`reauthorizationRequired`, `missed`,
    /// `subscriptionRemoved`) to the subscription's lifecycle URL; a removed
    /// subscription is gone afterwards. `None` when it has no lifecycle URL.
    pub async fn send_lifecycle(&self, subscription_id: &str, event: &str) -> Option<Delivery> {
        let sub = {
            let mut st = self.state();
            let sub = st.subscriptions.iter().find(|s| s.id == subscription_id).cloned().expect("no such subscription");
            if event == "subscriptionRemoved" {
                st.subscriptions.retain(|s| s.id != subscription_id);
            }
            sub
        };
        let url = sub.lifecycle_url?;
        let body = json!({ "value": [{
            "subscriptionId": sub.id,
            "subscriptionExpirationDateTime": sub.expires.to_rfc3339(),
            "tenantId": TENANT_ID,
            "clientState": sub.client_state,
            "lifecycleEvent": event,
        }]});
        let status = self.http.post(&url).json(&body).send().await.ok().map(|r| r.status().as_u16());
        Some(Delivery { url, body, status })
    }
}

// ---------------------------------------------------------------------------
// Answers.

fn graph_error(status: u16, code: &str, message: &str) -> FakeResponse {
    FakeResponse::json(status, &json!({ "error": { "code": code, "message": message, "innerError": { "request-id": "fake" } } }))
}

fn oauth_error(error: &str, description: &str) -> FakeResponse {
    FakeResponse::json(400, &json!({ "error": error, "error_description": description, "error_codes": [70000] }))
}

/// Percent-decodes one path segment.
fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b))) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(state: Arc<Mutex<State>>, http: reqwest::Client, req: FakeRequest) -> FakeResponse {
    let segments: Vec<String> = req.path.trim_matches('/').split('/').map(decode).collect();
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (req.method.as_str(), segs.as_slice()) {
        ("GET", ["common", "oauth2", "v2.0", "authorize"]) => authorize(&state, &req),
        ("POST", ["common", "oauth2", "v2.0", "token"]) => token(&state, &req),
        (_, ["v1.0", rest @ ..]) => {
            if let Some(refused) = gate(&state, &req) {
                return refused;
            }
            api(&state, &http, &req, rest).await
        }
        _ => graph_error(404, "UnknownPath", "no such endpoint"),
    }
}

fn authorize(state: &Mutex<State>, req: &FakeRequest) -> FakeResponse {
    let p = |k: &str| req.param(k).unwrap_or("");
    if p("client_id") != CLIENT_ID || p("redirect_uri") != REDIRECT_URI {
        return oauth_error("invalid_request", "AADSTS50011: The redirect URI or client does not match.");
    }
    if p("response_type") != "code" || p("code_challenge").is_empty() || p("code_challenge_method") != "S256" {
        return oauth_error("invalid_request", "AADSTS50148: code_challenge with method S256 is required here.");
    }
    let mut st = state.lock().expect("state");
    let code = st.next("code-");
    st.codes.insert(
        code.clone(),
        Code {
            challenge: p("code_challenge").into(),
            redirect_uri: p("redirect_uri").into(),
            scope: p("scope").into(),
            used: false,
        },
    );
    let mut to = url::Url::parse(REDIRECT_URI).expect("redirect URI");
    to.query_pairs_mut().append_pair("code", &code).append_pair("state", p("state"));
    FakeResponse::empty(302).with_header("location", to.as_str())
}

fn token(state: &Mutex<State>, req: &FakeRequest) -> FakeResponse {
    let form: HashMap<String, String> = req.form().into_iter().collect();
    let f = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if f("client_id") != CLIENT_ID || f("client_secret") != CLIENT_SECRET {
        return FakeResponse::json(
            401,
            &json!({ "error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided." }),
        );
    }
    let mut st = state.lock().expect("state");
    let scope = match f("grant_type") {
        "authorization_code" => {
            let Some(code) = st.codes.get_mut(f("code")) else {
                return oauth_error("invalid_grant", "AADSTS70000: The provided authorization code is invalid.");
            };
            if code.used {
                return oauth_error("invalid_grant", "AADSTS54005: OAuth2 Authorization code was already redeemed.");
            }
            code.used = true;
            if code.redirect_uri != f("redirect_uri") {
                return oauth_error(
                    "invalid_grant",
                    "AADSTS50011: The redirect URI does not match the one of the authorization request.",
                );
            }
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(f("code_verifier").as_bytes()));
            if challenge != code.challenge {
                return oauth_error(
                    "invalid_grant",
                    "AADSTS501481: The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                );
            }
            if code.scope.is_empty() { f("scope").to_owned() } else { code.scope.clone() }
        }
        "refresh_token" => {
            if st.consent_withdrawn {
                return oauth_error(
                    "invalid_grant",
                    "AADSTS65001: The user or administrator has not consented to use the application.",
                );
            }
            match st.refresh_tokens.get(f("refresh_token")) {
                Some(scope) => scope.clone(),
                None => {
                    return oauth_error("invalid_grant", "AADSTS9002313: Invalid request. Request is malformed or invalid.");
                }
            }
        }
        other => {
            return oauth_error("unsupported_grant_type", &format!("AADSTS70003: grant type {other} is not supported."));
        }
    };
    let access = st.next("eyJ0eXAi.fake-access-");
    let refresh = st.next("M.C5-fake-refresh-");
    st.access_tokens.insert(access.clone(), Utc::now() + chrono::Duration::seconds(3600));
    st.refresh_tokens.insert(refresh.clone(), scope.clone());
    // Graph reports the resource's scopes, without offline_access.
    let granted: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty() && *s != "offline_access").collect();
    FakeResponse::json(
        200,
        &json!({
            "token_type": "Bearer",
            "scope": granted.join(" "),
            "expires_in": 3600,
            "ext_expires_in": 3600,
            "access_token": access,
            "refresh_token": refresh,
        }),
    )
}

/// The checks before any API request: injected faults, then the token.
fn gate(state: &Mutex<State>, req: &FakeRequest) -> Option<FakeResponse> {
    let mut st = state.lock().expect("state");
    if let Some(fault) = st.faults.pop_front() {
        return Some(match fault {
            Fault::Throttle { retry_after } => graph_error(429, "TooManyRequests", "Please retry again later.")
                .with_header("retry-after", &retry_after.to_string()),
            Fault::Unavailable { retry_after } => graph_error(503, "ServiceUnavailable", "Service unavailable.")
                .with_header("retry-after", &retry_after.to_string()),
            Fault::ServerError => graph_error(500, "InternalServerError", "Something went wrong."),
            Fault::Unauthorized => {
                graph_error(401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.")
            }
            Fault::AccessDenied => graph_error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."),
        });
    }
    let valid = req.bearer().and_then(|t| st.access_tokens.get(t)).is_some_and(|exp| *exp > Utc::now());
    if !valid || st.consent_withdrawn {
        let message =
            if req.bearer().is_none() { "Access token is empty." } else { "Access token has expired or is not yet valid." };
        return Some(
            graph_error(401, "InvalidAuthenticationToken", message)
                .with_header("www-authenticate", "Bearer realm=\"\", error=\"invalid_token\""),
        );
    }
    None
}

async fn api(state: &Arc<Mutex<State>>, http: &reqwest::Client, req: &FakeRequest, path: &[&str]) -> FakeResponse {
    match (req.method.as_str(), path) {
        ("GET", ["me"]) => FakeResponse::json(
            200,
            &json!({
                "id": USER_ID,
                "displayName": "Ana Provider",
                "mail": "ana@contoso.example",
                "userPrincipalName": "ana@contoso.example",
            }),
        ),
        ("GET", ["me", "calendars"]) => {
            let st = state.lock().expect("state");
            let value: Vec<Value> = st
                .calendars
                .iter()
                .map(|(id, name, can_edit, default)| {
                    json!({ "id": id, "name": name, "canEdit": can_edit, "isDefaultCalendar": default,
                            "owner": { "name": "Ana Provider", "address": "ana@contoso.example" } })
                })
                .collect();
            FakeResponse::json(200, &json!({ "value": value }))
        }
        ("GET", ["me", "calendars", cal, "calendarView", "delta"]) => delta(state, req, cal),
        ("POST", ["me", "calendars", cal, "events"]) => create_event(state, req, cal),
        ("GET", ["me", "events", id]) => {
            let st = state.lock().expect("state");
            match st.events.iter().find(|e| e.id == *id) {
                Some(e) => FakeResponse::json(200, &event_json(e, req.param("$expand"))),
                None => graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store."),
            }
        }
        ("PATCH", ["me", "events", id]) => patch_event(state, req, id),
        ("DELETE", ["me", "events", id]) => {
            let mut st = state.lock().expect("state");
            match st.events.iter().position(|e| e.id == *id) {
                Some(i) => {
                    let e = st.events.remove(i);
                    st.notify(&e, "deleted");
                    FakeResponse::empty(204)
                }
                None => graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store."),
            }
        }
        ("POST", ["subscriptions"]) => create_subscription(state, http, req).await,
        ("PATCH", ["subscriptions", id]) => {
            let Some(expires) = req.json().and_then(|b| Some(b.get("expirationDateTime")?.as_str()?.to_owned())) else {
                return graph_error(400, "InvalidRequest", "expirationDateTime is required.");
            };
            let expires = match expiry(&expires) {
                Ok(t) => t,
                Err(refused) => return refused,
            };
            let mut st = state.lock().expect("state");
            match st.subscriptions.iter_mut().find(|s| s.id == *id) {
                Some(s) => {
                    s.expires = expires;
                    FakeResponse::json(200, &subscription_json(s))
                }
                None => graph_error(404, "ResourceNotFound", "The object was not found."),
            }
        }
        ("DELETE", ["subscriptions", id]) => {
            let mut st = state.lock().expect("state");
            let before = st.subscriptions.len();
            st.subscriptions.retain(|s| s.id != *id);
            if st.subscriptions.len() < before {
                FakeResponse::empty(204)
            } else {
                graph_error(404, "ResourceNotFound", "The object was not found.")
            }
        }
        _ => graph_error(400, "BadRequest", "Unsupported request for this fake."),
    }
}

// ---------------------------------------------------------------------------
// Events and their instances.

fn graph_time(t: NaiveDateTime) -> Value {
    json!({ "dateTime": t.format("%Y-%m-%dT%H:%M:%S.0000000").to_string(), "timeZone": "UTC" })
}

fn event_json(e: &FakeEvent, expand: Option<&str>) -> Value {
    let mut v = json!({
        "@odata.etag": format!("W/\"{}\"", e.change_key),
        "id": e.id,
        "changeKey": e.change_key,
        "lastModifiedDateTime": e.last_modified.to_rfc3339(),
        "subject": e.subject,
        "body": { "contentType": "text", "content": e.body },
        "start": graph_time(e.start),
        "end": graph_time(e.end),
        "originalStartTimeZone": "UTC",
        "originalEndTimeZone": "UTC",
        "isAllDay": e.is_all_day,
        "isCancelled": e.is_cancelled,
        "showAs": e.show_as,
        "responseStatus": { "response": e.response, "time": "0001-01-01T00:00:00Z" },
        "type": if e.recurrence.is_some() { "seriesMaster" } else { "singleInstance" },
        "iCalUId": format!("040000008200E00074C5B7101A82E008{}", e.id),
    });
    // Only returned when an app set it.
    if let Some(t) = &e.transaction_id {
        v["transactionId"] = json!(t);
    }
    if let Some(expand) = expand.filter(|x| x.contains("singleValueExtendedProperties")) {
        let wanted = expand.to_ascii_lowercase();
        let props: Vec<Value> = e
            .extended
            .iter()
            .filter(|(id, _)| wanted.contains(&id.to_ascii_lowercase()))
            .map(|(id, value)| json!({ "id": id, "value": value }))
            .collect();
        v["singleValueExtendedProperties"] = json!(props);
    }
    v
}

/// The instances of an event that overlap `window`: `(id, version, json)`.
fn instances(e: &FakeEvent, window: (NaiveDateTime, NaiveDateTime)) -> Vec<(String, u64, Value)> {
    let overlaps = |s: NaiveDateTime, t: NaiveDateTime| s < window.1 && window.0 < t.max(s + chrono::Duration::seconds(1));
    let Some(rule) = &e.recurrence else {
        return if overlaps(e.start, e.end) { vec![(e.id.clone(), e.version, event_json(e, None))] } else { Vec::new() };
    };
    let length = e.end - e.start;
    let first = e.start.date();
    let (interval, range) = match rule {
        Recurrence::Daily { interval, range } | Recurrence::Weekly { interval, range, .. } => ((*interval).max(1), range),
    };
    let week_zero = first - chrono::Duration::days(i64::from(first.weekday().num_days_from_sunday()));
    let mut out = Vec::new();
    let mut count = 0u32;
    let mut day = first;
    loop {
        let days = (day - first).num_days();
        let matches = match rule {
            Recurrence::Daily { .. } => days % i64::from(interval) == 0,
            Recurrence::Weekly { days: weekdays, .. } => {
                ((day - week_zero).num_days() / 7) % i64::from(interval) == 0 && weekdays.contains(&day.weekday())
            }
        };
        let start = day.and_time(e.start.time());
        let done = match range {
            Range::Count(n) => count >= *n,
            Range::Until(last) => day > *last,
            Range::NoEnd => false,
        };
        // Moved occurrences may land later than their original date, so
        // look a little past the window's end before stopping.
        if done || start > window.1 + chrono::Duration::days(31) {
            break;
        }
        if matches {
            count += 1;
            let id = format!("{}_{}", e.id, day.format("%Y%m%d"));
            let (s, t, kind) = match e.exceptions.get(&day) {
                Some(Exception::Cancelled) => {
                    day += chrono::Duration::days(1);
                    continue;
                }
                Some(Exception::Moved { start, end }) => (*start, *end, "exception"),
                None => (start, start + length, "occurrence"),
            };
            if overlaps(s, t) {
                let mut v = event_json(e, None);
                v["id"] = json!(id);
                v["type"] = json!(kind);
                v["seriesMasterId"] = json!(e.id);
                v["start"] = graph_time(s);
                v["end"] = graph_time(t);
                v["originalStart"] = json!(format!("{}Z", start.format("%Y-%m-%dT%H:%M:%S")));
                out.push((id, e.version, v));
            }
        }
        day += chrono::Duration::days(1);
    }
    out
}

fn parse_graph_time(v: Option<&Value>) -> Result<NaiveDateTime, FakeResponse> {
    let bad = |m: &str| graph_error(400, "ErrorInvalidRequest", m);
    let v = v.ok_or_else(|| bad("start and end are required"))?;
    let zone = v.get("timeZone").and_then(Value::as_str).unwrap_or("");
    if zone != "UTC" {
        return Err(bad("this fake takes times in UTC only"));
    }
    let text = v.get("dateTime").and_then(Value::as_str).unwrap_or("");
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").map_err(|_| bad("dateTime is not a date-time"))
}

/// Applies the writable properties of a create or update body.
fn apply(e: &mut FakeEvent, body: &Value) -> Result<(), FakeResponse> {
    if let Some(s) = body.get("subject").and_then(Value::as_str) {
        e.subject = s.into();
    }
    if let Some(s) = body.pointer("/body/content").and_then(Value::as_str) {
        e.body = s.into();
    }
    if body.get("start").is_some() || body.get("end").is_some() {
        e.start = parse_graph_time(body.get("start"))?;
        e.end = parse_graph_time(body.get("end"))?;
    }
    if let Some(b) = body.get("isAllDay").and_then(Value::as_bool) {
        e.is_all_day = b;
    }
    if let Some(s) = body.get("showAs").and_then(Value::as_str) {
        e.show_as = s.into();
    }
    for p in body.get("singleValueExtendedProperties").and_then(Value::as_array).into_iter().flatten() {
        let (Some(id), Some(value)) = (p.get("id").and_then(Value::as_str), p.get("value").and_then(Value::as_str)) else {
            return Err(graph_error(400, "ErrorInvalidProperty", "an extended property needs id and value"));
        };
        e.extended.insert(id.into(), value.into());
    }
    if e.end < e.start {
        return Err(graph_error(400, "ErrorInvalidRequest", "the end is before the start"));
    }
    Ok(())
}

fn create_event(state: &Mutex<State>, req: &FakeRequest, cal: &str) -> FakeResponse {
    let Some(body) = req.json() else {
        return graph_error(400, "BadRequest", "the body is not JSON");
    };
    let mut st = state.lock().expect("state");
    match st.calendar_editable(cal) {
        None => {
            return graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.");
        }
        Some(false) => {
            return graph_error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.");
        }
        Some(true) => {}
    }
    let transaction = body.get("transactionId").and_then(Value::as_str).map(str::to_owned);
    if let Some(t) = &transaction {
        if let Some(existing) = st.events.iter().find(|e| e.transaction_id.as_deref() == Some(t)) {
            // A retry of a create that was made: that event, no second one.
            return FakeResponse::json(201, &event_json(existing, None));
        }
    }
    if body.get("start").is_none() {
        return graph_error(400, "ErrorInvalidRequest", "start and end are required");
    }
    let id = st.next("AAMkevt");
    let mut e = FakeEvent::new(id, cal, NewEvent::timed("2000-01-01T00:00:00Z", "2000-01-01T00:00:00Z"));
    e.transaction_id = transaction;
    if let Err(refused) = apply(&mut e, &body) {
        return refused;
    }
    let e = st.insert(e);
    if std::mem::take(&mut st.lose_next_create) {
        return graph_error(504, "GatewayTimeout", "The answer was lost on its way.");
    }
    FakeResponse::json(201, &event_json(&e, None))
}

fn patch_event(state: &Mutex<State>, req: &FakeRequest, id: &str) -> FakeResponse {
    let Some(body) = req.json() else {
        return graph_error(400, "BadRequest", "the body is not JSON");
    };
    let mut st = state.lock().expect("state");
    let Some(i) = st.events.iter().position(|e| e.id == id) else {
        return graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.");
    };
    if body.get("transactionId").is_some() {
        return graph_error(400, "ErrorInvalidRequest", "transactionId cannot be changed after the create.");
    }
    let mut e = st.events[i].clone();
    if let Err(refused) = apply(&mut e, &body) {
        return refused;
    }
    st.events[i] = e;
    st.touch(i);
    let e = st.events[i].clone();
    st.notify(&e, "updated");
    FakeResponse::json(200, &event_json(&e, None))
}

// ---------------------------------------------------------------------------
// calendarView delta.

fn gone() -> FakeResponse {
    graph_error(410, "SyncStateNotFound", "The sync state generation is not found. Restart the sync without a token.")
}

fn page_size(st: &State, req: &FakeRequest) -> usize {
    let asked = req
        .header("prefer")
        .unwrap_or("")
        .split(',')
        .filter_map(|p| p.trim().strip_prefix("odata.maxpagesize="))
        .find_map(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(DEFAULT_PAGE)
        .max(1);
    st.max_page.map_or(asked, |m| asked.min(m))
}

fn delta(state: &Mutex<State>, req: &FakeRequest, cal: &str) -> FakeResponse {
    for unsupported in ["$expand", "$select", "$filter", "$orderby", "$search"] {
        if req.param(unsupported).is_some() {
            return graph_error(
                400,
                "ErrorInvalidUrlQuery",
                &format!("The query parameter '{unsupported}' is not supported with delta."),
            );
        }
    }
    let mut st = state.lock().expect("state");
    if st.calendar_editable(cal).is_none() {
        return graph_error(404, "ErrorItemNotFound", "The specified object was not found in the store.");
    }
    let size = page_size(&st, req);
    if let Some(skip) = req.param("$skiptoken") {
        return match st.rounds.remove(skip) {
            Some(round) if round.calendar_id == cal => page(&mut st, round, size),
            _ => gone(),
        };
    }
    let (window, known) = match req.param("$deltatoken") {
        Some(token) => match st.sync_states.get(token) {
            Some(s) if s.calendar_id == cal => (s.window, Some(s.known.clone())),
            _ => return gone(),
        },
        None => {
            let parse = |k: &str| req.param(k).and_then(|v| DateTime::parse_from_rfc3339(v).ok()).map(|t| t.naive_utc());
            match (parse("startDateTime"), parse("endDateTime")) {
                (Some(s), Some(e)) if s < e => ((s, e), None),
                _ => {
                    return graph_error(400, "ErrorInvalidParameter", "startDateTime and endDateTime are required.");
                }
            }
        }
    };
    let mut now: Vec<(String, u64, Value)> =
        st.events.iter().filter(|e| e.calendar_id == cal).flat_map(|e| instances(e, window)).collect();
    now.sort_by(|a, b| a.2["start"]["dateTime"].as_str().cmp(&b.2["start"]["dateTime"].as_str()).then(a.0.cmp(&b.0)));
    let mut items: VecDeque<Value> = VecDeque::new();
    let next_known: HashMap<String, u64> = now.iter().map(|(id, v, _)| (id.clone(), *v)).collect();
    match &known {
        None => items.extend(now.into_iter().map(|(_, _, v)| v)),
        Some(known) => {
            for (id, version, v) in now {
                if known.get(&id) != Some(&version) {
                    items.push_back(v);
                }
            }
            let mut removed: Vec<&String> = known.keys().filter(|id| !next_known.contains_key(*id)).collect();
            removed.sort();
            for id in removed {
                items
                    .push_back(json!({ "@odata.type": "#microsoft.graph.event", "id": id, "@removed": { "reason": "deleted" } }));
            }
        }
    }
    let round = Round { calendar_id: cal.into(), window, items, known: next_known };
    page(&mut st, round, size)
}

fn page(st: &mut State, mut round: Round, size: usize) -> FakeResponse {
    let take = size.min(round.items.len());
    let value: Vec<Value> = round.items.drain(..take).collect();
    let link = format!("{}/v1.0/me/calendars/{}/calendarView/delta", st.base, round.calendar_id);
    let mut body = json!({ "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(event)", "value": value });
    if round.items.is_empty() {
        let token = st.next("dt-");
        body["@odata.deltaLink"] = json!(format!("{link}?$deltatoken={token}"));
        st.sync_states.insert(token, SyncState { calendar_id: round.calendar_id, window: round.window, known: round.known });
    } else {
        let token = st.next("st-");
        body["@odata.nextLink"] = json!(format!("{link}?$skiptoken={token}"));
        st.rounds.insert(token, round);
    }
    FakeResponse::json(200, &body)
}

// ---------------------------------------------------------------------------
// Subscriptions.

fn subscription_json(s: &FakeSubscription) -> Value {
    json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity",
        "id": s.id,
        "resource": s.resource,
        "applicationId": CLIENT_ID,
        "changeType": s.change_types.join(","),
        "clientState": s.client_state,
        "notificationUrl": s.notification_url,
        "lifecycleNotificationUrl": s.lifecycle_url,
        "expirationDateTime": s.expires.format("%Y-%m-%dT%H:%M:%S.0000000Z").to_string(),
        "creatorId": USER_ID,
        "latestSupportedTlsVersion": "v1_2",
    })
}

/// An asked-for expiry, refused beyond the maximum or in the past.
fn expiry(text: &str) -> Result<DateTime<Utc>, FakeResponse> {
    let t = DateTime::parse_from_rfc3339(text)
        .map_err(|_| graph_error(400, "InvalidRequest", "expirationDateTime is not a date-time."))?
        .with_timezone(&Utc);
    let now = Utc::now();
    if t <= now {
        return Err(graph_error(400, "InvalidRequest", "Subscription expiration must be in the future."));
    }
    if t > now + chrono::Duration::minutes(MAX_SUBSCRIPTION_MINUTES) {
        return Err(graph_error(
            400,
            "InvalidRequest",
            &format!("Subscription expiration can only be {MAX_SUBSCRIPTION_MINUTES} minutes in the future."),
        ));
    }
    Ok(t)
}

/// The validation handshake: what the receiver answered to the token.
async fn handshake(http: &reqwest::Client, url: &str, token: &str, timeout: Duration) -> Handshake {
    let mut done = Handshake { url: url.into(), token: token.into(), status: None, content_type: None, body: None };
    let Ok(mut target) = url::Url::parse(url) else {
        return done;
    };
    target.query_pairs_mut().append_pair("validationToken", token);
    let sent = http.post(target).header("content-type", "text/plain; charset=utf-8").timeout(timeout).send().await;
    let Ok(answer) = sent else { return done };
    done.status = Some(answer.status().as_u16());
    done.content_type = answer.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    done.body = answer.text().await.ok();
    done
}

async fn create_subscription(state: &Mutex<State>, http: &reqwest::Client, req: &FakeRequest) -> FakeResponse {
    let Some(body) = req.json() else {
        return graph_error(400, "BadRequest", "the body is not JSON");
    };
    let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
    let bad = |m: &str| graph_error(400, "InvalidRequest", m);
    let change_types: Vec<String> = text("changeType").unwrap_or_default().split(',').map(|s| s.trim().to_owned()).collect();
    if change_types.iter().any(|t| !["created", "updated", "deleted"].contains(&t.as_str())) {
        return bad("changeType must be a list of created, updated, deleted.");
    }
    let Some(notification_url) = text("notificationUrl") else {
        return bad("notificationUrl is required.");
    };
    let lifecycle_url = text("lifecycleNotificationUrl");
    let client_state = text("clientState");
    if client_state.as_ref().is_some_and(|c| c.len() > 128) {
        return bad("clientState can be at most 128 characters.");
    }
    let Some(resource) = text("resource") else {
        return bad("resource is required.");
    };
    let parts: Vec<&str> = resource.trim_matches('/').split('/').collect();
    let calendar_id = match parts.as_slice() {
        ["me", "events"] => None,
        ["me", "calendars", id, "events"] => Some((*id).to_owned()),
        _ => {
            return bad("this fake supports the resources me/events and me/calendars/{id}/events.");
        }
    };
    let expires = match expiry(&text("expirationDateTime").unwrap_or_default()) {
        Ok(t) => t,
        Err(refused) => return refused,
    };
    let (token, timeout) = {
        let mut st = state.lock().expect("state");
        if let Some(id) = &calendar_id {
            if st.calendar_editable(id).is_none() {
                return graph_error(404, "ResourceNotFound", "The calendar was not found.");
            }
        }
        // Decoding matters: the token holds characters a URL escapes.
        (st.next("Validation: token+/= "), st.validation_timeout)
    };
    for url in std::iter::once(&notification_url).chain(lifecycle_url.as_ref()) {
        let done = handshake(http, url, &token, timeout).await;
        let echoed = done.echoed();
        state.lock().expect("state").handshakes.push(done);
        if !echoed {
            return graph_error(
                400,
                "ValidationError",
                "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.",
            );
        }
    }
    let mut st = state.lock().expect("state");
    let id = st.next("7f105c7d-2dc5-4530-97cd-");
    let sub =
        FakeSubscription { id, resource, calendar_id, change_types, notification_url, lifecycle_url, client_state, expires };
    let answer = subscription_json(&sub);
    st.subscriptions.push(sub);
    FakeResponse::json(201, &answer)
}
