//! FakeGoogle's own protocol rules, spoken to in raw HTTP: what a client
//! test would not notice if the fake were lenient.

use serde_json::{Value, json};
use sync_fakes::google::{self as fake, FakeGoogle};
use sync_fakes::{FakeResponse, FakeServer};

const ALL: &str = "https://www.googleapis.com/auth/calendar";

struct Api {
    fake: FakeGoogle,
    http: reqwest::Client,
    token: String,
}

impl Api {
    async fn new() -> Api {
        let fake = FakeGoogle::start().await;
        let token = fake.access_token(ALL);
        Api { fake, http: reqwest::Client::new(), token }
    }

    async fn call(&self, method: &str, path: &str, query: &[(&str, &str)], body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.fake.api_url());
        let mut r = self.http.request(method.parse().unwrap(), url).query(query).bearer_auth(&self.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let answer = r.send().await.unwrap();
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

fn reason(body: &Value) -> &str {
    body.pointer("/error/errors/0/reason").and_then(Value::as_str).unwrap_or("")
}

#[tokio::test]
async fn the_token_endpoint_checks_client_redirect_and_code_age() {
    let fake = FakeGoogle::start().await;
    let http = reqwest::Client::new();
    let verifier = "a".repeat(43);
    use base64::Engine;
    use sha2::Digest;
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    let exchange = |code: String, secret: &'static str, redirect: &'static str| {
        let (http, url, verifier) = (http.clone(), fake.token_url(), verifier.clone());
        async move {
            let form = [
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", &verifier),
                ("client_id", fake::CLIENT_ID),
                ("client_secret", secret),
                ("redirect_uri", redirect),
            ];
            let answer = http.post(url).form(&form).send().await.unwrap();
            (answer.status().as_u16(), answer.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = exchange(fake.grant_code(&challenge, ALL), "wrong", fake::REDIRECT_URI).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    let (status, body) = exchange(fake.grant_code(&challenge, ALL), fake::CLIENT_SECRET, "https://evil.example/cb").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("redirect_uri_mismatch")));
    let old = fake.grant_code(&challenge, ALL);
    fake.advance(600);
    let (status, body) = exchange(old, fake::CLIENT_SECRET, fake::REDIRECT_URI).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let (status, body) = exchange(fake.grant_code(&challenge, ALL), fake::CLIENT_SECRET, fake::REDIRECT_URI).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["expires_in"].as_i64(), body["token_type"].as_str()), (Some(fake::ACCESS_TOKEN_SECS), Some("Bearer")));

    // The consent page refuses a plain (or missing) PKCE method.
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let query = [
        ("client_id", fake::CLIENT_ID),
        ("redirect_uri", fake::REDIRECT_URI),
        ("response_type", "code"),
        ("scope", ALL),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "plain"),
    ];
    assert_eq!(browser.get(fake.authorize_url()).query(&query).send().await.unwrap().status().as_u16(), 400);
}

