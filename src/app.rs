//! Wiring: connects the backends and runs the API, the worker and the scheduler until shutdown.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::api::{self, AppState};
use crate::artifact::{ArtifactError, ArtifactStore};
use crate::config::{Command, MissingSetting, ServeArgs, Settings};
use crate::engine::BrowserRunner;
use crate::engine::Engine;
use crate::engine::browser::{BrowserPool, INSTALL_HINT, PoolConfig, find_chrome};
use crate::job::target::TargetPolicy;
use crate::queue::{JobQueue, LocalQueue, QueueError, RedisQueue};
use crate::store::{JobStore, PgStore, SqliteStore, StoreError};
use crate::worker::{RetryPolicy, Scheduler, SchedulerConfig, Worker, WorkerConfig, report};

/// How long acquiring a database connection may wait before the caller gets "unavailable".
const DB_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between two start-up connection attempts.
const STARTUP_RETRY: Duration = Duration::from_secs(2);

/// Why the process could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A required setting is missing.
    #[error(transparent)]
    Missing(#[from] MissingSetting),
    /// PostgreSQL could not be reached or migrated.
    #[error("PostgreSQL (DATABASE_URL): {0}")]
    Store(StoreError),
    /// Redis could not be reached.
    #[error("Redis (REDIS_URL): {0}")]
    Queue(QueueError),
    /// The API could not listen.
    #[error("cannot listen on {addr} (BIND): {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The embedded mode's data directory cannot be used.
    #[error("DATA_DIR {}: {reason}", path.display())]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The HTTP client of the engine could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Engine(reqwest::Error),
    /// The configured browser cannot be used.
    #[error("{0}")]
    Browser(String),
    /// The artifact directory cannot be used.
    #[error(transparent)]
    Artifacts(#[from] ArtifactError),
}

impl From<StoreError> for StartError {
    fn from(error: StoreError) -> Self {
        StartError::Store(error)
    }
}

impl From<QueueError> for StartError {
    fn from(error: QueueError) -> Self {
        StartError::Queue(error)
    }
}

/// Retries `attempt` while its error is transient, until `timeout`; logs each wait.
async fn wait_for<T, E, F, Fut>(
    what: &str,
    timeout: Duration,
    transient: impl Fn(&E) -> bool,
    mut attempt: F,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match attempt().await {
            Err(e) if transient(&e) && tokio::time::Instant::now() < deadline => {
                warn!(error = %e, "waiting for {what} (up to STARTUP_TIMEOUT)");
                tokio::time::sleep(STARTUP_RETRY).await;
            }
            other => return other,
        }
    }
}

/// Connects to PostgreSQL, waiting up to STARTUP_TIMEOUT for it to answer.
///
/// With `prepare`, creates the database if missing and applies the migrations; otherwise
/// waits until another process (`migrate` or `serve`) has applied them.
pub async fn open_store(settings: &Settings, prepare: bool) -> Result<Arc<PgStore>, StartError> {
    let url = settings.require_database_url()?;
    let store = wait_for(
        "PostgreSQL",
        settings.startup_timeout,
        StoreError::is_transient,
        || async {
            if prepare && PgStore::create_database_if_missing(url).await? {
                info!("created the database DATABASE_URL names");
            }
            let store =
                PgStore::connect(url, settings.database_max_connections, DB_ACQUIRE_TIMEOUT)
                    .await?;
            if prepare {
                store.migrate().await?;
                info!("migrations applied");
            } else if !store.is_migrated().await? {
                return Err(StoreError::NotMigrated);
            }
            Ok(store)
        },
    )
    .await?;
    Ok(Arc::new(store))
}

/// Connects to Redis, waiting up to STARTUP_TIMEOUT for it to answer.
pub async fn open_queue(settings: &Settings) -> Result<Arc<RedisQueue>, StartError> {
    let url = settings.require_redis_url()?;
    let queue = wait_for(
        "Redis",
        settings.startup_timeout,
        |e: &QueueError| matches!(e, QueueError::Unavailable(_)),
        || RedisQueue::connect(url, &settings.queue_prefix),
    )
    .await?;
    Ok(Arc::new(queue))
}

/// The worker settings a [`Settings`] describes.
pub fn worker_config(settings: &Settings) -> WorkerConfig {
    WorkerConfig {
        shutdown_grace: settings.shutdown_grace,
        retry: RetryPolicy {
            base: settings.retry_backoff_base,
            cap: settings.retry_backoff_cap,
        },
        lease: settings.job_lease,
        ..WorkerConfig::new(settings.concurrency())
    }
}

