//! SQLite job store for the embedded mode: one writer connection, several readers, WAL.
//!
//! Every write goes through a single connection, so in-process writers queue instead of
//! failing with `database is locked`; readers use their own connections and never block the
//! writer (WAL). Each transition and its timeline event commit in one transaction.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{FromRow, QueryBuilder, Sqlite, Transaction};
use uuid::Uuid;

use super::row::{
    JobRow, SettlementRecord, corrupt, count, lease_expired_error, list_sql, millis, priority_of,
};
use super::{
    ArtifactRecord, CancelOutcome, IDEMPOTENCY_TTL, IdempotencyKey, Idempotent, JobStats, JobStore,
    Leadership, ListQuery, RetryChange, RetryOutcome, Settlement, SoleLeader, StoreError,
};
use crate::job::{Job, JobEvent, JobSpec, JobState, RunningJob};
use crate::queue::Doorbell;

/// The embedded SQLite migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "control-plane.db";

/// Reader connections.
const READERS: u32 = 4;

/// A [`JobStore`] on a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    path: PathBuf,
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

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn time(id: Uuid, ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| corrupt(id, format!("timestamp {ms}")))
}

fn optional_time(id: Uuid, ms: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    ms.map(|ms| time(id, ms)).transpose()
}

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
}

impl SqliteJobRow {
    fn into_job(self) -> Result<Job, StoreError> {
        let id = self.id;
        JobRow {
            id,
            tenant_id: self.tenant_id,
            domain: self.domain,
            url: self.url,
            job_type: self.job_type,
            strategy: self.strategy,
            priority: self.priority,
            payload: self.payload,
            max_attempts: self.max_attempts,
            timeout_ms: self.timeout_ms,
            state: self.state,
            attempt: self.attempt,
            run_at: time(id, self.run_at)?,
            lease_until: optional_time(id, self.lease_until)?,
            worker_id: self.worker_id,
            result: self.result,
            error: self.error,
            created_at: time(id, self.created_at)?,
            started_at: optional_time(id, self.started_at)?,
            finished_at: optional_time(id, self.finished_at)?,
            updated_at: time(id, self.updated_at)?,
        }
        .try_into()
    }
}

#[derive(FromRow)]
struct EventRow {
    id: i64,
    job_id: Uuid,
    at: i64,
    kind: String,
    attempt: i32,
    worker_id: Option<String>,
    detail: Value,
}

async fn insert_event(
    tx: &mut Transaction<'_, Sqlite>,
    job_id: Uuid,
    at: i64,
    kind: &str,
    attempt: i32,
    worker_id: Option<&str>,
    detail: &Value,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO job_events (job_id, at, kind, attempt, worker_id, detail)
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(job_id)
    .bind(at)
    .bind(kind)
    .bind(attempt)
    .bind(worker_id)
    .bind(detail)
    .execute(&mut **tx)
    .await
    .map(drop)
    .map_err(classify)
}

