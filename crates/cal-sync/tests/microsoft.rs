//! The Graph client against the protocol fake `sync_fakes::microsoft`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cal_core::time::{Instant, Interval};
use cal_sync::engine::{sync_calendar, write_booking};
use cal_sync::microsoft::{
    ChangeType, EVENT_ID_PROPERTY, Graph, LifecycleEvent, MAX_SUBSCRIPTION_MINUTES, NotificationKind, SCOPES, WINDOW_SLACK_DAYS,
    notifications, validation_echo,
};
use cal_sync::oauth::{self, StateKey};
use cal_sync::{
    BusySpan, CalendarService, ClientCredentials, Cursor, Endpoints, ItemState, NextPage, OutboundEvent, RemoteItem, Secret,
    ServiceKind, SyncError, Watch, WatchRequest,
};
use chrono::{NaiveDate, Weekday};
use sync_fakes::microsoft::{CLIENT_ID, CLIENT_SECRET, FakeGraph, Fault, NewEvent, REDIRECT_URI, Range, Recurrence};
use sync_fakes::{FakeResponse, FakeServer};

fn at(s: &str) -> Instant {
    Instant::parse(s).unwrap()
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn timed(start: &str, end: &str) -> ItemState {
    ItemState::Blocks(BusySpan::Timed(Interval::new(at(start), at(end)).unwrap()))
}

const HORIZON: (&str, &str) = ("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z");

fn horizon() -> (Instant, Instant) {
    (at(HORIZON.0), at(HORIZON.1))
}

fn client(fake: &FakeGraph) -> Graph {
    let endpoints = Endpoints { authorize: fake.authorize_url(), token: fake.token_url(), revoke: None, api: fake.api_url() };
    let credentials = ClientCredentials {
        client_id: CLIENT_ID.into(),
        client_secret: Secret::new(CLIENT_SECRET),
        redirect_uri: REDIRECT_URI.into(),
    };
    Graph::new(endpoints, credentials)
}

fn key() -> StateKey {
    StateKey::new(vec![42u8; 32]).unwrap()
}

/// A connected account: the code flow through the fake's `/authorize`.
async fn connect(graph: &Graph) -> cal_sync::Tokens {
    let started = oauth::start(&key(), "u_ana", ServiceKind::Microsoft, at("2026-03-01T12:00:00Z"));
    let (code, _) = consent(&graph.authorization_url(&started.state, &started.code_challenge)).await;
    graph.exchange_code(&code, &oauth::verifier(&key(), &started.nonce)).await.unwrap()
}

/// The browser's visit to the authorization URL: the code and state of the
/// redirect back to us.
async fn consent(url: &str) -> (String, String) {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let answer = http.get(url).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 302, "{:?}", answer.text().await);
    let location = url::Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(REDIRECT_URI));
    let param = |k: &str| location.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned()).unwrap();
    (param("code"), param("state"))
}

/// A grant through the fake's test door for codes: its tokens and verifier.
async fn grant(fake: &FakeGraph, graph: &Graph) -> (cal_sync::Tokens, Secret) {
    let started = oauth::start(&key(), "u_ana", ServiceKind::Microsoft, at("2026-03-01T12:00:00Z"));
    let code = fake.issue_code(&started.code_challenge);
    let verifier = oauth::verifier(&key(), &started.nonce);
    (graph.exchange_code(&code, &verifier).await.unwrap(), verifier)
}

async fn setup() -> (FakeGraph, Graph, Secret) {
    let fake = FakeGraph::start().await;
    let graph = client(&fake);
    let tokens = connect(&graph).await;
    (fake, graph, tokens.access_token)
}

fn booking(id: &str, start: &str, end: &str) -> OutboundEvent {
    OutboundEvent {
        event_id: id.into(),
        start: at(start),
        end: at(end),
        title: "Booking: haircut".into(),
        description: "Booked through the marketplace".into(),
    }
}

fn find<'a>(items: &'a [RemoteItem], id: &str) -> &'a RemoteItem {
    items.iter().find(|i| i.id == id).unwrap_or_else(|| panic!("{id} not among {items:#?}"))
}

