//! What the store's functions run on, and how connections are made.
//!
//! Functions that only read take `&impl Executor`; functions that write take
//! `&mut impl Begin` and open their own transaction on it — a real one on a
//! client, a savepoint inside a caller's transaction — so they are atomic on
//! their own and still compose into a larger transaction (a booking taking a
//! per-provider advisory lock, then writing several rows).
//!
//! Both are implemented for `tokio_postgres` and `deadpool_postgres` clients
//! and transactions, and for [`Tx`], the transaction [`Begin::begin`] opens
//! (which keeps a pooled connection's statement cache). [`Executor`] is a
//! trait of our own (not `GenericClient`, which is sealed) so a test can
//! wrap it, e.g. to count the statements a loader runs. Connections use TLS
//! as [`crate::tls`] describes.

use std::future::Future;
use std::pin::Pin;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use deadpool_postgres::Transaction as PooledTransaction;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement, Transaction};

use crate::error::{ConfigProblem, StoreError};

/// A boxed, sendable future. Boxing (one allocation a statement, nothing
/// next to a round trip) gives every implementation the same opaque-free
/// type, which keeps the compiler able to prove a spawned task `Send`.
type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T, tokio_postgres::Error>> + Send + 'a>>;

/// Runs statements: a client, a transaction or a pooled connection.
///
/// Every statement is prepared first ([`Executor::prepare`]). A pooled
/// connection keeps what it prepared (deadpool's per-connection statement
/// cache), so a statement it ran before costs one round trip and no parse or
/// plan; a bare client prepares afresh each time (two round trips). To
/// pipeline statements whose order matters (a lock, then reads that must see
/// what the lock waited for), prepare them all first, then poll the
/// `*_prepared` futures together: requests go out in the order the futures
/// are first polled.
pub trait Executor: Sync {
    /// A prepared statement for `sql` (from the connection's cache if it
    /// has one).
    fn prepare<'a>(&'a self, sql: &'a str) -> impl Future<Output = Result<Statement, tokio_postgres::Error>> + Send + 'a;

    /// Runs a prepared statement and returns its rows.
    fn query_prepared<'a>(
        &'a self,
        statement: &'a Statement,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 'a;

    /// Runs a prepared statement and returns the number of rows it changed.
    fn execute_prepared<'a>(
        &'a self,
        statement: &'a Statement,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'a;

    /// Runs a statement and returns its rows (prepared, then run).
    fn query<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 'a {
        let fut: Fut<'a, Vec<Row>> = Box::pin(async move {
            let statement = self.prepare(sql).await?;
            self.query_prepared(&statement, params).await
        });
        fut
    }

    /// Runs a statement and returns the number of rows it changed.
    fn execute<'a>(
        &'a self,
        sql: &'a str,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'a {
        let fut: Fut<'a, u64> = Box::pin(async move {
            let statement = self.prepare(sql).await?;
            self.execute_prepared(&statement, params).await
        });
        fut
    }

    /// Runs statements with no parameters and no results in one round trip
    /// (the simple query protocol: `BEGIN`, `COMMIT`, DDL).
    fn batch_execute<'a>(&'a self, sql: &'a str) -> impl Future<Output = Result<(), tokio_postgres::Error>> + Send + 'a;
}

/// Opens a transaction: on a client a new one, inside a transaction a
/// savepoint (committing it releases the savepoint; dropping it rolls back
/// to it).
pub trait Begin: Executor + Send {
    /// Starts the (sub-)transaction.
    fn begin(&mut self) -> impl Future<Output = Result<Tx<'_>, tokio_postgres::Error>> + Send;
}

/// A transaction (or savepoint) opened by [`Begin::begin`]; one on a pooled
/// connection keeps using that connection's statement cache.
pub enum Tx<'a> {
    /// On a bare client.
    Plain(Transaction<'a>),
    /// On a pooled connection.
    Pooled(PooledTransaction<'a>),
}

impl Tx<'_> {
    /// Commits it (releases a savepoint).
    pub async fn commit(self) -> Result<(), tokio_postgres::Error> {
        match self {
            Tx::Plain(t) => t.commit().await,
            Tx::Pooled(t) => t.commit().await,
        }
    }

    /// Rolls it back (to the savepoint).
    pub async fn rollback(self) -> Result<(), tokio_postgres::Error> {
        match self {
            Tx::Plain(t) => t.rollback().await,
            Tx::Pooled(t) => t.rollback().await,
        }
    }
}

