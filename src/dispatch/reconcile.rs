//! Reconciling the queue with the store: re-dispatching what the queue lost. Run by the
//! scheduler's leader, fenced by its term, in bounded steps: a lost queue's backlog is gone
//! through a page at a time across ticks ([`Recovery`]), and every other look marks at most
//! a bounded number of jobs per call.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::{DispatchError, Dispatcher};
use crate::job::Priority;
use crate::queue::Continuity;
use crate::store::{QueuePosition, Term, Unring};

/// How long a ring may stay unconfirmed before its job is rung again (its ringer died between
/// marking the job and ringing, or its confirmation was lost).
pub const RING_GRACE: Duration = Duration::from_secs(10);

/// Jobs looked at per page of a recovery, and marked at most per other look.
const PAGE: u32 = 1_000;
/// Pages of a recovery per call, so one tick of the scheduler stays short.
const PAGES_PER_STEP: u32 = 10;

/// Re-dispatching a queue that lost its doorbells: where the look through the queued jobs
/// stands. Held by the leader across ticks; a new leader starts over (the jobs already
/// re-rung were rung after the loss, and are passed by).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    lost_before: DateTime<Utc>,
    from: QueuePosition,
    rung: u64,
}

impl Dispatcher {
    /// Re-dispatches what the queue lost: jobs whose delivery went stale (their consumer
    /// died), rings never confirmed, and due jobs whose doorbell vanished while their level
    /// has nothing waiting. A queue that lost everything (flushed, restarted) is answered with
    /// a [`Recovery`] for the caller to carry out with [`Dispatcher::recover`].
    pub async fn reconcile(
        &self,
        term: Term,
        redeliver_after: Duration,
    ) -> Result<Option<Recovery>, DispatchError> {
        let recovery = match self.queue.continuity().await? {
            Continuity::LostBefore(lost_before) => Some(Recovery {
                lost_before,
                from: QueuePosition::START,
                rung: 0,
            }),
            Continuity::Intact => None,
        };
        let stale = self.queue.sweep(redeliver_after).await?;
        if !stale.is_empty() {
            info!(deliveries = stale.len(), "took back stale deliveries");
            self.store.mark_needed(&stale, Some(term)).await?;
        }
        let unconfirmed = self
            .store
            .unring(term, &Unring::Unconfirmed(RING_GRACE), PAGE)
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
            .unring(term, &Unring::Stale(redeliver_after, idle), PAGE)
            .await?;
        if lost > 0 {
            warn!(
                jobs = lost,
                "re-dispatching queued jobs whose doorbell was lost"
            );
        }
        Ok(recovery)
    }

    /// Carries a recovery a few pages further: the doorbells of jobs rung before the loss
    /// are rung again, then marked rung (a doorbell is marked only once it is in the queue;
    /// if this stops in between, the next look rings them again: a duplicate at worst).
    /// `true` once the whole queue was gone through and the queue recorded it.
    pub async fn recover(
        &self,
        term: Term,
        recovery: &mut Recovery,
    ) -> Result<bool, DispatchError> {
        for _ in 0..PAGES_PER_STEP {
            let page = self
                .store
                .lost_page(recovery.lost_before, recovery.from, PAGE)
                .await?;
            if !page.lost.is_empty() {
                self.queue.ring(&page.lost).await?;
                let ids: Vec<uuid::Uuid> = page.lost.iter().map(|bell| bell.job_id).collect();
                recovery.rung += self
                    .store
                    .rung_again(term, &ids, recovery.lost_before)
                    .await?;
                self.signals.announce_changes(&ids);
            }
            let Some(next) = page.next else {
                // Marker last: if this stops half-way, the next leader goes through again.
                self.queue.repair().await?;
                if recovery.rung > 0 {
                    warn!(
                        jobs = recovery.rung,
                        "the queue lost its doorbells (flushed or restarted): rang every queued job again"
                    );
                }
                return Ok(true);
            };
            recovery.from = next;
        }
        Ok(false)
    }
}
