//! A whole two-way sync on one machine: a real PostgreSQL (`DATABASE_URL`),
//! the protocol fakes of Google and Graph on 127.0.0.1, the receivers
//! served over real HTTP on 127.0.0.1 (the fakes POST their notifications
//! to them), the OAuth callback's `connect`, and the worker — joined by an
//! in-memory stand-in for the SQS queue, which lets a test drop, duplicate
//! and reorder jobs as a network and a queue may.
//!
//! The queue and the vault are cal-sync's in-memory stand-ins (the vault
//! bound to the connection id like the KMS one, which cal-aws tests
//! against moto).
//!
//! Compiled only with the `testing` feature: this crate's tests, its bench
//! and the `sync_demo` example share it (a dev-dependency of the crate on
//! itself turns the feature on). The Lambda binary never has it, nor the
//! protocol fakes it needs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::http::{HeaderMap, HeaderName, HeaderValue};
use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlRequest;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use cal_core::feasibility::{SlotQuery, SlotRange, StepMinutes};
use cal_core::holds::{HoldKind, HoldMode, HoldRequest, HoldRequestInput};
use cal_core::time::{Instant, Interval, Zone};
use cal_store::EventRecord;
use cal_store::testing::TestDb;
use cal_store::testing::fixture::{CUSTOMER, PROVIDER, ROLE, ZONE, rule};
use cal_sync::google::{Google, SCOPES};
use cal_sync::jobs::SyncJob;
use cal_sync::microsoft::Graph;
use cal_sync::oauth::{self, StateKey};
use cal_sync::{ClientCredentials, Endpoints, Secret, ServiceKind, Services};
use chrono::{Datelike, NaiveDate, Weekday};
use sync_fakes::google::FakeGoogle;
use sync_fakes::microsoft::FakeGraph;
use sync_fakes::{FakeResponse, FakeServer};

use crate::{Deps, ReceiverUrls, Settings};

/// The provider's zone (the fixture's, `Europe/Berlin`).
pub fn zone() -> Zone {
    Zone::parse(ZONE).expect("the fixture's zone")
}

/// The Monday of the week after next in the provider's zone, seen from
/// `now`: lead time and booking window are no concern there.
pub fn monday(now: Instant) -> NaiveDate {
    let mut d = zone().date_at(now) + chrono::Duration::days(8);
    while d.weekday() != Weekday::Mon {
        d = d.succ_opt().expect("a date in range");
    }
    d
}

/// `[h1, h2)` on `day`, in the provider's local hours.
pub fn span(day: NaiveDate, h1: u32, h2: u32) -> Interval {
    let t = |h: u32| zone().point(day.and_hms_opt(h, 0, 0).expect("an hour of the day"));
    Interval::new(t(h1), t(h2)).expect("h1 < h2")
}

/// An Instant Book hold of the fixture's customer over `iv` (hourly steps);
/// `event_id` for a reschedule.
pub fn hold_request(kind: HoldKind, iv: Interval, event_id: Option<&str>, key: &str) -> HoldRequest {
    HoldRequest::new(HoldRequestInput {
        user_id: PROVIDER.into(),
        role_code: ROLE.into(),
        customer_id: Some(CUSTOMER.into()),
        start: iv.start(),
        end: iv.end(),
        kind: Some(kind),
        mode: Some(HoldMode::Instant),
        event_id: event_id.map(Into::into),
        ttl_min: None,
        step_min: Some(60),
        idempotency_key: key.into(),
    })
    .expect("a valid hold request")
}

pub use cal_sync::testing::{MemoryQueue, MemoryVault};

/// A worker fed by the queue as Lambda's SQS event source feeds one: long
/// polls, batches of up to ten jobs, one call of [`Deps::handle`] per batch
/// (the jobs as SQS records, JSON bodies and receive counts). A job the
/// handler reports failed comes back after a second (the visibility
/// timeout's stand-in), at most five deliveries in all (the redrive
/// policy). Stops when dropped.
pub struct Poller {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// SQS's most messages per receive, and Lambda's default batch size.
const BATCH: usize = 10;
const MAX_DELIVERIES: i64 = 5;

impl Poller {
    pub fn start(worker: Arc<Worker>, queue: MemoryQueue) -> Poller {
        let task = tokio::spawn(async move {
            let mut seq = 0u64;
            loop {
                let jobs = queue.receive(BATCH, Duration::from_secs(20)).await;
                if jobs.is_empty() {
                    continue;
                }
                let mut event = SqsEvent::default();
                for (job, deliveries) in &jobs {
                    seq += 1;
                    let mut record = SqsMessage::default();
                    record.message_id = Some(seq.to_string());
                    record.body = Some(serde_json::to_string(job).expect("a job is JSON"));
                    record.attributes.insert("ApproximateReceiveCount".into(), deliveries.to_string());
                    event.records.push(record);
                }
                let first = seq + 1 - jobs.len() as u64;
                let answer = worker.handle(event).await;
                for failure in answer.batch_item_failures {
                    let Some(i) = failure.item_identifier.parse::<u64>().ok().and_then(|id| id.checked_sub(first)) else { continue };
                    let Some((job, deliveries)) = jobs.get(i as usize).cloned() else { continue };
                    if deliveries < MAX_DELIVERIES {
                        let queue = queue.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            queue.redeliver(job, deliveries);
                        });
                    }
                }
            }
        });
        Poller { task }
    }
}


