//! All SQL lives under this module, a file per noun. Every tenant-owned function takes the
//! tenant first, and runs inside a transaction scoped to that tenant (which, on PostgreSQL,
//! also switches on the row-level-security policies for it).

pub mod alerts;
pub mod audit;
pub mod auth_attempts;
pub mod backlog;
pub(crate) mod bulk;
pub mod chargeback_months;
pub mod chat;
pub mod domains;
pub mod email_verifications;
pub mod employees;
pub mod guardrails;
pub mod imports;
pub mod jobs;
pub mod joiners;
pub mod lines;
pub mod mail;
pub mod moves;
pub mod notices;
pub mod offboarding_cases;
pub mod operations;
pub mod org;
pub mod plans;
pub mod policy;
pub mod provider_connections;
pub mod provider_routes;
mod query;
pub mod reports;
pub mod requests;
pub mod scim;
pub mod seen_ids;
pub mod sessions;
pub mod sso;
pub mod staged_usage;
pub mod tenants;
pub mod travel_esims;
pub mod usage;
pub mod user_tokens;
pub mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use crate::ids::TenantId;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DATABASE_URL {url:?} is not usable: {reason}")]
    Config { url: String, reason: String },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored {what} is corrupt: {reason}")]
    Corrupt { what: &'static str, reason: String },
    /// A statement written for several callers at once failed; each of them gets its error's
    /// text.
    #[error("{0}")]
    Shared(String),
}

impl StoreError {
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Self::Database(sqlx::Error::Database(e)) if e.is_unique_violation())
    }

    /// A write named a row that is not there, or is another tenant's: every reference
    /// between tenant-owned rows is a composite `(tenant_id, id)` foreign key.
    pub fn is_foreign_key_violation(&self) -> bool {
        matches!(self, Self::Database(sqlx::Error::Database(e)) if e.is_foreign_key_violation())
    }

    pub(crate) fn corrupt(what: &'static str, reason: impl ToString) -> Self {
        Self::Corrupt {
            what,
            reason: reason.to_string(),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A transaction on either backend. Commit explicitly; dropping it rolls back.
pub enum Tx {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Runs the same query code against whichever backend the transaction holds.
/// Queries use `$1`-style parameters, which both SQLite and PostgreSQL accept.
macro_rules! on_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite(tx) => {
                let $conn = &mut **tx;
                $body
            }
            $crate::store::Tx::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}
pub(crate) use on_tx;

/// [`on_tx!`] for a statement that is a transaction by itself, run on any pooled connection:
/// one round trip where `BEGIN`, the statement and `COMMIT` would be three.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite($pool) => $body,
            $crate::store::Store::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// How much of a SQLite database file connections map into memory (address space, not RAM).
const SQLITE_MMAP_BYTES: u64 = 1 << 30;

/// Most page cache a SQLite connection keeps, in KiB.
const SQLITE_CACHE_KIB: i64 = 64 * 1024;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/postgres");

impl Store {
    /// `sqlite://path/to/file.db` (created if missing), `sqlite::memory:` or `postgres://…`.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let config_error = |reason: String| StoreError::Config {
            url: redact_password(url),
            reason,
        };
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| config_error(e.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(30))
                .foreign_keys(true)
                // Readers map the file instead of copying every page they read through
                // `pread` into a private cache: report reads touch tens of megabytes.
                .pragma("mmap_size", SQLITE_MMAP_BYTES.to_string())
                // A usage rollup's pages fit, so they are not written to the log mid-transaction
                // and read back (SQLite's default is 2 MB). Pages are taken as needed: a
                // connection that only answers clicks stays small.
                .pragma("cache_size", (-SQLITE_CACHE_KIB).to_string())
                // Statement and savepoint journals in memory, not temporary files: each bulk
                // insert journals the pages it changes, about 40 % of ingest's writes
                // (issue 14).
                .pragma("temp_store", "memory");
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                // A SQLite connection is a file this process holds open, not a socket that can
                // die: the check on checkout was one more hand-off to sqlx's worker thread per
                // transaction, 3–7 % of a chat click's CPU at 2,000 clicks/s (issue 14).
                .test_before_acquire(false)
                .connect_with(options)
                .await
                .map_err(|e| config_error(e.to_string()))?;
            Ok(Self::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options =
                PgConnectOptions::from_str(url).map_err(|e| config_error(e.to_string()))?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(|e| config_error(e.to_string()))?;
            Ok(Self::Postgres(pool))
        } else {
            Err(config_error(
                "expected a sqlite: or postgres:// URL".to_owned(),
            ))
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        match self {
            Self::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await?,
            Self::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                let result = POSTGRES_MIGRATIONS.run(&mut *conn).await;
                if result.is_err() {
                    // sqlx's migrator keeps its advisory lock when a migration fails; ending
                    // the session frees it, instead of a pooled connection holding it until
                    // the pool closes (the next migrate would wait on it forever).
                    let _ = conn.close().await;
                }
                result?
            }
        }
        Ok(())
    }

    /// A transaction that may only see and write `tenant`'s rows.
    pub async fn tenant(&self, tenant: TenantId) -> StoreResult<Tx> {
        match self {
            Self::Sqlite(pool) => Ok(Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?)),
            Self::Postgres(pool) => begin_postgres(pool, &tenant_setting(tenant)).await,
        }
    }

    /// A transaction scoped to `tenant` for reads only (reports, lookups on a click). On SQLite it is deferred:
    /// readers see a snapshot beside the one writer (WAL) and run at once, where
    /// [`Store::tenant`]'s `BEGIN IMMEDIATE` would queue each for the write lock. A write in
    /// it may fail with "database is locked"; use [`Store::tenant`] for anything that writes.
    /// On PostgreSQL each statement is planned for its own filter values: a report's team,
    /// cost centre or manager's tree selects anything from five lines to the whole tenant,
    /// and a cached generic plan made for one is slow for the other.
    pub async fn tenant_read(&self, tenant: TenantId) -> StoreResult<Tx> {
        match self {
            Self::Sqlite(pool) => Ok(Tx::Sqlite(pool.begin().await?)),
            Self::Postgres(pool) => {
                let settings = format!(
                    "{}, set_config('plan_cache_mode', 'force_custom_plan', true)",
                    tenant_setting(tenant)
                );
                begin_postgres(pool, &settings).await
            }
        }
    }

    /// A transaction for work that spans tenants: resolving a host or chat workspace to its
    /// tenant, the background worker's queue, creating tenants. Never for serving a request
    /// on behalf of a tenant.
    pub async fn system(&self) -> StoreResult<Tx> {
        match self {
            Self::Sqlite(pool) => Ok(Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?)),
            Self::Postgres(pool) => {
                begin_postgres(pool, "set_config('app.system', 'on', true)").await
            }
        }
    }

    /// [`Store::system`] for look-ups only: which tenant a host or chat workspace belongs to,
    /// whose email this is. Every portal page and chat event starts with one, so on SQLite it
    /// is deferred and reads beside the writer instead of queueing for the write lock.
    pub async fn system_read(&self) -> StoreResult<Tx> {
        match self {
            Self::Sqlite(pool) => Ok(Tx::Sqlite(pool.begin().await?)),
            Self::Postgres(_) => self.system().await,
        }
    }

    /// Whether the database answers; for readiness probes.
    pub async fn ping(&self) -> StoreResult<()> {
        match self {
            Self::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ())?,
            Self::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ())?,
        };
        Ok(())
    }

    /// PostgreSQL roles that bypass row-level security make the second wall useless.
    pub async fn bypasses_row_security(&self) -> StoreResult<bool> {
        match self {
            Self::Sqlite(_) => Ok(false),
            Self::Postgres(pool) => Ok(sqlx::query_scalar(
                "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user",
            )
            .fetch_one(pool)
            .await?),
        }
    }

    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// A PostgreSQL transaction with its settings (`set_config` calls) in the same round trip as
