//! The worker: takes doorbells, claims jobs, runs them under their timeout, records outcomes.

pub mod leadership;
mod process;
pub mod report;
pub mod retry;
pub mod scheduler;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::metrics::{Metrics, WorkerGauges};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};
use uuid::Uuid;

use crate::attempt::Attempts;
use crate::dispatch::Dispatcher;
use crate::kinds::RunningJob;
use crate::queue::{Delivery, QueueConsumer, Signals};

pub use report::heartbeat_file;
pub use retry::RetryPolicy;
pub use scheduler::{Scheduler, SchedulerConfig};

/// How long a claimed job's lease lasts unless renewed (`JOB_LEASE`).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

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

/// An id unique to this process: host, process id and a random suffix.
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
    dispatcher: Dispatcher,
    attempts: Arc<Attempts>,
    signals: Arc<dyn Signals>,
    config: WorkerConfig,
    in_flight: Mutex<HashMap<Uuid, RunningJob>>,
    /// Stops the executor of a running job (remote cancel, lost lease).
    stops: Mutex<HashMap<Uuid, CancellationToken>>,
    /// Cancelled when the worker stops taking jobs.
    stopping: CancellationToken,
    /// Where attempts and finished jobs are counted.
    metrics: Metrics,
    /// This worker's running-jobs and free-slots gauges.
    gauges: WorkerGauges,
}

/// A worker process's job loop.
pub struct Worker {
    shared: Arc<Shared>,
}

impl Worker {
    /// A worker taking doorbells through `dispatcher` and running their jobs' attempts
    /// with `attempts` (which admits each by its domain's pace); cancel notices arrive
    /// through `signals`.
    pub fn new(
        dispatcher: Dispatcher,
        attempts: Arc<Attempts>,
        signals: Arc<dyn Signals>,
        config: WorkerConfig,
    ) -> Worker {
        let metrics = Metrics::new();
        Worker {
            shared: Arc::new(Shared {
                dispatcher,
                attempts,
                signals,
                gauges: metrics.worker(&config.id, config.concurrency),
                metrics,
                config,
                in_flight: Mutex::new(HashMap::new()),
                stops: Mutex::new(HashMap::new()),
                stopping: CancellationToken::new(),
            }),
        }
    }

    /// The same worker, counting in `metrics` (the process's registry).
    pub fn with_metrics(mut self, metrics: &Metrics) -> Worker {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.gauges = metrics.worker(&shared.config.id, shared.config.concurrency);
            shared.metrics = metrics.clone();
        }
        self
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
        let Some(consumer) = open_consumer(&shared, &shutdown).await else {
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
        let (tasks, buffer) = take_and_run(&shared, consumer, &shutdown).await;
        drain(&shared, tasks, buffer).await;
        listener.abort();
        info!(worker_id = %config.id, "worker stopped");
    }
}

/// Takes doorbells while there are free slots, running each in a task, until `shutdown`.
/// Returns the running tasks and the doorbells taken but not started.
async fn take_and_run(
    shared: &Arc<Shared>,
    mut consumer: Box<dyn QueueConsumer>,
    shutdown: &CancellationToken,
) -> (JoinSet<()>, VecDeque<Delivery>) {
    let config = &shared.config;
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
                    let pause = process::backoff(failures);
                    warn!(error = %e, retry_in_ms = pause.as_millis() as u64, "queue read failed");
                    drop(permit);
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(pause) => continue,
                    }
                }
            }
        }
        let Some(delivery) = buffer.pop_front() else {
            drop(permit);
            continue;
        };
        // Every doorbell taken that a free slot can start now is claimed in one round trip.
        let mut batch = vec![(delivery, permit)];
        while !buffer.is_empty() {
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                break;
            };
            if let Some(delivery) = buffer.pop_front() {
                batch.push((delivery, permit));
            }
        }
        if batch.len() > 1 {
            tasks.spawn(process::process_many(shared.clone(), batch));
        } else if let Some((delivery, permit)) = batch.pop() {
            tasks.spawn(process::process(shared.clone(), delivery, permit));
        }
    }
    (tasks, buffer)
}

/// Hands back the doorbells not started, lets in-flight jobs finish within the grace
/// period, and puts back in the queue those still running after it.
async fn drain(shared: &Shared, mut tasks: JoinSet<()>, buffer: VecDeque<Delivery>) {
    let config = &shared.config;
    info!(
        worker_id = %config.id,
        in_flight = tasks.len(),
        grace_ms = config.shutdown_grace.as_millis() as u64,
        "worker stopping: no new jobs; waiting for in-flight jobs"
    );
    for delivery in buffer {
        shared.dispatcher.hand_back(&delivery).await;
    }
    let drained = tokio::time::timeout(config.shutdown_grace, async {
        while let Some(done) = tasks.join_next().await {
            log_task_end(done);
        }
    })
    .await;
    if drained.is_ok() {
        return;
    }
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    let left: Vec<RunningJob> = lock(&shared.in_flight).drain().map(|(_, j)| j).collect();
    for job in left {
        match shared.dispatcher.release(&job).await {
            Ok(true) => warn!(job_id = %job.id, "grace period over: job put back in the queue"),
            Ok(false) => {}
            Err(e) => {
                error!(job_id = %job.id, error = %e, "could not put job back; its lease will expire")
            }
        }
    }
}

/// Stops the executor of any job of this worker that is announced cancelled.
async fn listen_for_cancels(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut notices = shared.signals.cancel_notices();
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

async fn open_consumer(
    shared: &Shared,
    shutdown: &CancellationToken,
) -> Option<Box<dyn QueueConsumer>> {
    let mut failures = 0;
    loop {
        match shared.dispatcher.queue().consumer(&shared.config.id).await {
            Ok(consumer) => return Some(consumer),
            Err(e) => {
                failures += 1;
                warn!(error = %e, "cannot open a queue consumer; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return None,
                    () = tokio::time::sleep(process::backoff(failures)) => {}
                }
            }
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
