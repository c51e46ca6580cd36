//! A submission's deadline, carried to its write: the write starts only while time is left,
//! and the database ends its statements by the deadline, so the request's answer is what
//! happened — stored, or nothing stored — and never a timeout over a commit still running.

use std::time::Duration;

use tokio::time::Instant;

use crate::quota::Permit;
use crate::store::StoreError;

/// Less than this left, a write is not started: it could not finish.
const LEAST_BUDGET: Duration = Duration::from_millis(100);

/// When a submission's write must be done by.
#[derive(Debug, Clone, Copy)]
pub struct WriteBy(Instant);

impl WriteBy {
    /// Done by `deadline`.
    pub fn at(deadline: Instant) -> WriteBy {
        WriteBy(deadline)
    }

    /// The time left, or "unavailable" (nothing written) when too little is.
    pub fn budget(&self) -> Result<Duration, StoreError> {
        let left = self.0.saturating_duration_since(Instant::now());
        if left < LEAST_BUDGET {
            return Err(StoreError::TimedOut(
                "the request's deadline passed before its jobs could be written: nothing was stored"
                    .into(),
            ));
        }
        Ok(left)
    }

    /// The earlier of two deadlines.
    pub fn min(self, other: WriteBy) -> WriteBy {
        WriteBy(self.0.min(other.0))
    }
}

/// What the API admitted for a submission: its tenant, its quota permit (settled once the
/// write is done) and its deadline.
#[derive(Debug)]
pub struct Admitted {
    /// The tenant the jobs belong to.
    pub tenant: String,
    /// The tenant's quota admission.
    pub permit: Permit,
    /// When the write must be done by.
    pub write_by: WriteBy,
}
