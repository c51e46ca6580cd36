//! The worker: takes doorbells, claims jobs, runs them under their timeout, records outcomes.

pub mod report;
pub mod retry;
pub mod scheduler;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};
use uuid::Uuid;

use crate::engine::{Executor, Outcome};
use crate::job::{ErrorKind, JobError, RunningJob};
use crate::queue::{Delivery, JobQueue, QueueConsumer};
use crate::store::{JobStore, Settlement, StoreError};

pub use retry::RetryPolicy;
pub use scheduler::{Scheduler, SchedulerConfig};

/// How long a claimed job's lease lasts unless renewed (`JOB_LEASE`).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// How long recording an outcome may wait for the database to come back.
const SETTLE_BUDGET: Duration = Duration::from_secs(30);

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// The worker's identity: its queue consumer name and the `worker_id` on jobs it runs.
    pub id: String,
    /// Jobs run at once.
    pub concurrency: usize,
    /// How long in-flight jobs may finish after a shutdown signal.
    pub shutdown_grace: Duration,
    /// When failed attempts are retried.
    pub retry: RetryPolicy,
    /// How long one queue read waits for a doorbell.
    pub poll_wait: Duration,
    /// A running job's lease; renewed every third of it while the job runs.
    pub lease: Duration,
}

impl WorkerConfig {
    /// A config with a fresh unique id and the given concurrency.
    pub fn new(concurrency: usize) -> WorkerConfig {
        WorkerConfig {
            id: unique_worker_id(),
            concurrency: concurrency.max(1),
            shutdown_grace: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            poll_wait: Duration::from_secs(1),
            lease: DEFAULT_LEASE,
        }
    }
}

/// A worker id unique to this process: host, process id and a random suffix.
pub fn unique_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    let suffix = Uuid::new_v4().simple().to_string();
    format!("{host}-{}-{}", std::process::id(), &suffix[..8])
}

/// What a worker shares with the tasks running its jobs.
struct Shared {
    store: Arc<dyn JobStore>,
    queue: Arc<dyn JobQueue>,
    executor: Arc<dyn Executor>,
    config: WorkerConfig,
    in_flight: Mutex<HashMap<Uuid, RunningJob>>,
    /// Stops the executor of a running job (remote cancel, lost lease).
    stops: Mutex<HashMap<Uuid, CancellationToken>>,
    /// Cancelled when the worker stops taking jobs.
    stopping: CancellationToken,
}

/// A worker process's job loop.
pub struct Worker {
    shared: Arc<Shared>,
}

impl Worker {
    /// A worker over a store, a queue and an executor.
    pub fn new(
        store: Arc<dyn JobStore>,
        queue: Arc<dyn JobQueue>,
        executor: Arc<dyn Executor>,
        config: WorkerConfig,
    ) -> Worker {
        Worker {
            shared: Arc::new(Shared {
                store,
                queue,
                executor,
                config,
                in_flight: Mutex::new(HashMap::new()),
                stops: Mutex::new(HashMap::new()),
                stopping: CancellationToken::new(),
            }),
        }
    }

    /// The worker's id.
    pub fn id(&self) -> &str {
        &self.shared.config.id
    }

    /// Runs until `shutdown` is cancelled, then lets in-flight jobs finish within the grace
    /// period; jobs still running after it are put back in the queue.
    pub async fn run(self, shutdown: CancellationToken) {
        let shared = self.shared;
        let config = &shared.config;
        info!(worker_id = %config.id, concurrency = config.concurrency, "worker started");

        let Some(mut consumer) = open_consumer(&shared, &shutdown).await else {
            info!(worker_id = %config.id, "worker stopped before it could reach the queue");
            return;
        };
        let listener = tokio::spawn(listen_for_cancels(shared.clone(), shutdown.clone()));
        let stopping = shared.stopping.clone();
        let stop_on = shutdown.clone();
        tokio::spawn(async move {
            stop_on.cancelled().await;
            stopping.cancel();
        });
        let slots = Arc::new(Semaphore::new(config.concurrency));
        let mut tasks = JoinSet::new();
        let mut buffer: VecDeque<Delivery> = VecDeque::new();
        let mut failures = 0u32;

        loop {
            while let Some(done) = tasks.try_join_next() {
                log_task_end(done);
            }
            let permit = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            if buffer.is_empty() {
                if shutdown.is_cancelled() {
                    break;
                }
                // A take is not interrupted by shutdown: doorbells it read must not be dropped.
                let want = slots.available_permits() + 1;
                match consumer.take(want, config.poll_wait).await {
                    Ok(deliveries) => {
                        failures = 0;
                        buffer.extend(deliveries);
                    }
                    Err(e) => {
                        failures += 1;
                        let pause = backoff(failures);
                        warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "queue read failed");
                        drop(permit);
                        tokio::select! {
                            () = shutdown.cancelled() => break,
                            () = tokio::time::sleep(pause) => continue,
                        }
                    }
                }
            }
            match buffer.pop_front() {
                Some(delivery) => {
                    tasks.spawn(process(shared.clone(), delivery, permit));
                }
                None => drop(permit),
            }
        }

