//! One doorbell: claim the job behind it, hand it to its attempt (`crate::attempt`) while
//! renewing its lease, and record the outcome.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};

use super::{Shared, lock};
use crate::attempt::{Entry, Outcome};
use crate::dispatch::Settled;
use crate::job::{Backoff, Rung, Settlement, Strategy};
use crate::kinds::RunningJob;
use crate::memory::Admission;
use crate::metrics::Metrics;
use crate::queue::{Delivery, QueueError};
use crate::store::StoreError;

/// How long recording an outcome may wait for the database to come back.
const SETTLE_BUDGET: Duration = Duration::from_secs(30);

/// The pause after `failures` consecutive failures to reach the database or the queue:
/// 200 ms doubling to 5 s.
pub(super) fn backoff(failures: u32) -> Duration {
    const PAUSES: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
    PAUSES.ceiling(failures.saturating_add(1))
}

/// Claims, runs and settles the job behind one doorbell. When the doorbell names the job's
/// host, the domain's pacer is asked while the job is claimed (one round trip off the job's
/// path); otherwise right after.
pub(super) async fn process(shared: Arc<Shared>, delivery: Delivery, slot: OwnedSemaphorePermit) {
    let lease = shared.config.lease;
    let job_id = delivery.doorbell.job_id;
    let asked = Instant::now();
    let (claimed, mut early) = match &delivery.doorbell.host {
        Some(host) => {
            let (claimed, admission) = tokio::join!(
                claim(&shared, &delivery),
                shared.attempts.ask(host, job_id, lease)
            );
            (claimed, Some(admission))
        }
        None => (claim(&shared, &delivery).await, None),
    };
    let Some(job) = claimed else {
        if let Some(Ok(Admission::Admitted)) = early
            && let Some(host) = &delivery.doorbell.host
        {
            // The slot was taken for a job this worker will not run.
            shared.attempts.release(host, job_id).await;
        }
        return;
    };
    if asked.elapsed() > lease / 3 {
        // The claim waited out a database outage: the slot taken meanwhile may have lapsed,
        // so ask again (a slot still held answers `Holding`).
        early = None;
    }
    start(&shared, &delivery, &job, early, slot).await;
}

/// Claims the jobs behind several doorbells in one round trip, then runs each claimed one
/// in its slot (concurrently); the slots of jobs not claimed free at once.
pub(super) async fn process_many(
    shared: Arc<Shared>,
    batch: Vec<(Delivery, OwnedSemaphorePermit)>,
) {
    let (deliveries, slots): (Vec<Delivery>, Vec<OwnedSemaphorePermit>) = batch.into_iter().unzip();
    let claimed = claim_many(&shared, &deliveries).await;
    let shared = &shared;
    let runs = deliveries
        .iter()
        .zip(claimed)
        .zip(slots)
        .filter_map(|((delivery, job), slot)| {
            let job = job?;
            Some(async move {
                start(shared, delivery, &job, None, slot).await;
            })
        });
    futures::future::join_all(runs).await;
}

/// Admits a claimed job by its domain's pace (unless `early` already asked) and runs it in
/// `slot`.
async fn start(
    shared: &Shared,
    delivery: &Delivery,
    job: &RunningJob,
    early: Option<Result<Admission, QueueError>>,
    slot: OwnedSemaphorePermit,
) {
    let lease = shared.config.lease;
    let span = info_span!(
        "job",
        job_id = %job.id,
        attempt = job.attempt,
        domain = %job.domain,
        job_type = %job.job_type,
    );
    async {
        match shared.attempts.admit(job, early, lease).await {
            Entry::Run => run(shared, delivery, job, slot).await,
            Entry::Defer { until, reason } => defer(shared, delivery, job, until, reason).await,
        }
    }
    .instrument(span)
    .await;
}

/// Sends a job its domain cannot take now back to the queue until `until`, its attempt
/// unspent; this slot serves other domains meanwhile.
async fn defer(
    shared: &Shared,
    delivery: &Delivery,
    job: &RunningJob,
    until: chrono::DateTime<chrono::Utc>,
    reason: &'static str,
) {
    let settlement = Settlement::Deferred { until, reason };
    let recorded = with_store_retries(SETTLE_BUDGET, || {
        shared.dispatcher.settle(delivery, job, &settlement)
    })
    .await;
    if let Err(e) = recorded {
        error!(error = %e, "could not defer the job; the lease will return it");
    }
}

