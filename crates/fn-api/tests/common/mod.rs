//! What the fn-api tests share: a fresh database per test (migrations
//! applied) behind real `Deps`, a clock the test moves, the payloads of
//! `events/appsync/`, and the fixture whose ids those payloads name.
//!
//! The payloads are the ones `cargo lambda invoke --data-file` sends. They
//! name what `calctl seed-demo` seeds (tests/events.rs runs them on exactly
//! that); the fixture here lays out the same sample week for prov-ana and
//! cust-ben through the real booking paths, so a test loads a file, maps
//! the demo's names and ids onto the fixture's ([`Fixture::event`]), and,
//! for flows, swaps only the `arguments` and `identity` of the real event.

#![allow(dead_code)] // each test binary uses a different part

pub mod schema;

use std::path::PathBuf;
use std::sync::Arc;


use cal_core::holds::{HoldKind, HoldMode};
use cal_core::{ErrorType, Exception, ExceptionKind, Instant, Zone};
pub use cal_store::testing::TestDb;
// Each test binary uses a different part of the shared fixture.
#[allow(unused_imports)]
pub use cal_store::testing::fixture::{CUSTOMER, NOW, OTHER_PROVIDER, PROVIDER, ROLE, ZONE, at, hold_request, rule};
use fn_api::{ApiError, Deps, Field, Limits, handle};
use serde_json::{Value, json};

/// The clock every test starts at (a Friday); slots are asked for on
/// Monday 2030-03-04, inside lead time (24 h) and booking window (60 days).
pub const OTHER_CUSTOMER: &str = "cust-dora";
pub const ADMIN: &str = "ops-admin";
pub const FEED_BASE: &str = "https://feeds.example.test/feeds";
/// The order service's role: the one IAM principal the tests' `Deps` trust
/// (`SERVICE_ROLE_ARNS`); the `.iam-order-service` payloads assume it.
pub const SERVICE_ROLE: &str = "arn:aws:iam::123456789012:role/order-service";
/// The seeded ICS source's URL: a secret that must never come back.
pub const SEEDED_ICS_URL: &str = "https://calendar.google.com/calendar/ical/ana.lima%40example.com/private-9f8e7d6c5b4a39281706f5e4d3c2b1a0/basic.ics";

pub use cal_store::testing::Clock;

/// Two-way sync's part: real clients whose endpoints refuse every
/// connection (127.0.0.1:9; a disconnect's revocation is best effort), the
/// in-memory queue and vault.
pub fn sync_deps() -> fn_api::sync::SyncDeps {
    use cal_sync::{ClientCredentials, Endpoints, Secret, Services};
    let dead = || Endpoints {
        authorize: "https://accounts.example.test/authorize".into(),
        token: "http://127.0.0.1:9/token".into(),
        revoke: Some("http://127.0.0.1:9/revoke".into()),
        api: "http://127.0.0.1:9/api".into(),
    };
    let credentials = || ClientCredentials {
        client_id: "client".into(),
        client_secret: Secret::new("secret"),
        redirect_uri: "https://callback.example.test/".into(),
    };
    fn_api::sync::SyncDeps {
        services: Services {
            google: cal_sync::google::Google::new(dead(), credentials()),
            graph: cal_sync::microsoft::Graph::new(dead(), credentials()),
        },
        state_key: cal_sync::oauth::StateKey::new(vec![7u8; 32]).unwrap(),
        vault: Arc::new(cal_sync::testing::MemoryVault),
        queue: Arc::new(cal_sync::testing::MemoryQueue::default()),
    }
}

pub fn deps_for(url: &str, clock: &Clock) -> Deps {
    let c = clock.clone();
    Deps {
        pool: cal_store::pool_from_url(url, 4).expect("pool"),
        feed_base_url: FEED_BASE.into(),
        limits: Limits::default(),
        services: fn_api::ServiceRoles::parse(SERVICE_ROLE).unwrap(),
        clock: Arc::new(move || c.now()),
        cache: None,
        calendars: Default::default(),
        sync: Some(Arc::new(sync_deps())),
        polls: None,
    }
}

/// A fresh database, the `Deps` fn-api runs with, and the test's clock.
pub struct Api {
    pub db: TestDb,
    pub deps: Deps,
    pub clock: Clock,
}

