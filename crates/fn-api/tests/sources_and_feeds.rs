//! External ICS calendars and the personal feed through `fn_api::handle`:
//! both hold a secret URL, which comes back only where the schema says
//! (createFeed / rotateFeed) and never for a connected calendar.

mod common;

use cal_core::ErrorType;
use common::{Api, FEED_BASE, PROVIDER, Who, assert_err};
use serde_json::{Value, json};

const ICLOUD: &str = "webcal://p57-caldav.icloud.com/published/2/MTIzNDU2Nzg5MEV4YW1wbGVTZWNyZXQ";
const OUTLOOK: &str = "https://outlook.office365.com/owa/calendar/0a1b2c3d@example.com/f00dfeedcafe4e1f/calendar.ics";

fn secret_free(v: &Value) {
    let text = v.to_string();
    for secret in ["MTIzNDU2", "f00dfeedcafe", "/published/", "/owa/calendar"] {
        assert!(!text.contains(secret), "a calendar URL leaked: {text}");
    }
}

#[tokio::test]
async fn connect_list_resync_and_disconnect_an_ics_calendar() {
    let api = Api::new().await;
    let connected = api.ok(Who::Provider, "connectIcs", json!({"userId": PROVIDER, "url": ICLOUD, "label": "iCloud"})).await;
    secret_free(&connected);
    let source_id = connected["sourceId"].as_str().unwrap().to_owned();
    assert_eq!(connected["urlHint"], "https://p57-caldav.icloud.com/…", "webcal is fetched over https");
    assert_eq!((connected["status"].as_str(), connected["warningCount"].as_i64()), (Some("active"), Some(0)));
    assert_eq!((connected["lastSyncAt"].clone(), connected["nextPollAt"].as_str()), (Value::Null, Some(common::NOW)));

    // The same calendar again (other spelling) is the same source.
    let https_spelling = ICLOUD.replacen("webcal://", "https://", 1);
    let again = api.ok(Who::Provider, "connectIcs", json!({"userId": PROVIDER, "url": https_spelling})).await;
    assert_eq!(again["sourceId"], source_id.as_str());
    // Calendars list in the order they were connected (ties on the same
    // instant fall back to the id), so the second one is connected later.
    api.clock.advance_minutes(1);
    let outlook = api.ok(Who::Admin, "connectIcs", json!({"userId": PROVIDER, "url": OUTLOOK, "label": "Outlook"})).await;
    secret_free(&outlook);

    let list = api.ok(Who::Provider, "externalCalendars", json!({"userId": PROVIDER})).await;
    secret_free(&list);
    let ids: Vec<&str> = list.as_array().unwrap().iter().map(|s| s["sourceId"].as_str().unwrap()).collect();
    assert_eq!(ids, [source_id.as_str(), outlook["sourceId"].as_str().unwrap()]);
    assert!(list.as_array().unwrap().iter().all(|s| s["urlHint"].as_str().unwrap().ends_with("/…")), "{list}");
    // Nothing stored anywhere a caller can read carries the URL either: the outbox has the host only.
    assert_eq!(api.db.count("select count(*) from cal.outbox where payload::text like '%MTIzNDU2%'").await, 0);

    api.clock.advance_minutes(89);
    let resynced = api.ok(Who::Provider, "resyncIcs", json!({"userId": PROVIDER, "sourceId": source_id})).await;
    secret_free(&resynced);
    assert_eq!(resynced["nextPollAt"], "2030-03-01T01:30:00Z", "due now");

    // Another provider cannot see, resync or disconnect it; an unknown id is NOT_FOUND.
    assert_err(api.call_as(Who::OtherProvider, "externalCalendars", json!({"userId": PROVIDER})).await, ErrorType::Forbidden);
    assert_err(api.call_as(Who::OtherProvider, "resyncIcs", json!({"userId": PROVIDER, "sourceId": source_id})).await, ErrorType::Forbidden);
    assert_err(api.call_as(Who::OtherProvider, "disconnectIcs", json!({"userId": PROVIDER, "sourceId": source_id})).await, ErrorType::Forbidden);
    // Cara naming herself does not reach Ana's source.
    assert_err(api.call_as(Who::OtherProvider, "disconnectIcs", json!({"userId": "prov-cara", "sourceId": source_id})).await, ErrorType::NotFound);

    assert_eq!(api.ok(Who::Provider, "disconnectIcs", json!({"userId": PROVIDER, "sourceId": source_id})).await, Value::Bool(true));
    assert_err(api.call_as(Who::Provider, "disconnectIcs", json!({"userId": PROVIDER, "sourceId": source_id})).await, ErrorType::NotFound);
    assert_err(api.call_as(Who::Provider, "resyncIcs", json!({"userId": PROVIDER, "sourceId": source_id})).await, ErrorType::NotFound);
    let list = api.ok(Who::Provider, "externalCalendars", json!({"userId": PROVIDER})).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test]
async fn a_bad_calendar_url_is_refused_without_echoing_it() {
    let api = Api::new().await;
    for (url, says) in [
        ("ftp://calendar.example.com/secret-abc123.ics", "must start with https://"),
        ("https://127.0.0.1/secret-abc123.ics", "local or private"),
        ("https://user:secret-abc123@calendar.example.com/x.ics", "user name or password"),
        ("not a url secret-abc123", "absolute URL"),
    ] {
        let e = assert_err(api.call_as(Who::Provider, "connectIcs", json!({"userId": PROVIDER, "url": url})).await, ErrorType::Validation);
        assert!(e.message.starts_with("url: ") && e.message.contains(says), "{url}: {e}");
        assert!(!e.message.contains("secret-abc123"), "echoes the URL: {e}");
    }
    assert_eq!(api.db.count("select count(*) from cal.external_source").await, 0);
}

