//! The Google client against the protocol fake (`sync_fakes::google`), over
//! real HTTP on 127.0.0.1.

use std::time::Duration;

use cal_core::time::{Instant, Interval};
use cal_sync::engine::{self, SyncRun};
use cal_sync::google::{self, EVENT_ID_PROPERTY, Google, GoogleNotification, ResourceState, SCOPES, notification, remote_event_id};
use cal_sync::oauth::{self, StateKey};
use cal_sync::{
    BusySpan, CalendarService, ClientCredentials, Cursor, Endpoints, ItemState, NextPage, OutboundEvent, RemoteItem, Secret, ServiceKind,
    SyncError, Watch, WatchRequest, http,
};
use chrono::NaiveDate;
use serde_json::json;
use sync_fakes::google::{self as fake, FakeGoogle, Fault};
use sync_fakes::{FakeResponse, FakeServer};

fn at(s: &str) -> Instant {
    Instant::parse(s).unwrap()
}

fn timed(start: &str, end: &str) -> ItemState {
    ItemState::Blocks(BusySpan::Timed(Interval::new(at(start), at(end)).unwrap()))
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

const HORIZON: (&str, &str) = ("2026-03-01T00:00:00Z", "2026-06-01T00:00:00Z");

fn horizon() -> (Instant, Instant) {
    (at(HORIZON.0), at(HORIZON.1))
}

fn client(fake: &FakeGoogle) -> Google {
    let endpoints =
        Endpoints { authorize: fake.authorize_url(), token: fake.token_url(), revoke: Some(fake.revoke_url()), api: fake.api_url() };
    let credentials = ClientCredentials {
        client_id: fake::CLIENT_ID.into(),
        client_secret: Secret::new(fake::CLIENT_SECRET),
        redirect_uri: fake::REDIRECT_URI.into(),
    };
    Google::new(endpoints, credentials)
}

/// A fake, a client, and an access token with the scopes we ask for.
async fn rig() -> (FakeGoogle, Google, Secret) {
    let fake = FakeGoogle::start().await;
    let google = client(&fake);
    let access = Secret::new(fake.access_token(SCOPES));
    (fake, google, access)
}

fn event(start: &str, end: &str) -> serde_json::Value {
    json!({"summary": "busy", "start": {"dateTime": start}, "end": {"dateTime": end}})
}

fn booking(event_id: &str, start: &str, end: &str) -> OutboundEvent {
    OutboundEvent {
        event_id: event_id.into(),
        start: at(start),
        end: at(end),
        title: "Haircut with Bo".into(),
        description: "Booked through the marketplace".into(),
    }
}

fn item<'a>(run: &'a [RemoteItem], id: &str) -> &'a RemoteItem {
    run.iter().find(|i| i.id == id).unwrap_or_else(|| panic!("no item {id} in {run:#?}"))
}

async fn full(google: &Google, access: &Secret) -> SyncRun {
    engine::sync_calendar(google, access, "primary", None, horizon()).await.unwrap()
}

