//! What each kind of event says about its job: one type per kind, so the detail written is
//! the detail the contract shows (`JobEvent` is typed by its `kind`), and an event's kind
//! follows from its detail.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{EventKind, JobError, JobState, Priority, Strategy};

/// `created`: the job was submitted.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CreatedDetail {
    /// Its priority.
    pub priority: Priority,
    /// When it is due, when it was scheduled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_at: Option<DateTime<Utc>>,
}

/// `dispatched`: the scheduler rang the job's doorbell.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DispatchedDetail {
    /// The scheduler's leadership term.
    pub term: i64,
    /// Set when it was rung again because the queue lost its doorbell.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    #[schema(required = false)]
    pub queue_lost: bool,
}

/// `started` and `succeeded`: nothing beyond the event itself.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct NoDetail {}

/// `retrying`: the attempt failed; another is due later.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RetryingDetail {
    /// Why the attempt failed.
    pub error: JobError,
    /// When the next attempt is due.
    pub run_at: DateTime<Utc>,
}

/// `failed`: the attempt failed and the job is finished.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FailedDetail {
    /// Why.
    pub error: JobError,
}

/// `deferred`: claimed, but its domain's pace held it back, or another job was saving its
/// profile.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeferredDetail {
    /// When it comes back.
    pub until: DateTime<Utc>,
    /// `backoff`, `cap` or `rate` (its domain's pace), or `profile` (another job holds its
    /// profile's writer lease).
    pub reason: &'static str,
}

/// `released`: its worker was stopping and put it back untouched.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReleasedDetail {
    /// Why.
    pub reason: &'static str,
}

/// `cancelled`: cancelled on request.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CancelledDetail {
    /// The state it was cancelled from.
    pub from: JobState,
}

/// `retried`: replayed on request with a fresh budget.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RetriedDetail {
    /// The state it was replayed from.
    pub from: JobState,
    /// Its strategy from now on.
    pub strategy: Strategy,
    /// Its priority from now on.
    pub priority: Priority,
    /// Its fresh budget of attempts.
    pub max_attempts: u32,
}

/// `lease_expired`: its worker's lease ran out.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LeaseExpiredDetail {
    /// Where it went: back to `queued`, or `failed` when out of attempts.
    pub state: JobState,
    /// The term of the scheduler that took it back (none at a restart's recovery).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub term: Option<i64>,
}

/// `webhook`: one delivery attempt of the job's callback.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WebhookDetail {
    /// The delivery attempt (1-based).
    pub attempt: u32,
    /// `delivered`, `failed` (tried again at `next_attempt_at`) or `gave_up`.
    pub outcome: &'static str,
    /// Where it was sent.
    pub url: String,
    /// The receiver's status, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it could not be reached, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the next attempt is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Every detail's schema, with each schema they use, for the contract's components.
pub fn schemas() -> Vec<(
    String,
    utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
)> {
    use utoipa::{PartialSchema, ToSchema};
    let mut schemas = Vec::new();
    macro_rules! add {
        ($($detail:ty),+) => {$(
            schemas.push((<$detail>::name().into_owned(), <$detail>::schema()));
            <$detail>::schemas(&mut schemas);
        )+};
    }
    add!(
        CreatedDetail,
        DispatchedDetail,
        NoDetail,
        RetryingDetail,
        FailedDetail,
        DeferredDetail,
        ReleasedDetail,
        CancelledDetail,
        RetriedDetail,
        LeaseExpiredDetail,
        WebhookDetail
    );
    schemas
}

/// An event's detail, by its kind.
#[derive(Debug, Clone, PartialEq)]
pub enum EventDetail {
    /// `created`.
    Created(CreatedDetail),
    /// `dispatched`.
    Dispatched(DispatchedDetail),
    /// `started`.
    Started,
    /// `succeeded`.
    Succeeded,
    /// `retrying`.
    Retrying(RetryingDetail),
    /// `failed`.
    Failed(FailedDetail),
    /// `cancelled`.
    Cancelled(CancelledDetail),
    /// `lease_expired`.
    LeaseExpired(LeaseExpiredDetail),
    /// `released`.
    Released(ReleasedDetail),
    /// `retried`.
    Retried(RetriedDetail),
    /// `deferred`.
    Deferred(DeferredDetail),
    /// `webhook`.
    Webhook(WebhookDetail),
}

impl EventDetail {
    /// The kind of event this detail belongs to.
    pub fn kind(&self) -> EventKind {
        match self {
            EventDetail::Created(_) => EventKind::Created,
            EventDetail::Dispatched(_) => EventKind::Dispatched,
            EventDetail::Started => EventKind::Started,
            EventDetail::Succeeded => EventKind::Succeeded,
            EventDetail::Retrying(_) => EventKind::Retrying,
            EventDetail::Failed(_) => EventKind::Failed,
            EventDetail::Cancelled(_) => EventKind::Cancelled,
            EventDetail::LeaseExpired(_) => EventKind::LeaseExpired,
            EventDetail::Released(_) => EventKind::Released,
            EventDetail::Retried(_) => EventKind::Retried,
            EventDetail::Deferred(_) => EventKind::Deferred,
            EventDetail::Webhook(_) => EventKind::Webhook,
        }
    }

    /// The detail as stored and shown.
    pub fn to_value(&self) -> serde_json::Value {
        let value = match self {
            EventDetail::Created(d) => serde_json::to_value(d),
            EventDetail::Dispatched(d) => serde_json::to_value(d),
            EventDetail::Started | EventDetail::Succeeded => serde_json::to_value(NoDetail {}),
            EventDetail::Retrying(d) => serde_json::to_value(d),
            EventDetail::Failed(d) => serde_json::to_value(d),
            EventDetail::Cancelled(d) => serde_json::to_value(d),
            EventDetail::LeaseExpired(d) => serde_json::to_value(d),
            EventDetail::Released(d) => serde_json::to_value(d),
            EventDetail::Retried(d) => serde_json::to_value(d),
            EventDetail::Deferred(d) => serde_json::to_value(d),
            EventDetail::Webhook(d) => serde_json::to_value(d),
        };
        // Plain data with string keys: serializing it cannot fail.
        value.unwrap_or_default()
    }

    /// The contract's schema name of each kind's detail.
    pub fn schema_name(kind: EventKind) -> std::borrow::Cow<'static, str> {
        use utoipa::ToSchema;
        match kind {
            EventKind::Created => CreatedDetail::name(),
            EventKind::Dispatched => DispatchedDetail::name(),
            EventKind::Started | EventKind::Succeeded => NoDetail::name(),
            EventKind::Retrying => RetryingDetail::name(),
            EventKind::Failed => FailedDetail::name(),
            EventKind::Cancelled => CancelledDetail::name(),
            EventKind::LeaseExpired => LeaseExpiredDetail::name(),
            EventKind::Released => ReleasedDetail::name(),
            EventKind::Retried => RetriedDetail::name(),
            EventKind::Deferred => DeferredDetail::name(),
            EventKind::Webhook => WebhookDetail::name(),
        }
    }
}
