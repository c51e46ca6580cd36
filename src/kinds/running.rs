//! Running a claimed job: the job as a worker holds it, what a kind's `run` gets, and the
//! [`Executor`] a worker calls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::bounded::{DEFAULT_RESULT_MAX_BYTES, bounded};
use super::navigate_extract::NavigateExtractPayload;
use super::{JobType, Payload};
use crate::engine::browser::INSTALL_HINT;
use crate::engine::options::{PageOptions, Selectors};
use crate::engine::{Attempt, Browser, Engine};
use crate::job::{ErrorKind, Hold, JobError, Priority, Rung, Strategy};
use crate::memory::choose::should_probe;
use crate::memory::{Domains, Observation, Start, Tried, Verdict, decision};

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

    /// How long one rung of this attempt may run.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.timeout_ms))
    }

    /// How long the whole attempt may run: each rung `auto` climbs gets its own timeout.
    pub fn attempt_budget(&self) -> Duration {
        let rungs = if self.strategy == Strategy::Auto {
            Rung::ALL.len() as u32
        } else {
            1
        };
        self.timeout() * rungs
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
    /// When this rung's `timeout_ms` runs out.
    pub deadline: tokio::time::Instant,
    /// The rung this run uses (the job's strategy, or the one `auto` is trying).
    pub rung: Rung,
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
            hold: self.job.hold(),
        }
    }

    /// The browser and the flavour (vanilla or stealth) this run uses, if its rung is a
    /// browser one and this worker has a browser.
    pub fn browser(&self) -> Option<(&Browser, Strategy)> {
        if !self.rung.in_browser() {
            return None;
        }
        Some((self.engine.browser()?, self.rung.strategy()))
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

/// Runs jobs by their kind, with one engine's services, choosing and climbing rungs with
/// the domain memory.
#[derive(Debug, Clone)]
pub struct Runner {
    engine: Arc<Engine>,
    domains: Arc<Domains>,
    result_max_bytes: usize,
}

impl Runner {
    /// A runner over `engine`, learning in `domains`, keeping results of up to
    /// [`DEFAULT_RESULT_MAX_BYTES`].
    pub fn new(engine: Arc<Engine>, domains: Arc<Domains>) -> Runner {
        Runner {
            engine,
            domains,
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

    /// Runs one rung under its own timeout.
    async fn run_rung(
        &self,
        payload: &Payload,
        job: &RunningJob,
        stop: &CancellationToken,
        rung: Rung,
    ) -> Outcome {
        let run = Run {
            job,
            engine: &self.engine,
            stop,
            deadline: tokio::time::Instant::now() + job.timeout(),
            rung,
        };
        let work = payload.run(&run);
        match tokio::time::timeout(job.timeout(), work).await {
            Ok(outcome) => outcome,
            Err(_) => Err(JobError::new(
                ErrorKind::Timeout,
                format!("the attempt ran past timeout_ms ({} ms)", job.timeout_ms),
            )),
        }
    }

    /// The rung that really ran: a browser rung on a worker without a browser fell back to
    /// http (or failed before reaching the site).
    fn ran_with(&self, rung: Rung) -> Rung {
        if rung.in_browser() && self.engine.browser().is_none() {
            Rung::Http
        } else {
            rung
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
        if !job.job_type.reaches_web() {
            let rung = job.strategy.rung().unwrap_or(Rung::Http);
            let outcome = self.run_rung(&payload, job, stop, rung).await?;
            return bounded(outcome, self.result_max_bytes);
        }
        let has_browser = self.engine.browser().is_some();
        let start = self
            .domains
            .start(
                &job.domain,
                job.strategy,
                payload.needs_browser(),
                has_browser,
            )
            .await;
        let mut climb = Climb::run(self, &payload, job, stop, &start).await;
        let probe = match start.reason {
            Some(_) => climb.probe(self, &payload, job, stop, &start).await,
            None => None,
        };
        let decision = start
            .reason
            .as_deref()
            .map(|reason| decision(start.first, &climb.tried, reason, probe));
        self.domains
            .learned(&climb.observations, decision.as_ref())
            .await;
        match (climb.outcome, decision) {
            (Ok(mut result), Some(decision)) => {
                if let Value::Object(fields) = &mut result {
                    fields.insert("strategy_decision".to_owned(), decision);
                }
                bounded(result, self.result_max_bytes)
            }
            (Ok(result), None) => bounded(result, self.result_max_bytes),
            (Err(mut error), decision) => {
                error.strategy_decision = decision.map(Box::new);
                Err(error)
            }
        }
    }
}

/// One attempt's climb up the ladder: each rung that is blocked hands over to the next, once.
struct Climb {
    outcome: Outcome,
    tried: Vec<Tried>,
    observations: Vec<Observation>,
}

/// What a probe loads: the job's page as a plain `navigate_extract` would (its page options
/// when it is one), never the job's own steps, so a probe has no effect a page load has not.
fn probe_payload(payload: &Payload) -> Payload {
    let page = match payload {
        Payload::NavigateExtract(own) => own.page.clone(),
        _ => PageOptions::default(),
    };
    Payload::NavigateExtract(NavigateExtractPayload {
        selectors: Selectors::new(),
        evaluate: None,
        page,
    })
}

impl Climb {
    async fn run(
        runner: &Runner,
        payload: &Payload,
        job: &RunningJob,
        stop: &CancellationToken,
        start: &Start,
    ) -> Climb {
        let mut rung = start.first;
        let mut climb = Climb {
            outcome: Ok(Value::Null),
            tried: Vec::new(),
            observations: Vec::new(),
        };
        loop {
            let (outcome, tried) = climb.try_rung(runner, payload, job, stop, rung).await;
            climb.tried.push(tried);
            let verdict = tried.1;
            let next = start
                .ladder
                .above(rung)
                .filter(|_| job.strategy == Strategy::Auto && verdict == Some(Verdict::Blocked));
            climb.outcome = outcome;
            match next {
                Some(next) if !stop.is_cancelled() => rung = next,
                _ => return climb,
            }
        }
    }

    /// Runs one rung and keeps what it taught; a throttle reaches every worker at once.
    async fn try_rung(
        &mut self,
        runner: &Runner,
        payload: &Payload,
        job: &RunningJob,
        stop: &CancellationToken,
        rung: Rung,
    ) -> (Outcome, Tried) {
        let began = Instant::now();
        let outcome = runner.run_rung(payload, job, stop, rung).await;
        let verdict = Verdict::of(&outcome);
        let ran_with = runner.ran_with(rung);
        if let Some(verdict) = verdict {
            self.observations.push(Observation {
                host: job.domain.clone(),
                job_id: job.id,
                rung: ran_with,
                verdict,
                latency_ms: u32::try_from(began.elapsed().as_millis()).unwrap_or(u32::MAX),
                at: chrono::Utc::now(),
            });
        }
        if verdict == Some(Verdict::Throttled) {
            let retry_after = outcome.as_ref().err().and_then(|e| e.retry_after_ms);
            runner.domains.throttled(&job.domain, retry_after).await;
        }
        (outcome, (ran_with, verdict))
    }

    /// After a success, maybe loads the page once more on the rung below, to learn whether
    /// the site still needs the dearer one ([`crate::memory::choose::probe_chance`]).
    async fn probe(
        &mut self,
        runner: &Runner,
        payload: &Payload,
        job: &RunningJob,
        stop: &CancellationToken,
        start: &Start,
    ) -> Option<Tried> {
        // Only a job that got through on its first rung probes: one that climbed has just
        // seen the rung below block (and has used more of its time budget).
        let [(rung, Some(Verdict::Success))] = self.tried[..] else {
            return None;
        };
        let below = start.ladder.below(rung)?;
        if stop.is_cancelled() || !should_probe(&start.evidence, below, &mut rand::rng()) {
            return None;
        }
        let (_, tried) = self
            .try_rung(runner, &probe_payload(payload), job, stop, below)
            .await;
        Some(tried)
    }
}
