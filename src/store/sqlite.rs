//! The SQLite driver for the embedded mode: one writer connection, several readers, WAL.
//!
//! Every write goes through a single connection, so in-process writers queue instead of
//! failing with `database is locked`; readers use their own connections and never block the
//! writer (WAL). A transition and its timeline event commit in one transaction.

use std::ops::DerefMut;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Connection, FromRow, Row as _, SqliteConnection};
use uuid::Uuid;

use super::driver::{Applied, Cell, Column, Driver, Exec, Row, Transaction};
use super::row::{JobRow, corrupt};
use super::sql::{Arg, Dialect, Sql};
use super::{SqlStore, StoreError};
use crate::job::transition::EventRecord;

/// The embedded SQLite migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "control-plane.db";

/// Reader connections.
const READERS: u32 = 4;

/// A [`Driver`] on a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteDriver {
    writer: SqlitePool,
    reader: SqlitePool,
    path: PathBuf,
}

/// The job store on SQLite.
pub type SqliteStore = SqlStore<SqliteDriver>;

impl SqlStore<SqliteDriver> {
    /// Opens (creating if missing) `control-plane.db` in `data_dir` and applies the migrations.
    pub async fn open(data_dir: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with_writers(data_dir, 1).await
    }

    /// Like [`SqliteStore::open`] with `writers` write connections instead of one, relying on
    /// SQLite's busy timeout between them. For measurement: the benchmark compares it with the
    /// single writer that [`SqliteStore::open`] uses.
    #[doc(hidden)]
    pub async fn open_with_writers(
        data_dir: &Path,
        writers: u32,
    ) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Config(format!(
                "cannot create DATA_DIR {}: {e}",
                data_dir.display()
            ))
        })?;
        let path = data_dir.join(DATABASE_FILE);
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(classify)?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // With WAL, NORMAL survives a killed process; only an OS crash can lose the
            // last commits.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(writers.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await
            .map_err(classify)?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| StoreError::Database(format!("migration failed: {e}")))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.read_only(true))
            .await
            .map_err(classify)?;
        Ok(SqlStore::new(SqliteDriver {
            writer,
            reader,
            path,
        }))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.driver().path
    }
}

fn classify(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(error.to_string())
        }
        sqlx::Error::Configuration(e) => StoreError::Config(e.to_string()),
        other => StoreError::Database(other.to_string()),
    }
}

fn time(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {ms}")))
}

/// Binds a statement's arguments, each as its SQLite type (times as Unix milliseconds).
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
                Arg::Time(at) => query.bind(at.timestamp_millis()),
            };
        }
        query
    }};
}

fn decode(row: &SqliteRow, columns: &[Column]) -> Result<Row, StoreError> {
    columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            Ok(match column {
                Column::Int => Cell::Int(row.try_get(i).map_err(classify)?),
                Column::Text => Cell::Text(row.try_get(i).map_err(classify)?),
                Column::OptText => Cell::OptText(row.try_get(i).map_err(classify)?),
                Column::Uuid => Cell::Uuid(row.try_get::<Uuid, _>(i).map_err(classify)?),
                Column::OptUuid => Cell::OptUuid(row.try_get(i).map_err(classify)?),
                Column::Json => Cell::Json(row.try_get::<Value, _>(i).map_err(classify)?),
                Column::Time => Cell::Time(time(row.try_get(i).map_err(classify)?)?),
                Column::OptTime => Cell::OptTime(
                    row.try_get::<Option<i64>, _>(i)
                        .map_err(classify)?
                        .map(time)
                        .transpose()?,
                ),
            })
        })
        .collect()
}

/// A `jobs` row as SQLite stores it: times in milliseconds.
#[derive(FromRow)]
struct SqliteJobRow {
    id: Uuid,
    tenant_id: String,
    domain: String,
    url: String,
    job_type: String,
    strategy: String,
    priority: i32,
    payload: Value,
    max_attempts: i32,
    timeout_ms: i32,
    state: String,
    attempt: i32,
    run_at: i64,
    lease_until: Option<i64>,
    worker_id: Option<String>,
    result: Option<Value>,
    error: Option<Value>,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    updated_at: i64,
    doorbell: String,
}

impl TryFrom<SqliteJobRow> for JobRow {
    type Error = StoreError;

    fn try_from(row: SqliteJobRow) -> Result<JobRow, StoreError> {
        let id = row.id;
        let at = |ms: i64| time(ms).map_err(|e| corrupt(id, e));
        let maybe = |ms: Option<i64>| ms.map(at).transpose();
        Ok(JobRow {
            id,
            tenant_id: row.tenant_id,
            domain: row.domain,
            url: row.url,
            job_type: row.job_type,
            strategy: row.strategy,
            priority: row.priority,
            payload: row.payload,
            max_attempts: row.max_attempts,
            timeout_ms: row.timeout_ms,
            state: row.state,
            attempt: row.attempt,
            run_at: at(row.run_at)?,
            lease_until: maybe(row.lease_until)?,
            worker_id: row.worker_id,
            result: row.result,
            error: row.error,
            created_at: at(row.created_at)?,
            started_at: maybe(row.started_at)?,
            finished_at: maybe(row.finished_at)?,
            updated_at: at(row.updated_at)?,
            doorbell: row.doorbell,
        })
    }
}

