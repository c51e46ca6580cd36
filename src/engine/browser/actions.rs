//! What a script does to a page: click, type, scroll, and read named selectors.

use std::time::Duration;

use chromiumoxide::cdp::browser_protocol::input::InsertTextParams;
use chromiumoxide::cdp::browser_protocol::page::EventLifecycleEvent;
use futures::StreamExt;
use serde_json::{Map, Value, json};

use super::session::{Session, cdp_error};
use crate::engine::options::{SelectorSpec, Selectors};
use crate::job::{ErrorKind, JobError};

/// How long a click waits to see whether it starts a navigation.
const NAVIGATION_START: Duration = Duration::from_millis(300);

impl Session {
    /// Clicks the first element matching `css`; when the click starts a navigation, waits
    /// until the new page has loaded.
    pub async fn click(&self, css: &str) -> Result<(), JobError> {
        let mut lifecycle = self
            .page()
            .event_listener::<EventLifecycleEvent>()
            .await
            .map_err(|e| cdp_error("listening for page events", e))?;
        let element =
            self.page().find_element(css).await.map_err(|_| {
                JobError::new(ErrorKind::Script, format!("no element matches {css:?}"))
            })?;
        element
            .click()
            .await
            .map_err(|e| JobError::new(ErrorKind::Script, format!("clicking {css:?}: {e}")))?;
        let started = tokio::time::timeout(NAVIGATION_START, async {
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
        Ok(())
    }

    /// Focuses the first element matching `css` and types `text` into it.
    pub async fn type_into(&self, css: &str, text: &str) -> Result<(), JobError> {
        let focus = format!(
            "(() => {{ const e = document.querySelector({}); if (!e) return false; e.focus(); return true; }})()",
            json!(css)
        );
        if self.inspect(&focus).await? != Value::Bool(true) {
            return Err(JobError::new(
                ErrorKind::Script,
                format!("no element matches {css:?}"),
            ));
        }
        self.page()
            .execute(InsertTextParams::new(text))
            .await
            .map_err(|e| JobError::new(ErrorKind::Script, format!("typing: {e}")))?;
        Ok(())
    }

    /// Scrolls to the bottom, or by `pixels`; returns the new scroll position.
    pub async fn scroll(&self, pixels: Option<i64>) -> Result<Value, JobError> {
        let expression = match pixels {
            None => "window.scrollTo(0, document.documentElement.scrollHeight); window.scrollY"
                .to_owned(),
            Some(pixels) => format!("window.scrollBy(0, {pixels}); window.scrollY"),
        };
        self.inspect(&expression).await
    }

    /// Reads each named selector from the live page: the text (or attribute) of the first
    /// match, or of every match; `null` when nothing matches.
    pub async fn select(&self, selectors: &Selectors) -> Result<Map<String, Value>, JobError> {
        let mut found = Map::new();
        for (name, spec) in selectors {
            let value = self.inspect(&select_expression(spec)).await?;
            found.insert(name.clone(), value);
        }
        Ok(found)
    }
}

/// The expression that reads one selector in the page.
fn select_expression(spec: &SelectorSpec) -> String {
    let pick = match &spec.attr {
        Some(attr) => format!("e.getAttribute({})", json!(attr)),
        None => "text(e)".to_owned(),
    };
    let body = if spec.all {
        format!(
            "return Array.from(document.querySelectorAll({})).map(e => pick(e));",
            json!(spec.selector)
        )
    } else {
        format!(
            "const e = document.querySelector({}); return e ? pick(e) : null;",
            json!(spec.selector)
        )
    };
    format!(
        "(() => {{ const text = e => (e.innerText ?? e.textContent ?? '').replace(/\\s+/g, ' ').trim(); const pick = e => {pick} ; {body} }})()"
    )
}
