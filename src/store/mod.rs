//! The job store: the one place a job's truth lives, behind the [`JobStore`] trait.

pub mod postgres;
mod row;
pub mod sqlite;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::job::{Job, JobError, JobEvent, JobSpec, JobState, JobType, RunningJob};
use crate::queue::Doorbell;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// What can go wrong talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached right now; the caller may retry later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The store is configured wrongly (a malformed URL); retrying cannot help.
    #[error("{0}")]
    Config(String),
    /// The database answers but its schema is older than this build (migrations not applied).
    #[error("the database is not migrated; run `control-plane migrate` (or start `serve`)")]
    NotMigrated,
    /// A stored row cannot be read back as a job.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    /// Whether waiting may make the error go away (the database starting, being created or
    /// migrated by another process).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::NotMigrated | StoreError::Database(_)
        )
    }
}

/// Filters and page position for listing jobs, newest first.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs for this domain.
    pub domain: Option<String>,
    /// Only jobs of this type.
    pub job_type: Option<JobType>,
    /// Only jobs older than this id (the previous page's last job).
    pub before: Option<Uuid>,
    /// At most this many jobs.
    pub limit: u32,
}

/// The answer to a cancel request.
#[derive(Debug)]
pub enum CancelOutcome {
    /// The job was queued or running and is now cancelled.
    Cancelled(Box<Job>),
    /// The job had already finished in this state.
    AlreadyFinished(JobState),
    /// No such job for this tenant.
    NotFound,
}

/// Held by the process that runs the scheduler; given up when dropped.
#[async_trait]
pub trait Leadership: Send {
    /// Whether it is still held (its connection answers).
    async fn check(&mut self) -> bool;
}

/// Leadership that needs no lock: the embedded mode has one process.
pub struct SoleLeader;

#[async_trait]
impl Leadership for SoleLeader {
    async fn check(&mut self) -> bool {
        true
    }
}

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);

/// A client's idempotency key and the hash of the request it came with.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// The `Idempotency-Key` header.
    pub key: String,
    /// Hex SHA-256 of the canonical request body.
    pub request_hash: String,
}

/// The result of a submission with an idempotency key.
#[derive(Debug)]
pub enum Idempotent {
    /// A new job.
    Created(Box<Job>),
    /// The job the key created earlier.
    Replayed(Box<Job>),
    /// The key was used with a different request.
    Mismatch,
}

/// What a replay changes.
#[derive(Debug, Clone)]
pub struct RetryChange {
    /// More attempts allowed from now.
    pub budget: u32,
    /// A new strategy.
    pub strategy: Option<crate::job::Strategy>,
    /// A new priority.
    pub priority: Option<crate::job::Priority>,
}

/// The result of a replay request.
#[derive(Debug)]
pub enum RetryOutcome {
    /// The job is queued again (marked as rung: the caller rings its doorbell next).
    Queued(Box<Job>),
    /// The job is not failed or cancelled.
    NotRetryable(JobState),
    /// No such job for this tenant.
    NotFound,
}

/// How a worker settles the attempt it ran.
#[derive(Debug, Clone)]
pub enum Settlement {
    /// The attempt succeeded with this result.
    Succeeded(Value),
    /// The attempt failed and the job goes back to the queue until `run_at`.
    Retry {
        /// Why the attempt failed.
        error: JobError,
        /// When the next attempt is due.
        run_at: DateTime<Utc>,
    },
    /// The attempt failed and the job is finished.
    Failed(JobError),
}

/// Job counts by state and the age of the backlog, for queue stats.
#[derive(Debug, Clone, Default)]
pub struct JobStats {
    /// Number of jobs in each state (every state present, zero when none).
    pub by_state: BTreeMap<&'static str, i64>,
    /// `run_at` of the oldest queued job that is due.
    pub oldest_due_run_at: Option<DateTime<Utc>>,
}

impl JobStats {
    /// Stats from `(state, count)` rows; states without rows count zero.
    pub fn with_counts(counts: Vec<(String, i64)>) -> Result<JobStats, StoreError> {
        let mut by_state: BTreeMap<&'static str, i64> =
            JobState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        for (state, n) in counts {
            let state: JobState = state
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("state {state:?}: {e}")))?;
            by_state.insert(state.as_str(), n);
        }
        Ok(JobStats {
            by_state,
            oldest_due_run_at: None,
        })
    }
}