// ---------------------------------------------------------------------------
// Sign-in.

#[tokio::test]
async fn the_consent_url_asks_for_a_code_with_pkce_and_the_least_scopes() {
    let fake = FakeGraph::start().await;
    let graph = client(&fake);
    let started = oauth::start(&key(), "u_ana", ServiceKind::Microsoft, at("2026-03-01T12:00:00Z"));
    let url = url::Url::parse(&graph.authorization_url(&started.state, &started.code_challenge)).unwrap();
    assert!(url.as_str().starts_with(&fake.authorize_url()));
    let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["response_mode"], "query");
    assert_eq!(q["redirect_uri"], REDIRECT_URI);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"], started.code_challenge);
    assert_eq!(q["state"], started.state);
    assert_eq!(q["scope"], "offline_access User.Read Calendars.ReadWrite");
    assert_eq!(q["scope"], SCOPES);
    let public = Graph::public_endpoints();
    assert_eq!(public.authorize, "https://login.microsoftonline.com/common/oauth2/v2.0/authorize");
    assert_eq!(public.token, "https://login.microsoftonline.com/common/oauth2/v2.0/token");
    assert_eq!((public.revoke, public.api.as_str()), (None, "https://graph.microsoft.com/v1.0"));

    // The fake redirects back with a code and our state.
    let (code, state) = consent(url.as_str()).await;
    assert_eq!(state, started.state);
    // A wrong verifier is refused, and so is the code afterwards (single use).
    let wrong = graph.exchange_code(&code, &Secret::new("x".repeat(43))).await;
    assert!(matches!(wrong, Err(SyncError::Reauth(ref m)) if m.contains("invalid_grant")), "{wrong:?}");
    let again = graph.exchange_code(&code, &oauth::verifier(&key(), &started.nonce)).await;
    assert!(matches!(again, Err(SyncError::Reauth(_))), "{again:?}");
}