#[tokio::test]
async fn the_consent_url_asks_for_least_scopes_offline_access_and_pkce() {
    let fake = FakeGoogle::start().await;
    let google = client(&fake);
    let url = url::Url::parse(&google.authorization_url("st4te", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")).unwrap();
    assert_eq!(url.as_str().split('?').next().unwrap(), fake.authorize_url());
    let mut pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    pairs.sort();
    let expected = [
        ("access_type", "offline"),
        ("client_id", fake::CLIENT_ID),
        ("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
        ("code_challenge_method", "S256"),
        ("include_granted_scopes", "true"),
        ("prompt", "consent"),
        ("redirect_uri", fake::REDIRECT_URI),
        ("response_type", "code"),
        ("scope", "https://www.googleapis.com/auth/calendar.calendarlist.readonly https://www.googleapis.com/auth/calendar.events"),
        ("state", "st4te"),
    ];
    assert_eq!(pairs, expected.map(|(k, v)| (k.to_owned(), v.to_owned())));
    assert_eq!(google.kind(), ServiceKind::Google);
    let public = Google::public_endpoints();
    assert_eq!(public.authorize, "https://accounts.google.com/o/oauth2/v2/auth");
    assert_eq!(public.token, "https://oauth2.googleapis.com/token");
    assert_eq!(public.revoke.as_deref(), Some("https://oauth2.googleapis.com/revoke"));
    assert_eq!(public.api, "https://www.googleapis.com/calendar/v3");
}

/// Follows the consent URL as the browser would; the code from the redirect.
async fn consent(url: &str, state: &str) -> String {
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let answer = browser.get(url).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 302, "{:?}", answer.text().await);
    let location = url::Url::parse(answer.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(fake::REDIRECT_URI));
    let param = |k: &str| location.query_pairs().find(|(n, _)| n == k).map(|(_, v)| v.into_owned());
    assert_eq!(param("state").as_deref(), Some(state));
    param("code").unwrap()
}

#[tokio::test]
async fn a_code_is_exchanged_only_with_its_pkce_verifier_and_once() {
    let fake = FakeGoogle::start().await;
    let google = client(&fake);
    let key = StateKey::new(vec![9u8; 32]).unwrap();
    let started = oauth::start(&key, "u_ana", ServiceKind::Google, at("2026-03-01T12:00:00Z"));
    let verifier = oauth::verifier(&key, &started.nonce);

    // Another verifier (another connect's, or a forged one) is refused.
    let code = consent(&google.authorization_url(&started.state, &started.code_challenge), &started.state).await;
    let wrong = oauth::verifier(&key, "another-nonce");
    assert!(matches!(google.exchange_code(&code, &wrong).await, Err(SyncError::Reauth(m)) if m.contains("invalid_grant")));

    let code = consent(&google.authorization_url(&started.state, &started.code_challenge), &started.state).await;
    let tokens = google.exchange_code(&code, &verifier).await.unwrap();
    assert!(tokens.refresh_token.is_some());
    assert_eq!(tokens.scope.as_deref(), Some(SCOPES));
    let now = Instant::from_chrono(chrono::Utc::now());
    assert!(tokens.expires_at > now.plus_secs(3500) && tokens.expires_at <= now.plus_secs(3600));
    // The PKCE check happened at the token endpoint: the verifier was sent.
    let sent = fake.requests().into_iter().filter(|r| r.path == "/token").last().unwrap().form();
    assert!(sent.contains(&("code_verifier".to_owned(), verifier.expose().to_owned())));
    assert!(sent.contains(&("redirect_uri".to_owned(), fake::REDIRECT_URI.to_owned())));
    // A code is good once.
    assert!(matches!(google.exchange_code(&code, &verifier).await, Err(SyncError::Reauth(_))));

    // The granted token does everything the sync needs.
    let access = tokens.access_token;
    assert_eq!(google.account(&access).await.unwrap().subject, fake::ACCOUNT);
    assert_eq!(google.calendars(&access).await.unwrap().len(), 1);
    let id = google.put_event(&access, "primary", None, &booking("ev_1", "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z")).await.unwrap();
    let run = full(&google, &access).await;
    assert_eq!(item(&run.items, &id).ours.as_deref(), Some("ev_1"));
    let receiver = FakeServer::start(|_| async { FakeResponse::empty(200) }).await;
    let request = watch_request("ch-1", &receiver, at("2026-03-08T00:00:00Z"));
    google.watch(&access, "primary", &request).await.unwrap();
}

/// Tokens of a fresh grant (consented without the browser round trip).
async fn connect(fake: &FakeGoogle, google: &Google, seed: &str) -> cal_sync::Tokens {
    let verifier = Secret::new(seed.repeat(43));
    let code = fake.grant_code(&oauth::challenge(&verifier), SCOPES);
    google.exchange_code(&code, &verifier).await.unwrap()
}

#[tokio::test]
async fn an_expired_access_token_is_unauthorized_and_a_refresh_mends_it() {
    let fake = FakeGoogle::start().await;
    let google = client(&fake);
    let tokens = connect(&fake, &google, "v").await;
    let refresh_token = tokens.refresh_token.unwrap();
    assert!(google.calendars(&tokens.access_token).await.is_ok());

    fake.advance(fake::ACCESS_TOKEN_SECS);
    assert!(matches!(google.calendars(&tokens.access_token).await, Err(SyncError::Unauthorized(_))));
    let fresh = google.refresh(&refresh_token).await.unwrap();
    // Google does not rotate the refresh token: the caller keeps the old one.
    assert!(fresh.refresh_token.is_none());
    assert_ne!(fresh.access_token, tokens.access_token);
    assert!(google.calendars(&fresh.access_token).await.is_ok());
}

#[tokio::test]
async fn a_revoked_grant_needs_a_reconnect() {
    let fake = FakeGoogle::start().await;
    let google = client(&fake);
    let tokens = connect(&fake, &google, "w").await;
    let refresh_token = tokens.refresh_token.unwrap();

    google.revoke(&refresh_token).await.unwrap();
    assert!(matches!(google.refresh(&refresh_token).await, Err(SyncError::Reauth(m)) if m.contains("invalid_grant")));
    assert!(matches!(google.calendars(&tokens.access_token).await, Err(SyncError::Unauthorized(_))));
    // Revoking what is already revoked is done, not an error.
    google.revoke(&refresh_token).await.unwrap();

    // The user removing our access in their Google account ends it too.
    let tokens = connect(&fake, &google, "x").await;
    fake.revoke_all();
    assert!(matches!(google.refresh(tokens.refresh_token.as_ref().unwrap()).await, Err(SyncError::Reauth(_))));
}

#[tokio::test]
async fn calendars_are_read_through_every_page_with_their_roles() {
    let (fake, google, access) = rig().await;
    fake.add_calendar("team@group.calendar.google.com", "Team", "writer", "Europe/Lisbon");
    fake.add_calendar("family#x@group.calendar.google.com", "Family", "reader", "America/New_York");
    fake.add_calendar("boss@example.com", "Boss", "freeBusyReader", "UTC");
    fake.set_page_size(1);
    let calendars = google.calendars(&access).await.unwrap();
    let summary: Vec<(&str, &str, bool, bool, Option<&str>)> =
        calendars.iter().map(|c| (c.id.as_str(), c.name.as_str(), c.primary, c.writable, c.time_zone.as_deref())).collect();
    assert_eq!(
        summary,
        vec![
            (fake::ACCOUNT, fake::ACCOUNT, true, true, Some("Europe/Berlin")),
            ("team@group.calendar.google.com", "Team", false, true, Some("Europe/Lisbon")),
            ("family#x@group.calendar.google.com", "Family", false, false, Some("America/New_York")),
        ]
    );
    let pages = fake.requests().iter().filter(|r| r.path.ends_with("/users/me/calendarList")).count();
    assert_eq!(pages, 3);
    let account = google.account(&access).await.unwrap();
    assert_eq!((account.subject.as_str(), account.display.as_str()), (fake::ACCOUNT, fake::ACCOUNT));

    // An id with `#` and `@` reaches the right calendar.
    fake.create("family#x@group.calendar.google.com", event("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"));
    let run = engine::sync_calendar(&google, &access, "family#x@group.calendar.google.com", None, horizon()).await.unwrap();
    assert_eq!(run.items.len(), 1);
}

#[tokio::test]
async fn a_full_read_then_increments_follow_every_page() {
    let (fake, google, access) = rig().await;
    let ids: Vec<String> =
        (1..=5).map(|d| fake.create("primary", event(&format!("2026-03-0{d}T10:00:00Z"), &format!("2026-03-0{d}T11:00:00Z")))).collect();
    // Before the horizon: not read.
    fake.create("primary", event("2026-02-01T10:00:00Z", "2026-02-01T11:00:00Z"));
    fake.set_page_size(2);

    let first = full(&google, &access).await;
    assert!(first.full);
    let mut read: Vec<&str> = first.items.iter().map(|i| i.id.as_str()).collect();
    read.sort();
    assert_eq!(read, ids.iter().map(String::as_str).collect::<Vec<_>>());
    let lists: Vec<_> = fake.requests().into_iter().filter(|r| r.path.ends_with("/events")).collect();
    assert_eq!(lists.len(), 3);
    for r in &lists {
        // Each page repeats the read's query; no timeMax (see google.rs).
        assert_eq!(r.param("timeMin"), Some(HORIZON.0));
        assert_eq!(r.param("singleEvents"), Some("true"));
        assert_eq!(r.param("maxResults"), Some("250"));
        assert_eq!(r.param("timeMax"), None);
    }
    assert!(lists[0].param("pageToken").is_none() && lists[1].param("pageToken").is_some());

    // Nothing changed: an empty increment and a token again.
    let idle = engine::sync_calendar(&google, &access, "primary", Some(&first.token), horizon()).await.unwrap();
    assert_eq!((idle.full, idle.items.len()), (false, 0));

    let added = fake.create("primary", event("2026-03-20T10:00:00Z", "2026-03-20T12:00:00Z"));
    fake.patch("primary", &ids[0], json!({"start": {"dateTime": "2026-03-01T15:00:00Z"}, "end": {"dateTime": "2026-03-01T16:00:00Z"}}));
    fake.delete("primary", &ids[1]);
    let far = fake.create("primary", event("2027-01-04T10:00:00Z", "2027-01-04T11:00:00Z"));
    let before = fake.requests().len();
    let next = engine::sync_calendar(&google, &access, "primary", Some(&idle.token), horizon()).await.unwrap();
    assert!(!next.full);
    assert_eq!(next.items.len(), 4);
    assert_eq!(item(&next.items, &added).state, timed("2026-03-20T10:00:00Z", "2026-03-20T12:00:00Z"));
    assert_eq!(item(&next.items, &ids[0]).state, timed("2026-03-01T15:00:00Z", "2026-03-01T16:00:00Z"));
    assert_eq!(item(&next.items, &ids[1]).state, ItemState::Removed);
    // Increments are not windowed: the caller clips to its horizon.
    assert_eq!(item(&next.items, &far).state, timed("2027-01-04T10:00:00Z", "2027-01-04T11:00:00Z"));
    // (An idle increment gives the same token back.)
    assert_eq!(idle.token, first.token);
    let increments: Vec<_> =
        fake.requests().into_iter().skip(before).filter(|r| r.param("syncToken") == Some(idle.token.as_str())).collect();
    assert_eq!(increments.len(), 2, "the increment was read in two pages, both with the token");
    assert!(increments.iter().all(|r| r.param("timeMin").is_none()));
}

#[tokio::test]
async fn items_map_to_busy_free_and_removed_by_the_rules() {
    let (fake, google, access) = rig().await;
    let plain = fake.create("primary", event("2026-03-04T10:00:00-05:00", "2026-03-04T11:30:00-05:00"));
    let tentative = fake.create(
        "primary",
        json!({"status": "tentative", "start": {"dateTime": "2026-03-05T09:00:00Z"}, "end": {"dateTime": "2026-03-05T10:00:00Z"}}),
    );
    let transparent = fake.create(
        "primary",
        json!({"transparency": "transparent", "start": {"dateTime": "2026-03-05T09:00:00Z"}, "end": {"dateTime": "2026-03-05T10:00:00Z"}}),
    );
    let attendees = |mine: &str| {
        json!([
            {"email": "boss@example.com", "organizer": true, "responseStatus": "accepted"},
            {"email": fake::ACCOUNT, "self": true, "responseStatus": mine},
        ])
    };
    let declined = fake.create("primary", json!({"attendees": attendees("declined"), "start": {"dateTime": "2026-03-06T09:00:00Z"}, "end": {"dateTime": "2026-03-06T10:00:00Z"}}));
    let accepted = fake.create("primary", json!({"attendees": attendees("accepted"), "start": {"dateTime": "2026-03-06T11:00:00Z"}, "end": {"dateTime": "2026-03-06T12:00:00Z"}}));
    let all_day = fake.create("primary", json!({"start": {"date": "2026-03-09"}, "end": {"date": "2026-03-11"}}));
    let zero = fake.create("primary", event("2026-03-07T09:00:00Z", "2026-03-07T09:00:00Z"));
    let cancelled = fake.create("primary", event("2026-03-08T09:00:00Z", "2026-03-08T10:00:00Z"));
    fake.delete("primary", &cancelled);
    let mut ours_body = event("2026-03-10T09:00:00Z", "2026-03-10T10:00:00Z");
    ours_body["extendedProperties"] = json!({"private": {EVENT_ID_PROPERTY: "ev_77"}});
    let ours = fake.create("primary", ours_body);
    // Weekly on Mondays at 09:00 Berlin, four times, the second excluded.
    let series = fake.create(
        "primary",
        json!({
            "summary": "standup",
            "start": {"dateTime": "2026-03-02T09:00:00", "timeZone": "Europe/Berlin"},
            "end": {"dateTime": "2026-03-02T09:30:00", "timeZone": "Europe/Berlin"},
            "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=4", "EXDATE;TZID=Europe/Berlin:20260309T090000"],
        }),
    );
    let instance = |utc: &str| format!("{series}_{utc}");

    let run = full(&google, &access).await;
    let states: Vec<(&str, &ItemState)> = run.items.iter().map(|i| (i.id.as_str(), &i.state)).collect();
    assert_eq!(item(&run.items, &plain).state, timed("2026-03-04T15:00:00Z", "2026-03-04T16:30:00Z"), "{states:?}");
    assert_eq!(item(&run.items, &tentative).state, timed("2026-03-05T09:00:00Z", "2026-03-05T10:00:00Z"));
    assert_eq!(item(&run.items, &transparent).state, ItemState::Free);
    assert_eq!(item(&run.items, &declined).state, ItemState::Free);
    assert_eq!(item(&run.items, &accepted).state, timed("2026-03-06T11:00:00Z", "2026-03-06T12:00:00Z"));
    assert_eq!(
        item(&run.items, &all_day).state,
        ItemState::Blocks(BusySpan::AllDay { start: date("2026-03-09"), end: date("2026-03-11") })
    );
    assert_eq!(item(&run.items, &zero).state, ItemState::Free);
    assert!(run.items.iter().all(|i| i.id != cancelled), "a full read lists no deleted event");
    assert_eq!(item(&run.items, &ours).ours.as_deref(), Some("ev_77"));
    assert_eq!(item(&run.items, &plain).ours, None);
    let mut instances: Vec<(&str, &ItemState)> =
        run.items.iter().filter(|i| i.id.starts_with(&format!("{series}_"))).map(|i| (i.id.as_str(), &i.state)).collect();
    instances.sort_by_key(|(id, _)| id.to_string());
    let (a, b, c) = (instance("20260302T080000Z"), instance("20260316T080000Z"), instance("20260323T080000Z"));
    assert_eq!(
        instances,
        vec![
            (a.as_str(), &timed("2026-03-02T08:00:00Z", "2026-03-02T08:30:00Z")),
            (b.as_str(), &timed("2026-03-16T08:00:00Z", "2026-03-16T08:30:00Z")),
            (c.as_str(), &timed("2026-03-23T08:00:00Z", "2026-03-23T08:30:00Z")),
        ]
    );

    // One instance moved, one cancelled, the owner declines another event:
    // the increment says exactly that.
    fake.patch(
        "primary",
        &b,
        json!({"start": {"dateTime": "2026-03-17T15:00:00+01:00"}, "end": {"dateTime": "2026-03-17T15:45:00+01:00"}}),
    );
    fake.delete("primary", &c);
    fake.patch("primary", &accepted, json!({"attendees": attendees("declined")}));
    let next = engine::sync_calendar(&google, &access, "primary", Some(&run.token), horizon()).await.unwrap();
    let mut changed: Vec<(&str, ItemState)> = next.items.iter().map(|i| (i.id.as_str(), i.state.clone())).collect();
    changed.sort_by_key(|(id, _)| id.to_string());
    let mut expected = vec![
        (b.as_str(), timed("2026-03-17T14:00:00Z", "2026-03-17T14:45:00Z")),
        (c.as_str(), ItemState::Removed),
        (accepted.as_str(), ItemState::Free),
    ];
    expected.sort_by_key(|(id, _)| id.to_string());
    assert_eq!(changed, expected);

    // The whole series deleted: each of its instances is removed.
    fake.delete("primary", &series);
    let last = engine::sync_calendar(&google, &access, "primary", Some(&next.token), horizon()).await.unwrap();
    let mut removed: Vec<&str> = last.items.iter().filter(|i| i.state == ItemState::Removed).map(|i| i.id.as_str()).collect();
    removed.sort();
    assert_eq!(removed, vec![a.as_str(), b.as_str()]);
}

#[tokio::test]
async fn a_gone_token_starts_a_full_read() {
    let (fake, google, access) = rig().await;
    let first_id = fake.create("primary", event("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"));
    let first = full(&google, &access).await;
    fake.invalidate_sync_tokens("primary");
    let second_id = fake.create("primary", event("2026-03-03T10:00:00Z", "2026-03-03T11:00:00Z"));

    assert_eq!(google.sync_page(&access, "primary", &Cursor::Token(first.token.clone())).await, Err(SyncError::Gone));
    let run = engine::sync_calendar(&google, &access, "primary", Some(&first.token), horizon()).await.unwrap();
    assert!(run.full);
    let mut ids: Vec<&str> = run.items.iter().map(|i| i.id.as_str()).collect();
    ids.sort();
    let mut expected = vec![first_id.as_str(), second_id.as_str()];
    expected.sort();
    assert_eq!(ids, expected);
    // The new token works.
    let again = engine::sync_calendar(&google, &access, "primary", Some(&run.token), horizon()).await.unwrap();
    assert!(!again.full && again.items.is_empty());
}

#[tokio::test]
async fn faults_become_what_the_caller_should_do() {
    let (fake, google, access) = rig().await;
    let cursor = Cursor::Full { from: horizon().0, to: horizon().1 };
    let page = |google: &Google| {
        let (access, cursor) = (access.clone(), cursor.clone());
        let google = google.clone();
        async move { google.sync_page(&access, "primary", &cursor).await }
    };

    fake.fail_next(1, Fault::TooManyRequests { retry_after: "7".into() });
    assert_eq!(page(&google).await, Err(SyncError::RateLimited(Duration::from_secs(7))));
    let in_a_minute = (chrono::Utc::now() + chrono::Duration::seconds(65)).format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    fake.fail_next(1, Fault::TooManyRequests { retry_after: in_a_minute });
    match page(&google).await {
        Err(SyncError::RateLimited(d)) => assert!((60..=65).contains(&d.as_secs()), "{d:?}"),
        other => panic!("{other:?}"),
    }
    fake.fail_next(1, Fault::RateLimitExceeded);
    assert_eq!(page(&google).await, Err(SyncError::RateLimited(http::DEFAULT_RETRY_AFTER)));
    fake.fail_next(1, Fault::UserRateLimitExceeded);
    assert_eq!(page(&google).await, Err(SyncError::RateLimited(http::DEFAULT_RETRY_AFTER)));
    fake.fail_next(1, Fault::Forbidden);
    assert!(matches!(page(&google).await, Err(SyncError::Reauth(_))));
    fake.fail_next(1, Fault::ServerError);
    let failed = page(&google).await;
    assert!(matches!(&failed, Err(SyncError::Transient(_))) && failed.unwrap_err().is_retryable());
    fake.fail_next(1, Fault::Unauthorized);
    assert!(matches!(page(&google).await, Err(SyncError::Unauthorized(_))));
    // Faults are used up: the next call works.
    assert!(page(&google).await.is_ok());

    assert_eq!(google.sync_page(&access, "nobody@example.com", &cursor).await, Err(SyncError::NotFound));
    // A calendar we may only read refuses our booking: the provider must
    // choose another (403, not retryable).
    fake.add_calendar("family@group.calendar.google.com", "Family", "reader", "UTC");
    let refused = google
        .put_event(&access, "family@group.calendar.google.com", None, &booking("ev_1", "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"))
        .await;
    assert!(matches!(refused, Err(SyncError::Reauth(m)) if m.contains("writer access")));
    // A token without the events scope cannot read events.
    let narrow = Secret::new(fake.access_token("https://www.googleapis.com/auth/calendar.calendarlist.readonly"));
    assert!(matches!(google.sync_page(&narrow, "primary", &cursor).await, Err(SyncError::Reauth(m)) if m.contains("insufficient")));
    // Nothing listens: transient.
    let dead = Google::new(
        Endpoints {
            authorize: String::new(),
            token: "http://127.0.0.1:1/token".into(),
            revoke: None,
            api: "http://127.0.0.1:1/calendar/v3".into(),
        },
        ClientCredentials { client_id: "c".into(), client_secret: Secret::new("s"), redirect_uri: "r".into() },
    );
    assert!(matches!(dead.sync_page(&access, "primary", &cursor).await, Err(SyncError::Transient(_))));
    assert!(matches!(dead.refresh(&Secret::new("r")).await, Err(SyncError::Transient(_))));
}

#[tokio::test]
async fn a_create_retried_after_a_lost_answer_makes_one_event() {
    let (fake, google, access) = rig().await;
    let ev = booking("ev_42", "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z");
    fake.fail_next(1, Fault::LostAnswer);
    assert!(matches!(google.put_event(&access, "primary", None, &ev).await, Err(SyncError::Transient(_))));
    // The insert was carried out; the retry meets 409 and updates it.
    let id = google.put_event(&access, "primary", None, &ev).await.unwrap();
    assert_eq!(id, remote_event_id("ev_42"));
    let stored = fake.visible_with_property("primary", EVENT_ID_PROPERTY, "ev_42");
    assert_eq!(stored.len(), 1, "{stored:#?}");
    assert_eq!(stored[0]["id"], json!(id));
    assert_eq!(stored[0]["summary"], json!("Haircut with Bo"));
    assert_eq!(stored[0]["transparency"], json!("opaque"));
    assert_eq!(stored[0]["start"]["dateTime"], json!("2026-03-02T10:00:00Z"));
    assert_eq!(fake.visible("primary").len(), 1);

    // A reschedule moves the same item.
    let moved = booking("ev_42", "2026-03-03T14:00:00Z", "2026-03-03T15:00:00Z");
    assert_eq!(engine::write_booking(&google, &access, "primary", Some(&id), &moved).await.unwrap(), id);
    let stored = fake.visible_with_property("primary", EVENT_ID_PROPERTY, "ev_42");
    assert_eq!((stored.len(), &stored[0]["start"]["dateTime"]), (1, &json!("2026-03-03T14:00:00Z")));
    // Read back, it is ours: never external busy time.
    let run = full(&google, &access).await;
    assert_eq!(item(&run.items, &id).ours.as_deref(), Some("ev_42"));
}

#[tokio::test]
async fn a_booking_deleted_remotely_is_restored_by_the_next_write() {
    let (fake, google, access) = rig().await;
    let ev = booking("ev_7", "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z");
    let id = engine::write_booking(&google, &access, "primary", None, &ev).await.unwrap();
    fake.delete("primary", &id);
    assert!(fake.visible("primary").is_empty());
    let run = full(&google, &access).await;
    assert!(run.items.is_empty());

    // With the stored id: the update restores it.
    assert_eq!(engine::write_booking(&google, &access, "primary", Some(&id), &ev).await.unwrap(), id);
    assert_eq!(fake.visible_with_property("primary", EVENT_ID_PROPERTY, "ev_7").len(), 1);
    assert_eq!(fake.event("primary", &id).unwrap()["status"], json!("confirmed"));

    // Without it (the stored id was lost): the create meets 409 and restores.
    fake.delete("primary", &id);
    assert_eq!(engine::write_booking(&google, &access, "primary", None, &ev).await.unwrap(), id);
    assert_eq!(fake.visible_with_property("primary", EVENT_ID_PROPERTY, "ev_7").len(), 1);
    assert_eq!(fake.visible("primary").len(), 1);
}

#[tokio::test]
async fn a_delete_is_done_once_and_then_always_done() {
    let (fake, google, access) = rig().await;
    let id = google.put_event(&access, "primary", None, &booking("ev_9", "2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z")).await.unwrap();
    google.delete_event(&access, "primary", &id).await.unwrap();
    assert!(fake.visible("primary").is_empty());
    assert_eq!(fake.event("primary", &id).unwrap()["status"], json!("cancelled"));
    // Already deleted (410) and never existing (404) are success.
    google.delete_event(&access, "primary", &id).await.unwrap();
    google.delete_event(&access, "primary", "neverexisted1").await.unwrap();
    // Other failures are not swallowed.
    fake.fail_next(1, Fault::ServerError);
    assert!(matches!(google.delete_event(&access, "primary", &id).await, Err(SyncError::Transient(_))));
}

fn watch_request(channel_id: &str, receiver: &FakeServer, expires_at: Instant) -> WatchRequest {
    WatchRequest {
        channel_id: channel_id.into(),
        secret: Secret::new(format!("secret-of-{channel_id}")),
        address: format!("{}/hooks/google", receiver.base_url()),
        lifecycle_address: None,
        expires_at,
    }
}

fn received(receiver: &FakeServer) -> Vec<GoogleNotification> {
    receiver.requests().iter().map(|r| notification(|name| r.header(name)).expect("a well-formed notification")).collect()
}

#[tokio::test]
async fn channels_notify_renew_with_overlap_and_stop() {
    let (fake, google, access) = rig().await;
    let receiver = FakeServer::start(|_| async { FakeResponse::empty(200) }).await;
    let asked = Instant::from_unix(fake.now() + 86_400);
    let first = google.watch(&access, "primary", &watch_request("ch-1", &receiver, asked)).await.unwrap();
    assert_eq!(first.id, "ch-1");
    assert_eq!(first.expires_at, asked);
    let resource_id = first.resource_id.clone().expect("a resourceId to stop it with");
    fake.settle().await;

    fake.create("primary", event("2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"));
    fake.settle().await;
    let got = received(&receiver);
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].state, got[0].message_number), (ResourceState::Sync, 1));
    assert_eq!((got[1].state, got[1].message_number), (ResourceState::Exists, 2));
    for n in &got {
        assert_eq!(n.channel_id, "ch-1");
        assert_eq!(n.resource_id, resource_id);
        assert_eq!(n.token, Some(Secret::new("secret-of-ch-1")));
        assert_eq!(n.expires_at, Some(asked));
    }
    assert!(receiver.requests().iter().all(|r| r.method == "POST" && r.path == "/hooks/google" && r.body.is_empty()));

    // Renew: the new channel exists before the old one is stopped.
    let second = google.renew(&access, "primary", &first, &watch_request("ch-2", &receiver, asked.plus_secs(86_400))).await.unwrap();
    assert_eq!((second.id.as_str(), second.resource_id.as_deref()), ("ch-2", Some(resource_id.as_str())));
    let api: Vec<_> = fake.requests().into_iter().filter(|r| r.path.ends_with("/watch") || r.path.ends_with("/channels/stop")).collect();
    assert_eq!(api.iter().map(|r| r.path.rsplit('/').next().unwrap()).collect::<Vec<_>>(), vec!["watch", "watch", "stop"]);
    assert_eq!(api[2].json().unwrap(), json!({"id": "ch-1", "resourceId": resource_id}));
    let channels = fake.channels();
    assert_eq!(channels.iter().map(|c| (c.id.as_str(), c.stopped)).collect::<Vec<_>>(), vec![("ch-1", true), ("ch-2", false)]);

    fake.create("primary", event("2026-03-03T10:00:00Z", "2026-03-03T11:00:00Z"));
    fake.settle().await;
    let after: Vec<(String, ResourceState, u64)> =
        received(&receiver)[2..].iter().map(|n| (n.channel_id.clone(), n.state, n.message_number)).collect();
    assert_eq!(after, vec![("ch-2".into(), ResourceState::Sync, 1), ("ch-2".into(), ResourceState::Exists, 2)]);

    // Stopped: no more notifications; stopping again is done.
    google.unwatch(&access, &second).await.unwrap();
    fake.create("primary", event("2026-03-04T10:00:00Z", "2026-03-04T11:00:00Z"));
    fake.settle().await;
    assert_eq!(received(&receiver).len(), 4);
    google.unwatch(&access, &second).await.unwrap();
    assert!(fake.deliveries().iter().all(|d| d.status == Some(200)));

    // A renewal whose old channel is already gone still succeeds.
    let gone = Watch { id: "ch-x".into(), resource_id: Some(resource_id.clone()), expires_at: asked };
    let third = google.renew(&access, "primary", &gone, &watch_request("ch-3", &receiver, asked)).await.unwrap();
    assert_eq!(third.id, "ch-3");
}

