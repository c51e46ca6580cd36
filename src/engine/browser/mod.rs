//! Browser jobs in real Chromium over the DevTools protocol: the pool, the `vanilla` and
//! `stealth` strategies, and the `navigate_extract`, `screenshot`, `pdf` and `script` job types.

pub mod pool;
pub mod stealth;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::browser::GetVersionParams;
use chromiumoxide::cdp::browser_protocol::emulation::{
    SetAutomationOverrideParams, SetDeviceMetricsOverrideParams, SetLocaleOverrideParams,
    SetTimezoneOverrideParams, UserAgentBrandVersion, UserAgentMetadata,
};
use chromiumoxide::cdp::browser_protocol::fetch::{
    self, ContinueRequestParams, EventRequestPaused, FailRequestParams, RequestPattern,
    RequestStage,
};
use chromiumoxide::cdp::browser_protocol::network::{
    CookieParam, ErrorReason, EventResponseReceived, Headers, ResourceType, SetCookiesParams,
    SetExtraHttpHeadersParams, SetUserAgentOverrideParams,
};
use chromiumoxide::cdp::browser_protocol::page::{
    AddScriptToEvaluateOnNewDocumentParams, CaptureScreenshotFormat, CaptureScreenshotParams,
    EventLifecycleEvent, GetLayoutMetricsParams, NavigateParams, PrintToPdfParams, Viewport,
};
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use futures::{FutureExt, StreamExt};
use serde_json::{Map, Value, json};
use tracing::{debug, warn};
use url::Url;

use super::Outcome;
use super::block::{self, Signals};
use super::extract;
use crate::artifact::ArtifactStore;
use crate::job::browser_spec::{
    BlockedResource, ImageFormat, PageOptions, PdfOptions, ScreenshotOptions, Step, WaitUntil,
};
use crate::job::spec::SelectorSpec;
use crate::job::target::TargetPolicy;
use crate::job::{ErrorKind, JobError, RunningJob, Strategy};
use crate::store::ArtifactRecord;

pub use pool::{BrowserPool, INSTALL_HINT, PoolConfig, PoolError, PoolStats, find_chrome};

/// Chromium's command line (without leading dashes; see STACK.md). `headless` is added by the
/// launcher.
pub const LAUNCH_ARGS: &[&str] = &[
    "disable-gpu",
    "disable-quic",
    "no-first-run",
    "no-default-browser-check",
    "disable-background-networking",
    "disable-component-update",
    "disable-sync",
    "disable-breakpad",
    "disable-crash-reporter",
    "disable-default-apps",
    "disable-extensions",
    "disable-client-side-phishing-detection",
    "disable-hang-monitor",
    "disable-prompt-on-repost",
    "disable-background-timer-throttling",
    "disable-backgrounding-occluded-windows",
    "disable-renderer-backgrounding",
    "disable-ipc-flooding-protection",
    "metrics-recording-only",
    "password-store=basic",
    "use-mock-keychain",
    "force-color-profile=srgb",
    "hide-scrollbars",
    "mute-audio",
    "lang=en-US",
    "window-size=1920,1080",
    // One renderer per page, iframes included, so every frame gets the same evasions.
    "disable-features=Translate,OptimizationHints,MediaRouter,IsolateOrigins,site-per-process",
    // navigator.webdriver stays false everywhere (workers too); `vanilla` turns it back on
    // per page with Emulation.setAutomationOverride.
    "disable-blink-features=AutomationControlled",
];

/// The largest `evaluate` result kept, in bytes of JSON.
pub const MAX_EVALUATE_BYTES: usize = 1024 * 1024;
/// The tallest full-page screenshot, in CSS pixels.
pub const MAX_FULL_PAGE_HEIGHT: f64 = 16_384.0;
/// The most time failure artifacts may take to capture (less when the job's timeout is near).
const FAILURE_CAPTURE: Duration = Duration::from_secs(3);
/// How often a selector wait polls the page.
const SELECTOR_POLL: Duration = Duration::from_millis(50);

/// Runs browser jobs in a pool of Chromium processes.
#[derive(Debug, Clone)]
pub struct BrowserRunner {
    pool: BrowserPool,
    policy: TargetPolicy,
    artifacts: ArtifactStore,
    user_agent: Arc<OnceLock<String>>,
}

