//! The SQLite driver for the embedded mode: one writer connection, several readers, WAL.
//!
//! Every write goes through a single connection, so in-process writers queue instead of
//! failing with `database is locked`; readers use their own connections and never block the
//! writer (WAL). A transition and its timeline event commit in one transaction.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{FromRow, Row as _, SqliteConnection};
use uuid::Uuid;

use super::driver::{Applied, Cells, Column, Exec};
use super::row::{JobRow, corrupt};
use super::sql::{Dialect, Sql};
use super::sqlx_driver::{Conn, Flavor, SqlxDriver};
use super::{SqlStore, StoreError};
use crate::job::transition::EventRecord;
use crate::persist::Cause;

/// The embedded SQLite migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "control-plane.db";

/// Reader connections.
const READERS: u32 = 4;

/// The SQLite driver: the one writer connection and read-only readers.
pub type SqliteDriver = SqlxDriver<sqlx::Sqlite>;

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
            StoreError::Config(format!("cannot create DATA_DIR {}: {e}", data_dir.display()).into())
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
            .map_err(|e| StoreError::Database(Cause::of("migration failed", e)))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.read_only(true))
            .await
            .map_err(classify)?;
        Ok(SqlStore::new(SqlxDriver {
            queries: Default::default(),
            leader: writer.clone(),
            writer,
            reader,
            file: Some(path),
        }))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        self.driver()
            .file
            .as_deref()
            .unwrap_or_else(|| Path::new(DATABASE_FILE))
    }
}

fn classify(error: sqlx::Error) -> StoreError {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(Cause::of("", error))
        }
        sqlx::Error::Configuration(_) => StoreError::Config(Cause::of("", error)),
        other => StoreError::Database(Cause::of("", other)),
    }
}

fn time(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {ms}").into()))
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
    callback_url: Option<String>,
    hook_attempt: i32,
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
            callback_url: row.callback_url,
            hook_attempt: row.hook_attempt,
        })
    }
}

impl Flavor for sqlx::Sqlite {
    const DIALECT: Dialect = Dialect::Sqlite;
    // The write lock is taken up front, so a transaction never has to upgrade to it.
    const BEGIN: &'static str = "BEGIN IMMEDIATE";

    fn begin_within(_ms: u64) -> String {
        // One writer connection: a statement never waits for another's lock.
        Self::BEGIN.to_owned()
    }
    const APPLY_IN_TRANSACTION: bool = true;
    type Time = i64;

    fn store_time(at: DateTime<Utc>) -> i64 {
        at.timestamp_millis()
    }

    fn read_time(ms: i64) -> Result<DateTime<Utc>, StoreError> {
        time(ms)
    }

    fn int(row: &SqliteRow, index: usize) -> Result<i64, sqlx::Error> {
        row.try_get(index)
    }

    fn job(row: &SqliteRow) -> Result<JobRow, StoreError> {
        SqliteJobRow::from_row(row)
            .map_err(classify)
            .and_then(JobRow::try_from)
    }

    fn classify(error: sqlx::Error) -> StoreError {
        classify(error)
    }

    fn affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }

    /// Inside the caller's transaction: the change returning its rows (or only what the
    /// events need), then one event each.
    async fn apply(
        conn: &mut SqliteConnection,
        mut change: Sql,
        event: Option<&EventRecord>,
        want_rows: bool,
    ) -> Result<Applied, StoreError> {
        let mut exec = Conn::<sqlx::Sqlite, _>::new(conn, true);
        if want_rows {
            change.push(" RETURNING *");
            let changed = exec.jobs(change).await?;
            for row in &changed {
                if let Some(event) = event {
                    exec.execute(event_insert(row.id, row.attempt, &row.worker_id, event))
                        .await?;
                }
            }
            return Ok(Applied::Rows(changed));
        }
        change.push(" RETURNING id, attempt, worker_id");
        let changed = exec
            .rows(change, &[Column::Uuid, Column::Int, Column::OptText])
            .await?;
        let count = changed.len() as u64;
        if let Some(event) = event {
            for row in changed {
                let mut cells = Cells::of(row);
                let (id, attempt, worker) = (cells.uuid()?, cells.int()?, cells.opt_text()?);
                exec.execute(event_insert(id, attempt, &worker, event))
                    .await?;
            }
        }
        Ok(Applied::Count(count))
    }
}

/// The timeline entry of `event` for a changed row.
fn event_insert(
    id: Uuid,
    attempt: impl Into<i64>,
    worker: &Option<String>,
    event: &EventRecord,
) -> Sql {
    let mut insert = Sql::new(Dialect::Sqlite);
    insert
        .push("INSERT INTO job_events (job_id, at, kind, attempt, worker_id, detail) VALUES (")
        .bind(id)
        .push(", ")
        .now()
        .push(", ")
        .bind(event.kind.as_str())
        .push(", ")
        .bind(attempt.into())
        .push(", ")
        .bind(worker.clone())
        .push(", ")
        .bind(event.detail.clone())
        .push(")");
    insert
}