async fn execute(conn: &mut SqliteConnection, sql: Sql) -> Result<u64, StoreError> {
    let text = sql.text().to_owned();
    bind_args!(sqlx::query(AssertSqlSafe(text)), sql.into_args())
        .execute(conn)
        .await
        .map(|done| done.rows_affected())
        .map_err(classify)
}

async fn rows(
    conn: &mut SqliteConnection,
    sql: Sql,
    columns: &[Column],
) -> Result<Vec<Row>, StoreError> {
    let text = sql.text().to_owned();
    let rows = bind_args!(sqlx::query(AssertSqlSafe(text)), sql.into_args())
        .fetch_all(conn)
        .await
        .map_err(classify)?;
    rows.iter().map(|row| decode(row, columns)).collect()
}

async fn jobs(conn: &mut SqliteConnection, sql: Sql) -> Result<Vec<JobRow>, StoreError> {
    let text = sql.text().to_owned();
    let rows = bind_args!(
        sqlx::query_as::<_, SqliteJobRow>(AssertSqlSafe(text)),
        sql.into_args()
    )
    .fetch_all(conn)
    .await
    .map_err(classify)?;
    rows.into_iter().map(JobRow::try_from).collect()
}

/// Applies `change` and appends `event` for each changed row, inside the caller's
/// transaction.
async fn apply_in(
    conn: &mut SqliteConnection,
    mut change: Sql,
    event: Option<&EventRecord>,
    want_rows: bool,
) -> Result<Applied, StoreError> {
    change.push(" RETURNING *");
    let changed = jobs(&mut *conn, change).await?;
    if let Some(event) = event {
        for row in &changed {
            let mut insert = Sql::new(Dialect::Sqlite);
            insert
                .push("INSERT INTO job_events (job_id, at, kind, attempt, worker_id, detail) VALUES (")
                .bind(row.id)
                .push(", ")
                .now()
                .push(", ")
                .bind(event.kind.as_str())
                .push(", ")
                .bind(i64::from(row.attempt))
                .push(", ")
                .bind(row.worker_id.clone())
                .push(", ")
                .bind(event.detail.clone())
                .push(")");
            execute(&mut *conn, insert).await?;
        }
    }
    Ok(if want_rows {
        Applied::Rows(changed)
    } else {
        Applied::Count(changed.len() as u64)
    })
}

/// A connection of one of the pools.
struct SqliteExec(sqlx::pool::PoolConnection<sqlx::Sqlite>);

/// A write transaction on the writer connection.
struct SqliteTx(sqlx::Transaction<'static, sqlx::Sqlite>);

#[async_trait]
impl Exec for SqliteExec {
    async fn execute(&mut self, sql: Sql) -> Result<u64, StoreError> {
        execute(&mut self.0, sql).await
    }

    async fn rows(&mut self, sql: Sql, columns: &[Column]) -> Result<Vec<Row>, StoreError> {
        rows(&mut self.0, sql, columns).await
    }

    async fn jobs(&mut self, sql: Sql) -> Result<Vec<JobRow>, StoreError> {
        jobs(&mut self.0, sql).await
    }

    async fn apply(
        &mut self,
        change: Sql,
        event: Option<&EventRecord>,
        rows: bool,
    ) -> Result<Applied, StoreError> {
        // The write lock is taken up front, so the transaction never has to upgrade to it.
        let mut tx = Connection::begin_with(self.0.deref_mut(), "BEGIN IMMEDIATE")
            .await
            .map_err(classify)?;
        let applied = apply_in(&mut tx, change, event, rows).await?;
        tx.commit().await.map_err(classify)?;
        Ok(applied)
    }
}

#[async_trait]
impl Exec for SqliteTx {
    async fn execute(&mut self, sql: Sql) -> Result<u64, StoreError> {
        execute(&mut self.0, sql).await
    }

    async fn rows(&mut self, sql: Sql, columns: &[Column]) -> Result<Vec<Row>, StoreError> {
        rows(&mut self.0, sql, columns).await
    }

    async fn jobs(&mut self, sql: Sql) -> Result<Vec<JobRow>, StoreError> {
        jobs(&mut self.0, sql).await
    }

    async fn apply(
        &mut self,
        change: Sql,
        event: Option<&EventRecord>,
        rows: bool,
    ) -> Result<Applied, StoreError> {
        apply_in(&mut self.0, change, event, rows).await
    }
}

#[async_trait]
impl Transaction for SqliteTx {
    async fn commit(self: Box<Self>) -> Result<(), StoreError> {
        self.0.commit().await.map_err(classify)
    }
}

#[async_trait]
impl Driver for SqliteDriver {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map(drop)
            .map_err(classify)
    }

    async fn writer(&self) -> Result<Box<dyn Exec>, StoreError> {
        let conn = self.writer.acquire().await.map_err(classify)?;
        Ok(Box::new(SqliteExec(conn)))
    }

    async fn reader(&self) -> Result<Box<dyn Exec>, StoreError> {
        let conn = self.reader.acquire().await.map_err(classify)?;
        Ok(Box::new(SqliteExec(conn)))
    }

    async fn begin(&self) -> Result<Box<dyn Transaction>, StoreError> {
        let tx = self
            .writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(classify)?;
        Ok(Box::new(SqliteTx(tx)))
    }
}
