//! The scheduler: rings doorbells for due jobs that need one, reaps expired leases, and
//! reconciles the queue with the store (a flushed Redis, lost or stale doorbells). It runs in
//! every worker process but acts only in the one holding the leadership (an advisory lock).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::job::Priority;
use crate::queue::JobQueue;
use crate::store::{JobStore, Leadership};

/// Due jobs rung per store round trip.
const BATCH: u32 = 500;

/// How often the scheduler looks for work.
#[derive(Debug, Clone, Copy)]
pub struct SchedulerConfig {
    /// Between two looks for due jobs.
    pub interval: Duration,
    /// Between two looks for expired leases.
    pub reap_every: Duration,
    /// Between two reconciliations of the queue with the store.
    pub reconcile_every: Duration,
    /// A doorbell still unfinished after this long while its job is queued was lost (its
    /// consumer died or the queue dropped it): the job is rung again.
    pub redeliver_after: Duration,
    /// How often a process without the leadership tries to take it.
    pub lead_retry: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            interval: Duration::from_millis(500),
            reap_every: Duration::from_secs(5),
            reconcile_every: Duration::from_secs(5),
            redeliver_after: Duration::from_secs(60),
            lead_retry: Duration::from_secs(2),
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
        let mut last_reconcile: Option<Instant> = None;
        let mut leadership: Option<Box<dyn Leadership>> = None;
        let mut next_bid = Instant::now();
        let mut failing = false;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            match leadership.as_mut() {
                Some(held) => {
                    if !held.check().await {
                        warn!("lost the scheduler leadership (its database connection failed)");
                        leadership = None;
                        next_bid = Instant::now() + self.config.lead_retry;
                        continue;
                    }
                }
                None => {
                    if Instant::now() < next_bid {
                        continue;
                    }
                    match self.store.lead().await {
                        Ok(Some(held)) => {
                            info!("this process now runs the scheduler, reaper and reconciler");
                            leadership = Some(held);
                            last_reconcile = None;
                        }
                        Ok(None) => {
                            next_bid = Instant::now() + self.config.lead_retry;
                            continue;
                        }
                        Err(e) => {
                            debug!(error = %e, "cannot bid for the scheduler leadership");
                            next_bid = Instant::now() + self.config.lead_retry;
                            continue;
                        }
                    }
                }
            }
            let mut healthy = true;
            if last_reconcile.is_none_or(|at| at.elapsed() >= self.config.reconcile_every) {
                last_reconcile = Some(Instant::now());
                healthy &= self.reconcile().await;
            }
            healthy &= self.dispatch_due().await;
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

    /// Re-dispatches what the queue lost: every queued job after a flush or restart, jobs
    /// whose delivery went stale (consumer gone), and due jobs whose doorbell vanished while
    /// their level has nothing waiting. Returns whether store and queue answered.
    pub async fn reconcile(&self) -> bool {
        match self.queue.intact().await {
            Ok(true) => {}
            Ok(false) => {
                // Doorbells first, marker last: if this stops half-way, the next run redoes it.
                match self.store.unring_due().await {
                    Ok(n) => {
                        if n > 0 {
                            warn!(
                                jobs = n,
                                "the queue lost its doorbells (flushed or restarted): re-dispatching every queued job"
                            );
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "cannot re-dispatch after a queue loss");
                        return false;
                    }
                }
                if let Err(e) = self.queue.repair().await {
                    warn!(error = %e, "cannot repair the queue");
                    return false;
                }
            }
            Err(e) => {
                debug!(error = %e, "queue unavailable; reconciling later");
                return false;
            }
        }
        match self.queue.sweep(self.config.redeliver_after).await {
            Ok(jobs) if !jobs.is_empty() => {
                info!(deliveries = jobs.len(), "took back stale deliveries");
                if let Err(e) = self.store.mark_unrung(&jobs).await {
                    warn!(error = %e, "cannot re-ring jobs of stale deliveries");
                    return false;
                }
            }
            Ok(_) => {}
            Err(e) => {
                warn!(error = %e, "cannot sweep the queue");
                return false;
            }
        }
        // A level with nothing waiting cannot be hiding a queued job's doorbell.
        let idle: Vec<Priority> = match self.queue.stats().await {
            Ok(levels) => levels
                .iter()
                .filter(|level| level.length <= level.pending)
                .map(|level| level.priority)
                .collect(),
            Err(_) => return false,
        };
        if !idle.is_empty() {
            match self
                .store
                .unring_stale(self.config.redeliver_after, &idle)
                .await
            {
                Ok(0) => {}
                Ok(n) => warn!(
                    jobs = n,
                    "re-dispatching queued jobs whose doorbell was lost"
                ),
                Err(e) => {
                    warn!(error = %e, "cannot re-dispatch stale jobs");
                    return false;
                }
            }
        }
        true
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