/// The statement-running half for a type that prepares with `$prepare`
/// (`prepare`, or deadpool's cached `prepare_cached`) and runs through the
/// tokio-postgres client or transaction `$inner` it is or derefs to.
macro_rules! delegate_executor {
    ($($ty:ty => $inner:ident :: $prepare:ident),+ $(,)?) => {$(
        impl Executor for $ty {
            fn prepare<'a>(&'a self, sql: &'a str) -> impl Future<Output = Result<Statement, tokio_postgres::Error>> + Send + 'a {
                let fut: Fut<'a, Statement> = Box::pin(self.$prepare(sql));
                fut
            }

            fn query_prepared<'a>(
                &'a self,
                statement: &'a Statement,
                params: &'a [&'a (dyn ToSql + Sync)],
            ) -> impl Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 'a {
                let fut: Fut<'a, Vec<Row>> = Box::pin($inner::query(self, statement, params));
                fut
            }

            fn execute_prepared<'a>(
                &'a self,
                statement: &'a Statement,
                params: &'a [&'a (dyn ToSql + Sync)],
            ) -> impl Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'a {
                let fut: Fut<'a, u64> = Box::pin($inner::execute(self, statement, params));
                fut
            }

            fn batch_execute<'a>(&'a self, sql: &'a str) -> impl Future<Output = Result<(), tokio_postgres::Error>> + Send + 'a {
                let fut: Fut<'a, ()> = Box::pin($inner::batch_execute(self, sql));
                fut
            }
        }
    )+};
}

delegate_executor!(
    Client => Client::prepare,
    Transaction<'_> => Transaction::prepare,
    deadpool_postgres::Client => Client::prepare_cached,
    PooledTransaction<'_> => Transaction::prepare_cached,
);

/// A [`Tx`] runs statements through the transaction it holds.
macro_rules! on_tx {
    ($self:ident, $t:ident => $e:expr) => {
        match $self {
            Tx::Plain($t) => $e,
            Tx::Pooled($t) => $e,
        }
    };
}

impl Executor for Tx<'_> {
    fn prepare<'a>(&'a self, sql: &'a str) -> impl Future<Output = Result<Statement, tokio_postgres::Error>> + Send + 'a {
        let fut: Fut<'a, Statement> = on_tx!(self, t => Box::pin(Executor::prepare(t, sql)));
        fut
    }

    fn query_prepared<'a>(
        &'a self,
        statement: &'a Statement,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 'a {
        let fut: Fut<'a, Vec<Row>> = on_tx!(self, t => Box::pin(t.query_prepared(statement, params)));
        fut
    }

    fn execute_prepared<'a>(
        &'a self,
        statement: &'a Statement,
        params: &'a [&'a (dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, tokio_postgres::Error>> + Send + 'a {
        let fut: Fut<'a, u64> = on_tx!(self, t => Box::pin(t.execute_prepared(statement, params)));
        fut
    }

    fn batch_execute<'a>(&'a self, sql: &'a str) -> impl Future<Output = Result<(), tokio_postgres::Error>> + Send + 'a {
        let fut: Fut<'a, ()> = on_tx!(self, t => Box::pin(Executor::batch_execute(t, sql)));
        fut
    }
}

impl Begin for Client {
    async fn begin(&mut self) -> Result<Tx<'_>, tokio_postgres::Error> {
        self.transaction().await.map(Tx::Plain)
    }
}

impl Begin for Transaction<'_> {
    async fn begin(&mut self) -> Result<Tx<'_>, tokio_postgres::Error> {
        self.transaction().await.map(Tx::Plain)
    }
}

impl Begin for deadpool_postgres::Client {
    async fn begin(&mut self) -> Result<Tx<'_>, tokio_postgres::Error> {
        self.transaction().await.map(Tx::Pooled)
    }
}

