//! Wiring: connects the backends and runs the API, the worker and the scheduler until shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::api::{self, AppState};
use crate::config::{Command, MissingSetting, ServeArgs, Settings};
use crate::engine::Engine;
use crate::job::target::TargetPolicy;
use crate::queue::{QueueError, RedisQueue};
use crate::store::{PgStore, StoreError};
use crate::worker::{RetryPolicy, Scheduler, SchedulerConfig, Worker, WorkerConfig};

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
    /// The HTTP client of the engine could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Engine(reqwest::Error),
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
    match command {
        Command::Migrate => open_store(&settings, true).await.map(drop),
        Command::Serve(args) => run_roles(&settings, Some(args), false).await,
        Command::Worker => run_roles(&settings, None, true).await,
        Command::All(args) => run_roles(&settings, Some(args), true).await,
    }
}

async fn run_roles(
    settings: &Settings,
    api: Option<ServeArgs>,
    work: bool,
) -> Result<(), StartError> {
    // Settings first, so a missing URL is reported before any waiting.
    settings.require_database_url()?;
    settings.require_redis_url()?;
    let store = open_store(settings, api.is_some_and(ServeArgs::migrate)).await?;
    let queue = open_queue(settings).await?;
    let policy = TargetPolicy::new(settings.allow_private_targets);
    let shutdown = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();

    if api.is_some() {
        let listener =
            TcpListener::bind(settings.bind)
                .await
                .map_err(|source| StartError::Bind {
                    addr: settings.bind,
                    source,
                })?;
        let state = AppState {
            store: store.clone(),
            queue: queue.clone(),
            policy,
        };
        info!(addr = %settings.bind, "API listening");
        let (token, grace) = (shutdown.clone(), settings.shutdown_grace);
        tasks.spawn(async move {
            if let Err(e) = serve_api(listener, state, token, grace).await {
                warn!(error = %e, "API server stopped with an error");
            }
        });
    }
    if work {
        let engine = Arc::new(Engine::new(policy).map_err(StartError::Engine)?);
        let worker = Worker::new(
            store.clone(),
            queue.clone(),
            engine,
            worker_config(settings),
        );
        let scheduler = Scheduler::new(
            store.clone(),
            queue.clone(),
            SchedulerConfig {
                interval: settings.scheduler_interval,
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
    Ok(())
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
