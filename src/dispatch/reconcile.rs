//! Reconciling the queue with the store: re-dispatching what the queue lost. Run by the
//! scheduler's leader, fenced by its term.

use std::time::Duration;

use tracing::{info, warn};

use super::{DispatchError, Dispatcher};
use crate::job::Priority;
use crate::queue::Continuity;
use crate::store::{Term, Unring};

/// How long a ring may stay unconfirmed before its job is rung again (its ringer died between
/// marking the job and ringing, or its confirmation was lost).
pub const RING_GRACE: Duration = Duration::from_secs(10);

impl Dispatcher {
    /// Re-dispatches what the queue lost: every queued job after a flush or restart, jobs
    /// whose delivery went stale (its consumer died), rings never confirmed, and due jobs
    /// whose doorbell vanished while their level has nothing waiting.
    pub async fn reconcile(
        &self,
        term: Term,
        redeliver_after: Duration,
    ) -> Result<(), DispatchError> {
        if let Continuity::LostBefore(created) = self.queue.continuity().await? {
            // Doorbells first, marker last: if this stops half-way, the next run redoes it.
            let n = self
                .store
                .unring(term, &Unring::LostBefore(created))
                .await?;
            if n > 0 {
                warn!(
                    jobs = n,
                    "the queue lost its doorbells (flushed or restarted): re-dispatching every queued job"
                );
            }
            self.queue.repair().await?;
        }
        let stale = self.queue.sweep(redeliver_after).await?;
        if !stale.is_empty() {
            info!(deliveries = stale.len(), "took back stale deliveries");
            self.store.mark_needed(&stale, Some(term)).await?;
        }
        let unconfirmed = self
            .store
            .unring(term, &Unring::Unconfirmed(RING_GRACE))
            .await?;
        if unconfirmed > 0 {
            warn!(
                jobs = unconfirmed,
                "re-dispatching jobs whose ring was never confirmed"
            );
        }
        // A level with nothing waiting cannot be hiding a queued job's doorbell.
        let idle: Vec<Priority> = self
            .queue
            .stats()
            .await?
            .iter()
            .filter(|level| level.length <= level.pending)
            .map(|level| level.priority)
            .collect();
        let lost = self
            .store
            .unring(term, &Unring::Stale(redeliver_after, idle))
            .await?;
        if lost > 0 {
            warn!(
                jobs = lost,
                "re-dispatching queued jobs whose doorbell was lost"
            );
        }
        Ok(())
    }
}
