//! PostgreSQL job store: guarded transitions, each with its timeline event, in one statement.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::FromRow;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use uuid::Uuid;

use super::row::{
    JobRow, SettlementRecord, corrupt, count, lease_expired_error, list_sql, millis, priority_of,
};
use super::{
    ArtifactRecord, CancelOutcome, IDEMPOTENCY_TTL, IdempotencyKey, Idempotent, JobStats, JobStore,
    Leadership, ListQuery, RetryChange, RetryOutcome, Settlement, StoreError,
};
use crate::job::{Job, JobEvent, JobSpec, JobState, RunningJob};
use crate::queue::Doorbell;

/// The embedded PostgreSQL migrations.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A [`JobStore`] on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects a pool of at most `max_connections` to `url`.
    ///
    /// Acquiring a connection waits at most `acquire_timeout`, so callers fail fast (and the
    /// API answers 503) while the database is unreachable.
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
            .connect_with(options.application_name("control-plane"))
            .await
            .map_err(classify)?;
        Ok(PgStore { pool })
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
        .fetch_one(&self.pool)
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
        &self.pool
    }

    /// Applies the embedded migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(&self.pool)
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

#[derive(FromRow)]
struct EventRow {
    id: i64,
    job_id: Uuid,
    at: DateTime<Utc>,
    kind: String,
    attempt: i32,
    worker_id: Option<String>,
    detail: Value,
}

#[async_trait]
impl JobStore for PgStore {
    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn create(&self, tenant: &str, spec: &JobSpec) -> Result<Job, StoreError> {
        insert_job(&self.pool, tenant, spec).await
    }