impl Api {
    /// Migrated, with the providers' weekly rules (and nothing else).
    pub async fn new() -> Api {
        let mut db = TestDb::new().await;
        seed_rules(&mut db).await;
        let clock = Clock::at(NOW);
        let deps = deps_for(&db.url(), &clock);
        Api { db, deps, clock }
    }

    /// Migrated, with everything the payloads of `events/appsync/` name.
    pub async fn with_fixture() -> (Api, Fixture) {
        let mut api = Api::new().await;
        let fx = seed_fixture(&mut api.db, api.clock.now()).await;
        (api, fx)
    }

    pub async fn call(&self, event: Value) -> Result<Value, ApiError> {
        handle(&self.deps, event).await
    }

    /// The event of `file` as it is, placeholders filled from `fx`.
    pub async fn call_file(&self, file: &str, fx: &Fixture) -> Result<Value, ApiError> {
        self.call(fx.event(file)).await
    }

    /// The real event of `field` with these arguments, sent by `who`.
    pub async fn call_as(&self, who: Who, field: &str, args: Value) -> Result<Value, ApiError> {
        self.call(request(who, field, args)).await
    }

    pub async fn ok(&self, who: Who, field: &str, args: Value) -> Value {
        match self.call_as(who, field, args.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{field} as {who:?} with {args} failed: {e}"),
        }
    }

    pub async fn err(&self, who: Who, field: &str, args: Value) -> ApiError {
        match self.call_as(who, field, args.clone()).await {
            Ok(v) => panic!("{field} as {who:?} with {args} should fail, got {v}"),
            Err(e) => e,
        }
    }

    pub async fn outbox_len(&self) -> i64 {
        self.db.count("select count(*) from cal.outbox").await
    }
}

/// Weekly rules: Ana weekdays 09:00–17:00 Berlin (08:00–16:00Z in March),
/// plus a Saturday rule the deleteWeeklyRule payload removes; Cara weekdays
/// 10:00–18:00 Berlin. 60-minute minimum, 24 h lead time, 60-day window.
pub async fn seed_rules(db: &mut TestDb) {
    for rule in [
        rule("wr_ana_weekdays", PROVIDER, 0b001_1111, "09:00", "17:00"),
        rule("wr_ana_saturday", PROVIDER, 0b010_0000, "10:00", "14:00"),
        rule("wr_cara_weekdays", OTHER_PROVIDER, 0b001_1111, "10:00", "18:00"),
    ] {
        cal_store::put_rule(&mut db.client, &rule).await.expect("seed rule");
    }
}

/// The generated ids the payloads refer to by placeholder.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// `{{holdId}}`: Ben's active checkout hold, Mon 09:00–10:00Z.
    pub hold_id: String,
    /// `{{requestHoldId}}`: Ben's pending request, Mon 11:00–12:00Z.
    pub request_hold_id: String,
    /// `{{eventId}}`: Ben's confirmed booking, Mon 13:00–14:00Z.
    pub event_id: String,
    /// `{{rescheduleHoldId}}`: a reschedule hold moving it to Tue 13:00–14:00Z.
    pub reschedule_hold_id: String,
    /// `{{sourceId}}`: Ana's connected Google calendar.
    pub source_id: String,
    /// Ana's Google Calendar connection (two-way sync).
    pub connection_id: String,
}

/// Everything beyond the rules that the payloads name: an exception of
/// 2030-03-11, a booking policy, holds, an event, a connected calendar and an active feed.
/// A Google connection of prov-ana with the demo's calendar id.
pub async fn seed_connection(c: &mut impl cal_store::Begin) -> String {
    use cal_store::demo::sample;
    let account = cal_sync::Account { subject: "ana@example.com".into(), display: "ana@example.com".into() };
    let calendars =
        [cal_sync::RemoteCalendar { id: sample::SYNC_CALENDAR.into(), name: "Ana".into(), primary: true, writable: true, time_zone: None }];
    let token = cal_sync::jobs::Sealed { ciphertext: b"not a token".to_vec(), nonce: vec![0; 32], wrapped_key: vec![0; 8] };
    let new = cal_store::sync::NewConnection {
        user_id: PROVIDER,
        service: cal_sync::ServiceKind::Google,
        account: &account,
        token: &token,
        connection_id: "con_ana_google",
        scopes: None,
        calendars: &calendars,
    };
    cal_store::sync::save_connection(c, &new).await.expect("seed connection")
}

