//! A job's own browser context and page, disposed when the job is done with it, however it
//! ends (returned, timed out, cancelled).

use std::sync::Arc;
use std::time::Duration;

use chromiumoxide::Page;
use chromiumoxide::cdp::browser_protocol::browser::BrowserContextId;
use tokio::sync::OwnedSemaphorePermit;
use tracing::{debug, warn};

use super::pool::{BrowserPool, CLOSE_TIMEOUT, LiveBrowser};
use super::warden::Warden;

/// A job's hold on one browser: returned to the pool on drop.
pub(super) struct Lease {
    pub(super) pool: BrowserPool,
    pub(super) live: Arc<LiveBrowser>,
    pub(super) _permit: OwnedSemaphorePermit,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.pool.released(&self.live);
    }
}

/// A job's own browser context and page; both are disposed when it is closed or dropped.
pub struct JobPage {
    pub(super) page: Option<Page>,
    pub(super) context: Option<BrowserContextId>,
    pub(super) lease: Option<Lease>,
}

impl JobPage {
    /// The page.
    pub fn page(&self) -> &Page {
        // Present until `close` or drop, which consume or end `self`.
        self.page.as_ref().expect("page present until closed")
    }

    /// Every cookie of the page's own context. Only the browser's session may name a
    /// context (the page's own answers for its frames' urls alone).
    pub(super) async fn context_cookies(
        &self,
    ) -> Result<Vec<chromiumoxide::cdp::browser_protocol::network::Cookie>, String> {
        let (Some(lease), Some(context)) = (&self.lease, &self.context) else {
            return Err("the page has no context of its own".to_owned());
        };
        let guard = lease.live.browser.read().await;
        let browser = guard.as_ref().ok_or("the browser is closed")?;
        let params = chromiumoxide::cdp::browser_protocol::storage::GetCookiesParams {
            browser_context_id: Some(context.clone()),
        };
        let answer = browser.execute(params).await.map_err(|e| e.to_string())?;
        Ok(answer.result.cookies)
    }

    /// The warden of the browser serving this page.
    pub(super) fn warden(&self) -> Option<Arc<Warden>> {
        self.lease
            .as_ref()
            .map(|lease| Arc::clone(&lease.live.warden))
    }

    /// The page's own browser context.
    pub(super) fn context(&self) -> Option<&BrowserContextId> {
        self.context.as_ref()
    }

    /// Resolves when the browser serving this page dies.
    pub fn died(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let token = self
            .lease
            .as_ref()
            .map(|l| l.live.died.clone())
            .unwrap_or_default();
        token.cancelled_owned()
    }

    /// Whether the browser is seen dead within `within`.
    pub async fn browser_died_within(&self, within: Duration) -> bool {
        tokio::time::timeout(within, self.died()).await.is_ok()
    }

    /// Closes the page and disposes its context.
    pub async fn close(mut self) {
        let (page, context, lease) = (self.page.take(), self.context.take(), self.lease.take());
        dispose(page, context, lease).await;
    }
}

impl Drop for JobPage {
    fn drop(&mut self) {
        let (page, context, lease) = (self.page.take(), self.context.take(), self.lease.take());
        if page.is_some() || context.is_some() {
            // Dropped mid-job (timeout or cancel): dispose in the background.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(dispose(page, context, lease));
            }
        }
    }
}

async fn dispose(page: Option<Page>, context: Option<BrowserContextId>, lease: Option<Lease>) {
    let Some(lease) = lease else { return };
    if lease.live.is_dead() {
        return;
    }
    let work = async {
        if let Some(page) = page {
            let _ = page.close().await;
        }
        if let Some(context) = context
            && let Some(browser) = lease.live.browser.read().await.as_ref()
            && let Err(e) = browser.dispose_browser_context(context).await
        {
            debug!(error = %e, "disposing a browser context failed");
        }
    };
    if tokio::time::timeout(CLOSE_TIMEOUT, work).await.is_err() {
        warn!("disposing a browser context took too long; the browser will be replaced");
        lease.live.died.cancel();
    }
    drop(lease);
}
