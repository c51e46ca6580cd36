//! Real Chromium over the DevTools protocol, as a toolkit for job kinds: a pool of browsers,
//! and [`Browser::run`], which gives a job a fresh page with its options applied, bounds its
//! work by the job's timeout and the browser's life, keeps failure artifacts and disposes
//! the page however the work ends.

pub mod actions;
pub mod capture;
mod dialogs;
mod intercept;
pub mod navigate;
mod page;
mod persona;
pub mod pool;
pub mod process;
mod profile;
pub mod session;
mod setup;
pub mod stealth;
mod warden;
mod world;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tracing::debug;

use super::Attempt;
use super::egress::{Egress, Route};
use super::options::PageOptions;
use super::tally::Tally;
use crate::artifact::ArtifactStore;
use crate::job::target::TargetPolicy;
use crate::job::{ErrorKind, JobError, Strategy};

pub use capture::{ImageFormat, Paper, PdfOptions, ScreenshotOptions};
pub use navigate::{DocumentResponse, judge_rendered};
pub use page::JobPage;
pub use persona::{DEFAULT_LOCALE, PersonaDefaults};
pub use pool::{BrowserPool, PoolConfig, PoolError, PoolStats};
pub use process::{INSTALL_HINT, LAUNCH_ARGS, find_chrome, sandboxed};
pub use session::{ArtifactRef, Session};

/// The most time failure artifacts may take to capture (less when the job's timeout is near).
const FAILURE_CAPTURE: Duration = Duration::from_secs(3);

/// Runs job work in a pool of Chromium processes, each job in its own context.
#[derive(Debug, Clone)]
pub struct Browser {
    pool: BrowserPool,
    policy: TargetPolicy,
    artifacts: ArtifactStore,
    user_agent: Arc<OnceLock<String>>,
    /// The stealth persona's settings.
    persona: Arc<PersonaDefaults>,
}

impl Browser {
    /// A toolkit over `pool` whose pages obey `policy` and keep files in `artifacts`.
    pub fn new(pool: BrowserPool, policy: TargetPolicy, artifacts: ArtifactStore) -> Browser {
        Browser {
            pool,
            policy,
            artifacts,
            user_agent: Arc::new(OnceLock::new()),
            persona: Arc::new(PersonaDefaults::default()),
        }
    }

    /// The same toolkit, whose stealth pages take `persona` for what jobs leave out.
    pub fn with_persona(mut self, persona: PersonaDefaults) -> Browser {
        self.persona = Arc::new(persona);
        self
    }

    /// The pool.
    pub fn pool(&self) -> &BrowserPool {
        &self.pool
    }

    /// Opens a fresh page set up for `strategy` (vanilla or stealth) and `options`, and runs
    /// `work` on it within the attempt's timeout. A fifth of the timeout (at most 2 s) is kept
    /// to save `failure.png` and `failure.html` when the work fails, and to dispose the page.
    pub async fn run<T>(
        &self,
        attempt: &Attempt,
        strategy: Strategy,
        options: &PageOptions,
        work: impl AsyncFnOnce(&mut Session) -> Result<T, JobError>,
    ) -> Result<T, JobError> {
        let margin = (attempt.timeout / 5).min(Duration::from_secs(2));
        let deadline = tokio::time::Instant::now() + attempt.timeout - margin;
        let started = Instant::now();
        let (egress, page) = self
            .open(deadline, attempt.route.clone(), attempt.tally.clone())
            .await?;
        let refusals = egress.refusals().clone();
        let died = page.died();
        tokio::pin!(died);
        let mut session = Session {
            page,
            attempt: attempt.clone(),
            browser: self.clone(),
            strategy,
            options: options.clone(),
            deadline,
            refusals,
            artifacts: Vec::new(),
            taught: None,
            own_world: Default::default(),
        };
        let prepared = tokio::select! {
            prepared = session.prepare() => prepared,
            () = &mut died => Err(crashed()),
        };
        let helpers = match prepared {
            Ok(helpers) => helpers,
            Err(error) => {
                let error = crashed_or(&session.page, error).await;
                session.page.close().await;
                return Err(error);
            }
        };
        let prepared_ms = started.elapsed().as_millis() as u64;
        let performed = tokio::select! {
            performed = tokio::time::timeout_at(deadline, work_then_capture(&mut session, work)) => {
                performed.unwrap_or_else(|_| Err(JobError::new(
                    ErrorKind::Timeout,
                    format!("the attempt ran past timeout_ms ({} ms)", attempt.timeout.as_millis()),
                )))
            }
            () = &mut died => Err(crashed()),
        };
        let outcome = match performed {
            Ok(value) => Ok(value),
            Err(error) => Err(session.failed(error, deadline + margin).await),
        };
        for helper in helpers {
            helper.abort();
        }
        let performed_ms = started.elapsed().as_millis() as u64;
        session.page.close().await;
        drop(egress);
        attempt
            .tally
            .browser_ms(started.elapsed().as_millis() as u64);
        debug!(
            job = %attempt.id,
            prepared_ms,
            performed_ms,
            closed_ms = started.elapsed().as_millis() as u64,
            "browser job timings (cumulative)"
        );
        outcome
    }
}