/// Claims the jobs behind `deliveries` as [`claim`] claims one: an outage is waited out; a
/// statement over several rows can lose a deadlock the one-row claim cannot, so on any other
/// failure they are claimed one by one rather than left pending.
async fn claim_many(shared: &Shared, deliveries: &[Delivery]) -> Vec<Option<RunningJob>> {
    let (worker, lease) = (&shared.config.id, shared.config.lease);
    let what = format!("{} jobs", deliveries.len());
    let claimed = through_outages(shared, &what, || {
        shared.dispatcher.claim_many(deliveries, worker, lease)
    })
    .await;
    match claimed {
        Ok(claimed) => claimed,
        Err(e) => {
            warn!(jobs = deliveries.len(), error = %e, "could not claim jobs together; claiming each");
            let mut claimed = Vec::with_capacity(deliveries.len());
            for delivery in deliveries {
                claimed.push(claim(shared, delivery).await);
            }
            claimed
        }
    }
}

/// Claims the job; while the database is down the claim waits (holding its slot, so the
/// worker stops taking doorbells) and retries until it answers or the worker stops.
async fn claim(shared: &Shared, delivery: &Delivery) -> Option<RunningJob> {
    let job_id = delivery.doorbell.job_id;
    let (worker, lease) = (&shared.config.id, shared.config.lease);
    let what = format!("job {job_id}");
    let claimed = through_outages(shared, &what, || {
        shared.dispatcher.claim(delivery, worker, lease)
    })
    .await;
    claimed.unwrap_or_else(|e| {
        // Left unacknowledged: the doorbell stays pending for this consumer.
        error!(%job_id, error = %e, "could not claim job");
        None
    })
}

/// Calls `claim` until the database answers (backing off meanwhile) or the worker stops.
async fn through_outages<T, F, Fut>(
    shared: &Shared,
    what: &str,
    mut claim: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut failures = 0;
    loop {
        match claim().await {
            Err(StoreError::Unavailable(e)) if !shared.stopping.is_cancelled() => {
                failures += 1;
                if failures == 1 {
                    warn!(claiming = what, error = %e, "database unavailable: waiting to claim");
                }
                tokio::select! {
                    () = shared.stopping.cancelled() => {}
                    () = tokio::time::sleep(backoff(failures)) => {}
                }
            }
            other => return other,
        }
    }
}

/// Runs a claimed (and admitted) job and records its outcome. The worker's slot and the
/// domain's are given back as soon as the executor is done, while the outcome is being
/// recorded: the next job starts meanwhile (the take loop stops taking only while claims
/// wait for the database, so outcomes waiting for it do not pile up without bound).
async fn run(shared: &Shared, delivery: &Delivery, job: &RunningJob, slot: OwnedSemaphorePermit) {
    let _busy = shared.gauges.busy();
    let job = job.clone();
    lock(&shared.in_flight).insert(job.id, job.clone());
    let stop = CancellationToken::new();
    lock(&shared.stops).insert(job.id, stop.clone());
    let started = Instant::now();
    let outcome = tokio::select! {
        outcome = shared.attempts.run(&job, &stop) => Some(outcome),
        () = stop.cancelled() => None,
        () = heartbeat(shared, &job, &stop) => None,
    };
    lock(&shared.stops).remove(&job.id);
    drop(slot);
    let elapsed_ms = started.elapsed().as_millis() as u64;
    let release = shared.attempts.release_all(&job);
    let Some(outcome) = outcome else {
        // Cancelled, or the lease was lost: the executor was dropped (browser context
        // disposed) and nothing may be recorded by this worker.
        lock(&shared.in_flight).remove(&job.id);
        info!(
            elapsed_ms,
            "executor stopped: the job was cancelled or its lease lost"
        );
        tokio::join!(release, shared.dispatcher.drop_delivery(delivery));
        return;
    };
    let ran_with = ran_with(&job, &outcome);
    let settlement = shared.config.retry.settle(
        &job,
        outcome.map(|finished| finished.result),
        chrono::Utc::now(),
    );
    log_settlement(&settlement, elapsed_ms);
    let record = with_store_retries(SETTLE_BUDGET, || {
        shared.dispatcher.settle(delivery, &job, &settlement)
    });
    let (recorded, ()) = tokio::join!(record, release);
    lock(&shared.in_flight).remove(&job.id);
    match recorded {
        Ok(Settled::Recorded) => count(
            &shared.metrics,
            &job,
            ran_with,
            &settlement,
            started.elapsed(),
        ),
        Ok(Settled::NotHeld) => {
            info!("job is no longer held by this worker (cancelled or lease lost); outcome dropped")
        }
        // The delivery stays pending; the job keeps its lease, and when it expires the
        // scheduler returns the job to the queue.
        Err(e) => error!(error = %e, "could not record the outcome; the lease will return the job"),
    }
}