#[tokio::test]
async fn a_channel_gets_at_most_what_the_service_grants() {
    let (fake, google, access) = rig().await;
    let receiver = FakeServer::start(|_| async { FakeResponse::empty(200) }).await;
    let far = Instant::from_unix(fake.now() + 30 * 86_400);
    let granted = google.watch(&access, "primary", &watch_request("ch-long", &receiver, far)).await.unwrap();
    assert_eq!(granted.expires_at, Instant::from_unix(fake.now() + fake::MAX_CHANNEL_SECS));
    let sent = fake.requests().into_iter().find(|r| r.path.ends_with("/watch")).unwrap().json().unwrap();
    assert_eq!(sent["type"], json!("web_hook"));
    assert_eq!(sent["expiration"], json!((far.unix() * 1000).to_string()));
    assert_eq!(sent["token"], json!("secret-of-ch-long"));
    // The same channel id twice is refused.
    assert!(matches!(google.watch(&access, "primary", &watch_request("ch-long", &receiver, far)).await, Err(SyncError::Permanent(_))));
}

#[test]
fn notifications_are_read_from_their_headers() {
    let headers = [
        ("x-goog-channel-id", "ch-1"),
        ("x-goog-channel-token", "tok"),
        ("x-goog-channel-expiration", "Tue, 03 Mar 2026 10:00:00 GMT"),
        ("x-goog-resource-id", "res-1"),
        ("x-goog-resource-uri", "https://www.googleapis.com/calendar/v3/calendars/primary/events?alt=json"),
        ("x-goog-resource-state", "exists"),
        ("x-goog-message-number", "12"),
    ];
    let lookup = |without: &'static str, state: &'static str| {
        move |name: &str| -> Option<&'static str> {
            let name = name.to_ascii_lowercase();
            if name == without {
                return None;
            }
            if name == "x-goog-resource-state" {
                return Some(state);
            }
            headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
        }
    };
    let n = notification(lookup("", "exists")).unwrap();
    assert_eq!(
        n,
        GoogleNotification {
            channel_id: "ch-1".into(),
            token: Some(Secret::new("tok")),
            resource_id: "res-1".into(),
            state: ResourceState::Exists,
            message_number: 12,
            expires_at: Some(at("2026-03-03T10:00:00Z")),
        }
    );
    assert_eq!(notification(lookup("", "sync")).unwrap().state, ResourceState::Sync);
    assert_eq!(notification(lookup("", "not_exists")).unwrap().state, ResourceState::NotExists);
    assert_eq!(notification(lookup("", "deleted")), None);
    assert_eq!(notification(lookup("x-goog-channel-id", "exists")), None);
    assert_eq!(notification(lookup("x-goog-resource-id", "exists")), None);
    assert_eq!(notification(lookup("x-goog-message-number", "exists")), None);
    // Optional headers.
    assert_eq!(notification(lookup("x-goog-channel-token", "exists")).unwrap().token, None);
    assert_eq!(notification(lookup("x-goog-channel-expiration", "exists")).unwrap().expires_at, None);
}

#[tokio::test]
async fn a_page_cursor_carries_the_reads_query() {
    let (fake, google, access) = rig().await;
    for d in 1..=3 {
        fake.create("primary", event(&format!("2026-03-0{d}T10:00:00Z"), &format!("2026-03-0{d}T11:00:00Z")));
    }
    fake.set_page_size(2);
    let page = google.sync_page(&access, "primary", &Cursor::Full { from: horizon().0, to: horizon().1 }).await.unwrap();
    assert_eq!(page.items.len(), 2);
    let NextPage::More(next) = page.next else { panic!("more pages") };
    let last = google.sync_page(&access, "primary", &Cursor::Page(next)).await.unwrap();
    assert_eq!(last.items.len(), 1);
    assert!(matches!(last.next, NextPage::Done(_)));
    // The event id rules hold for every id we choose.
    assert!(google::remote_event_id("x").len() >= 5);
}