        info!(
            worker_id = %config.id,
            in_flight = tasks.len(),
            grace_ms = config.shutdown_grace.as_millis() as u64,
            "worker stopping: no new jobs; waiting for in-flight jobs"
        );
        for delivery in buffer {
            hand_back(&shared, &delivery).await;
        }
        let drained = tokio::time::timeout(config.shutdown_grace, async {
            while let Some(done) = tasks.join_next().await {
                log_task_end(done);
            }
        })
        .await;
        if drained.is_err() {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            let left: Vec<RunningJob> = lock(&shared.in_flight).drain().map(|(_, j)| j).collect();
            for job in left {
                match shared.store.release(&job).await {
                    Ok(true) => {
                        warn!(job_id = %job.id, "grace period over: job put back in the queue")
                    }
                    Ok(false) => {}
                    Err(e) => {
                        error!(job_id = %job.id, error = %e, "could not put job back; its lease will expire")
                    }
                }
            }
        }
        listener.abort();
        info!(worker_id = %config.id, "worker stopped");
    }
}

/// Stops the executor of any job of this worker that is announced cancelled.
async fn listen_for_cancels(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut notices = shared.queue.cancel_notices();
    loop {
        let notice = tokio::select! {
            () = shutdown.cancelled() => return,
            notice = notices.recv() => notice,
        };
        match notice {
            Ok(job) => {
                if let Some(stop) = lock(&shared.stops).get(&job) {
                    info!(job_id = %job, "job cancelled: stopping its executor");
                    stop.cancel();
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                // Missed notices are caught by the next lease renewal.
                warn!(missed, "missed cancel notices");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Renews the job's lease every third of it; returns (after cancelling `stop`) when the
/// worker no longer holds the job.
async fn heartbeat(shared: &Shared, job: &RunningJob, stop: &CancellationToken) {
    let lease = shared.config.lease;
    let every = lease / 3;
    loop {
        tokio::time::sleep(every).await;
        match shared.store.renew(job, lease).await {
            Ok(true) => debug!("lease renewed"),
            Ok(false) => {
                warn!("lease lost (job cancelled, finished or taken back): stopping the executor");
                stop.cancel();
                return;
            }
            Err(e) => warn!(error = %e, "cannot renew the lease; retrying"),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn log_task_end(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        error!("a job task panicked outside its executor");
    }
}

/// Exponential pause after `failures` consecutive failures: 100 ms doubling to 5 s.
fn backoff(failures: u32) -> Duration {
    let ms = 100u64.saturating_mul(1 << failures.min(6));
    Duration::from_millis(ms.min(5_000))
}

async fn open_consumer(
    shared: &Shared,
    shutdown: &CancellationToken,
) -> Option<Box<dyn QueueConsumer>> {
    let mut failures = 0;
    loop {
        match shared.queue.consumer(&shared.config.id).await {
            Ok(consumer) => return Some(consumer),
            Err(e) => {
                failures += 1;
                warn!(error = %e, "cannot open a queue consumer; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return None,
                    () = tokio::time::sleep(backoff(failures)) => {}
                }
            }
        }
    }
}

/// Returns a doorbell this worker took but will not run, so the scheduler rings it again.
async fn hand_back(shared: &Shared, delivery: &Delivery) {
    let job_id = delivery.doorbell.job_id;
    match shared.store.mark_unrung(&[job_id]).await {
        Ok(()) => ack(shared, delivery).await,
        Err(e) => warn!(%job_id, error = %e, "could not hand back an unstarted doorbell"),
    }
}

async fn ack(shared: &Shared, delivery: &Delivery) {
    if let Err(e) = shared.queue.ack(delivery).await {
        warn!(job_id = %delivery.doorbell.job_id, error = %e, "could not acknowledge a doorbell");
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

/// Claims, runs and settles the job behind one doorbell.
async fn process(shared: Arc<Shared>, delivery: Delivery, _slot: OwnedSemaphorePermit) {
    let job_id = delivery.doorbell.job_id;
    // While the database is down the claim waits (holding its slot, so the worker stops
    // taking doorbells) and retries with backoff until the database answers or the worker stops.
    let mut failures = 0;
    let claimed = loop {
        match shared
            .store
            .claim(job_id, &shared.config.id, shared.config.lease)
            .await
        {
            Err(StoreError::Unavailable(e)) if !shared.stopping.is_cancelled() => {
                failures += 1;
                if failures == 1 {
                    warn!(%job_id, error = %e, "database unavailable: waiting to claim");
                }
                tokio::select! {
                    () = shared.stopping.cancelled() => {}
                    () = tokio::time::sleep(backoff(failures)) => {}
                }
            }
            other => break other,
        }
    };
    let job = match claimed {
        Ok(Some(job)) => job,
        Ok(None) => {
            debug!(%job_id, "job not claimable (finished, cancelled, not due or taken); skipping");
            ack(&shared, &delivery).await;
            return;
        }
        Err(e) => {
            // Left unacknowledged: the doorbell stays pending for this consumer.
            error!(%job_id, error = %e, "could not claim job");
            return;
        }
    };
    let span = info_span!(
        "job",
        job_id = %job.id,
        attempt = job.attempt,
        domain = %job.domain,
        job_type = %job.job_type,
    );
    async {
        lock(&shared.in_flight).insert(job.id, job.clone());
        let stop = CancellationToken::new();
        lock(&shared.stops).insert(job.id, stop.clone());
        let started = Instant::now();
        let outcome = tokio::select! {
            outcome = execute(shared.executor.as_ref(), &job) => Some(outcome),
            () = stop.cancelled() => None,
            () = heartbeat(&shared, &job, &stop) => None,
        };
        lock(&shared.stops).remove(&job.id);
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let Some(outcome) = outcome else {
            // Cancelled, or the lease was lost: the executor was dropped (browser context
            // disposed) and nothing may be recorded by this worker.
            lock(&shared.in_flight).remove(&job.id);
            info!(elapsed_ms, "executor stopped: the job was cancelled or its lease lost");
            ack(&shared, &delivery).await;
            return;
        };
        let settlement = shared.config.retry.settle(&job, outcome, chrono::Utc::now());
        match &settlement {
            Settlement::Succeeded(_) => info!(elapsed_ms, "job succeeded"),
            Settlement::Retry { error, run_at } => {
                warn!(elapsed_ms, error = %error, %run_at, "attempt failed; retrying")
            }
            Settlement::Failed(error) => warn!(elapsed_ms, error = %error, "job failed"),
        }
        let recorded =
            with_store_retries(SETTLE_BUDGET, || shared.store.settle(&job, &settlement)).await;
        lock(&shared.in_flight).remove(&job.id);
        match recorded {
            Ok(true) => ack(&shared, &delivery).await,
            Ok(false) => {
                info!("job is no longer held by this worker (cancelled or lease lost); outcome dropped");
                ack(&shared, &delivery).await;
            }
            Err(e) => {
                // Not acknowledged: only a recorded outcome releases the doorbell. The job
                // keeps its lease; when it expires the scheduler returns the job to the queue.
                error!(error = %e, "could not record the outcome; the lease will return the job");
            }
        }
    }
    .instrument(span)
    .await;
}

/// Runs the executor under the job's timeout, turning panics into `internal` errors.
async fn execute(executor: &dyn Executor, job: &RunningJob) -> Outcome {
    let timeout = Duration::from_millis(u64::from(job.timeout_ms));
    let run = AssertUnwindSafe(executor.run(job)).catch_unwind();
    match tokio::time::timeout(timeout, run).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_panic)) => Err(JobError::new(
            ErrorKind::Internal,
            "the executor panicked while running the job",
        )),
        Err(_) => Err(JobError::new(
            ErrorKind::Timeout,
            format!("the attempt ran past timeout_ms ({} ms)", job.timeout_ms),
        )),
    }
}
