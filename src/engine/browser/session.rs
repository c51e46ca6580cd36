//! One job's open page: the handle job kinds work with. The toolkit's parts (setup,
//! interception, navigation, capture, actions) are `impl Session` blocks in their own files.

use std::time::Duration;

use chromiumoxide::Page;
use chromiumoxide::cdp::js_protocol::runtime::{EvaluateParams, ExecutionContextId};
use serde::Serialize;
use serde_json::{Value, json};
use tracing::warn;

use super::Browser;
use super::capture::{ImageFormat, ScreenshotOptions};
use super::page::JobPage;
use super::warden::Taught;
use super::world::OwnWorld;
use crate::artifact::ArtifactRecord;
use crate::engine::Attempt;
use crate::engine::egress::SharedRefusals;
use crate::engine::options::PageOptions;
use crate::job::{ErrorKind, JobError, Strategy};

/// How often a selector wait polls the page.
const SELECTOR_POLL: Duration = Duration::from_millis(50);

/// A file a job produced, as results list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ArtifactRef {
    /// The file name.
    pub name: String,
    /// Its media type.
    pub content_type: String,
    /// Its size.
    pub bytes: u64,
    /// Hex SHA-256 of its content.
    pub sha256: String,
    /// Where the API serves it.
    pub url: String,
}

impl From<&ArtifactRecord> for ArtifactRef {
    fn from(record: &ArtifactRecord) -> Self {
        ArtifactRef {
            name: record.name.clone(),
            content_type: record.content_type.clone(),
            bytes: record.bytes,
            sha256: record.sha256.clone(),
            url: record.url(),
        }
    }
}

/// One job's page in its own browser context, with the job's options applied.
pub struct Session {
    pub(super) page: JobPage,
    pub(super) attempt: Attempt,
    pub(super) browser: Browser,
    pub(super) strategy: Strategy,
    pub(super) options: PageOptions,
    pub(super) deadline: tokio::time::Instant,
    pub(super) refusals: SharedRefusals,
    pub(super) artifacts: Vec<ArtifactRecord>,
    /// What this page's workers are told while it lives (stealth).
    pub(super) taught: Option<Taught>,
    /// Where the toolkit looks at the page from (stealth).
    pub(super) own_world: OwnWorld,
}

impl Session {
    /// The page.
    pub fn page(&self) -> &Page {
        self.page.page()
    }

    /// The browser flavour this attempt runs with (`vanilla` or `stealth`).
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The attempt this page belongs to.
    pub fn attempt(&self) -> &Attempt {
        &self.attempt
    }

    /// The files this job has kept so far.
    pub fn artifacts(&self) -> Vec<ArtifactRef> {
        self.artifacts.iter().map(ArtifactRef::from).collect()
    }

    /// Evaluates `expression` in the page's world (awaiting promises) and returns its JSON
    /// value: what a job's own `evaluate` sees. The toolkit's looks go through
    /// [`Session::inspect`].
    pub async fn evaluate(&self, expression: &str) -> Result<Value, JobError> {
        self.evaluate_in(expression, None).await
    }

    /// Evaluates `expression` in `world` (the page's main world when none).
    pub(super) async fn evaluate_in(
        &self,
        expression: &str,
        world: Option<ExecutionContextId>,
    ) -> Result<Value, JobError> {
        let mut params = EvaluateParams::builder()
            .expression(expression)
            .return_by_value(true)
            .await_promise(true)
            .user_gesture(true)
            .build()
            .map_err(|e| cdp_error("building an evaluation", e))?;
        params.context_id = world;
        let evaluated = self
            .page()
            .execute(params)
            .await
            .map_err(|e| JobError::new(ErrorKind::Script, format!("evaluation failed: {e}")))?
            .result;
        if let Some(exception) = evaluated.exception_details {
            let detail = exception
                .exception
                .as_ref()
                .and_then(|e| e.description.clone())
                .unwrap_or(exception.text);
            return Err(JobError::new(
                ErrorKind::Script,
                format!("the expression threw: {detail}"),
            ));
        }
        Ok(evaluated.result.value.unwrap_or(Value::Null))
    }

    /// The document as HTML, doctype included.
    pub async fn html(&self) -> Result<String, JobError> {
        let value = self
            .inspect(
                "(document.doctype ? new XMLSerializer().serializeToString(document.doctype) : '') + (document.documentElement ? document.documentElement.outerHTML : '')",
            )
            .await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// Waits until an element matches `css`, polling, until the job's deadline.
    pub async fn wait_for_selector(&self, css: &str) -> Result<(), JobError> {
        let probe = format!("document.querySelector({}) !== null", json!(css));
        loop {
            if self.inspect(&probe).await? == Value::Bool(true) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= self.deadline {
                return Err(JobError::new(
                    ErrorKind::Timeout,
                    format!("no element matched {css:?} before the job's timeout"),
                ));
            }
            tokio::time::sleep(SELECTOR_POLL).await;
        }
    }

    /// Stores a file for the job and remembers it for the result.
    pub async fn keep(
        &mut self,
        name: &str,
        content_type: &str,
        data: Vec<u8>,
    ) -> Result<ArtifactRef, JobError> {
        let record = self
            .browser
            .artifacts
            .put(
                self.attempt.id,
                &self.attempt.hold,
                name,
                content_type,
                data,
            )
            .await
            .map_err(|e| JobError::new(ErrorKind::Internal, format!("storing {name}: {e}")))?;
        self.artifacts.retain(|a| a.name != record.name);
        let kept = ArtifactRef::from(&record);
        self.artifacts.push(record);
        Ok(kept)
    }

    /// Keeps `failure.png` and `failure.html` of the page as it is, within `budget`;
    /// returns their urls.
    pub(super) async fn keep_failure(&mut self, budget: Duration) -> Vec<String> {
        let capture = async {
            let mut urls = Vec::new();
            if let Ok(png) = self.screenshot(&ScreenshotOptions::default()).await
                && let Ok(kept) = self
                    .keep("failure.png", ImageFormat::Png.content_type(), png)
                    .await
            {
                urls.push(kept.url);
            }
            if let Ok(html) = self.html().await
                && let Ok(kept) = self
                    .keep(
                        "failure.html",
                        "text/html; charset=utf-8",
                        html.into_bytes(),
                    )
                    .await
            {
                urls.push(kept.url);
            }
            urls
        };
        match tokio::time::timeout(budget, capture).await {
            Ok(urls) => urls,
            Err(_) => {
                warn!(job = %self.attempt.id, "capturing failure artifacts timed out");
                Vec::new()
            }
        }
    }
}

/// An unexpected answer of the browser.
pub(super) fn cdp_error(what: &str, error: impl std::fmt::Display) -> JobError {
    JobError::new(ErrorKind::Internal, format!("{what}: {error}"))
}