    async fn create_idempotent(
        &self,
        tenant: &str,
        key: &IdempotencyKey,
        spec: &JobSpec,
    ) -> Result<Idempotent, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        sqlx::query(
            "DELETE FROM idempotency_keys
             WHERE tenant_id = $1 AND key = $2 AND created_at < now() - $3 * interval '1 millisecond'",
        )
        .bind(tenant)
        .bind(&key.key)
        .bind(millis(IDEMPOTENCY_TTL))
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        // A concurrent request with the same key waits here until the first one commits.
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (tenant_id, key, request_hash)
             VALUES ($1, $2, $3) ON CONFLICT (tenant_id, key) DO NOTHING",
        )
        .bind(tenant)
        .bind(&key.key)
        .bind(&key.request_hash)
        .execute(&mut *tx)
        .await
        .map_err(classify)?
        .rows_affected();
        if inserted == 0 {
            let (hash, job_id): (String, Option<Uuid>) = sqlx::query_as(
                "SELECT request_hash, job_id FROM idempotency_keys WHERE tenant_id = $1 AND key = $2",
            )
            .bind(tenant)
            .bind(&key.key)
            .fetch_one(&mut *tx)
            .await
            .map_err(classify)?;
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
        let job = insert_job(&mut *tx, tenant, spec).await?;
        sqlx::query("UPDATE idempotency_keys SET job_id = $3 WHERE tenant_id = $1 AND key = $2")
            .bind(tenant)
            .bind(&key.key)
            .bind(job.id)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(Idempotent::Created(Box::new(job)))
    }

    async fn get(&self, tenant: &str, id: Uuid) -> Result<Option<Job>, StoreError> {
        let row: Option<JobRow> =
            sqlx::query_as("SELECT * FROM jobs WHERE id = $1 AND tenant_id = $2")
                .bind(id)
                .bind(tenant)
                .fetch_optional(&self.pool)
                .await
                .map_err(classify)?;
        row.map(Job::try_from).transpose()
    }

    async fn list(&self, tenant: &str, query: &ListQuery) -> Result<Vec<Job>, StoreError> {
        let mut sql = list_sql::<sqlx::Postgres>(tenant, query);
        let rows: Vec<JobRow> = sql
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(classify)?;
        rows.into_iter().map(Job::try_from).collect()
    }

    async fn events(&self, id: Uuid) -> Result<Vec<JobEvent>, StoreError> {
        let rows: Vec<EventRow> =
            sqlx::query_as("SELECT * FROM job_events WHERE job_id = $1 ORDER BY id")
                .bind(id)
                .fetch_all(&self.pool)
                .await
                .map_err(classify)?;
        rows.into_iter()
            .map(|row| {
                Ok(JobEvent {
                    id: row.id,
                    job_id: row.job_id,
                    at: row.at,
                    kind: row.kind,
                    attempt: count(row.job_id, row.attempt)?,
                    worker_id: row.worker_id,
                    detail: row.detail,
                })
            })
            .collect()
    }

    async fn cancel(&self, tenant: &str, id: Uuid) -> Result<CancelOutcome, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let Some(state) = lock_state(&mut tx, tenant, id).await? else {
            return Ok(CancelOutcome::NotFound);
        };
        if state.is_terminal() {
            return Ok(CancelOutcome::AlreadyFinished(state));
        }
        let row: JobRow = sqlx::query_as(
            "UPDATE jobs SET state = 'cancelled', lease_until = NULL, finished_at = now(),
                    updated_at = now()
             WHERE id = $1 RETURNING *",
        )
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .map_err(classify)?;
        sqlx::query(
            "INSERT INTO job_events (job_id, kind, attempt, worker_id, detail)
             VALUES ($1, 'cancelled', $2, $3, jsonb_build_object('from', $4::text))",
        )
        .bind(id)
        .bind(row.attempt)
        .bind(row.worker_id.clone())
        .bind(state.as_str())
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(CancelOutcome::Cancelled(Box::new(row.try_into()?)))
    }

    async fn retry(
        &self,
        tenant: &str,
        id: Uuid,
        change: &RetryChange,
    ) -> Result<RetryOutcome, StoreError> {
        let mut tx = self.pool.begin().await.map_err(classify)?;
        let Some(state) = lock_state(&mut tx, tenant, id).await? else {
            return Ok(RetryOutcome::NotFound);
        };
        if !matches!(state, JobState::Failed | JobState::Cancelled) {
            return Ok(RetryOutcome::NotRetryable(state));
        }
        let row: JobRow = sqlx::query_as(
            "UPDATE jobs SET state = 'queued', max_attempts = attempt + $2,
                    strategy = COALESCE($3, strategy), priority = COALESCE($4, priority),
                    run_at = now(), rung_at = now(), lease_until = NULL, finished_at = NULL,
                    result = NULL, error = NULL, updated_at = now()
             WHERE id = $1 RETURNING *",
        )
        .bind(id)
        .bind(i32::try_from(change.budget).unwrap_or(i32::MAX))
        .bind(change.strategy.map(|s| s.as_str()))
        .bind(change.priority.map(|p| i32::from(p.get())))
        .fetch_one(&mut *tx)
        .await
        .map_err(classify)?;
        sqlx::query(
            "INSERT INTO job_events (job_id, kind, attempt, detail)
             VALUES ($1, 'retried', $2, jsonb_build_object('from', $3::text,
                     'strategy', $4::text, 'priority', $5::int, 'max_attempts', $6::int))",
        )
        .bind(id)
        .bind(row.attempt)
        .bind(state.as_str())
        .bind(&row.strategy)
        .bind(row.priority)
        .bind(row.max_attempts)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        Ok(RetryOutcome::Queued(Box::new(row.try_into()?)))
    }

    async fn claim(
        &self,
        id: Uuid,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<RunningJob>, StoreError> {
        let row: Option<JobRow> = sqlx::query_as(
            "WITH claimed AS (
                UPDATE jobs SET state = 'running', attempt = attempt + 1, worker_id = $2,
                       lease_until = now() + $3 * interval '1 millisecond',
                       started_at = now(), updated_at = now()
                WHERE id = $1 AND state = 'queued' AND run_at <= now()
                RETURNING *
            ), event AS (
                INSERT INTO job_events (job_id, kind, attempt, worker_id)
                SELECT id, 'started', attempt, worker_id FROM claimed
            )
            SELECT * FROM claimed",
        )
        .bind(id)
        .bind(worker)
        .bind(millis(lease))
        .fetch_optional(&self.pool)
        .await
        .map_err(classify)?;
        let Some(job) = row.map(Job::try_from).transpose()? else {
            return Ok(None);
        };
        Ok(Some(RunningJob::claimed(job, worker)))
    }

    async fn renew(&self, job: &RunningJob, lease: Duration) -> Result<bool, StoreError> {
        let renewed = sqlx::query(
            "UPDATE jobs SET lease_until = now() + $4 * interval '1 millisecond'
             WHERE id = $1 AND state = 'running' AND attempt = $2 AND worker_id = $3",
        )
        .bind(job.id)
        .bind(i32::try_from(job.attempt).unwrap_or(i32::MAX))
        .bind(&job.worker_id)
        .bind(millis(lease))
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        Ok(renewed.rows_affected() == 1)
    }

    async fn settle(&self, job: &RunningJob, settlement: &Settlement) -> Result<bool, StoreError> {
        let record = SettlementRecord::from(settlement);
        let settled: i64 = sqlx::query_scalar(
            "WITH settled AS (
                UPDATE jobs SET state = $4, result = $5, error = $6,
                       run_at = COALESCE($7, run_at),
                       rung_at = CASE WHEN $4 = 'queued' THEN NULL ELSE rung_at END,
                       lease_until = NULL,
                       finished_at = CASE WHEN $4 = 'queued' THEN NULL ELSE now() END,
                       updated_at = now()
                WHERE id = $1 AND state = 'running' AND attempt = $2 AND worker_id = $3
                RETURNING id, attempt, worker_id
            ), event AS (
                INSERT INTO job_events (job_id, kind, attempt, worker_id, detail)
                SELECT id, $8, attempt, worker_id, $9 FROM settled
            )
            SELECT count(*) FROM settled",
        )
        .bind(job.id)
        .bind(job.attempt as i32)
        .bind(&job.worker_id)
        .bind(record.state.as_str())
        .bind(record.result)
        .bind(record.error)
        .bind(record.run_at)
        .bind(record.event)
        .bind(record.detail)
        .fetch_one(&self.pool)
        .await
        .map_err(classify)?;
        Ok(settled == 1)
    }

    async fn release(&self, job: &RunningJob) -> Result<bool, StoreError> {
        let released: i64 = sqlx::query_scalar(
            "WITH released AS (
                UPDATE jobs SET state = 'queued', run_at = now(), rung_at = NULL,
                       lease_until = NULL, updated_at = now()
                WHERE id = $1 AND state = 'running' AND attempt = $2 AND worker_id = $3
                RETURNING id, attempt, worker_id
            ), event AS (
                INSERT INTO job_events (job_id, kind, attempt, worker_id, detail)
                SELECT id, 'released', attempt, worker_id,
                       '{\"reason\": \"worker shutting down\"}'::jsonb FROM released
            )
            SELECT count(*) FROM released",
        )
        .bind(job.id)
        .bind(job.attempt as i32)
        .bind(&job.worker_id)
        .fetch_one(&self.pool)
        .await
        .map_err(classify)?;
        Ok(released == 1)
    }

    async fn mark_unrung(&self, ids: &[Uuid]) -> Result<(), StoreError> {
        sqlx::query("UPDATE jobs SET rung_at = NULL WHERE id = ANY($1) AND state = 'queued'")
            .bind(ids)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(classify)
    }

    async fn take_due(&self, limit: u32) -> Result<Vec<Doorbell>, StoreError> {
        let rows: Vec<(Uuid, i32)> = sqlx::query_as(
            "WITH due AS (
                SELECT id FROM jobs
                WHERE state = 'queued' AND rung_at IS NULL AND run_at <= now()
                ORDER BY run_at
                LIMIT $1
                FOR UPDATE SKIP LOCKED
            )
            UPDATE jobs SET rung_at = now() FROM due WHERE jobs.id = due.id
            RETURNING jobs.id, jobs.priority",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
        let error = lease_expired_error();
        let reaped: i64 = sqlx::query_scalar(
            "WITH expired AS (
                SELECT id FROM jobs
                WHERE state = 'running' AND lease_until < now()
                ORDER BY lease_until
                LIMIT $1
                FOR UPDATE SKIP LOCKED
            ), reaped AS (
                UPDATE jobs SET
                    state = CASE WHEN jobs.attempt >= jobs.max_attempts
                                 THEN 'failed' ELSE 'queued' END,
                    run_at = now(), rung_at = NULL, lease_until = NULL, error = $2,
                    finished_at = CASE WHEN jobs.attempt >= jobs.max_attempts
                                       THEN now() ELSE NULL END,
                    updated_at = now()
                FROM expired WHERE jobs.id = expired.id
                RETURNING jobs.id, jobs.attempt, jobs.worker_id, jobs.state
            ), event AS (
                INSERT INTO job_events (job_id, kind, attempt, worker_id, detail)
                SELECT id, 'lease_expired', attempt, worker_id,
                       jsonb_build_object('state', state) FROM reaped
            )
            SELECT count(*) FROM reaped",
        )
        .bind(i64::from(limit))
        .bind(error)
        .fetch_one(&self.pool)
        .await
        .map_err(classify)?;
        Ok(reaped.max(0) as u64)
    }

    async fn stats(&self) -> Result<JobStats, StoreError> {
        let counts: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, count(*) FROM jobs GROUP BY state")
                .fetch_all(&self.pool)
                .await
                .map_err(classify)?;
        let oldest_due_run_at: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT min(run_at) FROM jobs WHERE state = 'queued' AND run_at <= now()",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(classify)?;
        let mut stats = JobStats::with_counts(counts)?;
        stats.oldest_due_run_at = oldest_due_run_at;
        Ok(stats)
    }

    async fn lead(&self) -> Result<Option<Box<dyn Leadership>>, StoreError> {
        let mut conn = self.pool.acquire().await.map_err(classify)?.detach();
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(SCHEDULER_LOCK)
            .fetch_one(&mut conn)
            .await
            .map_err(classify)?;
        Ok(held.then(|| Box::new(AdvisoryLock { conn }) as Box<dyn Leadership>))
    }

    async fn unring_due(&self) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE jobs SET rung_at = NULL
             WHERE state = 'queued' AND rung_at IS NOT NULL AND run_at <= now()",
        )
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        Ok(done.rows_affected())
    }

    async fn unring_stale(
        &self,
        older_than: Duration,
        levels: &[crate::job::Priority],
    ) -> Result<u64, StoreError> {
        let levels: Vec<i32> = levels.iter().map(|p| i32::from(p.get())).collect();
        let done = sqlx::query(
            "UPDATE jobs SET rung_at = NULL
             WHERE state = 'queued' AND rung_at IS NOT NULL AND run_at <= now()
               AND rung_at < now() - $1 * interval '1 millisecond' AND priority = ANY($2)",
        )
        .bind(millis(older_than))
        .bind(levels)
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        Ok(done.rows_affected())
    }

    async fn put_artifact(&self, artifact: &ArtifactRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO job_artifacts (job_id, name, content_type, bytes, sha256, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (job_id, name) DO UPDATE SET content_type = EXCLUDED.content_type,
                 bytes = EXCLUDED.bytes, sha256 = EXCLUDED.sha256, created_at = EXCLUDED.created_at",
        )
        .bind(artifact.job_id)
        .bind(&artifact.name)
        .bind(&artifact.content_type)
        .bind(i64::try_from(artifact.bytes).unwrap_or(i64::MAX))
        .bind(&artifact.sha256)
        .bind(artifact.created_at)
        .execute(&self.pool)
        .await
        .map_err(classify)?;
        Ok(())
    }

    async fn artifacts(&self, job: Uuid) -> Result<Vec<ArtifactRecord>, StoreError> {
        let rows: Vec<(Uuid, String, String, i64, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT job_id, name, content_type, bytes, sha256, created_at
             FROM job_artifacts WHERE job_id = $1 ORDER BY name",
        )
        .bind(job)
        .fetch_all(&self.pool)
        .await
        .map_err(classify)?;
        Ok(rows
            .into_iter()
            .map(
                |(job_id, name, content_type, bytes, sha256, created_at)| ArtifactRecord {
                    job_id,
                    name,
                    content_type,
                    bytes: u64::try_from(bytes).unwrap_or(0),
                    sha256,
                    created_at,
                },
            )
            .collect())
    }
}

