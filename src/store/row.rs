//! A `jobs` row as both databases read it back, and its mapping to the job read model.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::StoreError;
use super::job::{Callback, Job};
use crate::job::{JobError, Priority, Snapshot};
use crate::kinds::RunningJob;

/// A `jobs` row with decoded timestamps and JSON.
#[derive(Debug, sqlx::FromRow)]
pub struct JobRow {
    pub id: Uuid,
    pub tenant_id: String,
    pub domain: String,
    pub url: String,
    pub job_type: String,
    pub strategy: String,
    pub priority: i32,
    pub payload: Value,
    pub max_attempts: i32,
    pub timeout_ms: i32,
    pub state: String,
    pub attempt: i32,
    pub run_at: DateTime<Utc>,
    pub lease_until: Option<DateTime<Utc>>,
    pub worker_id: Option<String>,
    pub result: Option<Value>,
    pub error: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub doorbell: String,
    pub callback_url: Option<String>,
    pub hook_attempt: i32,
}

/// A row that does not read back as a job.
pub(crate) fn corrupt(id: Uuid, what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("job {id}: {what}").into())
}

/// A stored priority level.
pub(crate) fn priority_of(id: Uuid, level: i64) -> Result<Priority, StoreError> {
    Priority::new(level).ok_or_else(|| corrupt(id, format!("priority {level}")))
}

/// A stored non-negative count.
pub(crate) fn count(id: Uuid, value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| corrupt(id, format!("count {value}")))
}

impl TryFrom<JobRow> for Job {
    type Error = StoreError;

    fn try_from(row: JobRow) -> Result<Job, StoreError> {
        let id = row.id;
        let error = match row.error {
            Some(value) => {
                Some(serde_json::from_value::<JobError>(value).map_err(|e| corrupt(id, e))?)
            }
            None => None,
        };
        Ok(Job {
            id,
            tenant_id: row.tenant_id,
            domain: row.domain,
            url: row.url,
            job_type: row.job_type.parse().map_err(|e| corrupt(id, e))?,
            strategy: row.strategy.parse().map_err(|e| corrupt(id, e))?,
            priority: priority_of(id, i64::from(row.priority))?,
            payload: row.payload,
            max_attempts: count(id, i64::from(row.max_attempts))?,
            timeout_ms: count(id, i64::from(row.timeout_ms))?,
            state: row.state.parse().map_err(|e| corrupt(id, e))?,
            attempt: count(id, i64::from(row.attempt))?,
            run_at: row.run_at,
            lease_until: row.lease_until,
            worker_id: row.worker_id,
            result: row.result,
            error,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            updated_at: row.updated_at,
            ring: row.doorbell.parse().map_err(|e| corrupt(id, e))?,
            callback: row.callback_url.map(|url| Callback { url }),
            hook_attempt: count(id, i64::from(row.hook_attempt))?,
        })
    }
}

impl Job {
    /// The columns the state machine decides on.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            state: self.state,
            attempt: self.attempt,
            max_attempts: self.max_attempts,
            worker: self.worker_id.clone(),
            strategy: self.strategy,
            priority: self.priority,
        }
    }

    /// The running attempt of a job just claimed by `worker`.
    pub fn claimed(self, worker: &str) -> RunningJob {
        RunningJob {
            id: self.id,
            domain: self.domain,
            url: self.url,
            job_type: self.job_type,
            strategy: self.strategy,
            priority: self.priority,
            payload: self.payload,
            attempt: self.attempt,
            max_attempts: self.max_attempts,
            timeout_ms: self.timeout_ms,
            worker_id: worker.to_owned(),
            tenant_id: self.tenant_id,
        }
    }
}