#[tokio::test]
async fn a_code_exchanged_with_its_verifier_gives_tokens_that_refresh() {
    let (fake, graph, _) = setup().await;
    let (tokens, verifier) = grant(&fake, &graph).await;
    let refresh = tokens.refresh_token.clone().expect("offline_access gives a refresh token");
    assert!(tokens.expires_at > Instant::from_unix(chrono::Utc::now().timestamp() + 3000));
    assert!(tokens.scope.unwrap().contains("Calendars.ReadWrite"));
    // The form carried the verifier and the client.
    let exchange = fake.requests().into_iter().rfind(|r| r.path.ends_with("/token")).unwrap();
    let form: std::collections::HashMap<String, String> = exchange.form().into_iter().collect();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code_verifier"], verifier.expose());
    assert_eq!(form["redirect_uri"], REDIRECT_URI);

    // An expired access token is refused as such, and a refresh mends it.
    fake.expire_access_tokens();
    assert!(matches!(graph.calendars(&tokens.access_token).await, Err(SyncError::Unauthorized(_))));
    let fresh = graph.refresh(&refresh).await.unwrap();
    assert_ne!(fresh.refresh_token.as_ref(), Some(&refresh), "Graph rotates refresh tokens");
    assert_eq!(graph.calendars(&fresh.access_token).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_withdrawn_consent_is_reauth_and_revoke_is_a_no_op() {
    let (fake, graph, access) = setup().await;
    let refresh = grant(&fake, &graph).await.0.refresh_token.unwrap();

    let before = fake.requests().len();
    graph.revoke(&refresh).await.unwrap();
    assert_eq!(fake.requests().len(), before, "revoke sends nothing: Graph cannot revoke one grant");

    fake.withdraw_consent();
    let refreshed = graph.refresh(&refresh).await;
    assert!(matches!(refreshed, Err(SyncError::Reauth(ref m)) if m.starts_with("invalid_grant")), "{refreshed:?}");
    assert!(matches!(graph.account(&access).await, Err(SyncError::Unauthorized(_))));
}

// ---------------------------------------------------------------------------
// Account and calendars.

#[tokio::test]
async fn the_account_and_its_calendars() {
    let (fake, graph, access) = setup().await;
    let shared = fake.add_calendar("Team (read only)", false);
    let account = graph.account(&access).await.unwrap();
    assert_eq!(account.display, "ana@contoso.example");
    assert!(!account.subject.is_empty());
    let calendars = graph.calendars(&access).await.unwrap();
    assert_eq!(calendars.len(), 2);
    let main = calendars.iter().find(|c| c.id == fake.default_calendar()).unwrap();
    assert!(main.primary && main.writable);
    assert_eq!(main.name, "Calendar");
    let team = calendars.iter().find(|c| c.id == shared).unwrap();
    assert!(!team.primary && !team.writable);
}

// ---------------------------------------------------------------------------
// Reading.

#[tokio::test]
async fn a_full_read_pages_then_increments_bring_changes_and_removals() {
    let (fake, graph, access) = setup().await;
    let graph = graph.with_page_size(2);
    let cal = fake.default_calendar();
    let ids: Vec<String> = (1..=5)
        .map(|d| fake.add_event(&cal, NewEvent::timed(&format!("2026-03-0{d}T09:00:00Z"), &format!("2026-03-0{d}T10:00:00Z"))))
        .collect();
    // Outside the view: never listed.
    fake.add_event(&cal, NewEvent::timed("2026-05-01T09:00:00Z", "2026-05-01T10:00:00Z"));

    let first = graph.sync_page(&access, &cal, &Cursor::Full { from: horizon().0, to: horizon().1 }).await.unwrap();
    assert_eq!(first.items.len(), 2);
    assert!(matches!(first.next, NextPage::More(_)));
    let delta = fake.requests().into_iter().rfind(|r| r.path.ends_with("/delta")).unwrap();
    let prefer = delta.header("prefer").unwrap();
    assert!(prefer.contains("outlook.timezone=\"UTC\"") && prefer.contains("odata.maxpagesize=2"), "{prefer}");
    assert_eq!(delta.param("startDateTime"), Some(HORIZON.0));
    // A week past the horizon: the delta link keeps this window.
    let end = horizon().1.plus_secs(WINDOW_SLACK_DAYS * 86_400).rfc3339();
    assert_eq!(delta.param("endDateTime"), Some(end.as_str()));

    let run = sync_calendar(&graph, &access, &cal, None, horizon()).await.unwrap();
    assert!(run.full);
    assert_eq!(run.items.iter().map(|i| i.id.clone()).collect::<Vec<_>>(), ids);
    assert_eq!(find(&run.items, &ids[0]).state, timed("2026-03-01T09:00:00Z", "2026-03-01T10:00:00Z"));
    assert!(run.items.iter().all(|i| i.ours.is_none()));

    // Nothing changed: an empty increment and a new token.
    let quiet = sync_calendar(&graph, &access, &cal, Some(&run.token), horizon()).await.unwrap();
    assert!(!quiet.full && quiet.items.is_empty());

    fake.update_event(&ids[1], |e| e.end = e.start + chrono::Duration::hours(2));
    fake.delete_event(&ids[2]);
    fake.update_event(&ids[3], |e| {
        e.start += chrono::Duration::days(60);
        e.end += chrono::Duration::days(60);
    });
    let added = fake.add_event(&cal, NewEvent::timed("2026-03-20T15:00:00Z", "2026-03-20T15:30:00Z"));
    let inc = sync_calendar(&graph, &access, &cal, Some(&quiet.token), horizon()).await.unwrap();
    assert!(!inc.full);
    assert_eq!(inc.items.len(), 4, "{:#?}", inc.items);
    assert_eq!(find(&inc.items, &ids[1]).state, timed("2026-03-02T09:00:00Z", "2026-03-02T11:00:00Z"));
    assert_eq!(find(&inc.items, &ids[2]).state, ItemState::Removed);
    assert_eq!(find(&inc.items, &ids[3]).state, ItemState::Removed, "moved out of the view");
    assert_eq!(find(&inc.items, &added).state, timed("2026-03-20T15:00:00Z", "2026-03-20T15:30:00Z"));
    // One page, then three, one and two.
    assert_eq!(fake.requests().iter().filter(|r| r.path.ends_with("/delta")).count(), 1 + 3 + 1 + 2);
}

#[tokio::test]
async fn free_declined_cancelled_and_all_day_events_map_as_section_11_says() {
    let (fake, graph, access) = setup().await;
    let cal = fake.default_calendar();
    let free = fake.add_event(&cal, NewEvent::timed("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z").show_as("free"));
    let tentative = fake.add_event(&cal, NewEvent::timed("2026-03-02T11:00:00Z", "2026-03-02T12:00:00Z").show_as("tentative"));
    let oof = fake.add_event(&cal, NewEvent::timed("2026-03-02T13:00:00Z", "2026-03-02T14:00:00Z").show_as("oof"));
    let declined = fake.add_event(&cal, NewEvent::timed("2026-03-03T09:00:00Z", "2026-03-03T10:00:00Z").response("declined"));
    let accepted = fake.add_event(&cal, NewEvent::timed("2026-03-03T11:00:00Z", "2026-03-03T12:00:00Z").response("accepted"));
    let cancelled = fake.add_event(&cal, NewEvent::timed("2026-03-04T09:00:00Z", "2026-03-04T10:00:00Z").cancelled());
    let holiday = fake.add_event(&cal, NewEvent::all_day(date("2026-03-09"), date("2026-03-11")));

    let run = sync_calendar(&graph, &access, &cal, None, horizon()).await.unwrap();
    assert_eq!(run.items.len(), 7);
    assert_eq!(find(&run.items, &free).state, ItemState::Free);
    assert_eq!(find(&run.items, &tentative).state, timed("2026-03-02T11:00:00Z", "2026-03-02T12:00:00Z"));
    assert_eq!(find(&run.items, &oof).state, timed("2026-03-02T13:00:00Z", "2026-03-02T14:00:00Z"));
    assert_eq!(find(&run.items, &declined).state, ItemState::Free);
    assert_eq!(find(&run.items, &accepted).state, timed("2026-03-03T11:00:00Z", "2026-03-03T12:00:00Z"));
    assert_eq!(find(&run.items, &cancelled).state, ItemState::Free);
    assert_eq!(
        find(&run.items, &holiday).state,
        ItemState::Blocks(BusySpan::AllDay { start: date("2026-03-09"), end: date("2026-03-11") })
    );
}

#[tokio::test]
async fn a_series_is_read_as_instances_with_its_moved_and_cancelled_occurrences() {
    let (fake, graph, access) = setup().await;
    let cal = fake.default_calendar();
    // Mondays and Wednesdays at 08:00 for 6 occurrences from Mon 2 March.
    let weekly = Recurrence::Weekly { interval: 1, days: vec![Weekday::Mon, Weekday::Wed], range: Range::Count(6) };
    let series = fake.add_event(&cal, NewEvent::timed("2026-03-02T08:00:00Z", "2026-03-02T08:30:00Z").repeating(weekly));
    fake.move_occurrence(&series, date("2026-03-04"), "2026-03-05T16:00:00Z", "2026-03-05T17:00:00Z");
    fake.cancel_occurrence(&series, date("2026-03-09"));
    // Every other day until 7 March, all day.
    let daily = Recurrence::Daily { interval: 2, range: Range::Until(date("2026-03-07")) };
    let duty = fake.add_event(&cal, NewEvent::all_day(date("2026-03-03"), date("2026-03-04")).repeating(daily));

    let run = sync_calendar(&graph, &access, &cal, None, horizon()).await.unwrap();
    let mut weekly_items: Vec<(&str, &ItemState)> =
        run.items.iter().filter(|i| i.id.starts_with(&series)).map(|i| (i.id.as_str(), &i.state)).collect();
    weekly_items.sort_by_key(|(id, _)| id.to_string());
    let inst = |d: &str| format!("{series}_{d}");
    let expected = [
        (inst("20260302"), timed("2026-03-02T08:00:00Z", "2026-03-02T08:30:00Z")),
        (inst("20260304"), timed("2026-03-05T16:00:00Z", "2026-03-05T17:00:00Z")),
        (inst("20260311"), timed("2026-03-11T08:00:00Z", "2026-03-11T08:30:00Z")),
        (inst("20260316"), timed("2026-03-16T08:00:00Z", "2026-03-16T08:30:00Z")),
        (inst("20260318"), timed("2026-03-18T08:00:00Z", "2026-03-18T08:30:00Z")),
    ];
    assert_eq!(weekly_items.len(), expected.len(), "6 occurrences less the cancelled one: {weekly_items:#?}");
    for ((id, state), (want_id, want)) in weekly_items.iter().zip(&expected) {
        assert_eq!((*id, *state), (want_id.as_str(), want));
    }
    let days: Vec<&ItemState> = run.items.iter().filter(|i| i.id.starts_with(&duty)).map(|i| &i.state).collect();
    let all_day = |s: &str, e: &str| ItemState::Blocks(BusySpan::AllDay { start: date(s), end: date(e) });
    assert_eq!(
        days,
        [&all_day("2026-03-03", "2026-03-04"), &all_day("2026-03-05", "2026-03-06"), &all_day("2026-03-07", "2026-03-08")]
    );

    // Cancelling one more occurrence later reaches the increment as a removal.
    fake.cancel_occurrence(&series, date("2026-03-16"));
    let inc = sync_calendar(&graph, &access, &cal, Some(&run.token), horizon()).await.unwrap();
    assert_eq!(find(&inc.items, &inst("20260316")).state, ItemState::Removed);
    assert!(inc.items.iter().all(|i| i.id.starts_with(&series)), "only the changed series: {:#?}", inc.items);
}

#[tokio::test]
async fn our_bookings_are_recognised_when_read_back() {
    let (fake, graph, access) = setup().await;
    let cal = fake.default_calendar();
    let theirs = fake.add_event(&cal, NewEvent::timed("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"));
    let ours = write_booking(&graph, &access, &cal, None, &booking("ev_7", "2026-03-02T14:00:00Z", "2026-03-02T15:00:00Z"))
        .await
        .unwrap();
    // Stored with our extended property and the transactionId.
    let stored = fake.event(&ours).unwrap();
    assert_eq!(stored.extended.get(EVENT_ID_PROPERTY).map(String::as_str), Some("ev_7"));
    assert_eq!(stored.transaction_id.as_deref(), Some("calsync:ev_7"));
    assert_eq!(stored.subject, "Booking: haircut");

    let run = sync_calendar(&graph, &access, &cal, None, horizon()).await.unwrap();
    assert_eq!(find(&run.items, &ours).ours.as_deref(), Some("ev_7"));
    assert_eq!(find(&run.items, &ours).state, timed("2026-03-02T14:00:00Z", "2026-03-02T15:00:00Z"));
    assert_eq!(find(&run.items, &theirs).ours, None);
    // Delta cannot expand extended properties: the client never asks it to.
    assert!(fake.requests().iter().filter(|r| r.path.ends_with("/delta")).all(|r| r.param("$expand").is_none()));
}

#[tokio::test]
async fn a_forgotten_sync_state_is_gone_and_the_engine_reads_everything_again() {
    let (fake, graph, access) = setup().await;
    let cal = fake.default_calendar();
    let a = fake.add_event(&cal, NewEvent::timed("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"));
    let run = sync_calendar(&graph, &access, &cal, None, horizon()).await.unwrap();
    fake.forget_sync_states();
    let b = fake.add_event(&cal, NewEvent::timed("2026-03-03T09:00:00Z", "2026-03-03T10:00:00Z"));
    assert_eq!(graph.sync_page(&access, &cal, &Cursor::Token(run.token.clone())).await, Err(SyncError::Gone));
    let again = sync_calendar(&graph, &access, &cal, Some(&run.token), horizon()).await.unwrap();
    assert!(again.full);
    let mut ids: Vec<&str> = again.items.iter().map(|i| i.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, [a.as_str(), b.as_str()]);
}

#[tokio::test]
async fn a_link_that_leaves_the_api_root_is_not_followed() {
    let (_fake, graph, access) = setup().await;
    let evil = Cursor::Token("https://evil.example/v1.0/me/calendarView/delta?$deltatoken=x".into());
    assert!(matches!(graph.sync_page(&access, "cal-default", &evil).await, Err(SyncError::Permanent(_))));
}

#[tokio::test]
async fn service_faults_say_what_to_do() {
    let (fake, graph, access) = setup().await;
    let cal = fake.default_calendar();
    let full = Cursor::Full { from: horizon().0, to: horizon().1 };
    fake.inject(Fault::Throttle { retry_after: 7 });
    assert_eq!(graph.sync_page(&access, &cal, &full).await, Err(SyncError::RateLimited(Duration::from_secs(7))));
    fake.inject(Fault::Unavailable { retry_after: 3 });
    assert_eq!(graph.calendars(&access).await, Err(SyncError::RateLimited(Duration::from_secs(3))));
    fake.inject(Fault::ServerError);
    let failed = graph.sync_page(&access, &cal, &full).await;
    assert!(matches!(failed, Err(SyncError::Transient(_))) && failed.as_ref().unwrap_err().is_retryable());
    fake.inject(Fault::AccessDenied);
    assert!(matches!(graph.account(&access).await, Err(SyncError::Reauth(_))));
    fake.inject(Fault::Unauthorized);
    assert!(matches!(graph.account(&access).await, Err(SyncError::Unauthorized(_))));
    // The faults were one-offs.
    assert!(graph.sync_page(&access, &cal, &full).await.is_ok());
    // The engine hands a rate limit back for the caller to wait.
    fake.inject(Fault::Throttle { retry_after: 2 });
    assert_eq!(sync_calendar(&graph, &access, &cal, None, horizon()).await, Err(SyncError::RateLimited(Duration::from_secs(2))));
}

// ---------------------------------------------------------------------------
// Writing.

#[tokio::test]
async fn a_create_retried_after_a_lost_answer_makes_no_second_event() {
    let (fake, graph, access) = setup().await;
    let cal = fake.default_calendar();
    let event = booking("ev_1", "2026-03-05T10:00:00Z", "2026-03-05T11:00:00Z");
    fake.lose_next_create();
    let lost = write_booking(&graph, &access, &cal, None, &event).await;
    assert!(matches!(lost, Err(SyncError::Transient(_))), "{lost:?}");
    assert_eq!(fake.events(&cal).len(), 1, "the create was made; only its answer was lost");
    let id = write_booking(&graph, &access, &cal, None, &event).await.unwrap();
    assert_eq!(fake.events(&cal).len(), 1);
    assert_eq!(fake.events(&cal)[0].id, id);
}

#[tokio::test]
async fn a_booking_is_moved_in_place_and_restored_after_a_remote_deletion() {
    let (fake, graph, access) = setup().await;
    let cal = fake.default_calendar();
    let id = write_booking(&graph, &access, &cal, None, &booking("ev_2", "2026-03-05T10:00:00Z", "2026-03-05T11:00:00Z"))
        .await
        .unwrap();
    // Rescheduled: the same item moves.
    let moved = booking("ev_2", "2026-03-06T10:00:00Z", "2026-03-06T11:30:00Z");
    assert_eq!(write_booking(&graph, &access, &cal, Some(&id), &moved).await.unwrap(), id);
    let e = fake.event(&id).unwrap();
    assert_eq!(e.start.to_string(), "2026-03-06 10:00:00");
    assert_eq!(e.end.to_string(), "2026-03-06 11:30:00");

    // The provider deletes it in Outlook; the next write puts it back.
    fake.delete_event(&id);
    let restored = write_booking(&graph, &access, &cal, Some(&id), &moved).await.unwrap();
    assert_ne!(restored, id);
    let events = fake.events(&cal);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].extended.get(EVENT_ID_PROPERTY).map(String::as_str), Some("ev_2"));
    assert_eq!(events[0].start.to_string(), "2026-03-06 10:00:00");

    // A delete of something already gone is success.
    graph.delete_event(&access, &cal, &restored).await.unwrap();
    graph.delete_event(&access, &cal, &restored).await.unwrap();
    assert!(fake.events(&cal).is_empty());
}

