//! The scheduler: rings doorbells for due jobs that need one, reaps expired leases, and
//! reconciles the queue with the store. It runs in every worker process but acts only in the
//! one that holds the leadership, and only under its term.

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::leadership::Leadership;
use crate::dispatch::{Dispatcher, Recovery};
use crate::retention::Purger;
use crate::store::Term;

/// Expired leases taken back per store round trip.
const REAP_BATCH: u32 = 500;

/// How often the scheduler looks for work, and how long its leadership lasts.
#[derive(Debug, Clone, Copy)]
pub struct SchedulerConfig {
    /// Between two looks for due jobs (and bids for the leadership).
    pub interval: Duration,
    /// Between two looks for expired leases.
    pub reap_every: Duration,
    /// Between two reconciliations of the queue with the store.
    pub reconcile_every: Duration,
    /// A doorbell still unfinished after this long while its job is queued was lost (its
    /// consumer died or the queue dropped it): the job is rung again.
    pub redeliver_after: Duration,
    /// How long the leadership lasts without renewal: another process takes over within
    /// about this long after the leader stops renewing.
    pub leader_lease: Duration,
}

impl SchedulerConfig {
    /// Looks every `interval`, reaps every other look and reconciles every tenth.
    pub fn new(interval: Duration, redeliver_after: Duration, leader_lease: Duration) -> Self {
        SchedulerConfig {
            interval,
            reap_every: interval * 2,
            reconcile_every: interval * 10,
            redeliver_after,
            leader_lease,
        }
    }
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig::new(
            Duration::from_millis(500),
            Duration::from_secs(60),
            Duration::from_secs(5),
        )
    }
}

/// Dispatches due jobs (scheduled, retried, released, lost) and returns expired leases.
pub struct Scheduler {
    dispatcher: Dispatcher,
    holder: String,
    config: SchedulerConfig,
    purger: Option<Purger>,
}

/// When each periodic chore last ran, and a recovery under way.
#[derive(Default)]
struct Chores {
    reaped: Option<tokio::time::Instant>,
    reconciled: Option<tokio::time::Instant>,
    recovery: Option<Recovery>,
    failing: bool,
}

impl Scheduler {
    /// A scheduler that leads under the name `holder` (the worker's id).
    pub fn new(dispatcher: Dispatcher, holder: &str, config: SchedulerConfig) -> Self {
        Scheduler {
            dispatcher,
            holder: holder.to_owned(),
            config,
            purger: None,
        }
    }

    /// Deletes expired jobs too, beside the looks, while it leads.
    pub fn with_purger(mut self, purger: Purger) -> Self {
        self.purger = Some(purger);
        self
    }

    /// Runs until `shutdown` is cancelled, then gives the leadership up.
    pub async fn run(self, shutdown: CancellationToken) {
        let store = self.dispatcher.store().clone();
        let mut leadership = Leadership::new(store, self.holder.clone(), self.config.leader_lease);
        let mut ticker = tokio::time::interval(self.config.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut chores = Chores::default();
        let mut led: Option<Term> = None;
        // The purge runs on its own task, told of each term: its batches and rests never
        // hold up a look for due jobs.
        let (terms, held) = watch::channel(None);
        let purge = self
            .purger
            .clone()
            .map(|purger| tokio::spawn(purger.run(held, shutdown.child_token())));
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let term = leadership.current().await;
            if term != led {
                // A new term starts with a reconciliation: the last leader may have left work.
                chores.reconciled = None;
                chores.recovery = None;
                led = term;
                terms.send_replace(term);
            }
            if let Some(term) = term {
                self.tick(term, &mut chores).await;
            }
        }
        drop(terms);
        if let Some(purge) = purge {
            // Cancelled with the rest; its open batch, if any, rolls back.
            let _ = purge.await;
        }
        leadership.resign().await;
    }

    /// One look, under `term`: reconcile and reap when due, ring due jobs.
    async fn tick(&self, term: Term, chores: &mut Chores) {
        let due = |last: Option<tokio::time::Instant>, every: Duration| {
            last.is_none_or(|at| at.elapsed() >= every)
        };
        let mut healthy = true;
        if due(chores.reconciled, self.config.reconcile_every) {
            chores.reconciled = Some(tokio::time::Instant::now());
            match self
                .dispatcher
                .reconcile(term, self.config.redeliver_after)
                .await
            {
                Ok(Some(recovery)) if chores.recovery.is_none() => {
                    warn!(
                        "the queue lost its doorbells (flushed or restarted): re-dispatching every queued job, a page at a time"
                    );
                    chores.recovery = Some(recovery);
                }
                Ok(_) => {}
                Err(e) => {
                    warn!(error = %e, "cannot reconcile the queue; will retry");
                    healthy = false;
                }
            }
        }
        if let Some(recovery) = chores.recovery.as_mut() {
            match self.dispatcher.recover(term, recovery).await {
                Ok(true) => chores.recovery = None,
                Ok(false) => {}
                Err(e) => {
                    warn!(error = %e, "cannot re-dispatch the lost queue; will retry");
                    healthy = false;
                }
            }
        }
        if let Err(e) = self.dispatcher.dispatch_due(term).await {
            warn!(error = %e, "cannot ring due jobs; will retry");
            healthy = false;
        }
        if due(chores.reaped, self.config.reap_every) {
            chores.reaped = Some(tokio::time::Instant::now());
            match self.dispatcher.reap_expired(term, REAP_BATCH).await {
                Ok(0) => {}
                Ok(n) => warn!(jobs = n, "returned jobs whose worker lease expired"),
                Err(e) => {
                    warn!(error = %e, "cannot reap expired leases; will retry");
                    healthy = false;
                }
            }
        }
        if healthy && chores.failing {
            info!("scheduler recovered");
        }
        chores.failing = !healthy;
    }
}
