//! The PostgreSQL driver: a connection pool, server-side clock, and transitions with their
//! timeline event in one statement (a data-modifying CTE).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgQueryResult, PgRow};
use sqlx::{FromRow, PgConnection, Row as _};

use super::driver::{Applied, Cell, Column, Exec};
use super::row::JobRow;
use super::sql::{Dialect, Sql};
use super::sqlx_driver::{Conn, Flavor, SqlxDriver};
use super::{SqlStore, StoreError};
use crate::job::transition::EventRecord;
use crate::persist::Cause;

/// Connections a pool keeps open even when idle.
const WARM_CONNECTIONS: u32 = 4;

/// The embedded PostgreSQL migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Session settings of every connection. The server's TCP keepalives and user timeout
/// notice a client that vanished (a host gone, a network cut) in seconds rather than hours,
/// and a transaction left open by a stopped process ends instead of holding its locks.
///
/// Every statement is planned for the table as it is when it runs (`force_custom_plan`):
/// a prepared statement's cached generic plan is made once, from the statistics of that
/// moment, and on a table that grew since (every new deployment starts empty; a burst
/// outruns autovacuum's analyze) it keeps scanning the whole table for a batch of a few
/// dozen rows: measured in the e2e benchmark, claims scanning ~8,000 rows each. A plan
/// costs the server tens of microseconds per statement, shared by the rows of a batch.
const SESSION: &[(&str, &str)] = &[
    ("tcp_keepalives_idle", "5"),
    ("tcp_keepalives_interval", "2"),
    ("tcp_keepalives_count", "3"),
    ("tcp_user_timeout", "15000"),
    ("idle_in_transaction_session_timeout", "30s"),
    ("plan_cache_mode", "force_custom_plan"),
];

/// How the scheduler leader's connections are named in `pg_stat_activity`.
pub const LEADER_APPLICATION: &str = "control-plane scheduler";

/// The PostgreSQL driver: one pool for reads and writes, one for the scheduler's leader.
pub type PgDriver = SqlxDriver<sqlx::Postgres>;

/// The job store on PostgreSQL.
pub type PgStore = SqlStore<PgDriver>;

/// How a process connects to PostgreSQL.
#[derive(Debug, Clone, Copy)]
pub struct PgPools {
    /// Connections of the main pool at most.
    pub max_connections: u32,
    /// How long acquiring a connection may wait before the caller gets "unavailable".
    pub acquire_timeout: Duration,
    /// How long a statement of the scheduler's leader may run before the database ends it:
    /// shorter than the leadership's lease, so a leader that lost its term leaves nothing
    /// running behind it.
    pub leader_statement_timeout: Duration,
}

impl PgPools {
    /// `max_connections` waiting at most `acquire_timeout`; the leader's statements end
    /// within half the default leadership lease.
    pub fn new(max_connections: u32, acquire_timeout: Duration) -> PgPools {
        PgPools {
            max_connections,
            acquire_timeout,
            leader_statement_timeout: Duration::from_millis(2_500),
        }
    }
}

/// Connections of the leader's pool: the scheduler's statements and its leadership renewals
/// (and, in a process running several schedulers, as the tests do, their bids).
const LEADER_CONNECTIONS: u32 = 3;