impl SqliteStore {
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
        Ok(SqliteStore {
            writer,
            reader,
            path,
        })
    }

    /// Starts a write transaction holding the write lock from its first statement, so that
    /// writers wait for each other (busy timeout) instead of failing on a lock upgrade.
    async fn begin_write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(classify)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Recovers from a previous process that stopped without settling its jobs: every running
    /// job goes back to the queue (or fails when its attempts are used up), and every queued job
    /// is marked to be rung again. Only safe while no other process uses the file.
    pub async fn recover_after_restart(&self) -> Result<(u64, u64), StoreError> {
        let mut requeued = 0;
        loop {
            let n = self.reap_before(i64::MAX, 500).await?;
            requeued += n;
            if n < 500 {
                break;
            }
        }
        let unrung = sqlx::query("UPDATE jobs SET rung_at = NULL WHERE state = 'queued'")
            .execute(&self.writer)
            .await
            .map_err(classify)?
            .rows_affected();
        Ok((requeued, unrung))
    }

    /// Returns running jobs whose lease ends before `cutoff` (ms) to the queue.
    async fn reap_before(&self, cutoff: i64, limit: u32) -> Result<u64, StoreError> {
        let now = now_ms();
        let error = lease_expired_error();
        let mut tx = self.begin_write().await?;
        let reaped: Vec<(Uuid, i32, Option<String>, String)> = sqlx::query_as(
            "UPDATE jobs SET
                 state = CASE WHEN attempt >= max_attempts THEN 'failed' ELSE 'queued' END,
                 run_at = ?1, rung_at = NULL, lease_until = NULL, error = ?2,
                 finished_at = CASE WHEN attempt >= max_attempts THEN ?1 ELSE NULL END,
                 updated_at = ?1
             WHERE id IN (
                 SELECT id FROM jobs WHERE state = 'running' AND lease_until < ?3
                 ORDER BY lease_until LIMIT ?4
             )
             RETURNING id, attempt, worker_id, state",
        )
        .bind(now)
        .bind(&error)
        .bind(cutoff)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(classify)?;
        for (id, attempt, worker_id, state) in &reaped {
            let detail = serde_json::json!({"state": state});
            insert_event(
                &mut tx,
                *id,
                now,
                "lease_expired",
                *attempt,
                worker_id.as_deref(),
                &detail,
            )
            .await?;
        }
        tx.commit().await.map_err(classify)?;
        Ok(reaped.len() as u64)
    }
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.reader)
            .await
            .map(drop)
            .map_err(classify)
    }

    async fn create(&self, tenant: &str, spec: &JobSpec) -> Result<Job, StoreError> {
        let mut tx = self.begin_write().await?;
        let job = insert_job(&mut tx, tenant, spec, now_ms()).await?;
        tx.commit().await.map_err(classify)?;
        Ok(job)
    }

    async fn create_idempotent(
        &self,
        tenant: &str,
        key: &IdempotencyKey,
        spec: &JobSpec,
    ) -> Result<Idempotent, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE tenant_id = ? AND key = ? AND created_at < ?",
        )
        .bind(tenant)
        .bind(&key.key)
        .bind(now - millis(IDEMPOTENCY_TTL))
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        let existing: Option<(String, Option<Uuid>)> = sqlx::query_as(
            "SELECT request_hash, job_id FROM idempotency_keys WHERE tenant_id = ? AND key = ?",
        )
        .bind(tenant)
        .bind(&key.key)
        .fetch_optional(&mut *tx)
        .await
        .map_err(classify)?;
        if let Some((hash, job_id)) = existing {
            tx.commit().await.map_err(classify)?;
            if hash != key.request_hash {
                return Ok(Idempotent::Mismatch);
            }
            let job = match job_id {
                Some(id) => self.get(tenant, id).await?,
                None => None,
            };
            return job
                .map(|job| Idempotent::Replayed(Box::new(job)))
                .ok_or_else(|| StoreError::Database("an idempotency key lost its job".into()));
        }
        let job = insert_job(&mut tx, tenant, spec, now).await?;
        sqlx::query(
            "INSERT INTO idempotency_keys (tenant_id, key, request_hash, job_id, created_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(tenant)
        .bind(&key.key)
        .bind(&key.request_hash)
        .bind(job.id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(Idempotent::Created(Box::new(job)))
    }

    async fn get(&self, tenant: &str, id: Uuid) -> Result<Option<Job>, StoreError> {
        let row: Option<SqliteJobRow> =
            sqlx::query_as("SELECT * FROM jobs WHERE id = ? AND tenant_id = ?")
                .bind(id)
                .bind(tenant)
                .fetch_optional(&self.reader)
                .await
                .map_err(classify)?;
        row.map(SqliteJobRow::into_job).transpose()
    }

    async fn list(&self, tenant: &str, query: &ListQuery) -> Result<Vec<Job>, StoreError> {
        let mut sql = list_sql::<Sqlite>(tenant, query);
        let rows: Vec<SqliteJobRow> = sql
            .build_query_as()
            .fetch_all(&self.reader)
            .await
            .map_err(classify)?;
        rows.into_iter().map(SqliteJobRow::into_job).collect()
    }

    async fn events(&self, id: Uuid) -> Result<Vec<JobEvent>, StoreError> {
        let rows: Vec<EventRow> =
            sqlx::query_as("SELECT * FROM job_events WHERE job_id = ? ORDER BY id")
                .bind(id)
                .fetch_all(&self.reader)
                .await
                .map_err(classify)?;
        rows.into_iter()
            .map(|row| {
                Ok(JobEvent {
                    id: row.id,
                    job_id: row.job_id,
                    at: time(row.job_id, row.at)?,
                    kind: row.kind,
                    attempt: count(row.job_id, row.attempt)?,
                    worker_id: row.worker_id,
                    detail: row.detail,
                })
            })
            .collect()
    }

    async fn cancel(&self, tenant: &str, id: Uuid) -> Result<CancelOutcome, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let Some(state) = job_state(&mut tx, tenant, id).await? else {
            return Ok(CancelOutcome::NotFound);
        };
        if state.is_terminal() {
            return Ok(CancelOutcome::AlreadyFinished(state));
        }
        let row: SqliteJobRow = sqlx::query_as(
            "UPDATE jobs SET state = 'cancelled', lease_until = NULL, finished_at = ?1,
                    updated_at = ?1
             WHERE id = ?2 RETURNING *",
        )
        .bind(now)
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(classify)?;
        let detail = serde_json::json!({"from": state.as_str()});
        let worker = row.worker_id.clone();
        insert_event(
            &mut tx,
            id,
            now,
            "cancelled",
            row.attempt,
            worker.as_deref(),
            &detail,
        )
        .await?;
        tx.commit().await.map_err(classify)?;
        Ok(CancelOutcome::Cancelled(Box::new(row.into_job()?)))
    }

    async fn retry(
        &self,
        tenant: &str,
        id: Uuid,
        change: &RetryChange,
    ) -> Result<RetryOutcome, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let Some(state) = job_state(&mut tx, tenant, id).await? else {
            return Ok(RetryOutcome::NotFound);
        };
        if !matches!(state, JobState::Failed | JobState::Cancelled) {
            return Ok(RetryOutcome::NotRetryable(state));
        }
        let row: SqliteJobRow = sqlx::query_as(
            "UPDATE jobs SET state = 'queued', max_attempts = attempt + ?2,
                    strategy = COALESCE(?3, strategy), priority = COALESCE(?4, priority),
                    run_at = ?5, rung_at = ?5, lease_until = NULL, finished_at = NULL,
                    result = NULL, error = NULL, updated_at = ?5
             WHERE id = ?1 RETURNING *",
        )
        .bind(id)
        .bind(i64::from(change.budget))
        .bind(change.strategy.map(|s| s.as_str()))
        .bind(change.priority.map(|p| i32::from(p.get())))
        .bind(now)
        .fetch_one(&mut *tx)
        .await
        .map_err(classify)?;
        let detail = serde_json::json!({
            "from": state.as_str(),
            "strategy": row.strategy,
            "priority": row.priority,
            "max_attempts": row.max_attempts,
        });
        insert_event(&mut tx, id, now, "retried", row.attempt, None, &detail).await?;
        tx.commit().await.map_err(classify)?;
        Ok(RetryOutcome::Queued(Box::new(row.into_job()?)))
    }

    async fn claim(
        &self,
        id: Uuid,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<RunningJob>, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let row: Option<SqliteJobRow> = sqlx::query_as(
            "UPDATE jobs SET state = 'running', attempt = attempt + 1, worker_id = ?2,
                    lease_until = ?3 + ?4, started_at = ?3, updated_at = ?3
             WHERE id = ?1 AND state = 'queued' AND run_at <= ?3
             RETURNING *",
        )
        .bind(id)
        .bind(worker)
        .bind(now)
        .bind(millis(lease))
        .fetch_optional(&mut *tx)
        .await
        .map_err(classify)?;
        let Some(row) = row else {
            return Ok(None);
        };
        insert_event(
            &mut tx,
            id,
            now,
            "started",
            row.attempt,
            Some(worker),
            &Value::Object(Default::default()),
        )
        .await?;
        tx.commit().await.map_err(classify)?;
        Ok(Some(RunningJob::claimed(row.into_job()?, worker)))
    }

    async fn renew(&self, job: &RunningJob, lease: Duration) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let renewed = sqlx::query(
            "UPDATE jobs SET lease_until = ?4 + ?5
             WHERE id = ?1 AND state = 'running' AND attempt = ?2 AND worker_id = ?3",
        )
        .bind(job.id)
        .bind(i64::from(job.attempt))
        .bind(&job.worker_id)
        .bind(now)
        .bind(millis(lease))
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(renewed.rows_affected() == 1)
    }

    async fn settle(&self, job: &RunningJob, settlement: &Settlement) -> Result<bool, StoreError> {
        let now = now_ms();
        let record = SettlementRecord::from(settlement);
        let mut tx = self.begin_write().await?;
        let queued = record.state == JobState::Queued;
        let settled = sqlx::query(
            "UPDATE jobs SET state = ?4, result = ?5, error = ?6,
                    run_at = COALESCE(?7, run_at),
                    rung_at = CASE WHEN ?8 THEN NULL ELSE rung_at END,
                    lease_until = NULL,
                    finished_at = CASE WHEN ?8 THEN NULL ELSE ?9 END,
                    updated_at = ?9
             WHERE id = ?1 AND state = 'running' AND attempt = ?2 AND worker_id = ?3",
        )
        .bind(job.id)
        .bind(job.attempt as i32)
        .bind(&job.worker_id)
        .bind(record.state.as_str())
        .bind(record.result)
        .bind(record.error)
        .bind(record.run_at.map(|at| at.timestamp_millis()))
        .bind(queued)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(classify)?
        .rows_affected();
        if settled == 1 {
            insert_event(
                &mut tx,
                job.id,
                now,
                record.event,
                job.attempt as i32,
                Some(&job.worker_id),
                &record.detail,
            )
            .await?;
        }
        tx.commit().await.map_err(classify)?;
        Ok(settled == 1)
    }

    async fn release(&self, job: &RunningJob) -> Result<bool, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let released = sqlx::query(
            "UPDATE jobs SET state = 'queued', run_at = ?4, rung_at = NULL, lease_until = NULL,
                    updated_at = ?4
             WHERE id = ?1 AND state = 'running' AND attempt = ?2 AND worker_id = ?3",
        )
        .bind(job.id)
        .bind(job.attempt as i32)
        .bind(&job.worker_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(classify)?
        .rows_affected();
        if released == 1 {
            let detail = serde_json::json!({"reason": "worker shutting down"});
            insert_event(
                &mut tx,
                job.id,
                now,
                "released",
                job.attempt as i32,
                Some(&job.worker_id),
                &detail,
            )
            .await?;
        }
        tx.commit().await.map_err(classify)?;
        Ok(released == 1)
    }

    async fn mark_unrung(&self, ids: &[Uuid]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut sql = QueryBuilder::<Sqlite>::new(
            "UPDATE jobs SET rung_at = NULL WHERE state = 'queued' AND id IN (",
        );
        let mut list = sql.separated(", ");
        for id in ids {
            list.push_bind(*id);
        }
        sql.push(")");
        sql.build()
            .execute(&self.writer)
            .await
            .map(drop)
            .map_err(classify)
    }

    async fn take_due(&self, limit: u32) -> Result<Vec<Doorbell>, StoreError> {
        let rows: Vec<(Uuid, i32)> = sqlx::query_as(
            "UPDATE jobs SET rung_at = ?1
             WHERE id IN (
                 SELECT id FROM jobs
                 WHERE state = 'queued' AND rung_at IS NULL AND run_at <= ?1
                 ORDER BY run_at LIMIT ?2
             )
             RETURNING id, priority",
        )
        .bind(now_ms())
        .bind(i64::from(limit))
        .fetch_all(&self.writer)
        .await
        .map_err(classify)?;
        rows.into_iter()
            .map(|(job_id, level)| {
                Ok(Doorbell {
                    job_id,
                    priority: priority_of(job_id, level)?,
                })
            })
            .collect()
    }

    async fn reap_expired(&self, limit: u32) -> Result<u64, StoreError> {
        self.reap_before(now_ms(), limit).await
    }

    async fn stats(&self) -> Result<JobStats, StoreError> {
        let counts: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, count(*) FROM jobs GROUP BY state")
                .fetch_all(&self.reader)
                .await
                .map_err(classify)?;
        let oldest: Option<i64> = sqlx::query_scalar(
            "SELECT min(run_at) FROM jobs WHERE state = 'queued' AND run_at <= ?",
        )
        .bind(now_ms())
        .fetch_one(&self.reader)
        .await
        .map_err(classify)?;
        let mut stats = JobStats::with_counts(counts)?;
        stats.oldest_due_run_at = oldest.and_then(DateTime::from_timestamp_millis);
        Ok(stats)
    }

    async fn lead(&self) -> Result<Option<Box<dyn Leadership>>, StoreError> {
        // One process owns the data directory (it is locked), so it leads.
        Ok(Some(Box::new(SoleLeader)))
    }

    async fn unring_due(&self) -> Result<u64, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE jobs SET rung_at = NULL
             WHERE state = 'queued' AND rung_at IS NOT NULL AND run_at <= ?1",
        )
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(done.rows_affected())
    }

    async fn unring_stale(
        &self,
        older_than: Duration,
        levels: &[crate::job::Priority],
    ) -> Result<u64, StoreError> {
        let now = now_ms();
        let levels = serde_json::to_string(&levels.iter().map(|p| p.get()).collect::<Vec<_>>())
            .unwrap_or_else(|_| "[]".into());
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE jobs SET rung_at = NULL
             WHERE state = 'queued' AND rung_at IS NOT NULL AND run_at <= ?1
               AND rung_at < ?1 - ?2 AND priority IN (SELECT value FROM json_each(?3))",
        )
        .bind(now)
        .bind(millis(older_than))
        .bind(levels)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(done.rows_affected())
    }

    async fn put_artifact(&self, artifact: &ArtifactRecord) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO job_artifacts (job_id, name, content_type, bytes, sha256, created_at)
             VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (job_id, name) DO UPDATE SET content_type = excluded.content_type,
                 bytes = excluded.bytes, sha256 = excluded.sha256, created_at = excluded.created_at",
        )
        .bind(artifact.job_id)
        .bind(&artifact.name)
        .bind(&artifact.content_type)
        .bind(i64::try_from(artifact.bytes).unwrap_or(i64::MAX))
        .bind(&artifact.sha256)
        .bind(artifact.created_at.timestamp_millis())
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(())
    }

    async fn artifacts(&self, job: Uuid) -> Result<Vec<ArtifactRecord>, StoreError> {
        let rows: Vec<(Uuid, String, String, i64, String, i64)> = sqlx::query_as(
            "SELECT job_id, name, content_type, bytes, sha256, created_at
             FROM job_artifacts WHERE job_id = ? ORDER BY name",
        )
        .bind(job)
        .fetch_all(&self.reader)
        .await
        .map_err(classify)?;
        rows.into_iter()
            .map(|(job_id, name, content_type, bytes, sha256, created_at)| {
                Ok(ArtifactRecord {
                    job_id,
                    name,
                    content_type,
                    bytes: u64::try_from(bytes).unwrap_or(0),
                    sha256,
                    created_at: time(job_id, created_at)?,
                })
            })
            .collect()
    }
}