pub async fn seed_fixture(db: &mut TestDb, now: Instant) -> Fixture {
    let c = &mut db.client;
    let exc = Exception {
        exc_id: "ex_ana_2030_03_11".into(),
        user_id: PROVIDER.into(),
        date_local: cal_core::time::parse_date("2030-03-11").unwrap(),
        timezone: Zone::parse(ZONE).unwrap(),
        kind: ExceptionKind::Unavailable,
        times: None,
    };
    cal_store::upsert_exception(c, &exc, Some("Trade fair")).await.expect("seed exception");
    // As the demo seed's: a week limit no payload comes near.
    let policy = cal_core::BookingPolicy {
        user_id: PROVIDER.into(),
        role_code: ROLE.into(),
        timezone: Zone::parse(ZONE).unwrap(),
        buffer_before_min: 0,
        buffer_after_min: 0,
        max_per_day: None,
        max_per_week: Some(40),
    };
    cal_store::put_policy(c, &policy).await.expect("seed policy");

    let booked = hold_request("2030-03-04T13:00:00Z", "2030-03-04T14:00:00Z", HoldKind::Checkout, HoldMode::Instant, None, "fx-booked");
    let booked = cal_store::create_hold(c, &booked, now).await.expect("seed hold to book");
    let event = cal_store::confirm_hold(c, &booked.hold_id, now).await.expect("seed event");

    let checkout = hold_request("2030-03-04T09:00:00Z", "2030-03-04T10:00:00Z", HoldKind::Checkout, HoldMode::Instant, None, "fx-checkout");
    let checkout = cal_store::create_hold(c, &checkout, now).await.expect("seed checkout hold");

    let request = hold_request("2030-03-04T11:00:00Z", "2030-03-04T12:00:00Z", HoldKind::Checkout, HoldMode::Request, None, "fx-request");
    let request = cal_store::create_hold(c, &request, now).await.expect("seed request hold");

    let move_to = hold_request(
        "2030-03-05T13:00:00Z",
        "2030-03-05T14:00:00Z",
        HoldKind::Reschedule,
        HoldMode::Instant,
        Some(&event.event_id),
        "fx-reschedule",
    );
    let move_to = cal_store::create_hold(c, &move_to, now).await.expect("seed reschedule hold");

    let source = cal_store::connect_ics(c, PROVIDER, SEEDED_ICS_URL, Some("Google (work)"), now).await.expect("seed source");
    cal_store::create_feed(c, PROVIDER, now).await.expect("seed feed");
    let connection_id = seed_connection(c).await;

    Fixture {
        hold_id: checkout.hold_id,
        request_hold_id: request.hold_id,
        event_id: event.event_id,
        reschedule_hold_id: move_to.hold_id,
        source_id: source.source_id,
        connection_id,
    }
}

/// The demo seed's names in the payloads and what stands for them here.
pub const DEMO_NAMES: [(&str, &str); 5] = [
    (cal_store::demo::DEMO_USER, PROVIDER),
    (cal_store::demo::DEMO_PARTNER, OTHER_PROVIDER),
    (cal_store::demo::DEMO_CUSTOMER, CUSTOMER),
    (cal_store::demo::sample::EXCEPTION, "ex_ana_2030_03_11"),
    (cal_store::demo::sample::SATURDAY_RULE, "wr_ana_saturday"),
];

/// `events/appsync/<file>.json` with the demo's names (as whole JSON
/// strings) replaced by the fixture's.
pub fn fixture_text(file: &str) -> String {
    let mut text = read_event_text(file);
    for (demo, here) in DEMO_NAMES {
        text = text.replace(&format!("\"{demo}\""), &format!("\"{here}\""));
    }
    text
}

impl Fixture {
    /// The demo seed's sample ids and the fixture's generated ones.
    pub fn ids(&self) -> [(&'static str, &str); 6] {
        use cal_store::demo::sample;
        [
            (sample::CONNECTION, &self.connection_id),
            (sample::CHECKOUT_HOLD, &self.hold_id),
            (sample::REQUEST_HOLD, &self.request_hold_id),
            (sample::EVENT, &self.event_id),
            (sample::RESCHEDULE_HOLD, &self.reschedule_hold_id),
            (sample::SOURCE, &self.source_id),
        ]
    }

    /// `events/appsync/<file>.json` about this fixture: names and ids mapped.
    pub fn event(&self, file: &str) -> Value {
        let mut text = fixture_text(file);
        for (demo, id) in self.ids() {
            text = text.replace(&format!("\"{demo}\""), &format!("\"{id}\""));
        }
        assert!(!text.contains("demo_"), "{file}.json names something of the demo seed the fixture lacks");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}.json: {e}"))
    }
}

pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events/appsync")
}

pub fn read_event_text(file: &str) -> String {
    let path = events_dir().join(format!("{file}.json"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Names (without `.json`) of every payload in events/appsync, sorted.
pub fn event_files() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(events_dir())
        .expect("events/appsync exists")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// Who is calling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Who {
    /// prov-ana, whose calendar the payloads use.
    Provider,
    /// prov-cara, another provider.
    OtherProvider,
    /// cust-ben, the customer of the fixture's holds and event.
    Customer,
    /// cust-dora, another customer.
    OtherCustomer,
    /// ops-admin, Cognito group `admin`.
    Admin,
    /// The order service, signed with IAM.
    Service,
    /// An IAM principal not on the allow-list: the same role name in
    /// another account.
    ForeignService,
    /// prov-ana signed in, but in no group (a new sign-up).
    NoGroup,
    /// An API-key request: no identity.
    Nobody,
}

impl Who {
    pub const ALL: [Who; 9] = [
        Who::Provider,
        Who::OtherProvider,
        Who::Customer,
        Who::OtherCustomer,
        Who::Admin,
        Who::Service,
        Who::ForeignService,
        Who::NoGroup,
        Who::Nobody,
    ];

    /// The identity as a real payload carries it, taken from a file that has it.
    pub fn identity(self) -> Value {
        let file = match self {
            Who::Provider => "putWeeklyRule",
            Who::OtherProvider => "putWeeklyRule.forbidden-other-provider",
            Who::Customer | Who::OtherCustomer => "createHold",
            Who::Admin => "confirmHold",
            Who::Service | Who::ForeignService => "confirmHold.iam-order-service",
            Who::NoGroup => "putWeeklyRule",
            Who::Nobody => "weeklyRules.no-identity",
        };
        let event: Value = serde_json::from_str(&fixture_text(file)).unwrap();
        let mut identity = event["identity"].clone();
        match self {
            Who::ForeignService => {
                let arn = identity["userArn"].as_str().unwrap().replace("123456789012", "999999999999");
                identity["userArn"] = json!(arn);
                identity["accountId"] = json!("999999999999");
            }
            Who::OtherCustomer => {
                for path in ["/sub", "/username", "/claims/sub", "/claims/cognito:username"] {
                    *identity.pointer_mut(path).unwrap() = json!(OTHER_CUSTOMER);
                }
            }
            Who::NoGroup => {
                identity["claims"].as_object_mut().unwrap().remove("cognito:groups");
                identity.as_object_mut().unwrap().remove("groups");
            }
            _ => {}
        }
        identity
    }
}

/// The real event of `field` (its own file) sent by `who` with `args`.
pub fn request(who: Who, field: &str, args: Value) -> Value {
    let mut event: Value = serde_json::from_str(&read_event_text(field)).unwrap();
    event["identity"] = who.identity();
    event["info"]["variables"] = args.clone();
    event["arguments"] = args;
    event
}

/// The field a payload is for.
pub fn field_of(event: &Value) -> Option<Field> {
    let info = &event["info"];
    Field::parse(info["parentTypeName"].as_str()?, info["fieldName"].as_str()?)
}

pub fn assert_err(result: Result<Value, ApiError>, kind: ErrorType) -> ApiError {
    match result {
        Ok(v) => panic!("expected {}, got Ok({v})", kind.as_str()),
        Err(e) => {
            assert_eq!(e.kind, kind, "{e}");
            e
        }
    }
}

/// The `slots[].start` of a page.
pub fn starts(page: &Value) -> Vec<String> {
    page["slots"].as_array().expect("slots").iter().map(|s| s["start"].as_str().unwrap().to_owned()).collect()
}

/// Arguments of a checkout hold on Ana's calendar.
pub fn hold_args(start: &str, end: &str, key: &str) -> Value {
    json!({"input": {"userId": PROVIDER, "roleCode": ROLE, "start": start, "end": end, "idempotencyKey": key}})
}
