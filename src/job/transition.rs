//! A decided change of a job row: what the row must look like for the change to apply (the
//! guard), what it becomes, and the timeline event that records it. The domain decides
//! transitions ([`super::lifecycle`]); stores only apply them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{EventDetail, EventKind, JobError, JobState, Priority, RingState, Strategy};

/// What a job row must hold for a transition to apply. Anything else and the transition is
/// refused (the store changes nothing), which is how a late or duplicated actor is fenced off.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Guard {
    /// The state the job must be in.
    pub state: Option<JobState>,
    /// The attempt the job must be at (with `worker`, the fencing token of a running attempt).
    pub attempt: Option<u32>,
    /// The worker that must hold the job.
    pub worker: Option<String>,
    /// The tenant that must own the job.
    pub tenant: Option<String>,
    /// Only when the running attempt's lease has run out.
    pub lease_expired: bool,
    /// Only when the job is due (`run_at` has passed).
    pub due: bool,
}

/// How a timestamp column changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeChange {
    /// Left as it is.
    #[default]
    Keep,
    /// Set to NULL.
    Clear,
    /// Set to the store's clock now.
    Now,
    /// Set to the store's clock now plus a duration.
    After(Duration),
    /// Set to a given time.
    At(DateTime<Utc>),
}

/// How the attempt counter changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttemptChange {
    /// Left as it is.
    #[default]
    Keep,
    /// Up by one: a claim opens an attempt.
    Next,
    /// Down by one: a deferred claim gives its attempt back, unspent.
    Back,
}

/// How a JSON column (`result`) changes.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ValueChange<T> {
    /// Left as it is.
    #[default]
    Keep,
    /// Set to NULL.
    Clear,
    /// Set to a value.
    Set(T),
}

/// The event a transition appends to the job's timeline (attempt and worker come from the
/// changed row).
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    /// What happened.
    pub kind: EventKind,
    /// Event-specific details.
    pub detail: Value,
}

impl EventRecord {
    /// The event `detail` tells of (its kind follows from it).
    pub fn of(detail: EventDetail) -> EventRecord {
        EventRecord {
            kind: detail.kind(),
            detail: detail.to_value(),
        }
    }
}

/// A decided change: the guard, the new column values, and the event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transition {
    /// What the row must hold.
    pub guard: Guard,
    /// The new state, when it changes.
    pub state: Option<JobState>,
    /// How the attempt counter changes.
    pub attempt: AttemptChange,
    /// The worker now holding the job.
    pub worker: Option<String>,
    /// When the job is due.
    pub run_at: TimeChange,
    /// Until when the running attempt is held.
    pub lease_until: TimeChange,
    /// When the latest attempt started.
    pub started_at: TimeChange,
    /// When the job reached a terminal state.
    pub finished_at: TimeChange,
    /// Whether the job's doorbell must be rung, or is being rung.
    pub ring: Option<RingState>,
    /// The result of the job.
    pub result: ValueChange<Value>,
    /// The error of the last failed attempt.
    pub error: ValueChange<JobError>,
    /// A new attempt budget.
    pub max_attempts: Option<u32>,
    /// A new strategy.
    pub strategy: Option<Strategy>,
    /// A new priority.
    pub priority: Option<Priority>,
    /// The timeline event, if the change is one the timeline shows.
    pub event: Option<EventRecord>,
}
