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

/// Why the process could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A required setting is missing.
    #[error(transparent)]
    Missing(#[from] MissingSetting),
    /// PostgreSQL could not be reached or migrated.
    #[error("PostgreSQL (DATABASE_URL): {0}")]
    Store(#[from] StoreError),
    /// Redis could not be reached.
    #[error("Redis (REDIS_URL): {0}")]
    Queue(#[from] QueueError),
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
    Engine(#[from] reqwest::Error),
}

/// The connected production backends.
pub struct Backends {
    /// The PostgreSQL job store.
    pub store: Arc<PgStore>,
    /// The Redis Streams queue.
    pub queue: Arc<RedisQueue>,
}

/// Connects to PostgreSQL.
pub async fn connect_store(settings: &Settings) -> Result<Arc<PgStore>, StartError> {
    let url = settings.require_database_url()?;
    let store =
        PgStore::connect(url, settings.database_max_connections, DB_ACQUIRE_TIMEOUT).await?;
    Ok(Arc::new(store))
}

/// Connects to PostgreSQL and Redis.
pub async fn connect(settings: &Settings) -> Result<Backends, StartError> {
    let redis_url = settings.require_redis_url()?;
    let store = connect_store(settings).await?;
    let queue = Arc::new(RedisQueue::connect(redis_url, &settings.queue_prefix).await?);
    Ok(Backends { store, queue })
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
        Command::Migrate => {
            let store = connect_store(&settings).await?;
            store.migrate().await?;
            info!("migrations applied");
            Ok(())
        }
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
    let backends = connect(settings).await?;
    let policy = TargetPolicy::new(settings.allow_private_targets);
    let shutdown = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();

    if let Some(args) = api {
        if args.migrate() {
            backends.store.migrate().await?;
            info!("migrations applied");
        }
        let listener =
            TcpListener::bind(settings.bind)
                .await
                .map_err(|source| StartError::Bind {
                    addr: settings.bind,
                    source,
                })?;
        let state = AppState {
            store: backends.store.clone(),
            queue: backends.queue.clone(),
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
        let engine = Arc::new(Engine::new(policy)?);
        let worker = Worker::new(
            backends.store.clone(),
            backends.queue.clone(),
            engine,
            worker_config(settings),
        );
        let scheduler = Scheduler::new(
            backends.store.clone(),
            backends.queue.clone(),
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
