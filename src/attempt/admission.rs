//! Whether a claimed job may start now by its domain's pace.

use chrono::{DateTime, Utc};
use tracing::{debug, warn};

use crate::memory::Admission;
use crate::queue::QueueError;

/// What the pacer said of a claimed job.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// Run it now (a slot of its domain is held for it).
    Run,
    /// Its domain cannot take it before `until`: it goes back to the queue meanwhile, its
    /// attempt unspent.
    Defer {
        /// When its domain can take it.
        until: DateTime<Utc>,
        /// Why: `backoff`, `cap` or `rate`, or `profile` (its profile's writer is busy).
        reason: &'static str,
    },
}

/// The entry the pacer's answer gives. A pacer that cannot be reached admits (it costs at
/// most a burst).
pub(super) fn entry(admission: Result<Admission, QueueError>) -> Entry {
    match admission {
        Ok(Admission::Admitted | Admission::Holding) => Entry::Run,
        Ok(Admission::Deferred { wait_ms, reason }) => {
            debug!(wait_ms, reason, "domain busy: job deferred");
            Entry::Defer {
                until: Utc::now() + chrono::Duration::milliseconds(wait_ms),
                reason,
            }
        }
        Err(e) => {
            warn!(error = %e, "the pacer cannot be reached: running without pacing");
            Entry::Run
        }
    }
}