/// Storage of jobs and their timelines. Every state change is a guarded transition.
#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Checks that the store answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Puts a failed or cancelled job back in the queue with `budget` more attempts, and
    /// optionally another strategy or priority. Its history stays.
    async fn retry(
        &self,
        tenant: &str,
        id: Uuid,
        change: &RetryChange,
    ) -> Result<RetryOutcome, StoreError>;

    /// Records a new queued job under an idempotency key: the first request with the key
    /// creates the job; later ones (within 24 h) get it back, or a mismatch when their
    /// request differs (`request_hash`). Concurrent requests with one key create one job.
    async fn create_idempotent(
        &self,
        tenant: &str,
        key: &IdempotencyKey,
        spec: &JobSpec,
    ) -> Result<Idempotent, StoreError>;

    /// Records a new queued job (marked as rung: the caller rings its doorbell next).
    async fn create(&self, tenant: &str, spec: &JobSpec) -> Result<Job, StoreError>;

    /// Reads one job of a tenant.
    async fn get(&self, tenant: &str, id: Uuid) -> Result<Option<Job>, StoreError>;

    /// Lists a tenant's jobs, newest first.
    async fn list(&self, tenant: &str, query: &ListQuery) -> Result<Vec<Job>, StoreError>;

    /// A job's timeline, oldest first.
    async fn events(&self, id: Uuid) -> Result<Vec<JobEvent>, StoreError>;

    /// Cancels a queued or running job.
    async fn cancel(&self, tenant: &str, id: Uuid) -> Result<CancelOutcome, StoreError>;

    /// Claims a due queued job for `worker`: `queued` → `running`, attempt + 1.
    ///
    /// The lease lasts `lease`; the worker renews it while the job runs. `None` when the job
    /// is not claimable (not queued, not yet due, or gone).
    async fn claim(
        &self,
        id: Uuid,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<RunningJob>, StoreError>;

    /// Extends a running attempt's lease to now + `lease`. `false` when the worker no longer
    /// holds the job (cancelled, finished, or reaped after its lease expired).
    async fn renew(&self, job: &RunningJob, lease: Duration) -> Result<bool, StoreError>;

    /// Records the outcome of a running attempt. `false` when the worker no longer holds the
    /// job (cancelled, or its lease was taken over): nothing is written then.
    async fn settle(&self, job: &RunningJob, settlement: &Settlement) -> Result<bool, StoreError>;

    /// Puts a running attempt back in the queue untouched (the worker is shutting down).
    async fn release(&self, job: &RunningJob) -> Result<bool, StoreError>;

    /// Marks queued jobs as needing a doorbell again (their ring failed or was dropped).
    async fn mark_unrung(&self, ids: &[Uuid]) -> Result<(), StoreError>;

    /// Takes up to `limit` due queued jobs that need a doorbell, marking them rung.
    async fn take_due(&self, limit: u32) -> Result<Vec<Doorbell>, StoreError>;

    /// Returns running jobs whose lease expired to the queue (or fails them when their
    /// attempts are used up). Returns how many were reaped.
    async fn reap_expired(&self, limit: u32) -> Result<u64, StoreError>;

    /// Counts jobs by state and finds the oldest due queued job.
    async fn stats(&self) -> Result<JobStats, StoreError>;

    /// Tries to become the one process that runs the scheduler, reaper and reconciler
    /// (a PostgreSQL advisory lock held on its own connection; trivially in embedded mode).
    async fn lead(&self) -> Result<Option<Box<dyn Leadership>>, StoreError>;

    /// Marks every due queued job whose doorbell was rung as needing a new ring (the queue
    /// lost its doorbells). Returns how many.
    async fn unring_due(&self) -> Result<u64, StoreError>;

    /// Marks due queued jobs of the given priorities whose doorbell was rung more than
    /// `older_than` ago as needing a new ring. Returns how many.
    async fn unring_stale(
        &self,
        older_than: Duration,
        levels: &[crate::job::Priority],
    ) -> Result<u64, StoreError>;

    /// Records (or replaces) the metadata of a job's artifact.
    async fn put_artifact(&self, artifact: &ArtifactRecord) -> Result<(), StoreError>;

    /// A job's artifacts, by name.
    async fn artifacts(&self, job: Uuid) -> Result<Vec<ArtifactRecord>, StoreError>;
}

/// The metadata of one file a job produced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArtifactRecord {
    /// The job.
    pub job_id: Uuid,
    /// The file name, unique per job (`screenshot.png`, `failure.html`, …).
    pub name: String,
    /// Its media type.
    pub content_type: String,
    /// Its size.
    pub bytes: u64,
    /// Hex SHA-256 of its content.
    pub sha256: String,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

impl ArtifactRecord {
    /// Where the API serves it.
    pub fn url(&self) -> String {
        format!("/api/v1/jobs/{}/artifacts/{}", self.job_id, self.name)
    }
}
