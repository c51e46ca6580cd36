//! Execution: the [`Executor`] trait and the engine that runs each job type and strategy.

pub mod block;
pub mod browser;
pub mod extract;
pub mod http;

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::job::spec::Payload;
use crate::job::target::TargetPolicy;
use crate::job::{ErrorKind, JobError, JobType, RunningJob, Strategy};

pub use browser::{BrowserRunner, BrowserTask};
pub use http::HttpExecutor;

/// What one attempt produced: a result, or a typed error.
pub type Outcome = Result<Value, JobError>;

/// Runs one attempt of a job.
#[async_trait]
pub trait Executor: Send + Sync + 'static {
    /// Executes `job`. The caller bounds the call with the job's timeout.
    async fn run(&self, job: &RunningJob) -> Outcome;
}

/// The engine: dispatches each job to the executor for its type and strategy.
#[derive(Debug, Clone)]
pub struct Engine {
    http: HttpExecutor,
    browser: Option<BrowserRunner>,
}

impl Engine {
    /// An engine whose network access obeys `policy`; browser jobs run in `browser` when
    /// there is one.
    pub fn new(
        policy: TargetPolicy,
        browser: Option<BrowserRunner>,
    ) -> Result<Engine, reqwest::Error> {
        Ok(Engine {
            http: HttpExecutor::new(policy)?,
            browser,
        })
    }

    /// The browser runner, when Chromium is available.
    pub fn browser(&self) -> Option<&BrowserRunner> {
        self.browser.as_ref()
    }
}

/// The browser strategy for an attempt: `auto` starts with vanilla and escalates to stealth
/// on retries.
fn browser_strategy(job: &RunningJob) -> Strategy {
    match job.strategy {
        Strategy::Auto if job.attempt <= 1 => Strategy::Vanilla,
        Strategy::Auto => Strategy::Stealth,
        other => other,
    }
}

fn unavailable(job_type: JobType) -> JobError {
    JobError::new(
        ErrorKind::BrowserUnavailable,
        format!(
            "job_type {job_type} needs Chromium and this worker has none; {}",
            browser::INSTALL_HINT
        ),
    )
}

#[async_trait]
impl Executor for Engine {
    async fn run(&self, job: &RunningJob) -> Outcome {
        let empty = serde_json::Map::new();
        let options = job.payload.as_object().unwrap_or(&empty);
        let payload = Payload::parse(job.job_type, options).map_err(|errors| {
            let fields: Vec<String> = errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.detail))
                .collect();
            JobError::new(ErrorKind::InvalidPayload, fields.join("; "))
        })?;
        let strategy = browser_strategy(job);
        match (payload, &self.browser) {
            (Payload::Noop { sleep }, _) => noop(sleep).await,
            (
                Payload::NavigateExtract {
                    selectors,
                    evaluate,
                    page,
                },
                browser,
            ) => {
                if job.strategy != Strategy::Http
                    && let Some(browser) = browser
                {
                    let task = BrowserTask::NavigateExtract {
                        selectors: &selectors,
                        evaluate: evaluate.as_deref(),
                    };
                    return browser.run(job, strategy, &page, task).await;
                }
                if evaluate.is_some() {
                    return Err(unavailable(job.job_type));
                }
                let request = http::NavigateRequest {
                    selectors: &selectors,
                    headers: &page.headers,
                    user_agent: page.user_agent.as_deref(),
                    cookies: &page.cookies,
                    locale: page.locale.as_deref(),
                };
                let timeout = Duration::from_millis(u64::from(job.timeout_ms));
                let mut result = self
                    .http
                    .navigate_extract(&job.url, &request, timeout)
                    .await?;
                if let Value::Object(map) = &mut result {
                    map.insert("executed_with".into(), json!(Strategy::Http));
                    if job.strategy != Strategy::Http {
                        map.insert(
                            "fallback_reason".into(),
                            json!(format!(
                                "Chromium is not available on this worker, so the job ran with the http strategy; {}",
                                browser::INSTALL_HINT
                            )),
                        );
                    }
                }
                Ok(result)
            }
            (Payload::Screenshot { page, shot }, Some(browser)) => {
                browser
                    .run(job, strategy, &page, BrowserTask::Screenshot(&shot))
                    .await
            }
            (Payload::Pdf { page, pdf }, Some(browser)) => {
                browser
                    .run(job, strategy, &page, BrowserTask::Pdf(&pdf))
                    .await
            }
            (Payload::Script { page, steps }, Some(browser)) => {
                browser
                    .run(job, strategy, &page, BrowserTask::Script(&steps))
                    .await
            }
            (Payload::Screenshot { .. } | Payload::Pdf { .. } | Payload::Script { .. }, None) => {
                Err(unavailable(job.job_type))
            }
        }
    }
}

/// Succeeds after `sleep`; touches no network.
async fn noop(sleep: Duration) -> Outcome {
    if !sleep.is_zero() {
        tokio::time::sleep(sleep).await;
    }
    Ok(json!({"job_type": JobType::Noop, "slept_ms": sleep.as_millis() as u64}))
}
