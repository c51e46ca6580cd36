//! The dispatcher: the one owner of the store-then-queue sequence. A job is a row before it
//! is a doorbell, and its doorbell is marked rung only once it is in the queue, so whatever
//! stops between the two steps, the scheduler rings the job again; nothing is lost.
//!
//! The API submits, cancels and replays through it, the worker claims, settles and hands back
//! through it, and the scheduler dispatches due jobs, reaps leases and reconciles the queue
//! through it. Every change that adds to a job's timeline is announced ([`Signals`]), so
//! whoever waits on the job wakes.

mod bells;
mod claim;
mod coalesce;
mod confirm;
mod group;
mod reconcile;
mod settle;
mod write_by;

use crate::auth::Scope;
use crate::persist::Cause;
use std::sync::Arc;

use tracing::{debug, error, warn};
use uuid::Uuid;

use crate::job::{Replay, Settlement};
use crate::kinds::RunningJob;
use crate::queue::{Delivery, JobQueue, QueueError, Signals};
use crate::quota::Outcome;
use crate::spec::JobSpec;
use crate::store::{
    CancelOutcome, Created, IdempotencyKey, Job, JobStore, NewJob, ReplayOutcome, StoreError, Term,
};

pub use reconcile::{RING_GRACE, Recovery};
pub use write_by::{Admitted, WriteBy};

use bells::Bells;
use claim::Claimer;
use coalesce::Coalescer;
use settle::Settler;

/// Due jobs rung per store round trip.
const BATCH: u32 = 500;
/// Round trips of due jobs per look, so one look of the scheduler stays short however
/// large the backlog (the next look goes on).
const BATCHES_PER_LOOK: u32 = 20;

/// Why the scheduler's dispatch or reconciliation stopped short.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The store did not answer.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The queue did not answer.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

/// What recording an outcome came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Recorded; the delivery is acknowledged.
    Recorded,
    /// The worker no longer held the job (cancelled, or its lease taken over): nothing
    /// recorded; the delivery is acknowledged.
    NotHeld,
}

/// Owns the store and the queue together.
#[derive(Clone)]
pub struct Dispatcher {
    store: Arc<dyn JobStore>,
    queue: Arc<dyn JobQueue>,
    signals: Arc<dyn Signals>,
    bells: Bells,
    coalescer: Coalescer,
    claimer: Claimer,
    settler: Settler,
}

impl Dispatcher {
    /// A dispatcher over `store` and `queue` that announces changes on `signals` (starts the
    /// tasks that coalesce submissions, confirm rings and record outcomes together).
    pub fn new(
        store: Arc<dyn JobStore>,
        queue: Arc<dyn JobQueue>,
        signals: Arc<dyn Signals>,
    ) -> Dispatcher {
        let bells = Bells::new(store.clone(), queue.clone(), signals.clone());
        let coalescer = Coalescer::start(store.clone(), bells.clone());
        let claimer = Claimer::start(store.clone());
        let settler = Settler::start(store.clone(), queue.clone(), signals.clone());
        Dispatcher {
            store,
            queue,
            signals,
            bells,
            coalescer,
            claimer,
            settler,
        }
    }

