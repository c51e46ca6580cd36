//! A job as the store keeps it and the API shows it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::job::{Doorbell, JobError, JobState, Priority, RingState, Strategy};
use crate::kinds::JobType;

/// A job as stored: its request, where it is in its lifecycle, and its outcome.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Job {
    /// Time-ordered identifier (UUID v7).
    pub id: Uuid,
    /// The tenant that owns the job.
    pub tenant_id: String,
    /// The target's host name, lower-case.
    pub domain: String,
    /// The target url.
    pub url: String,
    /// What the job does.
    pub job_type: JobType,
    /// How the job reaches the web.
    pub strategy: Strategy,
    /// 1 (most urgent) to 5.
    pub priority: Priority,
    /// The job type's options, as parsed.
    pub payload: Value,
    /// How many attempts the job may use.
    pub max_attempts: u32,
    /// How long one attempt may run, in milliseconds.
    pub timeout_ms: u32,
    /// Where the job is in its lifecycle.
    pub state: JobState,
    /// The number of attempts started so far.
    pub attempt: u32,
    /// When the job is (or was) due to run.
    pub run_at: DateTime<Utc>,
    /// Until when the running attempt's worker holds the job.
    pub lease_until: Option<DateTime<Utc>>,
    /// The worker that runs (or last ran) the job.
    pub worker_id: Option<String>,
    /// The result of the successful attempt.
    pub result: Option<Value>,
    /// The error of the last failed attempt.
    pub error: Option<JobError>,
    /// When the job was submitted.
    pub created_at: DateTime<Utc>,
    /// When the latest attempt started.
    pub started_at: Option<DateTime<Utc>>,
    /// When the job reached a terminal state.
    pub finished_at: Option<DateTime<Utc>>,
    /// When the job last changed.
    pub updated_at: DateTime<Utc>,
    /// Where its doorbell stands (internal: who rings it next).
    #[serde(skip)]
    #[schema(ignore)]
    pub ring: RingState,
    /// Where the job is POSTed when it finishes (signed; see the README's Webhooks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback: Option<Callback>,
    /// Webhook delivery attempts of its current terminal state (internal: fences couriers).
    #[serde(skip)]
    #[schema(ignore)]
    pub hook_attempt: u32,
}

/// A job's webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Callback {
    /// The url the finished job is POSTed to.
    pub url: String,
}

impl Job {
    /// The doorbell that says the job may be ready.
    pub fn doorbell(&self) -> Doorbell {
        Doorbell {
            job_id: self.id,
            priority: self.priority,
            host: Some(self.domain.clone()),
        }
    }
}
