//! The browser pool: a few Chromium processes, each serving a bounded number of job contexts,
//! recycled after a number of jobs and replaced when they crash.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chromiumoxide::Browser;
use chromiumoxide::cdp::browser_protocol::target::{
    CreateBrowserContextParams, CreateTargetParams,
};
use serde::Serialize;
use tokio::sync::{RwLock, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::page::{JobPage, Lease};
use super::process::{kill_leftovers, launch, processes_with_arg, sweep_orphans};
use super::warden::Warden;
use crate::engine::own_ports::OwnPort;

/// How long a browser may take to close before it is killed.
pub(super) const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// How the pool runs its browsers.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// The Chrome or Chromium executable.
    pub executable: PathBuf,
    /// Browser processes.
    pub size: usize,
    /// Jobs one browser serves at once.
    pub max_contexts: usize,
    /// Jobs after which a browser is replaced by a fresh one.
    pub recycle_pages: u64,
}

/// Why the pool could not give a job a browser.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The browser would not start.
    #[error("Chromium ({executable}) would not start: {detail}")]
    Launch {
        /// The executable.
        executable: String,
        /// What went wrong.
        detail: String,
    },
    /// The pool is shutting down.
    #[error("the browser pool is shutting down")]
    Closed,
    /// The browser died or refused a command while setting up the job.
    #[error("the browser failed while opening a page: {0}")]
    Crashed(String),
}

/// The pool's counters, for `/ready` and queue statistics.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct PoolStats {
    /// Browser processes alive now.
    pub browsers: usize,
    /// Job contexts open now.
    pub contexts: usize,
    /// The most contexts open at once (browsers × contexts per browser).
    pub capacity: usize,
    /// Jobs served since start.
    pub pages_served: u64,
    /// Browsers replaced after a crash or disconnect.
    pub restarts: u64,
    /// Browsers replaced after serving `BROWSER_RECYCLE_PAGES` jobs.
    pub recycles: u64,
}

/// One Chromium process and its state.
pub(super) struct LiveBrowser {
    pub(super) browser: RwLock<Option<Browser>>,
    handler: tokio::task::JoinHandle<()>,
    /// Cancelled when the browser process exits or its connection breaks.
    pub(super) died: CancellationToken,
    retired: AtomicBool,
    active: AtomicUsize,
    served: AtomicU64,
    user_data_dir: PathBuf,
    generation: u64,
    /// Its DevTools endpoint's port, which no job may reach while the browser lives.
    devtools_port: std::sync::Mutex<Option<OwnPort>>,
    /// Holds its workers at their first line (see [`Warden`]).
    pub(super) warden: Arc<Warden>,
}

impl LiveBrowser {
    pub(super) fn is_dead(&self) -> bool {
        self.died.is_cancelled()
    }

    /// Closes the browser (politely, then by force), kills anything left in its profile
    /// directory and removes the directory.
    async fn shut_down(&self) {
        let taken = self.browser.write().await.take();
        // Unguarded once the browser is gone (a port left guarded could refuse a stranger
        // that is given it later).
        let devtools = self
            .devtools_port
            .lock()
            .ok()
            .and_then(|mut port| port.take());
        if let Some(mut browser) = taken {
            let closed = tokio::time::timeout(CLOSE_TIMEOUT, async {
                let _ = browser.close().await;
                browser.wait().await
            })
            .await;
            if !matches!(closed, Ok(Ok(_))) {
                let _ = browser.kill().await;
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, browser.wait()).await;
            }
        }
        self.handler.abort();
        kill_leftovers(&self.user_data_dir);
        let _ = std::fs::remove_dir_all(&self.user_data_dir);
        drop(devtools);
        debug!(generation = self.generation, "browser shut down");
    }
}