    /// Worker reports, cancel and change notices.
    pub fn signals(&self) -> &Arc<dyn Signals> {
        &self.signals
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn JobStore> {
        &self.store
    }

    /// The queue.
    pub fn queue(&self) -> &Arc<dyn JobQueue> {
        &self.queue
    }

    /// Records a job and rings its doorbell when it is due now; a scheduled job is rung by
    /// the scheduler when due. Jobs submitted at once share their commit (see `coalesce`);
    /// one with an idempotency key is written alone. Either way the write runs to the end
    /// even if the caller stops waiting, starts only before the submission's deadline and
    /// ends by it (else nothing is stored), and its quota permit is settled once it is done.
    pub async fn submit(
        &self,
        admitted: Admitted,
        spec: &JobSpec,
        key: Option<&IdempotencyKey>,
    ) -> Result<Created, StoreError> {
        let Some(key) = key else {
            let job = self.coalescer.submit(admitted, spec).await?;
            return Ok(Created::New(Box::new(job)));
        };
        let (store, bells) = (self.store.clone(), self.bells.clone());
        let (spec, key) = (spec.clone(), key.clone());
        detached(async move {
            let Admitted {
                tenant,
                permit,
                write_by,
            } = admitted;
            let within = write_by.budget()?;
            let created = store.create(&tenant, &spec, Some(&key), Some(within)).await;
            permit.settle(outcome(&created)).await;
            let created = created?;
            if let Created::New(job) = &created {
                bells.publish(std::iter::once(job.as_ref())).await;
            }
            Ok(created)
        })
        .await
    }

    /// Records a batch of one tenant's jobs in one commit, all or none, and rings those due
    /// now in one round trip; with an idempotency key, a repeated batch answers the same
    /// jobs. Like a single submission, the batch is written only before its deadline and
    /// its write ends by it: the answer says what was stored, and nothing is stored when it
    /// says otherwise.
    pub async fn submit_batch(
        &self,
        admitted: Admitted,
        specs: Vec<JobSpec>,
        key: Option<IdempotencyKey>,
    ) -> Result<Created<Vec<Job>>, StoreError> {
        let (store, bells) = (self.store.clone(), self.bells.clone());
        detached(async move {
            let Admitted {
                tenant,
                permit,
                write_by,
            } = admitted;
            let within = write_by.budget()?;
            let created = match &key {
                Some(key) => {
                    store
                        .create_batch_once(&tenant, &specs, key, Some(within))
                        .await
                }
                None => {
                    let jobs: Vec<NewJob<'_>> = specs
                        .iter()
                        .map(|spec| NewJob {
                            tenant: &tenant,
                            spec,
                        })
                        .collect();
                    store
                        .create_many(&jobs, Some(within))
                        .await
                        .map(Created::New)
                }
            };
            permit.settle(outcome(&created)).await;
            let created = created?;
            if let Created::New(jobs) = &created {
                bells.publish(jobs.iter()).await;
            }
            Ok(created)
        })
        .await
    }

    /// Cancels a queued or running job; a job that may be running is announced to the
    /// workers, so the one running it stops.
    pub async fn cancel(&self, scope: Scope<'_>, id: Uuid) -> Result<CancelOutcome, StoreError> {
        let outcome = self.store.cancel(scope, id).await?;
        if let CancelOutcome::Cancelled(job) = &outcome {
            self.signals.announce_changes(&[id]);
            if job.worker_id.is_some()
                && let Err(e) = self.signals.announce_cancel(id).await
            {
                // The lease renewal notices too, later.
                warn!(job_id = %id, error = %e, "cannot announce the cancellation");
            }
        }
        Ok(outcome)
    }

    /// Returns running jobs whose lease expired to the queue (or fails them), while `term`
    /// leads; returns how many.
    pub async fn reap_expired(&self, term: Term, limit: u32) -> Result<usize, StoreError> {
        let reaped = self.store.reap_expired(term, limit).await?;
        self.signals.announce_changes(&reaped);
        Ok(reaped.len())
    }

    /// Replays a failed or cancelled job and rings its doorbell.
    pub async fn replay(
        &self,
        scope: Scope<'_>,
        id: Uuid,
        change: &Replay,
    ) -> Result<ReplayOutcome, StoreError> {
        let outcome = self.store.replay(scope, id, change).await?;
        if let ReplayOutcome::Queued(job) = &outcome {
            self.bells.announce(&[id]);
            self.bells.ring(&[job.doorbell()]).await;
        }
        Ok(outcome)
    }

    /// Claims the job behind a delivery for `worker`; a delivery whose job is not claimable
    /// (finished, cancelled, not due, a duplicate) is acknowledged and `None` returned.
    pub async fn claim(
        &self,
        delivery: &Delivery,
        worker: &str,
        lease: std::time::Duration,
    ) -> Result<Option<RunningJob>, StoreError> {
        let job_id = delivery.doorbell.job_id;
        let claimed = self
            .claimer
            .claim(std::slice::from_ref(delivery), worker, lease)
            .await?
            .remove(&job_id);
        if claimed.is_some() {
            self.signals.announce_changes(&[job_id]);
        } else {
            debug!(%job_id, "job not claimable (finished, cancelled, not due or taken); skipping");
            self.ack(delivery).await;
        }
        Ok(claimed)
    }

    /// Claims the jobs behind several deliveries in one round trip, each answer in the order
    /// of `deliveries`; deliveries whose job is not claimable (or that repeat one) are
    /// acknowledged and answered `None`.
    pub async fn claim_many(
        &self,
        deliveries: &[Delivery],
        worker: &str,
        lease: std::time::Duration,
    ) -> Result<Vec<Option<RunningJob>>, StoreError> {
        let mut claimed = self.claimer.claim(deliveries, worker, lease).await?;
        let ids: Vec<Uuid> = claimed.keys().copied().collect();
        self.bells.announce(&ids);
        let mut answers = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            let job = claimed.remove(&delivery.doorbell.job_id);
            if job.is_none() {
                debug!(job_id = %delivery.doorbell.job_id, "job not claimable; skipping");
                self.ack(delivery).await;
            }
            answers.push(job);
        }
        Ok(answers)
    }