/// What a browser job type does after the page is open.
#[derive(Debug, Clone, Copy)]
pub enum BrowserTask<'a> {
    /// Extract the rendered page.
    NavigateExtract {
        /// Named selectors.
        selectors: &'a [(String, SelectorSpec)],
        /// An expression to evaluate.
        evaluate: Option<&'a str>,
    },
    /// Capture an image.
    Screenshot(&'a ScreenshotOptions),
    /// Print to PDF.
    Pdf(&'a PdfOptions),
    /// Run steps.
    Script(&'a [Step]),
}

/// The main document's response, as the browser saw it.
#[derive(Debug, Clone, Default)]
struct DocumentResponse {
    status: u16,
    url: String,
    mime_type: String,
    retry_after: Option<String>,
    cf_mitigated: Option<String>,
}

/// What the request interceptor refused, so a refused navigation can be explained.
#[derive(Debug, Default)]
struct Refusals {
    policy: Vec<String>,
}

/// The per-job state of an open page.
struct Session<'a> {
    page: &'a Page,
    job: &'a RunningJob,
    runner: &'a BrowserRunner,
    wait_until: &'a WaitUntil,
    deadline: tokio::time::Instant,
    refusals: Arc<Mutex<Refusals>>,
    artifacts: Vec<ArtifactRecord>,
}

impl BrowserRunner {
    /// A runner over `pool`, whose pages obey `policy` and store files in `artifacts`.
    pub fn new(pool: BrowserPool, policy: TargetPolicy, artifacts: ArtifactStore) -> BrowserRunner {
        BrowserRunner {
            pool,
            policy,
            artifacts,
            user_agent: Arc::new(OnceLock::new()),
        }
    }

    /// The pool.
    pub fn pool(&self) -> &BrowserPool {
        &self.pool
    }

    /// Runs one attempt of a browser job with `strategy` (vanilla or stealth).
    pub async fn run(
        &self,
        job: &RunningJob,
        strategy: Strategy,
        options: &PageOptions,
        task: BrowserTask<'_>,
    ) -> Outcome {
        let timeout = Duration::from_millis(u64::from(job.timeout_ms));
        // Leave room inside the job's timeout to keep failure artifacts and close the page.
        let margin = (timeout / 5).min(Duration::from_secs(2));
        let deadline = tokio::time::Instant::now() + timeout - margin;
        let started = Instant::now();
        let page = tokio::time::timeout_at(deadline, self.pool.open())
            .await
            .map_err(|_| {
                JobError::new(
                    ErrorKind::Timeout,
                    "no browser context became free before the job's timeout",
                )
            })?
            .map_err(pool_error)?;
        let opened_ms = started.elapsed().as_millis() as u64;
        let refusals = Arc::new(Mutex::new(Refusals::default()));
        let mut session = Session {
            page: page.page(),
            job,
            runner: self,
            wait_until: &options.wait_until,
            deadline,
            refusals,
            artifacts: Vec::new(),
        };
        let died = page.died();
        tokio::pin!(died);
        let prepared = tokio::select! {
            prepared = session.prepare(strategy, options) => prepared,
            () = &mut died => Err(crashed()),
        };
        let interceptor = match prepared {
            Ok(interceptor) => interceptor,
            Err(error) => {
                let error = crashed_or(&page, error).await;
                page.close().await;
                return Err(error);
            }
        };
        let prepared_ms = started.elapsed().as_millis() as u64;
        let performed = tokio::select! {
            performed = tokio::time::timeout_at(deadline, session.perform(task)) => performed,
            () = &mut died => Ok(Err(crashed())),
        };
        let outcome = match performed {
            Ok(outcome) => outcome,
            Err(_) => Err(JobError::new(
                ErrorKind::Timeout,
                format!("the attempt ran past timeout_ms ({} ms)", job.timeout_ms),
            )),
        };
        let outcome = match outcome {
            Ok(mut result) => {
                if let Value::Object(map) = &mut result {
                    map.insert("executed_with".into(), json!(strategy));
                    map.insert(
                        "artifacts".into(),
                        Value::Array(session.artifacts.iter().map(artifact_json).collect()),
                    );
                }
                Ok(result)
            }
            Err(error) => {
                let mut error = crashed_or(&page, error).await;
                if error.kind != ErrorKind::BrowserCrashed {
                    // Stay inside the job's timeout: the margin was kept for this.
                    let budget = (deadline + margin)
                        .saturating_duration_since(tokio::time::Instant::now())
                        .saturating_sub(Duration::from_millis(300))
                        .min(FAILURE_CAPTURE);
                    error.artifacts = session.keep_failure(budget).await;
                }
                Err(error)
            }
        };
        if let Some(interceptor) = interceptor {
            interceptor.abort();
        }
        let performed_ms = started.elapsed().as_millis() as u64;
        page.close().await;
        debug!(
            job = %job.id,
            opened_ms,
            prepared_ms,
            performed_ms,
            closed_ms = started.elapsed().as_millis() as u64,
            "browser job timings (cumulative)"
        );
        outcome
    }

    async fn browser_user_agent(&self, page: &Page) -> Option<String> {
        if let Some(ua) = self.user_agent.get() {
            return Some(ua.clone());
        }
        let version = page.execute(GetVersionParams::default()).await.ok()?;
        let ua = version.result.user_agent.clone();
        let _ = self.user_agent.set(ua.clone());
        Some(ua)
    }
}

fn artifact_json(record: &ArtifactRecord) -> Value {
    json!({
        "name": record.name,
        "content_type": record.content_type,
        "bytes": record.bytes,
        "sha256": record.sha256,
        "url": record.url(),
    })
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
async fn crashed_or(page: &pool::JobPage, error: JobError) -> JobError {
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

fn cdp_error(what: &str, error: impl std::fmt::Display) -> JobError {
    JobError::new(ErrorKind::Internal, format!("{what}: {error}"))
}

fn resource_type(kind: BlockedResource) -> ResourceType {
    match kind {
        BlockedResource::Image => ResourceType::Image,
        BlockedResource::Font => ResourceType::Font,
        BlockedResource::Media => ResourceType::Media,
        BlockedResource::Stylesheet => ResourceType::Stylesheet,
    }
}

impl Session<'_> {
    /// Applies the strategy and page options before the first navigation; returns the
    /// request interceptor's task when one runs.
    async fn prepare(
        &mut self,
        strategy: Strategy,
        options: &PageOptions,
    ) -> Result<Option<tokio::task::JoinHandle<()>>, JobError> {
        let page = self.page;
        let browser_ua = self.runner.browser_user_agent(page).await;
        let stealth = strategy == Strategy::Stealth;
        let user_agent = match (&options.user_agent, stealth, &browser_ua) {
            (Some(ua), _, _) => Some(ua.clone()),
            (None, true, Some(ua)) => Some(stealth::clean_user_agent(ua)),
            _ => None,
        };
        if user_agent.is_some() || options.locale.is_some() {
            let ua = user_agent
                .clone()
                .or_else(|| browser_ua.clone())
                .unwrap_or_default();
            let mut params = SetUserAgentOverrideParams::builder().user_agent(ua.clone());
            if let Some(locale) = &options.locale {
                params = params.accept_language(accept_language(locale));
            }
            if stealth {
                let major = stealth::major_version(&ua).unwrap_or_else(|| "156".into());
                let brands = vec![
                    UserAgentBrandVersion::new("Chromium", major.clone()),
                    UserAgentBrandVersion::new("Not_A Brand", "24"),
                ];
                let metadata = UserAgentMetadata::builder()
                    .brands(brands)
                    .platform("Linux")
                    .platform_version("")
                    .architecture("x86")
                    .model("")
                    .mobile(false)
                    .bitness("64")
                    .build()
                    .map_err(|e| cdp_error("user agent metadata", e))?;
                params = params
                    .platform("Linux x86_64")
                    .user_agent_metadata(metadata);
            }
            let params = params
                .build()
                .map_err(|e| cdp_error("user agent override", e))?;
            page.execute(params)
                .await
                .map_err(|e| cdp_error("setting the user agent", e))?;
        }
        if stealth {
            page.execute(AddScriptToEvaluateOnNewDocumentParams::new(
                stealth::EVASIONS_JS,
            ))
            .await
            .map_err(|e| cdp_error("installing the stealth evasions", e))?;
        } else {
            // Chromium as shipped under automation reports navigator.webdriver = true.
            page.execute(SetAutomationOverrideParams::new(true))
                .await
                .map_err(|e| cdp_error("setting the automation flag", e))?;
        }
        page.execute(SetDeviceMetricsOverrideParams::new(
            i64::from(options.viewport.width),
            i64::from(options.viewport.height),
            1.0,
            false,
        ))
        .await
        .map_err(|e| cdp_error("setting the viewport", e))?;
        if let Some(locale) = &options.locale {
            let params = SetLocaleOverrideParams::builder()
                .locale(locale.replace('-', "_"))
                .build();
            if let Err(e) = page.execute(params).await {
                return Err(JobError::new(
                    ErrorKind::InvalidPayload,
                    format!("payload.locale {locale:?} was refused by the browser: {e}"),
                ));
            }
        }
        if let Some(timezone) = &options.timezone
            && let Err(e) = page
                .execute(SetTimezoneOverrideParams::new(timezone.clone()))
                .await
        {
            return Err(JobError::new(
                ErrorKind::InvalidPayload,
                format!("payload.timezone {timezone:?} was refused by the browser: {e}"),
            ));
        }
        if !options.headers.is_empty() {
            let headers: Map<String, Value> = options
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            page.execute(SetExtraHttpHeadersParams::new(Headers::new(Value::Object(
                headers,
            ))))
            .await
            .map_err(|e| cdp_error("setting request headers", e))?;
        }
        if !options.cookies.is_empty() {
            let mut cookies = Vec::with_capacity(options.cookies.len());
            for cookie in &options.cookies {
                let mut param = CookieParam::builder()
                    .name(cookie.name.clone())
                    .value(cookie.value.clone())
                    .path(cookie.path.clone().unwrap_or_else(|| "/".into()))
                    .secure(cookie.secure)
                    .http_only(cookie.http_only);
                param = match &cookie.domain {
                    Some(domain) => param.domain(domain.clone()),
                    None => param.url(self.job.url.clone()),
                };
                cookies.push(param.build().map_err(|e| cdp_error("a cookie", e))?);
            }
            page.execute(SetCookiesParams::new(cookies))
                .await
                .map_err(|e| {
                    JobError::new(
                        ErrorKind::InvalidPayload,
                        format!("payload.cookies were refused by the browser: {e}"),
                    )
                })?;
        }
        self.intercept(&options.block).await
    }

    /// Refuses blocked resource types and, unless private targets are allowed, every
    /// request whose host is refused by the target policy.
    async fn intercept(
        &self,
        block: &[BlockedResource],
    ) -> Result<Option<tokio::task::JoinHandle<()>>, JobError> {
        let check_policy = !self.runner.policy.allows_private();
        if block.is_empty() && !check_policy {
            return Ok(None);
        }
        let patterns: Vec<RequestPattern> = if check_policy {
            vec![
                RequestPattern::builder()
                    .url_pattern("*")
                    .request_stage(RequestStage::Request)
                    .build(),
            ]
        } else {
            block
                .iter()
                .map(|kind| {
                    RequestPattern::builder()
                        .url_pattern("*")
                        .resource_type(resource_type(*kind))
                        .request_stage(RequestStage::Request)
                        .build()
                })
                .collect()
        };
        let mut paused = self
            .page
            .event_listener::<EventRequestPaused>()
            .await
            .map_err(|e| cdp_error("listening for requests", e))?;
        self.page
            .execute(fetch::EnableParams::builder().patterns(patterns).build())
            .await
            .map_err(|e| cdp_error("enabling request interception", e))?;
        let page = self.page.clone();
        let policy = self.runner.policy;
        let blocked: Vec<ResourceType> = block.iter().map(|k| resource_type(*k)).collect();
        let refusals = Arc::clone(&self.refusals);
        Ok(Some(tokio::spawn(async move {
            while let Some(event) = paused.next().await {
                let request_id = event.request_id.clone();
                let refuse_type = blocked.contains(&event.resource_type);
                let refuse_target = if check_policy && !refuse_type {
                    match Url::parse(&event.request.url) {
                        Ok(url) if matches!(url.scheme(), "http" | "https") => {
                            policy.check_url(&url).await.err().map(|e| e.to_string())
                        }
                        _ => None,
                    }
                } else {
                    None
                };
                let result = if refuse_type || refuse_target.is_some() {
                    if let Some(why) = refuse_target
                        && let Ok(mut refusals) = refusals.lock()
                    {
                        refusals.policy.push(why);
                    }
                    page.execute(FailRequestParams::new(
                        request_id,
                        ErrorReason::BlockedByClient,
                    ))
                    .await
                    .map(|_| ())
                } else {
                    page.execute(ContinueRequestParams::new(request_id))
                        .await
                        .map(|_| ())
                };
                if let Err(e) = result {
                    debug!(error = %e, "answering an intercepted request failed");
                }
            }
        })))
    }

    /// Runs the job type's work.
    async fn perform(&mut self, task: BrowserTask<'_>) -> Outcome {
        let url = self.job.url.clone();
        let response = self.navigate(&url, self.wait_until).await?;
        match task {
            BrowserTask::NavigateExtract {
                selectors,
                evaluate,
            } => self.navigate_extract(&response, selectors, evaluate).await,
            BrowserTask::Screenshot(shot) => {
                self.check_document(&response).await?;
                let (data, format) = self.screenshot(shot).await?;
                let name = format!("screenshot.{}", format.extension());
                let record = self.keep(&name, format.content_type(), data).await?;
                Ok(json!({
                    "status_code": response.status,
                    "final_url": response.url,
                    "screenshot": artifact_json(&record),
                }))
            }
            BrowserTask::Pdf(pdf) => {
                self.check_document(&response).await?;
                let data = self.pdf(pdf).await?;
                let record = self.keep("page.pdf", "application/pdf", data).await?;
                Ok(json!({
                    "status_code": response.status,
                    "final_url": response.url,
                    "pdf": artifact_json(&record),
                }))
            }
            BrowserTask::Script(steps) => {
                self.check_document(&response).await?;
                self.script(steps).await
            }
        }
    }

    /// Fails on error statuses, challenges and captchas.
    async fn check_document(&self, response: &DocumentResponse) -> Result<(), JobError> {
        // An empty page is a fine thing to screenshot or print: only extraction expects content.
        let html = self.html().await.unwrap_or_default();
        judge(response, &html, false)
    }

    /// Navigates the main frame to `url` and waits as asked.
    async fn navigate(&self, url: &str, wait: &WaitUntil) -> Result<DocumentResponse, JobError> {
        let page = self.page;
        let started = Instant::now();
        let mut lifecycle = page
            .event_listener::<EventLifecycleEvent>()
            .await
            .map_err(|e| cdp_error("listening for page events", e))?;
        let mut responses = page
            .event_listener::<EventResponseReceived>()
            .await
            .map_err(|e| cdp_error("listening for responses", e))?;
        let navigated = page
            .execute(NavigateParams::new(url))
            .await
            .map_err(|e| JobError::new(ErrorKind::Navigation, format!("navigating to {url}: {e}")))?
            .result;
        if let Some(error_text) = navigated.error_text.filter(|t| !t.is_empty()) {
            let refused = self
                .refusals
                .lock()
                .ok()
                .and_then(|r| r.policy.first().cloned());
            return Err(match refused {
                Some(why) => JobError::new(ErrorKind::TargetPolicy, why),
                None => JobError::new(
                    ErrorKind::Navigation,
                    format!("navigating to {url} failed: {error_text}"),
                ),
            });
        }
        let frame = navigated.frame_id;
        if let Some(loader) = navigated.loader_id.clone() {
            let target = match wait {
                WaitUntil::Load => "load",
                WaitUntil::DomContentLoaded | WaitUntil::Selector(_) => "DOMContentLoaded",
                WaitUntil::NetworkIdle => "networkIdle",
            };
            while let Some(event) = lifecycle.next().await {
                if event.frame_id == frame && event.loader_id == loader && event.name == target {
                    break;
                }
            }
        }
        if let WaitUntil::Selector(css) = wait {
            self.wait_for_selector(css).await?;
        }
        let mut document = DocumentResponse {
            status: 200,
            url: url.to_owned(),
            ..DocumentResponse::default()
        };
        while let Some(Some(event)) = responses.next().now_or_never() {
            let same_frame = event.frame_id.as_ref().is_none_or(|f| *f == frame);
            let same_loader = navigated
                .loader_id
                .as_ref()
                .is_none_or(|l| *l == event.loader_id);
            if event.r#type == ResourceType::Document && same_frame && same_loader {
                let headers = event.response.headers.inner();
                let header = |name: &str| {
                    headers.as_object().and_then(|h| {
                        h.iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(name))
                            .and_then(|(_, v)| v.as_str().map(str::to_owned))
                    })
                };
                document = DocumentResponse {
                    status: u16::try_from(event.response.status).unwrap_or(0),
                    url: event.response.url.clone(),
                    mime_type: event.response.mime_type.clone(),
                    retry_after: header("retry-after"),
                    cf_mitigated: header("cf-mitigated"),
                };
            }
        }
        if let Ok(Some(href)) = self
            .evaluate_value("location.href")
            .await
            .map(|v| v.as_str().map(str::to_owned))
        {
            document.url = href;
        }
        debug!(
            url,
            status = document.status,
            ms = started.elapsed().as_millis() as u64,
            "navigated"
        );
        Ok(document)
    }

    async fn wait_for_selector(&self, css: &str) -> Result<(), JobError> {
        let probe = format!("document.querySelector({}) !== null", json!(css));
        loop {
            if self.evaluate_value(&probe).await? == Value::Bool(true) {
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

    /// Evaluates `expression` (awaiting promises) and returns its JSON value.
    async fn evaluate_value(&self, expression: &str) -> Result<Value, JobError> {
        let params = EvaluateParams::builder()
            .expression(expression)
            .return_by_value(true)
            .await_promise(true)
            .user_gesture(true)
            .build()
            .map_err(|e| cdp_error("building an evaluation", e))?;
        let evaluated = self
            .page
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

    async fn html(&self) -> Result<String, JobError> {
        let value = self
            .evaluate_value(
                "(document.doctype ? new XMLSerializer().serializeToString(document.doctype) : '') + (document.documentElement ? document.documentElement.outerHTML : '')",
            )
            .await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    async fn navigate_extract(
        &self,
        response: &DocumentResponse,
        selectors: &[(String, SelectorSpec)],
        evaluate: Option<&str>,
    ) -> Outcome {
        let started = Instant::now();
        let html = self.html().await?;
        let base = Url::parse(&response.url)
            .or_else(|_| Url::parse(&self.job.url))
            .map_err(|e| JobError::new(ErrorKind::Internal, format!("bad final url: {e}")))?;
        let selectors_owned = selectors.to_vec();
        let source = html.clone();
        let extracted =
            tokio::task::spawn_blocking(move || extract::extract(&source, &base, &selectors_owned))
                .await
                .map_err(|e| {
                    JobError::new(ErrorKind::Internal, format!("extraction panicked: {e}"))
                })?;
        let empty = extracted.title.is_none()
            && extracted.text.is_empty()
            && extracted.links.is_empty()
            && !html.contains("<img");
        judge(response, &html, empty)?;
        let mut result = json!({
            "status_code": response.status,
            "final_url": response.url,
            "content_type": if response.mime_type.is_empty() { Value::Null } else { json!(response.mime_type) },
            "bytes": html.len(),
            "body_truncated": false,
            "title": extracted.title,
            "description": extracted.description,
            "canonical": extracted.canonical,
            "links": extracted.links,
            "links_truncated": extracted.links_truncated,
            "text": extracted.text,
            "text_truncated": extracted.text_truncated,
            "data": extracted.data,
            "extract_ms": started.elapsed().as_millis() as u64,
        });
        if let (Some(expression), Value::Object(map)) = (evaluate, &mut result) {
            let value = self.evaluate_value(expression).await?;
            let size = serde_json::to_vec(&value).map_or(usize::MAX, |v| v.len());
            if size > MAX_EVALUATE_BYTES {
                return Err(JobError::new(
                    ErrorKind::Script,
                    format!(
                        "the evaluate result is {size} bytes of JSON; the limit is {MAX_EVALUATE_BYTES}"
                    ),
                ));
            }
            map.insert("evaluate".into(), value);
        }
        Ok(result)
    }

    async fn screenshot(
        &self,
        shot: &ScreenshotOptions,
    ) -> Result<(Vec<u8>, ImageFormat), JobError> {
        let mut params = CaptureScreenshotParams::builder()
            .format(match shot.format {
                ImageFormat::Png => CaptureScreenshotFormat::Png,
                ImageFormat::Jpeg => CaptureScreenshotFormat::Jpeg,
            })
            .from_surface(true);
        if let Some(quality) = shot.quality {
            params = params.quality(i64::from(quality));
        }
        if let Some(css) = &shot.selector {
            let probe = format!(
                "(() => {{ const e = document.querySelector({}); if (!e) return null; e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); return {{x: r.left + window.scrollX, y: r.top + window.scrollY, width: r.width, height: r.height}}; }})()",
                json!(css)
            );
            let rect = self.evaluate_value(&probe).await?;
            let number = |key: &str| rect.get(key).and_then(Value::as_f64);
            let (Some(x), Some(y), Some(width), Some(height)) =
                (number("x"), number("y"), number("width"), number("height"))
            else {
                return Err(JobError::new(
                    ErrorKind::Script,
                    format!("payload.selector {css:?} matched no element"),
                ));
            };
            if width < 1.0 || height < 1.0 {
                return Err(JobError::new(
                    ErrorKind::Script,
                    format!("payload.selector {css:?} matched an element with no size"),
                ));
            }
            params = params
                .clip(Viewport {
                    x,
                    y,
                    width,
                    height,
                    scale: 1.0,
                })
                .capture_beyond_viewport(true);
        } else if shot.full_page {
            let metrics = self
                .page
                .execute(GetLayoutMetricsParams::default())
                .await
                .map_err(|e| cdp_error("measuring the page", e))?
                .result;
            let size = metrics.css_content_size;
            params = params
                .clip(Viewport {
                    x: 0.0,
                    y: 0.0,
                    width: size.width.ceil(),
                    height: size.height.ceil().min(MAX_FULL_PAGE_HEIGHT),
                    scale: 1.0,
                })
                .capture_beyond_viewport(true);
        }
        let data = self
            .page
            .execute(params.build())
            .await
            .map_err(|e| cdp_error("capturing a screenshot", e))?
            .result
            .data;
        Ok((decode_binary(data.as_ref())?, shot.format))
    }

    async fn pdf(&self, pdf: &PdfOptions) -> Result<Vec<u8>, JobError> {
        let (width, height) = pdf.paper.inches();
        let params = PrintToPdfParams::builder()
            .landscape(pdf.landscape)
            .print_background(pdf.print_background)
            .paper_width(width)
            .paper_height(height)
            .build();
        let data = self
            .page
            .execute(params)
            .await
            .map_err(|e| cdp_error("printing to PDF", e))?
            .result
            .data;
        decode_binary(data.as_ref())
    }

    /// Stores a file for the job and remembers it for the result.
    async fn keep(
        &mut self,
        name: &str,
        content_type: &str,
        data: Vec<u8>,
    ) -> Result<ArtifactRecord, JobError> {
        let record = self
            .runner
            .artifacts
            .put(self.job.id, name, content_type, data)
            .await
            .map_err(|e| JobError::new(ErrorKind::Internal, format!("storing {name}: {e}")))?;
        self.artifacts.retain(|a| a.name != record.name);
        self.artifacts.push(record.clone());
        Ok(record)
    }

    /// Keeps `failure.png` and `failure.html` of the page as it is; returns their urls.
    async fn keep_failure(&mut self, budget: Duration) -> Vec<String> {
        let capture = async {
            let mut urls = Vec::new();
            let shot = ScreenshotOptions {
                format: ImageFormat::Png,
                quality: None,
                full_page: false,
                selector: None,
            };
            if let Ok((png, _)) = self.screenshot(&shot).await
                && let Ok(record) = self.keep("failure.png", "image/png", png).await
            {
                urls.push(record.url());
            }
            if let Ok(html) = self.html().await
                && let Ok(record) = self
                    .keep(
                        "failure.html",
                        "text/html; charset=utf-8",
                        html.into_bytes(),
                    )
                    .await
            {
                urls.push(record.url());
            }
            urls
        };
        match tokio::time::timeout(budget, capture).await {
            Ok(urls) => urls,
            Err(_) => {
                warn!(job = %self.job.id, "capturing failure artifacts timed out");
                Vec::new()
            }
        }
    }

    async fn script(&mut self, steps: &[Step]) -> Outcome {
        let mut outcomes = Vec::with_capacity(steps.len());
        let mut data = Map::new();
        for (index, step) in steps.iter().enumerate() {
            let started = Instant::now();
            let value = self.step(step, &mut data).await.map_err(|mut error| {
                error.message = format!("step {index} ({}) failed: {}", step.kind(), error.message);
                error
            })?;
            let mut outcome = json!({
                "index": index,
                "kind": step.kind(),
                "ok": true,
                "ms": started.elapsed().as_millis() as u64,
            });
            if let (Some(value), Value::Object(map)) = (value, &mut outcome) {
                map.insert("value".into(), value);
            }
            outcomes.push(outcome);
        }
        let final_url = self
            .evaluate_value("location.href")
            .await
            .unwrap_or(Value::Null);
        let title = self
            .evaluate_value("document.title")
            .await
            .unwrap_or(Value::Null);
        Ok(json!({
            "final_url": final_url,
            "title": title,
            "steps": outcomes,
            "data": data,
        }))
    }

    async fn step(
        &mut self,
        step: &Step,
        data: &mut Map<String, Value>,
    ) -> Result<Option<Value>, JobError> {
        match step {
            Step::Goto(url) => {
                let parsed = Url::parse(url).map_err(|e| {
                    JobError::new(ErrorKind::InvalidPayload, format!("bad url: {e}"))
                })?;
                self.runner
                    .policy
                    .check_url(&parsed)
                    .await
                    .map_err(|refused| {
                        JobError::new(ErrorKind::TargetPolicy, refused.to_string())
                    })?;
                let response = self.navigate(url, &WaitUntil::Load).await?;
                Ok(Some(
                    json!({"status_code": response.status, "final_url": response.url}),
                ))
            }
            Step::Click(css) => {
                let mut lifecycle = self
                    .page
                    .event_listener::<EventLifecycleEvent>()
                    .await
                    .map_err(|e| cdp_error("listening for page events", e))?;
                let element = self.page.find_element(css.as_str()).await.map_err(|_| {
                    JobError::new(ErrorKind::Script, format!("no element matches {css:?}"))
                })?;
                element.click().await.map_err(|e| {
                    JobError::new(ErrorKind::Script, format!("clicking {css:?}: {e}"))
                })?;
                // A click that starts a navigation is done when the new page has loaded.
                let started = tokio::time::timeout(Duration::from_millis(300), async {
                    while let Some(event) = lifecycle.next().await {
                        if event.name == "init" {
                            return Some(event.loader_id.clone());
                        }
                    }
                    None
                })
                .await;
                if let Ok(Some(loader)) = started {
                    while let Some(event) = lifecycle.next().await {
                        if event.loader_id == loader && event.name == "load" {
                            break;
                        }
                    }
                }
                Ok(None)
            }
            Step::Type { selector, text } => {
                let focus = format!(
                    "(() => {{ const e = document.querySelector({}); if (!e) return false; e.focus(); return true; }})()",
                    json!(selector)
                );
                if self.evaluate_value(&focus).await? != Value::Bool(true) {
                    return Err(JobError::new(
                        ErrorKind::Script,
                        format!("no element matches {selector:?}"),
                    ));
                }
                self.page
                    .execute(
                        chromiumoxide::cdp::browser_protocol::input::InsertTextParams::new(
                            text.clone(),
                        ),
                    )
                    .await
                    .map_err(|e| JobError::new(ErrorKind::Script, format!("typing: {e}")))?;
                Ok(None)
            }
            Step::WaitForSelector(css) => {
                self.wait_for_selector(css).await?;
                Ok(None)
            }
            Step::WaitForMs(ms) => {
                tokio::time::sleep(Duration::from_millis(*ms)).await;
                Ok(None)
            }
            Step::ScrollBottom => self
                .evaluate_value(
                    "window.scrollTo(0, document.documentElement.scrollHeight); window.scrollY",
                )
                .await
                .map(Some),
            Step::ScrollBy(pixels) => self
                .evaluate_value(&format!("window.scrollBy(0, {pixels}); window.scrollY"))
                .await
                .map(Some),
            Step::Extract(selectors) => {
                let mut found = Map::new();
                for (name, spec) in selectors {
                    let expression = format!(
                        "(() => {{ const text = e => (e.innerText ?? e.textContent ?? '').replace(/\\s+/g, ' ').trim(); const pick = e => {attr} ; {body} }})()",
                        attr = match &spec.attr {
                            Some(attr) => format!("e.getAttribute({})", json!(attr)),
                            None => "text(e)".to_owned(),
                        },
                        body = if spec.all {
                            format!(
                                "return Array.from(document.querySelectorAll({})).map(e => pick(e));",
                                json!(spec.selector)
                            )
                        } else {
                            format!(
                                "const e = document.querySelector({}); return e ? pick(e) : null;",
                                json!(spec.selector)
                            )
                        },
                    );
                    let value = self.evaluate_value(&expression).await?;
                    found.insert(name.clone(), value.clone());
                    data.insert(name.clone(), value);
                }
                Ok(Some(Value::Object(found)))
            }
            Step::Evaluate(expression) => self.evaluate_value(expression).await.map(Some),
            Step::Screenshot(name) => {
                let shot = ScreenshotOptions {
                    format: ImageFormat::Png,
                    quality: None,
                    full_page: false,
                    selector: None,
                };
                let (png, _) = self.screenshot(&shot).await?;
                let file = format!("{name}.png");
                let record = self.keep(&file, "image/png", png).await?;
                Ok(Some(artifact_json(&record)))
            }
        }
    }
}

/// Fails on error statuses and pages that look blocked.
fn judge(response: &DocumentResponse, html: &str, empty: bool) -> Result<(), JobError> {
    let signals = Signals {
        status: response.status,
        retry_after: response.retry_after.as_deref(),
        cf_mitigated: response.cf_mitigated.as_deref(),
        body: html,
        html: true,
        empty,
    };
    if let Some(blocked) = block::classify(&signals) {
        return Err(blocked);
    }
    if response.status >= 400 {
        let retryable = response.status == 429 || response.status >= 500;
        let mut error = JobError::new(
            ErrorKind::HttpStatus,
            format!("{} answered {}", response.url, response.status),
        )
        .retryable(retryable);
        error.status_code = Some(response.status);
        error.retry_after_ms = response
            .retry_after
            .as_deref()
            .and_then(block::retry_after_ms);
        return Err(error);
    }
    Ok(())
}

fn decode_binary(data: &str) -> Result<Vec<u8>, JobError> {
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| {
            JobError::new(
                ErrorKind::Internal,
                format!("the browser sent bad base64: {e}"),
            )
        })
}

/// An `Accept-Language` value for a locale: `fr-FR` → `fr-FR,fr;q=0.9`.
fn accept_language(locale: &str) -> String {
    let locale = locale.replace('_', "-");
    match locale.split_once('-') {
        Some((language, _)) => format!("{locale},{language};q=0.9"),
        None => locale,
    }
}