/// its `BEGIN`: a simple query may hold several statements. `settings` is SQL this module
/// writes, never anyone's input.
async fn begin_postgres(pool: &PgPool, settings: &str) -> StoreResult<Tx> {
    Ok(Tx::Postgres(
        pool.begin_with(format!("BEGIN; SELECT {settings}")).await?,
    ))
}

/// Scopes a PostgreSQL transaction to `tenant` for the row-level-security policies. A tenant
/// id is a UUID, whose text is hex digits and dashes, so it is safe inside the literal.
fn tenant_setting(tenant: TenantId) -> String {
    format!(
        "set_config('app.tenant_id', '{}', true)",
        tenant.0.hyphenated()
    )
}

impl Tx {
    pub async fn commit(self) -> StoreResult<()> {
        match self {
            Self::Sqlite(tx) => tx.commit().await?,
            Self::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

/// `scheme://user:password@host` → `scheme://user:***@host`, even when the rest won't parse.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Timestamps at microsecond precision, what PostgreSQL keeps, so values round-trip exactly.
pub fn now() -> time::OffsetDateTime {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1000 * 1000)
        .expect("truncating nanoseconds stays in range")
}

/// `($1, $2, $3), ($4, $5, $6)` for `rows` rows of `columns` parameters.
pub(crate) fn values_placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| {
            let params: Vec<String> = (1..=columns)
                .map(|c| format!("${}", r * columns + c))
                .collect();
            format!("({})", params.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The claim shared by the outboxes (email, employee notices): the next due row of `table`
/// (queued and due, or left `sending` by a worker whose lease ran out) is marked `sending`
/// under a new lease (`$2`) with its attempt counted, as of `$1`, returning `columns`.
/// Several workers on PostgreSQL skip each other's claims; SQLite has one writer anyway.
fn outbox_claim_sql(tx: &Tx, table: &str, columns: &str) -> String {
    let lock = match tx {
        Tx::Sqlite(_) => "",
        Tx::Postgres(_) => " FOR UPDATE SKIP LOCKED",
    };
    format!(
        "UPDATE {table} SET state = 'sending', locked_until = $2, attempts = attempts + 1
         WHERE id = (SELECT id FROM {table}
             WHERE (state = 'queued' AND next_attempt_at <= $1)
                OR (state = 'sending' AND locked_until < $1)
             ORDER BY next_attempt_at LIMIT 1{lock})
         RETURNING {columns}"
    )
}

/// Puts an outbox row back in the queue until `$2`, with the reason it failed (`$3`).
fn outbox_retry_sql(table: &str) -> String {
    format!(
        "UPDATE {table} SET state = 'queued', next_attempt_at = $2, last_error = $3,
             locked_until = NULL
         WHERE tenant_id = $4 AND id = $1"
    )
}

/// Gives an outbox row up, with the reason (`$2`).
fn outbox_give_up_sql(table: &str) -> String {
    format!(
        "UPDATE {table} SET state = 'failed', last_error = $2, locked_until = NULL
         WHERE tenant_id = $3 AND id = $1"
    )
}