/// The strategy that ran an attempt: what its result says, or the rung an `auto` attempt
/// ended on, or the job's own.
fn ran_with(job: &RunningJob, outcome: &Outcome) -> Strategy {
    let said = match outcome {
        Ok(finished) => finished.executed_with,
        Err(error) => error.ended_on().map(Rung::strategy),
    };
    said.unwrap_or(job.strategy)
}

/// Counts a recorded attempt (and the job, when it finished) in `metrics`, under the
/// strategy that ran it.
fn count(
    metrics: &Metrics,
    job: &RunningJob,
    ran_with: Strategy,
    settlement: &Settlement,
    took: Duration,
) {
    let (job_type, strategy) = (job.job_type.as_str(), ran_with.as_str());
    let seconds = took.as_secs_f64();
    match settlement {
        Settlement::Succeeded(_) => {
            metrics.attempt(job_type, strategy, "succeeded", seconds);
            metrics.job_finished(job_type, strategy, "succeeded", "");
        }
        Settlement::Retry { .. } => metrics.attempt(job_type, strategy, "retrying", seconds),
        Settlement::Failed(error) => {
            metrics.attempt(job_type, strategy, "failed", seconds);
            metrics.job_finished(job_type, strategy, "failed", error.kind.as_str());
        }
        Settlement::Deferred { .. } => {}
    }
}

fn log_settlement(settlement: &Settlement, elapsed_ms: u64) {
    match settlement {
        Settlement::Succeeded(_) => info!(elapsed_ms, "job succeeded"),
        Settlement::Retry { error, run_at } => {
            warn!(elapsed_ms, error = %error, %run_at, "attempt failed; retrying")
        }
        Settlement::Failed(error) => warn!(elapsed_ms, error = %error, "job failed"),
        Settlement::Deferred { until, reason } => debug!(%until, reason, "job deferred"),
    }
}

/// Renews the job's lease every third of it; returns (after cancelling `stop`) when the
/// worker no longer holds the job.
async fn heartbeat(shared: &Shared, job: &RunningJob, stop: &CancellationToken) {
    let lease = shared.config.lease;
    loop {
        tokio::time::sleep(lease / 3).await;
        match shared.dispatcher.store().renew(job, lease).await {
            Ok(true) => {
                shared.attempts.renew(job, lease).await;
                debug!("lease renewed")
            }
            Ok(false) => {
                warn!("lease lost (job cancelled, finished or taken back): stopping the executor");
                stop.cancel();
                return;
            }
            Err(e) => warn!(error = %e, "cannot renew the lease; retrying"),
        }
    }
}

/// Retries a store call while the database is unavailable, up to `budget`.
async fn with_store_retries<T, F, Fut>(budget: Duration, mut call: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let deadline = Instant::now() + budget;
    let mut failures = 0;
    loop {
        match call().await {
            Err(StoreError::Unavailable(e)) if Instant::now() < deadline => {
                failures += 1;
                debug!(error = %e, "database unavailable; retrying");
                tokio::time::sleep(backoff(failures)).await;
            }
            other => return other,
        }
    }
}
