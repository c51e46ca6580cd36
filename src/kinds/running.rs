//! A claimed job as a worker holds it, and what a kind's `run` gets (the attempt itself is
//! run one level up, in `attempt`).

use std::time::Duration;

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::JobType;

use crate::engine::browser::INSTALL_HINT;
use crate::engine::egress::Route;
use crate::engine::tally::Tally;
use crate::engine::{Attempt, Browser, Engine};
use crate::job::{ErrorKind, Hold, JobError, Priority, Rung, Strategy};

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
    /// The payload as stored ([`super::Payload::to_stored`]).
    pub payload: Value,
    /// This attempt's number (1-based); with `worker_id` it fences every later write.
    pub attempt: u32,
    /// How many attempts the job may use.
    pub max_attempts: u32,
    /// How long this attempt may run, in milliseconds.
    pub timeout_ms: u32,
    /// The worker holding the lease.
    pub worker_id: String,
    /// The tenant that owns it (whose profiles it may name).
    pub tenant_id: String,
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

    /// How long the whole attempt may run: each step `auto` climbs gets its own timeout
    /// (the direct rungs, then one per proxy tier of `tiers`).
    pub fn attempt_budget(&self, tiers: usize) -> Duration {
        let steps = if self.strategy == Strategy::Auto {
            Rung::ALL.len() + tiers
        } else {
            1
        };
        self.timeout() * u32::try_from(steps).unwrap_or(u32::MAX)
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
    /// How the rung's connections leave the worker (direct, or through a proxy).
    pub route: Route,
    /// What the attempt met and spent, every rung together.
    pub tally: Tally,
    /// The profile the job named, as loaded for this attempt.
    pub profile: Option<std::sync::Arc<crate::engine::profile::Carried>>,
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
            route: self.route.clone(),
            tally: self.tally.clone(),
            profile: self.profile.clone(),
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