impl Drop for LiveBrowser {
    fn drop(&mut self) {
        // Dropped without `shut_down` (the pool itself dropped): the main process is killed
        // by chromiumoxide; make sure its helpers and profile go too.
        self.handler.abort();
        if self.user_data_dir.exists() {
            kill_leftovers(&self.user_data_dir);
            let _ = std::fs::remove_dir_all(&self.user_data_dir);
        }
    }
}

/// Numbers pools within a process, so their profile directories never collide.
static POOL_IDS: AtomicU64 = AtomicU64::new(0);

struct PoolInner {
    config: PoolConfig,
    /// Every profile directory of this pool starts with this path.
    profile_prefix: String,
    slots: Vec<tokio::sync::Mutex<Option<Arc<LiveBrowser>>>>,
    permits: Arc<Semaphore>,
    /// Browsers replaced while jobs still ran in them; closed when their last job ends.
    draining: Mutex<Vec<Arc<LiveBrowser>>>,
    generation: AtomicU64,
    pages_served: AtomicU64,
    restarts: AtomicU64,
    recycles: AtomicU64,
    closed: AtomicBool,
}

/// A pool of Chromium processes shared by a worker's jobs.
#[derive(Clone)]
pub struct BrowserPool {
    inner: Arc<PoolInner>,
}

