//! Ringing doorbells of jobs just marked `ringing` (created or replayed) and having the rings
//! confirmed; a ring the queue refuses is left to the scheduler.

use std::sync::Arc;

use tracing::warn;
use uuid::Uuid;

use super::confirm::Confirmer;
use crate::job::{Doorbell, RingState};
use crate::queue::{JobQueue, Signals};
use crate::store::{Job, JobStore};

/// What publishing new jobs needs of them, taken before they are handed on.
pub(super) struct News {
    ids: Vec<Uuid>,
    due: Vec<Doorbell>,
}

impl News {
    /// The jobs to announce, and the doorbells of those marked `ringing` (due now).
    pub(super) fn of<'a>(jobs: impl Iterator<Item = &'a Job> + Clone) -> News {
        News {
            ids: jobs.clone().map(|job| job.id).collect(),
            due: jobs
                .filter(|job| job.ring == RingState::Ringing)
                .map(Job::doorbell)
                .collect(),
        }
    }
}

/// Rings, confirms and announces for the dispatcher and its coalescer.
#[derive(Clone)]
pub(super) struct Bells {
    store: Arc<dyn JobStore>,
    queue: Arc<dyn JobQueue>,
    signals: Arc<dyn Signals>,
    confirmer: Confirmer,
}

impl Bells {
    /// Bells over `store`, `queue` and `signals` (starts the task that confirms rings).
    pub(super) fn new(
        store: Arc<dyn JobStore>,
        queue: Arc<dyn JobQueue>,
        signals: Arc<dyn Signals>,
    ) -> Bells {
        Bells {
            confirmer: Confirmer::start(store.clone()),
            store,
            queue,
            signals,
        }
    }

    /// Announces jobs just created or replayed and rings those marked `ringing` (due now).
    pub(super) async fn publish<'a>(&self, jobs: impl Iterator<Item = &'a Job> + Clone) {
        self.spread(News::of(jobs)).await;
    }

    /// Announces and rings what [`News::of`] took from jobs that may be gone by now.
    pub(super) async fn spread(&self, news: News) {
        self.announce(&news.ids);
        self.ring(&news.due).await;
    }

    /// Announces that these jobs changed.
    pub(super) fn announce(&self, ids: &[Uuid]) {
        if !ids.is_empty() {
            self.signals.announce_changes(ids);
        }
    }

    /// Rings doorbells of jobs marked `ringing` and has them confirmed; when the queue is
    /// down, leaves them to the scheduler (marked `needed`).
    pub(super) async fn ring(&self, bells: &[Doorbell]) {
        if bells.is_empty() {
            return;
        }
        let ids: Vec<Uuid> = bells.iter().map(|bell| bell.job_id).collect();
        match self.queue.ring(bells).await {
            Ok(()) => self.confirmer.confirm(&ids),
            Err(e) => {
                warn!(jobs = ids.len(), error = %e, "could not ring; the scheduler will");
                if let Err(e) = self.store.mark_needed(&ids, None).await {
                    // Left `ringing`: the scheduler rings them once the grace has passed.
                    warn!(error = %e, "could not hand the doorbells to the scheduler");
                }
            }
        }
    }
}