#[tokio::test]
async fn event_ids_etags_sequence_and_restoring_follow_the_event_resource() {
    let api = Api::new().await;
    let events = "/calendars/primary/events";
    let body = |id: &str| json!({"id": id, "start": {"dateTime": "2026-03-02T10:00:00Z"}, "end": {"dateTime": "2026-03-02T11:00:00Z"}});
    // Event.id: base32hex, 5 to 1024 characters.
    for bad in ["abcd", "has_underscore", "UPPERCASE1", "wxyz12345"] {
        let (status, _) = api.call("POST", events, &[], Some(body(bad))).await;
        assert_eq!(status, 400, "{bad}");
    }
    let (status, created) = api.call("POST", events, &[], Some(body("booking0001"))).await;
    assert_eq!(status, 200);
    assert_eq!((created["status"].as_str(), created["sequence"].as_i64()), (Some("confirmed"), Some(0)));
    let (status, again) = api.call("POST", events, &[], Some(body("booking0001"))).await;
    assert_eq!((status, reason(&again)), (409, "duplicate"));

    // A move bumps etag and sequence; a title change only the etag.
    let (_, moved) =
        api.call("PATCH", &format!("{events}/booking0001"), &[], Some(json!({"start": {"dateTime": "2026-03-02T09:00:00Z"}}))).await;
    assert_ne!(moved["etag"], created["etag"]);
    assert_eq!(moved["sequence"].as_i64(), Some(1));
    let (_, renamed) = api.call("PATCH", &format!("{events}/booking0001"), &[], Some(json!({"summary": "x"}))).await;
    assert_eq!(renamed["sequence"].as_i64(), Some(1));
    // An empty range is refused.
    let (status, empty) =
        api.call("PATCH", &format!("{events}/booking0001"), &[], Some(json!({"end": {"dateTime": "2026-03-02T08:00:00Z"}}))).await;
    assert_eq!((status, reason(&empty)), (400, "timeRangeEmpty"));

    // Deleted: still there, cancelled; deleted twice: 410; its id stays taken.
    assert_eq!(api.call("DELETE", &format!("{events}/booking0001"), &[], None).await.0, 204);
    let (_, got) = api.call("GET", &format!("{events}/booking0001"), &[], None).await;
    assert_eq!(got["status"].as_str(), Some("cancelled"));
    assert_eq!(api.call("DELETE", &format!("{events}/booking0001"), &[], None).await.0, 410);
    assert_eq!(api.call("POST", events, &[], Some(body("booking0001"))).await.0, 409);
    let (_, restored) = api.call("PATCH", &format!("{events}/booking0001"), &[], Some(json!({"status": "confirmed"}))).await;
    assert_eq!(restored["status"].as_str(), Some("confirmed"));
    assert_eq!(api.call("DELETE", &format!("{events}/nosuchevent"), &[], None).await.0, 404);

    // A reader may not write.
    api.fake.add_calendar("family@group.calendar.google.com", "Family", "reader", "UTC");
    let (status, refused) = api.call("POST", "/calendars/family@group.calendar.google.com/events", &[], Some(body("other0001"))).await;
    assert_eq!((status, reason(&refused)), (403, "requiredAccessLevel"));
}

