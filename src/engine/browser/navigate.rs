//! Navigation: loading a url in the page, waiting as asked, and reading what the main
//! document's response was.

use std::time::Instant;

use chromiumoxide::cdp::browser_protocol::network::{EventResponseReceived, ResourceType};
use chromiumoxide::cdp::browser_protocol::page::{EventLifecycleEvent, NavigateParams};
use futures::{FutureExt, StreamExt};
use tracing::debug;

use super::session::{Session, cdp_error};
use crate::engine::judge::{self, Signals};
use crate::engine::options::{PageEvent, WaitUntil};
use crate::job::{ErrorKind, JobError};

/// The main document's response, as the browser saw it.
#[derive(Debug, Clone, Default)]
pub struct DocumentResponse {
    /// Its status.
    pub status: u16,
    /// The url the page shows (after redirects and script navigation).
    pub url: String,
    /// Its media type.
    pub mime_type: String,
    /// Its `Retry-After` header.
    pub retry_after: Option<String>,
    /// Its `cf-mitigated` header.
    pub cf_mitigated: Option<String>,
}

impl Session {
    /// Loads the job's url and waits as the job asks.
    pub async fn open(&self) -> Result<DocumentResponse, JobError> {
        let url = self.attempt.url.clone();
        let wait = self.options.wait_until.clone();
        self.goto(&url, &wait).await
    }

    /// Loads `url` and waits for `load`. (Like every request of the page, it leaves through
    /// the attempt's egress, which refuses what the target policy refuses.)
    pub async fn visit(&self, url: &str) -> Result<DocumentResponse, JobError> {
        self.goto(url, &WaitUntil::default()).await
    }

    /// Loads `url` in the main frame and waits for `wait`.
    pub async fn goto(&self, url: &str, wait: &WaitUntil) -> Result<DocumentResponse, JobError> {
        let page = self.page();
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
            return Err(self.navigation_failed(url, &error_text));
        }
        let frame = navigated.frame_id;
        let loader = navigated.loader_id;
        if let Some(loader) = &loader {
            let target = match wait {
                WaitUntil::Event(PageEvent::Load) => "load",
                WaitUntil::Event(PageEvent::DomContentLoaded) | WaitUntil::Selector { .. } => {
                    "DOMContentLoaded"
                }
                WaitUntil::Event(PageEvent::NetworkIdle) => "networkIdle",
            };
            while let Some(event) = lifecycle.next().await {
                if event.frame_id == frame && event.loader_id == *loader && event.name == target {
                    break;
                }
            }
        }
        if let WaitUntil::Selector { selector } = wait {
            self.wait_for_selector(selector).await?;
        }
        let mut document = DocumentResponse {
            status: 200,
            url: url.to_owned(),
            ..DocumentResponse::default()
        };
        while let Some(Some(event)) = responses.next().now_or_never() {
            let same_frame = event.frame_id.as_ref().is_none_or(|f| *f == frame);
            let same_loader = loader.as_ref().is_none_or(|l| *l == event.loader_id);
            if event.r#type == ResourceType::Document && same_frame && same_loader {
                document = document_of(&event);
            }
        }
        if let Ok(Some(href)) = self
            .inspect("location.href")
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

    /// A navigation error, explained by the egress proxy when it refused the target.
    fn navigation_failed(&self, url: &str, error_text: &str) -> JobError {
        let explained = self.refusals.lock().ok().and_then(|r| r.explain());
        explained.unwrap_or_else(|| {
            JobError::new(
                ErrorKind::Navigation,
                format!("navigating to {url} failed: {error_text}"),
            )
        })
    }

    /// Fails on error statuses, challenges and captchas of the loaded document (an empty
    /// page is fine: only extraction expects content).
    pub async fn check(&self, document: &DocumentResponse) -> Result<(), JobError> {
        let html = self.html().await.unwrap_or_default();
        judge_rendered(document, &html, false)
    }
}

/// Judges a rendered document: anti-bot answers and error statuses fail.
pub fn judge_rendered(
    document: &DocumentResponse,
    html: &str,
    empty: bool,
) -> Result<(), JobError> {
    judge::judge(&Signals {
        url: &document.url,
        status: document.status,
        retry_after: document.retry_after.as_deref(),
        cf_mitigated: document.cf_mitigated.as_deref(),
        body: html,
        html: true,
        empty,
    })
}

fn document_of(event: &EventResponseReceived) -> DocumentResponse {
    let headers = event.response.headers.inner();
    let header = |name: &str| {
        headers.as_object().and_then(|h| {
            h.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.as_str().map(str::to_owned))
        })
    };
    DocumentResponse {
        status: u16::try_from(event.response.status).unwrap_or(0),
        url: event.response.url.clone(),
        mime_type: event.response.mime_type.clone(),
        retry_after: header("retry-after"),
        cf_mitigated: header("cf-mitigated"),
    }
}