// ---------------------------------------------------------------------------
// Subscriptions and the receiver.

#[derive(Clone, Copy, PartialEq)]
enum Echo {
    Plain,
    AsJson,
    WrongToken,
    Slow,
}

/// A notification receiver built on the receiver helpers.
struct Receiver {
    server: FakeServer,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Receiver {
    async fn start(echo: Echo) -> Receiver {
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = bodies.clone();
        let server = FakeServer::start(move |req| {
            let seen = seen.clone();
            async move {
                let raw: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(req.query.iter()).finish();
                if let Some(token) = validation_echo(&raw) {
                    return match echo {
                        Echo::Plain => FakeResponse {
                            status: 200,
                            headers: vec![("content-type".into(), "text/plain".into())],
                            body: token.into_bytes(),
                        },
                        Echo::AsJson => FakeResponse::json(200, &serde_json::json!(token)),
                        Echo::WrongToken => FakeResponse {
                            status: 200,
                            headers: vec![("content-type".into(), "text/plain".into())],
                            body: b"nope".to_vec(),
                        },
                        Echo::Slow => {
                            tokio::time::sleep(Duration::from_secs(3)).await;
                            FakeResponse {
                                status: 200,
                                headers: vec![("content-type".into(), "text/plain".into())],
                                body: token.into_bytes(),
                            }
                        }
                    };
                }
                seen.lock().unwrap().push(req.body.to_vec());
                FakeResponse::empty(202)
            }
        })
        .await;
        Receiver { server, bodies }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url())
    }