#[tokio::test]
async fn lists_keep_googles_query_rules() {
    let api = Api::new().await;
    let events = "/calendars/primary/events";
    let (_, first) = api.call("GET", events, &[("singleEvents", "true")], None).await;
    let token = first["nextSyncToken"].as_str().unwrap().to_owned();
    // A sync token cannot be windowed, nor asked to hide deleted items.
    for extra in [("timeMin", "2026-03-01T00:00:00Z"), ("timeMax", "2026-03-01T00:00:00Z"), ("showDeleted", "false")] {
        let (status, _) = api.call("GET", events, &[("singleEvents", "true"), ("syncToken", &token), extra], None).await;
        assert_eq!(status, 400, "{extra:?}");
    }
    // Another token, or one invalidated: 410.
    let (status, gone) = api.call("GET", events, &[("singleEvents", "true"), ("syncToken", "st.other.0.1")], None).await;
    assert_eq!((status, reason(&gone)), (410, "fullSyncRequired"));
    // Unexpanded lists are not what this fake does, and it says so.
    assert_eq!(api.call("GET", events, &[], None).await.0, 400);

    // A page token is good only with the query that made it.
    for d in 1..=3 {
        api.fake.create("primary", json!({"start": {"date": format!("2026-03-0{d}")}, "end": {"date": format!("2026-03-0{}", d + 1)}}));
    }
    let (_, page) = api.call("GET", events, &[("singleEvents", "true"), ("maxResults", "2")], None).await;
    let next = page["nextPageToken"].as_str().unwrap().to_owned();
    assert!(page.get("nextSyncToken").is_none());
    let (status, _) = api.call("GET", events, &[("singleEvents", "true"), ("pageToken", &next)], None).await;
    assert_eq!(status, 400);

    // timeMin/timeMax bound by end and start.
    let (_, window) = api
        .call("GET", events, &[("singleEvents", "true"), ("timeMin", "2026-03-02T00:00:00Z"), ("timeMax", "2026-03-03T00:00:00Z")], None)
        .await;
    let dates: Vec<&str> = window["items"].as_array().unwrap().iter().map(|e| e["start"]["date"].as_str().unwrap()).collect();
    assert_eq!(dates, vec!["2026-03-02"]);

    // An all-day series' instances are named by date.
    let id = api.fake.create(
        "primary",
        json!({"start": {"date": "2026-04-06"}, "end": {"date": "2026-04-07"}, "recurrence": ["RRULE:FREQ=DAILY;COUNT=2"]}),
    );
    let got: Vec<String> =
        api.fake.visible("primary").iter().filter_map(|e| e["id"].as_str().filter(|i| i.starts_with(&id)).map(str::to_owned)).collect();
    assert_eq!(got, vec![format!("{id}_20260406"), format!("{id}_20260407")]);
    // A timed series needs its zone.
    let (status, _) = api
        .call(
            "POST",
            events,
            &[],
            Some(json!({"start": {"dateTime": "2026-04-06T09:00:00Z"}, "end": {"dateTime": "2026-04-06T10:00:00Z"}, "recurrence": ["RRULE:FREQ=DAILY"]})),
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn scopes_are_checked_per_method() {
    let api = Api::new().await;
    let read_only = api.fake.access_token("https://www.googleapis.com/auth/calendar.events.readonly");
    let url = format!("{}/calendars/primary/events", api.fake.api_url());
    let list = api.http.get(&url).query(&[("singleEvents", "true")]).bearer_auth(&read_only).send().await.unwrap();
    assert_eq!(list.status().as_u16(), 200);
    let body = json!({"start": {"dateTime": "2026-03-02T10:00:00Z"}, "end": {"dateTime": "2026-03-02T11:00:00Z"}});
    let write = api.http.post(&url).bearer_auth(&read_only).json(&body).send().await.unwrap();
    assert_eq!(write.status().as_u16(), 403);
    assert_eq!(reason(&write.json().await.unwrap()), "insufficientPermissions");
    let calendars = api.http.get(format!("{}/users/me/calendarList", api.fake.api_url())).bearer_auth(&read_only).send().await.unwrap();
    assert_eq!(calendars.status().as_u16(), 403);
    let anonymous = api.http.get(&url).query(&[("singleEvents", "true")]).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
}

#[tokio::test]
async fn an_expired_or_stopped_channel_sends_nothing() {
    let api = Api::new().await;
    let receiver = FakeServer::start(|_| async { FakeResponse::empty(200) }).await;
    let expiration = ((api.fake.now() + 60) * 1000).to_string();
    let channel = json!({"id": "ch-short", "type": "web_hook", "address": format!("{}/h", receiver.base_url()), "expiration": expiration});
    let (status, answer) = api.call("POST", "/calendars/primary/events/watch", &[], Some(channel)).await;
    assert_eq!(status, 200);
    assert_eq!(answer["expiration"].as_str(), Some(expiration.as_str()));
    let event = json!({"start": {"dateTime": "2026-03-02T10:00:00Z"}, "end": {"dateTime": "2026-03-02T11:00:00Z"}});
    api.fake.create("primary", event.clone());
    api.fake.advance(61);
    api.fake.create("primary", event);
    api.fake.settle().await;
    let states: Vec<String> = api.fake.deliveries().iter().map(|d| format!("{}#{}", d.state, d.message_number)).collect();
    assert_eq!(states, vec!["sync#1", "exists#2"]);
    assert_eq!(receiver.requests().len(), 2);
    // Stopping needs the resourceId too.
    let (status, _) = api.call("POST", "/channels/stop", &[], Some(json!({"id": "ch-short", "resourceId": "wrong"}))).await;
    assert_eq!(status, 404);
}
