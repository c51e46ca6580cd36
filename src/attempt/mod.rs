//! One attempt of a claimed job, in one place: its domain's admission (pacing), the strategy
//! ladder (where `auto` starts, and the climb past blocks), the kind's execution under its
//! timeout, what the domain memory learns, and the typed outcome the worker settles. The
//! worker claims, hands the job here, and records what comes back.

mod admission;
mod bounded;
mod ladder;
mod profile;
mod result;

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::engine::Engine;
use crate::engine::egress::Route;
use crate::engine::tally::Tally;
use crate::job::{ErrorKind, JobError, Rung, Strategy, StrategyDecision};
use crate::kinds::{Payload, RunningJob};
use crate::memory::{Admission, Domains, Reach, decision};
use crate::profile::Profiles;
use crate::proxy::Pools;
use crate::queue::QueueError;

pub use admission::Entry;
pub use bounded::DEFAULT_RESULT_MAX_BYTES;
pub use result::JobResult;

use bounded::bounded;
use ladder::{Climb, Job};

/// A succeeded attempt: its result as stored, and the strategy that ran it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    /// The [`JobResult`], serialized once and within `RESULT_MAX_BYTES`.
    pub result: Value,
    /// The strategy that really ran the job (none for kinds that never reach the web).
    pub executed_with: Option<Strategy>,
}

/// What one attempt came to: a result, or a typed error.
pub type Outcome = Result<Finished, JobError>;

/// Runs attempts with one engine's services, pacing and learning in the domain memory.
#[derive(Debug, Clone)]
pub struct Attempts {
    engine: Arc<Engine>,
    domains: Arc<Domains>,
    pools: Pools,
    profiles: Option<Profiles>,
    result_max_bytes: usize,
}

impl Attempts {
    /// Attempts over `engine`, paced and learned in `domains`, keeping results of up to
    /// [`DEFAULT_RESULT_MAX_BYTES`].
    pub fn new(engine: Arc<Engine>, domains: Arc<Domains>) -> Attempts {
        Attempts {
            engine,
            domains,
            pools: Pools::default(),
            profiles: None,
            result_max_bytes: DEFAULT_RESULT_MAX_BYTES,
        }
    }

    /// The same, relaying jobs that name a proxy pool or tier through `pools`.
    pub fn with_pools(self, pools: Pools) -> Attempts {
        Attempts { pools, ..self }
    }

    /// The same, loading and saving the profiles jobs name in `profiles`.
    pub fn with_profiles(self, profiles: Profiles) -> Attempts {
        Attempts {
            profiles: Some(profiles),
            ..self
        }
    }

    /// The same, failing results over `bytes` of JSON (`RESULT_MAX_BYTES`).
    pub fn with_result_cap(self, bytes: usize) -> Attempts {
        Attempts {
            result_max_bytes: bytes,
            ..self
        }
    }

    /// Asks `host`'s pacer for a slot for `job_id` (early, beside the claim, when the
    /// doorbell names the host).
    pub async fn ask(
        &self,
        host: &str,
        job_id: Uuid,
        lease: Duration,
    ) -> Result<Admission, QueueError> {
        self.domains.admit(host, job_id, lease).await
    }

    /// Whether `job` may start now by its domain's pace (asking unless `early` did) and,
    /// for a job that saves a profile, with the profile's writer lease.
    pub async fn admit(
        &self,
        job: &RunningJob,
        early: Option<Result<Admission, QueueError>>,
        lease: Duration,
    ) -> Entry {
        let answer = match early {
            Some(answer) => answer,
            None => self.ask(&job.domain, job.id, lease).await,
        };
        match admission::entry(answer) {
            Entry::Run => self.admit_writer(job, lease).await,
            deferred => deferred,
        }
    }

    /// Gives back the domain slot `job_id` holds on `host`.
    pub async fn release(&self, host: &str, job_id: Uuid) {
        self.domains.release(host, job_id).await;
    }

    /// Gives back what an admitted job held: its domain slot and its profile's writer lease.
    pub async fn release_all(&self, job: &RunningJob) {
        tokio::join!(self.release(&job.domain, job.id), self.release_writer(job));
    }

    /// Keeps the domain slot (and writer lease) of a job whose lease was renewed.
    pub async fn renew(&self, job: &RunningJob, lease: Duration) {
        self.domains.renew(&job.domain, job.id, lease).await;
        self.renew_writer(job, lease).await;
    }

