//! Running a claimed job: the job as a worker holds it, what a kind's `run` gets, and the
//! [`Executor`] a worker calls.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::bounded::{DEFAULT_RESULT_MAX_BYTES, bounded};
use super::{JobType, Payload};
use crate::engine::browser::INSTALL_HINT;
use crate::engine::{Attempt, Browser, Engine};
use crate::job::{ErrorKind, Hold, JobError, Priority, Strategy};

/// What one attempt produced: a result, or a typed error.
pub type Outcome = Result<Value, JobError>;

/// A job claimed by a worker: everything a kind needs, plus the fencing token.
#[derive(Debug, Clone)]
pub struct RunningJob {
    /// The job's id.
    pub id: Uuid,
    /// The target's host name.
    pub domain: String,
    /// The target url.
    pub url: String,
    /// What the job does.
    pub job_type: JobType,
    /// How the job reaches the web.
    pub strategy: Strategy,
    /// The job's priority.
    pub priority: Priority,
    /// The payload as stored ([`Payload::to_stored`]).
    pub payload: Value,
    /// This attempt's number (1-based); with `worker_id` it fences every later write.
    pub attempt: u32,
    /// How many attempts the job may use.
    pub max_attempts: u32,
    /// How long this attempt may run, in milliseconds.
    pub timeout_ms: u32,
    /// The worker holding the lease.
    pub worker_id: String,
}

impl RunningJob {
    /// The attempt this worker holds.
    pub fn hold(&self) -> Hold {
        Hold {
            attempt: self.attempt,
            worker: self.worker_id.clone(),
        }
    }

    /// How long this attempt may run.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.timeout_ms))
    }
}

/// What a kind's `run` gets: the job, the engine's services, a token cancelled when the
/// attempt must stop (the job was cancelled or the lease lost), and the attempt's deadline.
pub struct Run<'a> {
    /// The job.
    pub job: &'a RunningJob,
    /// The services.
    pub engine: &'a Engine,
    /// Cancelled when the attempt must stop.
    pub stop: &'a CancellationToken,
    /// When the attempt's `timeout_ms` runs out.
    pub deadline: tokio::time::Instant,
}

impl Run<'_> {
    /// The attempt, as the engine's services see it: the time left is what remains until
    /// the deadline.
    pub fn attempt(&self) -> Attempt {
        Attempt {
            id: self.job.id,
            url: self.job.url.clone(),
            timeout: self
                .deadline
                .saturating_duration_since(tokio::time::Instant::now()),
        }
    }

    /// The browser and the flavour (vanilla or stealth) this attempt uses, if the job's
    /// strategy is a browser one and this worker has a browser.
    pub fn browser(&self) -> Option<(&Browser, Strategy)> {
        let strategy = self.job.strategy.in_browser(self.job.attempt)?;
        Some((self.engine.browser()?, strategy))
    }

    /// The browser for a kind that cannot run without one.
    pub fn require_browser(&self) -> Result<(&Browser, Strategy), JobError> {
        self.browser().ok_or_else(|| unavailable(self.job.job_type))
    }
}

/// Why a job that needs a browser cannot run on this worker.
pub fn unavailable(job_type: JobType) -> JobError {
    JobError::new(
        ErrorKind::BrowserUnavailable,
        format!("job_type {job_type} needs Chromium and this worker has none; {INSTALL_HINT}"),
    )
}

/// Runs one attempt of a job.
#[async_trait]
pub trait Executor: Send + Sync + 'static {
    /// Runs `job`; `stop` is cancelled when the attempt must stop. The caller bounds the
    /// call with the job's timeout.
    async fn run(&self, job: &RunningJob, stop: &CancellationToken) -> Outcome;
}

/// Runs jobs by their kind, with one engine's services.
#[derive(Debug, Clone)]
pub struct Runner {
    engine: Arc<Engine>,
    result_max_bytes: usize,
}

impl Runner {
    /// A runner over `engine`, keeping results of up to [`DEFAULT_RESULT_MAX_BYTES`].
    pub fn new(engine: Arc<Engine>) -> Runner {
        Runner {
            engine,
            result_max_bytes: DEFAULT_RESULT_MAX_BYTES,
        }
    }

    /// The same runner, failing results over `bytes` of JSON (`RESULT_MAX_BYTES`).
    pub fn with_result_cap(self, bytes: usize) -> Runner {
        Runner {
            result_max_bytes: bytes,
            ..self
        }
    }
}

#[async_trait]
impl Executor for Runner {
    async fn run(&self, job: &RunningJob, stop: &CancellationToken) -> Outcome {
        let payload = Payload::from_stored(job.job_type, &job.payload).map_err(|e| {
            JobError::new(
                ErrorKind::InvalidPayload,
                format!("the stored payload cannot be read: {e}"),
            )
        })?;
        let run = Run {
            job,
            engine: &self.engine,
            stop,
            deadline: tokio::time::Instant::now() + job.timeout(),
        };
        bounded(payload.run(&run).await?, self.result_max_bytes)
    }
}
