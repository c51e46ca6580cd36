//! Wiring: connects the backends, builds the process's parts ([`build`]) and runs the API,
//! a worker and the scheduler until a shutdown signal.

mod build;
mod connect;
mod keys;
mod probe;
mod server;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::artifact::ArtifactError;
use crate::auth::AuthMode;
use crate::config::{Command, MissingSetting, ServeArgs, Settings};
use crate::engine::own_ports::OwnPort;
use crate::queue::QueueError;
use crate::store::StoreError;

pub use crate::worker::heartbeat_file;
pub use build::{App, build};
pub use connect::{Backends, DataDirLock, lock_data_dir, open_embedded, open_queue, open_store};
pub use server::{HEADER_READ_TIMEOUT, MAX_CONNECTIONS, serve_api};

/// How long stopping waits for the scheduler to finish its current look.
const SCHEDULER_STOP: Duration = Duration::from_secs(5);

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
    #[error("cannot listen on {addr} ({setting}): {source}")]
    Bind {
        /// The setting that named the address.
        setting: &'static str,
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
    /// The command was given something it cannot act on.
    #[error("{0}")]
    Usage(String),
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

/// Runs one command until it finishes or a shutdown signal arrives.
pub async fn run(command: Command, mut settings: Settings) -> Result<(), StartError> {
    let bind = settings.bind_for(&command);
    let auth = settings.auth_for(&command, bind);
    settings.auth = Some(auth);
    let serves = matches!(command, Command::Serve(_) | Command::All(_) | Command::Dev);
    if serves
        && auth == AuthMode::Off
        && !(matches!(command, Command::Dev) && bind.ip().is_loopback())
    {
        warn!(%bind, "AUTH=off: anyone who reaches {bind} can read, submit and cancel every job");
    }
    match command {
        Command::Keys(keys) => keys::run(keys, &settings).await,
        Command::Probe => {
            if probe::probe(bind).await {
                Ok(())
            } else {
                Err(StartError::Usage("unhealthy".to_owned()))
            }
        }
        Command::Migrate => open_store(&settings, true).await.map(drop),
        Command::Serve(args) => run_production(&settings, Some(args), false, bind).await,
        Command::Worker => run_production(&settings, None, true, bind).await,
        Command::All(args) => run_production(&settings, Some(args), true, bind).await,
        Command::Dev => run_embedded(&settings, bind).await,
        Command::Submit(_) | Command::Jobs(_) | Command::Artifacts(_) => Err(StartError::Usage(
            "client commands run through control_plane::client".to_owned(),
        )),
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
    let app = build(settings, Backends::production(store, &queue), work).await?;
    run_until_signal(app, api.map(|_| bind), work, |_, _| {}).await
}

async fn run_embedded(settings: &Settings, bind: SocketAddr) -> Result<(), StartError> {
    let _lock = lock_data_dir(&settings.data_dir)?;
    let settings = &with_dev_key(settings)?;
    let store = open_embedded(settings).await?;
    let path = std::fs::canonicalize(store.path()).unwrap_or_else(|_| store.path().to_path_buf());
    let app = build(settings, Backends::embedded(store), true).await?;
    let auth = settings.auth.unwrap_or(AuthMode::Keys);
    run_until_signal(app, Some(bind), true, |addr, browser| {
        print_banner(addr, &path, browser, auth)
    })
    .await
}

/// `settings` with, when SECRETS_KEY is unset, the key `dev` keeps in its data directory.
fn with_dev_key(settings: &Settings) -> Result<Settings, StartError> {
    let mut settings = settings.clone();
    if settings
        .secrets_key
        .as_ref()
        .is_none_or(|key| key.0.trim().is_empty())
    {
        let key =
            crate::secrets::dev_key(&settings.data_dir).map_err(|reason| StartError::DataDir {
                path: settings.data_dir.clone(),
                reason,
            })?;
        settings.secrets_key = Some(crate::config::Secret(key.to_base64()));
    }
    Ok(settings)
}

/// Runs the API (on `api`) and, with `work`, a worker with the scheduler and its reports,
/// until SIGINT or SIGTERM; then shuts down gracefully. `on_listening` is told the API's
/// address once it accepts connections, and the browser's status.
async fn run_until_signal(
    app: App,
    api: Option<SocketAddr>,
    work: bool,
    on_listening: impl FnOnce(SocketAddr, &str),
) -> Result<(), StartError> {
    let shutdown = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    let config = app.worker_config();
    let _guarded: Vec<OwnPort> = (app.settings().guarded_ports.iter())
        .map(|port| OwnPort::guard(*port))
        .collect();
    if work {
        // Report before the API answers, so /ready shows the browser from the start.
        app.report_now(&config.id).await;
    }
    if let Some(addr) = api {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind {
                setting: "BIND",
                addr,
                source,
            })?;
        info!(%addr, "API listening");
        let browser_line = match (app.pool(), app.browser_note()) {
            (Some(pool), _) => format!("Chromium at {}", pool.config().executable.display()),
            (None, Some(note)) if work => format!("unavailable: {note}"),
            _ => "none (this process runs no worker)".to_owned(),
        };
        on_listening(listener.local_addr().unwrap_or(addr), &browser_line);
        let bound = listener.local_addr().unwrap_or(addr);
        let (state, token, grace) = (
            app.api_state(bound),
            shutdown.clone(),
            config.shutdown_grace,
        );
        tasks.spawn(async move {
            if let Err(e) = serve_api(listener, state, token, grace).await {
                warn!(error = %e, "API server stopped with an error");
            }
        });
    }
    if let Some(addr) = app.settings().metrics_bind {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind {
                setting: "METRICS_BIND",
                addr,
                source,
            })?;
        // Only an API process counts the shared backlog, so it is not counted per worker.
        let sources = app.scrape(api.is_some());
        tasks.spawn(crate::api::scrape::serve(
            listener,
            sources,
            shutdown.clone(),
        ));
    }
    // The scheduler stops first (and gives its leadership up), so it does not ring the jobs
    // the worker puts back while it stops; another process's scheduler rings them.
    let scheduling = CancellationToken::new();
    let scheduler = work.then(|| tokio::spawn(app.scheduler(&config.id).run(scheduling.clone())));
    if work {
        tasks.spawn(app.courier()?.run(shutdown.clone()));
        tasks.spawn(app.reports(&config.id, shutdown.clone()));
        tasks.spawn(app.worker(config).run(shutdown.clone()));
    }
    shutdown_signal().await;
    info!("shutdown signal received");
    scheduling.cancel();
    if let Some(scheduler) = scheduler {
        let _ = tokio::time::timeout(SCHEDULER_STOP, scheduler).await;
    }
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}
    if let Some(pool) = app.pool() {
        pool.shutdown().await;
        info!("browsers closed");
    }
    Ok(())
}

