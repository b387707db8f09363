//! Test support for this workspace: a fresh database per test on the server
//! of `DATABASE_URL`, migrations applied, dropped when the test ends.
//!
//! `make test` starts a throwaway PostgreSQL and sets `DATABASE_URL`; any
//! server the URL's user may create databases on works. Compiled only with
//! the `testing` feature (dev-dependencies turn it on).

pub mod fixture;

use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Row, Statement};

use crate::db::Executor;
use cal_core::holds::{HoldKind, HoldMode, HoldRequest, HoldRequestInput};
use cal_core::time::Instant;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The server to create test databases on.
pub fn server_config() -> Config {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "DATABASE_URL is not set. These tests need a real PostgreSQL: run `make test` \
             (it starts a throwaway server and sets DATABASE_URL), or set DATABASE_URL to a server \
             where the user may CREATE DATABASE, e.g. postgres://postgres@127.0.0.1:5432/postgres"
        )
    });
    url.parse().expect("DATABASE_URL is a PostgreSQL connection string")
}

/// A connection to `config`, its driver task spawned.
pub async fn connect_to(config: &Config) -> Client {
    let (client, conn) = config.connect(NoTls).await.expect("connect to the test server");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A database of its own, dropped on drop.
pub struct TestDb {
    /// The database's name.
    pub name: String,
    /// How to connect to it.
    pub config: Config,
    /// An open connection.
    pub client: Client,
    server: Config,
}

impl TestDb {
    /// A fresh database with every migration applied.
    pub async fn new() -> TestDb {
        let mut db = TestDb::empty().await;
        crate::migrate(&mut db.client).await.expect("migrations apply");
        db
    }

    /// A fresh database without migrations.
    pub async fn empty() -> TestDb {
        let server = server_config();
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
        let name = format!("cal_test_{}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed), nanos);
        let admin = connect_to(&server).await;
        admin.batch_execute(&format!("create database \"{name}\"")).await.expect("create the test database");
        let mut config = server.clone();
        config.dbname(&name);
        let client = connect_to(&config).await;
        TestDb { name, config, client, server }
    }

    /// Another connection to the same database.
    pub async fn connect(&self) -> Client {
        connect_to(&self.config).await
    }

    /// The single bigint a query returns.
    pub async fn count(&self, sql: &str) -> i64 {
        self.client.query_one(sql, &[]).await.expect(sql).get(0)
    }

    /// Inserts an outbox row as it could be written before migration 0005
    /// bounded them (`outbox_size_ck` is dropped for the insert and put back
    /// as it was, NOT VALID: old rows stay unchecked). Returns its event id.
    pub async fn outbox_row_from_before_the_bound(&self, event_type: &str, user_id: &str, payload: &serde_json::Value) -> String {
        let def: String = self
            .client
            .query_one(
                "select pg_get_constraintdef(oid) from pg_constraint
                 where conname = 'outbox_size_ck' and conrelid = 'cal.outbox'::regclass",
                &[],
            )
            .await
            .expect("outbox_size_ck exists")
            .get(0);
        self.client.batch_execute("alter table cal.outbox drop constraint outbox_size_ck").await.unwrap();
        let row = self
            .client
            .query_one(
                "insert into cal.outbox (event_type, user_id, payload) values ($1, $2, $3) returning event_id::text",
                &[&event_type, &user_id, payload],
            )
            .await
            .unwrap();
        self.client.batch_execute(&format!("alter table cal.outbox add constraint outbox_size_ck {def}")).await.unwrap();
        row.get(0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot block on itself:
        // drop the database from a thread with a runtime of its own.
        let (server, name) = (self.server.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let admin = connect_to(&server).await;
                let _ = admin.batch_execute(&format!("drop database if exists \"{name}\" with (force)")).await;
            });
        })
        .join();
    }
}


impl TestDb {
    /// A connection URL for this database (for child processes such as calctl).
    pub fn url(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string().replace('/', "%2F"),
            None => "localhost".into(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        let user = self.config.get_user().unwrap_or("postgres");
        let password = self.config.get_password().map(|p| format!(":{}", String::from_utf8_lossy(p))).unwrap_or_default();
        format!("postgres://{user}{password}@{host}:{port}/{}", self.name)
    }
}

/// A clock a test moves; code under test reads it through a `Fn() -> Instant`.
#[derive(Clone, Debug)]
pub struct Clock(std::sync::Arc<std::sync::atomic::AtomicI64>);

impl Clock {
    /// A clock showing `rfc3339`.
    pub fn at(rfc3339: &str) -> Clock {
        let t = cal_core::Instant::parse(rfc3339).expect("an RFC 3339 instant");
        Clock(std::sync::Arc::new(std::sync::atomic::AtomicI64::new(t.unix())))
    }

    /// What it shows now.
    pub fn now(&self) -> cal_core::Instant {
        cal_core::Instant::from_unix(self.0.load(Ordering::SeqCst))
    }

    /// Moves it forward.
    pub fn advance_minutes(&self, minutes: i64) {
        self.0.fetch_add(minutes * 60, Ordering::SeqCst);
    }
}

/// Counts the statements run through it.
pub struct Counting<'a, E> {
    inner: &'a E,
    statements: AtomicUsize,
}

impl<'a, E: Executor> Counting<'a, E> {
    /// Wraps `inner`, counting from zero.
    pub fn new(inner: &'a E) -> Self {
        Counting { inner, statements: AtomicUsize::new(0) }
    }

    /// The count so far, reset to zero.
    pub fn take(&self) -> usize {
        self.statements.swap(0, Ordering::SeqCst)
    }
}

/// Counts statements run (not prepared): a cached statement still runs.
impl<E: Executor> Executor for Counting<'_, E> {
    fn prepare<'a>(&'a self, sql: &'a str) -> impl Future<Output = Result<Statement, tokio_postgres::Error>> + Send + 'a {
        self.inner.prepare(sql)
    }

    fn query_prepared<'a>(
        &'a self,
        statement: &'a Statement,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 'a {
        self.statements.fetch_add(1, Ordering::SeqCst);
        self.inner.query_prepared(statement, params)
    }

    fn execute_prepared<'a>(
        &'a self,
        statement: &'a Statement,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'a {
        self.statements.fetch_add(1, Ordering::SeqCst);
        self.inner.execute_prepared(statement, params)
    }

    fn batch_execute<'a>(&'a self, sql: &'a str) -> impl Future<Output = Result<(), tokio_postgres::Error>> + Send + 'a {
        self.statements.fetch_add(1, Ordering::SeqCst);
        self.inner.batch_execute(sql)
    }
}

/// A checkout hold request (Instant Book, default TTL, customer `cust`) for
/// `user_id`'s `role_code` over `[start, end)`, with `key`.
pub fn checkout(user_id: &str, role_code: &str, start: Instant, end: Instant, key: &str) -> HoldRequest {
    HoldRequest::new(HoldRequestInput {
        user_id: user_id.into(),
        role_code: role_code.into(),
        customer_id: Some("cust".into()),
        start,
        end,
        kind: Some(HoldKind::Checkout),
        mode: Some(HoldMode::Instant),
        event_id: None,
        ttl_min: None,
        step_min: None,
        idempotency_key: key.into(),
    })
    .expect("a valid checkout request")
}
