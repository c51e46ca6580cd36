//! `navigate_extract`: load a page and extract its metadata, links, visible text and named
//! selectors — from the rendered DOM in a browser, or from the served HTML over http.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use super::content_options::{self, ContentOptions};
use super::evaluate::{evaluate_capped, expression};
use super::reading::{Body, read_off_thread};
use super::running::unavailable;
use super::selectors::selector_map;
use super::{JobKind, Run, page};
use crate::engine::body::ContentKind;
use crate::engine::browser::{ArtifactRef, INSTALL_HINT, Session, judge_rendered};
use crate::engine::content::PageContent;
use crate::engine::extract::{Data, Extracted};
use crate::engine::http::FetchRequest;
use crate::engine::judge::{self, Signals};
use crate::engine::options::{CookieSpec, PageOptions, Selectors};
use crate::job::fields::{Fields, Parsed};
use crate::job::{ErrorKind, JobError, Strategy};

/// Payload fields only a browser can apply: the `http` strategy refuses them.
pub const BROWSER_ONLY_FIELDS: &[&str] =
    &["viewport", "timezone", "block", "wait_until", "evaluate"];
/// How much of a body is searched for anti-bot markers over http.
const JUDGED_BYTES: usize = 64 * 1024;

/// The `navigate_extract` kind.
pub struct NavigateExtract;

/// What to extract, and how to load the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NavigateExtractPayload {
    /// Named selectors whose matches go into the result's `data`.
    #[serde(default, skip_serializing_if = "Selectors::is_empty")]
    pub selectors: Selectors,
    /// A JavaScript expression whose JSON value goes into the result (browser only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluate: Option<String>,
    /// The formats to return and what counts as content.
    #[serde(flatten)]
    pub content: ContentOptions,
    /// Page options.
    #[serde(flatten)]
    pub page: PageOptions,
}

/// What a page yielded. The same fields whichever engine loaded it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Extraction {
    /// The main document's status.
    pub status_code: u16,
    /// The url that answered, after redirects.
    pub final_url: String,
    /// The document's media type.
    pub content_type: Option<String>,
    /// The document's size (over http, as read; in a browser, the rendered HTML).
    pub bytes: usize,
    /// Whether the body was cut at the http engine's limit.
    pub body_truncated: bool,
    /// How long loading the page took, in milliseconds.
    pub fetch_ms: u64,
    /// Metadata, links and text, when no `formats` were asked; absent for content that is
    /// neither HTML nor text.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Extracted)]
    pub extracted: Option<Extracted>,
    /// One value per named selector (`null` when nothing matches); with `formats`, present
    /// only when selectors were given.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Data>,
    /// The outputs asked for in `formats`; absent without them, and for content that is
    /// neither HTML nor text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Box<PageContent>>,
    /// The value of the payload's `evaluate` expression.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluate: Option<Value>,
    /// Why the asked strategy could not be used.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
    /// Files kept by a browser run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<Vec<ArtifactRef>>,
}

impl JobKind for NavigateExtract {
    fn page(payload: &NavigateExtractPayload) -> Option<&PageOptions> {
        Some(&payload.page)
    }

    fn page_mut(payload: &mut NavigateExtractPayload) -> Option<&mut PageOptions> {
        Some(&mut payload.page)
    }

    const NAME: &'static str = "navigate_extract";
    type Payload = NavigateExtractPayload;
    type Output = Extraction;

    fn needs_browser(payload: &NavigateExtractPayload) -> bool {
        let page = &payload.page;
        payload.evaluate.is_some()
            || page.viewport.is_some()
            || page.timezone.is_some()
            || !page.block.is_empty()
            || page.wait_until != Default::default()
    }

    fn parse(f: &mut Fields<'_>, strategy: Option<Strategy>) -> Parsed<NavigateExtractPayload> {
        let selectors = match f.get("selectors") {
            None => Some(Selectors::new()),
            Some(value) => selector_map(value, &f.path_of("selectors"), f.problems()),
        };
        let evaluate = f.with("evaluate", expression);
        let content = content_options::parse(f);
        let page = page::parse(f);
        if strategy == Some(Strategy::Http) {
            for field in BROWSER_ONLY_FIELDS {
                if f.entries().get(*field).is_some_and(|v| !v.is_null()) {
                    f.report(
                        field,
                        "incompatible",
                        "needs a browser; the http strategy cannot apply it (use vanilla, stealth or auto)",
                    );
                }
            }
        }
        Some(NavigateExtractPayload {
            selectors: selectors?,
            evaluate: evaluate?,
            content: content?,
            page: page?,
        })
    }