fn print_banner(addr: SocketAddr, database: &Path, browser: &str, auth: AuthMode) {
    let auth = match auth {
        AuthMode::Off if addr.ip().is_loopback() => {
            "off: open to every program on this machine (loopback only); AUTH=keys asks for keys"
        }
        AuthMode::Off => "off (AUTH=off): open to anyone who reaches this address",
        AuthMode::Keys => "keys: send Authorization: Bearer <key> (control-plane keys create)",
    };
    let host = if addr.ip().is_unspecified() {
        SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, addr.port()))
    } else {
        addr
    };
    let url = format!("http://{host}");
    println!(
        "\ncontrol-plane {version} is running\n  \
         url:   {url}  (dashboard: {url}/ui)\n  \
         mode:  embedded: SQLite at {db}, in-process queue\n  \
         browser: {browser}\n  \
         auth:  {auth}\n  \
         try:   curl -s -X POST {url}/api/v1/jobs -H 'content-type: application/json' \\\n           \
         -d '{{\"url\":\"https://example.com\",\"job_type\":\"navigate_extract\",\"strategy\":\"http\"}}'\n  \
         then:  curl -s {url}/api/v1/jobs/<id>\n",
        version = env!("CARGO_PKG_VERSION"),
        db = database.display(),
    );
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
