//! Execution: the [`Executor`] trait and the engine that runs each job type and strategy.

pub mod extract;
pub mod http;

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::job::spec::Payload;
use crate::job::target::TargetPolicy;
use crate::job::{ErrorKind, JobError, JobType, RunningJob, Strategy};

pub use http::HttpExecutor;

/// What one attempt produced: a result, or a typed error.
pub type Outcome = Result<Value, JobError>;

/// Runs one attempt of a job.
#[async_trait]
pub trait Executor: Send + Sync + 'static {
    /// Executes `job`. The caller bounds the call with the job's timeout.
    async fn run(&self, job: &RunningJob) -> Outcome;
}

/// Why a browser strategy ran over plain HTTP.
const NO_BROWSER_YET: &str =
    "this build has no browser engine yet; the job ran with the http strategy";

/// The engine: dispatches each job to the executor for its type and strategy.
#[derive(Debug, Clone)]
pub struct Engine {
    http: HttpExecutor,
}

impl Engine {
    /// An engine whose network access obeys `policy`.
    pub fn new(policy: TargetPolicy) -> Result<Engine, reqwest::Error> {
        Ok(Engine {
            http: HttpExecutor::new(policy)?,
        })
    }
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
        match payload {
            Payload::Noop { sleep } => noop(sleep).await,
            Payload::NavigateExtract {
                selectors,
                headers,
                user_agent,
            } => {
                let request = http::NavigateRequest {
                    selectors: &selectors,
                    headers: &headers,
                    user_agent: user_agent.as_deref(),
                };
                let timeout = Duration::from_millis(u64::from(job.timeout_ms));
                let mut result = self
                    .http
                    .navigate_extract(&job.url, &request, timeout)
                    .await?;
                if let Value::Object(map) = &mut result {
                    map.insert("executed_with".into(), json!(Strategy::Http));
                    if job.strategy != Strategy::Http {
                        map.insert("fallback_reason".into(), json!(NO_BROWSER_YET));
                    }
                }
                Ok(result)
            }
            Payload::Unsupported => Err(JobError::new(
                ErrorKind::InvalidPayload,
                format!("job_type {} is not supported by this worker", job.job_type),
            )),
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