impl Begin for PooledTransaction<'_> {
    async fn begin(&mut self) -> Result<Tx<'_>, tokio_postgres::Error> {
        self.transaction().await.map(Tx::Pooled)
    }
}

impl Begin for Tx<'_> {
    async fn begin(&mut self) -> Result<Tx<'_>, tokio_postgres::Error> {
        match self {
            Tx::Plain(t) => t.transaction().await.map(Tx::Plain),
            Tx::Pooled(t) => t.transaction().await.map(Tx::Pooled),
        }
    }
}

/// The environment variable holding the connection string.
pub const DATABASE_URL: &str = "DATABASE_URL";

fn parse_url(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    url.parse().map_err(|e| StoreError::Config { var: DATABASE_URL, problem: ConfigProblem::Invalid(e) })
}

/// A connection pool for `url` (`postgres://user@host:port/db`; TLS as its
/// `sslmode` says, see [`crate::tls`]).
///
/// Build it once per process (a Lambda's cold start) and borrow it into
/// every invocation: connecting costs more than most queries. Connections are
/// made lazily, so this fails only on an unusable URL.
pub fn pool_from_url(url: &str, max_size: usize) -> Result<Pool, StoreError> {
    pool_from_config(parse_url(url)?, max_size)
}

/// What every connection of the store sets at its start (the `options`
/// startup parameter, before any the configuration already has, which win).
///
/// `plan_cache_mode = force_generic_plan`: a prepared statement is planned
/// once per connection, at its first run, and again only when PostgreSQL
/// invalidates the plan (an ANALYZE, or the pg_class update of an autovacuum,
/// of a table it reads). By default a connection plans each of a
/// statement's first five runs for its parameters and only then may settle
/// on one plan. The store's statements are lookups by a provider's id
/// whose generic plan is the custom plan, and planning the large ones (the
/// calendar read, the hold's write) costs several times running them. So a
/// Lambda instance that has served one request plans no more, instead of
/// paying for planning on its next four (the measurements are in
/// docs/performance.md).
const SESSION_OPTIONS: &str = "-c plan_cache_mode=force_generic_plan";

fn with_session_options(mut config: tokio_postgres::Config) -> tokio_postgres::Config {
    let options = match config.get_options() {
        Some(own) if !own.trim().is_empty() => format!("{SESSION_OPTIONS} {own}"),
        _ => SESSION_OPTIONS.to_owned(),
    };
    config.options(&options);
    config
}

/// A connection pool for an already-built configuration (e.g. from the
/// fields of a Secrets Manager secret, which need no URL escaping).
///
/// Its connections, like [`connect`]'s, plan each prepared statement once
/// (`plan_cache_mode = force_generic_plan`, unless the configuration's own
/// `options` say otherwise): PostgreSQL's default plans a statement's first
/// five runs each (see `SESSION_OPTIONS`).
pub fn pool_from_config(config: tokio_postgres::Config, max_size: usize) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        with_session_options(config),
        crate::tls::connector()?,
        // Fast recycling skips the test query on checkout: a dead connection
        // shows up as a query error, which callers handle anyway.
        ManagerConfig { recycling_method: RecyclingMethod::Fast },
    );
    Pool::builder(manager).max_size(max_size.max(1)).runtime(Runtime::Tokio1).build().map_err(StoreError::PoolBuild)
}

/// [`pool_from_url`] with the URL from `DATABASE_URL`.
pub fn pool_from_env(max_size: usize) -> Result<Pool, StoreError> {
    let url = std::env::var(DATABASE_URL)
        .map_err(|_| StoreError::Config { var: DATABASE_URL, problem: ConfigProblem::Missing })?;
    pool_from_url(&url, max_size)
}

/// One connection outside a pool (migrations, the CLI, tests). Its
/// connection task is spawned on the current Tokio runtime and ends when
/// the client is dropped.
pub async fn connect(url: &str) -> Result<Client, StoreError> {
    let (client, connection) = with_session_options(parse_url(url)?).connect(crate::tls::connector()?).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "database connection ended with an error");
        }
    });
    Ok(client)
}
