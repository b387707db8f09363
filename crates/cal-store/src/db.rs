//! What the store's functions run on, and how connections are made.
//!
//! Functions that only read take `&impl Executor`; functions that write take
//! `&mut impl Begin` and open their own transaction on it — a real one on a
//! client, a savepoint inside a caller's transaction — so they are atomic on
//! their own and still compose into a larger transaction (a hold taking a
//! per-user advisory lock, then writing several rows).
//!
//! Both are implemented for `tokio_postgres` and `deadpool_postgres` clients
//! and transactions. [`Executor`] is a trait of our own (not
//! `GenericClient`, which is sealed) so a test can wrap it, e.g. to count the
//! statements a loader runs.

use std::future::Future;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Transaction};

use crate::error::{ConfigProblem, StoreError};

/// Runs statements: a client, a transaction or a pooled connection.
pub trait Executor: Sync {
    /// Runs a statement and returns its rows.
    fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send;

    /// Runs a statement and returns the number of rows it changed.
    fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, tokio_postgres::Error>> + Send;
}

/// Opens a transaction: on a client a new one, inside a transaction a
/// savepoint (committing it releases the savepoint; dropping it rolls back
/// to it).
pub trait Begin: Executor + Send {
    /// Starts the (sub-)transaction.
    fn begin(&mut self) -> impl Future<Output = Result<Transaction<'_>, tokio_postgres::Error>> + Send;
}

/// Every client and transaction type runs statements the same way: through
/// the tokio-postgres client or transaction it is or derefs to.
macro_rules! delegate_executor {
    ($($ty:ty => $inner:ident),+ $(,)?) => {$(
        impl Executor for $ty {
            fn query(
                &self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> impl Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send {
                $inner::query(self, sql, params)
            }

            fn execute(
                &self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> impl Future<Output = Result<u64, tokio_postgres::Error>> + Send {
                $inner::execute(self, sql, params)
            }
        }
    )+};
}

delegate_executor!(
    Client => Client,
    Transaction<'_> => Transaction,
    deadpool_postgres::Client => Client,
    deadpool_postgres::Transaction<'_> => Transaction,
);

impl Begin for Client {
    fn begin(&mut self) -> impl Future<Output = Result<Transaction<'_>, tokio_postgres::Error>> + Send {
        Client::transaction(self)
    }
}

impl Begin for Transaction<'_> {
    fn begin(&mut self) -> impl Future<Output = Result<Transaction<'_>, tokio_postgres::Error>> + Send {
        Transaction::transaction(self)
    }
}

impl Begin for deadpool_postgres::Client {
    fn begin(&mut self) -> impl Future<Output = Result<Transaction<'_>, tokio_postgres::Error>> + Send {
        Client::transaction(self)
    }
}

impl<'a> Begin for deadpool_postgres::Transaction<'a> {
    fn begin(&mut self) -> impl Future<Output = Result<Transaction<'_>, tokio_postgres::Error>> + Send {
        let inner: &mut Transaction<'a> = self;
        Transaction::transaction(inner)
    }
}

/// The environment variable holding the connection string.
pub const DATABASE_URL: &str = "DATABASE_URL";

fn parse_url(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    url.parse().map_err(|e| StoreError::Config { var: DATABASE_URL, problem: ConfigProblem::Invalid(e) })
}

/// A connection pool for `url` (`postgres://user@host:port/db`, no TLS).
///
/// Build it once per process (a Lambda's cold start) and borrow it into
/// every invocation: connecting costs more than most queries. Connections are
/// made lazily, so this fails only on an unusable URL.
pub fn pool_from_url(url: &str, max_size: usize) -> Result<Pool, StoreError> {
    pool_from_config(parse_url(url)?, max_size)
}

/// A connection pool for an already-built configuration (e.g. from the
/// fields of a Secrets Manager secret, which need no URL escaping).
pub fn pool_from_config(config: tokio_postgres::Config, max_size: usize) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        config,
        NoTls,
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
    let (client, connection) = parse_url(url)?.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "database connection ended with an error");
        }
    });
    Ok(client)
}