/// Runs the job's work; after a success, takes what the page left for a saving profile.
async fn work_then_capture<T>(
    session: &mut Session,
    work: impl AsyncFnOnce(&mut Session) -> Result<T, JobError>,
) -> Result<T, JobError> {
    let value = work(session).await?;
    session.capture_profile().await?;
    Ok(value)
}

impl Browser {
    /// The job's own egress proxy, and a fresh page in a context of its own that leaves
    /// through it (waiting for a free context until `deadline`).
    async fn open(
        &self,
        deadline: tokio::time::Instant,
        route: Route,
        tally: Tally,
    ) -> Result<(Egress, JobPage), JobError> {
        let egress = Egress::start(self.policy, route, tally)
            .await
            .map_err(|e| {
                JobError::new(
                    ErrorKind::Internal,
                    format!("cannot start the job's network proxy: {e}"),
                )
            })?;
        let page = tokio::time::timeout_at(deadline, self.pool.open(&egress.proxy_server()))
            .await
            .map_err(|_| {
                JobError::new(
                    ErrorKind::Timeout,
                    "no browser context became free before the job's timeout",
                )
            })?
            .map_err(pool_error)?;
        Ok((egress, page))
    }
}

impl Session {
    /// Explains a failure: `browser_crashed` when the browser died under it, else the error
    /// with the page's failure artifacts, captured before `end`.
    async fn failed(&mut self, error: JobError, end: tokio::time::Instant) -> JobError {
        let mut error = crashed_or(&self.page, error).await;
        if error.kind != ErrorKind::BrowserCrashed {
            let budget = end
                .saturating_duration_since(tokio::time::Instant::now())
                .saturating_sub(Duration::from_millis(300))
                .min(FAILURE_CAPTURE);
            error.artifacts = self.keep_failure(budget).await;
        }
        error
    }
}

fn pool_error(error: PoolError) -> JobError {
    match error {
        // The browser exists but would not start, or the worker is stopping: try again later.
        PoolError::Launch { .. } | PoolError::Closed => {
            JobError::new(ErrorKind::BrowserUnavailable, error.to_string()).retryable(true)
        }
        PoolError::Crashed(_) => JobError::new(ErrorKind::BrowserCrashed, error.to_string()),
    }
}

fn crashed() -> JobError {
    JobError::new(
        ErrorKind::BrowserCrashed,
        "the browser died while running the job",
    )
}

/// Turns an error into `browser_crashed` when the browser died under the job.
async fn crashed_or(page: &JobPage, error: JobError) -> JobError {
    let suspicious = matches!(
        error.kind,
        ErrorKind::Navigation | ErrorKind::Internal | ErrorKind::Timeout | ErrorKind::Script
    );
    if suspicious && page.browser_died_within(Duration::from_millis(500)).await {
        JobError::new(
            ErrorKind::BrowserCrashed,
            format!("the browser died while running the job ({})", error.message),
        )
    } else {
        error
    }
}