impl SqlStore<PgDriver> {
    /// Connects to `url`: a main pool, and a small pool of the scheduler's leader whose
    /// statements time out (named `control-plane scheduler` in `pg_stat_activity`).
    /// Acquiring a connection waits at most `acquire_timeout`, so callers fail fast (the API
    /// answers 503) while the database is unreachable.
    pub async fn connect(url: &str, pools: PgPools) -> Result<PgStore, StoreError> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e| StoreError::Config(Cause::of("DATABASE_URL is not valid", e)))?;
        let nodelay = nodelay_hook(database_peers(&options).await);
        let pool = PgPoolOptions::new()
            .max_connections(pools.max_connections)
            // Connections kept open while idle, so the first burst after a start or a quiet
            // spell does not wait for TCP, TLS and authentication.
            .min_connections(pools.max_connections.min(WARM_CONNECTIONS))
            .acquire_timeout(pools.acquire_timeout)
            .after_connect(nodelay.clone())
            .connect_with(
                options
                    .clone()
                    .application_name("control-plane")
                    .options(SESSION.iter().copied()),
            )
            .await
            .map_err(classify)?;
        let timeout = pools
            .leader_statement_timeout
            .as_millis()
            .max(1)
            .to_string();
        let leader = PgPoolOptions::new()
            .max_connections(LEADER_CONNECTIONS)
            .min_connections(0)
            .acquire_timeout(pools.acquire_timeout)
            .after_connect(nodelay)
            .connect_lazy_with(
                options
                    .application_name(LEADER_APPLICATION)
                    .options(SESSION.iter().copied())
                    .options([("statement_timeout", timeout.as_str())]),
            );
        Ok(SqlStore::new(SqlxDriver {
            queries: Default::default(),
            writer: pool.clone(),
            reader: pool,
            leader,
            file: None,
        }))
    }

    /// Whether every embedded migration has been applied to the database.
    pub async fn is_migrated(&self) -> Result<bool, StoreError> {
        let Some(latest) = MIGRATOR.iter().map(|m| m.version).max() else {
            return Ok(true);
        };
        let applied = sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM _sqlx_migrations WHERE version = $1 AND success)",
        )
        .bind(latest)
        .fetch_one(self.pool())
        .await;
        match applied {
            Ok(applied) => Ok(applied),
            // No migrations table yet.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => Ok(false),
            Err(e) => Err(classify(e)),
        }
    }

    /// Whether the server runs autovacuum: retention's deletes leave dead rows that only a
    /// vacuum makes reusable, so without it `jobs` and `job_events` grow however much is
    /// deleted (the per-table settings of the migrations apply only when it is on).
    pub async fn autovacuum_on(&self) -> Result<bool, StoreError> {
        let setting: String = sqlx::query_scalar("SELECT current_setting('autovacuum')")
            .fetch_one(self.pool())
            .await
            .map_err(classify)?;
        Ok(setting == "on")
    }

    /// Creates the database `url` names when it does not exist yet; `true` when it created it.
    pub async fn create_database_if_missing(url: &str) -> Result<bool, StoreError> {
        use sqlx::migrate::MigrateDatabase;
        if sqlx::Postgres::database_exists(url)
            .await
            .map_err(classify)?
        {
            return Ok(false);
        }
        match sqlx::Postgres::create_database(url).await {
            Ok(()) => Ok(true),
            // Another process created it first.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => Ok(false),
            Err(e) => Err(classify(e)),
        }
    }

    /// The connection pool (for migrations and tests).
    pub fn pool(&self) -> &PgPool {
        &self.driver().writer
    }

    /// Applies the embedded migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(self.pool())
            .await
            .map_err(|e| StoreError::Database(Cause::of("migration failed", e)))
    }
}

/// The addresses of the database's host, whose connections get `TCP_NODELAY` (none for a
/// Unix socket, or when the name does not resolve now: then connections keep the default).
async fn database_peers(options: &PgConnectOptions) -> std::sync::Arc<Vec<std::net::SocketAddr>> {
    if options.get_socket().is_some() {
        return Default::default();
    }
    let host = options.get_host().trim_matches(['[', ']']);
    let peers = tokio::net::lookup_host((host, options.get_port()))
        .await
        .map(|addresses| addresses.collect())
        .unwrap_or_default();
    std::sync::Arc::new(peers)
}

