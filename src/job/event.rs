//! A job's timeline: what happened to it, in order.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::names::named_enum;

named_enum!(
    /// What happened to a job.
    EventKind {
        /// Submitted.
        Created => "created",
        /// The scheduler rang its doorbell (it became due, or its doorbell was lost).
        Dispatched => "dispatched",
        /// A worker claimed it and started an attempt.
        Started => "started",
        /// The attempt succeeded.
        Succeeded => "succeeded",
        /// The attempt failed and another one is due later.
        Retrying => "retrying",
        /// The attempt failed and the job is finished.
        Failed => "failed",
        /// Cancelled on request.
        Cancelled => "cancelled",
        /// Its worker's lease ran out; it went back to the queue or failed.
        LeaseExpired => "lease_expired",
        /// Its worker was stopping and put it back in the queue untouched.
        Released => "released",
        /// Replayed on request with a fresh attempt budget.
        Retried => "retried",
        /// Claimed, but pacing held its domain back: queued again, its attempt unspent.
        Deferred => "deferred",
        /// A webhook delivery attempt (delivered, failed and retried later, or given up).
        Webhook => "webhook",
    }
);

/// One entry of a job's timeline.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobEvent {
    /// Monotonic event number.
    pub id: i64,
    /// The job the event belongs to.
    pub job_id: Uuid,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened.
    pub kind: EventKind,
    /// The attempt the event belongs to (0 before the first attempt).
    pub attempt: u32,
    /// The worker involved, if any.
    pub worker_id: Option<String>,
    /// Event-specific details.
    pub detail: Value,
}