/// A clock the test moves: starts at the real time (the fakes' tokens and
/// channels live by it), whole minutes.
#[derive(Clone)]
pub struct Clock(Arc<Mutex<Instant>>);

impl Clock {
    pub fn real() -> Clock {
        let now = chrono::Utc::now().timestamp();
        Clock(Arc::new(Mutex::new(Instant::from_unix(now - now % 60))))
    }

    pub fn now(&self) -> Instant {
        *self.0.lock().unwrap()
    }

    pub fn advance_secs(&self, secs: i64) {
        let mut t = self.0.lock().unwrap();
        *t = t.plus_secs(secs);
    }
}

pub type Worker = Deps<Google, Graph, MemoryVault, MemoryQueue>;

/// A receiver over real HTTP on 127.0.0.1, as its Function URL serves it.
pub async fn serve_receiver(service: ServiceKind, queue: MemoryQueue) -> FakeServer {
    let deps = Arc::new(fn_sync_receiver::Deps { queue, service });
    FakeServer::start(move |req| {
        let deps = deps.clone();
        async move {
            let mut headers = HeaderMap::new();
            for (k, v) in &req.headers {
                if let (Ok(k), Ok(v)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
                    headers.insert(k, v);
                }
            }
            let query: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&req.query).finish();
            let mut event = LambdaFunctionUrlRequest::default();
            event.headers = headers;
            event.raw_path = Some(req.path.clone());
            event.raw_query_string = Some(query);
            event.body = Some(String::from_utf8_lossy(&req.body).into_owned());
            event.is_base64_encoded = false;
            event.request_context.http.method = Some(req.method.clone());
            let answer = fn_sync_receiver::handle(&deps, event).await;
            let mut out = FakeResponse::empty(answer.status_code as u16);
            for (k, v) in &answer.headers {
                out = out.with_header(k.as_str(), v.to_str().unwrap_or(""));
            }
            out.body = answer.body.unwrap_or_default().into_bytes();
            out
        }
    })
    .await
}

/// Everything of one sync run.
pub struct Rig {
    pub db: TestDb,
    pub google: FakeGoogle,
    pub graph: FakeGraph,
    pub queue: MemoryQueue,
    pub clock: Clock,
    pub worker: Arc<Worker>,
    pub google_receiver: FakeServer,
    pub graph_receiver: FakeServer,
    pub state_key: StateKey,
}

pub fn google_client(fake: &FakeGoogle) -> Google {
    let endpoints = Endpoints { authorize: fake.authorize_url(), token: fake.token_url(), revoke: Some(fake.revoke_url()), api: fake.api_url() };
    let credentials = ClientCredentials {
        client_id: sync_fakes::google::CLIENT_ID.into(),
        client_secret: Secret::new(sync_fakes::google::CLIENT_SECRET),
        redirect_uri: sync_fakes::google::REDIRECT_URI.into(),
    };
    Google::new(endpoints, credentials)
}

pub fn graph_client(fake: &FakeGraph) -> Graph {
    let endpoints = Endpoints { authorize: fake.authorize_url(), token: fake.token_url(), revoke: None, api: fake.api_url() };
    let credentials = ClientCredentials {
        client_id: sync_fakes::microsoft::CLIENT_ID.into(),
        client_secret: Secret::new(sync_fakes::microsoft::CLIENT_SECRET),
        redirect_uri: sync_fakes::microsoft::REDIRECT_URI.into(),
    };
    Graph::new(endpoints, credentials)
}

impl Rig {
    /// A provider (`prov-ana`, photographer, every day 08:00–18:00 Berlin)
    /// and both services, nothing connected yet.
    pub async fn new() -> Rig {
        let mut db = TestDb::new().await;
        cal_store::put_rule(&mut db.client, &rule("wr_1", PROVIDER, 127, "08:00", "18:00")).await.unwrap();
        let (google, graph) = (FakeGoogle::start().await, FakeGraph::start().await);
        let queue = MemoryQueue::default();
        let clock = Clock::real();
        let google_receiver = serve_receiver(ServiceKind::Google, queue.clone()).await;
        let graph_receiver = serve_receiver(ServiceKind::Microsoft, queue.clone()).await;
        let receivers = ReceiverUrls { google: format!("{}/", google_receiver.base_url()), graph: format!("{}/", graph_receiver.base_url()) };
        let pool = cal_store::pool_from_url(&db.url(), 4).unwrap();
        let services = Services { google: google_client(&google), graph: graph_client(&graph) };
        let settings = Settings { max_inline_wait_secs: 2, ..Settings::default() };
        let tick = clock.clone();
        let worker = Arc::new(Deps::new(pool, services, MemoryVault, queue.clone(), receivers, settings, Arc::new(move || tick.now())));
        let state_key = StateKey::new(vec![42u8; 32]).unwrap();
        Rig { db, google, graph, queue, clock, worker, google_receiver, graph_receiver, state_key }
    }