/// What a pool runs on each new connection: `TCP_NODELAY` on it (see [`super::nodelay`]).
fn nodelay_hook(
    peers: std::sync::Arc<Vec<std::net::SocketAddr>>,
) -> impl for<'c> Fn(
    &'c mut sqlx::PgConnection,
    sqlx::pool::PoolConnectionMetadata,
) -> futures::future::BoxFuture<'c, Result<(), sqlx::Error>>
+ Clone
+ Send
+ Sync
+ 'static {
    move |_, _| {
        let peers = peers.clone();
        Box::pin(async move {
            super::nodelay::towards(&peers);
            Ok(())
        })
    }
}

/// Maps a sqlx error to "unavailable" (retry later) or a database error.
fn classify(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::Configuration(_) => {
            StoreError::Config(Cause::of("DATABASE_URL is not valid", error))
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        // A connection cut while it is being set up reads garbage or EOF.
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(Cause::of("", error)),
        sqlx::Error::Database(ref db)
            if db
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")) =>
        {
            StoreError::Unavailable(Cause::of("", error))
        }
        // query_canceled: the statement ran out of its statement_timeout (a write's deadline,
        // a scheduler statement's share of the lease); the database rolled it back.
        sqlx::Error::Database(ref db) if db.code().as_deref() == Some("57014") => {
            StoreError::TimedOut(Cause::of(
                "the statement did not finish in time: the database rolled it back (nothing it would have written was stored)",
                error,
            ))
        }
        other => StoreError::Database(Cause::of("", other)),
    }
}

impl Flavor for sqlx::Postgres {
    const DIALECT: Dialect = Dialect::Postgres;
    const BEGIN: &'static str = "BEGIN";

    fn begin_within(ms: u64) -> String {
        // One round trip: the simple protocol runs both.
        format!("BEGIN; SET LOCAL statement_timeout = {ms}")
    }
    const APPLY_IN_TRANSACTION: bool = false;
    type Time = DateTime<Utc>;

    fn store_time(at: DateTime<Utc>) -> DateTime<Utc> {
        at
    }

    fn read_time(stored: DateTime<Utc>) -> Result<DateTime<Utc>, StoreError> {
        Ok(stored)
    }

    fn int(row: &PgRow, index: usize) -> Result<i64, sqlx::Error> {
        row.try_get::<i64, _>(index)
            .or_else(|_| row.try_get::<i32, _>(index).map(i64::from))
    }

    fn job(row: &PgRow) -> Result<JobRow, StoreError> {
        JobRow::from_row(row).map_err(classify)
    }

    fn classify(error: sqlx::Error) -> StoreError {
        classify(error)
    }

    fn affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }

    /// One statement: the change in a CTE, its events inserted from the changed rows.
    async fn apply(
        conn: &mut PgConnection,
        mut change: Sql,
        event: Option<&EventRecord>,
        rows: bool,
    ) -> Result<Applied, StoreError> {
        let mut exec = Conn::<sqlx::Postgres, _>::new(conn, true);
        let Some(event) = event else {
            if !rows {
                return exec.execute(change).await.map(Applied::Count);
            }
            change.push(" RETURNING *");
            return exec.jobs(change).await.map(Applied::Rows);
        };
        // A count needs only what the events are made of.
        let returning = if rows {
            " RETURNING *"
        } else {
            " RETURNING id, attempt, worker_id"
        };
        change
            .prepend("WITH changed AS (")
            .push(returning)
            .push("), event AS (INSERT INTO job_events (job_id, kind, attempt, worker_id, detail) SELECT id, ")
            .bind(event.kind.as_str())
            .push(", attempt, worker_id, ")
            .bind(event.detail.clone())
            .push(" FROM changed) ");
        if rows {
            change.push("SELECT * FROM changed");
            return exec.jobs(change).await.map(Applied::Rows);
        }
        change.push("SELECT count(*) FROM changed");
        let counted = exec.rows(change, &[Column::Int]).await?;
        let count = match counted
            .into_iter()
            .next()
            .and_then(|row| row.into_iter().next())
        {
            Some(Cell::Int(n)) => u64::try_from(n).unwrap_or(0),
            _ => 0,
        };
        Ok(Applied::Count(count))
    }
}