/// Serves the API on `listener` until `shutdown`, then lets requests finish within `grace`.
pub async fn serve_api(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    let router = api::router(state);
    let stopping = shutdown.clone();
    let server = axum::serve(listener, router)
        .with_graceful_shutdown(async move { stopping.cancelled().await })
        .into_future();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result,
        () = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            warn!("grace period over: closing the API with requests in flight");
            Ok(())
        }
    }
}

/// Runs one command until it finishes or a shutdown signal arrives.
pub async fn run(command: Command, settings: Settings) -> Result<(), StartError> {
    let bind = settings.bind_for(&command);
    match command {
        Command::Migrate => open_store(&settings, true).await.map(drop),
        Command::Serve(args) => run_production(&settings, Some(args), false, bind).await,
        Command::Worker => run_production(&settings, None, true, bind).await,
        Command::All(args) => run_production(&settings, Some(args), true, bind).await,
        Command::Dev => run_embedded(&settings, bind).await,
    }
}

async fn run_production(
    settings: &Settings,
    api: Option<ServeArgs>,
    work: bool,
    bind: SocketAddr,
) -> Result<(), StartError> {
    // Settings first, so a missing URL is reported before any waiting.
    settings.require_database_url()?;
    settings.require_redis_url()?;
    let store = open_store(settings, api.is_some_and(ServeArgs::migrate)).await?;
    let queue = open_queue(settings).await?;
    let services = Services {
        store,
        queue,
        api: api.map(|_| bind),
        work,
    };
    services.run(settings, |_, _| {}).await
}

/// Holds the embedded mode's data directory for this process; released when dropped.
pub struct DataDirLock {
    _file: std::fs::File,
}

/// Locks `DATA_DIR` so that only one process uses the embedded database at a time.
pub fn lock_data_dir(data_dir: &Path) -> Result<DataDirLock, StartError> {
    let fail = |reason: String| StartError::DataDir {
        path: data_dir.to_path_buf(),
        reason,
    };
    std::fs::create_dir_all(data_dir).map_err(|e| fail(e.to_string()))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(data_dir.join("control-plane.lock"))
        .map_err(|e| fail(e.to_string()))?;
    file.try_lock().map_err(|e| match e {
        std::fs::TryLockError::WouldBlock => {
            fail("another control-plane dev process is using it".to_owned())
        }
        std::fs::TryLockError::Error(e) => fail(e.to_string()),
    })?;
    Ok(DataDirLock { _file: file })
}

async fn run_embedded(settings: &Settings, bind: SocketAddr) -> Result<(), StartError> {
    let _lock = lock_data_dir(&settings.data_dir)?;
    let data_dir_error = |e: StoreError| StartError::DataDir {
        path: settings.data_dir.clone(),
        reason: e.to_string(),
    };
    let store = Arc::new(
        SqliteStore::open(&settings.data_dir)
            .await
            .map_err(data_dir_error)?,
    );
    // This process holds the data directory: whatever a previous process left running is
    // orphaned, and the in-process queue starts empty.
    let (requeued, unrung) = store
        .recover_after_restart()
        .await
        .map_err(data_dir_error)?;
    if requeued > 0 {
        warn!(
            jobs = requeued,
            "returned jobs left running by a previous process"
        );
    }
    info!(jobs = unrung, "queued jobs to dispatch");
    let path = std::fs::canonicalize(store.path()).unwrap_or_else(|_| store.path().to_path_buf());
    let services = Services {
        store,
        queue: Arc::new(LocalQueue::new()),
        api: Some(bind),
        work: true,
    };
    services
        .run(settings, |addr, browser| print_banner(addr, &path, browser))
        .await
}

fn print_banner(addr: SocketAddr, database: &Path, browser: &str) {
    let host = if addr.ip().is_unspecified() {
        SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, addr.port()))
    } else {
        addr
    };
    let url = format!("http://{host}");
    println!(
        "\ncontrol-plane {version} is running\n  \
         url:   {url}\n  \
         mode:  embedded: SQLite at {db}, in-process queue\n  \
         browser: {browser}\n  \
         try:   curl -s -X POST {url}/api/v1/jobs -H 'content-type: application/json' \\\n           \
         -d '{{\"url\":\"https://example.com\",\"job_type\":\"navigate_extract\",\"strategy\":\"http\"}}'\n  \
         then:  curl -s {url}/api/v1/jobs/<id>\n",
        version = env!("CARGO_PKG_VERSION"),
        db = database.display(),
    );
}