    fn bodies(&self) -> Vec<Vec<u8>> {
        self.bodies.lock().unwrap().clone()
    }
}

fn watch_request(receiver: &Receiver, days: i64) -> WatchRequest {
    WatchRequest {
        channel_id: "ch_1".into(),
        secret: oauth::random_secret(),
        address: receiver.url("/graph/notify?calendar=c1"),
        lifecycle_address: Some(receiver.url("/graph/lifecycle")),
        expires_at: Instant::from_unix(chrono::Utc::now().timestamp()).plus_secs(days * 86_400),
    }
}

#[tokio::test]
async fn a_subscription_is_made_after_the_handshake_and_its_notifications_carry_the_secret() {
    let (fake, graph, access) = setup().await;
    let cal = fake.default_calendar();
    let receiver = Receiver::start(Echo::Plain).await;
    let request = watch_request(&receiver, 30);
    let watch = graph.watch(&access, &cal, &request).await.unwrap();

    let subs = fake.subscriptions();
    assert_eq!(subs.len(), 1);
    let sub = &subs[0];
    assert_eq!(sub.id, watch.id);
    assert_eq!(sub.resource, format!("me/calendars/{cal}/events"));
    assert_eq!(sub.change_types, ["created", "updated", "deleted"]);
    assert_eq!(sub.client_state.as_deref(), Some(request.secret.expose()));
    assert_eq!(sub.lifecycle_url, request.lifecycle_address);
    // Asked for 30 days, granted the maximum.
    let now = chrono::Utc::now().timestamp();
    assert!(watch.expires_at.unix() <= now + MAX_SUBSCRIPTION_MINUTES * 60);
    assert!(watch.expires_at.unix() > now + MAX_SUBSCRIPTION_MINUTES * 60 - 600);
    assert_eq!(watch.resource_id, None);

    // A change is notified with the clientState, which matches the stored hash.
    let stored_hash = oauth::secret_hash(request.secret.expose());
    let event = fake.add_event(&cal, NewEvent::timed("2026-03-02T09:00:00Z", "2026-03-02T10:00:00Z"));
    let delivered = fake.deliver_notifications().await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].status, Some(202));
    let got = notifications(&receiver.bodies()[0]).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].subscription_id, watch.id);
    assert!(got[0].client_state_matches(&stored_hash));
    match &got[0].kind {
        NotificationKind::Change { change_type, resource } => {
            assert_eq!(*change_type, ChangeType::Created);
            assert!(resource.ends_with(&format!("/Events/{event}")), "{resource}");
        }
        other => panic!("{other:?}"),
    }

    // A forged notification (the receiver URL is no secret) is told apart.
    let forged = serde_json::json!({ "value": [{ "subscriptionId": watch.id, "clientState": "guess", "changeType": "deleted", "resource": "x" }] });
    let forged = notifications(&serde_json::to_vec(&forged).unwrap()).unwrap();
    assert!(!forged[0].client_state_matches(&stored_hash));
    let bare = serde_json::json!({ "value": [{ "subscriptionId": watch.id, "changeType": "deleted", "resource": "x" }] });
    assert!(!notifications(&serde_json::to_vec(&bare).unwrap()).unwrap()[0].client_state_matches(&stored_hash));

    // Lifecycle notifications, on their own URL.
    for (sent, want) in [
        ("reauthorizationRequired", LifecycleEvent::ReauthorizationRequired),
        ("missed", LifecycleEvent::Missed),
        ("subscriptionRemoved", LifecycleEvent::SubscriptionRemoved),
    ] {
        let delivery = fake.send_lifecycle(&watch.id, sent).await.unwrap();
        assert!(delivery.url.ends_with("/graph/lifecycle"));
        let last = receiver.bodies().pop().unwrap();
        let got = notifications(&last).unwrap();
        assert_eq!(got[0].kind, NotificationKind::Lifecycle(want));
        assert!(got[0].client_state_matches(&stored_hash));
    }
    assert!(fake.subscriptions().is_empty(), "subscriptionRemoved removed it");
    assert!(notifications(b"not json").is_err());
    assert!(notifications(br#"{"value":[{"changeType":"created"}]}"#).is_err());
}

#[tokio::test]
async fn no_subscription_without_a_proper_echo() {
    let (fake, graph, access) = setup().await;
    let cal = fake.default_calendar();
    fake.set_validation_timeout(Duration::from_secs(1));
    for echo in [Echo::AsJson, Echo::WrongToken, Echo::Slow] {
        let receiver = Receiver::start(echo).await;
        let refused = graph.watch(&access, &cal, &watch_request(&receiver, 2)).await;
        assert!(matches!(refused, Err(SyncError::Permanent(ref m)) if m.contains("ValidationError")), "{refused:?}");
    }
    // The lifecycle URL is validated too.
    let good = Receiver::start(Echo::Plain).await;
    let bad = Receiver::start(Echo::WrongToken).await;
    let mut request = watch_request(&good, 2);
    request.lifecycle_address = Some(bad.url("/lifecycle"));
    assert!(graph.watch(&access, &cal, &request).await.is_err());
    assert!(fake.subscriptions().is_empty());
}

#[tokio::test]
async fn a_subscription_is_renewed_within_the_maximum_and_deleted_once() {
    let (fake, graph, access) = setup().await;
    let cal = fake.default_calendar();
    let receiver = Receiver::start(Echo::Plain).await;
    let watch = graph.watch(&access, &cal, &watch_request(&receiver, 1)).await.unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!((watch.expires_at.unix() - (now + 86_400)).abs() < 60);

    let renewed = graph.renew(&access, &cal, &watch, &watch_request(&receiver, 10)).await.unwrap();
    assert_eq!(renewed.id, watch.id);
    assert!(renewed.expires_at > watch.expires_at);
    assert!(renewed.expires_at.unix() <= now + 60 + MAX_SUBSCRIPTION_MINUTES * 60);
    assert_eq!(fake.subscriptions()[0].expires.timestamp(), renewed.expires_at.unix());

    // The fake holds Graph's maximum: a raw PATCH beyond it is refused.
    let beyond = chrono::Utc::now() + chrono::Duration::minutes(MAX_SUBSCRIPTION_MINUTES + 60);
    let raw = reqwest::Client::new()
        .patch(format!("{}/subscriptions/{}", fake.api_url(), watch.id))
        .bearer_auth(access.expose())
        .json(&serde_json::json!({ "expirationDateTime": beyond.to_rfc3339() }))
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);

    graph.unwatch(&access, &renewed).await.unwrap();
    graph.unwatch(&access, &renewed).await.unwrap();
    assert!(fake.subscriptions().is_empty());
    let gone = Watch { id: watch.id.clone(), resource_id: None, expires_at: watch.expires_at };
    assert_eq!(graph.renew(&access, &cal, &gone, &watch_request(&receiver, 1)).await, Err(SyncError::NotFound));
}