impl std::fmt::Debug for BrowserPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserPool")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl BrowserPool {
    /// A pool that launches browsers on demand.
    pub fn new(config: PoolConfig) -> BrowserPool {
        let size = config.size.max(1);
        let max_contexts = config.max_contexts.max(1);
        let config = PoolConfig {
            size,
            max_contexts,
            recycle_pages: config.recycle_pages.max(1),
            ..config
        };
        BrowserPool {
            inner: Arc::new(PoolInner {
                profile_prefix: std::env::temp_dir()
                    .join(format!(
                        "control-plane-chromium-{}-{}-",
                        std::process::id(),
                        POOL_IDS.fetch_add(1, Ordering::SeqCst)
                    ))
                    .display()
                    .to_string(),
                slots: (0..size).map(|_| tokio::sync::Mutex::new(None)).collect(),
                permits: Arc::new(Semaphore::new(size * max_contexts)),
                draining: Mutex::new(Vec::new()),
                generation: AtomicU64::new(0),
                pages_served: AtomicU64::new(0),
                restarts: AtomicU64::new(0),
                recycles: AtomicU64::new(0),
                closed: AtomicBool::new(false),
                config,
            }),
        }
    }

    /// The pool's configuration.
    pub fn config(&self) -> &PoolConfig {
        &self.inner.config
    }

    /// Starts the first browser now, so that a broken installation shows at start-up; also
    /// clears browsers orphaned by processes that died before closing them.
    pub async fn warm_up(&self) -> Result<(), PoolError> {
        let _ = tokio::task::spawn_blocking(sweep_orphans).await;
        let mut slot = self.inner.slots[0].lock().await;
        if slot.is_none() {
            *slot = Some(self.launch().await?);
        }
        Ok(())
    }

    /// The DevTools ports of the pool's live browsers (which no job may reach).
    pub async fn devtools_ports(&self) -> Vec<u16> {
        let mut ports = Vec::new();
        for slot in &self.inner.slots {
            if let Some(live) = slot.lock().await.as_ref()
                && let Ok(port) = live.devtools_port.lock()
                && let Some(port) = port.as_ref()
            {
                ports.push(port.port());
            }
        }
        ports
    }

    /// The pool's counters now.
    pub fn stats(&self) -> PoolStats {
        let inner = &self.inner;
        let mut browsers = 0;
        let mut contexts = 0;
        for slot in &inner.slots {
            if let Ok(slot) = slot.try_lock()
                && let Some(live) = slot.as_ref()
                && !live.is_dead()
            {
                browsers += 1;
                contexts += live.active.load(Ordering::SeqCst);
            }
        }
        if let Ok(draining) = inner.draining.lock() {
            for live in draining.iter() {
                browsers += usize::from(!live.is_dead());
                contexts += live.active.load(Ordering::SeqCst);
            }
        }
        PoolStats {
            browsers,
            contexts,
            capacity: inner.config.size * inner.config.max_contexts,
            pages_served: inner.pages_served.load(Ordering::SeqCst),
            restarts: inner.restarts.load(Ordering::SeqCst),
            recycles: inner.recycles.load(Ordering::SeqCst),
        }
    }

    /// Opens a fresh browser context and page for one job, waiting for a free context. The
    /// context reaches the network only through `proxy_server` (loopback included).
    pub async fn open(&self, proxy_server: &str) -> Result<JobPage, PoolError> {
        let permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(|_| PoolError::Closed)?;
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(PoolError::Closed);
        }
        let live = self.pick().await?;
        live.served.fetch_add(1, Ordering::SeqCst);
        self.inner.pages_served.fetch_add(1, Ordering::SeqCst);
        let lease = Lease {
            pool: self.clone(),
            live,
            _permit: permit,
        };
        let died = lease.live.died.clone();
        let setup = async {
            let guard = lease.live.browser.read().await;
            let Some(browser) = guard.as_ref() else {
                return Err(PoolError::Crashed("the browser is closed".into()));
            };
            let context = browser
                .create_browser_context(
                    CreateBrowserContextParams::builder()
                        .proxy_server(proxy_server)
                        // Chromium skips proxies for loopback unless told not to.
                        .proxy_bypass_list("<-loopback>")
                        .build(),
                )
                .await
                .map_err(|e| PoolError::Crashed(e.to_string()))?;
            let target = CreateTargetParams::builder()
                .url("about:blank")
                .browser_context_id(context.clone())
                .build()
                .map_err(PoolError::Crashed)?;
            match browser.new_page(target).await {
                Ok(page) => Ok((context, page)),
                Err(e) => {
                    let _ = browser.dispose_browser_context(context).await;
                    Err(PoolError::Crashed(e.to_string()))
                }
            }
        };
        let (context, page) = tokio::select! {
            opened = setup => opened?,
            () = died.cancelled() => {
                return Err(PoolError::Crashed("the browser died while opening a page".into()));
            }
        };
        Ok(JobPage {
            page: Some(page),
            context: Some(context),
            lease: Some(lease),
        })
    }

    /// Chooses the live browser with the fewest open contexts, replacing dead and worn-out
    /// browsers, and starting one in an empty slot only when no running browser has room.
    async fn pick(&self) -> Result<Arc<LiveBrowser>, PoolError> {
        let inner = &self.inner;
        let mut best: Option<(usize, Arc<LiveBrowser>)> = None;
        for slot in &inner.slots {
            let mut slot = slot.lock().await;
            let Some(live) = slot.as_ref() else { continue };
            let worn_out = live.served.load(Ordering::SeqCst) >= inner.config.recycle_pages;
            if live.is_dead() || worn_out {
                if live.is_dead() {
                    inner.restarts.fetch_add(1, Ordering::SeqCst);
                    warn!(generation = live.generation, "browser died; replacing it");
                } else {
                    inner.recycles.fetch_add(1, Ordering::SeqCst);
                    info!(generation = live.generation, "recycling browser");
                }
                if let Some(old) = slot.take() {
                    self.retire(old);
                }
                continue;
            }
            let active = live.active.load(Ordering::SeqCst);
            if active < inner.config.max_contexts && best.as_ref().is_none_or(|(a, _)| active < *a)
            {
                best = Some((active, Arc::clone(live)));
            }
        }
        if let Some((_, live)) = best {
            let max = inner.config.max_contexts;
            if live
                .active
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |a| {
                    (a < max).then_some(a + 1)
                })
                .is_ok()
            {
                return Ok(live);
            }
            // Another job took the last context of that browser meanwhile; choose again.
            return Box::pin(self.pick()).await;
        }
        for slot in &inner.slots {
            let mut slot = slot.lock().await;
            if slot.is_none() {
                let live = self.launch().await?;
                live.active.fetch_add(1, Ordering::SeqCst);
                *slot = Some(Arc::clone(&live));
                return Ok(live);
            }
        }
        Err(PoolError::Crashed(
            "no browser has room for another context".into(),
        ))
    }

    /// Takes a browser out of service: closed now if idle, else when its last job ends.
    fn retire(&self, live: Arc<LiveBrowser>) {
        live.retired.store(true, Ordering::SeqCst);
        if live.active.load(Ordering::SeqCst) == 0 {
            tokio::spawn(async move { live.shut_down().await });
        } else if let Ok(mut draining) = self.inner.draining.lock() {
            draining.push(live);
        }
    }

    /// Called when a job leaves `live`: closes retired browsers that have become idle.
    pub(super) fn released(&self, live: &Arc<LiveBrowser>) {
        let left = live.active.fetch_sub(1, Ordering::SeqCst) - 1;
        if left == 0 && live.retired.load(Ordering::SeqCst) {
            if let Ok(mut draining) = self.inner.draining.lock() {
                draining.retain(|other| !Arc::ptr_eq(other, live));
            }
            let live = Arc::clone(live);
            tokio::spawn(async move { live.shut_down().await });
        }
    }

    async fn launch(&self) -> Result<Arc<LiveBrowser>, PoolError> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::SeqCst) {
            return Err(PoolError::Closed);
        }
        let generation = inner.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let user_data_dir = PathBuf::from(format!("{}{generation}", inner.profile_prefix));
        let launched = launch(&inner.config.executable, &user_data_dir)
            .await
            .map_err(|detail| PoolError::Launch {
                executable: inner.config.executable.display().to_string(),
                detail,
            })?;
        let warden = match Warden::connect(launched.browser.websocket_address()).await {
            Ok(warden) => Arc::new(warden),
            Err(detail) => {
                launched.handler.abort();
                let mut browser = launched.browser;
                let _ = browser.kill().await;
                let _ = std::fs::remove_dir_all(&user_data_dir);
                return Err(PoolError::Launch {
                    executable: inner.config.executable.display().to_string(),
                    detail,
                });
            }
        };
        info!(generation, executable = %inner.config.executable.display(), "browser started");
        let devtools_port = url::Url::parse(launched.browser.websocket_address())
            .ok()
            .and_then(|url| url.port())
            .map(OwnPort::guard);
        Ok(Arc::new(LiveBrowser {
            devtools_port: std::sync::Mutex::new(devtools_port),
            warden,
            browser: RwLock::new(Some(launched.browser)),
            handler: launched.handler,
            died: launched.died,
            retired: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            user_data_dir,
            generation,
        }))
    }

    /// Closes every browser and removes their profile directories. New jobs are refused.
    pub async fn shutdown(&self) {
        let inner = &self.inner;
        inner.closed.store(true, Ordering::SeqCst);
        inner.permits.close();
        let mut browsers = Vec::new();
        for slot in &inner.slots {
            if let Some(live) = slot.lock().await.take() {
                browsers.push(live);
            }
        }
        if let Ok(mut draining) = inner.draining.lock() {
            browsers.append(&mut draining);
        }
        futures::future::join_all(browsers.iter().map(|live| live.shut_down())).await;
    }

    /// Process ids of this pool's browsers and their helpers (for memory measurements).
    pub fn process_ids(&self) -> Vec<i32> {
        processes_with_arg(&format!("--user-data-dir={}", self.inner.profile_prefix))
    }

    /// Process ids of this pool's main browser processes (not their helpers).
    pub fn browser_process_ids(&self) -> Vec<i32> {
        self.process_ids()
            .into_iter()
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| !c.split(|b| *b == 0).any(|a| a.starts_with(b"--type=")))
            })
            .collect()
    }
}