    /// Records an attempt's outcome, then acknowledges its delivery; outcomes recorded at
    /// once share their commit (see `settle`). An outcome that could not be recorded leaves
    /// the delivery pending: the job's lease returns it.
    pub async fn settle(
        &self,
        delivery: &Delivery,
        job: &RunningJob,
        settlement: &Settlement,
    ) -> Result<Settled, StoreError> {
        self.settler.settle(delivery, job, settlement).await
    }

    /// Acknowledges a delivery whose attempt stopped without an outcome (cancelled, lease
    /// lost): nothing is recorded.
    pub async fn drop_delivery(&self, delivery: &Delivery) {
        self.ack(delivery).await;
    }

    /// Puts a running attempt back in the queue untouched (its worker is stopping); the
    /// scheduler rings it. `false` when the worker no longer held it.
    pub async fn release(&self, job: &RunningJob) -> Result<bool, StoreError> {
        let released = self.store.release(job).await?;
        if released {
            self.signals.announce_changes(&[job.id]);
        }
        Ok(released)
    }

    /// Returns a doorbell this worker took but will not run, for the scheduler to ring again.
    pub async fn hand_back(&self, delivery: &Delivery) {
        let job_id = delivery.doorbell.job_id;
        match self.store.mark_needed(&[job_id], None).await {
            Ok(()) => self.ack(delivery).await,
            Err(e) => warn!(%job_id, error = %e, "could not hand back an unstarted doorbell"),
        }
    }

    async fn ack(&self, delivery: &Delivery) {
        settle::acknowledge(self.queue.as_ref(), delivery).await;
    }

    /// Rings due jobs that need a doorbell (up to a bounded number per call), while `term`
    /// leads; returns how many.
    pub async fn dispatch_due(&self, term: Term) -> Result<u64, DispatchError> {
        // While the queue is down nothing is taken, so an outage does not record a
        // `dispatched` event per job per look.
        self.queue.ping().await?;
        let mut rung = 0;
        for _ in 0..BATCHES_PER_LOOK {
            let due = self.store.take_due(term, BATCH).await?;
            if due.is_empty() {
                return Ok(rung);
            }
            let ids: Vec<Uuid> = due.iter().map(|bell| bell.job_id).collect();
            if let Err(e) = self.queue.ring(&due).await {
                if let Err(store) = self.store.mark_needed(&ids, Some(term)).await {
                    error!(error = %store, "cannot mark jobs for another ring");
                }
                return Err(e.into());
            }
            self.signals.announce_changes(&ids);
            rung += self.store.confirm_rung(&ids).await?;
            if due.len() < BATCH as usize {
                return Ok(rung);
            }
        }
        Ok(rung)
    }
}

/// What a write's quota permit reports: the jobs count as queued unless the write surely
/// stored nothing new (a replayed or mismatched key). A failed write counts too, until the
/// next count of the tenant's queued jobs (within a second): it may have committed.
fn outcome<T>(created: &Result<Created<T>, StoreError>) -> Outcome {
    match created {
        Ok(Created::Replayed(_) | Created::KeyMismatch) => Outcome::Dropped,
        Ok(Created::New(_)) | Err(_) => Outcome::Committed,
    }
}

/// Runs `work` in a task of its own and waits for it: if the caller stops waiting (a client
/// hung up), the work still runs to the end, so a committed job is never left unrung.
async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::spawn(work)
        .await
        .map_err(|e| StoreError::Database(Cause::of("a submission stopped", e)))?
}