/// A job's state read inside the write transaction `tx` (the single writer: nothing else
/// changes it meanwhile); `None` when the tenant has no such job.
async fn job_state(
    tx: &mut Transaction<'static, Sqlite>,
    tenant: &str,
    id: Uuid,
) -> Result<Option<JobState>, StoreError> {
    let state: Option<String> =
        sqlx::query_scalar("SELECT state FROM jobs WHERE id = ? AND tenant_id = ?")
            .bind(id)
            .bind(tenant)
            .fetch_optional(&mut **tx)
            .await
            .map_err(classify)?;
    state
        .map(|state| state.parse().map_err(|e| corrupt(id, e)))
        .transpose()
}

/// Inserts a queued job and its `created` event in the write transaction `tx`.
async fn insert_job(
    tx: &mut Transaction<'static, Sqlite>,
    tenant: &str,
    spec: &JobSpec,
    now: i64,
) -> Result<Job, StoreError> {
    let row: SqliteJobRow = sqlx::query_as(
        "INSERT INTO jobs (id, tenant_id, domain, url, job_type, strategy, priority, payload,
                               max_attempts, timeout_ms, state, run_at, rung_at, created_at,
                               updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?12,
                     CASE WHEN ?12 <= ?11 THEN ?11 END, ?11, ?11)
             RETURNING *",
    )
    .bind(Uuid::now_v7())
    .bind(tenant)
    .bind(&spec.domain)
    .bind(spec.url.as_str())
    .bind(spec.job_type.as_str())
    .bind(spec.strategy.as_str())
    .bind(i32::from(spec.priority.get()))
    .bind(&spec.payload)
    .bind(spec.max_attempts as i32)
    .bind(millis(spec.timeout) as i32)
    .bind(now)
    .bind(spec.run_at.map_or(now, |at| at.timestamp_millis()))
    .fetch_one(&mut **tx)
    .await
    .map_err(classify)?;
    let run_at = time(row.id, row.run_at)?;
    let detail = serde_json::json!({"priority": row.priority, "run_at": run_at});
    insert_event(tx, row.id, now, "created", 0, None, &detail).await?;
    row.into_job()
}