#[tokio::test]
async fn ten_calendars_per_provider_then_rate_limited() {
    let api = Api::new().await;
    for i in 0..10 {
        api.ok(Who::Provider, "connectIcs", json!({"userId": PROVIDER, "url": format!("https://calendar.example.com/{i}/basic.ics")})).await;
    }
    let e = assert_err(
        api.call_as(Who::Provider, "connectIcs", json!({"userId": PROVIDER, "url": "https://calendar.example.com/10/basic.ics"})).await,
        ErrorType::RateLimited,
    );
    assert!(!e.message.contains("calendar.example.com"), "{e}");
}

fn token_of(feed: &Value) -> String {
    let url = feed["url"].as_str().unwrap();
    let token = url.strip_prefix(&format!("{FEED_BASE}/")).and_then(|t| t.strip_suffix(".ics")).unwrap_or_else(|| panic!("{url}"));
    assert!(token.len() == 64 && token.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')), "{url}");
    token.to_owned()
}

#[tokio::test]
async fn create_rotate_and_revoke_the_feed() {
    let api = Api::new().await;
    let created = api.ok(Who::Provider, "createFeed", json!({"userId": PROVIDER})).await;
    let first = token_of(&created);
    let feed_id = created["feedId"].as_str().unwrap().to_owned();
    let owner = cal_store::feed_for_token(&api.db.client, &first).await.unwrap().expect("the URL opens the feed");
    assert_eq!(owner.user_id, PROVIDER);

    let rotated = api.ok(Who::Provider, "rotateFeed", json!({"userId": PROVIDER})).await;
    let second = token_of(&rotated);
    assert_eq!(rotated["feedId"], feed_id.as_str(), "the feed stays, its token changes");
    assert_ne!(second, first);
    assert!(cal_store::feed_for_token(&api.db.client, &first).await.unwrap().is_none(), "the old URL stops at once");
    assert!(cal_store::feed_for_token(&api.db.client, &second).await.unwrap().is_some());

    // Only the provider (or an admin) gets a feed URL.
    for who in [Who::OtherProvider, Who::Customer, Who::Nobody] {
        for field in ["createFeed", "rotateFeed", "revokeFeed"] {
            assert_err(api.call_as(who, field, json!({"userId": PROVIDER})).await, ErrorType::Forbidden);
        }
    }

    assert_eq!(api.ok(Who::Provider, "revokeFeed", json!({"userId": PROVIDER})).await, Value::Bool(true));
    assert!(cal_store::feed_for_token(&api.db.client, &second).await.unwrap().is_none(), "revoked");
    // Revoking again is harmless; rotating a revoked feed is NOT_FOUND; creating revives it.
    assert!(api.ok(Who::Provider, "revokeFeed", json!({"userId": PROVIDER})).await.is_boolean());
    assert_err(api.call_as(Who::Provider, "rotateFeed", json!({"userId": PROVIDER})).await, ErrorType::NotFound);
    let revived = api.ok(Who::Admin, "createFeed", json!({"userId": PROVIDER})).await;
    assert_eq!(revived["feedId"], feed_id.as_str());
    let third = token_of(&revived);
    assert!(cal_store::feed_for_token(&api.db.client, &third).await.unwrap().is_some());

    // No other field returns a token.
    let rules = api.ok(Who::Provider, "weeklyRules", json!({"userId": PROVIDER})).await;
    assert!(!rules.to_string().contains(&third));
}

/// resyncIcs starts the poll state machine at once (through the real SDK,
/// on moto); when the start fails, the mutation still succeeds: the source
/// is due and the schedule polls it.
#[tokio::test]
async fn resync_starts_a_poll_and_a_failed_start_is_not_the_callers_error() {
    let sdk = cal_aws::testing::moto().await;
    let machine = cal_aws::testing::create_state_machine(&sdk).await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let mut api = Api::new().await;
    api.deps.polls = Some(cal_aws::StepFunctionsPollStarter::new(sfn.clone(), &machine));
    let connected = api.ok(Who::Provider, "connectIcs", json!({"userId": PROVIDER, "url": ICLOUD})).await;
    let source_id = connected["sourceId"].as_str().unwrap().to_owned();
    let executions = || async { sfn.list_executions().state_machine_arn(&machine).send().await.unwrap().executions().len() };
    assert_eq!(executions().await, 0, "connecting leaves the first poll to the schedule");

    let resynced = api.ok(Who::Provider, "resyncIcs", json!({"userId": PROVIDER, "sourceId": source_id})).await;
    assert_eq!(resynced["nextPollAt"], common::NOW, "due now");
    assert_eq!(executions().await, 1);
    // A refused resync starts nothing.
    assert_err(api.call_as(Who::OtherProvider, "resyncIcs", json!({"userId": PROVIDER, "sourceId": source_id})).await, ErrorType::Forbidden);
    assert_eq!(executions().await, 1);

    let gone = "arn:aws:states:us-east-1:123456789012:stateMachine:not-there";
    api.deps.polls = Some(cal_aws::StepFunctionsPollStarter::new(sfn.clone(), gone));
    let resynced = api.ok(Who::Provider, "resyncIcs", json!({"userId": PROVIDER, "sourceId": source_id})).await;
    assert_eq!(resynced["nextPollAt"], common::NOW, "still due: the schedule polls it");
}
