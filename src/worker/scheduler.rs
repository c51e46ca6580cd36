//! The scheduler: rings doorbells for due jobs that need one, and reaps expired leases.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::queue::JobQueue;
use crate::store::JobStore;

/// Due jobs rung per store round trip.
const BATCH: u32 = 500;

/// How often the scheduler looks for work.
#[derive(Debug, Clone, Copy)]
pub struct SchedulerConfig {
    /// Between two looks for due jobs.
    pub interval: Duration,
    /// Between two looks for expired leases.
    pub reap_every: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            interval: Duration::from_millis(500),
            reap_every: Duration::from_secs(5),
        }
    }
}

/// Dispatches due jobs (retries, released and unrung jobs) and returns jobs whose lease expired.
pub struct Scheduler {
    store: Arc<dyn JobStore>,
    queue: Arc<dyn JobQueue>,
    config: SchedulerConfig,
}

impl Scheduler {
    /// A scheduler over a store and a queue.
    pub fn new(
        store: Arc<dyn JobStore>,
        queue: Arc<dyn JobQueue>,
        config: SchedulerConfig,
    ) -> Self {
        Scheduler {
            store,
            queue,
            config,
        }
    }

    /// Runs until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(self.config.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_reap: Option<Instant> = None;
        let mut failing = false;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let mut healthy = self.dispatch_due().await;
            if last_reap.is_none_or(|at| at.elapsed() >= self.config.reap_every) {
                last_reap = Some(Instant::now());
                healthy &= self.reap().await;
            }
            if healthy && failing {
                info!("scheduler recovered");
            }
            failing = !healthy;
        }
    }

    /// Rings every due job that needs a doorbell. Returns whether store and queue answered.
    pub async fn dispatch_due(&self) -> bool {
        loop {
            let due = match self.store.take_due(BATCH).await {
                Ok(due) => due,
                Err(e) => {
                    warn!(error = %e, "scheduler cannot read due jobs");
                    return false;
                }
            };
            if due.is_empty() {
                return true;
            }
            if let Err(e) = self.queue.ring(&due).await {
                warn!(error = %e, jobs = due.len(), "scheduler cannot ring doorbells; will retry");
                let ids: Vec<_> = due.iter().map(|bell| bell.job_id).collect();
                if let Err(e) = self.store.mark_unrung(&ids).await {
                    warn!(error = %e, "cannot mark jobs for another ring");
                }
                return false;
            }
            if due.len() < BATCH as usize {
                return true;
            }
        }
    }

    /// Returns running jobs whose lease expired. Returns whether the store answered.
    pub async fn reap(&self) -> bool {
        match self.store.reap_expired(BATCH).await {
            Ok(0) => true,
            Ok(n) => {
                warn!(jobs = n, "returned jobs whose worker lease expired");
                true
            }
            Err(e) => {
                warn!(error = %e, "scheduler cannot reap expired leases");
                false
            }
        }
    }
}
