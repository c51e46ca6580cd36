//! Rows as both backends read them back, and the shared mapping to domain types.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use sqlx::{Database, Encode, QueryBuilder, Type};

use super::{ListQuery, Settlement, StoreError};
use crate::job::{ErrorKind, Job, JobError, JobState, Priority};

/// A `jobs` row with decoded timestamps and JSON.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct JobRow {
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
}

/// The listing query of [`ListQuery`], newest first, for either backend.
pub(crate) fn list_sql<DB>(tenant: &str, query: &ListQuery) -> QueryBuilder<DB>
where
    DB: Database,
    String: for<'q> Encode<'q, DB> + Type<DB>,
    Uuid: for<'q> Encode<'q, DB> + Type<DB>,
    i64: for<'q> Encode<'q, DB> + Type<DB>,
{
    let mut sql = QueryBuilder::new("SELECT * FROM jobs WHERE tenant_id = ");
    sql.push_bind(tenant.to_owned());
    if let Some(state) = query.state {
        sql.push(" AND state = ")
            .push_bind(state.as_str().to_owned());
    }
    if let Some(domain) = &query.domain {
        sql.push(" AND domain = ").push_bind(domain.clone());
    }
    if let Some(job_type) = query.job_type {
        sql.push(" AND job_type = ")
            .push_bind(job_type.as_str().to_owned());
    }
    if let Some(before) = query.before {
        sql.push(" AND id < ").push_bind(before);
    }
    sql.push(" ORDER BY id DESC LIMIT ")
        .push_bind(i64::from(query.limit));
    sql
}

/// A row that does not read back as a job.
pub(crate) fn corrupt(id: Uuid, what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("job {id}: {what}"))
}

/// A stored priority level.
pub(crate) fn priority_of(id: Uuid, level: i32) -> Result<Priority, StoreError> {
    Priority::new(i64::from(level)).ok_or_else(|| corrupt(id, format!("priority {level}")))
}

/// A stored non-negative count.
pub(crate) fn count(id: Uuid, value: i32) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| corrupt(id, format!("count {value}")))
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// A typed error as stored.
pub(crate) fn error_json(error: &JobError) -> Value {
    serde_json::to_value(error).unwrap_or_else(|_| json!({"kind": "internal"}))
}

/// The error recorded on a job whose worker's lease ran out.
pub(crate) fn lease_expired_error() -> Value {
    error_json(&JobError::new(
        ErrorKind::Timeout,
        "the worker's lease expired before it reported an outcome (worker stopped or lost)",
    ))
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
            priority: priority_of(id, row.priority)?,
            payload: row.payload,
            max_attempts: count(id, row.max_attempts)?,
            timeout_ms: count(id, row.timeout_ms)?,
            state: row.state.parse().map_err(|e| corrupt(id, e))?,
            attempt: count(id, row.attempt)?,
            run_at: row.run_at,
            lease_until: row.lease_until,
            worker_id: row.worker_id,
            result: row.result,
            error,
            created_at: row.created_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
            updated_at: row.updated_at,
        })
    }
}

/// What settling an attempt writes: the new state, the event, and the outcome columns.
pub(crate) struct SettlementRecord {
    /// The job's new state.
    pub state: JobState,
    /// The timeline event kind.
    pub event: &'static str,
    /// The result column.
    pub result: Option<Value>,
    /// The error column.
    pub error: Option<Value>,
    /// The new `run_at` (retries only).
    pub run_at: Option<DateTime<Utc>>,
    /// The event's detail.
    pub detail: Value,
}

impl From<&Settlement> for SettlementRecord {
    fn from(settlement: &Settlement) -> Self {
        match settlement {
            Settlement::Succeeded(result) => SettlementRecord {
                state: JobState::Succeeded,
                event: "succeeded",
                result: Some(result.clone()),
                error: None,
                run_at: None,
                detail: json!({}),
            },
            Settlement::Retry { error, run_at } => SettlementRecord {
                state: JobState::Queued,
                event: "retrying",
                result: None,
                error: Some(error_json(error)),
                run_at: Some(*run_at),
                detail: json!({"error": error_json(error), "run_at": run_at}),
            },
            Settlement::Failed(error) => SettlementRecord {
                state: JobState::Failed,
                event: "failed",
                result: None,
                error: Some(error_json(error)),
                run_at: None,
                detail: json!({"error": error_json(error)}),
            },
        }
    }
}
