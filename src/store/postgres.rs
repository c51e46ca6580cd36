//! The PostgreSQL driver: a connection pool, server-side clock, and transitions with their
//! timeline event in one statement (a data-modifying CTE).

use std::ops::DerefMut;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, PgConnection, Row as _};
use uuid::Uuid;

use super::driver::{Applied, Cell, Column, Driver, Exec, Row, Transaction};
use super::row::JobRow;
use super::sql::{Arg, Dialect, Sql};
use super::{SqlStore, StoreError};
use crate::job::transition::EventRecord;

/// The embedded PostgreSQL migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Session settings of every connection. The server's TCP keepalives and user timeout
/// notice a client that vanished (a host gone, a network cut) in seconds rather than hours,
/// and a transaction left open by a stopped process ends instead of holding its locks.
const SESSION: &[(&str, &str)] = &[
    ("tcp_keepalives_idle", "5"),
    ("tcp_keepalives_interval", "2"),
    ("tcp_keepalives_count", "3"),
    ("tcp_user_timeout", "15000"),
    ("idle_in_transaction_session_timeout", "30s"),
];

/// A [`Driver`] on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgDriver {
    pool: PgPool,
}

/// The job store on PostgreSQL.
pub type PgStore = SqlStore<PgDriver>;

impl SqlStore<PgDriver> {
    /// Connects a pool of at most `max_connections` to `url`. Acquiring a connection waits at
    /// most `acquire_timeout`, so callers fail fast (the API answers 503) while the database
    /// is unreachable.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        acquire_timeout: Duration,
    ) -> Result<PgStore, StoreError> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e| StoreError::Config(format!("DATABASE_URL is not valid: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(acquire_timeout)
            .connect_with(
                options
                    .application_name("control-plane")
                    .options(SESSION.iter().copied()),
            )
            .await
            .map_err(classify)?;
        Ok(SqlStore::new(PgDriver { pool }))
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
        &self.driver().pool
    }

    /// Applies the embedded migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(self.pool())
            .await
            .map_err(|e| StoreError::Database(format!("migration failed: {e}")))
    }
}

/// Maps a sqlx error to "unavailable" (retry later) or a database error.
fn classify(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::Configuration(e) => {
            StoreError::Config(format!("DATABASE_URL is not valid: {e}"))
        }
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        // A connection cut while it is being set up reads garbage or EOF.
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(error.to_string()),
        sqlx::Error::Database(ref db)
            if db
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")) =>
        {
            StoreError::Unavailable(error.to_string())
        }
        other => StoreError::Database(other.to_string()),
    }
}

/// Binds a statement's arguments to a query, each as its PostgreSQL type.
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                Arg::Int(n) => query.bind(n),
                Arg::Text(text) => query.bind(text),
                Arg::OptText(text) => query.bind(text),
                Arg::Uuid(id) => query.bind(id),
                Arg::Json(value) => query.bind(value),
                Arg::OptJson(value) => query.bind(value),
                Arg::Time(at) => query.bind(at),
            };
        }
        query
    }};
}

fn decode(row: &PgRow, columns: &[Column]) -> Result<Row, StoreError> {
    columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            Ok(match column {
                Column::Int => Cell::Int(
                    row.try_get::<i64, _>(i)
                        .or_else(|_| row.try_get::<i32, _>(i).map(i64::from))
                        .map_err(classify)?,
                ),
                Column::Text => Cell::Text(row.try_get(i).map_err(classify)?),
                Column::OptText => Cell::OptText(row.try_get(i).map_err(classify)?),
                Column::Uuid => Cell::Uuid(row.try_get::<Uuid, _>(i).map_err(classify)?),
                Column::OptUuid => Cell::OptUuid(row.try_get(i).map_err(classify)?),
                Column::Json => Cell::Json(row.try_get::<Value, _>(i).map_err(classify)?),
                Column::Time => Cell::Time(row.try_get::<DateTime<Utc>, _>(i).map_err(classify)?),
                Column::OptTime => Cell::OptTime(row.try_get(i).map_err(classify)?),
            })
        })
        .collect()
}

/// A connection: one from the pool, or a transaction's.
struct PgExec<C>(C);

#[async_trait]
impl<C: DerefMut<Target = PgConnection> + Send> Exec for PgExec<C> {
    async fn execute(&mut self, sql: Sql) -> Result<u64, StoreError> {
        let text = sql.text().to_owned();
        bind_args!(sqlx::query(AssertSqlSafe(text)), sql.into_args())
            .execute(&mut *self.0)
            .await
            .map(|done| done.rows_affected())
            .map_err(classify)
    }

    async fn rows(&mut self, sql: Sql, columns: &[Column]) -> Result<Vec<Row>, StoreError> {
        let text = sql.text().to_owned();
        let rows = bind_args!(sqlx::query(AssertSqlSafe(text)), sql.into_args())
            .fetch_all(&mut *self.0)
            .await
            .map_err(classify)?;
        rows.iter().map(|row| decode(row, columns)).collect()
    }

    async fn jobs(&mut self, sql: Sql) -> Result<Vec<JobRow>, StoreError> {
        let text = sql.text().to_owned();
        bind_args!(
            sqlx::query_as::<_, JobRow>(AssertSqlSafe(text)),
            sql.into_args()
        )
        .fetch_all(&mut *self.0)
        .await
        .map_err(classify)
    }

    async fn apply(
        &mut self,
        mut change: Sql,
        event: Option<&EventRecord>,
        rows: bool,
    ) -> Result<Applied, StoreError> {
        let Some(event) = event else {
            if !rows {
                return self.execute(change).await.map(Applied::Count);
            }
            change.push(" RETURNING *");
            return self.jobs(change).await.map(Applied::Rows);
        };
        change
            .prepend("WITH changed AS (")
            .push(" RETURNING *), event AS (INSERT INTO job_events (job_id, kind, attempt, worker_id, detail) SELECT id, ")
            .bind(event.kind.as_str())
            .push(", attempt, worker_id, ")
            .bind(event.detail.clone())
            .push(" FROM changed) ");
        if rows {
            change.push("SELECT * FROM changed");
            return self.jobs(change).await.map(Applied::Rows);
        }
        change.push("SELECT count(*) FROM changed");
        let counted = self.rows(change, &[Column::Int]).await?;
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

#[async_trait]
impl Transaction for PgExec<sqlx::Transaction<'static, sqlx::Postgres>> {
    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.0.commit().await.map_err(classify)
    }
}

#[async_trait]
impl Driver for PgDriver {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(drop)
            .map_err(classify)
    }

    async fn writer(&self) -> Result<Box<dyn Exec>, StoreError> {
        let conn = self.pool.acquire().await.map_err(classify)?;
        Ok(Box::new(PgExec(conn)))
    }

    async fn reader(&self) -> Result<Box<dyn Exec>, StoreError> {
        self.writer().await
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>, StoreError> {
        let tx = self.pool.begin().await.map_err(classify)?;
        Ok(Box::new(PgExec(tx)))
    }
}
