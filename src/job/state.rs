//! Where a job is in its lifecycle, and whether its doorbell still has to be rung.

use super::names::named_enum;

named_enum!(
    /// Where a job is in its lifecycle.
    JobState {
        /// Waiting to run (now, or at `run_at`).
        Queued => "queued",
        /// Claimed by a worker that holds its lease.
        Running => "running",
        /// Finished with a result.
        Succeeded => "succeeded",
        /// Finished with an error, attempts exhausted or not retryable.
        Failed => "failed",
        /// Stopped on request.
        Cancelled => "cancelled",
    }
);

impl JobState {
    /// Whether the job can no longer change state (except by an explicit replay).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

named_enum!(
    /// Where a queued job's doorbell stands. A doorbell is marked `rung` only after it is in the
    /// queue, so a process that dies between the two leaves `ringing`, which the scheduler
    /// notices and rings again; it never leaves a job marked rung without a doorbell.
    RingState {
        /// The job needs a doorbell when it is due; the scheduler rings it.
        Needed => "needed",
        /// A process is ringing it now (since `rung_at`); not yet confirmed in the queue.
        Ringing => "ringing",
        /// Its doorbell was put in the queue at `rung_at`.
        Rung => "rung",
    }
);