    async fn run(payload: &NavigateExtractPayload, run: &Run<'_>) -> Result<Extraction, JobError> {
        if let Some((browser, strategy)) = run.browser() {
            let attempt = run.attempt();
            return browser
                .run(&attempt, strategy, &payload.page, async |s| {
                    rendered(s, payload).await
                })
                .await;
        }
        if payload.evaluate.is_some() {
            return Err(unavailable(run.job.job_type));
        }
        let mut extraction = served(run, payload).await?;
        if run.rung.in_browser() {
            extraction.fallback_reason = Some(format!(
                "Chromium is not available on this worker, so the job ran with the http strategy; {INSTALL_HINT}"
            ));
        }
        Ok(extraction)
    }
}

/// Extracts the page as a browser rendered it.
async fn rendered(s: &mut Session, payload: &NavigateExtractPayload) -> Result<Extraction, JobError> {
    let started = Instant::now();
    let document = s.open().await?;
    let fetch_ms = started.elapsed().as_millis() as u64;
    let html = s.html().await?;
    let base = Url::parse(&document.url)
        .or_else(|_| Url::parse(&s.attempt().url))
        .map_err(|e| JobError::new(ErrorKind::Internal, format!("bad final url: {e}")))?;
    let read = read_off_thread(Body::Html(html.clone()), base, document.status, payload).await?;
    let empty = read.blank && !html.contains("<img");
    judge_rendered(&document, &html, empty)?;
    let evaluate = match &payload.evaluate {
        Some(expression) => Some(evaluate_capped(s, expression).await?),
        None => None,
    };
    Ok(Extraction {
        status_code: document.status,
        final_url: document.url,
        content_type: Some(document.mime_type).filter(|m| !m.is_empty()),
        bytes: html.len(),
        body_truncated: false,
        fetch_ms,
        extracted: read.extracted,
        data: read.data,
        content: read.content,
        evaluate,
        fallback_reason: None,
        artifacts: Some(s.artifacts()),
    })
}

/// Extracts the page as the server sent it.
async fn served(run: &Run<'_>, payload: &NavigateExtractPayload) -> Result<Extraction, JobError> {
    let page = &payload.page;
    let cookies = cookies_sent(run, &page.cookies);
    let request = FetchRequest {
        headers: Some(&page.headers),
        user_agent: page.user_agent.as_deref(),
        cookies: &cookies,
        locale: page.locale.as_deref(),
    };
    let fetched = run
        .engine
        .http()
        .fetch(&run.attempt(), &request)
        .await?;
    let text = fetched.text();
    let kind = fetched.kind(&text);
    let body = match kind {
        ContentKind::Html => Some(Body::Html(text)),
        ContentKind::Text => Some(Body::Text(text)),
        ContentKind::Binary => None,
    };
    let read = match body {
        Some(body) => {
            Some(read_off_thread(body, fetched.final_url.clone(), fetched.status, payload).await?)
        }
        None => None,
    };
    if let Some(read) = &read {
        let judged = &fetched.body[..fetched.body.len().min(JUDGED_BYTES)];
        let judged = String::from_utf8_lossy(judged);
        // A script-only shell (content rendered in the browser) shows nothing over http.
        let empty = read.blank && !judged.contains("<img");
        judge::judge(&Signals {
            url: fetched.final_url.as_str(),
            status: fetched.status,
            retry_after: fetched.retry_after.as_deref(),
            cf_mitigated: fetched.cf_mitigated.as_deref(),
            body: &judged,
            html: kind == ContentKind::Html,
            empty,
        })?;
    }
    let (extracted, data, content) = match read {
        Some(read) => (read.extracted, read.data, read.content),
        None => (None, None, None),
    };
    Ok(Extraction {
        status_code: fetched.status,
        final_url: fetched.final_url.to_string(),
        content_type: fetched.content_type,
        bytes: fetched.body.len(),
        body_truncated: fetched.body_truncated,
        fetch_ms: fetched.fetch_ms,
        extracted,
        data,
        content,
        evaluate: None,
        fallback_reason: None,
        artifacts: None,
    })
}

/// The cookies a plain request sends: the profile's that apply to the url (a browser login
/// carried over), then the job's own, which replace a profile cookie of the same name.
fn cookies_sent(run: &Run<'_>, own: &[CookieSpec]) -> Vec<CookieSpec> {
    let profile = match (&run.profile, Url::parse(&run.job.url)) {
        (Some(carried), Ok(url)) => carried.state().cookies_for(&url),
        _ => Vec::new(),
    };
    profile
        .into_iter()
        .filter(|kept| !own.iter().any(|c| c.name == kept.name))
        .chain(own.iter().cloned())
        .collect()
}