/// What one process runs: the API, a worker with the scheduler, or both.
struct Services {
    store: Arc<dyn JobStore>,
    queue: Arc<dyn JobQueue>,
    /// Serve the API on this address.
    api: Option<SocketAddr>,
    /// Run a worker and the scheduler.
    work: bool,
}

impl Services {
    /// Runs until SIGINT or SIGTERM, then shuts down gracefully. `on_listening` is told the
    /// API's address once it accepts connections, and the browser's status.
    async fn run(
        self,
        settings: &Settings,
        on_listening: impl FnOnce(SocketAddr, &str),
    ) -> Result<(), StartError> {
        let policy = TargetPolicy::new(settings.allow_private_targets);
        let shutdown = CancellationToken::new();
        let mut tasks = tokio::task::JoinSet::new();

        let artifacts = ArtifactStore::local(&settings.artifact_dir(), self.store.clone())?;
        let (browser, browser_note) = if self.work {
            start_browser(settings, policy, &artifacts).await?
        } else {
            (None, None)
        };
        let pool = browser.as_ref().map(|b| b.pool().clone());
        let engine = Arc::new(Engine::new(policy, browser).map_err(StartError::Engine)?);
        let config = worker_config(settings);
        if self.work {
            // Report before the API answers, so /ready shows the browser from the start.
            report::publish(
                self.queue.as_ref(),
                &config.id,
                &engine,
                browser_note.as_deref(),
            )
            .await;
        }

        if let Some(addr) = self.api {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })?;
            let state = AppState {
                store: self.store.clone(),
                queue: self.queue.clone(),
                policy,
                artifacts: artifacts.clone(),
            };
            info!(%addr, "API listening");
            let browser_line = match (&pool, &browser_note) {
                (Some(pool), _) => format!("Chromium at {}", pool.config().executable.display()),
                (None, Some(note)) => format!("unavailable: {note}"),
                (None, None) => "none (this process runs no worker)".to_owned(),
            };
            on_listening(listener.local_addr().unwrap_or(addr), &browser_line);
            let (token, grace) = (shutdown.clone(), settings.shutdown_grace);
            tasks.spawn(async move {
                if let Err(e) = serve_api(listener, state, token, grace).await {
                    warn!(error = %e, "API server stopped with an error");
                }
            });
        }
        if self.work {
            tasks.spawn(report::run(
                self.queue.clone(),
                config.id.clone(),
                Arc::clone(&engine),
                browser_note,
                shutdown.clone(),
            ));
            let worker = Worker::new(self.store.clone(), self.queue.clone(), engine, config);
            let scheduler = Scheduler::new(
                self.store,
                self.queue,
                SchedulerConfig {
                    interval: settings.scheduler_interval,
                    redeliver_after: settings.redeliver_after,
                    ..SchedulerConfig::default()
                },
            );
            tasks.spawn(scheduler.run(shutdown.clone()));
            tasks.spawn(worker.run(shutdown.clone()));
        }

        shutdown_signal().await;
        info!("shutdown signal received");
        shutdown.cancel();
        while tasks.join_next().await.is_some() {}
        if let Some(pool) = pool {
            pool.shutdown().await;
            info!("browsers closed");
        }
        Ok(())
    }
}

/// Finds and starts Chromium for a worker. Without one, browser jobs fall back or fail
/// clearly; a CHROME_PATH that does not exist stops start-up.
async fn start_browser(
    settings: &Settings,
    policy: TargetPolicy,
    artifacts: &ArtifactStore,
) -> Result<(Option<BrowserRunner>, Option<String>), StartError> {
    let executable = match find_chrome(settings.chrome_path.as_deref()) {
        Err(message) => return Err(StartError::Browser(message)),
        Ok(None) => {
            let note = format!("no Chromium found on PATH; {INSTALL_HINT}");
            warn!("{note}; navigate_extract runs over http, screenshot/pdf/script jobs fail");
            return Ok((None, Some(note)));
        }
        Ok(Some(path)) => path,
    };
    let pool = BrowserPool::new(PoolConfig {
        executable: executable.clone(),
        size: usize::from(settings.browser_pool_size),
        max_contexts: usize::from(settings.browser_max_contexts),
        recycle_pages: settings.browser_recycle_pages,
    });
    match pool.warm_up().await {
        Ok(()) => {
            info!(executable = %executable.display(), "browser pool ready");
            Ok((
                Some(BrowserRunner::new(pool, policy, artifacts.clone())),
                None,
            ))
        }
        Err(e) => {
            pool.shutdown().await;
            let note = format!("{e}; {INSTALL_HINT}");
            warn!("{note}; navigate_extract runs over http, screenshot/pdf/script jobs fail");
            Ok((None, Some(note)))
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            warn!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
