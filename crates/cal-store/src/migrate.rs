//! The schema migrations of `migrations/`, embedded at build time and
//! applied in order.
//!
//! Each migration runs in its own transaction under a transaction-scoped
//! advisory lock, so concurrent runners (two Lambdas cold-starting at once,
//! a deploy and a test) apply each file exactly once. Applied migrations
//! are recorded in `public.cal_migrations` with a SHA-256 of their text;
//! a landed migration that was edited afterwards is an error, never
//! silently skipped.

use crate::db::{Begin, Executor};
use crate::error::StoreError;

/// One embedded migration file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// The number the file name starts with.
    pub version: i32,
    /// The file name without `.sql`, e.g. `0001_cal_schema`.
    pub name: &'static str,
    /// The SQL text.
    pub sql: &'static str,
}

macro_rules! migration {
    ($version:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations/", $name, ".sql")),
        }
    };
}

/// Every migration, in the order applied. A test checks that this lists
/// every file of `migrations/`.
pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_cal_schema"),
    migration!(2, "0002_holds_events"),
    migration!(3, "0003_external_ics"),
    migration!(4, "0004_outbox"),
    migration!(5, "0005_outbox_parking"),
    migration!(6, "0006_customer_hold_limit"),
    migration!(7, "0007_calendar_sync"),
    migration!(8, "0008_booking_policy"),
];

/// Key of the advisory lock serializing migration runs ("cal_mig").
const LOCK_KEY: i64 = 0x0063_616c_5f6d_6967;

/// The bookkeeping table lives outside `cal` so that creating `cal` is
/// itself a migration.
const CREATE_TABLE: &str = "create table if not exists public.cal_migrations (
    version int primary key,
    name text not null,
    checksum text not null,
    applied_at timestamptz not null default now()
)";

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions applied by this run, in order.
    pub applied: Vec<i32>,
    /// Versions found already applied (checksums verified).
    pub already_applied: Vec<i32>,
}

/// Applies every pending migration of [`MIGRATIONS`]; idempotent.
pub async fn migrate(db: &mut impl Begin) -> Result<MigrationReport, StoreError> {
    let mut report = MigrationReport::default();
    for m in MIGRATIONS {
        let tx = db.begin().await?;
        tx.execute("select pg_advisory_xact_lock($1)", &[&LOCK_KEY]).await?;
        tx.batch_execute(CREATE_TABLE).await?;
        // The checksum is computed by the server: one SHA-256 implementation,
        // and no hashing crate in the build.
        let rows = tx
            .query(
                "select encode(sha256(convert_to($2::text, 'UTF8')), 'hex'),
                        (select checksum from public.cal_migrations where version = $1)",
                &[&m.version, &m.sql],
            )
            .await?;
        let row = &rows[0];
        let embedded: String = row.get(0);
        match row.get::<_, Option<String>>(1) {
            Some(recorded) if recorded == embedded => report.already_applied.push(m.version),
            Some(recorded) => {
                return Err(StoreError::MigrationChanged { version: m.version, name: m.name, recorded, embedded });
            }
            None => {
                tx.batch_execute(m.sql).await?;
                tx.execute(
                    "insert into public.cal_migrations (version, name, checksum) values ($1, $2, $3)",
                    &[&m.version, &m.name, &embedded],
                )
                .await?;
                tracing::info!(version = m.version, name = m.name, "migration applied");
                report.applied.push(m.version);
            }
        }
        tx.commit().await?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_migrations_is_embedded_in_order() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .expect("migrations/ exists")
            .map(|e| e.expect("readable entry").file_name().into_string().expect("UTF-8 file name"))
            .collect();
        files.sort();
        let sql: Vec<&String> = files.iter().filter(|f| f.ends_with(".sql")).collect();
        assert_eq!(sql.len(), files.len(), "only .sql files belong in migrations/: {files:?}");
        let embedded: Vec<String> = MIGRATIONS.iter().map(|m| format!("{}.sql", m.name)).collect();
        assert_eq!(sql, embedded.iter().collect::<Vec<_>>(), "MIGRATIONS must list every file of migrations/");
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1, "versions are 1, 2, 3, ... without gaps");
            let prefix: i32 = m.name[..4].parse().expect("file names start with a 4-digit number");
            assert_eq!(prefix, m.version, "{} has version {}", m.name, m.version);
            let code: String = m.sql.lines().filter(|l| !l.trim_start().starts_with("--")).collect();
            assert!(!code.to_lowercase().contains("concurrently"), "{}: migrations run inside a transaction", m.name);
        }
    }
}
