//! The job domain: the states a job moves through and the transitions between them, its
//! typed errors and timeline, priorities, strategies, targets, and the request-parsing cursor.
//! It knows nothing of storage, queues or job kinds.

pub mod backoff;
pub mod decision;
pub mod error;
pub mod event;
pub mod event_detail;
pub mod fields;
pub mod host_map;
pub mod lifecycle;
pub mod names;
pub mod priority;
pub mod replay;
pub mod spent;
pub mod state;
pub mod step;
pub mod strategy;
pub mod target;
pub mod transition;
pub mod verdict;

use uuid::Uuid;

pub use backoff::Backoff;
pub use decision::{StrategyDecision, TriedRung};
pub use error::{ErrorKind, JobError};
pub use event::{EventKind, JobEvent};
pub use event_detail::EventDetail;
pub use fields::{FieldError, Fields, Problems};
pub use lifecycle::{Hold, Settlement, Snapshot};
pub use names::UnknownName;
pub use priority::Priority;
pub use replay::Replay;
pub use spent::Spent;
pub use state::{JobState, RingState};
pub use step::Step;
pub use strategy::{Rung, Strategy};
pub use target::TargetUrl;
pub use transition::Transition;
pub use verdict::Verdict;

/// The tenant every job belongs to until authentication assigns tenants.
pub const DEFAULT_TENANT: &str = "default";

/// A note that job `job_id` may be ready to run, rung on the level of its priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doorbell {
    /// The job to look at.
    pub job_id: Uuid,
    /// The level it rings on.
    pub priority: Priority,
    /// The host the job targets, when the ringer knew it: the worker then asks the
    /// domain's pacer while it claims the job, not after.
    pub host: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>().ok(), Some(*state));
        }
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>().ok(), Some(*kind));
        }
        assert!("turbo".parse::<Strategy>().is_err());
    }
}