    /// Runs one admitted attempt of `job` within its budget (every rung its own timeout);
    /// `stop` is cancelled when it must stop. A panic becomes an `internal` error.
    pub async fn run(&self, job: &RunningJob, stop: &CancellationToken) -> Outcome {
        let began = Instant::now();
        if job.job_type.reaches_web() {
            // Pools made through the API changed since this process last looked: look now.
            self.pools.fresh().await;
        }
        let run = AssertUnwindSafe(self.climb(job, stop, began)).catch_unwind();
        let budget = job.attempt_budget(self.pools.tiers().len());
        match tokio::time::timeout(budget, run).await {
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

    /// Chooses where to start, climbs, maybe probes, teaches the memory and types the
    /// outcome.
    async fn climb(
        &self,
        running: &RunningJob,
        stop: &CancellationToken,
        began: Instant,
    ) -> Outcome {
        let mut payload =
            Payload::from_stored(running.job_type, &running.payload).map_err(|e| {
                JobError::new(
                    ErrorKind::InvalidPayload,
                    format!("the stored payload cannot be read: {e}"),
                )
            })?;
        // What the job asked for decides whether it needs a browser; the identity a profile
        // fills in (a stealth persona's time zone, say) must not keep `auto` off http.
        let needs_browser = payload.needs_browser();
        let profile = self.load_profile(running, &mut payload).await?;
        let payload = payload;
        let tally = Tally::default();
        // A job that names a pool or tier (or `none`) takes one proxy for the whole attempt
        // (every rung and probe), chosen before the first; else each step of the ladder
        // leaves by its own tier.
        let fixed = match payload.page().and_then(|page| page.proxy.as_deref()) {
            Some(choice) if running.job_type.reaches_web() => {
                let deadline = tokio::time::Instant::now() + running.timeout();
                Some(self.pools.route(Some(choice), deadline).await?)
            }
            _ => None,
        };
        let job = Job {
            attempts: self,
            payload: &payload,
            running,
            stop,
            tally: &tally,
            fixed: fixed.as_ref(),
            profile: profile.as_ref().map(|p| &p.carried),
        };
        if !running.job_type.reaches_web() {
            let rung = running.strategy.rung().unwrap_or(Rung::Http);
            let output = job.run_rung(&payload, rung, Route::Direct).await?;
            let (dialogs, spent) = tally.taken();
            return self.finish(JobResult {
                output,
                executed_with: None,
                strategy_decision: None,
                took_ms: elapsed_ms(began),
                dialogs,
                spent,
            });
        }
        let tiers = match fixed {
            Some(_) => Vec::new(),
            None => self.pools.tiers(),
        };
        let reach = Reach {
            needs_browser,
            has_browser: self.engine.browser().is_some(),
            tiers: &tiers,
        };
        let start = self
            .domains
            .start(&running.domain, running.strategy, reach)
            .await;
        let mut climb = Climb::run(&job, &start).await;
        let probe = match start.reason {
            Some(_) => climb.probe(&job, &start).await,
            None => None,
        };
        // The step it really started on: a job's own proxy replaces the ladder's routes.
        let first = climb
            .tried
            .first()
            .map_or(start.first.clone(), |t| t.step());
        let decision: Option<StrategyDecision> = start
            .reason
            .as_deref()
            .map(|reason| decision(&first, &climb.tried, reason, probe));
        self.domains
            .learned(&climb.observations, decision.as_ref())
            .await;
        let (dialogs, spent) = tally.taken();
        self.domains.spent(&running.domain, &spent).await;
        match climb.outcome {
            Ok((output, ran_with)) => {
                let finished = self.finish(JobResult {
                    output,
                    executed_with: Some(ran_with.strategy()),
                    strategy_decision: decision,
                    took_ms: elapsed_ms(began),
                    dialogs,
                    spent,
                })?;
                if let Some(profile) = &profile {
                    self.save_profile(running, profile).await?;
                }
                Ok(finished)
            }
            Err(mut error) => {
                error.strategy_decision = decision.map(Box::new);
                error.spent = Some(Box::new(spent));
                Err(error)
            }
        }
    }

    /// The result serialized once, within the cap.
    fn finish(&self, result: JobResult) -> Outcome {
        let executed_with = result.executed_with;
        let value = serde_json::to_value(&result).map_err(|e| {
            JobError::new(
                ErrorKind::Internal,
                format!("the result could not be written: {e}"),
            )
        })?;
        Ok(Finished {
            result: bounded(value, self.result_max_bytes)?,
            executed_with,
        })
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

fn elapsed_ms(began: Instant) -> u64 {
    u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX)
}
