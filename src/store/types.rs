//! What the store's operations take and answer, besides jobs themselves.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Job;
use super::StoreError;
use crate::job::{Doorbell, JobState, Priority};
use crate::kinds::JobType;
use crate::persist::Cause;
use crate::spec::JobSpec;

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

/// The answer to a replay request.
#[derive(Debug)]
pub enum ReplayOutcome {
    /// The job is queued again, marked `ringing`: the caller rings its doorbell next.
    Queued(Box<Job>),
    /// The job is not failed or cancelled.
    NotReplayable(JobState),
    /// No such job for this tenant.
    NotFound,
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

/// The answer to a submission: of one job (`Created`) or of a batch (`Created<Vec<Job>>`).
#[derive(Debug)]
pub enum Created<T = Box<Job>> {
    /// New jobs.
    New(T),
    /// What the idempotency key created earlier.
    Replayed(T),
    /// The idempotency key was used with a different request.
    KeyMismatch,
}

impl<T> Created<T> {
    /// The same answer about `f` of what was created.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Created<U> {
        match self {
            Created::New(made) => Created::New(f(made)),
            Created::Replayed(made) => Created::Replayed(f(made)),
            Created::KeyMismatch => Created::KeyMismatch,
        }
    }
}

/// A job to create and the tenant it belongs to.
#[derive(Debug, Clone, Copy)]
pub struct NewJob<'a> {
    /// The tenant.
    pub tenant: &'a str,
    /// The job.
    pub spec: &'a JobSpec,
}

/// Which lost doorbells to mark as needed again.
#[derive(Debug, Clone, PartialEq)]
pub enum Unring {
    /// Rings started longer ago than this and never confirmed (the ringer died between
    /// marking and ringing).
    Unconfirmed(Duration),
    /// Rung longer ago than this, on levels with nothing waiting (the queue dropped them).
    Stale(Duration, Vec<Priority>),
}

/// Where a look through the queue stands: a priority level, and the last job looked at in
/// it (in queue order: due time, then id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePosition {
    /// The level.
    pub priority: Priority,
    /// The last job looked at (its due time and id); `None` at the level's start.
    pub last: Option<(DateTime<Utc>, Uuid)>,
}

impl QueuePosition {
    /// The start of the queue: the most urgent level's first job.
    pub const START: QueuePosition = QueuePosition {
        priority: Priority::HIGHEST,
        last: None,
    };
}

/// One page of the queue read after the queue lost its doorbells: the due queued jobs in it
/// whose doorbell was rung before the loss, and where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LostPage {
    /// Doorbells to ring again.
    pub lost: Vec<Doorbell>,
    /// Where the next page starts, while the queue goes on.
    pub next: Option<QueuePosition>,
}

/// Job counts by state and the age of the backlog, for queue stats.
#[derive(Debug, Clone, Default)]
pub struct JobStats {
    /// Number of jobs in each state (every state present, zero when none).
    pub by_state: BTreeMap<&'static str, i64>,
    /// Due queued jobs per priority level: (level, how many, `run_at` of the oldest).
    pub due_by_priority: Vec<(u8, i64, Option<DateTime<Utc>>)>,
}

impl JobStats {
    /// `run_at` of the oldest queued job that is due, at any priority.
    pub fn oldest_due_run_at(&self) -> Option<DateTime<Utc>> {
        self.due_by_priority.iter().filter_map(|d| d.2).min()
    }

    /// Stats from `(state, count)` rows; states without rows count zero.
    pub fn with_counts(counts: Vec<(String, i64)>) -> Result<JobStats, StoreError> {
        let mut by_state: BTreeMap<&'static str, i64> =
            JobState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
        for (state, n) in counts {
            let state: JobState = state
                .parse()
                .map_err(|e| StoreError::Corrupt(Cause::of(format!("state {state:?}"), e)))?;
            by_state.insert(state.as_str(), n);
        }
        Ok(JobStats {
            by_state,
            due_by_priority: Vec::new(),
        })
    }
}