/// A job's state, its row locked for the rest of the transaction; `None` when the tenant has
/// no such job.
async fn lock_state(
    tx: &mut sqlx::PgConnection,
    tenant: &str,
    id: Uuid,
) -> Result<Option<JobState>, StoreError> {
    let state: Option<String> =
        sqlx::query_scalar("SELECT state FROM jobs WHERE id = $1 AND tenant_id = $2 FOR UPDATE")
            .bind(id)
            .bind(tenant)
            .fetch_optional(&mut *tx)
            .await
            .map_err(classify)?;
    state
        .map(|state| state.parse().map_err(|e| corrupt(id, e)))
        .transpose()
}

/// The advisory lock key of the scheduler ("cp-sched" in ASCII).
const SCHEDULER_LOCK: i64 = 0x6370_2d73_6368_6564;

/// The scheduler's advisory lock, held by its own connection: if the process dies, the
/// connection closes and PostgreSQL releases the lock for another process to take.
struct AdvisoryLock {
    conn: sqlx::PgConnection,
}

#[async_trait]
impl Leadership for AdvisoryLock {
    async fn check(&mut self) -> bool {
        let probe = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&mut self.conn);
        matches!(
            tokio::time::timeout(Duration::from_secs(2), probe).await,
            Ok(Ok(1))
        )
    }
}

/// Inserts a queued job and its `created` event in one statement.
async fn insert_job<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    tenant: &str,
    spec: &JobSpec,
) -> Result<Job, StoreError> {
    let row: JobRow = sqlx::query_as(
        "WITH job AS (
            INSERT INTO jobs (id, tenant_id, domain, url, job_type, strategy, priority,
                              payload, max_attempts, timeout_ms, state, run_at, rung_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'queued',
                    COALESCE($11, now()),
                    CASE WHEN $11 IS NULL OR $11 <= now() THEN now() END)
            RETURNING *
        ), event AS (
            INSERT INTO job_events (job_id, kind, attempt, detail)
            SELECT id, 'created', 0,
                   jsonb_build_object('priority', priority, 'run_at', run_at) FROM job
        )
        SELECT * FROM job",
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
    .bind(spec.run_at)
    .fetch_one(executor)
    .await
    .map_err(classify)?;
    row.try_into()
}