    /// The provider consents (the browser's part done by the fake) and the
    /// callback completes the connect; returns the connection id.
    pub async fn connect(&self, service: ServiceKind) -> String {
        let started = oauth::start(&self.state_key, PROVIDER, service, self.clock.now());
        let (code, redirect) = match service {
            ServiceKind::Google => (self.google.grant_code(&started.code_challenge, SCOPES), sync_fakes::google::REDIRECT_URI),
            ServiceKind::Microsoft => (self.graph.issue_code(&started.code_challenge), sync_fakes::microsoft::REDIRECT_URI),
        };
        let tick = self.clock.clone();
        let deps = fn_sync_callback::Deps {
            pool: self.worker.pool.clone(),
            services: Services { google: google_client(&self.google), graph: graph_client(&self.graph) },
            vault: MemoryVault,
            queue: self.queue.clone(),
            state_key: self.state_key.clone(),
            web_app_url: None,
            clock: Arc::new(move || tick.now()),
        };
        fn_sync_callback::connect(&deps, redirect, Some(&started.state), Some(&code), None).await.unwrap()
    }

    /// Waits for the fakes' notifications to reach the receivers, then
    /// runs every queued job (and the jobs they queue) until none is left.
    pub async fn settle(&self) {
        for _ in 0..20 {
            self.google.settle().await;
            self.graph.deliver_notifications().await;
            let jobs = self.queue.drain();
            if jobs.is_empty() {
                return;
            }
            for job in jobs {
                // A retryable failure would go back to SQS: here it is run again.
                if self.worker.run(&job, 1).await.is_err() {
                    self.worker.run(&job, 2).await.ok();
                }
            }
        }
        panic!("jobs still queued after 20 rounds: {:?}", self.queue.drain());
    }

    /// Runs the worker on the queue from now on, as Lambda would
    /// ([`Poller`]); [`Rig::settle`] must not run while it does.
    pub fn poll(&self) -> Poller {
        Poller::start(self.worker.clone(), self.queue.clone())
    }

    /// What the renewer queues at the clock's now; returns the count.
    pub async fn renew(&self) -> usize {
        let config = fn_sync_renewer::Config { queue_url: String::new(), renew_margin_secs: 86_400, batch: 500 };
        let event = serde_json::json!({"id": "tick", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}});
        let out = fn_sync_renewer::renew(&self.worker.pool, &self.queue, &config, self.clock.now(), event).await.unwrap();
        (out["watches"].as_u64().unwrap() + out["pulls"].as_u64().unwrap()) as usize
    }

    /// The starts of the provider's bookable hourly slots on `day`
    /// (`bookableSlots`, as the API reads them).
    pub async fn slot_starts(&self, day: NaiveDate) -> Vec<Instant> {
        let range = span(day, 0, 23);
        let query = SlotQuery {
            user_id: PROVIDER.into(),
            role_code: ROLE.into(),
            range: SlotRange::new(range.start(), range.end(), Some(60), StepMinutes::new(60).expect("60")).expect("a day"),
        };
        let slots = cal_store::slots(&self.db.client, &query, self.clock.now()).await.expect("slots");
        slots.slots.iter().map(|s| s.start).collect()
    }

    /// Books `iv` (hold, then confirm) and queues the push the bus's rule
    /// would deliver for the confirmation.
    pub async fn book(&mut self, iv: Interval, key: &str) -> EventRecord {
        let now = self.clock.now();
        let hold = cal_store::create_hold(&self.db.client, &hold_request(HoldKind::Checkout, iv, None, key), now).await.expect("a hold");
        let event = cal_store::confirm_hold(&mut self.db.client, &hold.hold_id, now).await.expect("confirmed");
        self.queue.push(SyncJob::Push { event_id: event.event_id.clone() });
        event
    }

    /// The provider's synced busy intervals, sorted.
    pub async fn synced_busy(&self) -> Vec<Interval> {
        let rows = self.db.client.query("select start_at, end_at from cal.synced_event where user_id = $1", &[&PROVIDER]).await.unwrap();
        let mut busy: Vec<Interval> = rows
            .iter()
            .map(|r| Interval::new(Instant::from_chrono(r.get(0)), Instant::from_chrono(r.get(1))).unwrap())
            .collect();
        busy.sort();
        busy
    }
}
