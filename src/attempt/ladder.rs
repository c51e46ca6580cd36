//! The strategy ladder of one attempt: each step that is blocked hands over to the next,
//! once; after a success on the first step, maybe a probe of the cheaper step below. What
//! each step taught is kept for the domain memory. A step through a proxy tier takes one
//! proxy of that tier for all its requests, and gives it back when it ends.

use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::Attempts;
use crate::engine::egress::Route;
use crate::engine::options::{PageOptions, Selectors};
use crate::engine::tally::Tally;
use crate::job::{ErrorKind, JobError, Rung, Step, Strategy, TriedRung, Verdict};
use crate::kinds::navigate_extract::NavigateExtractPayload;
use crate::kinds::{Output, Payload, Run, RunningJob};
use crate::memory::choose::should_probe;
use crate::memory::{Observation, Start};

/// What one rung ran with and produced.
pub(super) type Rungs = Result<(Output, Rung), JobError>;

/// One attempt's climb up the ladder.
pub(super) struct Climb {
    /// The last rung's outcome, with the rung that really ran.
    pub outcome: Rungs,
    /// Each rung tried.
    pub tried: Vec<TriedRung>,
    /// What the site taught, one per rung whose outcome said something about it.
    pub observations: Vec<Observation>,
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
        content: Default::default(),
        page,
    })
}

/// The job, its payload and its stop token: what every rung of one attempt shares.
pub(super) struct Job<'a> {
    pub attempts: &'a Attempts,
    pub payload: &'a Payload,
    pub running: &'a RunningJob,
    pub stop: &'a CancellationToken,
    pub tally: &'a Tally,
    /// The route the job named with its `proxy` option, which every step takes; none: each
    /// step's own (its tier's, or direct).
    pub fixed: Option<&'a Route>,
    /// The profile the job named, as loaded.
    pub profile: Option<&'a std::sync::Arc<crate::profile::Carried>>,
}

impl Job<'_> {
    /// How `step` leaves the worker: the job's own route, else a proxy of the step's tier
    /// (waiting for one until the step's timeout), else directly.
    async fn route(&self, step: &Step) -> Result<Route, JobError> {
        if let Some(route) = self.fixed {
            return Ok(route.clone());
        }
        let deadline = tokio::time::Instant::now() + self.running.timeout();
        let pools = &self.attempts.pools;
        pools.route_tier(step.tier.as_deref(), deadline).await
    }

    /// Runs one rung under its own timeout, leaving by `route`.
    pub async fn run_rung(
        &self,
        payload: &Payload,
        rung: Rung,
        route: Route,
    ) -> Result<Output, JobError> {
        let job = self.running;
        let run = Run {
            job,
            engine: &self.attempts.engine,
            stop: self.stop,
            deadline: tokio::time::Instant::now() + job.timeout(),
            rung,
            route,
            tally: self.tally.clone(),
            profile: self.profile.cloned(),
        };
        match tokio::time::timeout(job.timeout(), payload.run(&run)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(JobError::new(
                ErrorKind::Timeout,
                format!("the attempt ran past timeout_ms ({} ms)", job.timeout_ms),
            )),
        }
    }
}

impl Climb {
    /// Climbs from `start.first` while steps are blocked (only `auto` climbs).
    pub async fn run(job: &Job<'_>, start: &Start) -> Climb {
        let mut step = start.first.clone();
        let mut climb = Climb {
            outcome: Err(JobError::new(ErrorKind::Internal, "no rung ran")),
            tried: Vec::new(),
            observations: Vec::new(),
        };
        loop {
            let (outcome, tried) = climb.try_step(job, job.payload, &step).await;
            let blocked = tried.verdict == Some(Verdict::Blocked);
            climb.tried.push(tried);
            climb.outcome = outcome;
            let next = start
                .ladder
                .above(&step)
                .filter(|_| job.running.strategy == Strategy::Auto && blocked);
            match next {
                Some(next) if !job.stop.is_cancelled() => step = next.clone(),
                _ => return climb,
            }
        }
    }

    /// Runs one step and keeps what it taught; a throttle reaches every worker at once. A
    /// step whose tier has no proxy to give fails without a verdict: it says nothing of the
    /// site.
    async fn try_step(
        &mut self,
        job: &Job<'_>,
        payload: &Payload,
        step: &Step,
    ) -> (Rungs, TriedRung) {
        let running = job.running;
        let ran_with = job.attempts.ran_with(step.rung);
        let route = match job.route(step).await {
            Ok(route) => route,
            Err(error) => {
                let tried = TriedRung {
                    strategy: ran_with,
                    proxy_tier: step.tier.clone(),
                    verdict: None,
                };
                return (Err(error), tried);
            }
        };
        let tier = route.tier().map(str::to_owned);
        let began = Instant::now();
        let outcome = job.run_rung(payload, step.rung, route.clone()).await;
        let verdict = Verdict::of(&outcome);
        if let (Route::Via(relay), Some(verdict)) = (&route, verdict) {
            relay.judged(&running.domain, verdict == Verdict::Blocked);
        }
        if let Some(verdict) = verdict {
            self.observations.push(Observation {
                host: running.domain.clone(),
                job_id: running.id,
                rung: ran_with,
                tier: tier.clone(),
                verdict,
                latency_ms: u32::try_from(began.elapsed().as_millis()).unwrap_or(u32::MAX),
                at: chrono::Utc::now(),
            });
        }
        if verdict == Some(Verdict::Throttled) {
            let retry_after = outcome.as_ref().err().and_then(|e| e.retry_after_ms);
            let domains = &job.attempts.domains;
            domains.throttled(&running.domain, retry_after).await;
        }
        let tried = TriedRung {
            strategy: ran_with,
            proxy_tier: tier,
            verdict,
        };
        (outcome.map(|output| (output, ran_with)), tried)
    }

    /// After a success, maybe loads the page once more on the rung below, to learn whether
    /// the site still needs the dearer one ([`crate::memory::choose::probe_chance`]).
    pub async fn probe(&mut self, job: &Job<'_>, start: &Start) -> Option<TriedRung> {
        // Only a job that got through on its first step probes: one that climbed has just
        // seen the step below block (and has used more of its time budget).
        let [
            TriedRung {
                verdict: Some(Verdict::Success),
                ..
            },
        ] = self.tried[..]
        else {
            return None;
        };
        let below = start.ladder.below(&start.first)?.clone();
        if job.stop.is_cancelled() || !should_probe(&start.evidence, &below, &mut rand::rng()) {
            return None;
        }
        let (_, tried) = self
            .try_step(job, &probe_payload(job.payload), &below)
            .await;
        Some(tried)
    }
}
